// options.wasm: handing over the module as a WebAssembly.Module, bytes, a
// Response (or a promise of one) or a URL; what comes instead of Wasm (an
// HTML fallback page, a 404, another module) is explained. In Chromium: a page
// whose Content-Security-Policy forbids every fetch still works (the built-in
// bytes are inlined), one that forbids compiling says what to allow, and a
// relative URL resolves against the page.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { createEma, loadEma, readMetadata } from '../../js/index.js';
import { createOrtEma } from '../../js/adapters/ort.js';
import { createTfjsEma } from '../../js/adapters/tfjs.js';
import { REQUIRED_EXPORTS } from '../../js/wasm-source.js';
import { CHROMIUM, CHROMIUM_ARGS, skipWithoutChromium } from './chromium.js';
import { referenceStep } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SIMD_BYTES = readFileSync(`${root}dist/ema-simd.wasm`);
const SCALAR_BYTES = readFileSync(`${root}dist/ema-scalar.wasm`);
const HTML_FALLBACK = '<!doctype html>\n<html lang="en"><head><script type="module" src="/@vite/client"></script>';

/**
 * A module with every export ema-wasm calls (each a function doing nothing)
 * whose imports are wrong in one way: a memory of at most `memoryMaximum`
 * pages, or memory imported as a function.
 */
function moduleImporting({ memoryMaximum, memoryAsFunction = false }) {
  const names = REQUIRED_EXPORTS;
  const text = (value) => [...new TextEncoder().encode(value)];
  const vector = (items) => [items.length, ...items.flat()]; // counts below 128 fit one LEB128 byte
  const section = (id, body) => [id, ...leb128(body.length), ...body];
  function leb128(value) {
    const bytes = [];
    do {
      let byte = value & 0x7f;
      value >>>= 7;
      if (value !== 0) byte |= 0x80;
      bytes.push(byte);
    } while (value !== 0);
    return bytes;
  }
  const types = section(1, vector([[0x60, 0, 0]])); // one type: () -> ()
  const memoryImport = memoryAsFunction ? [0x00, 0] : [0x02, 0x01, 1, ...leb128(memoryMaximum)];
  const imports = section(2, vector([
    [...vector(text('env')), ...vector(text('memory')), ...memoryImport],
    [...vector(text('env')), ...vector(text('emscripten_notify_memory_growth')), 0x00, 0],
  ]));
  const functions = section(3, vector(names.map(() => [0])));
  const exports = section(7, vector(names.map((name, i) => [...vector(text(name)), 0x00, ...leb128(i + 1)])));
  const code = section(10, vector(names.map(() => [2, 0, 0x0b])));
  return Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, ...imports, ...functions, ...exports, ...code]);
}

/** One update of decay 0.5, no warmup: the shadow bits the module must give. */
async function runsCorrectly(wasm, expectedSimd, extraOptions = {}) {
  const ema = await createEma({ w: Float32Array.of(1, 2, 3) }, { decay: 0.5, useNumUpdates: false, wasm, ...extraOptions });
  const param = Float32Array.of(0.3, -7, 11);
  ema.update({ w: param });
  const expected = Float32Array.of(1, 2, 3);
  referenceStep(expected, param, 0.5);
  assert.equal(ema.simd, expectedSimd, 'ema.simd tells the handed-over build');
  assert.deepEqual(new Uint32Array(ema.shadow('w').buffer), new Uint32Array(expected.buffer));
  ema.dispose();
}

