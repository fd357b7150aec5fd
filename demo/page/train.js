// The training run of the browser demo, independent of the page: a small
// TF.js MLP learns a noisy 3-arm spiral with minibatch Adam, ema-wasm keeps
// an EMA of its weights (one ema.update() after every optimizer step), and
// every few steps both the raw and the EMA weights are evaluated on held-out
// points. `tf` is passed in, so the same code runs in the page (window.tf)
// and in Node (import * as tf from '@tensorflow/tfjs').
//
// Same task, data and PRNG as the Node demo (demo/train-node.mjs); the
// optimizer differs (TF.js's Adam rather than hand-written SGD).
//
// Post-hoc EMA (Karras et al. 2024, Section 3): a power-function EMA of two
// profiles (sigma_rel 0.05 and 0.10) runs next to the first EMA and keeps
// snapshots of both in memory; after the run, the explorer that
// runTraining returns rebuilds the EMA of any sigma_rel from them with
// reconstruct() and evaluates it on the held-out points.

import { createTfjsEma } from '../../js/adapters/tfjs.js';
import { reconstruct } from '../../js/index.js';
import { makeSpiral } from '../lib/data.mjs';
import { TRACKED_SIGMA_RELS, withWeights } from '../lib/posthoc.mjs';
import { createRandom } from '../lib/random.mjs';

export const TASK = Object.freeze({ classes: 3, turns: 1.25, jitter: 0.08, trainCount: 3000, testCount: 1000 });
export const MODEL = Object.freeze({ inputs: 2, hidden: 64, inputScale: 3 });
// Adam with a high learning rate and small minibatches: the raw weights learn
// fast but keep jumping around the minimum, which is what an EMA smooths out.
export const TRAINING = Object.freeze({ optimizer: 'Adam', learningRate: 0.05, batchSize: 16 });
// Independent random streams, as in the Node demo.
const STREAMS = Object.freeze({ trainData: 0, testData: 1, training: 2 });

/** How often to evaluate: about 100 points per run, at least every step. */
export function evalInterval(steps) {
  return Math.max(1, Math.ceil(steps / 100));
}

/** How often to snapshot the power EMA: about 25 times per run (and at the last step). */
export function snapshotInterval(steps) {
  return Math.max(1, Math.ceil(steps / 25));
}

/** A tf.sequential MLP 2 -> hidden tanh -> classes (logits), seeded weights. */
function createModel(tf, random) {
  const { inputs, hidden, inputScale } = MODEL;
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: hidden, inputShape: [inputs], activation: 'tanh' }),
      tf.layers.dense({ units: TASK.classes }),
    ],
  });
  // Wide first layer (std inputScale / sqrt(fan_in)), as in demo/lib/mlp.mjs.
  const normal = (count, std) => Float32Array.from({ length: count }, () => std * random.normal());
  const firstStd = inputScale / Math.sqrt(inputs);
  const initial = [
    tf.tensor2d(normal(inputs * hidden, firstStd), [inputs, hidden]),
    tf.tensor1d(normal(hidden, firstStd)),
    tf.tensor2d(normal(hidden * TASK.classes, 1 / Math.sqrt(hidden)), [hidden, TASK.classes]),
    tf.zeros([TASK.classes]),
  ];
  model.setWeights(initial);
  tf.dispose(initial);
  return model;
}

function datasetTensors(tf, dataset) {
  return {
    x: tf.tensor2d(dataset.inputs, [dataset.count, MODEL.inputs]),
    labels: tf.tensor1d(Int32Array.from(dataset.labels), 'int32'),
  };
}

/** Mean softmax cross-entropy and accuracy of the model's current weights. */
function evaluate(tf, model, test) {
  const metrics = tf.tidy(() => {
    const logits = model.predict(test.x);
    const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(test.labels, TASK.classes), logits);
    const accuracy = tf.equal(tf.argMax(logits, 1), test.labels).toFloat().mean();
    return tf.stack([loss, accuracy]);
  });
  const [loss, accuracy] = metrics.dataSync();
  metrics.dispose();
  return { loss, accuracy };
}

const defaultYield = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * How the demo's EMAs use threads: background: true (threads: 'auto') runs
 * the threads build wherever it can run (a cross-origin isolated page, or
 * Node with worker_threads, on two cores or more); update() then returns
 * once the weights are copied, and the workers average while the next
 * optimizer step runs. Elsewhere it falls back to the single-threaded
 * build, with the same results bit for bit.
 */
export const EMA_THREADING = Object.freeze({ background: true });

/** Which build an EMA runs: { build, threads, background }. */
function buildOf(ema) {
  const { build, threads, background } = ema;
  return { build, threads, background };
}

/**
 * The post-hoc explorer of a finished run: it owns the model (holding the
 * final raw weights) and the held-out tensors until dispose().
 * evaluate(sigmaRel) reconstructs the EMA of that width at the last step
 * from the snapshots and resolves to { sigmaRel, gamma, loss, accuracy,
 * conditionNumber, amplification, warning }, or to null when the explorer
 * was disposed meanwhile.
 */
function createPosthocExplorer({ tf, model, test, snapshots, snapshotEvery, tracked }) {
  let disposed = false;
  return {
    snapshots: snapshots.length,
    snapshotEvery,
    tracked,
    async evaluate(sigmaRel) {
      if (disposed) return null;
      // warn: false: the page shows the warning itself.
      const result = await reconstruct(snapshots, { sigmaRel, warn: false });
      if (disposed) return null;
      const metrics = withWeights(tf, model, result.weights, () => evaluate(tf, model, test));
      return {
        sigmaRel,
        gamma: result.gamma,
        loss: metrics.loss,
        accuracy: metrics.accuracy,
        conditionNumber: result.conditionNumber,
        amplification: result.amplification,
        warning: result.warning,
      };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      tf.dispose([test.x, test.labels]);
      model.dispose();
    },
  };
}

