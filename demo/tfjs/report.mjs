// What the demo prints on stdout: the header describing the run, the table
// of raw vs EMA test metrics per epoch, the verdict and the footer. The
// table and the wording it shares with train-node.mjs are in lib/report.mjs.

import { describeWarmup, percent, plural, printResult, printTableHeader, printTableRow } from '../lib/report.mjs';

// Accuracies in the verdict: two decimals tell one test digit in 2,000 apart.
const ACCURACY_DIGITS = 2;

export function formatCount(number) {
  return number.toLocaleString('en-US');
}

/** Which build an EMA runs, in words: the build, its threads, background or not. */
export function describeBuild(ema) {
  if (ema.build === 'threads') {
    return `threads build (${ema.threads} threads${ema.background ? ', averaging in the background' : ''})`;
  }
  return ema.simd ? 'SIMD128 build' : 'scalar build';
}

export function printHeader({ options, settings, backend, ema, parameters, data }) {
  const build = describeBuild(ema);
  console.log('ema-wasm TF.js demo: raw SGD weights vs. their exponential moving average, on MNIST');
  console.log(
    `  data      ${formatCount(data.train.count)} train / ${formatCount(data.test.count)} test digits ` +
      `(of ${formatCount(data.available)} in the mnist package), split by seed ${options.seed}`,
  );
  console.log(
    `  model     MLP 784 -> ${settings.hidden} ReLU -> 10 softmax, ${formatCount(parameters)} parameters ` +
      `in ${ema.names.length} tensors`,
  );
  console.log(
    `  training  plain SGD, learning rate ${settings.learningRate}, minibatch ${options.batchSize}, ` +
      `${settings.stepsPerEpoch} steps/epoch, ${plural(options.epochs, 'epoch')}`,
  );
  console.log(`  backend   ${backend}`);
  console.log(`  EMA       decay ${options.decay}, ${describeWarmup(options)}`);
  console.log(`  ema-wasm  ${build}, one ema.update() after every SGD step`);
  // No blank line yet: the post-hoc EMA's lines (posthoc-report.mjs) end the header.
}

/** The table: one row per { epoch, trainLoss, raw, ema, numUpdates, decay }. */
export function printTable(rows) {
  printTableHeader();
  for (const row of rows) printTableRow(row);
  console.log('');
}

function compareAccuracy(raw, averaged, testCount) {
  // Compared in whole test digits: a fraction of a digit is rounding.
  const difference = Math.round((averaged - raw) * testCount);
  const rawText = percent(raw, ACCURACY_DIGITS);
  const averagedText = percent(averaged, ACCURACY_DIGITS);
  if (difference === 0) return `the same accuracy (${rawText})`;
  const digits = plural(Math.abs(difference), 'test digit');
  return difference > 0
    ? `higher accuracy: ${averagedText} vs ${rawText} (${digits} more right)`
    : `LOWER accuracy: ${averagedText} vs ${rawText} (${digits} fewer right)`;
}

/** The honest summary: who won on the final test loss and accuracy, and how often. */
export function printVerdict({ rows, testCount }) {
  const { raw, ema } = rows[rows.length - 1];
  printResult({
    epochs: rows.length,
    raw,
    ema,
    accuracy: compareAccuracy(raw.accuracy, ema.accuracy, testCount),
    tieAdvice:
      'The final losses are within 1% of each other; with a small decay the EMA follows the raw ' +
      'weights closely, with a large one it may still lag behind them.',
  });
  const lowerLoss = rows.filter((row) => row.ema.loss < row.raw.loss).length;
  const higherAccuracy = rows.filter((row) => row.ema.accuracy > row.raw.accuracy).length;
  console.log(
    `        Epoch by epoch, the EMA had the lower test loss after ${lowerLoss} of ${rows.length} ` +
      `and the higher accuracy after ${higherAccuracy} of ${rows.length}.`,
  );
}

/**
 * Footer: cost of the EMA, time (seconds: { total, training, evaluation,
 * posthoc, setup }), tensor bookkeeping and the plot's path.
 */
export function printFooter({ emaMilliseconds, updates, parameters, build, seconds, tensors, plotPath, weights }) {
  const perUpdate = updates > 0 ? emaMilliseconds / updates : 0;
  console.log(
    `EMA cost: ${emaMilliseconds.toFixed(1)} ms of the training thread in ema.update() for ${formatCount(updates)} updates, ` +
      `${perUpdate.toFixed(3)} ms per update of ${formatCount(parameters)} floats ` +
      `(${build}; includes reading the weights out of TF.js).`,
  );
  console.log(
    `Time: ${seconds.total.toFixed(1)} s in all: ${seconds.training.toFixed(1)} s training, ` +
      `${seconds.evaluation.toFixed(1)} s evaluating, ${seconds.posthoc.toFixed(1)} s in the post-hoc sweep, ` +
      `${seconds.setup.toFixed(1)} s loading modules, data and backend.`,
  );
  const leaked = tensors.after - tensors.before;
  console.log(
    `Tensors: ${tensors.before} live before training, ${tensors.after} after ` +
      `(${leaked === 0 ? 'none leaked' : `${leaked} LEAKED`}).`,
  );
  console.log(`Plot: ${plotPath}`);
  console.log(
    `EMA weights: ${weights.path} (${formatCount(weights.bytes)} bytes, safetensors with LitEma's keys; ` +
      'load them with loadEmaFile from ema-wasm/node, or in PyTorch)',
  );
}
