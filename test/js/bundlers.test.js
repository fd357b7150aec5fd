// The packed package with zero configuration in every common browser setup:
// webpack 5, esbuild, Rollup 4, Vite 5-8 (dev server and build), Parcel 2, a
// plain page with an import map, and module workers (plain and bundled).
//
// `npm pack` runs once; each setup gets a fresh app in a temp dir with the
// tarball extracted into its node_modules, builds it with the bundler's
// minimal setup (test/bundlers/builders.js), serves it on 127.0.0.1 and opens
// it in headless Chromium. The app (test/bundlers/app/) runs 5 EMA updates
// with warmup on deterministic inputs and reports the decays and the shadows'
// float32 bits, which must equal a float32 computation done here, with the
// SIMD build and with no console error, page error or failed request.
//
// A summary (tool versions, pass/fail, build time, emitted JS + wasm bytes)
// is printed at the end and written to test-output/bundlers.json.
// EMA_WASM_KEEP_BUNDLER_APPS=1 keeps the temp apps for debugging.
//
// Skipped, with a message, when /usr/bin/chromium is missing:
//   sudo apt-get install -y chromium
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  buildEsbuild,
  buildParcel,
  buildRollup,
  buildVite,
  buildWebpack,
  startViteDev,
} from '../bundlers/builders.js';
import {
  KEEP_APPS,
  REPO_ROOT,
  browserEntryOf,
  createApp,
  emittedBytes,
  expectedReport,
  installedVersion,
  packPackage,
  pageHtml,
  removeDir,
  reportDifference,
  run,
  runPage,
  startStaticServer,
} from '../bundlers/harness.js';
import { CHROMIUM, CHROMIUM_ARGS, skipWithoutChromium } from './chromium.js';

const SETUP_TIMEOUT_MS = 120_000;
const SUMMARY_FILE = join(REPO_ROOT, 'test-output', 'bundlers.json');

/** The page for apps whose index.html a bundler or the browser reads as is. */
const MODULE_PAGE = pageHtml({ entry: './main.js' });

/**
 * Builds with `build`, then serves its output directory, with an index.html
 * written there for bundlers that do not emit one (`distHtml`).
 */
function builtThenServed(build, distHtml = null) {
  return async (app) => {
    const started = performance.now();
    const { outDir, log } = await build(app);
    const buildMs = Math.round(performance.now() - started);
    const bytes = await emittedBytes(outDir);
    if (distHtml !== null) await writeFile(join(outDir, 'index.html'), distHtml);
    const server = await startStaticServer(outDir);
    return { url: server.url, close: server.close, buildMs, bytes, log: () => log };
  };
}

/** Serves the app folder itself (node_modules included): no bundler at all. */
async function servedAsFiles(app) {
  const server = await startStaticServer(app);
  return { url: server.url, close: server.close, buildMs: null, bytes: null, log: () => '' };
}

function viteDev(vitePackage) {
  return async (app) => {
    const started = performance.now();
    const server = await startViteDev(vitePackage, app);
    return { ...server, buildMs: null, startMs: Math.round(performance.now() - started), bytes: null };
  };
}

const VITE_VERSIONS = ['vite5', 'vite6', 'vite7', 'vite8'];

/**
 * Every setup: `tools` are the packages whose versions it reports, `html`
 * the app's own index.html (null: none), `start` builds and serves the app.
 */
