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
//   [{ name, data, shape?, trainable?, buffer? }, ...]
//       trainable defaults to true, buffer (a model buffer such as BatchNorm's
//       statistics, not a parameter) to false; a buffer's data may also be an
//       Int32Array or a BigInt64Array
//   new Map([[name, Float32Array], ...])
//   { [name]: Float32Array }

import { clip, describe, quoteList } from './describe.js';
import { DTYPE_OF_KIND, lengthOf, pinnedView, typedArrayKind, unusableReason, wordsFor, wordsView } from './typed-arrays.js';

/** Dimensions a shape may have: the safetensors loader reads at most 32 (EMA_ST_MAX_RANK). */
export const MAX_RANK = 32;
/** Entries one call reads at most: an EMA tracks and stores at most this many (EMA_MAX_SLOTS). */
export const MAX_ENTRIES = 1048576;

const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, 'size').get;
const mapForEach = Map.prototype.forEach;

function isMap(value) {
  // The tag is only a cheap filter (so that plain objects cost no exception);
  // the size getter, which throws for anything but a real Map, decides.
  if (Object.prototype.toString.call(value) !== '[object Map]') return false;
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
 * What kind of collection `value` is: 'array', 'map', 'object' (plain, or
 * with a null prototype) or 'other'. Inspecting a revoked Proxy throws in the
 * engine; that becomes a TypeError that says so.
 */
function collectionKind(value, method, what) {
  try {
    if (Array.isArray(value)) return 'array';
    if (isMap(value)) return 'map';
    return isPlainObject(value) ? 'object' : 'other';
  } catch (error) {
    throw new TypeError(`ema-wasm: ${method}: ${what} cannot be inspected (a revoked Proxy?): ${error?.message}`, {
      cause: error,
    });
  }
}

function refuseTooMany(count, method, what) {
  if (!(count <= MAX_ENTRIES)) {
    throw new RangeError(
      `ema-wasm: ${method}: ${what} has ${Number(count).toLocaleString('en-US')} entries; ` +
        `at most ${MAX_ENTRIES.toLocaleString('en-US')} (EMA_MAX_SLOTS)`,
    );
  }
}

/**
 * Phase one for a Map or a plain object: [{ name, value }] in the caller's
 * order (own enumerable string keys of an object), each value read once;
 * null for anything else. At most MAX_ENTRIES, checked before reading.
 */
export function readNamedValues(collection, method, what, kind = collectionKind(collection, method, what)) {
  if (kind === 'map') {
    refuseTooMany(mapSize.call(collection), method, what);
    const pairs = [];
    mapForEach.call(collection, (value, name) => pairs.push({ name, value }));
    return pairs;
  }
  if (kind === 'object') {
    const keys = Object.keys(collection);
    refuseTooMany(keys.length, method, what);
    return keys.map((name) => ({ name, value: collection[name] }));
  }
  return null;
}

/** Where an array entry's shape came from, for messages. */
function shapeOwner(name, index) {
  return typeof name === 'string' ? `parameter '${clip(name)}'` : `params[${index}]`;
}

/** A shape, read once: a fresh array of non-negative safe integers. */
function readShape(shape, method, name, index) {
  if (!Array.isArray(shape)) {
    throw new TypeError(
      `ema-wasm: ${method}: ${shapeOwner(name, index)}.shape must be an array of integers, got ${describe(shape)}`,
    );
  }
  const rank = shape.length;
  if (!(rank <= MAX_RANK)) {
    throw new RangeError(
      `ema-wasm: ${method}: ${shapeOwner(name, index)}.shape has ${rank} dimensions; at most ${MAX_RANK} (the safetensors limit)`,
    );
  }
  const dimensions = new Array(rank);
  for (let d = 0; d < rank; d++) {
    const dimension = shape[d];
    dimensions[d] = dimension;
    if (!Number.isSafeInteger(dimension) || dimension < 0) {
      throw new RangeError(
        `ema-wasm: ${method}: ${shapeOwner(name, index)}.shape must hold non-negative integers, ` +
          `got [${dimensions.map(String).join(', ')}]`,
      );
    }
  }
  return dimensions;
}

/** Phase one: every entry's properties, read once, as plain records. */
function readEntries(params, method) {
  const kind = collectionKind(params, method, 'params');
  if (kind === 'array') {
    const count = params.length;
    refuseTooMany(count, method, 'params');
    const raw = [];
    for (let index = 0; index < count; index++) {
      const item = params[index];
      if (item === null || typeof item !== 'object') {
        throw new TypeError(
          `ema-wasm: ${method}: params[${index}] must be an object { name, data }, got ${describe(item)}`,
        );
      }
      const name = item.name;
      const data = item.data;
      const givenShape = item.shape;
      const shape = givenShape === undefined ? undefined : readShape(givenShape, method, name, index);
      const trainable = item.trainable;
      const buffer = item.buffer;
      // Every field an entry will have, so that checkEntry does not reshape it.
      raw.push({ name, data, shape, trainable, buffer, dtype: 'f32', elements: 0, where: index, length: 0, unusable: null });
    }
    return raw;
  }
  const pairs = readNamedValues(params, method, 'params', kind);
  if (pairs === null) {
    throw new TypeError(
      `ema-wasm: ${method}: params must be an array of { name, data }, a Map of name to ` +
        `Float32Array, or an object of Float32Arrays; got ${describe(params)}`,
    );
  }
  const where = kind === 'map' ? 'a Map key' : 'an object key';
  return pairs.map(({ name, value }) => ({
    name, data: value, shape: undefined, trainable: undefined, buffer: undefined, dtype: 'f32', elements: 0, where, length: 0, unusable: null,
  }));
}

/** Where an entry came from, for messages: params[3], or 'a Map key'. */
function whereOf(record) {
  return typeof record.where === 'number' ? `params[${record.where}]` : record.where;
}

function checkShape(shape, length, method, name) {
  // A 0 anywhere makes 0, even after dimensions whose product passed 2^53.
  let product = shape.includes(0) ? 0 : 1;
  for (let d = 0; d < shape.length && product !== 0; d++) product *= shape[d];
  if (product !== length) {
    throw new Error(
      `ema-wasm: ${method}: parameter '${clip(name)}'.shape [${shape.join(', ')}] holds ${product} elements but its data has ${length}`,
    );
  }
}

/**
 * Phase two: checks one record and completes it in place (one object per
 * entry: with thousands of small tensors, allocation is what an update
 * costs). Runs no user code unless it throws.
 */
function checkEntry(record, method) {
  const { name, data, shape, trainable, buffer } = record;
  if (typeof name !== 'string') {
    throw new TypeError(`ema-wasm: ${method}: ${whereOf(record)}.name must be a string, got ${describe(name)}`);
  }
  if (name.length === 0) {
    throw new Error(`ema-wasm: ${method}: ${whereOf(record)}.name is empty; every parameter needs a name`);
  }
  if (buffer !== undefined && typeof buffer !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: parameter '${clip(name)}'.buffer must be a boolean, got ${describe(buffer)}`);
  }
  const kind = typedArrayKind(data);
  const dtype = DTYPE_OF_KIND[kind];
  if (kind !== 'Float32Array' && !(buffer === true && dtype !== undefined)) {
    const allowed = buffer === true ? 'a Float32Array, Int32Array or BigInt64Array' : 'a Float32Array';
    const arrayForm = typeof record.where === 'number';
    const hint = dtype === undefined ? ''
      : arrayForm ? ' (an integer buffer, such as a step count, is passed with buffer: true)'
        : ' (a Map or object of params holds Float32Arrays; pass integer buffers in the array form, with buffer: true)';
    throw new TypeError(`ema-wasm: ${method}: parameter '${clip(name)}' must be ${allowed}, got ${describe(data)}${hint}`);
  }
  if (trainable !== undefined && typeof trainable !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: parameter '${clip(name)}'.trainable must be a boolean, got ${describe(trainable)}`);
  }
  const elements = lengthOf(data);
  const unusable = unusableReason(data, elements);
  // Integer buffers travel as the raw 32-bit words of their bytes: every
  // recipe copies them bit for bit, so the core never reads them as floats.
  const length = wordsFor(elements, dtype);
  if (unusable === null) {
    if (shape !== undefined) checkShape(shape, elements, method, name);
    record.data = dtype === 'f32' ? pinnedView(data, elements, Float32Array) : wordsView(data, dtype, elements);
  }
  record.dtype = dtype;
  record.elements = elements;
  record.length = length;
  record.trainable = trainable ?? true;
  record.buffer = buffer ?? false;
  record.unusable = unusable;
  return record;
}

