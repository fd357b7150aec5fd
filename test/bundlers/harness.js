// The pieces of the bundler check that do not depend on a bundler: packing the
// package, writing a test app around the tarball, a static file server, running
// a page in Chromium and reading what it reports, and the float32 reference the
// reports are checked against.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

import { referenceStep, warmupDecay } from '../js/helpers.js';
import { DECAY, PARAM_LENGTHS, UPDATES, float32Bits, paramsAt } from './app/inputs.js';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APP_SOURCE_DIR = fileURLToPath(new URL('./app/', import.meta.url));

/** Every file of the shared app source (see app/), copied into each test app. */
const APP_FILES = [
  'inputs.js',
  'describe-error.js',
  'run-ema.js',
  'page-report.js',
  'main.js',
  'worker.js',
  'main-worker.js',
  'main-worker-unbundled.js',
];

// Set to keep the temp apps (and print where they are) to debug a failure.
export const KEEP_APPS = process.env.EMA_WASM_KEEP_BUNDLER_APPS === '1';

/** Runs a command, returning its output or throwing an Error that carries it. */
export async function run(command, args, options = {}) {
  try {
    return await execFileAsync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  } catch (error) {
    const output = [error.stdout, error.stderr].filter(Boolean).join('\n').trim();
    throw new Error(`${[command, ...args].join(' ')} failed (${error.code ?? error.signal}):\n${output}`);
  }
}

/**
 * `npm pack` of the working tree (its prepack script builds the Wasm), once,
 * or the tarball named by EMA_WASM_BUNDLER_TARBALL. Returns the tarball, the
 * package.json it ships and a temp dir to remove afterwards.
 */
