// The browser demo end to end: scripts/serve.mjs serves the repository, and
// Debian's Chromium (driven by playwright-core) runs demo/index.html on the
// cpu and wasm TF.js backends. Each run must finish with finite raw and EMA
// metrics, report the SIMD build and the requested backend, and log no
// console error. Then the post-hoc EMA section: the sweep of reconstructed
// widths must be finite, its tracked widths must match the power EMA's own
// profiles, and moving the sigma_rel slider must show the (different) loss
// of the width chosen, the last one when it moves twice in a row.
// Screenshots land in test-output/browser/.
//
// Skipped, with a message, when /usr/bin/chromium is missing:
//   sudo apt-get install -y chromium
// (CI installs it; scripts/bootstrap.sh test does too.)
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { startServer } from '../../scripts/serve.mjs';
import { CHROMIUM, CHROMIUM_ARGS, skipWithoutChromium } from './chromium.js';

const OUTPUT_DIR = fileURLToPath(new URL('../../test-output/browser/', import.meta.url));
const RUN_TIMEOUT_MS = 60_000;
const STEPS = 40;
const SLIDER_TIMEOUT_MS = 10_000;

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

  test('reports a port in use clearly', async () => {
    await assert.rejects(startServer({ port: server.port }), (error) => {
      assert.equal(error.code, 'EADDRINUSE');
      assert.match(error.message, /already in use/);
      return true;
    });
  });
});

describe('demo page in headless Chromium', { skip: skipWithoutChromium }, () => {
  let server;
  let browser;

  before(async () => {
    const { chromium } = await import('playwright-core');
    [server, browser] = await Promise.all([
      startServer({ port: 0 }),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
    ]);
    await mkdir(OUTPUT_DIR, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  for (const backend of ['cpu', 'wasm']) {
    test(`trains ${STEPS} steps on the ${backend} backend with the SIMD build`, { timeout: RUN_TIMEOUT_MS + 20_000 }, async () => {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems = [];
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console.error: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      try {
        await page.goto(`${server.url}/demo/?steps=${STEPS}&backend=${backend}&decay=0.99&warmup=1`);
        await page.waitForFunction(
          () => ['done', 'error'].includes(document.body?.dataset.status),
          null,
          { timeout: RUN_TIMEOUT_MS },
        );
        await page.screenshot({ path: `${OUTPUT_DIR}demo-${backend}.png`, fullPage: true });

        const state = await page.evaluate(() => ({
          status: document.body.dataset.status,
          demo: JSON.parse(JSON.stringify(window.emaDemo)),
          buildText: document.getElementById('stat-build').textContent,
          statusLine: document.getElementById('status-line').textContent,
        }));
        assert.equal(state.status, 'done', `page status (error: ${state.demo.error}; ${problems.join('; ')})`);
        assert.equal(state.demo.error, null);
        assert.deepEqual(problems, [], 'no console errors or page errors');

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

        assert.equal(state.demo.simd, true, 'the SIMD build runs');
        assert.match(state.buildText, /SIMD/, 'the page says SIMD');
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
        assert.deepEqual(problems, [], 'no console errors or page errors after the slider');
      } finally {
        await page.close();
      }
    });
  }

  test('shows a bad URL parameter as a visible error', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/demo/?steps=40&backend=nope`);
      await page.waitForFunction(() => document.body?.dataset.status === 'error', null, { timeout: 10_000 });
      const shown = await page.locator('#error').innerText();
      assert.match(shown, /backend must be one of cpu, wasm, webgl/);
      assert.match(await page.evaluate(() => window.emaDemo.error), /backend/);
    } finally {
      await page.close();
    }
  });
});
