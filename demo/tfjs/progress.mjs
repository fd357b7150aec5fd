// Per-epoch progress on a stream (stderr, so that stdout holds only the
// results and can be redirected to a file):
//
//   epoch 3/5 [##########..........] 250/500 batches  loss 0.2310
//
// On a terminal the line is redrawn in place while the epoch runs and stays
// when it ends; anywhere else (CI logs, pipes) nothing is drawn during the
// epoch and a single finished line is written at its end.

const BAR_WIDTH = 20;
// Redraw at most this often: often enough for the eye, and rarely enough
// that terminal writes stay out of the step timings.
const REDRAW_MILLISECONDS = 80;

function formatLine({ epoch, epochs, done, total, loss }) {
  // Rounded down, so that the bar is full only when the epoch is.
  const filled = Math.floor((BAR_WIDTH * done) / total);
  const bar = '#'.repeat(filled) + '.'.repeat(BAR_WIDTH - filled);
  const counter = `${String(done).padStart(String(total).length)}/${total}`;
  const lossText = Number.isFinite(loss) ? loss.toFixed(4) : '-';
  const epochText = `${String(epoch).padStart(String(epochs).length)}/${epochs}`;
  return `epoch ${epochText} [${bar}] ${counter} batches  loss ${lossText}`;
}

/** A progress display for `epochs` epochs of `batches` steps on `stream`. */
export function createProgress({ epochs, batches, stream = process.stderr }) {
  const live = stream.isTTY === true;
  let epoch = 0;
  let lastDraw = 0;

  function draw(done, loss) {
    // \x1b[K clears what a longer previous line left behind.
    stream.write(`\r${formatLine({ epoch, epochs, done, total: batches, loss })}\x1b[K`);
    lastDraw = Date.now();
  }

  return {
    startEpoch(number) {
      epoch = number;
      if (live) draw(0, NaN);
    },
    step(done, loss) {
      if (live && Date.now() - lastDraw >= REDRAW_MILLISECONDS) draw(done, loss);
    },
    /** Ends the epoch's line, with `note` (e.g. the time taken) after it. */
    endEpoch(done, loss, note) {
      const line = `${formatLine({ epoch, epochs, done, total: batches, loss })}  ${note}`;
      stream.write(live ? `\r${line}\x1b[K\n` : `${line}\n`);
    },
    /** A blank line after the last epoch, to set the lines apart from what follows. */
    finish() {
      stream.write('\n');
    },
  };
}
