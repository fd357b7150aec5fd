// The threads section of `npm run bench` (issue 13): one step of an EMA of
// 16M and 64M float32 parameters in 64 tensors, side by side in one run:
//
//   ema-wasm, single-threaded (threads: 1) and the threads build (threads:
//   'auto', all cores), copy-in (update(params)) and resident (update());
//   ema-wasm with background: true, as the training thread sees it: the
//   time update() takes when a training step ran since the last one (the
//   averaging then finishes in the workers meanwhile);
//   native C (bench/threads.c, OpenMP, 1 and all threads) and PyTorch's
//   lerp_ per tensor (bench/torch_threads.py, 1 and all threads), each a
//   child process run after the Wasm rows (lib/threads-native.mjs).
//
// Every ema-wasm variant is checked bit-identical to threads: 1 before
// anything is timed. The Wasm rows are timed in interleaved rounds
// (timing.mjs); the child processes time themselves the same way (median
// of repeated updates after warm-up) while this process waits.

import { performance } from 'node:perf_hooks';

import { createEma } from '../../js/index.js';
import { availableThreads } from '../../js/threads.js';
import { runNativeThreads, runTorchThreads } from './threads-native.mjs';
import { median, timeInterleaved, timeOps } from './timing.mjs';

export const THREAD_SIZES = [{ key: '16M', params: 16 * 1024 * 1024 }, { key: '64M', params: 64 * 1024 * 1024 }];
const TENSORS = 64;
const PLANS = {
  full: { warmup: 3, rounds: 8, repsPerRound: 3, blockWarmup: 1, blockMs: 150, repeats: 20 },
  quick: { warmup: 1, rounds: 2, repsPerRound: 2, blockWarmup: 0, blockMs: 60, repeats: 5 },
};

/** 64 tensors of `total` floats in all, with values that differ per call of `fill(step)`. */
function makeParams(total) {
  const per = total / TENSORS;
  const arrays = Array.from({ length: TENSORS }, () => new Float32Array(per));
  const fill = (step) => {
    // A cheap change per step: one value per tensor, so filling costs nothing next to the update.
    arrays.forEach((array, i) => {
      array[(step * 7919 + i) % per] = Math.sin(step + i);
    });
  };
  arrays.forEach((array, i) => {
    for (let j = 0; j < per; j += 1) array[j] = ((j * 2654435761 + i) % 1000) / 1000 - 0.5;
  });
  return { params: Object.fromEntries(arrays.map((array, i) => [`layer${i}.weight`, array])), arrays, fill };
}

/** The ema-wasm variants at one size, created and checked bit-identical to threads: 1. */
async function createVariants(total, threads) {
  const { params, arrays, fill } = makeParams(total);
  const resident = (count) => createEma(params, { threads: count, resident: true });
  const emas = {
    copyin1: await createEma(params, { threads: 1 }),
    copyinN: await createEma(params, { threads }),
    background: await createEma(params, { threads, background: true }),
    resident1: await resident(1),
    residentN: await resident(threads),
  };
  const residents = [emas.resident1, emas.residentN];
  const setResident = (ema) => arrays.forEach((array, i) => ema.param(`layer${i}.weight`).set(array));
  // Three steps of every variant, then every shadow compared with threads: 1's.
  for (let step = 1; step <= 3; step++) {
    fill(step);
    for (const id of ['copyin1', 'copyinN', 'background']) emas[id].update(params);
    for (const ema of residents) {
      setResident(ema);
      ema.update();
    }
  }
  const mismatches = [];
  for (const [id, ema] of Object.entries(emas)) {
    if (id === 'copyin1') continue;
    for (let i = 0; i < TENSORS; i++) {
      const name = `layer${i}.weight`;
      const a = new Uint32Array(emas.copyin1.shadow(name).buffer);
      const b = new Uint32Array(ema.shadow(name).buffer);
      if (a.length !== b.length || a.some((word, k) => word !== b[k])) {
        mismatches.push(`${id} ${name}`);
        break;
      }
    }
  }
  return { emas, params, fill, mismatches, dispose: () => Object.values(emas).forEach((ema) => ema.dispose()) };
}

