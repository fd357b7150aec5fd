// LitEma state in and out: state dicts (Maps of typed arrays) and safetensors
// files, both turned into one checked form before anything is applied:
//   { decay, numUpdates, shadows: [{ key, name, shape, data }] }
// where `key` is LitEma's buffer name (dots removed) and `name` the dotted
// parameter name when the source records it.

import { clip, describe } from './describe.js';
import { checkSavableText } from './names.js';
import { loadModule } from './loader.js';
import { readNamedValues, readOptions } from './resolve.js';
import { encodeSafetensors, parseSafetensors, resolveFileBytes, tensorValues } from './safetensors.js';
import { adoptWasmSource } from './wasm-source.js';
import { lengthOf, pinnedView, typedArrayKind, unusableReason } from './typed-arrays.js';

export const DECAY_KEY = 'decay';
export const COUNTER_KEY = 'num_updates';
export const NAMES_METADATA_KEY = 'ema_wasm.names';
const RESERVED_METADATA_PREFIX = 'ema_wasm.';
export const MAX_NUM_UPDATES = 0x7fffffff - 10; // EMA_MAX_NUM_UPDATES

function checkDecayValue(decay, where) {
  if (!(decay >= 0 && decay <= 1)) {
    throw new RangeError(`ema-wasm: ${where}: decay must be in [0, 1], got ${decay}`);
  }
  return Math.fround(decay);
}

function checkCounterValue(numUpdates, where) {
  if (!Number.isInteger(numUpdates) || numUpdates < -1 || numUpdates > MAX_NUM_UPDATES) {
    throw new RangeError(`ema-wasm: ${where}: num_updates must be an integer from -1 to ${MAX_NUM_UPDATES}, got ${numUpdates}`);
  }
  return numUpdates;
}

const U64_MAX = 2n ** 64n - 1n;

/**
 * Throws unless a shadow of this shape can be saved and loaded back: the
 * loader computes its byte size (4 x each dimension in turn) in 64 bits and
 * refuses a file where that overflows, even when a later dimension is 0.
 * Ranks above 32 are refused when params are read (resolve.js).
 */
export function checkSavableShape(shape, name, method) {
  let bytes = 4n;
  for (const dimension of shape) {
    bytes *= BigInt(dimension);
    if (bytes > U64_MAX) {
      throw new RangeError(
        `ema-wasm: ${method}: parameter '${clip(name)}'.shape [${shape.join(', ')}] cannot be saved: its byte size, ` +
          'multiplied out in order, passes 2^64 (a safetensors loader refuses it)',
      );
    }
  }
}

/** A number, or the single element of a typed array of the expected kind. */
function scalarOf(value, kind, key, method) {
  if (typeof value === 'number') return value;
  if (typedArrayKind(value) === kind && lengthOf(value) === 1) return value[0];
  throw new TypeError(`ema-wasm: ${method}: '${clip(key)}' must be a number or a ${kind} of one element, got ${describe(value)}`);
}

/**
 * Reads a state dict (Map or plain object) into the checked form, each value
 * read once and every shadow pinned to the length it had (see resolve.js).
 */
export function stateFromDict(state, method) {
  const pairs = ArrayBuffer.isView(state) ? null : readNamedValues(state, method, 'state');
  if (pairs === null) {
    throw new TypeError(`ema-wasm: ${method}: state must be a Map or an object of typed arrays, got ${describe(state)}`);
  }
  const result = { decay: undefined, numUpdates: undefined, shadows: [] };
  for (const { name: key, value } of pairs) {
    if (typeof key !== 'string') {
      throw new TypeError(`ema-wasm: ${method}: state keys must be strings, got ${describe(key)}`);
    }
    if (key === DECAY_KEY) {
      result.decay = checkDecayValue(scalarOf(value, 'Float32Array', key, method), `${method}: '${clip(key)}'`);
    } else if (key === COUNTER_KEY) {
      result.numUpdates = checkCounterValue(scalarOf(value, 'Int32Array', key, method), `${method}: '${clip(key)}'`);
    } else {
      if (typedArrayKind(value) !== 'Float32Array') {
        throw new TypeError(`ema-wasm: ${method}: state '${clip(key)}' must be a Float32Array, got ${describe(value)}`);
      }
      const length = lengthOf(value);
      const unusable = unusableReason(value, length);
      if (unusable !== null) {
        throw new Error(`ema-wasm: ${method}: state '${clip(key)}' cannot be read: ${unusable}`);
      }
      result.shadows.push({ key, name: undefined, shape: [length], data: pinnedView(value, length, Float32Array), length });
    }
  }
  return result;
}

