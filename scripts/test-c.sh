#!/usr/bin/env bash
# The C core's unit tests, built natively with gcc under AddressSanitizer and
# UndefinedBehaviorSanitizer, run by ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/native-asan
mkdir -p build
if [ ! -f "$dir/CMakeCache.txt" ]; then
  echo "test-c: configuring the native build with sanitizers ($dir)"
  cmake -S . -B "$dir" -DEMA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >build/native-configure.log 2>&1 ||
    { cat build/native-configure.log >&2; exit 1; }
fi
echo "test-c: compiling the C tests"
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" -- --no-print-directory >build/native-build.log 2>&1 ||
  { cat build/native-build.log >&2; exit 1; }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$dir" --output-on-failure
