#!/usr/bin/env node
// ema-wasm demo: why keep an exponential moving average (EMA) of the weights?
//
// A small MLP learns a noisy 3-arm spiral with plain minibatch SGD. The
// learning rate is high and the minibatches are small, so the raw weights
// keep jumping around the minimum instead of settling in it. An EMA of the
// weights averages those jumps out; after every epoch the script evaluates
// both on held-out data, the EMA through ema.withEma() (swap the averaged
// weights in, evaluate, swap the raw ones back), and prints both losses.
//
//   node demo/train-node.mjs [--epochs N] [--decay D] [--no-warmup] [--seed S]
//
// Plain Node >= 18, no dependencies. Needs the build (`npm run build`: the Wasm inlined in js/wasm/).

import { performance } from 'node:perf_hooks';

import { createEma } from '../js/index.js';
import { makeSpiral } from './lib/data.mjs';
import { createMlp, evaluate, parameterCount, trainStep } from './lib/mlp.mjs';
import { createRandom } from './lib/random.mjs';
import { describeWarmup, percent, printResult, printTableHeader, printTableRow } from './lib/report.mjs';
import { readOptions } from './lib/train-node-cli.mjs';

// Chosen so that the raw weights are visibly noisy within a few epochs yet
// the whole run takes well under a second.
const TASK = { classes: 3, turns: 1.25, jitter: 0.08, trainCount: 3000, testCount: 3000 };
const MODEL = { inputs: 2, hidden: 64, outputs: TASK.classes, inputScale: 3 };
const TRAINING = { learningRate: 0.3, batchSize: 8 };

// Independent random streams per use, so e.g. the test set does not change
// when the training set grows.
const STREAMS = { trainData: 0, testData: 1, training: 2 };

function makeDatasets(seed) {
  const shape = { classes: TASK.classes, turns: TASK.turns, jitter: TASK.jitter };
  return {
    train: makeSpiral({ ...shape, count: TASK.trainCount }, createRandom(seed, STREAMS.trainData)),
    test: makeSpiral({ ...shape, count: TASK.testCount }, createRandom(seed, STREAMS.testData)),
  };
}

/**
 * One pass over the training set in a fresh random order, with an EMA step
 * after every SGD step (as LitEma is called after optimizer.step()).
 * Returns the mean minibatch loss, the decay of the last EMA step and the
 * time spent inside ema.update().
 */
function trainEpoch(model, ema, train, order, random) {
  random.shuffle(order);
  let lossSum = 0;
  let steps = 0;
  let decayUsed = NaN;
  let emaMilliseconds = 0;
  for (let start = 0; start < order.length; start += TRAINING.batchSize) {
    const end = Math.min(start + TRAINING.batchSize, order.length);
    lossSum += trainStep(model, train, order, start, end, TRAINING.learningRate);
    steps += 1;
    const before = performance.now();
    decayUsed = ema.update(model.params).decay;
    emaMilliseconds += performance.now() - before;
  }
  return { trainLoss: lossSum / steps, decayUsed, emaMilliseconds };
}

/** Test metrics of the raw weights and of the EMA weights. */
async function evaluateBoth(model, ema, test) {
  const raw = evaluate(model, test);
  // withEma restores the raw weights afterwards, so training continues from
  // where SGD left off, untouched by the evaluation.
  const averaged = await ema.withEma(model.params, () => evaluate(model, test));
  return { raw, ema: averaged };
}

function printHeader(options, model, ema, stepsPerEpoch) {
  const { inputs, hidden, outputs } = MODEL;
  const build = ema.simd ? 'SIMD128 (ema-simd.wasm)' : 'scalar (ema-scalar.wasm)';
  console.log('ema-wasm demo: raw SGD weights vs. their exponential moving average');
  console.log(
    `  task      ${TASK.classes}-arm noisy spiral, ${TASK.trainCount} train / ${TASK.testCount} test points, seed ${options.seed}`,
  );
  console.log(
    `  model     MLP ${inputs} -> ${hidden} tanh -> ${outputs} softmax, ` +
      `${parameterCount(model)} parameters in ${model.params.length} tensors`,
  );
  console.log(
    `  training  plain SGD, learning rate ${TRAINING.learningRate}, minibatch ${TRAINING.batchSize}, ` +
      `${stepsPerEpoch} steps/epoch, ${options.epochs} epochs`,
  );
  console.log(`  EMA       decay ${options.decay}, ${describeWarmup(options)}`);
  console.log(`  Wasm      ${build}`);
  console.log('');
}

function printVerdict(options, { raw, ema }) {
  printResult({
    epochs: options.epochs,
    raw,
    ema,
    accuracy: `accuracy ${percent(ema.accuracy, 1)} vs ${percent(raw.accuracy, 1)}`,
    tieAdvice: 'With a small decay the EMA follows the raw weights closely; try a larger --decay.',
  });
}

async function main(args) {
  const options = readOptions(args);
  if (options === null) return;
  const startTime = performance.now();

  const { train, test } = makeDatasets(options.seed);
  const random = createRandom(options.seed, STREAMS.training);
  const model = createMlp(MODEL, random);
  // Created after initialisation: the shadows start as copies of the weights.
  const ema = await createEma(model.params, { decay: options.decay, useNumUpdates: options.warmup });
  try {
    const order = Array.from({ length: train.count }, (_, index) => index);
    printHeader(options, model, ema, Math.ceil(train.count / TRAINING.batchSize));
    printTableHeader();

    let emaMilliseconds = 0;
    let last;
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const training = trainEpoch(model, ema, train, order, random);
      emaMilliseconds += training.emaMilliseconds;
      last = await evaluateBoth(model, ema, test);
      printTableRow({
        epoch,
        trainLoss: training.trainLoss,
        ...last,
        numUpdates: ema.numUpdates,
        decay: training.decayUsed,
      });
    }

    console.log('');
    printVerdict(options, last);
    const totalSeconds = (performance.now() - startTime) / 1000;
    console.log(`Time: ${totalSeconds.toFixed(2)} s in all, ${emaMilliseconds.toFixed(1)} ms of it in ema.update().`);
  } finally {
    ema.dispose();
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`train-node: ${error.message}\n`);
  process.exitCode = 1;
});