/**
 * Trains for `steps` optimizer steps. Calls onStart({ simd, build, threads,
 * background, parameters, tensors }) once the EMA exists (`threading`, the
 * EMAs' threads and background options, decides the build), and
 * onEval(point, stats) after each evaluation, where point
 * is { step, rawLoss, emaLoss, rawAcc, emaAcc } and stats carries the EMA
 * timings. Yields to the event loop after each evaluation (so a page can
 * repaint) through `yieldFn`. Returns { results, simd, updateMs, posthoc,
 * ... }, where posthoc is the run's post-hoc explorer (see
 * createPosthocExplorer), which the caller disposes.
 */
export async function runTraining({
  tf,
  steps,
  decay,
  warmup,
  seed = 1,
  onStart = () => {},
  onEval = () => {},
  yieldFn = defaultYield,
  now = () => performance.now(),
  threading = EMA_THREADING,
}) {
  const shape = { classes: TASK.classes, turns: TASK.turns, jitter: TASK.jitter };
  const trainSet = makeSpiral({ ...shape, count: TASK.trainCount }, createRandom(seed, STREAMS.trainData));
  const testSet = makeSpiral({ ...shape, count: TASK.testCount }, createRandom(seed, STREAMS.testData));
  const random = createRandom(seed, STREAMS.training);

  const model = createModel(tf, random);
  const test = datasetTensors(tf, testSet);
  const optimizer = tf.train.adam(TRAINING.learningRate);
  const variables = model.trainableWeights.map((weight) => weight.read());
  let ema;
  let powerEma;
  let explorer = null;
  try {
    // Created after initialisation: the shadows start as copies of the weights.
    ema = await createTfjsEma(model, { decay, useNumUpdates: warmup, tf, ...threading });
    powerEma = await createTfjsEma(model, { recipe: 'power', sigmaRel: [...TRACKED_SIGMA_RELS], tf, ...threading });
    const snapshotEvery = snapshotInterval(steps);
    const snapshots = [];
    const parameters = model.trainableWeights.reduce((total, w) => total + w.shape.reduce((a, b) => a * b, 1), 0);
    onStart({ simd: ema.simd, ...buildOf(ema), parameters, tensors: variables.length });

    const every = evalInterval(steps);
    const results = [];
    const timing = { last: NaN, total: 0, count: 0 };
    const stats = () => ({
      updateMs: { last: timing.last, mean: timing.count ? timing.total / timing.count : NaN },
      numUpdates: ema.numUpdates,
    });
    let decayUsed = NaN;

    const evaluateBoth = async (step) => {
      const raw = evaluate(tf, model, test);
      // withEma swaps the EMA weights in and puts the raw ones back after.
      const averaged = await ema.withEma(async () => evaluate(tf, model, test));
      const point = { step, rawLoss: raw.loss, emaLoss: averaged.loss, rawAcc: raw.accuracy, emaAcc: averaged.accuracy };
      results.push(point);
      onEval(point, { ...stats(), decayUsed, step, steps });
      await yieldFn();
    };

    await evaluateBoth(0);
    const order = Array.from({ length: trainSet.count }, (_, index) => index);
    let cursor = order.length; // reshuffle at the start of each pass
    const batchInputs = new Float32Array(TRAINING.batchSize * MODEL.inputs);
    const batchLabels = new Int32Array(TRAINING.batchSize);

    for (let step = 1; step <= steps; step++) {
      if (cursor + TRAINING.batchSize > order.length) {
        random.shuffle(order);
        cursor = 0;
      }
      for (let i = 0; i < TRAINING.batchSize; i++) {
        const index = order[cursor + i];
        batchInputs[2 * i] = trainSet.inputs[2 * index];
        batchInputs[2 * i + 1] = trainSet.inputs[2 * index + 1];
        batchLabels[i] = trainSet.labels[index];
      }
      cursor += TRAINING.batchSize;
      tf.tidy(() => {
        const x = tf.tensor2d(batchInputs, [TRAINING.batchSize, MODEL.inputs]);
        const y = tf.oneHot(tf.tensor1d(batchLabels, 'int32'), TASK.classes);
        optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true })), false, variables);
      });

      // The EMA step, after the optimizer's step, as LitEma is used.
      const before = now();
      decayUsed = ema.update().decay;
      timing.last = now() - before;
      timing.total += timing.last;
      timing.count += 1;

      // The power EMA's step, and its snapshots (float32, kept in memory).
      powerEma.update();
      if (step % snapshotEvery === 0 || step === steps) snapshots.push(...powerEma.snapshot());

      if (step % every === 0 || step === steps) await evaluateBoth(step);
    }
    // The tracked profiles themselves, for comparison with their reconstructions.
    const tracked = [];
    for (const [profile, { sigmaRel }] of powerEma.profiles.entries()) {
      const metrics = await powerEma.withEma(async () => evaluate(tf, model, test), { profile });
      tracked.push({ sigmaRel, ...metrics });
    }
    explorer = createPosthocExplorer({ tf, model, test, snapshots, snapshotEvery, tracked });
    return { results, simd: ema.simd, ...buildOf(ema), parameters, ...stats(), decayUsed, posthoc: explorer };
  } finally {
    ema?.dispose();
    powerEma?.dispose();
    optimizer.dispose();
    // On success the explorer owns the model and the held-out tensors.
    if (explorer === null) {
      tf.dispose([test.x, test.labels]);
      model.dispose();
    }
  }
}