/** A loopback server answering each path with a fixed reply; counts requests. */
async function startServer(routes) {
  const hits = new Map();
  const server = http.createServer((request, response) => {
    hits.set(request.url, (hits.get(request.url) ?? 0) + 1);
    const route = routes[request.url] ?? { status: 404, type: 'text/plain', body: 'Not Found' };
    response.writeHead(route.status ?? 200, { 'content-type': route.type, ...route.headers });
    response.end(route.body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, hits, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('options.wasm in Node', () => {
  let server;
  before(async () => {
    server = await startServer({
      '/ema-simd.wasm': { type: 'application/wasm', body: SIMD_BYTES },
      '/ema-scalar.wasm': { type: 'application/octet-stream', body: SCALAR_BYTES },
      '/spa/ema-simd.wasm': { type: 'text/html; charset=utf-8', body: HTML_FALLBACK },
      '/json': { type: 'application/json', body: '{"error":"no such asset"}' },
    });
  });
  after(() => server?.close());

  test('a compiled WebAssembly.Module of either build; ema.simd asks the module itself', async () => {
    await runsCorrectly(await WebAssembly.compile(SIMD_BYTES), true);
    await runsCorrectly(await WebAssembly.compile(SCALAR_BYTES), false);
  });

  test('bytes: Uint8Array, ArrayBuffer, a Buffer at an offset, a DataView', async () => {
    await runsCorrectly(new Uint8Array(SIMD_BYTES), true);
    await runsCorrectly(SCALAR_BYTES.buffer.slice(SCALAR_BYTES.byteOffset, SCALAR_BYTES.byteOffset + SCALAR_BYTES.length), false);
    const padded = Buffer.concat([Buffer.from('xxxx'), SIMD_BYTES]);
    await runsCorrectly(padded.subarray(4), true);
    await runsCorrectly(new DataView(padded.buffer, padded.byteOffset + 4, SIMD_BYTES.length), true);
  });

  test('a Response, a promise of one, a URL and a URL string; any content type', async () => {
    await runsCorrectly(new Response(SIMD_BYTES, { headers: { 'content-type': 'application/wasm' } }), true);
    await runsCorrectly(fetch(`${server.url}/ema-scalar.wasm`), false);
    await runsCorrectly(new URL(`${server.url}/ema-simd.wasm`), true);
    await runsCorrectly(`${server.url}/ema-scalar.wasm`, false);
  });

  test('a URL is fetched and compiled once; a failed fetch is not remembered', async () => {
    const url = `${server.url}/ema-simd.wasm?once`;
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: url }), /HTTP 404/);
    server.hits.clear();
    const extra = await startServer({ '/ema-simd.wasm': { type: 'application/wasm', body: SIMD_BYTES } });
    try {
      for (let i = 0; i < 3; i++) await runsCorrectly(`${extra.url}/ema-simd.wasm`, true);
      assert.equal(extra.hits.get('/ema-simd.wasm'), 1);
    } finally {
      await extra.close();
    }
  });

  test('an HTML fallback page is named as such, with the URL, content type and what came', async () => {
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: `${server.url}/spa/ema-simd.wasm` }), (error) => {
      assert.equal(error.name, 'Error');
      assert.ok(error.message.startsWith(`ema-wasm: createEma: options.wasm (${server.url}/spa/ema-simd.wasm) is not WebAssembly: `), error.message);
      assert.match(error.message, /came with content-type text\/html; charset=utf-8 and starts "<!doctype html> <html lang="en">.*" \(bytes 3c 21 64 6f\)/);
      assert.match(error.message, /where a \.wasm file starts 00 61 73 6d/);
      assert.match(error.message, /a web page: most likely a server or dev server answered a path it has no file for with its index page/);
      assert.match(error.message, /ema-wasm\/ema-simd\.wasm and ema-wasm\/ema-scalar\.wasm/);
      return true;
    });
  });

  test('a 404 names the status, the content type and the body; a JSON body is not taken for a page', async () => {
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: `${server.url}/missing.wasm` }), {
      message: new RegExp(`options\\.wasm \\(${server.url}/missing\\.wasm\\): the server answered HTTP 404 Not Found \\(text/plain: "Not Found".*\\) instead of the \\.wasm file`),
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: `${server.url}/json` }), (error) => {
      assert.match(error.message, /is not WebAssembly: it came with content-type application\/json and starts "\{"error":"no such asset"\}"/);
      assert.doesNotMatch(error.message, /web page/);
      return true;
    });
  });

  test('an unreachable host, a relative URL with no page, a file: URL in Node', async () => {
    const closed = await startServer({});
    await closed.close();
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: `${closed.url}/ema-simd.wasm` }), {
      message: /fetching it failed \(fetch failed: ECONNREFUSED\)/,
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: 'dist/ema-simd.wasm' }), {
      name: 'TypeError',
      message: /'dist\/ema-simd\.wasm' is not an absolute URL, and there is no page location/,
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: new URL('../../dist/ema-simd.wasm', import.meta.url) }), {
      name: 'TypeError',
      message: /fetch\(\) cannot read file: URLs in Node; hand over the file's bytes/,
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: 'C:\\models\\ema-simd.wasm' }), {
      name: 'TypeError',
      message: /'C:\\models\\ema-simd\.wasm' is a Windows path, not a URL; hand over the file's bytes/,
    });
  });

  test('bytes that are not Wasm, a truncated module, another module, and values of the wrong kind', async () => {
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: new Uint8Array(0) }), {
      message: /options\.wasm \(0 bytes given\) is not WebAssembly: it is empty, where a \.wasm file starts 00 61 73 6d/,
    });
    // Not Wasm is found from the first four bytes, before anything is copied or compiled.
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: new Uint8Array(2 ** 30) }), {
      message: /\(1,073,741,824 bytes given\) is not WebAssembly: it starts bytes 00 00 00 00/,
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0) }), {
      message: /\(6 bytes given\) is not WebAssembly: it starts bytes 1f 8b 08 00/,
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: SIMD_BYTES.subarray(0, 100) }), {
      message: /starts like WebAssembly but does not compile \(.*\); the file may be truncated/,
    });
    // The smallest valid module: no exports at all.
    const empty = Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0);
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: empty }), {
      message: /is WebAssembly but not this version's ema-wasm module: it lacks the function exports _initialize, ema_[a-z_0-9, ]+ and \d+ more\. Use ema-simd\.wasm or ema-scalar\.wasm from the same ema-wasm version/,
    });
    // All the names, but a memory it cannot share: linking fails, and is named.
    const narrowMemory = moduleImporting({ memoryMaximum: 10 });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: narrowMemory }), {
      message: /options\.wasm is WebAssembly but not this version's ema-wasm module: instantiating it failed \(LinkError: .*maximum/,
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: moduleImporting({ memoryAsFunction: true }) }), {
      message: /not this version's ema-wasm module: it imports env\.memory \(function\)/,
    });
    const detached = new Uint8Array(SIMD_BYTES);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: detached }), {
      name: 'TypeError',
      message: /options\.wasm: its ArrayBuffer was detached/,
    });
    // Own getters that lie about the view are not asked.
    const liar = new Uint8Array(SIMD_BYTES);
    Object.defineProperty(liar, 'byteLength', { get: () => assert.fail('byteLength read') });
    Object.defineProperty(liar, 'buffer', { get: () => assert.fail('buffer read') });
    await runsCorrectly(liar, true);
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: revoked }), {
      name: 'TypeError',
      message: /^ema-wasm: createEma: options\.wasm \(an object whose properties cannot be read \(a Proxy\?\)\) cannot be read \(.*revoked\); expected a compiled WebAssembly\.Module/,
    });
    for (const wrong of [42, true, {}, [], () => {}, Symbol('x')]) {
      await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: wrong }), {
        name: 'TypeError',
        message: /^ema-wasm: createEma: options\.wasm must be a compiled WebAssembly\.Module, the bytes of ema-simd\.wasm or ema-scalar\.wasm \(ArrayBuffer or typed array\), a Response or a promise of one, or a URL; got /,
      });
    }
  });

  test('a promise: its value is used, its rejection is named, and it never rejects unhandled', async () => {
    await runsCorrectly(Promise.resolve(new Uint8Array(SIMD_BYTES)), true);
    await runsCorrectly({ then: (resolve) => resolve(SCALAR_BYTES) }, false); // any thenable
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: Promise.reject(new Error('offline')) }), {
      message: /^ema-wasm: createEma: options\.wasm: the promise given was rejected \(offline\)$/,
    });
    // Another option refused first: the promise's later rejection is handled all the same.
    const unhandled = [];
    const onUnhandled = (reason) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const late = new Promise((resolve, reject) => setTimeout(() => reject(new Error('late')), 10));
      await assert.rejects(createEma({ w: new Float32Array(1) }, { decay: 2, wasm: late }), { name: 'RangeError' });
      await assert.rejects(readMetadata(123, { wasm: late }), { name: 'TypeError', message: /bytes must be a Uint8Array/ });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('the file arguments of loadEma and readMetadata are checked before any module is fetched', async () => {
    server.hits.clear();
    const wasm = `${server.url}/ema-simd.wasm?unfetched`;
    await assert.rejects(readMetadata(123, { wasm }), { name: 'TypeError', message: /readMetadata: bytes must be a Uint8Array/ });
    await assert.rejects(loadEma(new Uint8Array(8), { prefix: 5, wasm }), { name: 'TypeError', message: /options\.prefix must be a string/ });
    assert.equal(server.hits.size, 0);
  });

  test('a URL failure shared by racing callers names each caller', async () => {
    const wasm = `${server.url}/missing-for-two.wasm`;
    const [created, read] = await Promise.allSettled([
      createEma({ w: new Float32Array(1) }, { wasm }),
      readMetadata(new Uint8Array(8), { wasm }),
    ]);
    assert.match(created.reason.message, /^ema-wasm: createEma: options\.wasm \(.*\): the server answered HTTP 404/);
    assert.match(read.reason.message, /^ema-wasm: readMetadata: options\.wasm \(.*\): the server answered HTTP 404/);
  });

  test('options.simd must agree with the module handed over', async () => {
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: SCALAR_BYTES, simd: true }), {
      message: /options\.simd is true but options\.wasm is the scalar build; hand over ema-simd\.wasm, or leave options\.simd at 'auto'/,
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: SIMD_BYTES, simd: false }), {
      message: /options\.simd is false but options\.wasm is the simd build; hand over ema-scalar\.wasm/,
    });
    await runsCorrectly(SCALAR_BYTES, false, { simd: false });
  });

  test('a Response is read once; its Module can be reused', async () => {
    const response = new Response(SIMD_BYTES);
    await runsCorrectly(response, true);
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: response }), {
      name: 'TypeError',
      message: /options\.wasm \(a Response\): its body was already read; a Response can be used once .*hand over the WebAssembly\.Module/,
    });
    const locked = new Response(SIMD_BYTES);
    locked.body.getReader();
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: locked }), { name: 'TypeError', message: /its body was already read/ });
    const failing = new Response(new ReadableStream({ pull: (controller) => controller.error(new Error('network dropped')) }));
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: failing }), {
      message: /^ema-wasm: createEma: options\.wasm \(a Response\): reading its body failed \(network dropped\)/,
    });
    await assert.rejects(createEma({ w: new Float32Array(1) }, { wasm: new Response(new Uint8Array(0)) }), {
      message: /\(a Response\) is not WebAssembly: it came with no content-type and is empty/,
    });
  });

  test('loadEma reads a Response once for parsing and for the EMA; readMetadata and loadState take the module too', async () => {
    const ema = await createEma({ 'a.b': Float32Array.of(1, 2) }, { decay: 0.9 });
    ema.update({ 'a.b': Float32Array.of(3, 4) });
    const bytes = ema.save({ metadata: { step: '1' } });
    const loaded = await loadEma(bytes, { wasm: new Response(SCALAR_BYTES) });
    assert.equal(loaded.simd, false);
    assert.deepEqual(loaded.shadow('a.b'), ema.shadow('a.b'));
    await loaded.loadState(bytes);
    assert.deepEqual(await readMetadata(bytes, { wasm: SCALAR_BYTES }), await readMetadata(bytes));
    await assert.rejects(readMetadata(bytes, { wasm: 7 }), { name: 'TypeError', message: /readMetadata: options\.wasm must be/ });
    await assert.rejects(readMetadata(bytes, { wasm: SCALAR_BYTES, prefix: '' }), { name: 'TypeError', message: /unknown option 'prefix'; expected wasm/ });
  });

  test('the adapters pass options.wasm on', async () => {
    const values = Float32Array.of(1, 2, 3);
    const session = {
      getParametersSize: async () => 3,
      getContiguousParameters: async () => ({ type: 'float32', data: values.slice() }),
      loadParametersBuffer: async () => {},
    };
    const ort = await createOrtEma(session, { wasm: SCALAR_BYTES });
    assert.equal(ort.simd, false);
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    const variable = tf.variable(tf.tensor1d([1, 2]), true, 'wasm_option_w');
    const tfjs = await createTfjsEma([variable], { wasm: SCALAR_BYTES, tf });
    assert.equal(tfjs.simd, false);
    tfjs.dispose();
    variable.dispose();
  });
});

