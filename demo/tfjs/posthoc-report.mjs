// What the post-hoc EMA section of the demo prints on stdout (see
// posthoc.mjs): its line in the header, what it reads, one table row per
// reconstructed sigma_rel as it is evaluated, and the comparison at the end.

import { TRACKED_SIGMA_RELS } from '../lib/posthoc.mjs';
import { percent, plural } from '../lib/report.mjs';
import { formatCount } from './report.mjs';

const sigma = (value) => value.toFixed(2);

/** The header's line about the power EMA and its snapshots. */
export function printPosthocSetup({ profiles, options, folder, removed }) {
  const widths = profiles.map(({ sigmaRel, gamma }) => `${sigma(sigmaRel)} (gamma ${gamma.toFixed(2)})`).join(' and ');
  console.log(`  post-hoc  power-function EMA of sigma_rel ${widths}, one update() after every SGD step;`);
  console.log(
    `            ${options.snapshotDtype} snapshots of both every ${plural(options.snapshotEvery, 'step')} ` +
      `into ${folder}` +
      (removed > 0 ? ` (removed ${plural(removed, 'stale snapshot')} of an earlier run)` : ''),
  );
  console.log('');
}

// [title, width]: each cell right-aligned to its width, two spaces apart.
const COLUMNS = [
  ['sigma_rel', 9],
  ['gamma', 7],
  ['test loss', 9],
  ['vs raw', 7],
  ['test acc', 8],
  ['sum |coef|', 10],
  ['cond', 8],
  ['', 0],
];

function printRow(cells) {
  console.log(cells.map((cell, i) => String(cell).padStart(COLUMNS[i][1])).join('  ').trimEnd());
}

/** The snapshots read back, and what the sweep will do with them. */
export function printPosthocStart({ snapshots, folder, sigmaRels, testCount }) {
  const steps = [...new Set(snapshots.map((snapshot) => snapshot.step))];
  const profiles = new Set(snapshots.map((snapshot) => snapshot.profile)).size;
  const dtypes = [...new Set(snapshots.map((snapshot) => snapshot.dtype))].join(', ');
  const bytes = snapshots.reduce((sum, snapshot) => sum + snapshot.bytes.byteLength, 0);
  console.log('Post-hoc EMA (Karras et al. 2024, Section 3): the EMA of any length, after training, from snapshots');
  console.log(
    `  read ${formatCount(snapshots.length)} snapshots from ${folder} with readSnapshots(): ` +
      `${plural(profiles, 'profile')} x ${plural(steps.length, 'step')} (${steps[0]} to ${steps[steps.length - 1]}), ` +
      `${dtypes}, ${(bytes / 1e6).toFixed(1)} MB`,
  );
  console.log(
    `  reconstruct() the EMA of ${sigmaRels.length} widths, sigma_rel ${sigma(sigmaRels[0])} to ` +
      `${sigma(sigmaRels[sigmaRels.length - 1])}, at the last step, and evaluate each on the ` +
      `${formatCount(testCount)} test digits:`,
  );
  console.log('');
  printRow(COLUMNS.map(([title]) => title));
}

/**
 * One reconstruction's row: `raw` is the raw weights' test { loss }, for
 * the relative change. sum |coef| is what reconstruct() calls the
 * amplification: 1 when every coefficient is positive, large when the
 * target is built from differences of snapshots.
 */
export function printPosthocRow(row, raw) {
  const change = row.loss / raw.loss - 1;
  const notes = [];
  if (row.tracked) notes.push('tracked profile');
  if (row.warning !== null) notes.push('WARNING, see below');
  printRow([
    sigma(row.sigmaRel),
    row.gamma.toFixed(2),
    row.loss.toFixed(4),
    `${change >= 0 ? '+' : ''}${(100 * change).toFixed(1)}%`,
    percent(row.accuracy, 2),
    row.amplification.toFixed(2),
    row.conditionNumber < 1e4 ? row.conditionNumber.toFixed(0) : row.conditionNumber.toExponential(1),
    notes.join(', '),
  ]);
}

/** After the table: the warnings, the comparison with the raw, LitEma and tracked weights, and the best width. */
export function printPosthocResult({ sweep, litEma, testCount }) {
  const { raw, tracked, rows, best } = sweep;
  console.log('');
  const warned = rows.filter((row) => row.warning !== null);
  for (const row of warned) console.log(`  warning at sigma_rel ${sigma(row.sigmaRel)}: ${row.warning}`);
  if (warned.length > 0) console.log('');

  console.log(`  raw (non-EMA) weights        test loss ${raw.loss.toFixed(4)}, accuracy ${percent(raw.accuracy, 2)}`);
  console.log(
    `  LitEma weights (${litEma.label})  test loss ${litEma.loss.toFixed(4)}, accuracy ${percent(litEma.accuracy, 2)}`,
  );
  for (const profile of tracked) {
    const rebuilt = rows.find((row) => row.sigmaRel === profile.sigmaRel);
    const check = rebuilt === undefined ? '' : `; reconstructed from the snapshots: ${rebuilt.loss.toFixed(4)}`;
    console.log(
      `  tracked profile sigma_rel ${sigma(profile.sigmaRel)}  test loss ${profile.loss.toFixed(4)}, ` +
        `accuracy ${percent(profile.accuracy, 2)} (the power EMA itself${check})`,
    );
  }
  const gain = 1 - best.loss / raw.loss;
  const digits = Math.round((best.accuracy - raw.accuracy) * testCount);
  console.log('');
  console.log(
    `Best: sigma_rel ${sigma(best.sigmaRel)} (gamma ${best.gamma.toFixed(2)}), test loss ${best.loss.toFixed(4)}: ` +
      `${(100 * gain).toFixed(0)}% lower than with the raw weights, accuracy ${percent(best.accuracy, 2)} ` +
      `(${digits >= 0 ? `${plural(digits, 'test digit')} more` : `${plural(-digits, 'test digit')} fewer`} right); ` +
      'found after training, from the snapshots, with no second run.',
  );
  console.log('');
}

/** The post-hoc lines of the footer: its cost, the snapshots and the plot. */
export function printPosthocFooter({ totals, updates, milliseconds, rows, folder, plotPath }) {
  console.log(
    `Post-hoc cost: ${totals.updateMilliseconds.toFixed(1)} ms in the power EMA's update() for ` +
      `${formatCount(updates)} updates of ${TRACKED_SIGMA_RELS.length} profiles, ` +
      `${totals.snapshotMilliseconds.toFixed(1)} ms taking and writing ${totals.files} snapshots ` +
      `(${(totals.bytes / 1e6).toFixed(1)} MB; both during training); after it ${milliseconds.read.toFixed(0)} ms ` +
      `reading them, ${milliseconds.reconstruct.toFixed(0)} ms in ${rows.length} reconstruct() calls, ` +
      `${milliseconds.evaluate.toFixed(0)} ms evaluating.`,
  );
  console.log(`Snapshots: ${folder}`);
  console.log(`Post-hoc plot: ${plotPath}`);
}
