// options.wasm: a module the caller hands over instead of the built-in one,
// for pages whose Content-Security-Policy forbids compiling bytes, modules
// served from a CDN, or hosts that compile elsewhere. It may be a compiled
// WebAssembly.Module, the bytes of a .wasm file, a Response (or a promise of
// one, as fetch() gives), or a URL to fetch. Whatever arrives is checked to be
// WebAssembly and to be this version's ema-wasm module, and a failure says
// what came instead and what probably went wrong.

import { clip, describe, listSome } from './describe.js';

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Every export the JS side calls: a module without them is not this version's. */
const REQUIRED_EXPORTS = [
  '_initialize', 'malloc', 'free', 'ema_simd128', 'ema_create', 'ema_destroy', 'ema_decay', 'ema_set_decay',
  'ema_num_updates', 'ema_set_num_updates', 'ema_reset_num_updates', 'ema_shadow', 'ema_byte_length',
  'ema_staging', 'ema_segment_table', 'ema_step_begin', 'ema_step_apply', 'ema_backup_prepare', 'ema_backup',
  'ema_resident_enable', 'ema_param', 'ema_update_resident', 'ema_copy_to_resident', 'ema_store_resident',
  'ema_restore_resident', 'ema_status_string', 'ema_st_parse', 'ema_st_free', 'ema_st_tensor_count',
  'ema_st_tensor_name', 'ema_st_tensor_name_length', 'ema_st_tensor_dtype', 'ema_st_tensor_rank',
  'ema_st_tensor_dim', 'ema_st_tensor_file_offset', 'ema_st_tensor_byte_length', 'ema_st_metadata_count',
  'ema_st_metadata_key', 'ema_st_metadata_key_length', 'ema_st_metadata_value', 'ema_st_metadata_value_length',
];
/** What the module may import: its memory and the growth notice (loader.js gives both). */
const ALLOWED_IMPORTS = new Set(['env.memory', 'env.emscripten_notify_memory_growth']);

const ACCEPTED =
  'a compiled WebAssembly.Module, the bytes of ema-simd.wasm or ema-scalar.wasm (ArrayBuffer or typed array), ' +
  'a Response or a promise of one, or a URL';
const FIX =
  'The package ships both files (ema-wasm/ema-simd.wasm and ema-wasm/ema-scalar.wasm): serve one at that URL, ' +
  'or hand over its bytes or a compiled WebAssembly.Module.';

const compiledUrls = new Map();

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

function isWasmModule(value) {
  try {
    WebAssembly.Module.exports(value);
    return true;
  } catch {
    return false;
  }
}

function isResponse(value) {
  return typeof Response === 'function' && value instanceof Response;
}

function isBytes(value) {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value) ||
    (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer);
}

/**
 * The compiled module that `source` (options.wasm of `method`) stands for,
 * checked; rejects with an Error that names the source and what came.
 */
export async function moduleFromSource(source, method) {
  const where = `ema-wasm: ${method}: options.wasm`;
  if (source instanceof Promise) source = await source;
  if (isWasmModule(source)) return checkedModule(source, `${where} (a WebAssembly.Module)`);
  if (isBytes(source)) {
    const bytes = ArrayBuffer.isView(source)
      ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength).slice()
      : new Uint8Array(source).slice();
    return compileBytes(bytes, `${where} (${bytes.length} bytes given)`, null);
  }
  if (typeof source === 'string' || source instanceof URL) return compileUrl(source, where);
  // Last: the first touch of Response makes Node 18-20 load its fetch
  // implementation (~40 ms), which the kinds above never need.
  if (isResponse(source)) return compileResponse(source, `${where} (a Response${source.url ? ` from ${source.url}` : ''})`);
  throw new TypeError(`${where} must be ${ACCEPTED}; got ${describe(source)}`);
}

function compileUrl(source, where) {
  let url;
  try {
    url = new URL(source, globalThis.location?.href);
  } catch {
    throw new TypeError(
      `${where}: '${clip(String(source))}' is not an absolute URL, and there is no page location to resolve it ` +
        'against; give an absolute URL, or the bytes',
    );
  }
  let promise = compiledUrls.get(url.href);
  if (promise === undefined) {
    promise = fetchAndCompile(url, `${where} (${url.href})`);
    // A failed fetch is not cached: the server may answer next time.
    promise.catch(() => compiledUrls.delete(url.href));
    compiledUrls.set(url.href, promise);
  }
  return promise;
}

