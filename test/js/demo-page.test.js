// The browser demo end to end: scripts/serve.mjs serves the repository, and
// Debian's Chromium (driven by playwright-core) runs demo/index.html on the
// cpu and wasm TF.js backends, each twice: served cross-origin isolated (the
// server's default: COOP/COEP headers), where the page's EMAs must run the
// threads build on 2 threads or more, and served without the headers
// (--no-isolation), where they must run the single-threaded SIMD build.
// Each run must finish with finite raw and EMA metrics, say which build
// runs, load nothing from another origin, and log no console error; and the
// two runs of a backend must give the same numbers, bit for bit. Then the
// post-hoc EMA section: the sweep of reconstructed widths must be finite,
// its tracked widths must match the power EMA's own profiles, and moving the
// sigma_rel slider must show the (different) loss of the width chosen, the
// last one when it moves twice in a row. Last, in the isolated page itself,
// EMAs of threads: 2 (foreground and background) against threads: 1: the
// same shadows bit for bit after every update.
// Screenshots land in test-output/browser/.
//
// Skipped, with a message, when /usr/bin/chromium is missing:
//   sudo apt-get install -y chromium
// (CI installs it; scripts/bootstrap.sh test does too.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ISOLATION_HEADERS, startServer } from '../../scripts/serve.mjs';
import { CHROMIUM, CHROMIUM_ARGS, skipWithoutChromium } from './chromium.js';

const OUTPUT_DIR = fileURLToPath(new URL('../../test-output/browser/', import.meta.url));
const RUN_TIMEOUT_MS = 60_000;
const STEPS = 40;
const SLIDER_TIMEOUT_MS = 10_000;
const SERVE = fileURLToPath(new URL('../../scripts/serve.mjs', import.meta.url));
const ISOLATION_NAMES = Object.keys(ISOLATION_HEADERS).map((name) => name.toLowerCase());

/** The isolation headers of a response: { name: value } of those present. */
function isolationHeadersOf(response) {
  return Object.fromEntries(ISOLATION_NAMES.filter((name) => name in response.headers).map((name) => [name, response.headers[name]]));
}

const EXPECTED_ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * Moves the post-hoc slider to each of `values` (as a user dragging it
 * would: one input event each), then waits until the page has shown the
 * last one's reconstruction. Returns window.emaDemo.posthoc and the
 * readouts' text.
 */
async function slideTo(page, ...values) {
  const evaluations = await page.evaluate(() => window.emaDemo.posthoc.evaluations);
  for (const value of values) await page.locator('#posthoc-slider').fill(String(value));
  const last = values[values.length - 1];
  await page.waitForFunction(
    ([sigmaRel, count]) => {
      const state = window.emaDemo.posthoc;
      return !state.pending && state.evaluations > count && state.sigmaRel === sigmaRel;
    },
    [last, evaluations],
    { timeout: SLIDER_TIMEOUT_MS },
  );
  return page.evaluate(() => ({
    ...JSON.parse(JSON.stringify(window.emaDemo.posthoc)),
    sigmaText: document.getElementById('posthoc-sigma').textContent,
    lossText: document.getElementById('posthoc-loss').textContent,
  }));
}

