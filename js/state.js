// LitEma state in and out: state dicts (Maps of typed arrays) and safetensors
// files, both turned into one checked form before anything is applied:
//   { decay, numUpdates, shadows: [{ key, name, shape, data }] }
// where `key` is LitEma's buffer name (dots removed) and `name` the dotted
// parameter name when the source records it.

import { describe } from './params.js';
import { encodeSafetensors, parseSafetensors, tensorValues } from './safetensors.js';

export const DECAY_KEY = 'decay';
export const COUNTER_KEY = 'num_updates';
export const NAMES_METADATA_KEY = 'ema_wasm.names';
const RESERVED_METADATA_PREFIX = 'ema_wasm.';
const MAX_NUM_UPDATES = 0x7fffffff - 10; // EMA_MAX_NUM_UPDATES

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

/** A number, or the single element of a typed array of the expected kind. */
function scalarOf(value, ArrayType, key, method) {
  if (typeof value === 'number') return value;
  if (value instanceof ArrayType && value.length === 1) return value[0];
  throw new TypeError(
    `ema-wasm: ${method}: '${key}' must be a number or a ${ArrayType.name} of one element, got ${describe(value)}` +
      (ArrayBuffer.isView(value) ? ` of ${value.length}` : ''),
  );
}

/** Reads a state dict (Map or plain object) into the checked form. */
export function stateFromDict(state, method) {
  let entries;
  if (state instanceof Map) {
    entries = [...state];
  } else if (state !== null && typeof state === 'object' && !Array.isArray(state) && !ArrayBuffer.isView(state)) {
    entries = Object.entries(state);
  } else {
    throw new TypeError(`ema-wasm: ${method}: state must be a Map or an object of typed arrays, got ${describe(state)}`);
  }
  const result = { decay: undefined, numUpdates: undefined, shadows: [] };
  for (const [key, value] of entries) {
    if (typeof key !== 'string') {
      throw new TypeError(`ema-wasm: ${method}: state keys must be strings, got ${describe(key)}`);
    }
    if (key === DECAY_KEY) {
      result.decay = checkDecayValue(scalarOf(value, Float32Array, key, method), `${method}: '${key}'`);
    } else if (key === COUNTER_KEY) {
      result.numUpdates = checkCounterValue(scalarOf(value, Int32Array, key, method), `${method}: '${key}'`);
    } else {
      if (!(value instanceof Float32Array)) {
        throw new TypeError(`ema-wasm: ${method}: state '${key}' must be a Float32Array, got ${describe(value)}`);
      }
      result.shadows.push({ key, name: undefined, shape: [value.length], data: value });
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
      ? `; it has '${elsewhere.name}': pass prefix: '${elsewhere.name.slice(0, elsewhere.name.length - bare.length)}'`
      : '';
    throw new Error(`ema-wasm: ${method}: the file has no '${key}' tensor${hint}`);
  }
  if (tensor.dtype !== dtype || tensor.shape.length > 1 || tensor.byteLength !== 4) {
    throw new Error(
      `ema-wasm: ${method}: '${tensor.name}' must be a ${dtype} scalar, got ${tensor.dtype} of shape [${tensor.shape.join(', ')}]`,
    );
  }
}

/**
 * Reads a safetensors file into the checked form: `${prefix}decay`,
 * `${prefix}num_updates` and every other `${prefix}*` tensor as a shadow.
 * Tensors without the prefix (a checkpoint's model weights) are ignored.
 */
export async function stateFromFile(bytes, prefix, method) {
  if (typeof prefix !== 'string') {
    throw new TypeError(`ema-wasm: ${method}: options.prefix must be a string, got ${describe(prefix)}`);
  }
  const { tensors, metadata } = await parseSafetensors(bytes, method);
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
      throw new Error(`ema-wasm: ${method}: shadow '${tensor.name}' must be F32, got ${tensor.dtype}`);
    }
    const name = Object.hasOwn(names, key) && typeof names[key] === 'string' ? names[key] : undefined;
    shadows.push({ key, name, shape: tensor.shape, data: tensorValues(bytes, tensor, Float32Array) });
  }
  return {
    decay: checkDecayValue(tensorValues(bytes, decayTensor, Float32Array)[0], `${method}: '${decayTensor.name}'`),
    numUpdates: checkCounterValue(tensorValues(bytes, counterTensor, Int32Array)[0], `${method}: '${counterTensor.name}'`),
    shadows,
  };
}

/** False for strings holding a lone surrogate (encodeURIComponent throws exactly then). */
function isWellFormed(text) {
  try {
    encodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

function checkMetadata(metadata, method) {
  if (metadata === undefined) return {};
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new TypeError(`ema-wasm: ${method}: options.metadata must be an object of strings, got ${describe(metadata)}`);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new TypeError(`ema-wasm: ${method}: metadata '${key}' must be a string, got ${describe(value)}`);
    }
    if (key.startsWith(RESERVED_METADATA_PREFIX)) {
      throw new Error(`ema-wasm: ${method}: metadata keys starting with '${RESERVED_METADATA_PREFIX}' are reserved, got '${key}'`);
    }
  }
  return metadata;
}

/**
 * Encodes a state ({ decay, numUpdates, shadows: [{ key, name, shape, data }] })
 * as a safetensors file under `prefix`, recording the dotted names.
 */
export function stateToFile(state, { prefix = '', metadata } = {}, method = 'save') {
  if (typeof prefix !== 'string') {
    throw new TypeError(`ema-wasm: ${method}: options.prefix must be a string, got ${describe(prefix)}`);
  }
  const userMetadata = checkMetadata(metadata, method);
  // A lone surrogate cannot be written as UTF-8 and would come back changed.
  const texts = [
    ['options.prefix', prefix],
    ...state.shadows.map(({ name }) => [`parameter name '${name}'`, name]),
    ...Object.entries(userMetadata).flatMap(([key, value]) => [[`metadata key '${key}'`, key], [`metadata '${key}'`, value]]),
  ];
  for (const [what, text] of texts) {
    if (!isWellFormed(text)) {
      throw new Error(`ema-wasm: ${method}: ${what} is not well-formed Unicode (it holds a lone surrogate)`);
    }
  }
  for (const { key, name } of state.shadows) {
    if (`${prefix}${key}` === '__metadata__') {
      throw new Error(
        `ema-wasm: ${method}: parameter '${name}' would be saved as '__metadata__', which safetensors reserves; ` +
          'save with a prefix or rename the parameter',
      );
    }
  }
  const names = Object.fromEntries(state.shadows.map(({ key, name }) => [key, name]));
  const tensors = [
    { name: `${prefix}${DECAY_KEY}`, dtype: 'F32', shape: [], data: Float32Array.of(state.decay) },
    { name: `${prefix}${COUNTER_KEY}`, dtype: 'I32', shape: [], data: Int32Array.of(state.numUpdates) },
    ...state.shadows.map(({ key, shape, data }) => ({ name: `${prefix}${key}`, dtype: 'F32', shape, data })),
  ];
  return encodeSafetensors(tensors, {
    format: 'pt',
    ...userMetadata,
    [NAMES_METADATA_KEY]: JSON.stringify(names),
  });
}