function requireScalar(tensor, dtype, key, method, allTensors) {
  if (tensor === undefined) {
    // Stable Diffusion checkpoints keep the EMA under 'model_ema.': say so.
    const bare = key.slice(key.lastIndexOf('.') + 1);
    const elsewhere = allTensors.find((t) => t.name.endsWith(`.${bare}`) || t.name === bare);
    const hint = elsewhere
      ? `; it has '${clip(elsewhere.name)}': pass prefix: '${elsewhere.name.slice(0, elsewhere.name.length - bare.length)}'`
      : '';
    throw new Error(`ema-wasm: ${method}: the file has no '${clip(key)}' tensor${hint}`);
  }
  if (tensor.dtype !== dtype || tensor.shape.length > 1 || tensor.byteLength !== 4) {
    throw new Error(
      `ema-wasm: ${method}: '${clip(tensor.name)}' must be a ${dtype} scalar, got ${tensor.dtype} of shape [${tensor.shape.join(', ')}]`,
    );
  }
}

/** A TypeError unless `bytes` is a readable Uint8Array and `prefix` a string. */
export function checkFileArguments(bytes, prefix, method) {
  if (typeof prefix !== 'string') {
    throw new TypeError(`ema-wasm: ${method}: options.prefix must be a string, got ${describe(prefix)}`);
  }
  resolveFileBytes(bytes, method);
}

/**
 * Reads a safetensors file into the checked form: `${prefix}decay`,
 * `${prefix}num_updates` and every other `${prefix}*` tensor as a shadow.
 * Tensors without the prefix (a checkpoint's model weights) are ignored.
 */
export async function stateFromFile(bytes, prefix, method, module) {
  checkFileArguments(bytes, prefix, method);
  const { tensors, metadata, bytes: fileBytes } = await parseSafetensors(bytes, method, module);
  const mine = tensors.filter((tensor) => tensor.name.startsWith(prefix));
  const byKey = new Map(mine.map((tensor) => [tensor.name.slice(prefix.length), tensor]));

  const decayTensor = byKey.get(DECAY_KEY);
  const counterTensor = byKey.get(COUNTER_KEY);
  requireScalar(decayTensor, 'F32', `${prefix}${DECAY_KEY}`, method, tensors);
  requireScalar(counterTensor, 'I32', `${prefix}${COUNTER_KEY}`, method, tensors);

  let names = {};
  if (metadata.has(NAMES_METADATA_KEY)) {
    try {
      names = JSON.parse(metadata.get(NAMES_METADATA_KEY));
    } catch {
      names = undefined;
    }
    if (names === null || typeof names !== 'object' || Array.isArray(names)) {
      throw new Error(`ema-wasm: ${method}: metadata '${NAMES_METADATA_KEY}' must be a JSON object of names`);
    }
  }
  const shadows = [];
  for (const [key, tensor] of byKey) {
    if (key === DECAY_KEY || key === COUNTER_KEY) continue;
    if (tensor.dtype !== 'F32') {
      throw new Error(`ema-wasm: ${method}: shadow '${clip(tensor.name)}' must be F32, got ${tensor.dtype}`);
    }
    if (!tensor.exactShape) {
      throw new RangeError(
        `ema-wasm: ${method}: shadow '${clip(tensor.name)}' has a dimension past 2^53 - 1, which a JavaScript number cannot hold exactly`,
      );
    }
    const name = Object.hasOwn(names, key) && typeof names[key] === 'string' ? names[key] : undefined;
    const data = tensorValues(fileBytes, tensor, Float32Array);
    shadows.push({ key, name, shape: tensor.shape, data, length: data.length });
  }
  return {
    decay: checkDecayValue(tensorValues(fileBytes, decayTensor, Float32Array)[0], `${method}: '${clip(decayTensor.name)}'`),
    numUpdates: checkCounterValue(tensorValues(fileBytes, counterTensor, Int32Array)[0], `${method}: '${clip(counterTensor.name)}'`),
    shadows,
  };
}

