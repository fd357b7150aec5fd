// The deterministic inputs of the bundler check. This file is copied into
// every test app as is, and the Node test imports it too, so both sides see
// the very same float32 values without shipping any numbers around.
// No imports: it must run unchanged in Node, in a page and in a worker.

export const DECAY = 0.999;
export const UPDATES = 5;
export const PARAM_LENGTHS = { 'layer.w': 1000, 'layer.b': 37 };

/**
 * The parameters at a given step (0: the initial weights, 1..UPDATES: the
 * weights passed to each update), as { name: Float32Array }. A 32-bit LCG
 * (Numerical Recipes constants) seeded per step and per name keeps every
 * value reproducible; values land in [-2, 2).
 */
export function paramsAt(step) {
  const params = {};
  let nameIndex = 0;
  for (const [name, length] of Object.entries(PARAM_LENGTHS)) {
    let state = (0x9e3779b9 ^ Math.imul(step + 1, 0x85ebca6b) ^ Math.imul(nameIndex + 1, 0xc2b2ae35)) >>> 0;
    const values = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      values[i] = (state / 2 ** 32 - 0.5) * 4;
    }
    params[name] = values;
    nameIndex++;
  }
  return params;
}

/** The bits of a float32 array as plain numbers (what the report carries). */
export function float32Bits(values) {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}
