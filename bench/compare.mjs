// Side-by-side benchmark of ema-wasm against what a user has without it: the
// plain JS loop, idiomatic TensorFlow.js, the same C core built natively, and
// the memory-bandwidth floor (TypedArray.prototype.set / memcpy), on four
// model shapes, in one run; then the roundings of the update (LitEma's
// unfused one, PyTorch's lerp_, diffusers' one rounding, Keras'), each
// family's kernel alone at the 1M and 16M models' sizes, in both Wasm builds
// and natively; then the threads section (lib/threads.mjs): one step at 16M
// and 64M on one thread and on all, beside native C and PyTorch with the
// same threads.
//
//   node bench/compare.mjs                    full run (a few minutes)
//   node bench/compare.mjs --quick            fewer repetitions, a smoke test
//   node bench/compare.mjs --only 1M,tiny     some models (1M, resnet50, 64M, tiny2000; 16M only on request)
//   node bench/compare.mjs --json PATH        results file (default bench/results.json)
//   node bench/compare.mjs --no-native --no-tfjs --tfjs-large --no-rounding --no-threads
//
// scripts/readme-perf.mjs turns the JSON into the README's performance table.
//
// This file wires the parts together, one model after another: verify every
// variant, time them, then TF.js, then print and write the results. The
// parts, in bench/lib/:
//
//   models.mjs       the models and how many repetitions each gets
//   params.mjs       their parameter values (the same generator as native.c)
//   variants.mjs     the rows: ids, labels, bytes moved, reference rows
//   baselines.mjs    the JS loop, idiomatic TF.js and the copy floor
//   main-thread.mjs  the ema-wasm EMAs and the variants timed on this thread
//   worker.mjs       the JS loop and TF.js in workers (and why workers)
//   native.mjs       bench/native.c: build, and drive it in a child process
//   kernels.mjs      bench/kernels.c: the rounding section's kernels, each build
//   remotes.mjs      request/reply with the workers and the child process
//   verify.mjs       the bit-identical check that runs before any timing
//   timing.mjs       interleaved rounds and medians (and why: noise)
//   targets.mjs      the goals and their verdicts
//   threads.mjs      the threads section (threads-native.mjs: its native C and PyTorch rows)
//   results.mjs      the rows' statistics and the results.json document
//   report.mjs       the header, the table, the legend, targets and notes

import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

