// The one seam between the caller's inputs and the arena: every public call
// reads its `params` (or state dict) here, exactly once, before it touches
// anything.
//
// Reading happens in two phases. The first reads each property the caller
// handed over exactly once (getters and Proxy traps run here, and only
// here) and keeps plain values. The second checks those values without
// running any user code: typed arrays are recognised and measured through
// their internal slots (typed-arrays.js), so nothing a getter does can make
// what was checked differ from what is used. The caller then acts on the
// checked entries, still without running user code.
//
// Accepted forms of `params`:
//   [{ name, data, shape?, trainable? }, ...]   (trainable defaults to true)
//   new Map([[name, Float32Array], ...])
//   { [name]: Float32Array }

import { describe, quoteList } from './describe.js';
import { lengthOf, pinnedView, typedArrayKind, unusableReason } from './typed-arrays.js';

/** Dimensions a shape may have: the safetensors loader reads at most 32 (EMA_ST_MAX_RANK). */
export const MAX_RANK = 32;

const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, 'size').get;
const mapForEach = Map.prototype.forEach;

function isMap(value) {
  try {
    mapSize.call(value);
    return true;
  } catch {
    return false;
  }
}

function isPlainObject(value) {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Phase one for a Map or a plain object: [{ name, value }] in the caller's
 * order, each value read once; null for anything else.
 */
export function readNamedValues(collection) {
  if (isMap(collection)) {
    const pairs = [];
    mapForEach.call(collection, (value, name) => pairs.push({ name, value }));
    return pairs;
  }
  if (isPlainObject(collection)) {
    return Object.keys(collection).map((name) => ({ name, value: collection[name] }));
  }
  return null;
}

/** A copy of a shape's elements (read once), or the value itself if it is no array. */
function readShape(shape, method, where) {
  if (!Array.isArray(shape)) return shape;
  const rank = shape.length;
  if (!(rank <= MAX_RANK)) {
    throw new RangeError(
      `ema-wasm: ${method}: ${where}.shape has ${rank} dimensions; at most ${MAX_RANK} (the safetensors limit)`,
    );
  }
  const copy = [];
  for (let d = 0; d < rank; d++) copy.push(shape[d]);
  return copy;
}

/** Phase one: every entry's properties, read once, as plain records. */
function readEntries(params, method) {
  if (Array.isArray(params)) {
    const count = params.length;
    const raw = [];
    for (let index = 0; index < count; index++) {
      const item = params[index];
      if (item === null || typeof item !== 'object') {
        throw new TypeError(
          `ema-wasm: ${method}: params[${index}] must be an object { name, data }, got ${describe(item)}`,
        );
      }
      const where = `params[${index}]`;
      const name = item.name;
      const data = item.data;
      const shape = readShape(item.shape, method, typeof name === 'string' ? `parameter '${name}'` : where);
      const trainable = item.trainable;
      raw.push({ name, data, shape, trainable, where });
    }
    return raw;
  }
  const pairs = readNamedValues(params);
  if (pairs === null) {
    throw new TypeError(
      `ema-wasm: ${method}: params must be an array of { name, data }, a Map of name to ` +
        `Float32Array, or an object of Float32Arrays; got ${describe(params)}`,
    );
  }
  const where = isMap(params) ? 'a Map key' : 'an object key';
  return pairs.map(({ name, value }) => ({ name, data: value, shape: undefined, trainable: undefined, where }));
}

function checkShape(shape, length, method, name) {
  const where = `${method}: parameter '${name}'`;
  if (!Array.isArray(shape)) {
    throw new TypeError(`ema-wasm: ${where}.shape must be an array of integers, got ${describe(shape)}`);
  }
  let product = 1;
  for (const dimension of shape) {
    if (!Number.isSafeInteger(dimension) || dimension < 0) {
      throw new RangeError(`ema-wasm: ${where}.shape must hold non-negative integers, got [${shape.map(String).join(', ')}]`);
    }
    product *= dimension;
  }
  if (product !== length) {
    throw new Error(`ema-wasm: ${where}.shape [${shape.join(', ')}] holds ${product} elements but its data has ${length}`);
  }
  return shape;
}

/** Phase two: checks one record; runs no user code unless it throws. */
function checkEntry({ name, data, shape, trainable, where }, method) {
  if (typeof name !== 'string') {
    throw new TypeError(`ema-wasm: ${method}: ${where}.name must be a string, got ${describe(name)}`);
  }
  if (name.length === 0) {
    throw new Error(`ema-wasm: ${method}: ${where}.name is empty; every parameter needs a name`);
  }
  if (typedArrayKind(data) !== 'Float32Array') {
    throw new TypeError(`ema-wasm: ${method}: parameter '${name}' must be a Float32Array, got ${describe(data)}`);
  }
  if (trainable !== undefined && typeof trainable !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: parameter '${name}'.trainable must be a boolean, got ${describe(trainable)}`);
  }
  const length = lengthOf(data);
  const unusable = unusableReason(data, length);
  return {
    name,
    data: unusable === null ? pinnedView(data, length, Float32Array) : data,
    length,
    shape: shape === undefined || unusable !== null ? [length] : checkShape(shape, length, method, name),
    trainable: trainable ?? true,
    unusable,
  };
}

/**
 * Reads `params` once and checks it. Returns [{ name, data, length, shape,
 * trainable, unusable }] in the caller's order, where `data` is a
 * Float32Array of exactly `length` elements that stays so for as long as no
 * user code runs, and `unusable` says why an array cannot be read or written
 * (a detached buffer), or is null. Throws TypeError for wrong types,
 * RangeError for values out of range, Error for duplicate names.
 */
export function resolveParams(params, method) {
  const entries = readEntries(params, method).map((record) => checkEntry(record, method));
  const seen = new Set();
  const duplicates = new Set();
  for (const { name } of entries) {
    if (seen.has(name)) duplicates.add(name);
    seen.add(name);
  }
  if (duplicates.size > 0) {
    throw new Error(`ema-wasm: ${method}: duplicate parameter names: ${quoteList(duplicates)}`);
  }
  return entries;
}

/** Throws unless every entry can be read and written (see resolveParams). */
export function refuseUnusable(entries, method) {
  const unusable = entries.filter((entry) => entry.unusable !== null);
  if (unusable.length > 0) {
    const [{ name, unusable: why }] = unusable;
    const others = unusable.length > 1 ? ` (and ${quoteList(unusable.slice(1).map((e) => e.name))})` : '';
    throw new Error(`ema-wasm: ${method}: parameter '${name}' cannot be used: ${why}${others}`);
  }
}

/**
 * Reads an options object once: a plain record of its own keys, which must
 * all be in `allowed`.
 */
export function readOptions(options, allowed, method) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`ema-wasm: ${method}: options must be an object, got ${describe(options)}`);
  }
  const values = Object.create(null);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`ema-wasm: ${method}: unknown option '${key}'; expected ${allowed.join(', ')}`);
    }
    values[key] = options[key];
  }
  if (values.strict !== undefined && typeof values.strict !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: options.strict must be a boolean, got ${describe(values.strict)}`);
  }
  return values;
}
