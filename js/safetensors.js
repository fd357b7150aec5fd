// safetensors files: the writer (plain JS: we trust what we write) and the
// reader, whose header parser is the C one (src/safetensors.c), because the
// bytes come from outside and every defect must be caught and named.

import { bytesOf } from './bytes.js';
import { WasmCore } from './core.js';
import { describe, formatBytes } from './describe.js';
import { instantiate, loadModule } from './loader.js';
import { lengthOf, pinnedView, typedArrayKind, unusableReason, windowOf } from './typed-arrays.js';

const HEADER_LENGTH_BYTES = 8;
const MAX_HEADER_BYTES = 100_000_000; // EMA_ST_MAX_HEADER_BYTES
const DTYPE_NAMES = [null, 'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16',
  'I32', 'U32', 'F32', 'F64', 'I64', 'U64'];

const utf8 = new TextEncoder();
// ignoreBOM: a name that starts with U+FEFF must come back with it.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A JSON object of [key, string] pairs, in their order. */
function jsonObject(pairs) {
  return `{${pairs.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(',')}}`;
}

/**
 * Encodes tensors [{ name, dtype: 'F32' | 'I32', shape, data }] (in order)
 * and metadata ([key, string] pairs, in order) into one safetensors file. Refuses, with a
 * RangeError, a header larger than loaders read (100 MB).
 */
export function encodeSafetensors(tensors, metadata, method = 'save') {
  // The header is written member by member, not through a JS object, whose
  // keys would come out with integer-like names ('2', '10') first: the tensor
  // order, and with it the order of the EMA's names on load, must survive.
  const members = [];
  if (metadata !== undefined && metadata.length > 0) members.push(`"__metadata__":${jsonObject(metadata)}`);
  let offset = 0;
  for (const { name, dtype, shape, data } of tensors) {
    const entry = { dtype, shape, data_offsets: [offset, offset + data.byteLength] };
    members.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    offset += data.byteLength;
  }
  const json = utf8.encode(`{${members.join(',')}}`);
  // Like the reference writer, pad the header with spaces so the data starts
  // on an 8-byte boundary (readers can then map tensors without copying).
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new RangeError(
      `ema-wasm: ${method}: the safetensors header would be ${formatBytes(padded)}, more than the ` +
        `${MAX_HEADER_BYTES.toLocaleString('en-US')} bytes loaders read (names and metadata are too long)`,
    );
  }
  const file = allocateFile(HEADER_LENGTH_BYTES + padded + offset, method);
  new DataView(file.buffer).setBigUint64(0, BigInt(padded), true);
  file.set(json, HEADER_LENGTH_BYTES);
  file.fill(0x20, HEADER_LENGTH_BYTES + json.length, HEADER_LENGTH_BYTES + padded);
  let position = HEADER_LENGTH_BYTES + padded;
  for (const { data } of tensors) {
    file.set(bytesOf(data), position);
    position += data.byteLength;
  }
  return file;
}

function allocateFile(byteLength, method) {
  try {
    return new Uint8Array(byteLength);
  } catch (error) {
    throw new RangeError(
      `ema-wasm: ${method}: the file would be ${formatBytes(byteLength)}, which this JavaScript engine cannot ` +
        `allocate as one Uint8Array (${error.message})`,
    );
  }
}

function readCString(core, pointer, length) {
  // decode() copies; the view is never kept.
  return utf8Decoder.decode(new Uint8Array(core.memory.buffer, pointer, length));
}

/**
 * A fresh instance of the core, sized for a header of `headerBytes`, for one
 * parse: its memory never grows (no ArrayBuffer detach, see loader.js) and is
 * dropped with it. Compiling is cached, so this costs little.
 */
function parserCore(module, headerBytes) {
  // The header, the decoded names (no longer than the header) and the tensor
  // table: ~300 bytes per entry, and an entry takes at least ~45 header
  // bytes, doubled for the table's growth. Untouched pages cost nothing.
  return new WasmCore(instantiate(module, 16 * headerBytes + 65536));
}

/** The caller's file as a pinned Uint8Array (see resolve.js), or a TypeError. */
export function resolveFileBytes(bytes, method) {
  if (typedArrayKind(bytes) !== 'Uint8Array') {
    throw new TypeError(`ema-wasm: ${method}: bytes must be a Uint8Array, got ${describe(bytes)}`);
  }
  const length = lengthOf(bytes);
  const unusable = unusableReason(bytes, length);
  if (unusable !== null) throw new Error(`ema-wasm: ${method}: bytes cannot be read: ${unusable}`);
  return pinnedView(bytes, length, Uint8Array);
}

