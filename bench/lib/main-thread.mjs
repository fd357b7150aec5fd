// The variants timed on the main thread: ema-wasm (the SIMD and the scalar
// build, and resident mode) and the copy floor it is compared with,
// TypedArray.prototype.set. The main thread's isolate has detached buffers
// (Wasm memory grows), as an app using ema-wasm has; see worker.mjs for why
// the JS loop runs elsewhere.

import { performance } from 'node:perf_hooks';

import { createEma } from '../../js/index.js';
import { copyWithSet } from './baselines.mjs';
import { DECAY } from './models.mjs';
import { touchArrays } from './params.mjs';
import { timeOps } from './timing.mjs';

/**
 * The ema-wasm EMAs of one model: the SIMD and the scalar build, and the
 * resident mode, which is null (with a note) when it cannot be created, so
 * that the other rows still run. All on one thread (threads: 1): these rows
 * compare the single-threaded builds; the threads section (threads.mjs)
 * compares threads.
 */
export async function createEmas(model, params, notes) {
  const simd = await createEma(params, { decay: DECAY, simd: true, threads: 1 });
  const scalar = await createEma(params, { decay: DECAY, simd: false, threads: 1 });
  if (!simd.simd || scalar.simd) throw new Error('expected the SIMD and the scalar build');
  let resident = null;
  try {
    resident = await createEma(params, { decay: DECAY, simd: true, resident: true, threads: 1 });
    if (typeof resident.param !== 'function') throw new Error('no ema.param()');
  } catch (error) {
    resident = null;
    notes.push(`${model.key}: resident rows skipped: createEma(params, { resident: true }) failed (${error.message})`);
  }
  return {
    simd,
    scalar,
    resident,
    /** The resident EMA's weights, as the views a training loop writes into. */
    residentViews: () => params.map((p) => resident.param(p.name)),
    dispose() {
      for (const ema of [simd, scalar, resident]) ema?.dispose();
    },
  };
}

/**
 * Store then restore, timed as one operation and, for the legend, each half
 * on its own; warm-up operations are not recorded in `split`.
 */
function storeRestoreRun(ema, args, split, counter) {
  let timing = false;
  const op = () => {
    const a = performance.now();
    ema.store(...args);
    const b = performance.now();
    ema.restore(...args);
    if (timing) {
      split.store.push(b - a);
      split.restore.push(performance.now() - b);
    }
  };
  return async (warmup, reps) => {
    timeOps(op, null, warmup, 0, counter);
    timing = true;
    const samples = timeOps(op, null, 0, reps, counter);
    timing = false;
    return samples;
  };
}

/**
 * Each main-thread variant's run(warmup, reps) for timeInterleaved(), by
 * variant id, and the store/restore halves of the store+restore rows
 * (variant id -> { store: [], restore: [] }, samples in ms).
 */
export function mainThreadRuns(emas, params) {
  const { simd, scalar, resident } = emas;
  const arrays = params.map((p) => p.data);
  const targets = params.map(({ name, data }) => ({ name, data: new Float32Array(data.length) }));
  const copies = params.map(({ data }) => new Float32Array(data.length));
  const counter = { next: 0 };
  const touch = (i) => touchArrays(arrays, i);
  const local = (op, touchFn = null) => async (warmup, reps) => timeOps(op, touchFn, warmup, reps, counter);
  const storeRestoreSplits = new Map();
  const storeRestore = (id, ema, args) => {
    const split = { store: [], restore: [] };
    storeRestoreSplits.set(id, split);
    return storeRestoreRun(ema, args, split, counter);
  };

  const runs = {
    simd: local(() => simd.update(params), touch),
    scalar: local(() => scalar.update(params), touch),
    copyTo: local(() => simd.copyTo(targets)),
    storeRestore: storeRestore('storeRestore', simd, [params]),
    set: local(() => copyWithSet(copies, arrays)),
  };
  if (resident) {
    // The resident weights start from the arrays' values, as every other
    // variant's do (verification wrote its own values into them).
    emas.residentViews().forEach((view, i) => view.set(arrays[i]));
    let views = emas.residentViews();
    const residentUpdate = local(() => resident.update(), (i) => touchArrays(views, i));
    runs.resident = async (warmup, reps) => {
      views = emas.residentViews(); // valid for the EMA's life anyway; fetched outside timing
      return residentUpdate(warmup, reps);
    };
    runs.residentCopyTo = local(() => resident.copyTo());
    runs.residentStoreRestore = storeRestore('residentStoreRestore', resident, []);
  }
  return { runs, storeRestoreSplits };
}
