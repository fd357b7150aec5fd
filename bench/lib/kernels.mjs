// The update micro-kernels on their own: bench/kernels.c, built for each
// build (natively with gcc -O3 -march=native, and with Emscripten as the
// SIMD128 and scalar WebAssembly builds, linked as the shipped modules are)
// and run (the Wasm ones under Node, through test/c/run-wasm.mjs). Two
// scripts read it:
//
//   bench/kernels.mjs   every kernel at every size (npm run bench:kernels)
//   bench/compare.mjs   its rounding section: each family's _best kernel at
//                       the sizes of the 1M and 16M models (npm run bench)
//
// A family is one rounding of the update; the unfused one (LitEma's) is the
// reference the others are compared with, in the same build and size.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const KERNEL_BUILDS = ['native', 'simd', 'scalar'];

const BUILD_LABELS = { native: 'native C', simd: 'Wasm SIMD128', scalar: 'Wasm scalar' };

/** A build's name in tables: native says its compiler flags and machine. */
export function buildLabel(build, long = false) {
  return build === 'native' && long ? `native (gcc -O3 -march=native, ${os.arch()})` : BUILD_LABELS[build];
}

/** The roundings of the update, one kernel family each (src/kernels/*.inc). */
export const ROUNDINGS = [
  { family: 'f32-vupdate', label: 'unfused (LitEma, torch_ema, diffusers)' },
  { family: 'f32-vlerp', label: 'lerp_ (timm, ema-pytorch)' },
  { family: 'f32-vfma', label: 'one rounding (diffusers foreach)' },
  { family: 'f32-vkeras', label: 'Keras 3, optax' },
];
const UNFUSED = 'f32-vupdate';

/** The fused-rounding families: the ones emulating a fused multiply-add. */
export const FUSED_FAMILIES = ['f32-vlerp', 'f32-vfma'];

/** A kernel's name without its family prefix: ema_f32_vlerp_ukernel__wasmsimd_u8 -> wasmsimd_u8. */
export function shortKernelName(kernel) {
  return kernel.replace(/^ema_f32_\w+?_ukernel__/, '');
}

/** A build step that failed: its output, for the log or a note. */
export class KernelBuildError extends Error {
  constructor(message, output) {
    super(message);
    this.output = output;
  }
}

