// Shared by the JS tests: the builds to run on, a float32 reference of one
// LitEma step, and a snapshot of everything an EMA holds.
import { hasWasmSimd } from '../../js/index.js';

export const BUILDS = hasWasmSimd() ? [true, false] : [false];

export function buildName(simd) {
  return simd ? 'SIMD' : 'scalar';
}

/** LitEma's step in plain JS, every operation rounded to float32. */
export function referenceStep(shadow, param, decay) {
  const weight = Math.fround(1 - decay);
  for (let i = 0; i < shadow.length; i++) {
    shadow[i] = Math.fround(shadow[i] - Math.fround(weight * Math.fround(shadow[i] - param[i])));
  }
}

/** LitEma's warmup decay for update number n (already incremented). */
export function warmupDecay(decay, n) {
  const ratio = Math.fround(Math.fround(1 + n) / Math.fround(10 + n));
  return ratio < decay ? ratio : Math.fround(decay);
}

export function randomArray(length, seed) {
  const values = new Float32Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    values[i] = ((state >>> 0) / 2 ** 32 - 0.5) * 4;
  }
  return values;
}

/**
 * Everything observable about an EMA: its state dict, and (if something is
 * stored) what a restore would write, read without disturbing the caller.
 */
export function snapshot(ema, storedShape = null) {
  const state = [...ema.stateDict()].map(([key, value]) => [key, Array.from(value)]);
  let stored = null;
  if (storedShape !== null) {
    const targets = storedShape.map(({ name, length }) => ({ name, data: new Float32Array(length) }));
    ema.restore(targets);
    stored = targets.map(({ name, data }) => [name, Array.from(data)]);
  }
  return { state, numUpdates: ema.numUpdates, decay: ema.decay, names: ema.names, stored };
}
