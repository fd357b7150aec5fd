// Finds, compiles and instantiates the two WebAssembly builds.
//
// Each build is compiled once per process (or page) and cached; every EMA gets
// its own instance, so its arena is returned to the engine when the EMA is
// disposed and garbage collected, and no EMA can disturb another's memory.

import { MAX_PAGES, PAGE_BYTES, pagesFor } from './memory-budget.js';

const WASM_FILES = {
  simd: new URL('../dist/ema-simd.wasm', import.meta.url),
  scalar: new URL('../dist/ema-scalar.wasm', import.meta.url),
};

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

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

async function readNodeFile(url) {
  const { readFile } = await import('node:fs/promises');
  try {
    return await readFile(url);
  } catch (error) {
    throw new Error(
      `ema-wasm: cannot read ${url.pathname} (${error.code ?? error.message}). ` +
        'In a source checkout, build it first with `npm run build`.',
    );
  }
}

async function compileInBrowser(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`ema-wasm: fetching ${url} failed with HTTP ${response.status}`);
  }
  // compileStreaming insists on the application/wasm MIME type; servers that
  // send another one still work through the slower path.
  if (
    typeof WebAssembly.compileStreaming === 'function' &&
    response.headers.get('content-type')?.startsWith('application/wasm')
  ) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

const compiled = new Map();

/** The compiled module of one build ('simd' or 'scalar'), compiled once. */
export function compileBuild(build) {
  let promise = compiled.get(build);
  if (promise === undefined) {
    const url = WASM_FILES[build];
    promise = isNode
      ? readNodeFile(url).then((bytes) => WebAssembly.compile(bytes))
      : compileInBrowser(url);
    // A failed compile should not be cached: the file may appear later.
    promise.catch(() => compiled.delete(build));
    compiled.set(build, promise);
  }
  return promise;
}

/** Picks the build for a `simd` option of 'auto', true or false. */
export function chooseBuild(simd) {
  if (simd === 'auto') {
    return hasWasmSimd() ? 'simd' : 'scalar';
  }
  if (simd === true && !hasWasmSimd()) {
    throw new Error(
      'ema-wasm: options.simd is true but this runtime does not support WebAssembly SIMD; ' +
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
  return { exports: instance.exports, memory };
}
