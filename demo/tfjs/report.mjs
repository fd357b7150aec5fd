// What the demo prints on stdout: the header describing the run, the table
// of raw vs EMA test metrics per epoch, the verdict and the footer.

export function percent(fraction, digits = 2) {
  return `${(100 * fraction).toFixed(digits)}%`;
}

export function formatCount(number) {
  return number.toLocaleString('en-US');
}

export function printHeader({ options, settings, backend, ema, parameters, data }) {
  const warmup = options.warmup
    ? `warmup on: decay = min(${options.decay}, (1 + n) / (10 + n)) after n updates`
    : 'warmup off: full decay from the first update (numUpdates stays -1, as in LitEma)';
  const build = ema.simd ? 'SIMD128 build (dist/ema-simd.wasm)' : 'scalar build (dist/ema-scalar.wasm)';
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
      `${settings.stepsPerEpoch} steps/epoch, ${options.epochs} epoch${options.epochs === 1 ? '' : 's'}`,
  );
  console.log(`  backend   ${backend}`);
  console.log(`  EMA       decay ${options.decay}, ${warmup}`);
  console.log(`  ema-wasm  ${build}, one ema.update() after every SGD step`);
  console.log('');
}

const COLUMNS = [
  ['epoch', 5],
  ['train loss', 10],
  ['test loss raw', 13],
  ['test loss EMA', 13],
  ['acc raw', 7],
  ['acc EMA', 7],
  ['EMA updates', 11],
  ['decay', 6],
];

function printRow(cells) {
  console.log(cells.map((cell, i) => String(cell).padStart(COLUMNS[i][1])).join('  '));
}

/** The table: one row per { epoch, trainLoss, raw, ema, numUpdates, decay }. */
export function printTable(rows) {
  printRow(COLUMNS.map(([title]) => title));
  for (const row of rows) {
    printRow([
      row.epoch,
      row.trainLoss.toFixed(4),
      row.raw.loss.toFixed(4),
      row.ema.loss.toFixed(4),
      percent(row.raw.accuracy, 1),
      percent(row.ema.accuracy, 1),
      row.numUpdates, // -1 when warmup is off, as LitEma's num_updates is
      row.decay.toFixed(4),
    ]);
  }
  console.log('');
}

// Loss differences under this fraction of the raw loss count as a tie, so
// that e.g. --decay 0 (EMA = raw weights) is not reported as a win.
const TIE_TOLERANCE = 0.01;

function compareAccuracy(raw, averaged, testCount) {
  // Compared in whole test digits: a fraction of a digit is rounding.
  const difference = Math.round((averaged - raw) * testCount);
  if (difference === 0) return `the same accuracy (${percent(raw)})`;
  const digits = `${Math.abs(difference)} test digit${Math.abs(difference) === 1 ? '' : 's'}`;
  return difference > 0
    ? `higher accuracy: ${percent(averaged)} vs ${percent(raw)} (${digits} more right)`
    : `LOWER accuracy: ${percent(averaged)} vs ${percent(raw)} (${digits} fewer right)`;
}

/** The honest summary: who won on the final test loss and accuracy, and how often. */
export function printVerdict({ rows, testCount }) {
  const { raw, ema } = rows[rows.length - 1];
  const epochs = `${rows.length} epoch${rows.length === 1 ? '' : 's'}`;
  const losses = `test loss ${ema.loss.toFixed(4)} (EMA) vs ${raw.loss.toFixed(4)} (raw)`;
  const accuracy = compareAccuracy(raw.accuracy, ema.accuracy, testCount);
  const relativeGain = 1 - ema.loss / raw.loss;
  if (relativeGain > TIE_TOLERANCE) {
    console.log(
      `Result: after ${epochs} the EMA weights beat the raw weights: ${losses}, ` +
        `${(100 * relativeGain).toFixed(0)}% lower; ${accuracy}.`,
    );
  } else if (relativeGain >= -TIE_TOLERANCE) {
    console.log(
      `Result: after ${epochs} the EMA weights did not clearly beat the raw weights: ${losses}; ${accuracy}. ` +
        'The final losses are within 1% of each other; with a small decay the EMA follows the raw ' +
        'weights closely, with a large one it may still lag behind them.',
    );
  } else {
    console.log(
      `Result: after ${epochs} the EMA weights did NOT beat the raw weights: ${losses}; ${accuracy}. ` +
        'An EMA lags about 1 / (1 - decay) steps behind; when that is a large part of the run it ' +
        'still remembers the early, poor weights: try more --epochs or a smaller --decay.',
    );
  }
  const lowerLoss = rows.filter((row) => row.ema.loss < row.raw.loss).length;
  const higherAccuracy = rows.filter((row) => row.ema.accuracy > row.raw.accuracy).length;
  console.log(
    `        Epoch by epoch, the EMA had the lower test loss after ${lowerLoss} of ${rows.length} ` +
      `and the higher accuracy after ${higherAccuracy} of ${rows.length}.`,
  );
}

/** Footer: cost of the EMA, time, tensor bookkeeping and the plot's path. */
export function printFooter({ emaMilliseconds, updates, parameters, simd, seconds, tensors, plotPath, weights }) {
  const perUpdate = updates > 0 ? emaMilliseconds / updates : 0;
  console.log(
    `EMA cost: ${emaMilliseconds.toFixed(1)} ms in ema.update() for ${formatCount(updates)} updates, ` +
      `${perUpdate.toFixed(3)} ms per update of ${formatCount(parameters)} floats ` +
      `(${simd ? 'SIMD128' : 'scalar'} build; includes reading the weights out of TF.js).`,
  );
  console.log(
    `Time: ${seconds.total.toFixed(1)} s in all: ${seconds.training.toFixed(1)} s training, ` +
      `${seconds.evaluation.toFixed(1)} s evaluating, ${seconds.setup.toFixed(1)} s loading modules, data and backend.`,
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
