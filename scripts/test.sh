#!/usr/bin/env bash
# Every test: the C core's unit tests natively under sanitizers and as
# WebAssembly (both builds, under Node), the fuzz corpus replayed plus a short
# fuzzing run of the safetensors parser (FUZZ_SECONDS, default 10; `npm run
# fuzz` runs longer), then the JS tests on both WebAssembly builds (bit-exact
# fixtures, API, errors, memory growth, adapters, checkpoints, C ABI, browser
# page, types) and the packaging test. Run through `npm test`, which
# bootstraps first.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== C unit tests (native gcc with ASan + UBSan; WebAssembly SIMD128 and scalar under Node)"
bash scripts/test-c.sh

echo "== Fuzzing the safetensors parser (libFuzzer, ASan + UBSan: the corpus, then ${FUZZ_SECONDS:-10} s)"
bash scripts/fuzz.sh

echo "== JS tests: both Wasm builds, adapters, checkpoints, C ABI, browser, packaging, types"
node --test test/js/*.test.js test/js/adapters/*.test.js