const SETUPS = [
  {
    name: 'import map, no bundler',
    slug: 'importmap',
    tools: [],
    html: (pack) =>
      pageHtml({ entry: '/main.js', importMap: { imports: { 'ema-wasm': `/node_modules/ema-wasm/${browserEntryOf(pack.manifest)}` } } }),
    start: servedAsFiles,
  },
  {
    name: 'module worker, no bundler',
    slug: 'worker-plain',
    tools: [],
    html: () => pageHtml({ entry: '/main-worker-unbundled.js' }),
    // Workers do not see import maps: the worker imports the package by URL.
    packageSpecifier: (pack) => `/node_modules/ema-wasm/${browserEntryOf(pack.manifest)}`,
    start: servedAsFiles,
  },
  {
    name: 'esbuild (bundle, esm, browser)',
    slug: 'esbuild',
    tools: ['esbuild'],
    start: builtThenServed((app) => buildEsbuild(app, 'main.js'), pageHtml({ entry: './main.js' })),
  },
  {
    name: 'Rollup 4 + node-resolve (output.file, es)',
    slug: 'rollup',
    tools: ['rollup', '@rollup/plugin-node-resolve'],
    start: builtThenServed((app) => buildRollup(app, 'main.js'), pageHtml({ entry: './bundle.js' })),
  },
  {
    name: 'webpack 5 (production)',
    slug: 'webpack',
    tools: ['webpack'],
    // webpack's default output is a classic script (publicPath 'auto' finds
    // itself through document.currentScript), as html-webpack-plugin loads it.
    start: builtThenServed((app) => buildWebpack(app, './main.js'), pageHtml({ entry: './main.js', moduleScript: false })),
  },
  {
    name: 'module worker, webpack 5',
    slug: 'worker-webpack',
    tools: ['webpack'],
    start: builtThenServed((app) => buildWebpack(app, './main-worker.js'), pageHtml({ entry: './main.js', moduleScript: false })),
  },
  ...VITE_VERSIONS.map((vite) => ({
    name: `Vite ${vite.slice(4)} dev server`,
    slug: `${vite}-dev`,
    tools: [vite],
    html: () => MODULE_PAGE,
    start: viteDev(vite),
  })),
  ...VITE_VERSIONS.map((vite) => ({
    name: `Vite ${vite.slice(4)} build`,
    slug: `${vite}-build`,
    tools: [vite],
    html: () => MODULE_PAGE,
    start: builtThenServed((app) => buildVite(vite, app)),
  })),
  {
    name: 'module worker, Vite 8 build',
    slug: 'worker-vite8',
    tools: ['vite8'],
    html: () => pageHtml({ entry: './main-worker.js' }),
    start: builtThenServed((app) => buildVite('vite8', app)),
  },
  {
    name: 'Parcel 2 (production)',
    slug: 'parcel',
    tools: ['parcel'],
    html: () => MODULE_PAGE,
    start: builtThenServed(buildParcel),
  },
];

/** The first informative line of a failure, for the summary table. */
function headline(message) {
  const lines = String(message)
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  // Skip headers such as "esbuild build failed:" when a reason follows.
  const reason = lines.find((line, i) => i > 0 && !/^(the app reported|browser problems|bundler output)/i.test(line));
  let first = /failed:$|:$/.test(lines[0] ?? '') && reason ? `${lines[0]} ${reason}` : lines[0] ?? '';
  // What the browser saw often names the cause the app's error cannot (the URL).
  const problemsAt = lines.indexOf('browser problems:');
  if (problemsAt !== -1 && lines[problemsAt + 1]) first += ` | ${lines[problemsAt + 1]}`;
  return first.length > 300 ? `${first.slice(0, 297)}...` : first;
}

/** Warning lines of a bundler's output, deduplicated. */
function warningsOf(log) {
  return [...new Set(log.split('\n').filter((line) => /\bwarn(ing)?\b/i.test(line)).map((line) => line.trim()))];
}

function printSummary(results) {
  const rows = results.map((result) => [
    result.setup,
    result.versions,
    result.ok ? 'pass' : 'FAIL',
    result.buildMs ?? (result.startMs !== undefined ? `(dev start ${result.startMs})` : '-'),
    result.bytes ?? '-',
  ]);
  const header = ['setup', 'versions', 'result', 'build ms', 'JS + wasm bytes'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => String(row[column]).length)));
  const line = (cells) => cells.map((cell, column) => String(cell).padEnd(widths[column])).join('  ').trimEnd();
  const lines = [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
  for (const result of results.filter((r) => !r.ok)) lines.push(`${result.setup}: ${result.error}`);
  console.log(`\nema-wasm in bundlers (${SUMMARY_FILE}):\n${lines.join('\n')}\n`);
}


