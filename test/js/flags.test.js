// scripts/flags.mjs: the one flag parser of the bench, scripts and demos.
// Unit tests of parseFlags() and the value checks, then each script run as a
// child process with --help and with bad flags: the usage on stdout, or the
// error naming the flag on stderr and exit code 2, before any work starts.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  nonEmptyPath,
  numberFromZeroToOne,
  oneOf,
  parseFlags,
  positiveInteger,
  resolvedPath,
  uint32,
  UsageError,
} from '../../scripts/flags.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const TABLE = {
  defaults: { epochs: 8, decay: 0.99, warmup: true, out: null },
  valueFlags: {
    '--epochs': ['epochs', positiveInteger],
    '--decay': ['decay', numberFromZeroToOne],
    '--out': ['out', nonEmptyPath],
  },
  switches: { '--no-warmup': ['warmup', false] },
};

function usageError(args, message) {
  assert.throws(() => parseFlags(args, TABLE), (error) => error instanceof UsageError && error.message === message);
}

describe('parseFlags', () => {
  test('no flags: the defaults and help: false', () => {
    assert.deepEqual(parseFlags([], TABLE), { epochs: 8, decay: 0.99, warmup: true, out: null, help: false });
  });

  test('values as `--flag value` and `--flag=value`, switches, the last repeat wins', () => {
    assert.deepEqual(parseFlags(['--epochs', '3', '--decay=0.5', '--no-warmup', '--epochs=4', '--out', 'a b.svg'], TABLE), {
      epochs: 4,
      decay: 0.5,
      warmup: false,
      out: 'a b.svg',
      help: false,
    });
  });

  test('-h and --help set help', () => {
    assert.equal(parseFlags(['-h'], TABLE).help, true);
    assert.equal(parseFlags(['--epochs', '2', '--help'], TABLE).help, true);
  });

  test('a value that starts with one dash reaches the check', () => {
    usageError(['--decay', '-1'], "--decay must be a number in [0, 1], got '-1'");
    assert.equal(parseFlags(['--out', '-'], TABLE).out, '-');
  });

  test('an unknown flag is named as typed', () => {
    usageError(['--epoch', '3'], "unknown flag '--epoch'");
    usageError(['--bogus=1'], "unknown flag '--bogus'");
    usageError(['-x'], "unknown flag '-x'");
    usageError(['-hx'], "unknown flag '-hx'");
  });

  test('a value flag without its value', () => {
    usageError(['--epochs'], '--epochs needs a value');
    usageError(['--epochs', '--decay', '0.5'], '--epochs needs a value');
  });

  test('a switch given a value', () => {
    usageError(['--no-warmup=1'], "--no-warmup takes no value, got '--no-warmup=1'");
    usageError(['--help=yes'], "--help takes no value, got '--help=yes'");
  });

  test('arguments that are not flags', () => {
    usageError(['3'], "unexpected argument '3' (this script takes only flags)");
    usageError(['--', '--epochs'], "unknown flag '--'");
  });

  test('the first mistake from the left is reported', () => {
    usageError(['--epochs', '0', '--bogus'], "--epochs must be a positive integer, got '0'");
  });
});

describe('value checks', () => {
  test('positiveInteger', () => {
    assert.equal(positiveInteger('1', '--n'), 1);
    assert.equal(positiveInteger('9007199254740991', '--n'), Number.MAX_SAFE_INTEGER);
    for (const text of ['0', '-1', '1.5', '1e3', '0x10', '', ' 1', '9007199254740992']) {
      assert.throws(() => positiveInteger(text, '--n'), { message: `--n must be a positive integer, got '${text}'` });
    }
  });

  test('numberFromZeroToOne', () => {
    assert.equal(numberFromZeroToOne('0', '--d'), 0);
    assert.equal(numberFromZeroToOne('1', '--d'), 1);
    assert.equal(numberFromZeroToOne('.999', '--d'), 0.999);
    assert.equal(numberFromZeroToOne('5e-1', '--d'), 0.5);
    for (const text of ['1.0001', '-0.1', 'Infinity', 'NaN', '0x1', '', '.']) {
      assert.throws(() => numberFromZeroToOne(text, '--d'), { message: `--d must be a number in [0, 1], got '${text}'` });
    }
  });

  test('uint32', () => {
    assert.equal(uint32('0', '--seed'), 0);
    assert.equal(uint32('4294967295', '--seed'), 0xffffffff);
    for (const text of ['4294967296', '-1', '1.5', '']) {
      assert.throws(() => uint32(text, '--seed'), { message: `--seed must be an integer in [0, 4294967295], got '${text}'` });
    }
  });

  test('oneOf', () => {
    const backend = oneOf(['cpu', 'wasm']);
    assert.equal(backend('wasm', '--backend'), 'wasm');
    assert.throws(() => backend('webgl', '--backend'), { message: "--backend must be cpu or wasm, got 'webgl'" });
  });

  test('nonEmptyPath and resolvedPath', () => {
    assert.equal(nonEmptyPath('out.json', '--json'), 'out.json');
    assert.equal(resolvedPath('out.json', '--json'), path.resolve('out.json'));
    assert.throws(() => nonEmptyPath('', '--json'), { message: '--json needs a non-empty path' });
    assert.throws(() => resolvedPath('', '--json'), { message: '--json needs a non-empty path' });
  });
});