/**
 * Parses a safetensors file with the C parser. Returns
 * { tensors: [{ name, dtype, shape, exactShape, offset, byteLength }], metadata: Map,
 *   bytes } where `bytes` is the file pinned to the length that was parsed,
 * or throws an Error that names the defect and the byte where it was found.
 * The only await comes first: the file is read, parsed and (by the caller,
 * synchronously) copied out with no user code in between.
 */
export async function parseSafetensors(bytes, method, module) {
  module ??= (await loadModule('auto', undefined, method)).module;
  const file = resolveFileBytes(bytes, method);
  const size = lengthOf(file);
  // Only the header goes into Wasm memory. The C side checks the claimed
  // length itself; this only decides how many bytes to hand it, and hands
  // just the length field when the claim is impossible.
  let headerEnd = Math.min(size, HEADER_LENGTH_BYTES);
  if (size >= HEADER_LENGTH_BYTES) {
    const lengthField = new Uint8Array(HEADER_LENGTH_BYTES);
    lengthField.set(windowOf(file, 0, HEADER_LENGTH_BYTES, Uint8Array));
    const claimed = new DataView(lengthField.buffer).getBigUint64(0, true);
    if (claimed <= BigInt(Math.min(MAX_HEADER_BYTES, size - HEADER_LENGTH_BYTES))) {
      headerEnd = HEADER_LENGTH_BYTES + Number(claimed);
    }
  }
  const core = parserCore(module, headerEnd);
  const exports = core.exports;
  const input = core.malloc(headerEnd + 24, method);
  const out = input + ((headerEnd + 7) & ~7); // file pointer, then the u64 error offset
  try {
    new Uint8Array(core.memory.buffer).set(windowOf(file, 0, headerEnd, Uint8Array), input);
    const status = exports.ema_st_parse(input, headerEnd, BigInt(size), out, out + 8);
    if (status !== 0) {
      const where = new DataView(core.memory.buffer).getBigUint64(out + 8, true);
      throw new Error(
        `ema-wasm: ${method}: not a valid safetensors file: ${core.statusString(status)} ` +
          `(at byte ${where}, status ${status})`,
      );
    }
    const parsed = core.heapU32[out >>> 2];
    try {
      const tensors = [];
      const count = exports.ema_st_tensor_count(parsed);
      for (let i = 0; i < count; i++) {
        const rank = exports.ema_st_tensor_rank(parsed, i);
        const shape = [];
        let exactShape = true; // false when a dimension is past 2^53 - 1, which numbers cannot hold
        for (let d = 0; d < rank; d++) {
          const dimension = exports.ema_st_tensor_dim(parsed, i, d);
          exactShape &&= dimension <= BigInt(Number.MAX_SAFE_INTEGER);
          shape.push(Number(dimension));
        }
        tensors.push({
          name: readCString(core, exports.ema_st_tensor_name(parsed, i), exports.ema_st_tensor_name_length(parsed, i)),
          dtype: DTYPE_NAMES[exports.ema_st_tensor_dtype(parsed, i)],
          shape,
          exactShape,
          offset: Number(exports.ema_st_tensor_file_offset(parsed, i)),
          byteLength: Number(exports.ema_st_tensor_byte_length(parsed, i)),
        });
      }
      const metadata = new Map();
      const entries = exports.ema_st_metadata_count(parsed);
      for (let i = 0; i < entries; i++) {
        metadata.set(
          readCString(core, exports.ema_st_metadata_key(parsed, i), exports.ema_st_metadata_key_length(parsed, i)),
          readCString(core, exports.ema_st_metadata_value(parsed, i), exports.ema_st_metadata_value_length(parsed, i)),
        );
      }
      return { tensors, metadata, bytes: file };
    } finally {
      exports.ema_st_free(parsed);
    }
  } finally {
    core.free(input);
  }
}

/** A tensor's values as an owned, aligned typed array (a copy). */
export function tensorValues(file, tensor, ArrayType) {
  // Copying byte-wise also fixes alignment: offsets need not be multiples of 4.
  const bytes = new Uint8Array(tensor.byteLength);
  bytes.set(windowOf(file, tensor.offset, tensor.byteLength, Uint8Array));
  return new ArrayType(bytes.buffer);
}
