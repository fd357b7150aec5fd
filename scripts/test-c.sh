#!/usr/bin/env bash
# The C core's unit tests (test/c/), run by ctest twice:
#   - natively, built with gcc under AddressSanitizer and UndefinedBehaviorSanitizer
#     (build/native-asan);
#   - compiled to WebAssembly with Emscripten as both builds, SIMD128 and scalar,
#     linked the way the shipped modules are and run under Node by
#     test/c/run-wasm.mjs (build/wasm-tests), so the wasmsimd kernels are tested
#     as kernels and every test runs on the code that ships.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc 2>/dev/null || echo 2)"
mkdir -p build

dir=build/native-asan
if [ ! -f "$dir/CMakeCache.txt" ]; then
  echo "test-c: configuring the native build with sanitizers ($dir)"
  cmake -S . -B "$dir" -DEMA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >build/native-configure.log 2>&1 ||
    { cat build/native-configure.log >&2; exit 1; }
fi
echo "test-c: compiling the C tests natively"
cmake --build "$dir" -j "$jobs" -- --no-print-directory >build/native-build.log 2>&1 ||
  { cat build/native-build.log >&2; exit 1; }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$dir" --output-on-failure

command -v emcmake >/dev/null 2>&1 ||
  { echo "test-c: emcmake (Emscripten) is not installed; run 'bash scripts/bootstrap.sh'" >&2; exit 1; }
dir=build/wasm-tests
if [ ! -f "$dir/CMakeCache.txt" ]; then
  echo "test-c: configuring the C tests as WebAssembly ($dir)"
  emcmake cmake -S . -B "$dir" -DEMA_WASM_TESTS=ON -DCMAKE_BUILD_TYPE=Release >build/wasm-tests-configure.log 2>&1 ||
    { cat build/wasm-tests-configure.log >&2; exit 1; }
fi
echo "test-c: compiling the C tests to WebAssembly (SIMD128 and scalar)"
cmake --build "$dir" -j "$jobs" -- --no-print-directory >build/wasm-tests-build.log 2>&1 ||
  { cat build/wasm-tests-build.log >&2; exit 1; }
ctest --test-dir "$dir" --output-on-failure
