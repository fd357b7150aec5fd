// The native rows of the threads benchmark, each program run once as a child
// process that prints one JSON line per row:
//
//   runNativeThreads  bench/threads.c, the C core with one step split across
//                     OpenMP threads (CMake target bench_threads, built into
//                     build/bench-native beside bench_native, -O3
//                     -march=native with the core's exactness flags);
//   runTorchThreads   bench/torch_threads.py, PyTorch's CPU EMA (lerp_ per
//                     tensor, and _foreach_lerp_ where PyTorch has it), run by
//                     Debian's /usr/bin/python3 with python3-torch.
//
// Both take { params, threads, repeats }: parameter counts (numbers or
// strings such as '16M'), thread counts, timed updates per row. Each returns
// its rows ({ work, params, threads, medianMs, minMs, samples }) or
// { skipped: reason } when its toolchain is missing; a program that fails
// (bench_threads exits 1 when a split step is not bit-identical) throws.

import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildNative } from './native.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_DIR = path.join(ROOT, 'build', 'bench-native'); // buildNative()'s
const BUILD_LOG = path.join(ROOT, 'build', 'bench-native.log'); // buildNative()'s
const PYTHON = '/usr/bin/python3'; // Debian's, which python3-torch installs into
const TORCH_SCRIPT = path.join(ROOT, 'bench', 'torch_threads.py');

/** Builds bench_threads (incremental) in buildNative()'s directory; { binary } or { skip }. */
function buildThreads() {
  // cmake and gcc found, build/bench-native configured (and bench_native built).
  const native = buildNative();
  if (native.skip !== undefined) return { skip: native.skip };
  const args = ['--build', BUILD_DIR, '--target', 'bench_threads'];
  const result = spawnSync('cmake', args, { cwd: ROOT, encoding: 'utf8' });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  appendFileSync(BUILD_LOG, `$ cmake ${args.join(' ')}\n${output}`);
  if (result.status === 0) return { binary: path.join(BUILD_DIR, 'bench_threads') };
  // CMakeLists.txt defines the target only when find_package(OpenMP) finds OpenMP for C.
  if (/No rule to make target|unknown target/.test(output)) {
    return { skip: 'OpenMP not found: CMake found no OpenMP for C (gcc with libgomp)' };
  }
  return { skip: `building bench_threads failed (see ${BUILD_LOG})` };
}

/** The command-line arguments both programs take. */
function argumentsOf({ params = ['16M', '64M'], threads = [1, 2], repeats = 20 } = {}) {
  return ['--params', [params].flat().join(','), '--threads', [threads].flat().join(','), '--repeats', String(repeats)];
}

/** Runs a program to its end: { code, stdout, stderr }. */
function runProgram(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The JSON lines of a program's stdout; throws, naming the program, if it failed. */
async function rowsOf(name, command, args) {
  const { code, stdout, stderr } = await runProgram(command, args);
  if (code !== 0) throw new Error(`${name} exited with status ${code}: ${stderr.trim()}`);
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

/** bench/threads.c's rows: work 'resident' and 'copy-in', per parameter count and thread count. */
export async function runNativeThreads(options = {}) {
  const build = buildThreads();
  if (build.skip !== undefined) return { skipped: build.skip };
  return rowsOf('bench_threads', build.binary, argumentsOf(options));
}

/** bench/torch_threads.py's rows: work 'torch-lerp' and 'torch-foreach-lerp' (when PyTorch has it). */
export async function runTorchThreads(options = {}) {
  if (!existsSync(PYTHON)) return { skipped: `${PYTHON} not found (apt-get install python3 python3-torch)` };
  const rows = await rowsOf('bench/torch_threads.py', PYTHON, [TORCH_SCRIPT, ...argumentsOf(options)]);
  const skipped = rows.find((row) => row.skipped !== undefined);
  return skipped !== undefined ? { skipped: skipped.skipped } : rows;
}