/**
 * The background variant as the training thread sees it: before each timed
 * update() a stand-in for a training step runs on this thread (busy for
 * `trainingMs`, writing the parameters), long enough for the workers to
 * finish the previous step's averaging.
 */
function backgroundRun(ema, params, fill, trainingMs, counter) {
  return (warmup, reps) =>
    Promise.resolve(
      timeOps(() => ema.update(params).counter, (step) => {
        const until = performance.now() + trainingMs;
        while (performance.now() < until) fill(step);
      }, warmup, reps, counter),
    );
}

/** One row: label, size, threads, samples' median and minimum. */
function rowOf(size, id, label, threads, samples) {
  const sorted = samples.slice().sort((a, b) => a - b);
  return { size, id, label, threads, medianMs: median(sorted), minMs: sorted[0], samples: sorted.length };
}

/**
 * Runs the section: returns { rows, targets, notes }. `native` false skips
 * the child processes (native C and PyTorch).
 */
export async function benchThreads({ quick = false, native = true, sizes = THREAD_SIZES } = {}) {
  const plan = quick ? PLANS.quick : PLANS.full;
  const threads = availableThreads();
  const notes = [];
  const rows = [];
  if (threads < 2) notes.push('threads: this machine reports one core; the threads rows use 1 thread');
  for (const { key, params: total } of sizes) {
    const say = (text) => console.log(`[threads ${key}] ${text}`);
    const variants = await createVariants(total, Math.max(threads, 2));
    if (variants.mismatches.length > 0) {
      variants.dispose();
      throw new Error(`threads ${key}: not bit-identical to threads: 1: ${variants.mismatches.join(', ')}`);
    }
    const { emas, params, fill } = variants;
    say(`${total.toLocaleString('en-US')} params in ${TENSORS} tensors; copy-in, background and resident with ${emas.copyinN.threads} threads bit-identical to threads: 1 after 3 updates`);
    const counter = { next: 10 };
    const op = (run) => (warmup, reps) => Promise.resolve(timeOps(run, (step) => fill(step), warmup, reps, counter));
    const timed = [
      { id: 'copyin1', label: 'ema-wasm update(params), 1 thread', threads: 1, run: op(() => emas.copyin1.update(params).counter) },
      { id: 'copyinN', label: `ema-wasm update(params), ${emas.copyinN.threads} threads`, threads: emas.copyinN.threads, run: op(() => emas.copyinN.update(params).counter) },
      { id: 'resident1', label: 'ema-wasm resident update(), 1 thread', threads: 1, run: op(() => emas.resident1.update().counter) },
      { id: 'residentN', label: `ema-wasm resident update(), ${emas.residentN.threads} threads`, threads: emas.residentN.threads, run: op(() => emas.residentN.update().counter) },
    ].map((variant) => ({ ...variant, samples: [] }));
    const t0 = performance.now();
    await timeInterleaved(timed, plan, plan.rounds);
    // The background step: a training step of twice the foreground update's time.
    const foreground = median(timed[1].samples.slice().sort((a, b) => a - b));
    const background = { id: 'background', label: `ema-wasm update(params), background (${emas.background.threads - 1} worker), training thread's time`, threads: emas.background.threads, samples: [] };
    background.run = backgroundRun(emas.background, params, fill, 2 * foreground, counter);
    await timeInterleaved([background], plan, plan.rounds);
    say(`timed ${timed.length + 1} ema-wasm variants in ${plan.rounds} interleaved rounds (${((performance.now() - t0) / 1e3).toFixed(1)} s)`);
    for (const variant of [...timed, background]) rows.push(rowOf(key, variant.id, variant.label, variant.threads, variant.samples));
    variants.dispose();
  }

  if (native) {
    const threadCounts = [...new Set([1, Math.max(threads, 2)])];
    const options = { params: sizes.map(({ key }) => key), threads: threadCounts, repeats: plan.repeats };
    const nativeRows = await runNativeThreads(options);
    if (nativeRows.skipped !== undefined) notes.push(`native C rows skipped: ${nativeRows.skipped}`);
    else {
      for (const row of nativeRows) {
        const size = sizes.find(({ params }) => params === row.params)?.key;
        rows.push({ size, id: `native-${row.work}-${row.threads}`, label: `native C ${row.work === 'resident' ? 'resident' : 'copy-in'}, ${row.threads} thread${row.threads > 1 ? 's' : ''} (OpenMP)`, threads: row.threads, medianMs: row.medianMs, minMs: row.minMs, samples: row.samples });
      }
    }
    const torchRows = await runTorchThreads(options);
    if (torchRows.skipped !== undefined) notes.push(`PyTorch rows skipped: ${torchRows.skipped}`);
    else {
      for (const row of torchRows) {
        const size = sizes.find(({ params }) => params === row.params)?.key;
        rows.push({ size, id: `${row.work}-${row.threads}`, label: `PyTorch ${row.work === 'torch-lerp' ? 'lerp_ per tensor' : '_foreach_lerp_'}, ${row.threads} thread${row.threads > 1 ? 's' : ''}`, threads: row.threads, medianMs: row.medianMs, minMs: row.minMs, samples: row.samples });
      }
    }
  } else {
    notes.push('native C and PyTorch rows skipped (--no-native)');
  }
  const targets = threadTargets(rows, Math.max(threads, 2));
  printThreads(rows, targets, notes);
  return { rows, targets, notes };
}