describe('the packed package in bundlers and browsers, zero configuration', { skip: skipWithoutChromium }, () => {
  const expected = expectedReport();
  const results = [];
  let pack;
  let browser;
  let chromiumVersion;

  before(async () => {
    const { chromium } = await import('playwright-core');
    // Both settle before anything is thrown, so a failed pack never leaves a
    // launched browser unclosed (the process would not exit).
    const [packed, launched] = await Promise.allSettled([
      packPackage(),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
    ]);
    pack = packed.value;
    browser = launched.value;
    if (packed.status === 'rejected') throw packed.reason;
    if (launched.status === 'rejected') throw launched.reason;
    chromiumVersion = browser.version();
  });

  after(async () => {
    await browser?.close();
    await removeDir(pack?.directory);
    if (results.length === 0) return;
    printSummary(results);
    const commit = (await run('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT }).catch(() => ({ stdout: '' }))).stdout.trim();
    // npm pack packs the working tree: say whether it differed from the commit.
    const changes = (await run('git', ['status', '--porcelain', '--', 'js', 'src', 'scripts', 'package.json'], { cwd: REPO_ROOT })
      .catch(() => ({ stdout: '' }))).stdout.trimEnd();
    await mkdir(join(REPO_ROOT, 'test-output'), { recursive: true });
    const summary = {
      date: new Date().toISOString(),
      package: { name: pack?.manifest.name, version: pack?.manifest.version },
      packedFrom: process.env.EMA_WASM_BUNDLER_TARBALL || 'npm pack of the working tree',
      commit,
      workingTreeChanges: changes ? changes.split('\n') : [],
      node: process.version,
      chromium: chromiumVersion,
      results,
    };
    await writeFile(SUMMARY_FILE, `${JSON.stringify(summary, null, 2)}\n`);
  });

  for (const setup of SETUPS) {
    test(setup.name, { timeout: SETUP_TIMEOUT_MS }, async (t) => {
      const versions = await Promise.all(setup.tools.map(async (tool) => `${tool.replace(/^vite\d$/, 'vite')} ${await installedVersion(tool)}`));
      const result = {
        setup: setup.name,
        versions: versions.length > 0 ? versions.join(' + ') : `Chromium ${chromiumVersion}`,
        ok: false,
        buildMs: null,
        bytes: null,
        warnings: [],
        error: null,
      };
      results.push(result);
      let app;
      let served;
      try {
        app = await createApp(setup.slug, pack, {
          html: setup.html ? setup.html(pack) : null,
          packageSpecifier: setup.packageSpecifier ? setup.packageSpecifier(pack) : null,
        });
        if (KEEP_APPS) t.diagnostic(`app kept in ${app}`);
        served = await setup.start(app);
        Object.assign(result, { buildMs: served.buildMs, bytes: served.bytes });
        if (served.startMs !== undefined) result.startMs = served.startMs;

        const outcome = await runPage(browser, served.url);
        const log = served.log();
        result.warnings = warningsOf(log);
        for (const warning of result.warnings) t.diagnostic(warning);

        const failure = outcome.error !== null ? `the app reported: ${outcome.error}` : reportDifference(outcome.report, expected);
        const context = [
          outcome.problems.length > 0 ? `browser problems:\n${outcome.problems.join('\n')}` : '',
          log.trim() ? `bundler output:\n${log.trim()}` : '',
        ].filter(Boolean);
        if (failure !== null) assert.fail([failure, ...context].join('\n\n'));
        if (outcome.problems.length > 0) {
          assert.fail([`the EMA was right, but the browser logged problems:\n${outcome.problems.join('\n')}`, ...context.slice(1)].join('\n\n'));
        }
        result.ok = true;
      } catch (error) {
        result.error = headline(error.message);
        throw error;
      } finally {
        await served?.close();
        await removeDir(app);
      }
    });
  }
});
