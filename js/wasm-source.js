// options.wasm: a module the caller hands over instead of the built-in one,
// for pages whose Content-Security-Policy forbids compiling bytes, modules
// served from a CDN, or hosts that compile elsewhere. It may be a compiled
// WebAssembly.Module, the bytes of a .wasm file, a Response (or a promise of
// one, as fetch() gives), or a URL to fetch. Whatever arrives is checked to be
// WebAssembly and to be this version's ema-wasm module, and a failure says
// what came instead and what probably went wrong.
//
// Like every input, the value is read once and judged by what the engine
// knows of it (internal slots), not by what it says of itself: promises,
// Responses and buffers from another realm (an iframe, vm, Jest) or another
// fetch library are accepted.

import { clip, describe, listSome } from './describe.js';
import { bufferOf, byteOffsetOf, isDetached, typedArrayKind } from './typed-arrays.js';
import { CALLED_EXPORTS } from './wasm/exports.js';

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Every export the JS side calls (src/wasm_exports.txt): a module without them is not this version's. */
export const REQUIRED_EXPORTS = CALLED_EXPORTS;
/** What the module imports, and of which kind (loader.js gives both). */
const EXPECTED_IMPORTS = new Map([['env.memory', 'memory'], ['env.emscripten_notify_memory_growth', 'function']]);

const ACCEPTED =
  'a compiled WebAssembly.Module, the bytes of ema-simd.wasm or ema-scalar.wasm (ArrayBuffer or typed array), ' +
  'a Response or a promise of one, or a URL';
const SERVE_IT =
  'The package ships both files (ema-wasm/ema-simd.wasm and ema-wasm/ema-scalar.wasm): serve one at that URL, ' +
  'or hand over its bytes or a compiled WebAssembly.Module.';
const SAME_VERSION = 'Use ema-simd.wasm or ema-scalar.wasm from the same ema-wasm version as this JavaScript.';

/**
 * A defect of the value handed over, found before the caller's name is known
 * (compiled URLs are shared by every caller): `named(where)` makes the error
 * the caller throws.
 */
class SourceProblem {
  constructor(ErrorType, detail, cause) {
    this.ErrorType = ErrorType;
    this.detail = detail;
    this.cause = cause;
  }

  named(where) {
    const options = this.cause === undefined ? undefined : { cause: this.cause };
    return new this.ErrorType(`${where}${this.detail}`, options);
  }
}

const isNode = typeof process === 'object' && typeof process?.versions?.node === 'string';
const arrayBufferByteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength').get;
const sharedByteLength =
  typeof SharedArrayBuffer === 'function'
    ? Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'byteLength').get
    : undefined;
const urlHref = Object.getOwnPropertyDescriptor(URL.prototype, 'href').get;
const typedArrayByteLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'byteLength').get;
const dataViewGetter = (key) => Object.getOwnPropertyDescriptor(DataView.prototype, key).get;
const [dataViewBuffer, dataViewOffset, dataViewLength] = ['buffer', 'byteOffset', 'byteLength'].map(dataViewGetter);

/** Calls `getter` on `value`, or gives undefined where it throws (the brand check failed). */
function tryIntrinsic(getter, value) {
  try {
    return getter.call(value);
  } catch {
    return undefined;
  }
}

