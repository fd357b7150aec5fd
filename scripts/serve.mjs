#!/usr/bin/env node
// A small static file server for the browser demo (demo/index.html) and the
// browser test: serves the repository root on 127.0.0.1 with the right MIME
// types (.wasm as application/wasm, so WebAssembly.compileStreaming works).
//
//   node scripts/serve.mjs                  # PORT=8080 by default, HOST=127.0.0.1
//   PORT=9000 node scripts/serve.mjs
//   node scripts/serve.mjs --no-isolation   # without the COOP/COEP headers
//
// Or in-process (the browser test does this on port 0):
//   const { url, close } = await startServer({ port: 0, isolation: true });
//
// Cross-origin isolation: by default every response carries
// Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy:
// require-corp, so the page is cross-origin isolated (crossOriginIsolated,
// SharedArrayBuffer) and ema-wasm's threads build can run in it. Under
// require-corp a page may load only same-origin resources, or others that
// opt in with Cross-Origin-Resource-Policy; the demo loads everything from
// this server (the repository and its node_modules), and every response
// says Cross-Origin-Resource-Policy: same-origin as well. --no-isolation
// (isolation: false) leaves the three headers out: the page then runs the
// single-threaded SIMD build, as on a server that does not send them.
//
// Only GET and HEAD; no directory listings; paths with '..' or hidden
// (dot) segments are refused (403), and every file is checked to lie inside
// the root after symlinks are resolved. Plain node:http, no dependencies.

import { createReadStream, realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { createCommandLine } from './flags.mjs';

export const DEFAULT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export const MIME_TYPES = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
});

const FALLBACK_TYPE = 'application/octet-stream';

/** The headers that make a page cross-origin isolated, and the resource policy of everything served. */
export const ISOLATION_HEADERS = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The decoded path segments of a request target, or an HttpError. */
function requestSegments(target) {
  if (typeof target !== 'string' || !target.startsWith('/')) {
    throw new HttpError(400, 'Bad request target');
  }
  // The raw target, not new URL(): a URL parser would quietly resolve
  // '/../package.json' to '/package.json' instead of refusing it.
  const rawPath = target.split(/[?#]/, 1)[0];
  let decoded;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new HttpError(400, 'Malformed percent-encoding');
  }
  if (decoded.includes('\0')) {
    throw new HttpError(400, 'Bad request target');
  }
  const segments = decoded.split(/[/\\]/).filter((segment) => segment !== '' && segment !== '.');
  if (segments.some((segment) => segment === '..')) {
    throw new HttpError(403, 'Forbidden: path leaves the served folder');
  }
  if (segments.some((segment) => segment.startsWith('.'))) {
    throw new HttpError(403, 'Forbidden: hidden files are not served');
  }
  return { segments, trailingSlash: decoded.endsWith('/') };
}

function isInside(root, file) {
  const relative = path.relative(root, file);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** Resolves a request to a file to send, or a redirect; throws HttpError. */
async function resolveTarget(root, target) {
  const { segments, trailingSlash } = requestSegments(target);
  if (segments.length === 0) {
    return { redirect: '/demo/' };
  }
  const candidate = path.resolve(root, ...segments);
  if (!isInside(root, candidate)) {
    throw new HttpError(403, 'Forbidden: path leaves the served folder');
  }
  let file = candidate;
  let info;
  try {
    info = await stat(file);
    if (info.isDirectory()) {
      if (!trailingSlash) {
        // /demo -> /demo/, so the page's relative URLs resolve inside it.
        const query = target.includes('?') ? target.slice(target.indexOf('?')) : '';
        return { redirect: `/${segments.map(encodeURIComponent).join('/')}/${query}` };
      }
      file = path.join(file, 'index.html');
      info = await stat(file);
    }
  } catch (error) {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') throw new HttpError(404, 'Not found');
    throw error;
  }
  if (!info.isFile()) {
    throw new HttpError(404, 'Not found');
  }
  // A symlink inside the root must not lead outside it.
  const real = await realpath(file);
  if (!isInside(root, real)) {
    throw new HttpError(403, 'Forbidden: path leaves the served folder');
  }
  return { file: real, size: info.size };
}

function sendText(response, status, text, headers = {}) {
  const body = `${status} ${text}\n`;
  response.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  response.end(body);
}

function createHandler(root, log, isolation) {
  return async (request, response) => {
    // On every response (redirects and errors too): writeHead() adds its own.
    if (isolation) for (const [name, value] of Object.entries(ISOLATION_HEADERS)) response.setHeader(name, value);
    try {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        sendText(response, 405, 'Method not allowed', { Allow: 'GET, HEAD' });
        return;
      }
      const resolved = await resolveTarget(root, request.url);
      if (resolved.redirect) {
        response.writeHead(302, { Location: resolved.redirect, 'Content-Length': 0, 'Cache-Control': 'no-store' });
        response.end();
        return;
      }
      const type = MIME_TYPES[path.extname(resolved.file).toLowerCase()] ?? FALLBACK_TYPE;
      response.writeHead(200, {
        'Content-Type': type,
        'Content-Length': resolved.size,
        // A development server: always serve what is on disk now.
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      });
      if (request.method === 'HEAD') {
        response.end();
        return;
      }
      const stream = createReadStream(resolved.file);
      stream.on('error', (error) => {
        log(`error reading ${resolved.file}: ${error.message}`);
        response.destroy(error);
      });
      stream.pipe(response);
    } catch (error) {
      if (error instanceof HttpError) {
        sendText(response, error.status, error.message);
      } else {
        log(`error serving ${request.url}: ${error.stack ?? error}`);
        if (!response.headersSent) sendText(response, 500, 'Internal server error');
        else response.destroy(error);
      }
    }
  };
}

/**
 * Starts the server. Resolves to { server, url, demoUrl, port, isolation,
 * close() } once it listens; rejects (with error.code 'EADDRINUSE' and a
 * clear message) when the port is taken. `port: 0` picks a free port.
 * `isolation: false` leaves out the cross-origin isolation headers
 * (ISOLATION_HEADERS), which are on every response by default.
 */
export function startServer({ port = 8080, host = '127.0.0.1', root = DEFAULT_ROOT, log = () => {}, isolation = true } = {}) {
  if (typeof isolation !== 'boolean') {
    return Promise.reject(new TypeError(`startServer: isolation must be a boolean, got ${typeof isolation}`));
  }
  const resolvedRoot = path.resolve(root);
  const server = http.createServer(createHandler(resolvedRoot, log, isolation));
  return new Promise((resolve, reject) => {
    const onError = (error) => {
      if (error.code === 'EADDRINUSE') {
        error.message =
          `port ${port} on ${host} is already in use (another server running?); ` +
          'stop it or choose another port, e.g. PORT=8081 npm run serve';
      } else if (error.code === 'EACCES') {
        error.message = `no permission to listen on port ${port} of ${host}; choose a port above 1023`;
      }
      reject(error);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      const hostForUrl = address.family === 'IPv6' || address.family === 6 ? `[${address.address}]` : address.address;
      const url = `http://${hostForUrl}:${address.port}`;
      resolve({
        server,
        url,
        demoUrl: `${url}/demo/`,
        port: address.port,
        isolation,
        close: () =>
          new Promise((done, fail) => {
            server.close((error) => (error ? fail(error) : done()));
            // Keep-alive connections (a browser) would hold close() open.
            server.closeAllConnections?.();
          }),
      });
    });
  });
}