export async function packPackage() {
  const directory = await mkdtemp(join(tmpdir(), 'ema-wasm-pack-'));
  try {
    return { directory, ...(await packInto(directory)) };
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
}

async function packInto(directory) {
  let tarball = process.env.EMA_WASM_BUNDLER_TARBALL;
  if (tarball) {
    // A given tarball (an older commit's, a published version) instead of the working tree.
    tarball = resolve(tarball);
  } else {
    // --ignore-scripts: `npm test` has built dist/ and js/wasm/ already, and a
    // second build here could race package.test.js's (which proves that
    // pack builds) in the shared build folder when test files run in parallel.
    for (const output of ['js/wasm/ema-simd.js', 'dist/cjs/index.cjs']) {
      if (!existsSync(join(REPO_ROOT, output))) throw new Error(`${output} is missing: run npm run build first`);
    }
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', directory, '--loglevel=error'], { cwd: REPO_ROOT });
    const tarballs = (await readdir(directory)).filter((name) => name.endsWith('.tgz'));
    if (tarballs.length !== 1) throw new Error(`npm pack: expected one tarball in ${directory}, found ${tarballs.join(', ') || 'none'}`);
    tarball = join(directory, tarballs[0]);
  }
  const { stdout } = await run('tar', ['-xzOf', tarball, 'package/package.json']);
  return { tarball, manifest: JSON.parse(stdout) };
}

/**
 * The path, from the package root, of the module a browser should load for
 * `import 'ema-wasm'`: what its exports map says for the browser (falling back
 * to import, default, then main), as a user writing an import map would look it up.
 */
export function browserEntryOf(manifest) {
  const pick = (target) => {
    if (typeof target === 'string') return target;
    if (Array.isArray(target)) return pick(target[0]);
    if (target && typeof target === 'object') {
      for (const condition of ['browser', 'import', 'module', 'default']) {
        if (condition in target) return pick(target[condition]);
      }
    }
    return undefined;
  };
  const exportsField = manifest.exports;
  const root = typeof exportsField === 'object' && exportsField !== null && '.' in exportsField ? exportsField['.'] : exportsField;
  const entry = pick(root) ?? manifest.module ?? manifest.main ?? 'index.js';
  return entry.replace(/^\.\//, '');
}

/**
 * A page that runs `entry`. A classic inline script first catches what the
 * app cannot report itself (a module that fails to load or to link, an
 * uncaught error), so a broken setup fails in a second with a reason instead
 * of waiting for the timeout.
 */
export function pageHtml({ entry, moduleScript = true, importMap = null }) {
  const importMapTag = importMap ? `\n    <script type="importmap">${JSON.stringify(importMap)}</script>` : '';
  const entryTag = moduleScript ? `<script type="module" src="${entry}"></script>` : `<script defer src="${entry}"></script>`;
  return `<!doctype html>
<html>
  <head>
    <meta charset="utf-8">
    <title>ema-wasm bundler check</title>
    <link rel="icon" href="data:,">
    <script>
      window.addEventListener('error', function (event) {
        var target = event.target;
        if (target && target !== window && (target.src || target.href)) {
          window.__emaError = window.__emaError || 'failed to load ' + (target.src || target.href);
        } else {
          window.__emaError = window.__emaError || 'uncaught error: ' + ((event.error && event.error.stack) || event.message);
        }
      }, true);
      window.addEventListener('unhandledrejection', function (event) {
        var reason = event.reason;
        window.__emaError = window.__emaError || 'unhandled rejection: ' + ((reason && reason.stack) || reason);
      });
    </script>${importMapTag}
    ${entryTag}
  </head>
  <body></body>
</html>
`;
}

/**
 * A fresh app in its own temp dir: the shared app source, a package.json that
 * depends on ema-wasm, the tarball extracted into node_modules/ema-wasm (what
 * `npm install <tarball>` does for a package with no dependencies), and an
 * index.html if given. `packageSpecifier` rewrites `from 'ema-wasm'` in the
 * app source (for the worker that cannot use an import map).
 */
export async function createApp(name, pack, { html = null, packageSpecifier = null } = {}) {
  const directory = await mkdtemp(join(tmpdir(), `ema-wasm-app-${name}-`));
  // Resolution walks up from the app: it must never reach the repository.
  if (!relative(REPO_ROOT, directory).startsWith('..')) {
    throw new Error(`the temp dir ${directory} is inside the repository; set TMPDIR elsewhere`);
  }
  for (const file of APP_FILES) {
    if (packageSpecifier && file === 'run-ema.js') {
      const source = await readFile(join(APP_SOURCE_DIR, file), 'utf8');
      const rewritten = source.replace(/from 'ema-wasm'/g, `from '${packageSpecifier}'`);
      if (rewritten === source) throw new Error('run-ema.js: no ema-wasm import to rewrite');
      await writeFile(join(directory, file), rewritten);
    } else {
      await copyFile(join(APP_SOURCE_DIR, file), join(directory, file));
    }
  }
  await writeFile(
    join(directory, 'package.json'),
    `${JSON.stringify({ name: `ema-wasm-app-${name}`, private: true, type: 'module', dependencies: { 'ema-wasm': `^${pack.manifest.version}` } }, null, 2)}\n`,
  );
  const packageDir = join(directory, 'node_modules', 'ema-wasm');
  await mkdir(packageDir, { recursive: true });
  await run('tar', ['-xzf', pack.tarball, '-C', packageDir, '--strip-components=1']);
  if (html !== null) await writeFile(join(directory, 'index.html'), html);
  return directory;
}

export async function removeDir(directory) {
  if (directory && !KEEP_APPS) await rm(directory, { recursive: true, force: true });
}

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css; charset=utf-8',
};

/**
 * A static file server for `root` on 127.0.0.1 (random port). Directories
 * serve their index.html; missing files are 404, or index.html with
 * `spaFallback` (as Vite's dev server and most hosting for built apps do).
 */
export async function startStaticServer(root, { spaFallback = false } = {}) {
  const rootDir = resolve(root);
  const server = http.createServer(async (request, response) => {
    try {
      const pathname = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
      let file = resolve(rootDir, `.${pathname}`);
      if (file !== rootDir && !file.startsWith(rootDir + sep)) {
        response.writeHead(403).end('forbidden');
        return;
      }
      let info = await stat(file).catch(() => null);
      if (info?.isDirectory()) {
        file = join(file, 'index.html');
        info = await stat(file).catch(() => null);
      }
      if (!info?.isFile() && spaFallback) {
        file = join(rootDir, 'index.html');
        info = await stat(file).catch(() => null);
      }
      if (!info?.isFile()) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${pathname}`);
        return;
      }
      response.writeHead(200, {
        'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': info.size,
        'cache-control': 'no-store',
      });
      createReadStream(file).pipe(response);
    } catch (error) {
      if (!response.headersSent) response.writeHead(400, { 'content-type': 'text/plain' });
      response.end(String(error));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

const REPORT_TIMEOUT_MS = 30_000;

/**
 * Opens `url` in a new page and waits for the app to put its report (or an
 * error) on window. Returns { report, error, problems }: problems lists every
 * console error, uncaught page error, failed request and HTTP error status,
 * from the page and its workers.
 */
export async function runPage(browser, url) {
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') {
      const where = message.location()?.url ? ` (${message.location().url})` : '';
      problems.push(`console.error${message.worker() ? ' in a worker' : ''}: ${message.text()}${where}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.stack || error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`));
  page.on('response', (response) => {
    if (response.status() >= 400) {
      problems.push(`HTTP ${response.status()} for ${response.url()}`);
      return;
    }
    // A dev server's or host's SPA fallback answers a missing .wasm or .js
    // with index.html and status 200; the app then fails with a puzzling
    // "expected magic word" or MIME error, so name the real cause here.
    const { pathname } = new URL(response.url());
    const type = response.headers()['content-type'] ?? '(none)';
    const expectedType = pathname.endsWith('.wasm') ? /^application\/wasm/ : /\.m?js$/.test(pathname) ? /javascript/ : null;
    if (expectedType && response.status() === 200 && !expectedType.test(type)) {
      problems.push(`${response.url()} was answered with content-type ${type} (a fallback page instead of the file?)`);
    }
  });
  try {
    await page.goto(url, { waitUntil: 'load' });
    let timedOut = false;
    await page
      .waitForFunction(() => window.__emaReport !== undefined || window.__emaError !== undefined, null, {
        timeout: REPORT_TIMEOUT_MS,
        polling: 50,
      })
      .catch(() => {
        timedOut = true;
      });
    const outcome = await page.evaluate(() => ({ report: window.__emaReport ?? null, error: window.__emaError ?? null }));
    if (timedOut && outcome.error === null) {
      outcome.error = `no report and no error after ${REPORT_TIMEOUT_MS / 1000} s`;
    }
    return { ...outcome, problems };
  } finally {
    await page.close();
  }
}

/** What every app must report, computed here in plain JS float32. */
export function expectedReport() {
  const shadows = paramsAt(0);
  const decays = [];
  for (let step = 1; step <= UPDATES; step++) {
    const decay = warmupDecay(DECAY, step);
    decays.push(decay);
    const params = paramsAt(step);
    for (const name of Object.keys(PARAM_LENGTHS)) referenceStep(shadows[name], params[name], decay);
  }
  return {
    simd: true,
    decays,
    shadows: Object.fromEntries(Object.keys(PARAM_LENGTHS).map((name) => [name, float32Bits(shadows[name])])),
  };
}

/**
 * Why a report differs from the expected one, in a few lines (the first
 * differing element of each shadow, as bits and as values), or null.
 */
export function reportDifference(report, expected) {
  const problems = [];
  if (report === null || typeof report !== 'object') return `no report (got ${JSON.stringify(report)})`;
  if (report.simd !== expected.simd) problems.push(`simd: expected ${expected.simd}, got ${report.simd}`);
  if (JSON.stringify(report.decays) !== JSON.stringify(expected.decays)) {
    problems.push(`decays: expected ${JSON.stringify(expected.decays)}, got ${JSON.stringify(report.decays)}`);
  }
  const asFloat = (bits) => new Float32Array(Uint32Array.of(bits).buffer)[0];
  for (const [name, bits] of Object.entries(expected.shadows)) {
    const got = report.shadows?.[name];
    if (!Array.isArray(got) || got.length !== bits.length) {
      problems.push(`shadow ${name}: expected ${bits.length} values, got ${Array.isArray(got) ? got.length : typeof got}`);
      continue;
    }
    const differing = bits.flatMap((value, i) => (got[i] === value ? [] : [i]));
    if (differing.length > 0) {
      const i = differing[0];
      problems.push(
        `shadow ${name}: ${differing.length} of ${bits.length} values differ; first at [${i}]: ` +
          `expected 0x${bits[i].toString(16)} (${asFloat(bits[i])}), got 0x${(got[i] >>> 0).toString(16)} (${asFloat(got[i])})`,
      );
    }
  }
  return problems.length > 0 ? problems.join('\n') : null;
}

/** Total bytes of the JavaScript and WebAssembly files under `directory`. */
export async function emittedBytes(directory) {
  let total = 0;
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && /\.(m?js|cjs|wasm)$/.test(entry.name)) {
      total += (await stat(join(entry.parentPath ?? entry.path, entry.name))).size;
    }
  }
  return total;
}

/** The version field of an installed package, read from the repository's node_modules. */
export async function installedVersion(packageName) {
  const manifest = JSON.parse(await readFile(join(REPO_ROOT, 'node_modules', packageName, 'package.json'), 'utf8'));
  return manifest.version;
}

/** Strips terminal colour codes from tool output. */
export function plain(text) {
  // eslint-disable-next-line no-control-regex
  return String(text).replace(/\u001b\[[0-9;]*m/g, '');
}