/** Runs a build step quietly; its output goes into the error if it fails. */
function step(command, args) {
  const jobs = String(os.availableParallelism?.() ?? os.cpus().length);
  const fullArgs = args[0] === '--build' ? [...args, '-j', jobs] : args;
  const result = spawnSync(command, fullArgs, { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`;
    throw new KernelBuildError(`${command} ${fullArgs.join(' ')} failed`, output);
  }
}

/**
 * Builds bench/kernels.c for `build` (incremental) and returns how to run it:
 * { build, command, args }. Throws a KernelBuildError when a step fails.
 */
export function prepareKernelBenchmark(build) {
  mkdirSync(path.join(ROOT, 'build'), { recursive: true });
  if (build === 'native') {
    step('cmake', ['-S', '.', '-B', 'build/bench-kernels-native', '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_TESTING=OFF']);
    step('cmake', ['--build', 'build/bench-kernels-native', '--target', 'bench_kernels']);
    return { build, command: path.join(ROOT, 'build/bench-kernels-native/bench_kernels'), args: [] };
  }
  step('emcmake', ['cmake', '-S', '.', '-B', 'build/wasm-tests', '-DEMA_WASM_TESTS=ON', '-DCMAKE_BUILD_TYPE=Release']);
  step('cmake', ['--build', 'build/wasm-tests', '--target', `bench_kernels_${build}`]);
  return {
    build,
    command: process.execPath,
    args: ['--no-warnings', path.join(ROOT, 'test/c/run-wasm.mjs'), path.join(ROOT, `build/wasm-tests/bench_kernels_${build}.wasm`)],
  };
}

/** Why a build cannot be prepared here, or null: the tools it needs. */
export function missingKernelTools(build) {
  const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
  if (!has('cmake')) return 'cmake not found';
  if (build === 'native') return has('gcc') ? null : 'gcc not found';
  return has('emcmake') ? null : 'emcmake (Emscripten) not found';
}

/**
 * Runs a prepared benchmark: { quick, best (only each family's _best kernel),
 * sizes (labels of bench/kernels.c: L1, L2, L3, 1M, 16M) }. Returns its rows,
 * one per kernel and size: { build, family, kernel, best, level, elements,
 * seconds_per_call, elements_per_second, gb_per_second }.
 */
export function runKernelBenchmark(program, { quick = false, best = false, sizes } = {}) {
  const args = [...program.args, ...(quick ? ['--quick'] : []), ...(best ? ['--best'] : []), ...(sizes ? ['--sizes', sizes.join(',')] : [])];
  const output = execFileSync(program.command, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return output
    .split('\n')
    .filter(Boolean)
    .map((line) => ({ build: program.build, ...JSON.parse(line) }));
}

/**
 * Each family's _best kernel, per build and size, with its time per element
 * over the unfused kernel's (the same build and size): the rows of the
 * rounding table and of results.json's `rounding`.
 */
export function roundingSummary(rows) {
  const summary = [];
  for (const build of KERNEL_BUILDS) {
    for (const level of [...new Set(rows.map((row) => row.level))]) {
      const best = (family) => rows.find((row) => row.build === build && row.level === level && row.family === family && row.best);
      const unfused = best(UNFUSED);
      for (const { family, label } of ROUNDINGS) {
        const row = best(family);
        if (!row) continue;
        summary.push({
          build,
          level,
          elements: row.elements,
          family,
          label,
          kernel: row.kernel,
          gElementsPerSecond: row.elements_per_second / 1e9,
          gbPerSecond: row.gb_per_second,
          timeVsUnfused: unfused ? unfused.elements_per_second / row.elements_per_second : undefined,
        });
      }
    }
  }
  return summary;
}

/**
 * The rounding table as text lines: one line per build and rounding, for
 * each size its G elements/s and time per element over the unfused kernel's.
 */
export function roundingTable(summary) {
  const levels = [...new Set(summary.map((row) => row.level))];
  const header = ['build', 'rounding', 'kernel', ...levels.flatMap((level) => [`${level} G el/s`, `${level} vs unfused`])];
  const keys = [...new Set(summary.map((row) => `${row.build}\0${row.family}`))];
  const lines = keys.map((key) => {
    const [build, family] = key.split('\0');
    const cells = summary.filter((row) => row.build === build && row.family === family);
    const byLevel = new Map(cells.map((row) => [row.level, row]));
    return [
      buildLabel(build),
      cells[0].label,
      shortKernelName(cells[0].kernel),
      ...levels.flatMap((level) => {
        const row = byLevel.get(level);
        if (!row) return ['', ''];
        return [row.gElementsPerSecond.toFixed(2), row.timeVsUnfused === undefined ? '' : `${row.timeVsUnfused.toFixed(2)}x`];
      }),
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells) =>
    cells
      .map((cell, column) => (column < 3 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ')
      .trimEnd();
  const out = [format(header), widths.map((width) => '-'.repeat(width)).join('  ')];
  lines.forEach((line, index) => {
    if (index > 0 && line[0] !== lines[index - 1][0]) out.push('');
    out.push(format(line));
  });
  return out;
}

/** What the rounding table's numbers mean, for under it. */
export const ROUNDING_LEGEND = [
  "Each family's _best kernel alone (bench/kernels.c), best of interleaved trials; 12 bytes per",
  'element. vs unfused: its time per element over the unfused kernel\'s in the same build and size',
  '(lower is faster; the fused roundings emulate a fused multiply-add exactly, which SIMD128 lacks).',
];

// ---- bench/compare.mjs's rounding section ----------------------------------

/** The sizes it measures: those of the 1M and 16M models (bench/lib/models.mjs). */
export const ROUNDING_SIZES = ['1M', '16M'];

/**
 * Builds the kernel benchmark of each of `builds` before anything is timed;
 * a build that cannot be built here is left out, with a note. Returns the
 * prepared programs.
 */
export function prepareRoundingPrograms(builds, notes) {
  const programs = [];
  for (const build of builds) {
    const missing = missingKernelTools(build);
    if (missing) {
      notes.push(`rounding: ${buildLabel(build)} skipped: ${missing}`);
      continue;
    }
    try {
      programs.push(prepareKernelBenchmark(build));
    } catch (error) {
      if (!(error instanceof KernelBuildError)) throw error;
      notes.push(`rounding: ${buildLabel(build)} skipped: ${error.message}`);
    }
  }
  return programs;
}

/** Each family's _best kernel of every prepared build at ROUNDING_SIZES: roundingSummary()'s rows. */
export function measureRounding(programs, quick) {
  const rows = programs.flatMap((program) => runKernelBenchmark(program, { quick, best: true, sizes: ROUNDING_SIZES }));
  return roundingSummary(rows);
}