// ---- in Chromium ----------------------------------------------------------


/** A page that imports the package by URL and reports createEma's outcome. */
function pageRunning(options) {
  return `<!doctype html><meta charset="utf-8"><script type="module" src="/main.js?${encodeURIComponent(options)}"></script>`;
}
const MAIN_JS = `
  import { createEma } from '/js/index.js';
  const options = JSON.parse(decodeURIComponent(new URL(import.meta.url).search.slice(1)) || '{}');
  // { fetch: [url, init] } hands over the promise fetch() gives.
  if (options.fetch) options.wasm = fetch(...options.fetch), delete options.fetch;
  try {
    const ema = await createEma({ w: Float32Array.of(1, 2) }, { decay: 0.5, useNumUpdates: false, ...options });
    ema.update({ w: Float32Array.of(3, 4) });
    window.__result = { simd: ema.simd, shadow: Array.from(ema.shadow('w')) };
  } catch (error) {
    window.__result = { error: error.name + ': ' + error.message };
  }
`;

const COMPILE_WORKER_JS = `
  WebAssembly.compileStreaming(fetch('/assets/ema-simd.wasm')).then(
    (module) => postMessage(module),
    (error) => postMessage(String(error)),
  );
`;
const MAIN_FROM_WORKER_JS = `
  import { createEma } from '/js/index.js';
  const worker = new Worker('/compile-worker.js');
  worker.onmessage = async ({ data: module }) => {
    try {
      const ema = await createEma({ w: Float32Array.of(1, 2) }, { decay: 0.5, useNumUpdates: false, wasm: module });
      ema.update({ w: Float32Array.of(3, 4) });
      window.__result = { simd: ema.simd, shadow: Array.from(ema.shadow('w')) };
    } catch (error) {
      window.__result = { error: error.name + ': ' + error.message };
    }
  };
`;

