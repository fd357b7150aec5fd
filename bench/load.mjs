// What it costs an app to load ema-wasm, in the two designs the package had to
// choose between:
//
//   (A) inline  the .wasm bytes travel inside the package as base64 JS modules
//               (js/wasm/, the hash-wasm design, what ships): the app imports
//               createEma and creates an EMA; the built-in bytes are decoded
//               and compiled.
//   (B) asset   the .wasm is a separate file served as application/wasm, and
//               the app hands it over:
//               - stream: createEma(params, { wasm: await WebAssembly.compileStreaming(fetch(url)) }),
//                 the best an asset can do: compiled while it downloads;
//               - stream + preload: the same, and the HTML has a
//                 <link rel=preload> for the .wasm, so it downloads alongside
//                 the JS rather than after it (what an app can do to hide the
//                 extra request);
//               - url: createEma(params, { wasm: new URL(url) }), the package's
//                 own fetch + compile path.
//               A package built this way would not carry js/wasm/: its bundle
//               is emulated by stubbing those two modules out
//               (`export const wasmBase64 = ''`).
//
// Three measurements, all from an `npm pack --ignore-scripts` tarball of the
// working tree, extracted into a temp dir as node_modules/ema-wasm:
//
// 1. Bundle size: a tiny app (create an EMA, one update) bundled by esbuild
//    (esm, minified, platform browser), plus the .wasm a SIMD-capable browser
//    fetches in (B); raw, gzip -9 and brotli (max quality).
// 2. Time to first update in headless Chromium (playwright-core): the bundle
//    is served from node:http on 127.0.0.1, compressed ahead of time as a
//    static host or CDN would (brotli, which Chromium accepts; gzip for a
//    client that does not). Every run opens a fresh browser context (cold
//    HTTP and code caches), navigates, and the page records performance.now() when its first
//    ema.update() returns: "nav" is navigation start -> first update done,
//    "eval" is the bundle's first statement -> first update done. Variants
//    and sizes are interleaved round by round so a burst of machine load
//    hits all of them alike. Then again, fewer runs, on an emulated slow
//    network (DevTools Network.emulateNetworkConditions, 1.6 Mbps down /
//    750 kbps up / 150 ms latency per request, "Fast 3G"-like), where the
//    extra request of (B) and the bigger JS of (A) both cost real time.
// 3. Node: process start -> first update, for `import { createEma } from
//    'ema-wasm'` (A) and for bytes of dist/ema-simd.wasm read with readFile
//    and handed over (B, from a copy of the package with js/wasm/ stubbed
//    out), one child process per run. Two (B) rows: bytes handed to
//    options.wasm, and bytes compiled by the app and handed over as a
//    WebAssembly.Module. (They once differed by ~40 ms: options.wasm asked
//    whether bytes were a Response, and Node 18-20 load their whole fetch
//    implementation the first time that global is touched. Bytes are now
//    recognised before that question.)
//
// Both sizes of model: 1M float32 parameters (one 4 MB array) and 1000.
//
// Run (after `npm run build`; takes about 2-3 minutes):
//
//   node bench/load.mjs                  full run, tables on stdout
//   node bench/load.mjs --json FILE      also write the figures, the date,
//                                        the machine and the versions to FILE
//   node bench/load.mjs --quick          a few runs of each, a smoke test
//   node bench/load.mjs --no-throttle    skip the slow-network runs
//
// CHROMIUM_PATH picks another Chromium than /usr/bin/chromium. Needs the dev
// dependencies (esbuild, playwright-core) installed in the repository.