/** A raw GET (no URL normalisation, so '/../x' reaches the server as is). */
function rawGet(baseUrl, path) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const request = http.request({ hostname, port, path, method: 'GET', agent: false }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

describe('scripts/serve.mjs', () => {
  let server;
  before(async () => {
    server = await startServer({ port: 0 });
  });
  after(async () => {
    await server?.close();
  });

  test('serves .wasm as application/wasm', async () => {
    const response = await rawGet(server.url, '/dist/ema-simd.wasm');
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/wasm');
    assert.deepEqual([...response.body.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], 'the Wasm magic number');
  });

  test('serves the page and its scripts with their MIME types', async () => {
    const page = await rawGet(server.url, '/demo/');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'], /^text\/html/);
    assert.match(page.body.toString(), /<title>ema-wasm/);
    const script = await rawGet(server.url, '/demo/page/main.js');
    assert.equal(script.status, 200);
    assert.match(script.headers['content-type'], /^text\/javascript/);
    const lib = await rawGet(server.url, '/demo/lib/data.mjs');
    assert.match(lib.headers['content-type'], /^text\/javascript/);
  });

  test('redirects / and /demo to /demo/', async () => {
    for (const path of ['/', '/demo']) {
      const response = await rawGet(server.url, path);
      assert.equal(response.status, 302, path);
      assert.equal(response.headers.location, '/demo/', path);
    }
  });

  test('refuses paths that leave the repository or reach hidden files', async () => {
    for (const path of ['/../package.json', '/demo/../../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/.git/HEAD']) {
      const response = await rawGet(server.url, path);
      assert.equal(response.status, 403, path);
      assert.doesNotMatch(response.body.toString(), /"name"/, `${path} leaks no file`);
    }
  });

  test('answers 404 for a missing file and 400 for a malformed path', async () => {
    assert.equal((await rawGet(server.url, '/demo/no-such-file.js')).status, 404);
    assert.equal((await rawGet(server.url, '/dist/no-such-dir/x.wasm')).status, 404);
    assert.equal((await rawGet(server.url, '/%E0%A4%A')).status, 400);
  });

  test('sends the cross-origin isolation headers on every response', async () => {
    const paths = [['/demo/', 200], ['/dist/ema-simd.wasm', 200], ['/js/index.js', 200], ['/demo', 302], ['/demo/nope.js', 404], ['/.git/HEAD', 403]];
    for (const [path, status] of paths) {
      const response = await rawGet(server.url, path);
      assert.equal(response.status, status, path);
      assert.deepEqual(isolationHeadersOf(response), EXPECTED_ISOLATION, path);
    }
    assert.equal(server.isolation, true);
  });

  test('isolation: false sends none of them', async () => {
    const plain = await startServer({ port: 0, isolation: false });
    try {
      assert.equal(plain.isolation, false);
      for (const path of ['/demo/', '/dist/ema-simd.wasm', '/demo', '/demo/nope.js']) {
        assert.deepEqual(isolationHeadersOf(await rawGet(plain.url, path)), {}, path);
      }
    } finally {
      await plain.close();
    }
    await assert.rejects(startServer({ port: 0, isolation: 'no' }), { name: 'TypeError', message: /isolation must be a boolean/ });
  });

  for (const [args, expected] of [[[], EXPECTED_ISOLATION], [['--no-isolation'], {}]]) {
    const title = `node scripts/serve.mjs ${args.join(' ') || '(no flags)'}: ${args.length ? 'without' : 'with'} the isolation headers`;
    test(title, async () => {
      const child = spawn(process.execPath, [SERVE, ...args], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        let output = '';
        child.stdout.setEncoding('utf8');
        const demoUrl = await new Promise((resolve, reject) => {
          child.stdout.on('data', (chunk) => {
            output += chunk;
            const found = /demo at (http:\/\/\S+)\n[^\n]*\n/.exec(output);
            if (found) resolve(found[1]);
          });
          child.once('exit', (code) => reject(new Error(`serve.mjs exited (${code}) before it listened: ${output}`)));
        });
        assert.match(output, args.length ? /not cross-origin isolated/ : /^cross-origin isolated/m);
        const response = await rawGet(demoUrl, new URL(demoUrl).pathname);
        assert.equal(response.status, 200);
        assert.deepEqual(isolationHeadersOf(response), expected);
      } finally {
        child.kill('SIGTERM');
        if (child.exitCode === null) await once(child, 'exit');
      }
    });
  }

  test('reports a port in use clearly', async () => {
    await assert.rejects(startServer({ port: server.port }), (error) => {
      assert.equal(error.code, 'EADDRINUSE');
      assert.match(error.message, /already in use/);
      return true;
    });
  });
});

// The two ways the page is served, and the build its EMAs must run in each.
const SERVINGS = [
  {
    name: 'isolated',
    isolation: true,
    build: 'threads',
    buildText: /^threads$/,
    line: /^EMA build: threads \(\d+ threads, averaging in the background\)$/,
  },
  {
    name: 'not isolated',
    isolation: false,
    build: 'simd',
    buildText: /^SIMD128$/,
    line: /^EMA build: simd \(single-threaded: page not cross-origin isolated\)$/,
  },
];

/**
 * In the page: EMAs of the same parameters with threads: 1, threads: 2 and
 * threads: 2 with background: true, imported as the page imports the
 * package (js/index.js), stepped with the same parameters. Each update must
 * use the same decay, and after every other update each threaded EMA's
 * state (shadows, decay, counter) must equal the one-thread EMA's bit for
 * bit: returns the first difference, or null.
 * The lengths make several tasks of a step, ranges and windows, with ends
 * that are no multiple of 4 floats (a SIMD vector) or of a task.
 */
function threadsAgainstOneThread() {
  return (async () => {
    const { createEma } = await import('/js/index.js');
    const LENGTHS = [1, 1023, 70001, 262147, 5, 33];
    const UPDATES = 7;
    let state = 0x9e3779b9;
    const random = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return ((state >>> 0) / 2 ** 32 - 0.5) * 4;
    };
    const params = () => Object.fromEntries(LENGTHS.map((length, i) => [`layer${i}.weight`, Float32Array.from({ length }, random)]));
    const bits = (array) => new Uint32Array(array.buffer, array.byteOffset, array.byteLength / 4);
    const configs = {
      'threads: 1': { threads: 1 },
      'threads: 2': { threads: 2 },
      'threads: 2, background': { threads: 2, background: true },
    };
    const initial = params();
    const emas = {};
    try {
      for (const [name, options] of Object.entries(configs)) emas[name] = await createEma(initial, { decay: 0.95, ...options });
      const builds = {};
      for (const [name, { build, threads, background }] of Object.entries(emas)) builds[name] = { build, threads, background };
      const reference = emas['threads: 1'];
      for (let update = 1; update <= UPDATES; update++) {
        const step = params();
        const decays = Object.fromEntries(Object.entries(emas).map(([name, ema]) => [name, ema.update(step).decay]));
        for (const name of Object.keys(emas)) {
          if (decays[name] !== decays['threads: 1']) return { builds, difference: `${name}, update ${update}: decay ${decays[name]}` };
        }
        // Read after every other update: a background step is settled by
        // the read, or by the next update when none came between.
        if (update % 2 === 0) continue;
        const expected = reference.stateDict();
        for (const [name, ema] of Object.entries(emas)) {
          for (const [key, value] of ema.stateDict()) {
            const want = bits(expected.get(key));
            const got = bits(value);
            const index = got.findIndex((word, i) => word !== want[i]);
            if (got.length !== want.length || index >= 0) {
              const where = `${name}, update ${update}: ${key}[${index}]`;
              return { builds, difference: `${where} = ${value[index]}, not ${expected.get(key)[index]}` };
            }
          }
        }
      }
      // The shadows moved: the comparison compared steps, not copies of the start.
      const moved = reference.shadow('layer3.weight').some((value, i) => value !== initial['layer3.weight'][i]);
      return { builds, difference: null, moved };
    } finally {
      for (const ema of Object.values(emas)) ema.dispose();
    }
  })();
}

