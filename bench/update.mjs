// Benchmark of one EMA step (`ema.update(params)`): the SIMD128 build, the
// scalar build, and the plain JavaScript loop a user would write instead, over
// the same parameter values, side by side in one run.
//
//   node bench/update.mjs                 full run (15 timed updates at 16M, 50 at 1M)
//   node bench/update.mjs --quick         fewer repetitions, for a smoke test
//   node bench/update.mjs --json out.json also write the results as JSON
//
// Every model is checked outside timing: all variants must give bit-identical
// shadows after the same updates, or the run exits with code 1 (a fast wrong
// answer is not a result worth printing).
//
// Two things shape this file:
//
// 1. Where the JS loop runs. V8 compiles typed-array loops with fewer checks
//    while no ArrayBuffer in the isolate has ever been detached. The first
//    detach (a buffer transferred to a worker, or any WebAssembly memory.grow,
//    which createEma's arena allocation does) switches every such loop in that
//    isolate to a slower form for good: about 1.6x slower on the loop below.
//    A user who writes the loop instead of using this package has no such
//    detach, so the baseline JS loop runs in a worker thread (its own isolate,
//    on its own copy of the same parameter values) where no Wasm ever runs.
//    The same loop is also timed on the main thread, after createEma, as
//    'js loop (detached)': that is what apps that already use Wasm or
//    transfer buffers get.
//
// 2. Noise. The variants are timed in interleaved rounds (a few updates of
//    each variant per round, order rotating) rather than one after the other,
//    so a burst of load from other processes slows all of them alike instead
//    of skewing their ratio. Each block starts with one untimed update so the
//    variant's own data is back in cache, as it would be after a warmup.

import { writeFileSync } from 'node:fs';
import os from 'node:os';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import { createEma, hasWasmSimd } from '../js/index.js';

// ---- configuration ---------------------------------------------------------

const USAGE = 'usage: node bench/update.mjs [--quick] [--json FILE]';

// The two model shapes asked for: many mid-sized tensors, as in a real network.
// 16M floats is 64 MB per copy, far beyond any cache, so that model measures
// memory bandwidth; 1M (4 MB per copy) may partly live in the last-level cache.
// Timed updates per variant = rounds * repsPerRound.
const MODELS = [
  {
    label: '16M',
    totalParams: 16_777_216,
    tensorCount: 64,
    full: { warmup: 3, rounds: 5, repsPerRound: 3 },
    quick: { warmup: 2, rounds: 2, repsPerRound: 3 },
  },
  {
    label: '1M',
    totalParams: 1_048_576,
    tensorCount: 8,
    full: { warmup: 5, rounds: 5, repsPerRound: 10 },
    quick: { warmup: 2, rounds: 2, repsPerRound: 5 },
  },
];

// LitEma's defaults: warmup on, so the JS loop has to do the same per-step
// decay arithmetic the C core does.
const EMA_OPTIONS = { decay: 0.9999, useNumUpdates: true };

// Steps run on every variant before timing, to compare their shadows bit for bit.
const VERIFY_STEPS = 3;

// read param + read shadow + write shadow, 4 bytes each.
const BYTES_PER_ELEMENT_MOVED = 12;

const BASELINE = 'js loop';

// ---- the plain JavaScript baseline -----------------------------------------

/**
 * What a user would write without this package: LitEma's step as a loop per
 * tensor, every operation rounded to float32 with Math.fround so the result
 * is the same as PyTorch's (and the C core's).
 */
class JsLoopEma {
  constructor(params, { decay, useNumUpdates }) {
    this.decay = Math.fround(decay); // LitEma stores decay as a float32 buffer
    this.numUpdates = useNumUpdates ? 0 : -1;
    this.shadows = params.map(({ data }) => Float32Array.from(data));
  }

  update(params) {
    // Warmup, once per step: decay = min(decay, (1 + n) / (10 + n)) in float32.
    let decay = this.decay;
    if (this.numUpdates >= 0) {
      this.numUpdates += 1;
      const n = this.numUpdates;
      const ratio = Math.fround(Math.fround(1 + n) / Math.fround(10 + n));
      if (ratio < decay) decay = ratio;
    }
    const w = Math.fround(1 - decay);

    for (let t = 0; t < params.length; t++) {
      const p = params[t].data;
      const s = this.shadows[t];
      for (let i = 0; i < s.length; i++) {
        s[i] = Math.fround(s[i] - Math.fround(w * Math.fround(s[i] - p[i])));
      }
    }
    return decay;
  }

