// The update micro-kernels, one by one: every kernel of every rounding
// (src/kernels/*.inc), natively (gcc -O3 -march=native) and in the SIMD128
// and scalar WebAssembly builds, at L1-, L2- and L3-sized arrays and at the
// sizes of the 1M and 16M models; then each rounding's _best kernel against
// the unfused one (LitEma's). Building and running: bench/lib/kernels.mjs.
//
//   npm run bench:kernels [-- --quick] [-- --builds simd,scalar] [-- --json out.json]
//
// Bytes are 12 per element (shadow read, parameter read, shadow written), so
// the largest sizes read against the machine's memory bandwidth.
import { writeFileSync } from 'node:fs';
import os from 'node:os';

import { createCommandLine, nonEmptyPath, oneOf } from '../scripts/flags.mjs';
import {
  buildLabel,
  KERNEL_BUILDS,
  KernelBuildError,
  prepareKernelBenchmark,
  ROUNDING_LEGEND,
  roundingSummary,
  roundingTable,
  runKernelBenchmark,
  shortKernelName,
} from './lib/kernels.mjs';

const USAGE = `usage: node bench/kernels.mjs [--quick] [--builds LIST] [--json FILE]
  --quick         fewer trials (a smoke test, not figures to quote)
  --builds LIST   which of native,simd,scalar to run (default: all three)
  --json FILE     also write the figures to FILE`;

/** A comma-separated subset of KERNEL_BUILDS, each checked. */
function buildList(text, flag) {
  const builds = text.split(',').filter(Boolean);
  const check = oneOf(KERNEL_BUILDS);
  for (const build of builds.length === 0 ? [''] : builds) check(build, flag);
  return builds;
}

const flags = createCommandLine({
  program: 'bench/kernels',
  usage: USAGE,
  defaults: { quick: false, builds: KERNEL_BUILDS, json: undefined },
  valueFlags: { '--builds': ['builds', buildList], '--json': ['json', nonEmptyPath] },
  switches: { '--quick': ['quick', true] },
}).readOptions(process.argv.slice(2));
if (flags === null) process.exit();
const { builds } = flags;

const rows = [];
for (const build of builds) {
  process.stderr.write(`bench:kernels: building and running the ${build} build\n`);
  let program;
  try {
    program = prepareKernelBenchmark(build);
  } catch (error) {
    if (error instanceof KernelBuildError) process.stderr.write(error.output);
    throw error;
  }
  rows.push(...runKernelBenchmark(program, { quick: flags.quick }));
}

const levels = [...new Set(rows.map((row) => row.level))];
const sizeOf = (level) => rows.find((row) => row.level === level);
const kib = (elements) => {
  const bytes = elements * 8; // shadow and parameter
  return bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`;
};
const header = ['build', 'family', 'kernel', ...levels.map((level) => `${level} (${kib(sizeOf(level).elements)})`)];
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
for (const build of builds) {
  const kernels = [...new Set(rows.filter((row) => row.build === build).map((row) => row.kernel))];
  for (const kernel of kernels) {
    const cells = levels.map((level) => {
      const row = rows.find((r) => r.build === build && r.kernel === kernel && r.level === level);
      return `${row.gb_per_second.toFixed(1)} GB/s, ${(row.elements_per_second / 1e9).toFixed(2)} G el/s`;
    });
    const { family, best } = rows.find((r) => r.build === build && r.kernel === kernel);
    lines.push(`| ${buildLabel(build, true)} | ${family} | ${shortKernelName(kernel)}${best ? ' (best)' : ''} | ${cells.join(' | ')} |`);
  }
}
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const summary = roundingSummary(rows);
console.log(`update kernels on ${cpu}, Node ${process.version}${flags.quick ? ' (--quick)' : ''}; best of ${flags.quick ? 5 : 25} trials`);
console.log('(bytes: 12 per element; the sizes are of shadow + parameter; (best): the family\'s _best in that build)\n');
console.log(lines.join('\n'));
console.log('\nroundings of the update, each against the unfused one:\n');
console.log(roundingTable(summary.filter((row) => row.level === '1M' || row.level === '16M')).join('\n'));
console.log(`\n${ROUNDING_LEGEND.join('\n')}`);
if (flags.json !== undefined) {
  writeFileSync(flags.json, `${JSON.stringify({ cpu, node: process.version, quick: flags.quick, rows, rounding: summary }, null, 2)}\n`);
}