/**
 * Reads `params` once and checks each entry. Returns [{ name, data, length,
 * shape, trainable, buffer, dtype, elements, unusable }] in the caller's
 * order, where `data` is a Float32Array of exactly `length` elements that
 * stays so for as long as no user code runs (for an integer buffer, a view
 * of its bytes as 32-bit words: dtype 'i32' or 'i64', `elements` integers), `shape` is a checked copy or undefined (meaning [length]),
 * and `unusable` says why an array cannot be read or written (a detached
 * buffer), or is null. Throws TypeError for wrong types and RangeError for
 * values out of range. Names may repeat: each caller that matches by name
 * refuses duplicates (refuseDuplicates), except where its match proves them
 * impossible.
 */
export function resolveParams(params, method) {
  const entries = readEntries(params, method);
  for (let index = 0; index < entries.length; index++) checkEntry(entries[index], method);
  return entries;
}

/** Throws an Error naming every name that occurs more than once. */
export function refuseDuplicates(entries, method) {
  const seen = new Set();
  const duplicates = new Set();
  for (const { name } of entries) {
    if (seen.has(name)) duplicates.add(name);
    seen.add(name);
  }
  if (duplicates.size > 0) {
    throw new Error(`ema-wasm: ${method}: duplicate parameter names: ${quoteList(duplicates)}`);
  }
}

/** Throws unless every entry can be read and written (see resolveParams). */
export function refuseUnusable(entries, method) {
  for (let index = 0; index < entries.length; index++) {
    if (entries[index].unusable !== null) {
      const unusable = entries.filter((entry) => entry.unusable !== null);
      const [{ name, unusable: why }] = unusable;
      const others = unusable.length > 1 ? ` (and ${quoteList(unusable.slice(1).map((e) => e.name))})` : '';
      throw new Error(`ema-wasm: ${method}: parameter '${clip(name)}' cannot be used: ${why}${others}`);
    }
  }
}

/**
 * Reads an options object once: a plain record of its own keys, which must
 * all be in `allowed`.
 */
export function readOptions(options, allowed, method) {
  if (options === null || typeof options !== 'object' || collectionKind(options, method, 'options') === 'array') {
    throw new TypeError(`ema-wasm: ${method}: options must be an object, got ${describe(options)}`);
  }
  const values = Object.create(null);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`ema-wasm: ${method}: unknown option '${clip(key)}'; expected ${allowed.join(', ')}`);
    }
    values[key] = options[key];
  }
  if (values.strict !== undefined && typeof values.strict !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: options.strict must be a boolean, got ${describe(values.strict)}`);
  }
  return values;
}
