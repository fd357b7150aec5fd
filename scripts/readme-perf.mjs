// Turns the results of bench/compare.mjs (bench/results.json) into the
// README's performance section: a markdown table with the date and machine,
// and the targets with their verdicts.
//
//   node scripts/readme-perf.mjs                 print the markdown
//   node scripts/readme-perf.mjs --write         replace it in README.md, between
//                                                <!-- perf:begin --> and <!-- perf:end -->
//   node scripts/readme-perf.mjs --json PATH     another results file
//   node scripts/readme-perf.mjs --compact       only the main rows
//   node scripts/readme-perf.mjs --readme PATH   another README

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

import { createCommandLine, resolvedPath } from './flags.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BEGIN = '<!-- perf:begin -->';
const END = '<!-- perf:end -->';
const USAGE = 'usage: node scripts/readme-perf.mjs [--json PATH] [--write] [--readme PATH] [--compact]';

// The rows --compact keeps: what a reader compares first.
const COMPACT = new Set([
  'simd', 'scalar', 'resident', 'nativeCopyin', 'nativeDirect', 'jsLoop',
  'tfjsCpuIdiomatic', 'tfjsCpuAdapter', 'tfjsWasmIdiomatic', 'tfjsWasmAdapter', 'copyTo', 'set',
]);

// No check on --json and --readme beyond a non-empty path: a missing or
// wrong file is reported by main() when it is read.
const { readOptions } = createCommandLine({
  program: 'readme-perf',
  usage: USAGE,
  defaults: {
    json: path.join(ROOT, 'bench', 'results.json'),
    readme: path.join(ROOT, 'README.md'),
    write: false,
    compact: false,
  },
  valueFlags: {
    '--json': ['json', resolvedPath],
    '--readme': ['readme', resolvedPath],
  },
  switches: {
    '--write': ['write', true],
    '--compact': ['compact', true],
  },
});

function ms(value) {
  if (value < 1) return value.toFixed(3);
  if (value < 10) return value.toFixed(2);
  return value.toFixed(1);
}

function ratio(value) {
  return `${value < 0.1 ? value.toPrecision(2) : value.toFixed(2)}x`;
}

function markdown(results, { compact }) {
  const labelOf = new Map(results.variants.map((variant) => [variant.id, variant.label]));
  const modelLabel = new Map(results.models.map((model) => [model.key, model.label]));
  const rows = results.results.filter((row) => !compact || COMPACT.has(row.variant));
  const date = results.date.slice(0, 10);
  const reps = rows.map((row) => row.reps);
  const lines = [];
  lines.push(
    `Measured ${date} with \`npm run bench\` (\`bench/compare.mjs${results.quick ? ' --quick' : ''}\`) on ` +
      `${results.cpu} (${results.cores} cores, ${results.memoryGB} GB), Node ${results.node}, ${results.platform}` +
      `${results.native ? `; native C: ${results.native.replace(/ \(build.*\)$/, '')}` : ''}. ` +
      `Medians of ${Math.min(...reps)}–${Math.max(...reps)} timed runs per row after warm-up, the variants ` +
      'interleaved round by round. Before timing, the SIMD and scalar builds, resident mode, the JS loop and ' +
      `native C were checked to give bit-identical shadows on every model.`,
  );
  lines.push('');
  lines.push('| model | variant | median ms | M params/s | GB/s | vs JS loop | vs reference |');
  lines.push('|---|---|---:|---:|---:|---:|---|');
  let previous = null;
  for (const row of rows) {
    const model = row.model === previous ? '' : modelLabel.get(row.model) ?? row.model;
    previous = row.model;
    const speedup = row.speedupVsJsLoop === undefined ? '' : ratio(row.speedupVsJsLoop);
    const strong = row.variant === 'simd' || row.variant === 'resident' || row.variant === 'tfjsCpuAdapter';
    const reference =
      row.ratioVsRef === undefined
        ? ''
        : `${ratio(row.ratioVsRef)} ${row.refScale && row.refScale !== 1 ? `${row.refScale}× ` : ''}${labelOf.get(row.ref)}`;
    const bold = strong && row.speedupVsJsLoop > 1;
    lines.push(
      `| ${model} | ${row.label} | ${ms(row.medianMs)} | ${row.mParamsPerSecond.toFixed(0)} | ` +
        `${row.gbPerSecond.toFixed(1)} | ${bold ? `**${speedup}**` : speedup} | ${reference} |`,
    );
  }
  lines.push('');
  lines.push(
    '"vs JS loop" is the plain JS loop\'s median over the row\'s (the loop runs in a worker whose V8 isolate ' +
      'never detached an ArrayBuffer); "vs reference" is the row\'s median over the reference row\'s (lower ' +
      'is faster). GB/s counts 12 bytes per parameter for an update, 8 for a copy, 16 for store + restore.',
  );
  if (results.targets?.length) {
    lines.push('');
    lines.push('Targets:');
    lines.push('');
    for (const target of results.targets) {
      const verdict = target.met === null ? 'not measured' : target.met ? 'met' : 'missed';
      const details = target.checks.map((check) => check.detail).join('; ');
      lines.push(`- ${target.text}: **${verdict}**${details ? ` (${details})` : ''}`);
    }
  }
  if (results.notes?.length) {
    lines.push('');
    lines.push('Notes:');
    lines.push('');
    for (const note of results.notes) lines.push(`- ${note}`);
  }
  return `${lines.join('\n')}\n`;
}

function main() {
  const options = readOptions(process.argv.slice(2));
  if (options === null) return;
  let results;
  try {
    results = JSON.parse(readFileSync(options.json, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read ${options.json} (${error.code ?? error.message}); run \`npm run bench\` first`);
  }
  if (!Array.isArray(results.results) || !Array.isArray(results.variants)) {
    throw new Error(`${options.json} is not a bench/compare.mjs results file`);
  }
  const text = markdown(results, options);
  if (!options.write) {
    process.stdout.write(text);
    return;
  }
  const readme = readFileSync(options.readme, 'utf8');
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < 0 || end < begin || readme.indexOf(BEGIN, begin + 1) >= 0) {
    throw new Error(`${options.readme} needs exactly one ${BEGIN} ... ${END} pair; nothing written`);
  }
  const updated = `${readme.slice(0, begin + BEGIN.length)}\n${text}${readme.slice(end)}`;
  const temporary = `${options.readme}.tmp-${process.pid}`;
  writeFileSync(temporary, updated);
  renameSync(temporary, options.readme);
  console.log(`readme-perf: replaced the table in ${path.relative(process.cwd(), options.readme)} (results of ${results.date})`);
}

try {
  main();
} catch (error) {
  console.error(`readme-perf: ${error.message}`);
  process.exit(1);
}