  shadow(slot) {
    return this.shadows[slot];
  }

  dispose() {
    this.shadows = null;
  }
}

// ---- model data ------------------------------------------------------------

/** A tiny seeded generator (xorshift32): both threads build the same values. */
function makeRandom(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state >>> 8) / 8388608 - 1; // 24 random bits -> [-1, 1)
  };
}

function seedOf(model) {
  return 0x9e3779b9 ^ model.totalParams;
}

function fillRandom(params, random) {
  for (const { data } of params) {
    for (let i = 0; i < data.length; i++) data[i] = random();
  }
}

function makeModel({ totalParams, tensorCount }, random) {
  const perTensor = totalParams / tensorCount;
  if (!Number.isInteger(perTensor)) throw new Error('model size must split evenly into tensors');
  const params = [];
  for (let t = 0; t < tensorCount; t++) {
    params.push({ name: `layers.${t}.weight`, data: new Float32Array(perTensor) });
  }
  fillRandom(params, random);
  return params;
}

/**
 * Changes one element of every tensor, as a training step would change the
 * weights, so no layer (JIT, cache of results) can treat two steps as the same
 * work. 64 stores: nothing next to an update of millions of elements.
 */
function touchParams(params, iteration) {
  for (const { data } of params) {
    const index = (iteration * 7919) % data.length;
    data[index] = Math.fround(data[index] + 1 / 1024);
  }
}

/**
 * The verification sequence, run identically on both threads: fully
 * re-randomized params before every step (so every element's shadow really
 * moves), one update per step. Returns the decay of each step for each variant.
 */
function runVerifySteps(emas, params, random) {
  const decays = emas.map(() => []);
  for (let step = 0; step < VERIFY_STEPS; step++) {
    fillRandom(params, random);
    emas.forEach((ema, index) => decays[index].push(ema.update(params)));
  }
  return decays;
}

// ---- timing ----------------------------------------------------------------

let sink = 0; // keeps the returned decays alive so the calls cannot be dropped

/**
 * `warmup` untimed updates, then `reps` timed ones; params change a little
 * before every update (outside the timed region). `iteration` keeps the
 * touched elements moving from one block to the next.
 */
function timeUpdates(ema, params, warmup, reps, iteration) {
  for (let i = 0; i < warmup; i++) {
    touchParams(params, iteration++);
    sink += ema.update(params);
  }
  const samples = [];
  for (let i = 0; i < reps; i++) {
    touchParams(params, iteration++);
    const start = performance.now();
    sink += ema.update(params);
    samples.push(performance.now() - start);
  }
  return samples;
}

// ---- the worker: the JS loop in an isolate that never saw a detach ----------

function workerMain() {
  const { model } = workerData;
  const random = makeRandom(seedOf(model));
  const params = makeModel(model, random); // same values as the main thread's
  const jsEma = new JsLoopEma(params, EMA_OPTIONS);
  let iteration = 0;

  parentPort.on('message', (message) => {
    if (message.type === 'verify') {
      const [decays] = runVerifySteps([jsEma], params, random);
      // Copies, not transfers: a transfer would detach, which is what this
      // isolate exists to avoid.
      parentPort.postMessage({ decays, shadows: jsEma.shadows });
    } else if (message.type === 'time') {
      const samples = timeUpdates(jsEma, params, message.warmup, message.reps, iteration);
      iteration += message.warmup + message.reps;
      parentPort.postMessage({ samples, sink });
    }
  });
  parentPort.postMessage({ ready: true });
}

/** The worker seen from the main thread: one request, one reply, in order. */
class CleanJsLoop {
  constructor(model) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { model: { ...model } } });
    this.pending = null;
    this.worker.on('message', (reply) => this.#settle((pending) => pending.resolve(reply)));
    this.worker.on('error', (error) => this.#settle((pending) => pending.reject(error)));
    this.worker.on('exit', (code) =>
      this.#settle((pending) => pending.reject(new Error(`JS loop worker exited (code ${code}) before replying`))),
    );
    this.ready = this.#next();
  }

  #settle(action) {
    const pending = this.pending;
    this.pending = null;
    if (pending !== null) action(pending);
  }

  #next() {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }

  request(message) {
    const reply = this.#next();
    this.worker.postMessage(message);
    return reply;
  }

  async timeUpdates(warmup, reps) {
    return (await this.request({ type: 'time', warmup, reps })).samples;
  }

  dispose() {
    return this.worker.terminate();
  }
}

