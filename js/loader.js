// Compiles and instantiates the two WebAssembly builds.
//
// The builds travel inside the package as JavaScript (js/wasm/, base64 made
// by scripts/build-js.mjs), as hash-wasm ships its modules: every bundler,
// dev server, worker and runtime loads them as plain JS, with no .wasm asset
// to locate, copy or serve with the right MIME type, and no Node-only code.
// A caller can still hand over its own module (options.wasm, see
// wasm-source.js), e.g. for pages whose policy forbids compiling bytes.
//
// Each module is compiled once per process (or page) and cached; every EMA
// gets its own instance, so its arena is returned to the engine when the EMA
// is disposed and garbage collected, and no EMA can disturb another's memory.

import { MAX_PAGES, PAGE_BYTES, pagesFor } from './memory-budget.js';
import { instantiationError, moduleFromSource, policyHint } from './wasm-source.js';
import { wasmBase64 as scalarBase64 } from './wasm/ema-scalar.js';
import { wasmBase64 as simdBase64 } from './wasm/ema-simd.js';

const BUILT_IN_BASE64 = { simd: simdBase64, scalar: scalarBase64 };

// The smallest module that uses a SIMD128 instruction (i8x16.splat and
// i8x16.popcnt, as in wasm-feature-detect): it validates only where SIMD works.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0,
  253, 15, 253, 98, 11,
]);

let simdSupported;

/** Whether this runtime can run the SIMD128 build. */
export function hasWasmSimd() {
  if (simdSupported === undefined) {
    simdSupported = typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  }
  return simdSupported;
}

function decodeBase64(text) {
  if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const compiledBuiltIns = new Map();

/** The compiled module of one built-in build ('simd' or 'scalar'), compiled once. */
function compileBuiltIn(build) {
  let promise = compiledBuiltIns.get(build);
  if (promise === undefined) {
    promise = WebAssembly.compile(decodeBase64(BUILT_IN_BASE64[build]));
    // A failed compile (a page whose policy forbids it, say) is not cached.
    promise.catch(() => compiledBuiltIns.delete(build));
    compiledBuiltIns.set(build, promise);
  }
  return promise;
}

const buildOfModule = new WeakMap();

/**
 * Which build a module is ('simd' or 'scalar'), asked of the module itself
 * (ema_simd128) on a throwaway instance; remembered per module.
 */
function buildOf(module) {
  let build = buildOfModule.get(module);
  if (build === undefined) {
    const answer = instantiate(module).exports.ema_simd128();
    if (answer !== 0 && answer !== 1) throw new TypeError(`ema_simd128() answered ${answer}, not 0 or 1`);
    build = answer === 1 ? 'simd' : 'scalar';
    buildOfModule.set(module, build);
  }
  return build;
}

/**
 * The module to run and its build, for the `simd` and `wasm` options of
 * `method`: the built-in build that `simd` picks, or the module `wasm` hands
 * over, checked against `simd`.
 */
export async function loadModule(simd, wasm, method) {
  if (wasm === undefined) {
    const build = chooseBuild(simd, method);
    try {
      return { module: await compileBuiltIn(build), build };
    } catch (error) {
      throw new Error(
        `ema-wasm: ${method}: compiling the built-in ${build} module failed (${error.message}). ` +
          (policyHint(error) ?? 'The JavaScript engine may be out of memory.'),
        { cause: error },
      );
    }
  }
  const module = await moduleFromSource(wasm, method);
  let build;
  try {
    build = buildOf(module);
  } catch (error) {
    throw instantiationError(`ema-wasm: ${method}: options.wasm`, error);
  }
  if (simd !== 'auto' && simd !== (build === 'simd')) {
    throw new Error(
      `ema-wasm: ${method}: options.simd is ${simd} but options.wasm is the ${build} build; ` +
        `hand over ema-${simd ? 'simd' : 'scalar'}.wasm, or leave options.simd at 'auto'`,
    );
  }
  return { module, build };
}

/** Picks the build for a `simd` option of 'auto', true or false. */
export function chooseBuild(simd, method) {
  if (simd === 'auto') {
    return hasWasmSimd() ? 'simd' : 'scalar';
  }
  if (simd === true && !hasWasmSimd()) {
    throw new Error(
      `ema-wasm: ${method}: options.simd is true but this runtime does not support WebAssembly SIMD; ` +
        "use simd: 'auto' to fall back to the scalar build",
    );
  }
  return simd ? 'simd' : 'scalar';
}

const MIN_PAGES = 16; // -sINITIAL_MEMORY=1MB: the module's own data and stack

/**
 * A memory of `pages` pages if the engine grants it, else smaller: the arena
 * can still grow later, so asking big is an optimisation, not a requirement.
 * Its maximum stops one page short of 4 GiB (see memory-budget.js).
 */
function createMemory(pages) {
  for (let initial = Math.min(Math.max(pages, MIN_PAGES), MAX_PAGES); ; initial = Math.max(MIN_PAGES, initial >> 1)) {
    try {
      return new WebAssembly.Memory({ initial, maximum: MAX_PAGES });
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      if (initial === MIN_PAGES) {
        throw new RangeError(
          `ema-wasm: this JavaScript engine refused to create a WebAssembly memory of ${MIN_PAGES * PAGE_BYTES} bytes ` +
            `(${error.message}); the process may be out of memory or address space`,
        );
      }
    }
  }
}

/**
 * A fresh instance of a compiled build, initialised and ready for calls, with
 * a memory of at least `expectedBytes` (the module imports its memory).
 *
 * Sizing memory up front matters beyond saving a few copies: growing it
 * detaches the old ArrayBuffer, and the first detach in a V8 isolate turns
 * every typed-array loop in it into a slower form for good (~1.6x), including
 * the user's own training loop. Untouched pages cost no physical memory.
 */
export function instantiate(module, expectedBytes = 0) {
  const memory = createMemory(pagesFor(expectedBytes));
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      // Views are re-made lazily when the buffer changes (WasmCore.heapF32),
      // so there is nothing to do when memory grows.
      emscripten_notify_memory_growth() {},
    },
  });
  instance.exports._initialize();
  return { exports: instance.exports, memory, module };
}
