// The f32 vupdate micro-kernels, one by one: builds bench/kernels.c for each
// build (natively with gcc -O3 -march=native, and with Emscripten as the
// SIMD128 and scalar WebAssembly builds, linked as the shipped modules are),
// runs it (the Wasm ones under Node, through test/c/run-wasm.mjs) and prints
// GB/s and elements/s per kernel for L1-, L2-, L3- and memory-sized arrays.
//
//   npm run bench:kernels [-- --quick] [-- --builds simd,scalar] [-- --json out.json]
//
// Bytes are 12 per element (shadow read, parameter read, shadow written), so
// the memory-sized column reads against the machine's memory bandwidth.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

import { createCommandLine, nonEmptyPath, oneOf } from '../scripts/flags.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const BUILD_NAMES = ['native', 'simd', 'scalar'];
const USAGE = `usage: node bench/kernels.mjs [--quick] [--builds LIST] [--json FILE]
  --quick         fewer trials (a smoke test, not figures to quote)
  --builds LIST   which of native,simd,scalar to run (default: all three)
  --json FILE     also write the figures to FILE`;

/** A comma-separated subset of BUILD_NAMES, each checked. */
function buildList(text, flag) {
  const builds = text.split(',').filter(Boolean);
  const check = oneOf(BUILD_NAMES);
  for (const build of builds.length === 0 ? [''] : builds) check(build, flag);
  return builds;
}

const flags = createCommandLine({
  program: 'bench/kernels',
  usage: USAGE,
  defaults: { quick: false, builds: BUILD_NAMES, json: undefined },
  valueFlags: { '--builds': ['builds', buildList], '--json': ['json', nonEmptyPath] },
  switches: { '--quick': ['quick', true] },
}).readOptions(process.argv.slice(2));
if (flags === null) process.exit();
const { builds } = flags;

const jobs = String(os.availableParallelism?.() ?? os.cpus().length);

function run(command, args) {
  return execFileSync(command, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Runs a build step quietly; its output is shown only if it fails. */
function step(command, args) {
  try {
    execFileSync(command, args, { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    process.stderr.write(`${error.stdout ?? ''}${error.stderr ?? ''}`);
    throw new Error(`bench/kernels.mjs: ${command} ${args.join(' ')} failed`);
  }
}

/** Builds the benchmark for `build` and returns the command that runs it. */
function prepare(build) {
  mkdirSync(`${root}build`, { recursive: true });
  if (build === 'native') {
    step('cmake', ['-S', '.', '-B', 'build/bench-kernels-native', '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_TESTING=OFF']);
    step('cmake', ['--build', 'build/bench-kernels-native', '--target', 'bench_kernels', '-j', jobs]);
    return ['build/bench-kernels-native/bench_kernels', []];
  }
  step('emcmake', ['cmake', '-S', '.', '-B', 'build/wasm-tests', '-DEMA_WASM_TESTS=ON', '-DCMAKE_BUILD_TYPE=Release']);
  step('cmake', ['--build', 'build/wasm-tests', '--target', `bench_kernels_${build}`, '-j', jobs]);
  return [process.execPath, ['--no-warnings', 'test/c/run-wasm.mjs', `build/wasm-tests/bench_kernels_${build}.wasm`]];
}

const LABELS = { native: `native (gcc -O3 -march=native, ${os.arch()})`, simd: 'Wasm SIMD128', scalar: 'Wasm scalar' };
const rows = [];
for (const build of builds) {
  process.stderr.write(`bench:kernels: building and running the ${build} build\n`);
  const [command, args] = prepare(build);
  const output = run(command, [...args, ...(flags.quick ? ['--quick'] : [])]);
  for (const line of output.split('\n').filter(Boolean)) rows.push({ build, ...JSON.parse(line) });
}

const levels = [...new Set(rows.map((row) => row.level))];
const sizeOf = (level) => rows.find((row) => row.level === level);
const kib = (elements) => {
  const bytes = elements * 8; // shadow and parameter
  return bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`;
};
const header = ['build', 'kernel', ...levels.map((level) => `${level} (${kib(sizeOf(level).elements)})`)];
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
for (const build of builds) {
  const kernels = [...new Set(rows.filter((row) => row.build === build).map((row) => row.kernel))];
  for (const kernel of kernels) {
    const cells = levels.map((level) => {
      const row = rows.find((r) => r.build === build && r.kernel === kernel && r.level === level);
      return `${row.gb_per_second.toFixed(1)} GB/s, ${(row.elements_per_second / 1e9).toFixed(2)} G el/s`;
    });
    lines.push(`| ${LABELS[build]} | ${kernel.replace('ema_f32_vupdate_ukernel__', '')} | ${cells.join(' | ')} |`);
  }
}
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`f32 vupdate kernels on ${cpu}, Node ${process.version}${flags.quick ? ' (--quick)' : ''}; best of ${flags.quick ? 5 : 25} trials`);
console.log('(bytes: 12 per element; the sizes are of shadow + parameter)\n');
console.log(lines.join('\n'));
if (flags.json !== undefined) {
  writeFileSync(flags.json, `${JSON.stringify({ cpu, node: process.version, quick: flags.quick, rows }, null, 2)}\n`);
}