import { createCommandLine, resolvedPath, UsageError } from '../scripts/flags.mjs';
import { KERNEL_BUILDS, measureRounding, prepareRoundingPrograms } from './lib/kernels.mjs';
import { createEmas, mainThreadRuns } from './lib/main-thread.mjs';
import { DEFAULT_MODELS, modelsNamed, paramCount } from './lib/models.mjs';
import { buildNative, describeNativeBuild, NativeRemote } from './lib/native.mjs';
import { makeParams } from './lib/params.mjs';
import { remoteRun, whenReady, WorkerRemote } from './lib/remotes.mjs';
import { printHeader, printSummary } from './lib/report.mjs';
import { describeEnvironment, resultRows, resultsDocument } from './lib/results.mjs';
import { runMain, writeResults } from './lib/run.mjs';
import { evaluateTargets } from './lib/targets.mjs';
import { benchThreads } from './lib/threads.mjs';
import { timeInterleaved } from './lib/timing.mjs';
import { inVariantOrder, VARIANT, VARIANTS } from './lib/variants.mjs';
import { verifyVariants, VERIFY_STEPS } from './lib/verify.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = `usage: node bench/compare.mjs [--quick] [--only MODEL[,MODEL]] [--json PATH]
                              [--no-native] [--no-tfjs] [--tfjs-large] [--no-rounding] [--no-threads]
  models: 1M, resnet50, 64M, tiny2000
  --json PATH    where to write the results (default bench/results.json)
  --no-native    skip the native C rows (no cmake/gcc build)
  --no-tfjs      skip the TF.js rows
  --tfjs-large   also time TF.js on resnet50 and 64M (slow: seconds per update)
  --no-rounding  skip the roundings of the update (each kernel family alone at
                 1M and 16M: Wasm SIMD, Wasm scalar, native)
  --no-threads   skip the threads section (16M and 64M on one thread and on
                 all, beside native C and PyTorch; bench/threads.mjs alone)`;

/** --only's value: the models it names, in the order of MODELS. */
function onlyModels(text, flag) {
  const models = modelsNamed(text);
  if (models === null) throw new UsageError(`${flag}: unknown model in '${text}'`);
  return models;
}

const { readOptions } = createCommandLine({
  program: 'bench/compare',
  usage: USAGE,
  defaults: {
    quick: false,
    models: DEFAULT_MODELS,
    jsonPath: path.join(ROOT, 'bench', 'results.json'),
    native: true,
    tfjs: true,
    tfjsLarge: false,
    rounding: true,
    threads: true,
  },
  valueFlags: {
    '--only': ['models', onlyModels],
    '--json': ['jsonPath', resolvedPath],
  },
  switches: {
    '--quick': ['quick', true],
    '--no-native': ['native', false],
    '--no-tfjs': ['tfjs', false],
    '--tfjs-large': ['tfjsLarge', true],
    '--no-rounding': ['rounding', false],
    '--no-threads': ['threads', false],
  },
});

/** The variants with a run, in the rows' order, ready for timeInterleaved(). */
function timedVariants(runs) {
  return VARIANTS.filter((variant) => Object.hasOwn(runs, variant.id)).map((variant) => ({ ...variant, run: runs[variant.id], samples: [] }));
}

/** One model: verification, then phase 1 (all but TF.js), then phase 2 (TF.js). */
async function benchModel(model, options, nativeBuild, notes) {
  const plan = options.quick ? model.quick : model.full;
  const spec = model.spec();
  const { params, random } = makeParams(spec);
  const say = (text) => console.log(`[${model.key}] ${text}`);
  say(`${paramCount(spec).toLocaleString('en-US')} params in ${spec.length} tensors`);

  // The remotes start first and build their own copies of the same values meanwhile.
  const remotes = {
    jsLoop: new WorkerRemote(VARIANT.get('jsLoop').label, { role: 'jsloop', modelKey: model.key, detach: false }),
    jsLoopDetached: new WorkerRemote(VARIANT.get('jsLoopDetached').label, { role: 'jsloop', modelKey: model.key, detach: true }),
  };
  if (nativeBuild.binary) remotes.native = new NativeRemote(nativeBuild.binary, spec);
  const emas = await createEmas(model, params, notes);
  await whenReady(remotes, model, notes);
  if (!remotes.jsLoop) throw new Error(`${model.key}: the JS loop worker failed`);

  const t0 = performance.now();
  const verification = await verifyVariants({ modelKey: model.key, params, random, emas, remotes });
  const { result: verify, mismatches } = verification;
  say(
    `verify: ${Object.keys(verify.variants).join(', ')} after ${VERIFY_STEPS} updates: ` +
      `${mismatches.length === 0 ? 'bit-identical' : 'MISMATCH'}, shadow hash ${verify.reference} ` +
      `(${(performance.now() - t0).toFixed(0)} ms)`,
  );
  if (mismatches.length > 0) {
    console.log(`[${model.key}] bit-identical: NO: ${mismatches.join('; ')} differ from the SIMD build`);
    for (const remote of Object.values(remotes)) await remote.close();
    process.exit(1);
  }

  // Phase 1: ema-wasm, the JS loop, native C and the copy floor.
  const { runs, storeRestoreSplits } = mainThreadRuns(emas, params);
  for (const id of ['jsLoop', 'jsLoopDetached']) {
    if (remotes[id]) runs[id] = remoteRun(remotes[id], { type: 'time' }, model, notes);
  }
  if (remotes.native) {
    runs.nativeCopyin = remoteRun(remotes.native, 'time copyin', model, notes);
    runs.nativeDirect = remoteRun(remotes.native, 'time direct', model, notes);
    runs.nativeMemcpy = remoteRun(remotes.native, 'time memcpy', model, notes);
  }
  const timed = timedVariants(runs);
  const t1 = performance.now();
  await timeInterleaved(timed, plan, plan.rounds);
  say(`timed ${timed.length} variants: ${plan.warmup} warm-up, ${plan.rounds} interleaved rounds (${(performance.now() - t1).toFixed(0)} ms)`);
  emas.dispose();
  for (const remote of Object.values(remotes)) await remote.close();

  if (options.tfjs && (model.tfjs || options.tfjsLarge)) {
    timed.push(...(await timeTfjs(model, plan, verification, notes, say)));
  } else if (options.tfjs) {
    notes.push(`${model.key}: TF.js rows skipped (an idiomatic cpu update takes seconds at this size; --tfjs-large times them)`);
  }
  inVariantOrder(timed);
  return { rows: resultRows({ model, spec, plan, timed, storeRestoreSplits }), verify };
}

/**
 * Phase 2: TF.js, in workers started only now, so that their loading,
 * garbage and background GC cannot disturb the rows of phase 1 (2 cores).
 * Verified for information: recorded in `verification`, noted if different.
 */
async function timeTfjs(model, plan, verification, notes, say) {
  const remotes = {};
  for (const backend of ['cpu', 'wasm']) {
    for (const mode of ['idiomatic', 'adapter']) {
      const id = `tfjs${backend === 'cpu' ? 'Cpu' : 'Wasm'}${mode === 'idiomatic' ? 'Idiomatic' : 'Adapter'}`;
      remotes[id] = new WorkerRemote(VARIANT.get(id).label, { role: 'tfjs', modelKey: model.key, backend, mode });
    }
  }
  await whenReady(remotes, model, notes);
  const runs = {};
  const informational = [];
  for (const [id, remote] of Object.entries(remotes)) {
    const reply = await remote.request({ type: 'verify' });
    verification.record(id, reply.hash, reply.decays, false);
    informational.push(`${id} ${verification.result.informational[id].identical ? 'identical' : 'DIFFERENT'}`);
    runs[id] = remoteRun(remote, { type: 'time' }, model, notes);
  }
  say(`TF.js verify (information): ${informational.join(', ')}`);
  const timed = timedVariants(runs);
  const t2 = performance.now();
  await timeInterleaved(timed, plan, plan.tfRounds);
  say(`timed ${timed.length} TF.js variants: ${plan.warmup} warm-up, ${plan.tfRounds} interleaved rounds (${(performance.now() - t2).toFixed(0)} ms)`);
  for (const remote of Object.values(remotes)) await remote.close();
  for (const [id, { identical }] of Object.entries(verification.result.informational)) {
    if (!identical) notes.push(`${model.key}: ${VARIANT.get(id).label}: shadows not bit-identical to ema-wasm's (information)`);
  }
  return timed;
}

