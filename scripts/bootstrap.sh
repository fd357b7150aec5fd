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
# Whether clang can link a libFuzzer program (the runtime is its own package).
clang_links_fuzzers() {
  command -v clang >/dev/null 2>&1 || return 1
  local probe status
  probe="$(mktemp -d)"
  printf 'int LLVMFuzzerTestOneInput(const unsigned char* d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe/probe.c"
  clang -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" >/dev/null 2>&1 && status=0 || status=1
  rm -rf "$probe"
  return "$status"
}

# The Debian package of the libFuzzer runtime for the clang that will be used:
# the installed clang's major version, else the one Debian's default clang
# depends on (clang -> clang-N), asked of apt (after apt-get update).
fuzzer_runtime_package() {
  local major=""
  if command -v clang >/dev/null 2>&1; then
    major="$(clang -dumpversion | cut -d. -f1)"
  else
    major="$(apt-cache depends clang 2>/dev/null | sed -n 's/^ *Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n 1)"
  fi
  local candidate
  for candidate in ${major:+libclang-rt-$major-dev} libclang-rt-dev; do
    if apt-cache show "$candidate" >/dev/null 2>&1; then
      echo "$candidate"
      return
    fi
  done
  # apt knows neither (no package lists yet): Debian's naming.
  if [ -n "$major" ]; then echo "libclang-rt-$major-dev"; else echo libclang-rt-dev; fi
}

# Replaces the placeholder in `missing` by the package's name.
name_fuzzer_runtime() {
  local i
  for i in "${!missing[@]}"; do
    if [ "${missing[$i]}" = libfuzzer-runtime ]; then missing[$i]="$(fuzzer_runtime_package)"; fi
  done
}

missing=()
command -v emcc >/dev/null 2>&1 || missing+=(emscripten)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
if [ "$purpose" = bench ]; then
  # The native baseline of the benchmark is the same C core built by gcc
  # (with OpenMP for the threads section); PyTorch's lerp_ is its other
  # baseline there (skipped with a note when python3-torch is absent).
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || missing+=(python3-torch)
fi
if [ "$purpose" = test ]; then
  # The native C tests build with gcc under AddressSanitizer and UBSan; the
  # parser's fuzzer needs clang with its libFuzzer runtime; the browser test
  # drives Debian's Chromium.
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  command -v make >/dev/null 2>&1 || missing+=(make)
  command -v clang >/dev/null 2>&1 || missing+=(clang)
  # Named once apt knows which clang it has (see fuzzer_runtime_package).
  clang_links_fuzzers || missing+=(libfuzzer-runtime)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
fi

if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]} (apt-get; a minute or two)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    name_fuzzer_runtime
    say "packages: ${missing[*]}"
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    name_fuzzer_runtime
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
