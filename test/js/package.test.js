// `npm pack` builds both .wasm files and ships them with the JS and types; a
// user installs the tarball into an empty project with no compiler anywhere
// on the PATH and runs an update from Node, on both builds, through import
// and require. The tarball's files have sane modes, publint and
// arethetypeswrong find nothing, and the optional peers never block an
// install, whatever versions the project has.
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
      'package/js/index.d.ts', 'package/js/wasm/ema-simd.js', 'package/js/wasm/ema-scalar.js',
      'package/dist/cjs/index.cjs', 'package/dist/cjs/index.d.cts', 'package/dist/cjs/adapters/tfjs.cjs',
      'package/dist/cjs/adapters/ort.d.cts', 'package/dist/cjs/node.cjs', 'package/dist/cjs/node-unavailable.cjs',
      'package/dist/cjs/wasm/ema-simd.cjs', 'package/README.md', 'package/LICENSE', 'package/package.json']) {
      assert.ok(listing.includes(file), `tarball lacks ${file}`);
    }
    for (const file of listing) {
      assert.ok(!/^package\/(test|src|build|bench|scripts|demo)\//.test(file), `tarball should not ship ${file}`);
    }
    // Nothing in a package is a program: the linker leaves .wasm files executable.
    for (const line of run('tar', ['-tvzf', tarball]).split('\n').filter(Boolean)) {
      assert.match(line, /^-rw-r--r-- /, `file mode in the tarball: ${line}`);
    }

    // The published package as a linter sees it.
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    run('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1']);
    const publint = run(process.execPath, [join(root, 'node_modules/publint/src/cli.js'), unpacked, '--pack', 'false', '--strict']);
    assert.match(publint, /All good!/, publint);
    const attw = run(process.execPath, [join(root, 'node_modules/@arethetypeswrong/cli/dist/index.js'), tarball,
      '--format', 'table-flipped', '--exclude-entrypoints', './ema-simd.wasm', './ema-scalar.wasm']);
    assert.match(attw, /No problems found/, attw);

    const project = join(work, 'project');
    mkdirSync(project);
    // The project already has onnxruntime-web 1.22 (inference only, no
    // training API) and TF.js 5: npm must not refuse ema-wasm's optional peers.
    const peers = { 'onnxruntime-web': '1.22.0', '@tensorflow/tfjs-core': '5.0.0' };
    const dependencies = {};
    for (const [name, version] of Object.entries(peers)) {
      const folder = join(work, 'local-packages', name.replace('/', '+'));
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, 'package.json'), JSON.stringify({ name, version, main: 'index.js' }));
      writeFileSync(join(folder, 'index.js'), '');
      dependencies[name] = `file:${folder}`;
    }
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module', dependencies }));
    const env = { HOME: work, PATH: nodeOnlyPath(work), npm_config_cache: join(work, 'npm-cache') };
    const compilers = run('/bin/sh', ['-c', 'command -v emcc clang gcc cc || true'], { env: { PATH: env.PATH } });
    assert.equal(compilers.trim(), '', 'the restricted PATH must find no compiler');
    run(join(env.PATH, 'npm'), ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: project, env });

    // One program, run through import (main.mjs) and through require()
    // (main.cjs, which resolves the CommonJS copy).
    const program = `
      const w = Float32Array.of(1, 2, 3);
      const results = [];
      for (const simd of [true, false]) {
        const ema = await createEma({ 'layer.w': w.slice() }, { decay: 0.5, useNumUpdates: false, simd });
        const { decay } = ema.update({ 'layer.w': Float32Array.of(3, 4, 5) });
        results.push({ simd: ema.simd, decay, shadow: Array.from(ema.shadow('layer.w')) });
      }
      console.log(JSON.stringify({ resolved: RESOLVED, results }));
    `;
    writeFileSync(join(project, 'main.mjs'),
      `import { createEma } from 'ema-wasm';\n${program.replace('RESOLVED', "import.meta.resolve('ema-wasm')")}`);
    writeFileSync(join(project, 'main.cjs'),
      `const { createEma } = require('ema-wasm');\n(async () => {${program.replace('RESOLVED', "require.resolve('ema-wasm')")}})();`);
    const expected = [
      { simd: true, decay: 0.5, shadow: [2, 3, 4] },
      { simd: false, decay: 0.5, shadow: [2, 3, 4] },
    ];
    const imported = JSON.parse(run(join(env.PATH, 'node'), ['main.mjs'], { cwd: project, env }));
    assert.match(imported.resolved, /node_modules\/ema-wasm\/js\/index\.js$/);
    assert.deepEqual(imported.results, expected);
    const required = JSON.parse(run(join(env.PATH, 'node'), ['main.cjs'], { cwd: project, env }));
    assert.match(required.resolved, /node_modules\/ema-wasm\/dist\/cjs\/index\.cjs$/);
    assert.deepEqual(required.results, expected);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
