// Post-hoc EMA (Karras et al. 2024, "Analyzing and Improving the Training
// Dynamics of Diffusion Models", Section 3) on the demo's model: while it
// trains, a power-function EMA with two profiles (sigma_rel 0.05 and 0.10,
// as EDM2) runs next to the LitEma one, and every few steps (100 by
// default) both profiles are saved as snapshots; after training, the
// snapshots are read back and the EMA of any sigma_rel is reconstructed from
// them, without training again, and evaluated on the test set.

import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { createTfjsEma } from '../../js/adapters/tfjs.js';
import { reconstruct } from '../../js/index.js';
import { readSnapshots, writeSnapshots } from '../../js/node.js';
import { lowestLoss, TRACKED_SIGMA_RELS, withWeights } from '../lib/posthoc.mjs';
import { tf } from './backend.mjs';
import { evaluate } from './model.mjs';

// What writeSnapshots names its files (snapshotName(step, profile)): only
// these are removed from the folder before a run, never anything else.
const SNAPSHOT_FILE = /^ema-snapshot-\d+-profile-\d+\.safetensors$/;

/** Removes the snapshots an earlier run left in `folder`; returns how many. */
async function removeStaleSnapshots(folder) {
  let names;
  try {
    names = await readdir(folder);
  } catch (error) {
    if (error.code === 'ENOENT') return 0;
    throw error;
  }
  const stale = names.filter((name) => SNAPSHOT_FILE.test(name));
  for (const name of stale) await unlink(join(folder, name));
  return stale.length;
}

/**
 * The power EMA of `model` and its snapshots: afterStep(step) updates it
 * after the optimizer's step and, every `snapshotEvery` steps and at
 * `lastStep`, writes a snapshot of each profile into `folder` (in `dtype`,
 * 'float16' or 'float32'). Stale snapshots are removed first. Counts the
 * time spent in update() and in taking and writing snapshots.
 */
export async function createPosthocTracker(model, { folder, snapshotEvery, lastStep, dtype }) {
  const removed = await removeStaleSnapshots(folder);
  const ema = await createTfjsEma(model, { recipe: 'power', sigmaRel: [...TRACKED_SIGMA_RELS], tf });
  const totals = { updateMilliseconds: 0, snapshotMilliseconds: 0, files: 0, bytes: 0 };
  return {
    ema,
    removed,
    totals,
    async afterStep(step) {
      const before = performance.now();
      ema.update();
      const updated = performance.now();
      totals.updateMilliseconds += updated - before;
      if (step % snapshotEvery !== 0 && step !== lastStep) return;
      const snapshots = ema.snapshot({ dtype });
      await writeSnapshots(folder, snapshots);
      totals.snapshotMilliseconds += performance.now() - updated;
      totals.files += snapshots.length;
      totals.bytes += snapshots.reduce((sum, snapshot) => sum + snapshot.bytes.byteLength, 0);
    },
    dispose() {
      ema.dispose();
    },
  };
}

/**
 * The sweep: reads the snapshots in `folder` back, reconstructs the EMA of
 * each sigma_rel in `sigmaRels` at the last snapshot's time, and evaluates
 * it on `test`. Also evaluates the raw weights and the tracked profiles as
 * they stand at the end of training (the reconstruction of a tracked
 * profile should match them, up to the snapshots' rounding).
 * onRead(snapshots) is called once they are read, onRow(row, raw) after
 * each row. Returns { snapshots, raw, tracked, rows, best, milliseconds:
 * { read, reconstruct, evaluate } }.
 */
export async function sweepPosthoc({ model, tracker, folder, sigmaRels, test, onRead, onRow }) {
  const readStart = performance.now();
  const snapshots = await readSnapshots(folder);
  const milliseconds = { read: performance.now() - readStart, reconstruct: 0, evaluate: 0 };
  onRead?.(snapshots);

  const raw = evaluate(model, test);
  const tracked = [];
  for (const [profile, { sigmaRel }] of tracker.ema.profiles.entries()) {
    tracked.push({ profile, sigmaRel, ...(await tracker.ema.withEma(async () => evaluate(model, test), { profile })) });
  }

  const rows = [];
  for (const sigmaRel of sigmaRels) {
    const reconstructStart = performance.now();
    // warn: false: the row shows the warning itself.
    const result = await reconstruct(snapshots, { sigmaRel, warn: false });
    const evaluateStart = performance.now();
    const metrics = withWeights(tf, model, result.weights, () => evaluate(model, test));
    milliseconds.reconstruct += evaluateStart - reconstructStart;
    milliseconds.evaluate += performance.now() - evaluateStart;
    const row = {
      sigmaRel,
      gamma: result.gamma,
      at: result.at,
      ...metrics,
      conditionNumber: result.conditionNumber,
      amplification: result.amplification,
      warning: result.warning,
      tracked: TRACKED_SIGMA_RELS.includes(sigmaRel),
    };
    rows.push(row);
    onRow?.(row, raw);
  }
  return { snapshots, raw, tracked, rows, best: lowestLoss(rows), milliseconds };
}
