// `npm pack` builds both .wasm files and ships them with the JS and types; a
// user installs the tarball into an empty project with no compiler anywhere
// on the PATH and runs an update from Node, on both builds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function run(command, args, options) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: 'pipe', ...options });
  } catch (error) {
    assert.fail(`${command} ${args.join(' ')} failed:\n${error.stdout}\n${error.stderr}`);
  }
}

/** A bin folder holding only node and npm: no emcc, clang, gcc or cc. */
function nodeOnlyPath(work) {
  const bin = join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  const npmCli = realpathSync(run('sh', ['-c', 'command -v npm']).trim());
  symlinkSync(npmCli, join(bin, 'npm'));
  return bin;
}

test('npm pack ships both builds; the tarball installs and runs with no compiler', { timeout: 180_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'ema-wasm-pack-'));
  try {
    const packed = join(work, 'packed');
    mkdirSync(packed);
    // prepack runs scripts/build.sh, so this also proves that pack builds.
    run('npm', ['pack', '--pack-destination', packed, '--loglevel=error'], { cwd: root });
    const tarballs = readdirSync(packed).filter((name) => name.endsWith('.tgz'));
    assert.equal(tarballs.length, 1, `expected one tarball, found ${tarballs}`);
    const tarball = join(packed, tarballs[0]);

    const listing = run('tar', ['-tzf', tarball]).split('\n').filter(Boolean);
    for (const file of ['package/dist/ema-simd.wasm', 'package/dist/ema-scalar.wasm', 'package/js/index.js',
      'package/js/index.d.ts', 'package/README.md', 'package/package.json']) {
      assert.ok(listing.includes(file), `tarball lacks ${file}`);
    }
    for (const file of listing) {
      assert.ok(!/^package\/(test|src|build|bench|scripts)\//.test(file), `tarball should not ship ${file}`);
    }

    const project = join(work, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }));
    const env = { HOME: work, PATH: nodeOnlyPath(work), npm_config_cache: join(work, 'npm-cache') };
    const compilers = run('/bin/sh', ['-c', 'command -v emcc clang gcc cc || true'], { env: { PATH: env.PATH } });
    assert.equal(compilers.trim(), '', 'the restricted PATH must find no compiler');
    run(join(env.PATH, 'npm'), ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: project, env });

    writeFileSync(join(project, 'main.js'), `
      import { createEma } from 'ema-wasm';
      const w = Float32Array.of(1, 2, 3);
      const results = [];
      for (const simd of [true, false]) {
        const ema = await createEma({ 'layer.w': w.slice() }, { decay: 0.5, useNumUpdates: false, simd });
        const decay = ema.update({ 'layer.w': Float32Array.of(3, 4, 5) });
        results.push({ simd: ema.simd, decay, shadow: Array.from(ema.shadow('layer.w')) });
      }
      console.log(JSON.stringify(results));
    `);
    const output = run(join(env.PATH, 'node'), ['main.js'], { cwd: project, env });
    assert.deepEqual(JSON.parse(output), [
      { simd: true, decay: 0.5, shadow: [2, 3, 4] },
      { simd: false, decay: 0.5, shadow: [2, 3, 4] },
    ]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