/** The issue's three targets, per size: [{ text, checks: [{ size, ok, detail }] }]. */
export function threadTargets(rows, threads) {
  const get = (size, id) => rows.find((row) => row.size === size && row.id === id);
  const sizes = [...new Set(rows.map((row) => row.size))];
  const fmt = (x) => x.toFixed(2);
  const target = (text, check) => {
    const checks = sizes.map(check).filter((c) => c !== null);
    return { text, met: checks.length === 0 ? null : checks.every((c) => c.ok), checks };
  };
  return [
    target(`resident update() with ${threads} threads at least 1.7x faster than with 1`, (size) => {
      const [one, many] = [get(size, 'resident1'), get(size, 'residentN')];
      if (!one || !many) return null;
      const speedup = one.medianMs / many.medianMs;
      return { size, ok: speedup >= 1.7, detail: `${size}: ${fmt(one.medianMs)} / ${fmt(many.medianMs)} ms = ${fmt(speedup)}x` };
    }),
    target(`update(params) with ${threads} threads faster than PyTorch's lerp_ on ${threads} threads`, (size) => {
      const [ours, torch] = [get(size, 'copyinN'), get(size, `torch-lerp-${threads}`)];
      if (!ours || !torch) return null;
      return { size, ok: ours.medianMs < torch.medianMs, detail: `${size}: ${fmt(ours.medianMs)} vs ${fmt(torch.medianMs)} ms` };
    }),
    target('within 1.2x of native C with the same threads (copy-in and resident, 1 and all threads)', (size) => {
      const pairs = [['copyin1', 'native-copy-in-1'], ['copyinN', `native-copy-in-${threads}`], ['resident1', 'native-resident-1'], ['residentN', `native-resident-${threads}`]];
      const ratios = pairs.map(([ours, native]) => [get(size, ours), get(size, native)]).filter(([a, b]) => a && b).map(([a, b]) => [a, b, a.medianMs / b.medianMs]);
      if (ratios.length === 0) return null;
      return { size, ok: ratios.every(([, , ratio]) => ratio <= 1.2), detail: `${size}: ${ratios.map(([a, , ratio]) => `${a.id} ${fmt(ratio)}x`).join(', ')}` };
    }),
  ];
}

function printThreads(rows, targets, notes) {
  console.log('\nthreads: one EMA step (LitEma, decay 0.9999), 64 tensors; median / min ms');
  for (const size of [...new Set(rows.map((row) => row.size))]) {
    console.log(`  ${size}`);
    for (const row of rows.filter((r) => r.size === size)) {
      console.log(`    ${row.label.padEnd(78)} ${row.medianMs.toFixed(2).padStart(8)} ${row.minMs.toFixed(2).padStart(8)}`);
    }
  }
  console.log('threads targets:');
  for (const { text, met, checks } of targets) {
    console.log(`  [${met === null ? 'not measured' : met ? 'met' : 'MISSED'}] ${text}: ${checks.map((c) => c.detail).join('; ')}`);
  }
  for (const note of notes) console.log(`  note: ${note}`);
}