// Every script that reads flags, with its program name; each must stop at a
// bad flag before loading anything heavy or starting work.
const SCRIPTS = [
  { file: 'bench/compare.mjs', program: 'bench/compare', usage: 'usage: node bench/compare.mjs' },
  { file: 'bench/load.mjs', program: 'bench/load', usage: 'usage: node bench/load.mjs' },
  { file: 'bench/kernels.mjs', program: 'bench/kernels', usage: 'usage: node bench/kernels.mjs' },
  { file: 'bench/guard.mjs', program: 'bench/guard', usage: 'usage: node bench/guard.mjs' },
  { file: 'bench/profiles.mjs', program: 'bench/profiles', usage: 'usage: node bench/profiles.mjs' },
  { file: 'bench/threads.mjs', program: 'bench/threads', usage: 'usage: node bench/threads.mjs' },
  { file: 'scripts/readme-perf.mjs', program: 'readme-perf', usage: 'usage: node scripts/readme-perf.mjs' },
  { file: 'scripts/serve.mjs', program: 'serve', usage: 'usage: node scripts/serve.mjs' },
  { file: 'demo/train-node.mjs', program: 'train-node', usage: 'Usage: node demo/train-node.mjs' },
  { file: 'demo/train-tfjs.mjs', program: 'train-tfjs', usage: 'Usage: node demo/train-tfjs.mjs' },
];

function run(file, args) {
  return spawnSync(process.execPath, [path.join(ROOT, file), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

describe('the scripts', () => {
  for (const { file, program, usage } of SCRIPTS) {
    test(`${file}: --help prints the usage and exits 0`, () => {
      const result = run(file, ['--help']);
      assert.equal(result.status, 0, result.stderr);
      assert.ok(result.stdout.startsWith(usage), result.stdout);
      assert.equal(result.stderr, '');
    });

    test(`${file}: an unknown flag is named, with the usage, exit code 2`, () => {
      const result = run(file, ['--bogus']);
      assert.equal(result.status, 2, result.stderr);
      assert.equal(result.stdout, '');
      assert.ok(result.stderr.startsWith(`${program}: unknown flag '--bogus'\n\n${usage}`), result.stderr);
    });

    test(`${file}: an argument that is not a flag, exit code 2`, () => {
      const result = run(file, ['stray']);
      assert.equal(result.status, 2, result.stderr);
      assert.ok(result.stderr.startsWith(`${program}: unexpected argument 'stray' (this script takes only flags)\n`), result.stderr);
    });
  }

  test('bench/compare.mjs: an unknown model in --only, exit code 2', () => {
    const result = run('bench/compare.mjs', ['--only', '1M,nope']);
    assert.equal(result.status, 2, result.stderr);
    assert.ok(result.stderr.startsWith("bench/compare: --only: unknown model in '1M,nope'\n"), result.stderr);
  });

  test('bench/compare.mjs: an empty --json path is refused before the run', () => {
    const result = run('bench/compare.mjs', ['--json=']);
    assert.equal(result.status, 2, result.stderr);
    assert.ok(result.stderr.startsWith('bench/compare: --json needs a non-empty path\n'), result.stderr);
  });

  test('bench/compare.mjs: --no-rounding is a switch (no value), exit code 2', () => {
    const result = run('bench/compare.mjs', ['--no-rounding=yes']);
    assert.equal(result.status, 2, result.stderr);
    assert.ok(result.stderr.startsWith("bench/compare: --no-rounding takes no value, got '--no-rounding=yes'\n"), result.stderr);
    assert.ok(run('bench/compare.mjs', ['--help']).stdout.includes('--no-rounding'));
  });

  test('bench/kernels.mjs: --builds takes only native, simd and scalar, exit code 2', () => {
    const result = run('bench/kernels.mjs', ['--builds', 'simd,avx']);
    assert.equal(result.status, 2, result.stderr);
    assert.ok(result.stderr.startsWith("bench/kernels: --builds must be native or simd or scalar, got 'avx'\n"), result.stderr);
  });

  test('scripts/serve.mjs: --no-isolation is a switch (no value), in the usage, exit code 2', () => {
    const result = run('scripts/serve.mjs', ['--no-isolation=1']);
    assert.equal(result.status, 2, result.stderr);
    assert.ok(result.stderr.startsWith("serve: --no-isolation takes no value, got '--no-isolation=1'\n"), result.stderr);
    assert.ok(run('scripts/serve.mjs', ['--help']).stdout.includes('--no-isolation'));
  });

  test('demo/train-tfjs.mjs: a value check names the flag, exit code 2', () => {
    const result = run('demo/train-tfjs.mjs', ['--backend', 'webgl']);
    assert.equal(result.status, 2, result.stderr);
    assert.ok(result.stderr.startsWith("train-tfjs: --backend must be cpu or wasm, got 'webgl'\n"), result.stderr);
  });
});
