// The rows of the benchmark, in the order the table and results.json list
// them. The id is what results.json and scripts/readme-perf.mjs know a row
// by.
//
// bytes: bytes moved per parameter (update: read param, read shadow, write
// shadow; copy: read, write), for GB/s. ref: the row this one is compared
// with (time ratio median / ref median, times refScale). jsLoop: show the
// speedup over the plain JS loop.

export const VARIANTS = [
  { id: 'simd', label: 'ema-wasm update(params), SIMD', bytes: 12, ref: 'nativeCopyin', jsLoop: true },
  { id: 'scalar', label: 'ema-wasm update(params), scalar', bytes: 12, ref: 'nativeCopyin', jsLoop: true },
  { id: 'resident', label: 'ema-wasm resident update(), SIMD', bytes: 12, ref: 'nativeDirect', jsLoop: true },
  { id: 'nativeCopyin', label: 'native C: copy-in + update', bytes: 12, ref: 'nativeDirect', jsLoop: true },
  { id: 'nativeDirect', label: 'native C: update alone', bytes: 12, jsLoop: true },
  { id: 'jsLoop', label: 'plain JS loop', bytes: 12, jsLoop: true },
  { id: 'jsLoopDetached', label: 'plain JS loop (detached isolate)', bytes: 12, ref: 'jsLoop', jsLoop: true },
  { id: 'tfjsCpuIdiomatic', label: 'TF.js cpu, idiomatic ops', bytes: 12, jsLoop: true },
  { id: 'tfjsCpuAdapter', label: 'TF.js cpu, ema-wasm adapter', bytes: 12, ref: 'tfjsCpuIdiomatic', jsLoop: true },
  { id: 'tfjsWasmIdiomatic', label: 'TF.js wasm, idiomatic ops', bytes: 12, jsLoop: true },
  { id: 'tfjsWasmAdapter', label: 'TF.js wasm, ema-wasm adapter', bytes: 12, ref: 'tfjsWasmIdiomatic', jsLoop: true },
  { id: 'copyTo', label: 'ema-wasm copyTo(params), SIMD', bytes: 8, ref: 'set' },
  { id: 'storeRestore', label: 'ema-wasm store+restore(params), SIMD', bytes: 16, ref: 'set', refScale: 2 },
  { id: 'residentCopyTo', label: 'ema-wasm resident copyTo(), SIMD', bytes: 8, ref: 'set' },
  { id: 'residentStoreRestore', label: 'ema-wasm resident store()+restore()', bytes: 16, ref: 'set', refScale: 2 },
  { id: 'set', label: 'TypedArray.set (copy floor)', bytes: 8, ref: 'nativeMemcpy' },
  { id: 'nativeMemcpy', label: 'native C: memcpy', bytes: 8 },
];

export const VARIANT = new Map(VARIANTS.map((variant) => [variant.id, variant]));

const ORDER = new Map(VARIANTS.map((variant, index) => [variant.id, index]));

/** Sorts objects with an `id` (or `variant`) into the rows' order, in place. */
export function inVariantOrder(items, idOf = (item) => item.id) {
  return items.sort((a, b) => ORDER.get(idOf(a)) - ORDER.get(idOf(b)));
}