import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { access, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';

import { createCommandLine, nonEmptyPath } from '../scripts/flags.mjs';
import { CHROMIUM, CHROMIUM_ARGS } from '../test/js/chromium.js';

const execFileAsync = promisify(execFile);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: node bench/load.mjs [--json FILE] [--quick] [--no-throttle]
  --json FILE     also write the figures (with date, machine, versions) to FILE
  --quick         a few runs of each (a smoke test, not figures to quote)
  --no-throttle   skip the runs on the emulated slow network`;

/** "Fast 3G"-like, with the 150 ms as the latency DevTools adds to every request. */
const SLOW_NETWORK = {
  name: '1.6 Mbps down, 750 kbps up, 150 ms per request',
  conditions: {
    offline: false,
    latency: 150,
    downloadThroughput: 1.6e6 / 8,
    uploadThroughput: 750e3 / 8,
    connectionType: 'cellular3g',
  },
};

const MODEL_SIZES = [1_000_000, 1000];

const RUN_TIMEOUT_MS = 60_000;

// ---- command line ----------------------------------------------------------

const commandLine = createCommandLine({
  program: 'bench/load',
  usage: USAGE,
  defaults: { json: null, quick: false, throttle: true },
  valueFlags: { '--json': ['json', nonEmptyPath] },
  switches: { '--quick': ['quick', true], '--no-throttle': ['throttle', false] },
});

/** The options, with the run counts --quick implies; null when the script should stop (--help, a bad flag). */
function readOptions(args) {
  const options = commandLine.readOptions(args);
  if (options === null) return null;
  // 20 cold page loads per variant and size locally; the slow network costs
  // about a second a load, so fewer there (and only the 1M model: the network
  // does not care how big the model is, the page does the same work).
  options.browserRuns = options.quick ? 3 : 20;
  options.throttledRuns = options.quick ? 2 : 10;
  options.nodeRuns = options.quick ? 3 : 10;
  return options;
}

function fail(message) {
  console.error(`bench/load: ${message}`);
  process.exit(1);
}

// ---- statistics --------------------------------------------------------------

function sorted(values) {
  return [...values].sort((a, b) => a - b);
}

function median(values) {
  const s = sorted(values);
  const middle = s.length >> 1;
  return s.length % 2 === 1 ? s[middle] : (s[middle - 1] + s[middle]) / 2;
}

/** Nearest-rank percentile: with 20 runs, p90 is the 18th fastest. */
function percentile(values, fraction) {
  const s = sorted(values);
  return s[Math.max(0, Math.ceil(fraction * s.length) - 1)];
}

function summary(values) {
  return {
    median: round(median(values)),
    p90: round(percentile(values, 0.9)),
    min: round(Math.min(...values)),
    runs: values.length,
  };
}

function round(value, digits = 2) {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

// ---- the package under test ------------------------------------------------

async function run(command, args, options = {}) {
  try {
    return await execFileAsync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  } catch (error) {
    const output = [error.stdout, error.stderr].filter(Boolean).join('\n').trim();
    throw new Error(`${[command, ...args].join(' ')} failed (${error.code ?? error.signal}):\n${output}`);
  }
}

/**
 * Packs the working tree without its prepack build (the caller ran `npm run
 * build`), extracts it as <work>/node_modules/ema-wasm, and checks that the
 * inlined base64 modules hold exactly the .wasm files next to them: a stale
 * js/wasm/ would compare two different builds.
 */
async function packPackage(work) {
  for (const file of ['dist/ema-simd.wasm', 'dist/ema-scalar.wasm', 'js/wasm/ema-simd.js', 'js/wasm/ema-scalar.js']) {
    await access(path.join(ROOT, file)).catch(() => {
      throw new Error(`${file} is missing; run 'npm run build' first`);
    });
  }
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work, '--loglevel=error'], { cwd: ROOT });
  const [{ filename, version }] = JSON.parse(stdout);
  const packageDir = path.join(work, 'node_modules', 'ema-wasm');
  await mkdir(packageDir, { recursive: true });
  await run('tar', ['-xzf', path.join(work, filename), '-C', packageDir, '--strip-components=1']);
  for (const build of ['simd', 'scalar']) {
    const { wasmBase64 } = await import(pathToFileURL(path.join(packageDir, 'js', 'wasm', `ema-${build}.js`)).href);
    const wasm = await readFile(path.join(packageDir, 'dist', `ema-${build}.wasm`));
    if (!Buffer.from(wasmBase64, 'base64').equals(wasm)) {
      throw new Error(`js/wasm/ema-${build}.js does not hold dist/ema-${build}.wasm; run 'npm run build' again`);
    }
  }
  return { packageDir, version, tarball: filename };
}

const INLINED_MODULE = /[\\/]js[\\/]wasm[\\/]ema-(simd|scalar)\.js$/;
const EMPTY_INLINED_MODULE = "export const wasmBase64 = '';\n";

/** esbuild plugin: the package as an asset-based design would ship it, without js/wasm/. */
const withoutInlinedWasm = {
  name: 'without-inlined-wasm',
  setup(build) {
    build.onLoad({ filter: INLINED_MODULE }, () => ({ contents: EMPTY_INLINED_MODULE, loader: 'js' }));
  },
};

/** The same for Node, which runs the package unbundled: a copy with js/wasm/ stubbed. */
async function assetPackageCopy(work, packageDir) {
  const copyRoot = path.join(work, 'asset-package');
  const copyDir = path.join(copyRoot, 'node_modules', 'ema-wasm');
  await cp(packageDir, copyDir, { recursive: true });
  for (const build of ['simd', 'scalar']) {
    await writeFile(path.join(copyDir, 'js', 'wasm', `ema-${build}.js`), EMPTY_INLINED_MODULE);
  }
  return copyRoot;
}

// ---- the apps ----------------------------------------------------------------

// Each design's app: create an EMA of `params`, then one update. The asset
// apps pick the file as an asset-based package would tell them to: the SIMD
// build where the browser has SIMD (hasWasmSimd validates a 31-byte probe).
const DESIGNS = [
  {
    id: 'inline',
    label: '(A) inline',
    assetBased: false,
    imports: 'createEma',
    createCode: 'await createEma(params)',
  },
  {
    id: 'asset-stream',
    label: '(B) asset, compileStreaming',
    assetBased: true,
    imports: 'createEma, hasWasmSimd',
    createCode:
      "await createEma(params, { wasm: await WebAssembly.compileStreaming(fetch(new URL(hasWasmSimd() ? 'ema-simd.wasm' : 'ema-scalar.wasm', document.baseURI))) })",
  },
  {
    // What an app can do to hide the extra request: the HTML asks for the
    // .wasm up front, so it downloads alongside the JS instead of after it.
    // The bundle is asset-stream's (so no row of its own in the size table).
    id: 'asset-preload',
    label: '(B) asset, stream + preload',
    assetBased: true,
    sameBundleAs: 'asset-stream',
    head: '<link rel="preload" href="ema-simd.wasm" as="fetch" type="application/wasm" crossorigin>',
    imports: 'createEma, hasWasmSimd',
    createCode:
      "await createEma(params, { wasm: await WebAssembly.compileStreaming(fetch(new URL(hasWasmSimd() ? 'ema-simd.wasm' : 'ema-scalar.wasm', document.baseURI))) })",
  },
  {
    id: 'asset-url',
    label: '(B) asset, { wasm: URL }',
    assetBased: true,
    imports: 'createEma, hasWasmSimd',
    createCode:
      "await createEma(params, { wasm: new URL(hasWasmSimd() ? 'ema-simd.wasm' : 'ema-scalar.wasm', document.baseURI) })",
  },
];

/** The app as a user would write it, for the size figures (no timing code). */
function plainApp(design) {
  return `import { ${design.imports} } from 'ema-wasm';
const params = { weight: new Float32Array(1000).fill(0.5) };
const ema = ${design.createCode};
ema.update(params);
`;
}

/**
 * The same app with timing: the model size comes from ?n=, and the page
 * leaves its figures in window.__emaLoad. The bundle's first statement (a
 * banner, so it runs before any module of the package) records when
 * evaluation started.
 */
function timedApp(design) {
  return `import { ${design.imports} } from 'ema-wasm';
const count = Number(new URLSearchParams(location.search).get('n'));
const params = { weight: new Float32Array(count).fill(0.5) };
const ema = ${design.createCode};
ema.update(params);
const updateDone = performance.now();
const resources = performance.getEntriesByType('resource').map((entry) => ({
  name: entry.name.slice(entry.name.lastIndexOf('/') + 1),
  responseEnd: entry.responseEnd,
  transferSize: entry.transferSize,
  encodedBodySize: entry.encodedBodySize,
}));
window.__emaLoad = { evalStart: globalThis.__emaEvalStart, updateDone, simd: ema.simd, count, resources };
`;
}

const EVAL_START_BANNER = 'globalThis.__emaEvalStart = performance.now();';

async function bundle(esbuild, work, design, source, extra = {}) {
  const entry = path.join(work, `app-${design.id}-${extra.banner ? 'timed' : 'plain'}.js`);
  await writeFile(entry, source);
  const result = await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: work,
    bundle: true,
    format: 'esm',
    minify: true,
    platform: 'browser',
    write: false,
    logLevel: 'silent',
    plugins: design.assetBased ? [withoutInlinedWasm] : [],
    ...extra,
  });
  const output = Buffer.from(result.outputFiles[0].contents);
  // Every .wasm file's base64 starts 'AGFzbQ' ("\0asm"): the inline bundle
  // must carry both builds, an asset bundle neither (else the stub missed).
  const inlinedBuilds = output.toString('latin1').split('AGFzbQ').length - 1;
  if (inlinedBuilds !== (design.assetBased ? 0 : 2)) {
    throw new Error(`the ${design.id} bundle carries ${inlinedBuilds} inlined builds; has js/wasm/ moved?`);
  }
  return output;
}

function compressedBodies(bytes) {
  return {
    gzip: gzipSync(bytes, { level: 9 }),
    brotli: brotliCompressSync(bytes, {
      params: {
        [zlibConstants.BROTLI_PARAM_QUALITY]: zlibConstants.BROTLI_MAX_QUALITY,
        [zlibConstants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }),
  };
}

function compressedSizes(bytes) {
  const { gzip, brotli } = compressedBodies(bytes);
  return { raw: bytes.length, gzip: gzip.length, brotli: brotli.length };
}

/** Bundle sizes and the page files (timed bundles, the .wasm files, one HTML page per design). */
async function buildApps(esbuild, work, packageDir) {
  const simdWasm = await readFile(path.join(packageDir, 'dist', 'ema-simd.wasm'));
  const scalarWasm = await readFile(path.join(packageDir, 'dist', 'ema-scalar.wasm'));
  const sizes = [];
  const site = new Map([
    ['/ema-simd.wasm', simdWasm],
    ['/ema-scalar.wasm', scalarWasm],
  ]);
  for (const design of DESIGNS) {
    if (!design.sameBundleAs) {
      const js = compressedSizes(await bundle(esbuild, work, design, plainApp(design)));
      const wasm = design.assetBased ? compressedSizes(simdWasm) : { raw: 0, gzip: 0, brotli: 0 };
      const total = { raw: js.raw + wasm.raw, gzip: js.gzip + wasm.gzip, brotli: js.brotli + wasm.brotli };
      sizes.push({ design: design.id, label: design.label, requests: design.assetBased ? 2 : 1, js, wasm, total });
    }

    const timed = await bundle(esbuild, work, design, timedApp(design), { banner: { js: EVAL_START_BANNER } });
    site.set(`/${design.id}.js`, timed);
    site.set(`/${design.id}.html`, Buffer.from(`<!doctype html><meta charset="utf-8"><title>${design.id}</title>\n${design.head ?? ''}<script type="module" src="./${design.id}.js"></script>\n`));
  }
  return { sizes, site };
}

// ---- the server --------------------------------------------------------------

const CONTENT_TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm' };

/**
 * Serves the site from memory, compressed ahead of time (brotli at maximum
 * quality, else gzip -9, as the browser accepts), never cached.
 */
async function startServer(site) {
  const files = new Map();
  for (const [urlPath, bytes] of site) {
    const compressed = compressedBodies(bytes);
    files.set(urlPath, { identity: bytes, br: compressed.brotli, gzip: compressed.gzip, type: CONTENT_TYPES[path.extname(urlPath)] });
  }
  const encodingsServed = new Set();
  // Requests per path, reset before each page load: a check that each design
  // fetched what it should, once (a preload its fetch() did not reuse would
  // download the .wasm twice).
  const requestCounts = new Map();
  const server = http.createServer((request, response) => {
    const urlPath = new URL(request.url, 'http://localhost').pathname;
    requestCounts.set(urlPath, (requestCounts.get(urlPath) ?? 0) + 1);
    const file = files.get(urlPath);
    if (!file) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const accepted = request.headers['accept-encoding'] ?? '';
    const encoding = /\bbr\b/.test(accepted) ? 'br' : /\bgzip\b/.test(accepted) ? 'gzip' : 'identity';
    encodingsServed.add(encoding);
    const body = file[encoding];
    response.writeHead(200, {
      'content-type': file.type,
      'content-length': body.length,
      'cache-control': 'no-store',
      ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
    });
    response.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    encodingsServed,
    requestCounts,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// ---- Chromium ----------------------------------------------------------------

/** One cold page load: a fresh context, navigate, wait for the page's figures. */
async function loadOnce(browser, server, design, count, network) {
  server.requestCounts.clear();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    if (network) {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', network.conditions);
    }
    await page.goto(`${server.origin}/${design.id}.html?n=${count}`);
    const handle = await page
      .waitForFunction(() => window.__emaLoad, null, { polling: 20, timeout: RUN_TIMEOUT_MS })
      .catch((error) => {
        throw new Error(`${design.id}, ${count} params: ${pageErrors.join('; ') || error.message}`);
      });
    const figures = await handle.jsonValue();
    if (pageErrors.length > 0) throw new Error(`${design.id}, ${count} params: ${pageErrors.join('; ')}`);
    if (figures.simd !== true) throw new Error(`${design.id}: the page ran the scalar build; this benchmark compares SIMD loads`);
    const expected = { [`/${design.id}.html`]: 1, [`/${design.id}.js`]: 1, ...(design.assetBased ? { '/ema-simd.wasm': 1 } : {}) };
    const served = Object.fromEntries(server.requestCounts);
    delete served['/favicon.ico'];
    if (JSON.stringify(served, Object.keys(served).sort()) !== JSON.stringify(expected, Object.keys(expected).sort())) {
      throw new Error(`${design.id}: the page requested ${JSON.stringify(served)}, expected ${JSON.stringify(expected)}`);
    }
    return figures;
  } finally {
    await context.close();
  }
}

/** A list rotated by `by`, so every variant takes every place in the order. */
function rotated(list, by) {
  const shift = by % list.length;
  return [...list.slice(shift), ...list.slice(0, shift)];
}

/**
 * `runs` rounds of one cold load of every (design, size) pair, the order
 * rotating each round, after one untimed round (the browser's first loads
 * pay for starting its network service and renderer machinery).
 */
async function timeLoads(browser, server, { runs, sizes, network }) {
  const cases = DESIGNS.flatMap((design) => sizes.map((count) => ({ design, count })));
  const samples = new Map(cases.map((entry) => [entry, []]));
  for (const { design, count } of cases) await loadOnce(browser, server, design, count, network);
  for (let round = 0; round < runs; round++) {
    for (const entry of rotated(cases, round)) {
      samples.get(entry).push(await loadOnce(browser, server, entry.design, entry.count, network));
    }
  }
  return cases.map((entry) => {
    const loads = samples.get(entry);
    const bundleArrived = loads.map((load) => load.resources.find((r) => r.name === `${entry.design.id}.js`)?.responseEnd ?? NaN);
    const transferred = loads[0].resources.reduce((sum, r) => sum + (r.transferSize || 0), 0);
    return {
      design: entry.design.id,
      label: entry.design.label,
      params: entry.count,
      navigationToUpdateMs: summary(loads.map((load) => load.updateDone)),
      evaluationToUpdateMs: summary(loads.map((load) => load.updateDone - load.evalStart)),
      bundleArrivedMs: summary(bundleArrived),
      subresourceBytesTransferred: transferred,
    };
  });
}

async function measureBrowser(chromium, site, options) {
  const server = await startServer(site);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const local = await timeLoads(browser, server, { runs: options.browserRuns, sizes: MODEL_SIZES, network: null });
    const throttled = options.throttle
      ? await timeLoads(browser, server, { runs: options.throttledRuns, sizes: [MODEL_SIZES[0]], network: SLOW_NETWORK })
      : null;
    return { version: browser.version(), encoding: [...server.encodingsServed].join(', '), local, throttled };
  } finally {
    await browser.close();
    await server.close();
  }
}

// ---- Node --------------------------------------------------------------------

// performance.now() in Node counts from the process's start, so the child's
// own reading at the first update is "process start -> first update". The
// package is imported dynamically so the figure before it is Node's own
// start-up, the same in both designs.
const NODE_APPS = [
  {
    id: 'inline',
    label: '(A) inline',
    source: `const importStart = performance.now();
const { createEma } = await import('ema-wasm');
const params = { weight: new Float32Array(Number(process.argv[2])).fill(0.5) };
const ema = await createEma(params);
ema.update(params);
console.log(JSON.stringify({ importStart, updateDone: performance.now(), simd: ema.simd }));
`,
  },
  {
    id: 'asset-bytes',
    label: '(B) asset, readFile bytes',
    source: `import { readFile } from 'node:fs/promises';
const importStart = performance.now();
const { createEma } = await import('ema-wasm');
const params = { weight: new Float32Array(Number(process.argv[2])).fill(0.5) };
const wasm = await readFile(new URL(import.meta.resolve('ema-wasm/ema-simd.wasm')));
const ema = await createEma(params, { wasm });
ema.update(params);
console.log(JSON.stringify({ importStart, updateDone: performance.now(), simd: ema.simd }));
`,
  },
  {
    // What an asset-based package would do inside createEma in Node: read and
    // compile, without options.wasm's checks of what kind of value came.
    id: 'asset-module',
    label: '(B) asset, readFile + compile',
    source: `import { readFile } from 'node:fs/promises';
const importStart = performance.now();
const { createEma } = await import('ema-wasm');
const params = { weight: new Float32Array(Number(process.argv[2])).fill(0.5) };
const wasm = await WebAssembly.compile(await readFile(new URL(import.meta.resolve('ema-wasm/ema-simd.wasm'))));
const ema = await createEma(params, { wasm });
ema.update(params);
console.log(JSON.stringify({ importStart, updateDone: performance.now(), simd: ema.simd }));
`,
  },
];

async function measureNode(work, assetRoot, options) {
  const scripts = new Map();
  for (const app of NODE_APPS) {
    // The asset app runs next to the stubbed copy of the package, so it loads no base64 at all.
    const script = path.join(app.id === 'inline' ? work : assetRoot, `node-${app.id}.mjs`);
    await writeFile(script, app.source);
    scripts.set(app, script);
  }
  const runChild = async (app, count) => {
    const { stdout } = await run(process.execPath, [scripts.get(app), String(count)]);
    const figures = JSON.parse(stdout);
    if (figures.simd !== true) throw new Error(`node ${app.id}: ran the scalar build`);
    return figures;
  };
  const cases = NODE_APPS.flatMap((app) => MODEL_SIZES.map((count) => ({ app, count })));
  const samples = new Map(cases.map((entry) => [entry, []]));
  // One untimed run of each brings the files into the page cache.
  for (const { app, count } of cases) await runChild(app, count);
  for (let round = 0; round < options.nodeRuns; round++) {
    for (const entry of rotated(cases, round)) samples.get(entry).push(await runChild(entry.app, entry.count));
  }
  return cases.map((entry) => {
    const runs = samples.get(entry);
    return {
      design: entry.app.id,
      label: entry.app.label,
      params: entry.count,
      processStartToUpdateMs: summary(runs.map((r) => r.updateDone)),
      importToUpdateMs: summary(runs.map((r) => r.updateDone - r.importStart)),
    };
  });
}

// ---- output --------------------------------------------------------------------

function table(headers, rows, alignLeft = 1) {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => String(row[column]).length)));
  const line = (cells) =>
    cells.map((cell, column) => (column < alignLeft ? String(cell).padEnd(widths[column]) : String(cell).padStart(widths[column]))).join('  ');
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

const bytes = (value) => value.toLocaleString('en-US');
const ms = (value) => value.toFixed(1);
const paramsLabel = (count) => (count >= 1e6 ? `${count / 1e6}M` : count.toLocaleString('en-US'));

function printResults(results) {
  const { sizes, browser, node } = results;
  console.log(`\nema-wasm ${results.package.version}: loading it, inline base64 (A) vs a .wasm asset (B)`);
  const load = results.machine.loadAverage1min;
  console.log(`${results.machine.cpu}, ${results.machine.cores} cores (load average ${load.start} at start, ${load.end} at end); Node ${results.versions.node}; Chromium ${browser.version}; esbuild ${results.versions.esbuild}\n`);

  console.log('1. What a SIMD-capable browser downloads (app bundled by esbuild, minified; bytes)');
  console.log(
    table(
      ['design', 'requests', 'JS raw', 'JS gzip', 'JS br', 'wasm raw', 'wasm gzip', 'wasm br', 'total raw', 'total gzip', 'total br'],
      sizes.map((s) => [s.label, s.requests, ...[s.js, s.wasm, s.total].flatMap((x) => [bytes(x.raw), bytes(x.gzip), bytes(x.brotli)])]),
    ),
  );
  console.log('   (A) carries both builds (SIMD and scalar) as base64; (B) fetches only ema-simd.wasm.\n');

  const browserRows = (rows) =>
    rows.map((r) => [
      r.label,
      paramsLabel(r.params),
      ms(r.navigationToUpdateMs.median),
      ms(r.navigationToUpdateMs.p90),
      ms(r.evaluationToUpdateMs.median),
      ms(r.evaluationToUpdateMs.p90),
      ms(r.bundleArrivedMs.median),
      bytes(r.subresourceBytesTransferred),
    ]);
  const browserHeaders = ['design', 'params', 'nav median', 'nav p90', 'eval median', 'eval p90', 'JS arrived', 'bytes on wire'];
  const local = browser.local;
  console.log(`2. Headless Chromium, 127.0.0.1 (${browser.encoding}), cold context each run, ${local[0].navigationToUpdateMs.runs} runs (ms)`);
  console.log(table(browserHeaders, browserRows(local), 2));
  console.log(
    '   nav: navigation start -> first update done; eval: the bundle\'s first statement -> first update done;\n' +
      '   JS arrived: navigation start -> the bundle\'s responseEnd (median); bytes on wire: JS + wasm transfer sizes incl. headers.\n',
  );
  if (browser.throttled) {
    console.log(`   Same on an emulated slow network (${SLOW_NETWORK.name}), ${browser.throttled[0].navigationToUpdateMs.runs} runs (ms)`);
    console.log(table(browserHeaders, browserRows(browser.throttled), 2));
    console.log('');
  }

  console.log(`3. Node, one child process per run, ${node[0].processStartToUpdateMs.runs} runs (ms)`);
  console.log(
    table(
      ['design', 'params', 'start median', 'start p90', 'import median', 'import p90'],
      node.map((r) => [
        r.label,
        paramsLabel(r.params),
        ms(r.processStartToUpdateMs.median),
        ms(r.processStartToUpdateMs.p90),
        ms(r.importToUpdateMs.median),
        ms(r.importToUpdateMs.p90),
      ]),
      2,
    ),
  );
  console.log(
    "   start: process start -> first update done; import: import('ema-wasm') -> first update done.\n" +
      '   readFile bytes hands the bytes to options.wasm; readFile + compile hands over a compiled Module.',
  );
}

// ---- main ----------------------------------------------------------------------

async function importDevDependency(name) {
  try {
    return await import(name);
  } catch (error) {
    fail(`cannot load ${name} (${error.message}); install the dev dependencies (npm install) in the repository`);
  }
}

async function main() {
  const options = readOptions(process.argv.slice(2));
  if (options === null) return;
  const esbuild = await importDevDependency('esbuild');
  const { chromium } = await importDevDependency('playwright-core');
  const started = performance.now();
  // Other work on the machine shows up in every figure: keep the load beside them.
  const loadAverageAtStart = os.loadavg()[0];
  const work = await mkdtemp(path.join(os.tmpdir(), 'ema-wasm-load-'));
  try {
    console.error('bench/load: packing the working tree and bundling the apps');
    const { packageDir, version, tarball } = await packPackage(work);
    const assetRoot = await assetPackageCopy(work, packageDir);
    const { sizes, site } = await buildApps(esbuild, work, packageDir);
    console.error('bench/load: timing page loads in Chromium');
    const browser = await measureBrowser(chromium, site, options);
    console.error('bench/load: timing Node processes');
    const node = await measureNode(work, assetRoot, options);
    const results = {
      date: new Date().toISOString(),
      machine: {
        cpu: os.cpus()[0]?.model ?? 'unknown',
        cores: os.cpus().length,
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        memoryBytes: os.totalmem(),
        loadAverage1min: { start: round(loadAverageAtStart), end: round(os.loadavg()[0]) },
      },
      versions: { node: process.version, chromium: browser.version, esbuild: esbuild.version },
      package: { version, tarball },
      settings: {
        quick: options.quick,
        browserRuns: options.browserRuns,
        throttledRuns: options.throttle ? options.throttledRuns : 0,
        nodeRuns: options.nodeRuns,
        modelSizes: MODEL_SIZES,
        chromiumArgs: CHROMIUM_ARGS,
        slowNetwork: options.throttle ? SLOW_NETWORK : null,
      },
      sizes,
      browser,
      node,
    };
    printResults(results);
    if (options.json) {
      await writeFile(options.json, `${JSON.stringify(results, null, 2)}\n`);
      console.error(`bench/load: wrote ${options.json}`);
    }
    console.error(`bench/load: done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`bench/load: ${error.message ?? error}`);
  process.exit(1);
});
