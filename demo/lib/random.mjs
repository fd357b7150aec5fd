// A small seeded PRNG, so every run with the same --seed sees the same data,
// the same initial weights and the same minibatch order.

/**
 * mulberry32: 32 bits of state, fast, and good enough to shuffle data and
 * draw noise. Returns a function giving uniform floats in [0, 1).
 */
export function seededUniform(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A generator with the draws the demo needs. `stream` picks an independent
 * sequence for the same seed, so that changing how much data is drawn does
 * not shift the weight initialisation or the minibatch order.
 */
export function createRandom(seed, stream) {
  // Mix the stream id in with a large odd constant so nearby streams differ.
  const uniform = seededUniform((seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0);
  return {
    uniform,
    /** A standard normal sample (Box-Muller; 1 - u avoids log(0)). */
    normal() {
      const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
      return radius * Math.cos(2 * Math.PI * uniform());
    },
    /** A uniform integer in [0, limit). */
    integer(limit) {
      return Math.floor(uniform() * limit);
    },
    /** Shuffles `array` in place (Fisher-Yates). */
    shuffle(array) {
      for (let i = array.length - 1; i > 0; i--) {
        const j = Math.floor(uniform() * (i + 1));
        [array[i], array[j]] = [array[j], array[i]];
      }
      return array;
    },
  };
}