// ---- verification ----------------------------------------------------------

function sameBits(a, b) {
  if (a.length !== b.length) return false;
  // Compare the bit patterns, not the numbers: -0 vs 0 or two NaNs must count.
  const aBits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const bBits = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < aBits.length; i++) {
    if (aBits[i] !== bBits[i]) return false;
  }
  return true;
}

/**
 * Runs the verification steps on the main-thread variants and on the worker,
 * then compares every decay and every shadow with the SIMD build's.
 * Returns a failure message or null.
 */
async function verifyIdentical(variants, cleanJs, params, random) {
  const localDecays = runVerifySteps(
    variants.map((variant) => variant.ema),
    params,
    random,
  );
  const remote = await cleanJs.request({ type: 'verify' });

  const results = [
    ...variants.map((variant, index) => ({
      name: variant.name,
      decays: localDecays[index],
      shadow: (slot) => (variant.kind === 'js' ? variant.ema.shadow(slot) : variant.ema.shadow(params[slot].name)),
    })),
    { name: BASELINE, decays: remote.decays, shadow: (slot) => remote.shadows[slot] },
  ];
  const [reference, ...others] = results;
  for (const other of others) {
    for (let step = 0; step < VERIFY_STEPS; step++) {
      if (!Object.is(other.decays[step], reference.decays[step])) {
        return `step ${step + 1}: ${other.name} used decay ${other.decays[step]}, ${reference.name} ${reference.decays[step]}`;
      }
    }
    for (let slot = 0; slot < params.length; slot++) {
      if (!sameBits(reference.shadow(slot), other.shadow(slot))) {
        return `shadow of '${params[slot].name}' differs between ${reference.name} and ${other.name}`;
      }
    }
  }
  return null;
}

// ---- one model -------------------------------------------------------------

