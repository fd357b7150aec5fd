#!/usr/bin/env bash
# Makes a fresh clone ready for `npm test`, `npm run demo` or `npm run bench`:
# installs the Debian packages that are missing (as root, with apt-get), the
# node modules (npm ci), and builds the WebAssembly modules. Each step says
# what it does and is skipped when already done.
#
#   bash scripts/bootstrap.sh [test|demo|bench]
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-test}"
say() { printf 'bootstrap: %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------
missing=()
command -v emcc >/dev/null 2>&1 || missing+=(emscripten)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
if [ "$purpose" = bench ]; then
  # The native baseline of the benchmark is the same C core built by gcc.
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
fi
if [ "$purpose" = test ]; then
  # The native C tests build with gcc under AddressSanitizer and UBSan; the
  # parser's fuzzer needs clang with its libFuzzer runtime; the browser test
  # drives Debian's Chromium.
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  command -v make >/dev/null 2>&1 || missing+=(make)
  command -v clang >/dev/null 2>&1 || missing+=(clang)
  ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
fi

if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]} (apt-get; a minute or two)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "missing tools for '$purpose': ${missing[*]}"
    say "install them with: sudo apt-get install -y ${missing[*]}   then run again"
    exit 1
  fi
else
  say "Debian packages present (emscripten, cmake$([ "$purpose" = test ] && echo ', gcc, clang, chromium'))"
fi

# --- node modules --------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
else
  say "node modules up to date"
fi

# --- WebAssembly build -----------------------------------------------------------
bash scripts/build.sh
