// safetensors files: the writer (plain JS: we trust what we write) and the
// reader, whose header parser is the C one (src/safetensors.c), because the
// bytes come from outside and every defect must be caught and named.

import { bytesOf } from './bytes.js';
import { WasmCore } from './core.js';
import { chooseBuild, compileBuild, instantiate } from './loader.js';
import { describe } from './params.js';

const HEADER_LENGTH_BYTES = 8;
const MAX_HEADER_BYTES = 100_000_000; // EMA_ST_MAX_HEADER_BYTES
const DTYPE_NAMES = [null, 'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16',
  'I32', 'U32', 'F32', 'F64', 'I64', 'U64'];

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Encodes tensors [{ name, dtype: 'F32' | 'I32', shape, data }] (in order)
 * and string metadata into one safetensors file.
 */
export function encodeSafetensors(tensors, metadata) {
  // No prototype: a tensor named '__proto__' must be a key like any other.
  const header = Object.create(null);
  if (metadata !== undefined && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const { name, dtype, shape, data } of tensors) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = utf8.encode(JSON.stringify(header));
  // Like the reference writer, pad the header with spaces so the data starts
  // on an 8-byte boundary (readers can then map tensors without copying).
  const padded = Math.ceil(json.length / 8) * 8;
  const file = new Uint8Array(HEADER_LENGTH_BYTES + padded + offset);
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

function readCString(core, pointer, length) {
  return utf8Decoder.decode(new Uint8Array(core.memory.buffer, pointer, length).slice());
}

/**
 * A fresh instance of the core, sized for a header of `headerBytes`, for one
 * parse: its memory never grows (no ArrayBuffer detach, see loader.js) and is
 * dropped with it. Compiling is cached, so this costs little.
 */
async function parserCore(headerBytes) {
  // The header, the decoded names (no longer than the header) and the tensor
  // table: ~300 bytes per entry, and an entry takes at least ~45 header
  // bytes, doubled for the table's growth. Untouched pages cost nothing.
  return new WasmCore(instantiate(await compileBuild(chooseBuild('auto')), 16 * headerBytes + 65536));
}

/**
 * Parses a safetensors file with the C parser. Returns
 * { tensors: [{ name, dtype, shape, offset, byteLength }], metadata: Map }
 * or throws an Error that names the defect and the byte where it was found.
 */
export async function parseSafetensors(bytes, method) {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`ema-wasm: ${method}: bytes must be a Uint8Array, got ${describe(bytes)}`);
  }
  // Only the header goes into Wasm memory. The C side checks the claimed
  // length itself; this only decides how many bytes to hand it, and hands
  // just the length field when the claim is impossible.
  let headerEnd = Math.min(bytes.length, HEADER_LENGTH_BYTES);
  if (bytes.length >= HEADER_LENGTH_BYTES) {
    const claimed = new DataView(bytes.buffer, bytes.byteOffset, HEADER_LENGTH_BYTES).getBigUint64(0, true);
    if (claimed <= BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - HEADER_LENGTH_BYTES))) {
      headerEnd = HEADER_LENGTH_BYTES + Number(claimed);
    }
  }
  const core = await parserCore(headerEnd);
  const exports = core.exports;
  const input = core.malloc(headerEnd + 24);
  const out = input + ((headerEnd + 7) & ~7); // file pointer, then the u64 error offset
  try {
    new Uint8Array(core.memory.buffer).set(bytes.subarray(0, headerEnd), input);
    const status = exports.ema_st_parse(input, headerEnd, BigInt(bytes.length), out, out + 8);
    if (status !== 0) {
      const where = new DataView(core.memory.buffer).getBigUint64(out + 8, true);
      throw new Error(
        `ema-wasm: ${method}: not a valid safetensors file: ${core.statusString(status)} ` +
          `(at byte ${where}, status ${status})`,
      );
    }
    const file = core.heapU32[out >>> 2];
    try {
      const tensors = [];
      const count = exports.ema_st_tensor_count(file);
      for (let i = 0; i < count; i++) {
        const rank = exports.ema_st_tensor_rank(file, i);
        const shape = [];
        for (let d = 0; d < rank; d++) shape.push(Number(exports.ema_st_tensor_dim(file, i, d)));
        tensors.push({
          name: readCString(core, exports.ema_st_tensor_name(file, i), exports.ema_st_tensor_name_length(file, i)),
          dtype: DTYPE_NAMES[exports.ema_st_tensor_dtype(file, i)],
          shape,
          offset: Number(exports.ema_st_tensor_file_offset(file, i)),
          byteLength: Number(exports.ema_st_tensor_byte_length(file, i)),
        });
      }
      const metadata = new Map();
      const entries = exports.ema_st_metadata_count(file);
      for (let i = 0; i < entries; i++) {
        metadata.set(
          readCString(core, exports.ema_st_metadata_key(file, i), exports.ema_st_metadata_key_length(file, i)),
          readCString(core, exports.ema_st_metadata_value(file, i), exports.ema_st_metadata_value_length(file, i)),
        );
      }
      return { tensors, metadata };
    } finally {
      exports.ema_st_free(file);
    }
  } finally {
    core.free(input);
  }
}

/** A tensor's values as an owned, aligned typed array. */
export function tensorValues(bytes, tensor, ArrayType) {
  const start = bytes.byteOffset + tensor.offset;
  // slice() copies, which also fixes alignment: offsets need not be multiples of 4.
  return new ArrayType(bytes.buffer.slice(start, start + tensor.byteLength));
}