async function fetchAndCompile(url, where) {
  if (url.protocol === 'file:' && typeof process === 'object' && typeof process.versions?.node === 'string') {
    throw new Error(
      `${where}: fetch() cannot read file: URLs in Node; hand over the file's bytes instead ` +
        '(readFileSync(path)) or a compiled WebAssembly.Module',
    );
  }
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    // Node's fetch puts the reason (ECONNREFUSED, a DNS failure) in the cause.
    const reason = error.cause?.code ?? error.cause?.message;
    throw new Error(`${where}: fetching it failed (${error.message}${reason ? `: ${reason}` : ''}). ${FIX}`, { cause: error });
  }
  return compileResponse(response, where);
}

async function compileResponse(response, where) {
  const contentType = response.headers.get('content-type') ?? 'no content-type';
  if (!response.ok) {
    const body = await response.text().catch(() => '');
    throw new Error(
      `${where}: the server answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''} ` +
        `(${contentType}${body ? `: ${preview(new TextEncoder().encode(body))}` : ''}) instead of the .wasm file. ${FIX}`,
    );
  }
  if (response.bodyUsed) {
    throw new TypeError(
      `${where}: its body was already read; a Response can be used once (to make several EMAs from one ` +
        'download, compile it once and hand over the WebAssembly.Module)',
    );
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  return compileBytes(bytes, where, contentType);
}

/** The first bytes of something that is not Wasm, as text when they read as text, and as hex. */
function preview(bytes) {
  const head = bytes.subarray(0, 60);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(head).replace(/\s+/g, ' ').trim();
  const hex = Array.from(bytes.subarray(0, 4), (byte) => byte.toString(16).padStart(2, '0')).join(' ');
  const printable = text.length > 0 && !/[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text);
  return printable ? `"${text}${bytes.length > head.length ? '…' : ''}" (bytes ${hex})` : `bytes ${hex || '(none)'}`;
}

/** An HTML or XML page (a fallback page, an error page), by its first character. */
function looksLikeMarkup(bytes) {
  return new TextDecoder().decode(bytes.subarray(0, 200)).trimStart().startsWith('<');
}

async function compileBytes(bytes, where, contentType) {
  if (bytes.length < 4 || WASM_MAGIC.some((byte, i) => bytes[i] !== byte)) {
    const came = contentType === null ? '' : `came with content-type ${contentType} and `;
    const likely = looksLikeMarkup(bytes)
      ? ' That is a web page: most likely a server or dev server answered a path it has no file for with its ' +
        'index page (an SPA fallback), so the .wasm file is not at that URL.'
      : '';
    throw new Error(
      `${where} is not WebAssembly: it ${came}starts ${preview(bytes)}, where a .wasm file starts ` +
        `00 61 73 6d ("\\0asm").${likely} ${FIX}`,
    );
  }
  let module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (error) {
    const hint = policyHint(error);
    throw new Error(
      hint === null
        ? `${where} starts like WebAssembly but does not compile (${error.message}); the file may be truncated, ` +
          `or be the SIMD build in a runtime without WebAssembly SIMD (use ema-scalar.wasm there). ${FIX}`
        : `${where} could not be compiled (${error.message}). ${hint}`,
      { cause: error },
    );
  }
  return checkedModule(module, where);
}

function checkedModule(module, where) {
  const exported = new Set(WebAssembly.Module.exports(module).map((entry) => entry.name));
  const missing = REQUIRED_EXPORTS.filter((name) => !exported.has(name));
  const foreignImports = WebAssembly.Module.imports(module)
    .map((entry) => `${entry.module}.${entry.name}`)
    .filter((name) => !ALLOWED_IMPORTS.has(name));
  if (missing.length > 0 || foreignImports.length > 0) {
    const problems = [
      missing.length > 0 ? `it lacks the export${missing.length > 1 ? 's' : ''} ${listSome(missing)}` : null,
      foreignImports.length > 0 ? `it imports ${listSome(foreignImports)}` : null,
    ].filter(Boolean);
    throw new Error(
      `${where} is WebAssembly but not this version's ema-wasm module: ${problems.join(' and ')}. ` +
        'Use ema-simd.wasm or ema-scalar.wasm from the same ema-wasm version as this JavaScript.',
    );
  }
  return module;
}