function median(sorted) {
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function summarize(model, variant, samples, plan) {
  const sorted = samples.slice().sort((a, b) => a - b);
  const medianMs = median(sorted);
  return {
    model: model.label,
    params: model.totalParams,
    tensors: model.tensorCount,
    variant,
    warmup: plan.warmup,
    reps: samples.length,
    medianMs,
    minMs: sorted[0],
    mParamsPerSecond: model.totalParams / (medianMs / 1e3) / 1e6,
    gbPerSecond: (model.totalParams * BYTES_PER_ELEMENT_MOVED) / (medianMs / 1e3) / 1e9,
    samplesMs: samples,
  };
}

async function benchModel(model, quick) {
  const plan = quick ? model.quick : model.full;
  const random = makeRandom(seedOf(model));
  const params = makeModel(model, random);

  // Started first: it builds its own copy of the same values meanwhile.
  const cleanJs = new CleanJsLoop(model);
  // All main-thread variants start from the same params, so their shadows start equal.
  const variants = [
    { name: 'wasm simd', kind: 'simd', ema: await createEma(params, { ...EMA_OPTIONS, simd: true }) },
    { name: 'wasm scalar', kind: 'scalar', ema: await createEma(params, { ...EMA_OPTIONS, simd: false }) },
    { name: 'js loop (detached)', kind: 'js', ema: new JsLoopEma(params, EMA_OPTIONS) },
  ];
  if (!variants[0].ema.simd || variants[1].ema.simd) {
    throw new Error('expected the SIMD and the scalar build; got something else');
  }
  await cleanJs.ready;

  const failure = await verifyIdentical(variants, cleanJs, params, random);
  if (failure !== null) {
    console.log(`model ${model.label}: bit-identical: NO (${failure})`);
    await cleanJs.dispose();
    process.exit(1);
  }

  // One timing interface for all four; the worker's runs in its own thread,
  // but only while the main thread waits for it, never concurrently.
  let iteration = 0;
  const timed = [
    ...variants.map((variant) => ({
      name: variant.name,
      run: async (warmup, reps) => {
        const samples = timeUpdates(variant.ema, params, warmup, reps, iteration);
        iteration += warmup + reps;
        return samples;
      },
    })),
    { name: BASELINE, run: (warmup, reps) => cleanJs.timeUpdates(warmup, reps) },
  ];
  const samples = new Map(timed.map(({ name }) => [name, []]));

  // Warm every variant up (JIT tiers, Wasm tier-up, page faults) before any timing.
  for (const variant of timed) await variant.run(plan.warmup, 0);
  for (let round = 0; round < plan.rounds; round++) {
    for (let k = 0; k < timed.length; k++) {
      const variant = timed[(round + k) % timed.length]; // rotate who goes first
      samples.get(variant.name).push(...(await variant.run(1, plan.repsPerRound)));
    }
  }

  for (const variant of variants) variant.ema.dispose();
  await cleanJs.dispose();

  const order = ['wasm simd', 'wasm scalar', BASELINE, 'js loop (detached)'];
  const rows = order.map((name) => summarize(model, name, samples.get(name), plan));
  const baselineMs = rows.find((row) => row.variant === BASELINE).medianMs;
  for (const row of rows) row.speedupVsJs = baselineMs / row.medianMs;
  return rows;
}

// ---- output ----------------------------------------------------------------

function printTable(rows) {
  const header = ['model', 'variant', 'median ms', 'min ms', 'M params/s', 'GB/s', 'vs js loop'];
  const lines = rows.map((row) => [
    `${row.model} (${row.tensors} tensors)`,
    row.variant,
    row.medianMs.toFixed(2),
    row.minMs.toFixed(2),
    row.mParamsPerSecond.toFixed(0),
    row.gbPerSecond.toFixed(2),
    `${row.speedupVsJs.toFixed(2)}x`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  // Text columns left-aligned, numbers right-aligned.
  const format = (cells) =>
    cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  console.log(format(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  rows.forEach((row, index) => {
    if (index > 0 && row.model !== rows[index - 1].model) console.log('');
    console.log(format(lines[index]));
  });
}

function parseArgs(argv) {
  const options = { quick: false, jsonPath: null };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    if (arg === '--quick') {
      options.quick = true;
    } else if (arg === '--json') {
      const path = argv[++index];
      if (path === undefined || path.startsWith('--')) throw new Error(`--json needs a file name\n${USAGE}`);
      options.jsonPath = path;
    } else if (arg.startsWith('--json=')) {
      options.jsonPath = arg.slice('--json='.length);
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      throw new Error(`unknown argument '${arg}'\n${USAGE}`);
    }
  }
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const cpus = os.cpus();
  const environment = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    platform: `${process.platform} ${process.arch}`,
    wasmSimd: hasWasmSimd(),
    quick: options.quick,
  };
  console.log('ema-wasm update benchmark');
  console.log(`date:  ${environment.date}`);
  console.log(`node:  ${environment.node} (V8 ${environment.v8}), ${environment.platform}`);
  console.log(`cpu:   ${environment.cpu}, ${environment.cores} cores`);
  console.log(
    `mode:  ${options.quick ? 'quick' : 'full'}; decay ${EMA_OPTIONS.decay} with warmup; ` +
      `${BYTES_PER_ELEMENT_MOVED} bytes moved per element`,
  );
  console.log('');
  if (!environment.wasmSimd) {
    throw new Error('this runtime has no WebAssembly SIMD; the benchmark compares the SIMD build');
  }

  const rows = [];
  for (const model of MODELS) {
    const modelRows = await benchModel(model, options.quick);
    const plan = options.quick ? model.quick : model.full;
    console.log(
      `model ${model.label}: ${model.totalParams} params in ${model.tensorCount} tensors; ` +
        `${plan.warmup} warmup, then ${plan.rounds} rounds x ${plan.repsPerRound} timed updates per variant`,
    );
    rows.push(...modelRows);
  }
  console.log('bit-identical: yes (wasm simd, wasm scalar, js loop; every model, after the same updates)');
  console.log('');
  printTable(rows);
  console.log('');
  console.log(`'${BASELINE}' runs in a worker whose isolate never detached an ArrayBuffer (a user without`);
  console.log("this package); 'js loop (detached)' is the same loop on the main thread after createEma grew");
  console.log('Wasm memory, which makes V8 slow down typed-array loops (see the top of bench/update.mjs).');

  if (options.jsonPath !== null) {
    const json = {
      ...environment,
      bitIdentical: true,
      bytesPerElement: BYTES_PER_ELEMENT_MOVED,
      speedupBaseline: `${BASELINE} (worker thread, no ArrayBuffer ever detached)`,
      results: rows,
    };
    writeFileSync(options.jsonPath, `${JSON.stringify(json, null, 2)}\n`);
    console.log('');
    console.log(`wrote ${options.jsonPath}`);
  }
  if (!Number.isFinite(sink)) console.log(''); // use the sink so it cannot be optimized out
}

if (isMainThread) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
} else {
  workerMain();
}