async function main() {
  const options = readOptions(process.argv.slice(2));
  if (options === null) return;
  const started = performance.now();
  const environment = describeEnvironment(options);
  printHeader(environment, options.models);
  if (!environment.wasmSimd) throw new Error('this runtime has no WebAssembly SIMD; the benchmark compares the SIMD build');

  const notes = [];
  const nativeBuild = options.native ? buildNative() : { skip: 'disabled (--no-native)' };
  if (nativeBuild.note) notes.push(`native: ${nativeBuild.note}`);
  if (nativeBuild.skip) notes.push(`native rows skipped: ${nativeBuild.skip}`);
  else {
    environment.native = describeNativeBuild();
    console.log(`native: ${environment.native}`);
  }
  // The rounding section's programs are built now, before anything is timed.
  const roundingBuilds = KERNEL_BUILDS.filter((build) => build !== 'native' || options.native);
  const roundingPrograms = options.rounding ? prepareRoundingPrograms(roundingBuilds, notes) : [];
  if (!options.rounding) notes.push('rounding section skipped (--no-rounding)');
  console.log('');

  const rows = [];
  const verification = [];
  for (const model of options.models) {
    const result = await benchModel(model, options, nativeBuild, notes);
    rows.push(...result.rows);
    verification.push(result.verify);
  }
  let rounding = null;
  if (roundingPrograms.length > 0) {
    const t0 = performance.now();
    rounding = measureRounding(roundingPrograms, options.quick);
    console.log(
      `[rounding] ${roundingPrograms.map((program) => program.build).join(', ')}: each family's kernel at 1M and 16M ` +
        `(${(performance.now() - t0).toFixed(0)} ms)`,
    );
  }
  const targets = evaluateTargets(rows, rounding);
  printSummary({ verification, rows, rounding, targets, notes });
  // Last, on its own: its 64M EMAs take several GB, and its rows are per size, not per model.
  const threads = options.threads ? await benchThreads({ quick: options.quick, native: options.native }) : null;
  if (!options.threads) notes.push('threads section skipped (--no-threads)');

  const durationSeconds = Number(((performance.now() - started) / 1e3).toFixed(1));
  const json = resultsDocument({ environment, durationSeconds, models: options.models, verification, targets, notes, rows, rounding });
  if (threads !== null) json.threads = threads;
  writeResults(options.jsonPath, json);
}

runMain(main);