describe('demo page in headless Chromium', { skip: skipWithoutChromium }, () => {
  const servers = {};
  let browser;
  // Each backend's numbers, per serving, for the comparison after the runs.
  const numbers = new Map();

  before(async () => {
    const { chromium } = await import('playwright-core');
    [servers.isolated, servers['not isolated'], browser] = await Promise.all([
      startServer({ port: 0, isolation: true }),
      startServer({ port: 0, isolation: false }),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
    ]);
    await mkdir(OUTPUT_DIR, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await Promise.all(Object.values(servers).map((server) => server?.close()));
  });

  for (const backend of ['cpu', 'wasm']) {
    for (const serving of SERVINGS) {
      const title = `trains ${STEPS} steps on the ${backend} backend, ${serving.name}: the ${serving.build} build`;
      test(title, { timeout: RUN_TIMEOUT_MS + 20_000 }, async () => {
        const server = servers[serving.name];
        const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
        const problems = [];
        page.on('console', (message) => {
          if (message.type() === 'error') problems.push(`console.error: ${message.text()}`);
        });
        page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
        // Under require-corp, a resource from another origin without CORP would fail to load.
        const origin = new URL(server.url).origin;
        const foreign = [];
        page.on('request', (request) => {
          const url = new URL(request.url());
          if (url.protocol === 'blob:' ? new URL(url.pathname).origin !== origin : url.origin !== origin) foreign.push(request.url());
        });
        page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`));
        try {
          await page.goto(`${server.url}/demo/?steps=${STEPS}&backend=${backend}&decay=0.99&warmup=1`);
          await page.waitForFunction(
            () => ['done', 'error'].includes(document.body?.dataset.status),
            null,
            { timeout: RUN_TIMEOUT_MS },
          );
          const suffix = serving.isolation ? '' : '-not-isolated';
          await page.screenshot({ path: `${OUTPUT_DIR}demo-${backend}${suffix}.png`, fullPage: true });

          const state = await page.evaluate(() => ({
            status: document.body.dataset.status,
            crossOriginIsolated: window.crossOriginIsolated,
            demo: JSON.parse(JSON.stringify(window.emaDemo)),
            buildText: document.getElementById('stat-build').textContent,
            buildLine: document.getElementById('build-line').textContent,
            statusLine: document.getElementById('status-line').textContent,
          }));
          assert.equal(state.status, 'done', `page status (error: ${state.demo.error}; ${problems.join('; ')})`);
          assert.equal(state.demo.error, null);
          assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
          assert.deepEqual(foreign, [], 'every resource comes from the page\'s origin');

          // The build: threads when isolated (the calling thread and at least one worker), else SIMD.
          assert.equal(state.crossOriginIsolated, serving.isolation);
          const { build } = state.demo;
          assert.equal(build.crossOriginIsolated, serving.isolation);
          assert.equal(build.build, serving.build);
          if (serving.isolation) {
            assert.ok(build.threads >= 2, `threads: ${build.threads}`);
            assert.equal(build.background, true);
          } else {
            assert.deepEqual([build.threads, build.background], [1, false]);
          }
          assert.match(state.buildLine, serving.line);
          if (serving.isolation) assert.ok(state.buildLine.includes(`(${build.threads} threads`), state.buildLine);
          assert.match(state.buildText, serving.buildText, 'the page names the build');

          const { results } = state.demo;
          assert.ok(Array.isArray(results) && results.length > 0, 'results recorded');
          assert.equal(results.at(-1).step, STEPS, 'the last evaluation is at the last step');
          for (const point of results) {
            for (const key of ['rawLoss', 'emaLoss', 'rawAcc', 'emaAcc']) {
              assert.ok(Number.isFinite(point[key]), `step ${point.step}: ${key} = ${point[key]}`);
            }
            assert.ok(point.rawAcc >= 0 && point.rawAcc <= 1 && point.emaAcc >= 0 && point.emaAcc <= 1);
          }
          assert.ok(results.at(-1).rawLoss < results[0].rawLoss, 'training lowers the held-out loss');

          assert.equal(state.demo.simd, true, 'a SIMD128 build runs (the threads build is one)');
          assert.equal(state.demo.backend, backend);
          assert.ok(state.demo.updateMs.mean > 0 && Number.isFinite(state.demo.updateMs.last), 'EMA update timed');
          assert.match(state.statusLine, /^Done:/);

          // Post-hoc EMA: ready with the run, the sweep drawn, the slider's width shown.
          const posthoc = state.demo.posthoc;
          assert.equal(posthoc.status, 'ready');
          assert.ok(posthoc.snapshots >= 2, `snapshots kept: ${posthoc.snapshots}`);
          assert.equal(posthoc.sweep.length, 25);
          for (const row of posthoc.sweep) {
            assert.ok(Number.isFinite(row.loss) && row.loss > 0, `sigma_rel ${row.sigmaRel}: loss ${row.loss}`);
            assert.ok(row.accuracy >= 0 && row.accuracy <= 1, `sigma_rel ${row.sigmaRel}: accuracy ${row.accuracy}`);
          }
          assert.ok(new Set(posthoc.sweep.map((row) => row.loss)).size > 1, 'the loss depends on sigma_rel');
          const lowest = Math.min(...posthoc.sweep.map((row) => row.loss));
          assert.equal(posthoc.best.loss, lowest, 'best is the lowest loss of the sweep');
          assert.equal(posthoc.raw.loss, results.at(-1).rawLoss, 'raw: the final raw weights');
          // A tracked width is rebuilt from its own last snapshot (float32): the same weights.
          for (const profile of posthoc.tracked) {
            const rebuilt = posthoc.sweep.find((row) => Math.abs(row.sigmaRel - profile.sigmaRel) < 1e-9);
            assert.ok(
              Math.abs(rebuilt.loss - profile.loss) <= 1e-5 * profile.loss,
              `sigma_rel ${profile.sigmaRel}: ${rebuilt.loss} vs ${profile.loss}`,
            );
          }
          assert.equal(posthoc.sigmaRel, 0.1, "the slider's initial width");
          assert.ok(Number.isFinite(posthoc.loss));

          const wide = await slideTo(page, 0.2);
          assert.ok(Number.isFinite(wide.loss) && wide.loss > 0, `loss at 0.2: ${wide.loss}`);
          assert.notEqual(wide.loss, posthoc.loss, 'another width, another loss');
          assert.equal(wide.sigmaText, '0.200');
          assert.ok(wide.lossText.startsWith(wide.loss.toFixed(3)), `shown: ${wide.lossText}`);
          assert.ok(Number.isFinite(wide.amplification) && Number.isFinite(wide.conditionNumber));
          // Two moves in a row: the second is what is shown, and it is the sweep's value there.
          const narrow = await slideTo(page, 0.15, 0.03);
          assert.equal(narrow.sigmaText, '0.030');
          assert.notEqual(narrow.loss, wide.loss);
          assert.equal(narrow.loss, posthoc.sweep.find((row) => row.sigmaRel === 0.03).loss, 'same width, same loss');
          assert.deepEqual(problems, [], 'no console errors, page errors or failed requests after the slider');

          const { tracked, sweep, best, raw } = posthoc;
          numbers.set(`${backend}, ${serving.name}`, { results, tracked, sweep, best, raw, wide: wide.loss, narrow: narrow.loss });
        } finally {
          await page.close();
        }
      });
    }

    // Bit-identical by design: the threads build averages as the SIMD build does.
    // (TF.js's wasm backend runs its threaded build in the isolated page; its
    // results match its single-threaded build's here too.)
    test(`${backend} backend: the isolated page's numbers equal the non-isolated page's`, () => {
      const isolated = numbers.get(`${backend}, isolated`);
      const plain = numbers.get(`${backend}, not isolated`);
      assert.ok(isolated !== undefined && plain !== undefined, 'both runs finished (see their tests)');
      assert.deepEqual(isolated, plain);
    });
  }

  test('in the isolated page, EMAs of threads: 2 (foreground, background) equal threads: 1 bit for bit', { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console.error: ${message.text()}`);
    });
    try {
      await page.goto(`${servers.isolated.url}/demo/`);
      const { builds, difference, moved } = await page.evaluate(threadsAgainstOneThread);
      assert.deepEqual(builds, {
        'threads: 1': { build: 'simd', threads: 1, background: false },
        'threads: 2': { build: 'threads', threads: 2, background: false },
        'threads: 2, background': { build: 'threads', threads: 2, background: true },
      });
      assert.equal(difference, null);
      assert.equal(moved, true, 'the shadows moved');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('in the page served without isolation, threads: 2 is refused, and background: true runs the SIMD build', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${servers['not isolated'].url}/demo/`);
      const outcome = await page.evaluate(async () => {
        const { createEma } = await import('/js/index.js');
        const params = { w: new Float32Array([1, 2, 3]) };
        let refusal = null;
        try {
          (await createEma(params, { threads: 2 })).dispose();
        } catch (error) {
          refusal = error.message;
        }
        const ema = await createEma(params, { background: true });
        const build = { build: ema.build, threads: ema.threads, background: ema.background };
        ema.dispose();
        return { refusal, build, line: document.getElementById('build-line').textContent };
      });
      assert.match(outcome.refusal ?? '', /options\.threads is 2, but the page is not cross-origin isolated/);
      assert.deepEqual(outcome.build, { build: 'simd', threads: 1, background: false });
      assert.match(outcome.line, /not cross-origin isolated/, 'the page says so before a run');
    } finally {
      await page.close();
    }
  });

  test('shows a bad URL parameter as a visible error', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${servers.isolated.url}/demo/?steps=40&backend=nope`);
      await page.waitForFunction(() => document.body?.dataset.status === 'error', null, { timeout: 10_000 });
      const shown = await page.locator('#error').innerText();
      assert.match(shown, /backend must be one of cpu, wasm, webgl/);
      assert.match(await page.evaluate(() => window.emaDemo.error), /backend/);
    } finally {
      await page.close();
    }
  });
});
