#!/usr/bin/env bash
# Every test: the C core natively under sanitizers, then the JS tests on both
# WebAssembly builds (bit-exact fixtures, API, errors, memory growth, types)
# and the packaging test. Run through `npm test`, which bootstraps first.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== C unit tests (native gcc, ASan + UBSan)"
bash scripts/test-c.sh

echo "== JS tests (SIMD and scalar builds) and the packaging test"
node --test test/js/*.test.js
