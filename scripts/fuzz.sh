#!/usr/bin/env bash
# Fuzzes the safetensors header parser with libFuzzer under ASan + UBSan.
#
#   bash scripts/fuzz.sh                  replay the corpus, then fuzz FUZZ_SECONDS (default 10)
#   bash scripts/fuzz.sh --long           the same, FUZZ_SECONDS defaulting to 600
#   FUZZ_SECONDS=0 bash scripts/fuzz.sh   fuzz until a failure or Ctrl-C
#   bash scripts/fuzz.sh [--long] -jobs=2 -max_len=4096    extra libFuzzer flags
#
# `npm test` runs the first form, `npm run fuzz` the second (npm run fuzz --
# <flags> passes flags). Builds build/fuzz/fuzz_safetensors with clang
# (-DEMA_FUZZ=ON), first runs every input of the committed corpus
# (test/fuzz/corpus) once, then fuzzes from a copy of it in
# build/fuzz/corpus-work (new inputs go there; the committed corpus is only
# read). Exits non-zero on any crash, leak, sanitizer report, broken invariant
# or timeout; the failing input is saved under build/fuzz/artifacts/. To replay
# one:
#   ./build/fuzz/fuzz_safetensors build/fuzz/artifacts/crash-...
# to shrink it:
#   ./build/fuzz/fuzz_safetensors -minimize_crash=1 -runs=100000 build/fuzz/artifacts/crash-...
# and to add what a long run found to the committed corpus (smallest inputs
# that keep the coverage):
#   ./build/fuzz/fuzz_safetensors -merge=1 test/fuzz/corpus build/fuzz/corpus-work
# Needs clang and its libFuzzer runtime (bash scripts/bootstrap.sh test installs
# both on Debian); FUZZ_CC names another clang.
set -euo pipefail
cd "$(dirname "$0")/.."
default_seconds=10
if [ "${1:-}" = --long ]; then
  default_seconds=600
  shift
fi
seconds="${FUZZ_SECONDS:-$default_seconds}"
dir=build/fuzz
cc="${FUZZ_CC:-clang}"
mkdir -p build

command -v "$cc" >/dev/null 2>&1 ||
  { echo "fuzz: $cc not found; run 'bash scripts/bootstrap.sh test' (as root) or install clang" >&2; exit 1; }
# Can this clang link a fuzzer? (The runtime is a separate package on Debian.)
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char* d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" >"$probe/log" 2>&1; then
  cat "$probe/log" >&2
  major="$("$cc" -dumpversion | cut -d. -f1)"
  echo "fuzz: $cc cannot link a libFuzzer program: its runtime is missing" \
    "(Debian: apt-get install libclang-rt-$major-dev, or run 'bash scripts/bootstrap.sh test' as root)" >&2
  exit 1
fi

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

# Every report is fatal and saves the input under $dir/artifacts/: an ASan
# error exits 1, a leak, abort or UBSan report (aborting, so that libFuzzer
# catches it) exits 77 (-error_exitcode), a hang 70 (-timeout_exitcode).
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
symbolizer="$(command -v llvm-symbolizer || command -v "$("$cc" -print-prog-name=llvm-symbolizer)" || true)"
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer"
mkdir -p "$dir/artifacts"
flags=(-rss_limit_mb=2048 -timeout=10 -error_exitcode=77 -timeout_exitcode=70
       -artifact_prefix="$dir/artifacts/")

# 1. The committed corpus, every input once (the files given one by one).
corpus=(test/fuzz/corpus/*)
log="$dir/replay.log"
echo "fuzz: replaying the corpus (${#corpus[@]} inputs; log: $log)"
if ! "$dir/fuzz_safetensors" "${flags[@]}" "${corpus[@]}" >"$log" 2>&1; then
  grep -E 'ERROR|SUMMARY|broken:|runtime error|Running:|leak' "$log" | tail -n 20 >&2 || true
  echo "fuzz: FAILED replaying the corpus; full log: $log" >&2
  exit 1
fi
replayed=$(grep -c '^Executed ' "$log" || true)
[ "$replayed" -eq "${#corpus[@]}" ] ||
  { echo "fuzz: replayed $replayed of ${#corpus[@]} inputs; full log: $log" >&2; exit 1; }

# 2. Fuzzing, bounded by FUZZ_SECONDS (0: no bound).
work="$dir/corpus-work"
mkdir -p "$work"
cp test/fuzz/corpus/* "$work/"
log="$dir/fuzz.log"
echo "fuzz: running for $([ "$seconds" = 0 ] && echo 'as long as it takes (Ctrl-C stops)' || echo "${seconds}s") (log: $log)"
start=$(date +%s)
set +e
"$dir/fuzz_safetensors" -max_total_time="$seconds" "${flags[@]}" -print_final_stats=1 \
  -dict=test/fuzz/safetensors.dict "$@" "$work" test/fuzz/corpus >"$log" 2>&1
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

if [ "$status" -eq 72 ]; then # libFuzzer's -interrupted_exitcode: Ctrl-C
  echo "fuzz: interrupted after $summary; nothing found until then" >&2
  exit 130
fi
if [ "$status" -ne 0 ]; then
  grep -E 'ERROR|SUMMARY|broken:|runtime error|Test unit written|leak' "$log" | head -n 20 >&2 || true
  echo "fuzz: FAILED (exit $status) after $summary; full log: $log" >&2
  exit "$status"
fi
echo "fuzz: ok: corpus of ${#corpus[@]} replayed, then $summary; no crashes, leaks, sanitizer reports or timeouts"