function isWasmModule(value) {
  try {
    WebAssembly.Module.exports(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The bytes `value` holds as a Uint8Array over the caller's memory (no copy:
 * WebAssembly.compile copies what it is given), read from internal slots;
 * undefined when it is not an ArrayBuffer, SharedArrayBuffer, typed array or
 * DataView of any realm. A detached buffer is a TypeError.
 */
function bytesOf(value) {
  let buffer;
  let offset = 0;
  let length;
  if (typedArrayKind(value) !== undefined) {
    buffer = bufferOf(value);
    offset = byteOffsetOf(value);
    length = typedArrayByteLength.call(value);
  } else if (tryIntrinsic(dataViewBuffer, value) !== undefined) {
    buffer = dataViewBuffer.call(value);
    offset = tryIntrinsic(dataViewOffset, value);
    length = tryIntrinsic(dataViewLength, value);
  } else if (tryIntrinsic(arrayBufferByteLength, value) !== undefined || (sharedByteLength && tryIntrinsic(sharedByteLength, value) !== undefined)) {
    buffer = value;
    length = tryIntrinsic(arrayBufferByteLength, value) ?? sharedByteLength.call(value);
  } else {
    return undefined;
  }
  if (isDetached(buffer)) {
    throw new SourceProblem(TypeError, ': its ArrayBuffer was detached (transferred to a worker, or by ArrayBuffer.transfer)');
  }
  if (offset === undefined || length === undefined) {
    throw new SourceProblem(TypeError, ': the view lies outside its resizable ArrayBuffer, which was shrunk');
  }
  const view = new Uint8Array(buffer, offset, length);
  // Another thread may write a SharedArrayBuffer while it compiles: take a copy.
  return tryIntrinsic(arrayBufferByteLength, buffer) === undefined ? view.slice() : view;
}

/**
 * What a Response (of any realm or fetch library) is made of, each property
 * read once; undefined when `value` does not look like one.
 */
function responseParts(value) {
  if (value === null || typeof value !== 'object') return undefined;
  try {
    const arrayBuffer = value.arrayBuffer;
    if (typeof arrayBuffer !== 'function') return undefined;
    const status = value.status;
    const headers = value.headers;
    if (typeof status !== 'number' || headers === null || typeof headers !== 'object') return undefined;
    const url = value.url;
    const contentType = typeof headers.get === 'function' ? headers.get('content-type') : null;
    return {
      response: value,
      arrayBuffer,
      status,
      statusText: value.statusText,
      ok: value.ok,
      type: value.type,
      url: typeof url === 'string' && url !== '' ? url : undefined,
      contentType: typeof contentType === 'string' ? contentType : null,
      bodyUsed: value.bodyUsed,
      body: value.body,
    };
  } catch (error) {
    // A Proxy around a browser's Response: its getters refuse the Proxy.
    throw new SourceProblem(
      TypeError,
      ` (${describe(value)}) cannot be read (${messageOf(error)}); expected ${ACCEPTED} ` +
        '(a Response behind a Proxy cannot be read: hand over the Response itself, or its bytes)',
      error,
    );
  }
}

/**
 * Settles `value` if it is a promise or any thenable (reading `then` once),
 * so that a rejection is never left unhandled, even when another option is
 * refused first. The result is a native promise of the value, or the value.
 */
const adoptedPromises = new WeakSet();

export function adoptWasmSource(value) {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return value;
  let then;
  try {
    then = value.then;
  } catch {
    return value; // a revoked Proxy, say: moduleFromSource names it
  }
  if (typeof then !== 'function') return value;
  const settled = new Promise((resolve, reject) => then.call(value, resolve, reject));
  settled.catch(() => {});
  adoptedPromises.add(settled);
  return settled;
}

/**
 * The compiled module that `source` (options.wasm of `method`, passed
 * through adoptWasmSource first) stands for, checked; rejects with an Error or TypeError
 * that names the source and what came.
 */
export async function moduleFromSource(source, method) {
  const where = `ema-wasm: ${method}: options.wasm`;
  let label = where;
  try {
    let given = 'given';
    if (adoptedPromises.has(source)) {
      try {
        source = await source;
      } catch (error) {
        throw new SourceProblem(Error, `: the promise given was rejected (${messageOf(error)})`, error);
      }
      given = 'given by a promise';
    }
    if (isWasmModule(source)) return checkedModule(source);
    const bytes = bytesOf(source);
    if (bytes !== undefined) {
      label = `${where} (${bytes.length.toLocaleString('en-US')} bytes ${given})`;
      return await compileBytes(bytes, '', false);
    }
    if (typeof source === 'string' || tryIntrinsic(urlHref, source) !== undefined) {
      const url = urlOf(source);
      label = `${where} (${url.href})`;
      return await compileUrl(url);
    }
    const parts = responseParts(source);
    if (parts !== undefined) {
      label = `${where} (a Response${parts.url ? ` from ${parts.url}` : ''})`;
      return await compileResponse(parts);
    }
    throw new SourceProblem(TypeError, ` must be ${ACCEPTED}; got ${describe(source)}`);
  } catch (error) {
    if (error instanceof SourceProblem) throw error.named(label);
    // A value that broke while being read (a revoked Proxy, say).
    throw new TypeError(`${label} cannot be read (${messageOf(error)}); expected ${ACCEPTED}`, { cause: error });
  }
}

function messageOf(error) {
  return error instanceof Error || typeof error?.message === 'string' ? error.message : String(error);
}

/** A URL object or string as an absolute URL: strings resolve against the page (or worker script). */
function urlOf(source) {
  const text = typeof source === 'string' ? source : urlHref.call(source);
  if (/^[a-zA-Z]:[\\/]/.test(text)) {
    throw new SourceProblem(
      TypeError,
      `: '${clip(text)}' is a Windows path, not a URL; hand over the file's bytes (readFileSync(path)) instead`,
    );
  }
  try {
    return new URL(text, globalThis.location?.href);
  } catch {
    throw new SourceProblem(
      TypeError,
      `: '${clip(text)}' is not an absolute URL, and there is no page location to resolve it against; ` +
        'give an absolute URL, or the bytes',
    );
  }
}

const compiledUrls = new Map();

/** Fetches and compiles `url` once per href for every caller; a failure is not remembered. */
function compileUrl(url) {
  let promise = compiledUrls.get(url.href);
  if (promise === undefined) {
    promise = fetchAndCompile(url);
    // The server may answer next time.
    promise.catch(() => {
      if (compiledUrls.get(url.href) === promise) compiledUrls.delete(url.href);
    });
    compiledUrls.set(url.href, promise);
  }
  return promise;
}

async function fetchAndCompile(url) {
  if (url.protocol === 'file:' && isNode) {
    throw new SourceProblem(
      TypeError,
      ": fetch() cannot read file: URLs in Node; hand over the file's bytes instead (readFileSync(path)) " +
        'or a compiled WebAssembly.Module',
    );
  }
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    // Node's fetch puts the reason (ECONNREFUSED, a DNS failure) in the cause.
    const reason = error?.cause?.code ?? error?.cause?.message;
    const crossOrigin = globalThis.location !== undefined && url.origin !== globalThis.location.origin;
    const hint = crossOrigin
      ? ` A URL of another origin needs CORS headers (Access-Control-Allow-Origin) from its server, and the page's ` +
        'Content-Security-Policy, if any, must allow it in connect-src.'
      : '';
    throw new SourceProblem(Error, `: fetching it failed (${messageOf(error)}${reason ? `: ${reason}` : ''}).${hint} ${SERVE_IT}`, error);
  }
  return compileResponse(responseParts(response));
}

/** The first bytes of a body (at most 64 KiB read), for a message; empty if it cannot be read. */
async function bodyStart(parts) {
  try {
    const reader = parts.body?.getReader?.();
    if (reader === undefined) return new Uint8Array(0);
    const { value } = await reader.read();
    reader.cancel().catch(() => {});
    return value instanceof Uint8Array ? value.subarray(0, 65536) : new Uint8Array(0);
  } catch {
    return new Uint8Array(0);
  }
}

async function compileResponse(parts) {
  const contentType = parts.contentType ?? 'no content-type';
  const came = parts.contentType === null ? 'came with no content-type and ' : `came with content-type ${contentType} and `;
  if (parts.type === 'opaque' || (parts.status === 0 && parts.type !== undefined)) {
    throw new SourceProblem(
      Error,
      " is an opaque Response (fetched with mode 'no-cors'), whose bytes cannot be read; fetch it with CORS " +
        '(the default mode), or hand over the bytes',
    );
  }
  if (parts.ok === false || parts.status < 200 || parts.status > 299) {
    const body = await bodyStart(parts);
    throw new SourceProblem(
      Error,
      `: the server answered HTTP ${parts.status}${parts.statusText ? ` ${parts.statusText}` : ''} ` +
        `(${contentType}${body.length > 0 ? `: ${preview(body)}` : ''}) instead of the .wasm file. ${SERVE_IT}`,
    );
  }
  if (parts.bodyUsed === true || parts.body?.locked === true) {
    throw new SourceProblem(
      TypeError,
      ': its body was already read; a Response can be used once (to make several EMAs from one download, ' +
        'compile it once and hand over the WebAssembly.Module)',
    );
  }
  let bytes;
  try {
    bytes = new Uint8Array(await parts.arrayBuffer.call(parts.response));
  } catch (error) {
    throw new SourceProblem(Error, `: reading its body failed (${messageOf(error)}). ${SERVE_IT}`, error);
  }
  return compileBytes(bytes, came, true);
}

/** The first bytes of something that is not Wasm, as text when they read as text, and as hex. */
function preview(bytes) {
  const head = bytes.subarray(0, 60);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(head).replace(/\s+/g, ' ').trim();
  const hex = Array.from(bytes.subarray(0, 4), (byte) => byte.toString(16).padStart(2, '0')).join(' ');
  const printable = text.length > 0 && !/[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text);
  return printable ? `"${text}${bytes.length > head.length ? '…' : ''}" (bytes ${hex})` : `bytes ${hex}`;
}

/** An HTML or XML page (a fallback page, an error page), by its first character. */
function looksLikeMarkup(bytes) {
  return new TextDecoder().decode(bytes.subarray(0, 200)).trimStart().startsWith('<');
}

/** `came`: how a fetched file arrived ("came with content-type X and "), or '' for bytes handed over. */
async function compileBytes(bytes, came, fetched) {
  const fix = fetched ? ` ${SERVE_IT}` : ` ${SAME_VERSION}`;
  if (bytes.length < 4 || WASM_MAGIC.some((byte, i) => bytes[i] !== byte)) {
    const what = bytes.length === 0 ? `${came}is empty` : `${came}starts ${preview(bytes)}`;
    const likely = fetched && looksLikeMarkup(bytes)
      ? ' That is a web page: most likely a server or dev server answered a path it has no file for with its ' +
        'index page (an SPA fallback), so the .wasm file is not at that URL.'
      : '';
    throw new SourceProblem(
      Error,
      ` is not WebAssembly: it ${what}, where a .wasm file starts 00 61 73 6d ("\\0asm").${likely}${fix}`,
    );
  }
  let module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (error) {
    const hint = policyHint(error);
    throw new SourceProblem(
      Error,
      hint === null
        ? ` starts like WebAssembly but does not compile (${error.message}); the file may be truncated, ` +
          `or be the SIMD build in a runtime without WebAssembly SIMD (use ema-scalar.wasm there).${fix}`
        : ` could not be compiled (${error.message}). ${hint}`,
      error,
    );
  }
  return checkedModule(module);
}

/** The module, if its exports and imports are this version's (names and kinds); else a SourceProblem. */
function checkedModule(module) {
  const exportKinds = new Map(WebAssembly.Module.exports(module).map(({ name, kind }) => [name, kind]));
  const missing = REQUIRED_EXPORTS.filter((name) => exportKinds.get(name) !== 'function');
  const imports = WebAssembly.Module.imports(module).map(({ module: from, name, kind }) => [`${from}.${name}`, kind]);
  const foreign = imports
    .filter(([name, kind]) => EXPECTED_IMPORTS.get(name) !== kind)
    .map(([name, kind]) => `${name} (${kind})`);
  if (missing.length > 0 || foreign.length > 0) {
    const problems = [
      missing.length > 0 ? `it lacks the function export${missing.length > 1 ? 's' : ''} ${listSome(missing)}` : null,
      foreign.length > 0 ? `it imports ${listSome(foreign)}` : null,
    ].filter(Boolean);
    throw new SourceProblem(Error, ` is WebAssembly but not this version's ema-wasm module: ${problems.join(' and ')}. ${SAME_VERSION}`);
  }
  return module;
}

/**
 * The error for a module that passed checkedModule but could not be
 * instantiated or asked which build it is (its memory import's limits, a trap
 * in its start code): it is still not this version's module.
 */
export function instantiationError(where, error) {
  return new Error(
    `${where} is WebAssembly but not this version's ema-wasm module: instantiating it failed ` +
      `(${error?.name}: ${messageOf(error)}). ${SAME_VERSION}`,
    { cause: error },
  );
}

/**
 * Why compiling may have been refused, when the engine's message says it was
 * a Content-Security-Policy (Chromium: "Wasm code generation disallowed by
 * embedder"; Firefox and Safari name the CSP): null otherwise.
 */
export function policyHint(error) {
  if (!/disallowed by embedder|content security policy|content-security-policy|\bCSP\b|unsafe-eval/i.test(String(error?.message))) {
    return null;
  }
  return "This page's Content-Security-Policy forbids compiling WebAssembly: allow it with 'wasm-unsafe-eval' in " +
    "script-src (which permits WebAssembly only, not JavaScript eval), or compile ema-simd.wasm where it is " +
    'allowed (a worker with its own policy) and hand the WebAssembly.Module over as options.wasm.';
}