/**
 * The caller's metadata, read once: [key, value] pairs of strings, in the
 * caller's order, that can be written and read back unchanged.
 */
function readUserMetadata(metadata, method) {
  if (metadata === undefined) return [];
  const pairs = readNamedValues(metadata, method, 'options.metadata');
  if (pairs === null || typedArrayKind(metadata) !== undefined) {
    throw new TypeError(`ema-wasm: ${method}: options.metadata must be an object of strings, got ${describe(metadata)}`);
  }
  const record = [];
  for (const { name: key, value } of pairs) {
    if (typeof key !== 'string') {
      throw new TypeError(`ema-wasm: ${method}: metadata keys must be strings, got ${describe(key)}`);
    }
    if (typeof value !== 'string') {
      throw new TypeError(`ema-wasm: ${method}: metadata '${clip(key)}' must be a string, got ${describe(value)}`);
    }
    if (key.startsWith(RESERVED_METADATA_PREFIX)) {
      throw new Error(`ema-wasm: ${method}: metadata keys starting with '${RESERVED_METADATA_PREFIX}' are reserved, got '${clip(key)}'`);
    }
    // Metadata keys and values may hold U+0000: the loader reads them by length.
    checkSavableText(key, `metadata key '${clip(key)}'`, method, { allowNul: true });
    checkSavableText(value, `metadata '${clip(key)}'`, method, { allowNul: true });
    record.push([key, value]);
  }
  return record;
}

/**
 * save()'s options, read once and checked: { prefix, metadata } where
 * metadata is the caller's entries as [key, value] pairs.
 */
export function readFileOptions({ prefix = '', metadata }, method) {
  if (typeof prefix !== 'string') {
    throw new TypeError(`ema-wasm: ${method}: options.prefix must be a string, got ${describe(prefix)}`);
  }
  checkSavableText(prefix, 'options.prefix', method);
  return { prefix, metadata: readUserMetadata(metadata, method) };
}

/**
 * Encodes a state ({ decay, numUpdates, shadows: [{ key, name, shape, data }] })
 * as a safetensors file under `prefix`, recording the dotted names. Takes
 * options from readFileOptions; runs no user code.
 */
export function stateToFile(state, { prefix, metadata }, method) {
  for (const { key, name } of state.shadows) {
    if (`${prefix}${key}` === '__metadata__') {
      throw new Error(
        `ema-wasm: ${method}: parameter '${clip(name)}' would be saved as '__metadata__', which safetensors reserves; ` +
          'save with a prefix or rename the parameter',
      );
    }
  }
  const namesJson = `{${state.shadows.map(({ key, name }) => `${JSON.stringify(key)}:${JSON.stringify(name)}`).join(',')}}`;
  const tensors = [
    { name: `${prefix}${DECAY_KEY}`, dtype: 'F32', shape: [], data: Float32Array.of(state.decay) },
    { name: `${prefix}${COUNTER_KEY}`, dtype: 'I32', shape: [], data: Int32Array.of(state.numUpdates) },
    ...state.shadows.map(({ key, shape, data }) => ({ name: `${prefix}${key}`, dtype: 'F32', shape, data })),
  ];
  // `format: pt` first, as PyTorch's writer puts it, unless the caller gave another.
  const format = metadata.find(([key]) => key === 'format') ?? ['format', 'pt'];
  const entries = [format, ...metadata.filter(([key]) => key !== 'format'), [NAMES_METADATA_KEY, namesJson]];
  return encodeSafetensors(tensors, entries, method);
}

/**
 * The `__metadata__` entries of a safetensors file, as an object of strings
 * in file order: what save() wrote (`format`, `ema_wasm.names` and your own
 * `metadata`), or what another writer put there. The file is checked as
 * loadEma checks it. options.wasm hands over the module that parses it
 * (see createEma).
 */
export async function readMetadata(bytes, options = {}) {
  const wasm = adoptWasmSource(readOptions(options, ['wasm'], 'readMetadata').wasm);
  resolveFileBytes(bytes, 'readMetadata'); // before any module is fetched
  const module = wasm === undefined ? undefined : (await loadModule('auto', wasm, 'readMetadata')).module;
  const { metadata } = await parseSafetensors(bytes, 'readMetadata', module);
  const record = Object.create(null);
  for (const [key, value] of metadata) record[key] = value;
  return record;
}
