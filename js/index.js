// ema-wasm: an exponential moving average of model weights, LitEma-exact in
// float32, computed by a C core compiled to WebAssembly (SIMD128 where the
// runtime has it, scalar otherwise).
export { createEma, Ema, loadEma } from './ema.js';
export { BaseEma } from './base-ema.js';
export { ResidentEma } from './resident-ema.js';
export { hasWasmSimd } from './loader.js';
export { shadowKey } from './names.js';
export { readMetadata } from './state.js';
export { reconstruct } from './posthoc.js';
export { readSnapshot, snapshotName } from './snapshots.js';
