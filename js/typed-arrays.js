// Typed arrays as the engine sees them, not as they describe themselves.
//
// A user's array can lie: a subclass or an own property can override
// `length`, a Proxy passes `instanceof Float32Array`, `subarray` and `slice`
// call a user-defined @@species constructor, and an array from another realm
// (vm, Jest, an iframe) fails `instanceof`. The intrinsic %TypedArray%
// getters and `set` read the internal slots instead: they run no user code,
// work across realms, and refuse (or report undefined for) anything that is
// not really a typed array. Every read of a caller's typed array goes through
// this file.

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
const intrinsicGetter = (prototype, key) => Object.getOwnPropertyDescriptor(prototype, key)?.get;

const tagGetter = intrinsicGetter(TypedArrayPrototype, Symbol.toStringTag);
const lengthGetter = intrinsicGetter(TypedArrayPrototype, 'length');
const bufferGetter = intrinsicGetter(TypedArrayPrototype, 'buffer');
const byteOffsetGetter = intrinsicGetter(TypedArrayPrototype, 'byteOffset');
const typedArraySet = TypedArrayPrototype.set;
const typedArrayAt = TypedArrayPrototype.at;
const resizableGetter = intrinsicGetter(ArrayBuffer.prototype, 'resizable');
const growableGetter =
  typeof SharedArrayBuffer === 'function' ? intrinsicGetter(SharedArrayBuffer.prototype, 'growable') : undefined;
const detachedGetter = intrinsicGetter(ArrayBuffer.prototype, 'detached');
const arrayBufferByteLengthGetter = intrinsicGetter(ArrayBuffer.prototype, 'byteLength');

/**
 * The typed-array kind of `value` ('Float32Array', 'Uint8Array', ...) read
 * from its internal slot, or undefined when it is not a typed array (a Proxy,
 * a look-alike, a primitive). True for typed arrays of any realm.
 */
export function typedArrayKind(value) {
  return tagGetter.call(value);
}

/** Elements of a typed array (0 when its buffer is detached or out of bounds). */
export function lengthOf(array) {
  return lengthGetter.call(array);
}

export function bufferOf(array) {
  return bufferGetter.call(array);
}

export function byteOffsetOf(array) {
  return byteOffsetGetter.call(array);
}

// Telling an ArrayBuffer from a SharedArrayBuffer: each one's intrinsic
// getters throw for the other. The common case (an ArrayBuffer) must not
// throw: an exception per array costs more than a small update.
function isShared(buffer) {
  if (typeof SharedArrayBuffer !== 'function') return false;
  try {
    arrayBufferByteLengthGetter.call(buffer);
    return false;
  } catch {
    return true;
  }
}

/** Whether `buffer` (an ArrayBuffer of any realm) was detached (transferred). */
export function isDetached(buffer) {
  if (isShared(buffer)) return false;
  if (detachedGetter !== undefined) return detachedGetter.call(buffer);
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/** Whether `buffer` can change size (a resizable ArrayBuffer or growable SharedArrayBuffer). */
export function canResize(buffer) {
  if (resizableGetter === undefined) return false; // engines without resizable buffers
  try {
    return resizableGetter.call(buffer); // throws only for a SharedArrayBuffer
  } catch {
    return growableGetter?.call(buffer) === true;
  }
}

/**
 * Why a typed array of `length` elements (as just read) cannot be used, or
 * null. A detached buffer and a resizable one shrunk below the array both
 * read as length 0, like an array that is simply empty; the intrinsic `at`
 * tells them apart (it throws for the first two only).
 */
export function unusableReason(array, length) {
  if (length !== 0) return null;
  try {
    typedArrayAt.call(array, 0);
    return null;
  } catch {
    return isDetached(bufferOf(array))
      ? 'its ArrayBuffer was detached (transferred to a worker, or by ArrayBuffer.transfer)'
      : 'it lies outside its resizable ArrayBuffer, which was shrunk';
  }
}

/**
 * A fixed-length view of exactly `length` elements of `array`, safe to keep
 * for the rest of a call: a length-tracking array over a growable buffer
 * could otherwise change length under us (another thread can grow a
 * SharedArrayBuffer at any time). Plain arrays are returned as they are.
 */
export function pinnedView(array, length, ArrayType) {
  const buffer = bufferOf(array);
  if (!canResize(buffer)) return array;
  return new ArrayType(buffer, byteOffsetOf(array), length);
}

/**
 * `count` elements of `array` from `start`, as a new view on the same memory,
 * built from the internal slots (never through subarray, which calls a
 * user-defined @@species constructor).
 */
export function windowOf(array, start, count, ArrayType) {
  return new ArrayType(bufferOf(array), byteOffsetOf(array) + start * ArrayType.BYTES_PER_ELEMENT, count);
}

/**
 * target.set(source) through the intrinsic, so that a subclass or an own
 * `set` property of the caller's `target` cannot intercept the write.
 */
export function writeInto(target, source, offset = 0) {
  typedArraySet.call(target, source, offset);
}

/** A fresh array holding a copy of `count` elements of `source` from `start`. */
export function copyOf(source, start, count, ArrayType) {
  const copy = new ArrayType(count);
  typedArraySet.call(copy, windowOf(source, start, count, ArrayType));
  return copy;
}

// ---- element types an EMA keeps ---------------------------------------------
// A shadow is a run of 32-bit words in the arena. Float32 parameters are one
// word an element; integer buffers are kept as the raw words of their bytes
// (an int64 is two), since every recipe copies them bit for bit.

/** The element types a shadow may have, by typed-array kind. */
export const DTYPE_OF_KIND = Object.freeze({ __proto__: null, Float32Array: 'f32', Int32Array: 'i32', BigInt64Array: 'i64' });

const ELEMENT_ARRAY = Object.freeze({ f32: Float32Array, i32: Int32Array, i64: BigInt64Array });

/** 32-bit words that `elements` elements of `dtype` take. */
export function wordsFor(elements, dtype) {
  return dtype === 'i64' ? 2 * elements : elements;
}

/** Elements of `dtype` that `words` 32-bit words hold. */
export function elementsIn(words, dtype) {
  return dtype === 'i64' ? words / 2 : words;
}

/** The words of a typed array of `dtype` as a Float32Array over the same memory (no copy). */
export function wordsView(array, dtype, elements) {
  return new Float32Array(bufferOf(array), byteOffsetOf(array), wordsFor(elements, dtype));
}

/** Words (a Float32Array) as the typed array of `dtype` over the same memory (no copy). */
export function elementsView(words, dtype) {
  if (dtype === 'f32') return words;
  return new ELEMENT_ARRAY[dtype](words.buffer, words.byteOffset, elementsIn(words.length, dtype));
}
