// What a run prints: the header, then (after the per-model progress lines,
// which bench/compare.mjs prints as it goes) the verdict of verification,
// the table of every row, its legend, the rounding section's table, the
// targets and the notes.

import { ROUNDING_LEGEND, roundingTable } from './kernels.mjs';
import { VERIFY_STEPS } from './verify.mjs';
import { VARIANT } from './variants.mjs';

/** The run's machine, runtime and settings, before any model runs. */
export function printHeader(environment, models) {
  console.log('ema-wasm side-by-side benchmark (bench/compare.mjs)');
  console.log(`date:  ${environment.date}`);
  console.log(`node:  ${environment.node} (V8 ${environment.v8}), ${environment.platform}`);
  console.log(`cpu:   ${environment.cpu}, ${environment.cores} cores, ${environment.memoryGB} GB`);
  console.log(`mode:  ${environment.quick ? 'quick' : 'full'}; decay ${environment.decay} with warmup; models ${models.map((m) => m.key).join(', ')}`);
}

/** A ratio as the table shows it: two decimals, or two significant digits below 0.1. */
function formatRatio(ratio) {
  return `${ratio < 0.1 ? ratio.toPrecision(2) : ratio.toFixed(2)}x`;
}

/** The rows of every model, one block per model; labels left, numbers right. */
function printTable(rows) {
  const header = ['model', 'variant', 'median ms', 'min ms', 'GB/s', 'Mparam/s', 'vs JS loop', 'ratio vs ref'];
  const lines = rows.map((row) => [
    row.model,
    row.label,
    row.medianMs.toFixed(3),
    row.minMs.toFixed(3),
    row.gbPerSecond.toFixed(1),
    row.mParamsPerSecond.toFixed(0),
    row.speedupVsJsLoop !== undefined ? `${row.speedupVsJsLoop.toFixed(2)}x` : '',
    row.ratioVsRef !== undefined
      ? `${formatRatio(row.ratioVsRef)} ${row.refScale !== 1 ? `${row.refScale}x ` : ''}${VARIANT.get(row.ref).label}`
      : '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells) =>
    cells
      .map((cell, column) => (column < 2 || column === 7 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ')
      .trimEnd();
  console.log(format(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  rows.forEach((row, index) => {
    if (index > 0 && row.model !== rows[index - 1].model) console.log('');
    console.log(format(lines[index]));
  });
}

function printTargets(targets) {
  for (const target of targets) {
    const verdict = target.met === null ? 'not measured' : target.met ? 'MET' : 'MISSED';
    console.log(`  [${verdict}] ${target.text}`);
    for (const check of target.checks) console.log(`      ${check.ok ? 'ok  ' : 'miss'} ${check.detail}`);
  }
}

function printLegend(rows) {
  console.log("vs JS loop: the plain JS loop's median / this row's median (a worker whose isolate never");
  console.log('detached an ArrayBuffer). ratio vs ref: this median / the reference row\'s median (lower is');
  console.log('better). GB/s counts 12 bytes per parameter for an update, 8 for a copy, 16 for store+restore.');
  for (const row of rows.filter((r) => r.storeMedianMs !== undefined)) {
    console.log(`${row.model}: ${row.label}: store ${row.storeMedianMs.toFixed(3)} ms + restore ${row.restoreMedianMs.toFixed(3)} ms (medians)`);
  }
}

/**
 * Everything after the models ran: that every model verified (`verification`,
 * one Verification.result per model), the table, its legend, the roundings
 * of the update (`rounding`, roundingSummary()'s rows, or null), the targets
 * and the notes.
 */
export function printSummary({ verification, rows, rounding, targets, notes }) {
  const verifiedIds = [...new Set(verification.flatMap((v) => Object.keys(v.variants)))];
  console.log('');
  console.log(`bit-identical: yes (${verifiedIds.join(', ')}; every model, after ${VERIFY_STEPS} identical updates)`);
  console.log('');
  printTable(rows);
  console.log('');
  printLegend(rows);
  if (rounding?.length) {
    console.log('');
    console.log('roundings of the update, each kernel family alone (1M and 16M parameters):');
    console.log('');
    for (const line of roundingTable(rounding)) console.log(line);
    console.log('');
    for (const line of ROUNDING_LEGEND) console.log(line);
  }
  console.log('');
  console.log('targets:');
  printTargets(targets);
  if (notes.length > 0) {
    console.log('');
    console.log('notes:');
    for (const note of notes) console.log(`  - ${note}`);
  }
}
