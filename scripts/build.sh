#!/usr/bin/env bash
# Builds the two WebAssembly modules (SIMD128 and scalar) into dist/ from the
# C sources, with Emscripten through CMake. Incremental: a second run that
# finds nothing changed takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v emcc >/dev/null 2>&1; then
  echo "build: emcc (Emscripten) is not installed; run 'bash scripts/bootstrap.sh' or 'apt-get install emscripten'" >&2
  exit 1
fi

# Debian's emcc ships a frozen, prebuilt system-library cache: leave EM_CACHE
# alone so it is used.
mkdir -p build
if [ ! -f build/wasm/CMakeCache.txt ]; then
  echo "build: configuring the WebAssembly build (build/wasm)"
  emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >build/wasm-configure.log 2>&1 ||
    { cat build/wasm-configure.log >&2; exit 1; }
fi
echo "build: compiling dist/ema-simd.wasm, dist/ema-scalar.wasm and dist/ema-threads.wasm"
cmake --build build/wasm -j "$(nproc 2>/dev/null || echo 2)" -- --no-print-directory >build/wasm-build.log 2>&1 ||
  { cat build/wasm-build.log >&2; exit 1; }
ls -l dist/ema-simd.wasm dist/ema-scalar.wasm dist/ema-threads.wasm | awk '{ printf "build: %s (%s bytes)\n", $NF, $5 }'
# The .wasm files inlined as JS modules (js/wasm/) and the CommonJS copy (dist/cjs/).
node scripts/build-js.mjs
