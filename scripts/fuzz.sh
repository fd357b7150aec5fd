#!/usr/bin/env bash
# Fuzzes the safetensors header parser with libFuzzer under ASan + UBSan.
#
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh [extra libFuzzer flags]
#
# Builds build/fuzz/fuzz_safetensors with clang (-DEMA_FUZZ=ON), copies the
# seed corpus test/fuzz/corpus into build/fuzz/corpus-work (new inputs go
# there; the committed corpus is only read) and runs for FUZZ_SECONDS. Exits
# non-zero on any crash, leak, sanitizer report, broken invariant or timeout;
# the failing input is saved under build/fuzz/artifacts/. To replay one:
#   ./build/fuzz/fuzz_safetensors build/fuzz/artifacts/crash-...
# and to shrink it:
#   ./build/fuzz/fuzz_safetensors -minimize_crash=1 -runs=100000 build/fuzz/artifacts/crash-...
# Needs clang and its sanitizer/libFuzzer runtimes (Debian: clang, libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/fuzz
seconds="${FUZZ_SECONDS:-60}"
cc="${FUZZ_CC:-clang}"

command -v "$cc" >/dev/null 2>&1 ||
  { echo "fuzz: $cc not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p build
if [ ! -f "$dir/CMakeCache.txt" ]; then
  echo "fuzz: configuring $dir with $cc"
  CC="$cc" cmake -S . -B "$dir" -DEMA_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Debug \
    >build/fuzz-configure.log 2>&1 || { cat build/fuzz-configure.log >&2; exit 1; }
fi
echo "fuzz: building fuzz_safetensors"
cmake --build "$dir" --target fuzz_safetensors -j "$(nproc 2>/dev/null || echo 2)" \
  >build/fuzz-build.log 2>&1 || { cat build/fuzz-build.log >&2; exit 1; }
[ -x "$dir/fuzz_safetensors" ] ||
  { echo "fuzz: $dir/fuzz_safetensors was not built (is CMAKE_C_COMPILER clang?)" >&2; exit 1; }

work="$dir/corpus-work"
mkdir -p "$work" "$dir/artifacts"
cp test/fuzz/corpus/* "$work/"

# Every report is fatal and saves the input under $dir/artifacts/: an ASan
# error exits 1, a leak, abort or UBSan report (aborting, so that libFuzzer
# catches it) exits 77 (-error_exitcode), a hang 70 (-timeout_exitcode).
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
symbolizer="$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)"
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer"

log="$dir/fuzz.log"
echo "fuzz: running for ${seconds}s (log: $log)"
start=$(date +%s)
set +e
"$dir/fuzz_safetensors" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -error_exitcode=77 -timeout_exitcode=70 -print_final_stats=1 \
  -dict=test/fuzz/safetensors.dict -artifact_prefix="$dir/artifacts/" \
  "$@" "$work" test/fuzz/corpus >"$log" 2>&1
status=$?
set -e
elapsed=$(($(date +%s) - start))

# libFuzzer's last status line ("#N DONE cov: C ft: F corp: U/S ...") and final stats.
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
summary="${runs:-?} runs in ${elapsed}s (${speed:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"

if [ "$status" -ne 0 ]; then
  grep -E 'ERROR|SUMMARY|broken:|runtime error|Test unit written|leak' "$log" | head -n 20 >&2 || true
  echo "fuzz: FAILED (exit $status) after $summary; full log: $log" >&2
  exit "$status"
fi
echo "fuzz: ok: $summary; no crashes, leaks, sanitizer reports or timeouts"
