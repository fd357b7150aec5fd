// Scopes: who may touch which weights while a withEma() is running.
//
// Inside withEma() the model holds the EMA weights and the EMA's backup holds
// the training weights. Anything that stores, restores, copies into or
// averages from those same weights before withEma() has put them back would
// lose the training weights or mix one EMA's weights into another, whichever
// EMA it belongs to: two EMAs of one model (decay 0.999 and 0.9999) share
// the model's arrays. So every scope registers what it holds here, for the
// whole realm, and every call checks the weights it is about to touch:
//
//   - arrays, by memory: the ArrayBuffer and the byte range (two views of
//     one buffer overlap if their ranges do);
//   - objects that stand for weights we cannot see as arrays (a TF.js
//     variable, an onnxruntime-web session), by identity.
//
// A hold is 'write' (withEma, and an adapter's async copy or restore) or
// 'read' (an adapter's async update or store, held across its awaits so a
// withEma cannot swap weights under it). Two holds conflict unless both read.
// Synchronous calls never hold: nothing can run in the middle of them, so
// they only check.

import { clip } from './describe.js';
import { bufferOf, byteOffsetOf } from './typed-arrays.js';

// Shared through the realm's global object, so that two copies of this
// package in one app (two versions, or one bundled twice) still see each
// other's holds. The entry shape is versioned in the key. The Set is used
// through the intrinsic Set methods only, so that whatever put it there
// (a subclass, say) cannot run code in the middle of a call.
const HOLDS_KEY = Symbol.for('ema-wasm.holds.v1');
const setSize = Object.getOwnPropertyDescriptor(Set.prototype, 'size').get;
const setAdd = Set.prototype.add;
const setDelete = Set.prototype.delete;
const setValues = Set.prototype.values;
const setIteratorNext = Object.getPrototypeOf(new Set().values()).next;

function isSet(value) {
  try {
    setSize.call(value);
    return true;
  } catch {
    return false;
  }
}

const holds = isSet(globalThis[HOLDS_KEY]) ? globalThis[HOLDS_KEY] : (globalThis[HOLDS_KEY] = new Set());

/** Every open hold, in the order they were opened. */
function openHolds() {
  const list = [];
  const iterator = setValues.call(holds);
  for (let step = setIteratorNext.call(iterator); !step.done; step = setIteratorNext.call(iterator)) list.push(step.value);
  return list;
}

/** What a call touches: an array's memory, labelled for messages. */
export function arrayTarget(label, array, length) {
  const start = byteOffsetOf(array);
  return { label, buffer: bufferOf(array), start, end: start + length * 4, object: null };
}

/** What a call touches: the first `byteLength` bytes of `buffer`, all of a memory. */
export function memoryTarget(label, buffer, byteLength) {
  return { label, buffer, start: 0, end: byteLength, object: null };
}

/** What a call touches: an object standing for weights, by identity. */
export function objectTarget(label, object) {
  return { label, buffer: null, start: 0, end: 0, object };
}

/**
 * A hold's targets indexed for lookup: objects in a Set, array ranges by
 * their ArrayBuffer, so that checking a model of thousands of tensors
 * against a hold of thousands costs one lookup per tensor.
 */
function indexTargets(targets) {
  const objects = new Set();
  const rangesByBuffer = new Map();
  for (const target of targets) {
    if (target.object !== null) {
      objects.add(target.object);
    } else if (target.end > target.start) {
      const ranges = rangesByBuffer.get(target.buffer);
      if (ranges === undefined) rangesByBuffer.set(target.buffer, [target]);
      else ranges.push(target);
    }
  }
  return { objects, rangesByBuffer };
}

// An adapter holds the same targets on every call: index them once.
const indexes = new WeakMap();

function indexOf(targets) {
  let index = indexes.get(targets);
  if (index === undefined) {
    index = indexTargets(targets);
    indexes.set(targets, index);
  }
  return index;
}

