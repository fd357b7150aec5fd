// The native rows of bench/profiles.mjs: bench/profiles.c and the C core
// (CMakeLists.txt's EMA_CORE_SOURCES) compiled by gcc with the core's
// exactness flags, once portable (-O3: x86-64's baseline SSE2 at most) and
// once for this machine (-O3 -march=native), each run in a child process
// driven over stdin/stdout on the same parameter values (params.mjs). The
// kernels are the scalar ones (f32-*-scalar-u4.c): the core has no x86 SIMD
// variant, so what vector code there is comes from gcc's auto-vectoriser.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ProgramRemote } from './remotes.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXACT_FLAGS = ['-ffp-contract=off', '-fno-fast-math']; // CMakeLists.txt's EMA_EXACT_FLAGS

/** The two native builds: id, label, gcc's optimisation flags. */
export const NATIVE_BUILDS = [
  { id: 'native', label: 'native C (gcc -O3)', flags: ['-O3'] },
  { id: 'nativeMarch', label: 'native C (gcc -O3 -march=native)', flags: ['-O3', '-march=native'] },
];

/** The core's sources, as CMakeLists.txt lists them (one list, so nothing is left out). */
function coreSources() {
  const cmake = readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
  const list = /set\(EMA_CORE_SOURCES([^)]*)\)/.exec(cmake);
  if (list === null) throw new Error('CMakeLists.txt: no set(EMA_CORE_SOURCES ...)');
  return list[1].split(/\s+/).filter(Boolean);
}

/** The headers and sources a build depends on, for the up-to-date check. */
function inputsOf(sources) {
  const headers = ['include', 'src', 'src/kernels'].flatMap((dir) =>
    readdirSync(path.join(ROOT, dir))
      .filter((name) => name.endsWith('.h') || name.endsWith('.inc'))
      .map((name) => path.join(dir, name)),
  );
  return ['bench/profiles.c', 'bench/bench_util.h', ...sources, ...headers].map((file) => path.join(ROOT, file));
}

/**
 * Builds bench/profiles.c for each of NATIVE_BUILDS into build/bench-profiles/
 * (again only when a source is newer than the binary). Returns the builds
 * that built, each { id, label, flags, compiler, binary }, and notes for
 * those that did not.
 */
export function buildNativeProfiles() {
  const notes = [];
  if (spawnSync('sh', ['-c', 'command -v gcc']).status !== 0) return { builds: [], notes: ['native rows skipped: gcc not found'] };
  const compiler = spawnSync('gcc', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  const sources = coreSources();
  const inputs = inputsOf(sources);
  const dir = path.join(ROOT, 'build', 'bench-profiles');
  mkdirSync(dir, { recursive: true });
  const builds = [];
  for (const build of NATIVE_BUILDS) {
    const binary = path.join(dir, `bench_profiles_${build.id}`);
    const stale = !existsSync(binary) || inputs.some((input) => existsSync(input) && statSync(input).mtimeMs > statSync(binary).mtimeMs);
    if (stale) {
      const args = ['-std=c11', ...build.flags, '-DNDEBUG', ...EXACT_FLAGS, '-Iinclude', '-Isrc', '-Isrc/kernels', 'bench/profiles.c', ...sources, '-lm', '-o', binary];
      const result = spawnSync('gcc', args, { cwd: ROOT, encoding: 'utf8' });
      if (result.status !== 0) {
        notes.push(`${build.label} skipped: gcc ${args.join(' ')} failed:\n${result.stderr}`);
        continue;
      }
    }
    builds.push({ ...build, compiler, binary });
  }
  return { builds, notes };
}

/** bench_profiles for one model and build: one command line in, one JSON line out. */
export class NativeProfilesRemote extends ProgramRemote {
  constructor(build, spec, sigmaRels) {
    super(build.label, build.binary, spec, [sigmaRels.join(',')]);
  }
}