function parsePort(text) {
  if (text === undefined || text === '') return 8080;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new Error(`PORT must be an integer in [0, 65535], got '${text}'`);
  }
  return port;
}

const { readOptions } = createCommandLine({
  program: 'serve',
  usage: `usage: node scripts/serve.mjs [--no-isolation]   (or: npm run serve -- [--no-isolation])

Serves the repository on http://HOST:PORT/ for the browser demo (/demo/).

  --no-isolation  serve without the cross-origin isolation headers
                  (Cross-Origin-Opener-Policy: same-origin,
                  Cross-Origin-Embedder-Policy: require-corp and
                  Cross-Origin-Resource-Policy: same-origin), which are on
                  every response by default; without them the page is not
                  cross-origin isolated, and ema-wasm runs its single-threaded
                  SIMD build instead of the threads build
  -h, --help      print this help

Environment: PORT (default 8080; 0 picks a free port), HOST (default 127.0.0.1).`,
  defaults: { isolation: true },
  switches: { '--no-isolation': ['isolation', false] },
});

async function main() {
  const options = readOptions(process.argv.slice(2));
  if (options === null) return;
  let port;
  try {
    port = parsePort(process.env.PORT);
  } catch (error) {
    console.error(`serve: ${error.message}`);
    process.exitCode = 2;
    return;
  }
  const host = process.env.HOST || '127.0.0.1';
  for (const build of ['ema-simd.js', 'ema-threads.js']) {
    try {
      await stat(path.join(DEFAULT_ROOT, 'js', 'wasm', build));
    } catch {
      console.warn(`serve: js/wasm/${build} (the inlined Wasm) is missing; build it first with \`npm run build\``);
    }
  }
  try {
    const { demoUrl, close } = await startServer({
      port,
      host,
      isolation: options.isolation,
      log: (message) => console.error(`serve: ${message}`),
    });
    console.log(`ema-wasm demo at ${demoUrl}`);
    console.log(
      options.isolation
        ? 'cross-origin isolated (COOP/COEP headers sent): the page can run the threads build; --no-isolation to serve without them'
        : 'not cross-origin isolated (--no-isolation): the page runs the single-threaded SIMD build',
    );
    const stop = () => {
      close().finally(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (error) {
    console.error(`serve: ${error.message}`);
    process.exitCode = 1;
  }
}

function isMainModule() {
  if (!process.argv[1]) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isMainModule()) {
  await main();
}
