#!/usr/bin/env bash
# Every test: the C core natively under sanitizers, a bounded fuzzing run of
# the safetensors parser (FUZZ_SECONDS, default 60), then the JS tests on both
# WebAssembly builds (bit-exact fixtures, API, errors, memory growth, adapters,
# checkpoints, browser page, types) and the packaging test. Run through
# `npm test`, which bootstraps first.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== C unit tests (native gcc, ASan + UBSan)"
bash scripts/test-c.sh

echo "== Fuzzing the safetensors parser (libFuzzer, ASan + UBSan, ${FUZZ_SECONDS:-60} s)"
bash scripts/fuzz.sh

echo "== JS tests: both Wasm builds, adapters, checkpoints, browser, packaging, types"
node --test test/js/*.test.js test/js/adapters/*.test.js
