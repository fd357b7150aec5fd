// The parameter values every variant works on. The workers and the native
// child process build their own copies rather than receive them (a transfer
// would detach a buffer, see worker.mjs), so the values come from a seeded
// generator: bench/native.c has the same generator, seed and mapping to
// [-1, 1), and the same touch rule.

import { paramCount, sizeOf } from './models.mjs';

export function seedOf(spec) {
  return (0x9e3779b9 ^ paramCount(spec) ^ (spec.length << 20)) >>> 0 || 1;
}

/** xorshift32, mapped to [-1, 1) exactly as in bench/native.c. */
export function makeRandom(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state >>> 8) / 8388608 - 1;
  };
}

export function fillRandom(arrays, random) {
  for (const data of arrays) {
    for (let i = 0; i < data.length; i++) data[i] = random();
  }
}

/**
 * The model's parameters, filled from a fresh generator; returns both (the
 * verification draws the next steps' values from the same generator).
 */
export function makeParams(spec) {
  const random = makeRandom(seedOf(spec));
  const params = spec.map(({ name, shape }) => ({ name, shape, data: new Float32Array(sizeOf(shape)) }));
  fillRandom(params.map((p) => p.data), random);
  return { params, random };
}

/**
 * One element of every tensor moves before each timed operation, as a
 * training step would change the weights, so nothing can treat two steps as
 * the same work. Same rule in bench/native.c.
 */
export function touchArrays(arrays, iteration) {
  for (const data of arrays) {
    if (data.length === 0) continue;
    const index = (iteration * 7919) % data.length;
    data[index] = Math.fround(data[index] + 1 / 1024);
  }
}
