// The native C baseline: the same C core built natively (bench/native.c,
// CMake target bench_native, built here into build/bench-native with -O3
// -march=native -ffp-contract=off), run in a child process driven over
// stdin/stdout on the same parameter values (params.mjs: same xorshift32
// generator and seed).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

import { ProgramRemote } from './remotes.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Builds bench_native (incremental) with CMake; returns { binary } or { skip }, with a note when an old binary stands in. */
export function buildNative() {
  const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
  if (!has('cmake')) return { skip: 'cmake not found' };
  if (!has('gcc')) return { skip: 'gcc not found (apt-get install gcc)' };
  const dir = path.join(ROOT, 'build', 'bench-native');
  const binary = path.join(dir, 'bench_native');
  const log = path.join(ROOT, 'build', 'bench-native.log');
  mkdirSync(path.join(ROOT, 'build'), { recursive: true });
  const run = (args) => {
    const result = spawnSync('cmake', args, { cwd: ROOT, env: { ...process.env, CC: 'gcc' }, encoding: 'utf8' });
    writeFileSync(log, `$ cmake ${args.join(' ')}\n${result.stdout ?? ''}${result.stderr ?? ''}`, { flag: 'a' });
    return result.status === 0;
  };
  writeFileSync(log, '');
  const configured =
    existsSync(path.join(dir, 'CMakeCache.txt')) ||
    run(['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_TESTING=OFF', '-DEMA_SANITIZE=OFF']);
  const built = configured && run(['--build', dir, '--target', 'bench_native']);
  if (!built) {
    if (existsSync(binary)) return { binary, note: `rebuilding bench_native failed (see ${log}); the previous binary ran` };
    return { skip: `building bench_native failed (see ${log})` };
  }
  return { binary };
}

/** The compiler and flags of the native rows, for the header and results.json. */
export function describeNativeBuild() {
  const gcc = spawnSync('gcc', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'gcc';
  return `${gcc}, -O3 -march=native -ffp-contract=off (build/bench-native/bench_native)`;
}

/** bench_native for one model: one command line in, one JSON line out. */
export class NativeRemote extends ProgramRemote {
  constructor(binary, spec) {
    super('native', binary, spec);
  }
}
