// What the two demo scripts (train-node.mjs, train-tfjs.mjs) print alike on
// stdout: the per-epoch table of raw vs EMA test metrics, the header's
// warmup wording and the "Result:" verdict. One module, so that the scripts'
// reports keep the same columns and the same words.

export function percent(fraction, digits) {
  return `${(100 * fraction).toFixed(digits)}%`;
}

/** '1 epoch', '2 epochs'. */
export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** How the run's decay changes over time, for the header's EMA line. */
export function describeWarmup({ warmup, decay }) {
  return warmup
    ? `warmup on: decay = min(${decay}, (1 + n) / (10 + n)) after n updates`
    : 'warmup off: full decay from the first update (numUpdates stays -1, as in LitEma)';
}

// [title, width]: each cell is right-aligned to its width, two spaces apart.
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

export function printTableHeader() {
  printRow(COLUMNS.map(([title]) => title));
}

/**
 * One epoch's row: `raw` and `ema` are the test { loss, accuracy } of each
 * weight set, `decay` the one the epoch's last EMA update used.
 */
export function printTableRow({ epoch, trainLoss, raw, ema, numUpdates, decay }) {
  printRow([
    epoch,
    trainLoss.toFixed(4),
    raw.loss.toFixed(4),
    ema.loss.toFixed(4),
    percent(raw.accuracy, 1),
    percent(ema.accuracy, 1),
    numUpdates, // -1 when warmup is off, as LitEma's num_updates is
    decay.toFixed(4),
  ]);
}

// Loss differences under this fraction of the raw loss count as a tie, so
// that e.g. --decay 0 (EMA = raw weights) is not reported as a win by rounding.
const TIE_TOLERANCE = 0.01;

/**
 * The "Result:" line: who won on the final test loss. `accuracy` is the
 * script's own phrase comparing the accuracies; `tieAdvice` the sentence it
 * adds when the losses are within TIE_TOLERANCE of each other.
 */
export function printResult({ epochs, raw, ema, accuracy, tieAdvice }) {
  const after = `Result: after ${plural(epochs, 'epoch')} the EMA weights`;
  const losses = `test loss ${ema.loss.toFixed(4)} (EMA) vs ${raw.loss.toFixed(4)} (raw)`;
  const relativeGain = 1 - ema.loss / raw.loss;
  if (relativeGain > TIE_TOLERANCE) {
    const lower = `${(100 * relativeGain).toFixed(0)}% lower`;
    console.log(`${after} beat the raw weights: ${losses}, ${lower}; ${accuracy}.`);
  } else if (relativeGain >= -TIE_TOLERANCE) {
    console.log(`${after} did not clearly beat the raw weights: ${losses}; ${accuracy}. ${tieAdvice}`);
  } else {
    console.log(
      `${after} did NOT beat the raw weights: ${losses}; ${accuracy}. ` +
        'An EMA lags about 1 / (1 - decay) steps behind; when that is a large part of the run it ' +
        'still remembers the early, poor weights: try more --epochs or a smaller --decay.',
    );
  }
}