function heldBy(hold, target) {
  if (target.object !== null) return hold.objects.has(target.object);
  if (target.end <= target.start) return false; // an empty array touches no memory
  const ranges = hold.rangesByBuffer.get(target.buffer);
  if (ranges === undefined) return false;
  for (const range of ranges) {
    if (target.start < range.end && range.start < target.end) return true;
  }
  return false;
}

/** `targets` is an array of targets, or a function giving one (built only when some scope is open). */
function conflictOf(targets, mode) {
  if (setSize.call(holds) === 0) return null;
  if (typeof targets === 'function') targets = targets();
  for (const hold of openHolds()) {
    if (mode === 'read' && hold.mode === 'read') continue;
    for (const target of targets) {
      if (heldBy(hold, target)) return { target, hold };
    }
  }
  return null;
}

function refusal(method, { target, hold }) {
  const owner = typeof hold.owner === 'function' ? hold.owner() : hold.owner;
  const holder =
    hold.method === 'withEma'
      ? `an open withEma() of ${owner}, which has put EMA weights there until it puts the training weights back`
      : `${hold.method}() of ${owner}, which is still ${hold.mode === 'write' ? 'writing' : 'reading'} it`;
  return new Error(`ema-wasm: ${method}: ${clip(target.label)} is held by ${holder}; await that call before calling ${method}()`);
}

/** Throws if any of `targets` is held in a way that conflicts with `mode`. */
export function checkFree(method, targets, mode) {
  const conflict = conflictOf(targets, mode);
  if (conflict !== null) throw refusal(method, conflict);
}

/**
 * Checks `targets` and holds them until the returned release() is called.
 * `owner` names the EMA in messages ("an EMA of 'w', 'b'"), or is a
 * function giving that name, called only for a message.
 */
export function hold(method, owner, targets, mode) {
  if (typeof targets === 'function') targets = targets();
  checkFree(method, targets, mode);
  const entry = { method, owner, mode, ...indexOf(targets) };
  setAdd.call(holds, entry);
  return () => setDelete.call(holds, entry);
}

/**
 * One EMA's own withEma() scope. While it is open, that EMA refuses store,
 * restore, copyTo, update, another withEma and dispose whatever they are
 * given, since its backup holds the training weights; other EMAs are kept off
 * the held weights by the realm-wide holds above.
 */
export class EmaScope {
  #open = false;

  /** Throws if this EMA's withEma() scope is open. */
  check(method) {
    if (this.#open) {
      throw new Error(
        `ema-wasm: ${method}: not allowed while withEma() is running (the training weights are ` +
          'stored for it and would be lost); call it after withEma() returns',
      );
    }
  }

  /**
   * withEma's sequence: holds `targets`, then store(), swapIn(), `await fn()`,
   * and restore() even if swapIn or fn throws (not if store did: then nothing
   * was swapped). Steps that return no promise run at once, so with the core
   * EMA the store, the swap and the start of fn happen inside the withEma()
   * call itself: no other code can run between them. The scope stays open,
   * and the targets held, until the restore has landed. A restore that fails
   * throws its own error, with the error of fn (or of the swap) as its cause.
   * Returns what fn returns.
   */
  async run(method, owner, targets, { store, swapIn, restore }, fn) {
    this.check(method);
    const release = hold(method, owner, targets, 'write');
    this.#open = true;
    try {
      try {
        const storing = store();
        if (isPromise(storing)) await storing;
      } catch (error) {
        this.#open = false;
        throw error;
      }
      let failure = null;
      let result;
      try {
        const swapping = swapIn();
        if (isPromise(swapping)) await swapping;
        result = await fn();
      } catch (error) {
        failure = { error };
      }
      try {
        const restoring = restore();
        if (isPromise(restoring)) await restoring;
      } catch (restoreError) {
        // The restore error says what could not be restored; what fn threw
        // travels with it.
        if (failure !== null) restoreError.cause = failure.error;
        throw restoreError;
      } finally {
        this.#open = false;
      }
      if (failure !== null) throw failure.error;
      return result;
    } finally {
      release();
    }
  }
}

// A step that returns no promise is not awaited: awaiting would let other
// code run between the store and the swap.
function isPromise(value) {
  return value instanceof Promise;
}
