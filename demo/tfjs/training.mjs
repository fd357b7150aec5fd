// The training loop: minibatch SGD through model.trainOnBatch, with one EMA
// step after every optimizer step, as LitEma is called after
// optimizer.step() in PyTorch.
//
// A hand-written loop rather than model.fit(..., { callbacks:
// [ema.callback()] }): fit() shuffles with Math.random(), and the loop makes
// the order of things visible, lets the demo time ema.update() on its own,
// and gives it a place to evaluate both weight sets every few steps.

import { performance } from 'node:perf_hooks';

import { tf } from './backend.mjs';
import { evaluate } from './model.mjs';
import { batchTensors } from './tensors.mjs';

/**
 * Test metrics of the raw (training) weights and of the EMA weights. The
 * EMA is evaluated inside ema.withEma(), which swaps the averaged weights
 * into the model and puts the training weights back afterwards, so SGD goes
 * on from where it was, untouched by the evaluation.
 */
export async function evaluateBoth(model, ema, test) {
  const raw = evaluate(model, test);
  const averaged = await ema.withEma(async () => evaluate(model, test));
  return { raw, ema: averaged };
}

/**
 * One pass over `train` in a fresh order drawn from `random` (`order` is
 * shuffled in place). After every step it calls `await onStep(progress)`
 * with { step (within the epoch), meanLoss (so far this epoch), decay }.
 * Returns { meanLoss, steps, decay (of the last EMA step), emaMilliseconds }.
 */
export async function trainEpoch({ model, ema, train, order, random, batchSize, onStep }) {
  random.shuffle(order);
  let lossSum = 0;
  let steps = 0;
  let decay = NaN;
  let emaMilliseconds = 0;
  for (let start = 0; start < train.count; start += batchSize) {
    const end = Math.min(start + batchSize, train.count);
    const { xs, ys } = batchTensors(train, order, start, end);
    let loss;
    try {
      loss = await model.trainOnBatch(xs, ys);
    } finally {
      tf.dispose([xs, ys]);
    }
    // The EMA step reads the weights SGD has just written.
    const before = performance.now();
    decay = ema.update().decay;
    emaMilliseconds += performance.now() - before;

    lossSum += loss;
    steps += 1;
    await onStep({ step: steps, meanLoss: lossSum / steps, decay });
  }
  return { meanLoss: lossSum / steps, steps, decay, emaMilliseconds };
}
