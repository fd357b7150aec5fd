// Chooses and compiles the WebAssembly module an EMA runs (instances are
// made by boundary.js).
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

import { buildOf, markSharedMemory } from './boundary.js';
import { instantiationError, moduleFromSource, policyHint } from './wasm-source.js';
import { wasmBase64 as scalarBase64 } from './wasm/ema-scalar.js';
import { wasmBase64 as simdBase64 } from './wasm/ema-simd.js';
import { wasmBase64 as threadsBase64 } from './wasm/ema-threads.js';

const BUILT_IN_BASE64 = { simd: simdBase64, scalar: scalarBase64, threads: threadsBase64 };

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

/** The compiled module of one built-in build ('simd', 'scalar' or 'threads'), compiled once. */
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

// Which build a handed-over module is, asked once per module.
const buildOfModule = new WeakMap();

function rememberedBuildOf(module) {
  let build = buildOfModule.get(module);
  if (build === undefined) {
    build = buildOf(module);
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
    build = rememberedBuildOf(module);
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

/**
 * The threads build (SIMD128 over a shared memory), compiled once; the
 * caller has checked that the runtime can run it (threads.js).
 */
export async function loadThreadsModule(method) {
  try {
    const module = await compileBuiltIn('threads');
    markSharedMemory(module);
    return module;
  } catch (error) {
    throw new Error(
      `ema-wasm: ${method}: compiling the built-in threads module failed (${error.message}). ` +
        (policyHint(error) ?? 'The JavaScript engine may be out of memory.'),
      { cause: error },
    );
  }
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

