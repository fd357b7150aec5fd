// Nothing Node-only is reachable from what a browser bundle pulls in: each
// entry point, resolved with a browser's conditions (the package's exports
// map decides), imports no `node:` module and no Node built-in, directly or
// through any module it reaches. `ema-wasm/node` resolves to stubs there.
// Under Node's conditions the same entry gets the real file functions.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY_POINTS = ['ema-wasm', 'ema-wasm/tfjs', 'ema-wasm/ort', 'ema-wasm/node'];
const NODE_BUILTINS = new Set(builtinModules);
// The optional peer the TF.js adapter imports when no `tf` is passed.
const PEERS = ['@tensorflow/tfjs-core'];

let project;
let esbuild;

before(async () => {
  esbuild = await import('esbuild');
  // A project that has the package as a dependency (a link to this checkout).
  project = mkdtempSync(join(tmpdir(), 'ema-wasm-graph-'));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(root, join(project, 'node_modules', 'ema-wasm'), 'dir');
});

after(() => rmSync(project, { recursive: true, force: true }));

/** Every import of every module an entry reaches, as esbuild resolves it for `platform`. */
async function graphOf(entry, platform) {
  const result = await esbuild.build({
    stdin: { contents: `export * from '${entry}';`, resolveDir: project, loader: 'js' },
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform,
    external: PEERS,
    logLevel: 'silent',
  });
  const modules = Object.keys(result.metafile.inputs);
  const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports.map((edge) => edge.path));
  return { modules, imports };
}

for (const entry of ENTRY_POINTS) {
  test(`${entry} in a browser bundle reaches no node: module or Node built-in`, async () => {
    const { modules, imports } = await graphOf(entry, 'browser');
    const nodeOnly = imports.filter((path) => path.startsWith('node:') || NODE_BUILTINS.has(path));
    assert.deepEqual(nodeOnly, [], `${entry} reaches ${nodeOnly.join(', ')}`);
    assert.ok(modules.length > 0);
    if (entry === 'ema-wasm/node') {
      assert.ok(modules.some((path) => path.endsWith('js/node-unavailable.js')), modules.join('\n'));
      assert.ok(!modules.some((path) => path.endsWith('js/node.js')), 'the real file functions stay out');
    }
  });
}

test('ema-wasm/node under Node conditions is the real module (node:fs), and its browser stand-in explains itself', async () => {
  const { imports } = await graphOf('ema-wasm/node', 'node');
  assert.ok(imports.includes('node:fs/promises'), imports.join(', '));
  const stubs = await import('../../js/node-unavailable.js');
  const real = await import('../../js/node.js');
  assert.deepEqual(Object.keys(stubs).sort(), Object.keys(real).sort(), 'the stand-in has every function of the real module');
  await assert.rejects(stubs.saveEmaFile(), {
    name: 'Error',
    message: /^ema-wasm\/node: saveEmaFile reads and writes files with Node's fs, and this runtime is not Node\. Elsewhere, use ema\.save\(\)/,
  });
});
