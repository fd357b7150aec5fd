// How a variant is timed. The machine this was written on has 2 cores and is
// a shared VM, so noise decides the design:
//
// - Variants are timed in many short interleaved rounds, a few operations of
//   each per round with the order rotating, so a burst of load slows all of
//   them alike.
// - On the models that fit in cache each block starts with two untimed
//   operations so its own data is back in cache (after one, the first timed
//   operation is still measurably slower); the plans are in models.mjs.
// - Workers and the native child process run only while the main thread
//   waits for them, and TF.js is timed in a second phase, in workers started
//   only then (see bench/compare.mjs), so its garbage and background GC
//   cannot disturb the other rows.
// - The numbers are medians (and minimums) of the timed operations after
//   warm-up; expect +-15% between runs on a shared VM.

import { performance } from 'node:perf_hooks';

let sink = 0; // keeps results alive so no call can be dropped

/** What the timed operations returned, summed: print it if not finite, so it is used. */
export function consumedResults() {
  return sink;
}

/**
 * `warmup` untimed then `reps` timed calls of op; `touch(iteration)` runs
 * before each one, outside timing (counter.next numbers the calls across
 * blocks, so every call sees different weights). Returns the samples in ms.
 */
export function timeOps(op, touch, warmup, reps, counter) {
  for (let i = 0; i < warmup; i++) {
    touch?.(counter.next++);
    sink += op() ?? 0;
  }
  const samples = [];
  for (let i = 0; i < reps; i++) {
    touch?.(counter.next++);
    const start = performance.now();
    const result = op();
    samples.push(performance.now() - start);
    sink += result ?? 0;
  }
  return samples;
}

/**
 * Warms every variant up (JIT tiers, Wasm tier-up, page faults), the last
 * warm-up operation timed to size the variant's blocks (about plan.blockMs),
 * then times them in interleaved rounds with the order rotating.
 *
 * Each of `timed` is { run(warmup, reps) -> Promise<samples>, samples: [] };
 * the samples are appended to variant.samples.
 */
export async function timeInterleaved(timed, plan, rounds) {
  for (const variant of timed) {
    const [estimate] = await variant.run(plan.warmup, 1);
    variant.reps = Math.max(1, Math.min(plan.repsPerRound, Math.floor(plan.blockMs / Math.max(estimate, 1e-3))));
  }
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < timed.length; k++) {
      const variant = timed[(round + k) % timed.length]; // rotate who goes first
      variant.samples.push(...(await variant.run(plan.blockWarmup, variant.reps)));
    }
  }
}

export function median(sorted) {
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