describe('options.wasm and Content-Security-Policy in Chromium', { skip: skipWithoutChromium }, () => {
  let server;
  let browser;

  before(async () => {
    const { chromium } = await import('playwright-core');
    // Serves the package's js/ from the repository, and pages with policies.
    server = http.createServer((request, response) => {
      const url = new URL(request.url, 'http://x');
      const send = (status, type, body, headers = {}) => {
        response.writeHead(status, { 'content-type': type, ...headers });
        response.end(body);
      };
      if (url.pathname.startsWith('/js/') && !url.pathname.includes('..')) {
        const file = `${root}${url.pathname.slice(1)}`;
        return existsSync(file) ? send(200, 'text/javascript', readFileSync(file)) : send(404, 'text/plain', 'Not Found');
      }
      if (url.pathname === '/main.js') return send(200, 'text/javascript', MAIN_JS);
      if (url.pathname === '/assets/ema-simd.wasm') return send(200, 'application/wasm', SIMD_BYTES);
      // A worker whose own policy allows compiling: it compiles and posts the Module.
      if (url.pathname === '/compile-worker.js') {
        return send(200, 'text/javascript', COMPILE_WORKER_JS, { 'content-security-policy': "script-src 'self' 'wasm-unsafe-eval'" });
      }
      if (url.pathname === '/main-from-worker.js') return send(200, 'text/javascript', MAIN_FROM_WORKER_JS);
      if (url.pathname === '/page-from-worker') {
        const body = '<!doctype html><meta charset="utf-8"><script type="module" src="/main-from-worker.js"></script>';
        return send(200, 'text/html', body, { 'content-security-policy': "default-src 'self'; script-src 'self'" });
      }
      const page = url.searchParams.get('page');
      const policy = url.searchParams.get('csp');
      const headers = policy ? { 'content-security-policy': policy } : {};
      if (url.pathname === '/page') return send(200, 'text/html', pageRunning(page ?? '{}'), headers);
      // Everything else: a dev server's SPA fallback.
      return send(200, 'text/html', HTML_FALLBACK);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    server.url = `http://127.0.0.1:${server.address().port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
  });

  async function resultOf(pageOptions, csp) {
    const page = await browser.newPage();
    try {
      const query = new URLSearchParams({ page: JSON.stringify(pageOptions) });
      if (csp) query.set('csp', csp);
      await page.goto(`${server.url}/page?${query}`);
      await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 20_000 });
      return await page.evaluate(() => window.__result);
    } finally {
      await page.close();
    }
  }

  test("a page that allows scripts from itself and 'wasm-unsafe-eval' but no fetch at all runs the built-in SIMD build", async () => {
    const result = await resultOf({}, "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'none'");
    assert.deepEqual(result, { simd: true, shadow: [2, 3] });
  });

  test("a page whose policy forbids compiling says to allow 'wasm-unsafe-eval' or hand over a module", async () => {
    const result = await resultOf({}, "default-src 'none'; script-src 'self'");
    assert.match(result.error, /^Error: ema-wasm: createEma: compiling the built-in simd module failed \(.*\)\. This page's Content-Security-Policy forbids compiling WebAssembly: allow it with 'wasm-unsafe-eval' in script-src/);
  });

  test('a page that forbids compiling runs a WebAssembly.Module compiled by a worker whose policy allows it', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/page-from-worker`);
      await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 20_000 });
      assert.deepEqual(await page.evaluate(() => window.__result), { simd: true, shadow: [2, 3] });
    } finally {
      await page.close();
    }
  });

  test("another origin: an opaque no-cors Response and a fetch CORS refuses are explained", async () => {
    const otherOrigin = server.url.replace('127.0.0.1', 'localhost');
    const opaque = await resultOf({ fetch: [`${otherOrigin}/assets/ema-simd.wasm`, { mode: 'no-cors' }] });
    assert.match(opaque.error, /^Error: ema-wasm: createEma: options\.wasm \(a Response\) is an opaque Response \(fetched with mode 'no-cors'\), whose bytes cannot be read; fetch it with CORS/);
    const refused = await resultOf({ wasm: `${otherOrigin}/assets/ema-simd.wasm` });
    assert.match(refused.error, /^Error: ema-wasm: createEma: options\.wasm \(http:\/\/localhost:\d+\/assets\/ema-simd\.wasm\): fetching it failed \(Failed to fetch\)\. A URL of another origin needs CORS headers \(Access-Control-Allow-Origin\)/);
  });

  test('a relative URL resolves against the page; a path the server does not have gets its fallback page explained', async () => {
    assert.deepEqual(await resultOf({ wasm: 'assets/ema-simd.wasm' }), { simd: true, shadow: [2, 3] });
    const result = await resultOf({ wasm: '/node_modules/ema-wasm/dist/ema-simd.wasm' });
    assert.match(result.error, new RegExp(`^Error: ema-wasm: createEma: options\\.wasm \\(${server.url}/node_modules/ema-wasm/dist/ema-simd\\.wasm\\) is not WebAssembly: it came with content-type text/html and starts "<!doctype html>`));
    assert.match(result.error, /index page \(an SPA fallback\)/);
  });
});
