// safetensors files: the writer (plain JS: we trust what we write) and the
// reader, whose header parser is the C one (src/safetensors.c), because the
// bytes come from outside and every defect must be caught and named.

import { bytesOf } from './bytes.js';
import { parseSafetensorsHeader } from './boundary.js';
import { describe, formatBytes } from './describe.js';
import { loadModule } from './loader.js';
import { lengthOf, pinnedView, typedArrayKind, unusableReason, windowOf } from './typed-arrays.js';

const HEADER_LENGTH_BYTES = 8;
const MAX_HEADER_BYTES = 100_000_000; // EMA_ST_MAX_HEADER_BYTES

const utf8 = new TextEncoder();

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
  // A window on the caller's bytes: no user code runs before it is copied into Wasm memory.
  const { tensors, metadata } = parseSafetensorsHeader(module, windowOf(file, 0, headerEnd, Uint8Array), size, method);
  return { tensors, metadata, bytes: file };
}

/** A tensor's values as an owned, aligned typed array (a copy). */
export function tensorValues(file, tensor, ArrayType) {
  // Copying byte-wise also fixes alignment: offsets need not be multiples of 4.
  const bytes = new Uint8Array(tensor.byteLength);
  bytes.set(windowOf(file, tensor.offset, tensor.byteLength, Uint8Array));
  return new ArrayType(bytes.buffer);
}
