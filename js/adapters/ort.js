// ema-wasm for onnxruntime-web training: an EMA of a TrainingSession's
// trainable parameters.
//
// onnxruntime-web (1.17 to 1.19.2, the versions with the training API) hands
// out all trainable parameters as ONE contiguous float32 tensor
// (getContiguousParameters) and takes them back as one byte buffer
// (loadParametersBuffer). So the adapter tracks a single slot named
// 'parameters' of shape [n] and forwards every LitEma method to the core Ema,
// with the session as the only source and sink of weights.
//
// The adapter never imports onnxruntime-web: the user passes the session they
// created, so this module stays free of a heavy optional dependency and works
// with whichever copy of the bundle the user loaded (in Node that has to be
// dist/ort.training.wasm.min.mjs by file path, as './training' maps node to
// null). The session is checked by shape (duck typing), not by class.
//
// Like the core, every method checks everything it will use before it changes
// anything, so a call that throws leaves the EMA exactly as it was.

import { bytesOf } from '../bytes.js';
import { clip, describe } from '../describe.js';
import { adapterAccess, prepareEma } from '../ema.js';
import { readOptions } from '../resolve.js';
import { hold, objectTarget } from '../scope.js';
import { lengthOf, typedArrayKind } from '../typed-arrays.js';

const SLOT = 'parameters';
const OPTION_KEYS = ['decay', 'useNumUpdates', 'simd', 'wasm'];
const OWNER = 'an onnxruntime-web EMA';
const SESSION_METHODS = ['getParametersSize', 'getContiguousParameters', 'loadParametersBuffer'];

function checkSession(session) {
  const expected =
    'an onnxruntime-web TrainingSession (an object with getParametersSize, ' +
    'getContiguousParameters and loadParametersBuffer methods)';
  if (session === null || typeof session !== 'object') {
    throw new TypeError(`ema-wasm: createOrtEma: session must be ${expected}, got ${describe(session)}`);
  }
  const missing = SESSION_METHODS.filter((method) => typeof session[method] !== 'function');
  if (missing.length > 0) {
    // The peer range is open (it must never block an install), so the
    // version check happens here: what a session without the training API
    // most likely is, and which onnxruntime-web has one.
    const inference = typeof session.run === 'function' && missing.length === SESSION_METHODS.length;
    throw new TypeError(
      `ema-wasm: createOrtEma: session must be ${expected}, got ${describe(session)} ` +
        `without ${missing.join(', ')}${inference ? ' (an InferenceSession, which cannot train)' : ''}. ` +
        "onnxruntime-web's training API (TrainingSession, from 'onnxruntime-web/training') exists only in " +
        'versions 1.17.0 to 1.19.2 (1.19.2 in Node); it was removed in 1.20.',
    );
  }
}

/**
 * Reads the trainable parameters from the session and checks them: a float32
 * tensor whose length is `size` (when given). Returns its Float32Array, which
 * may be a view into someone else's memory; every caller only copies from it.
 */
async function readParameters(session, size, method) {
  const tensor = await session.getContiguousParameters(true);
  if (tensor === null || typeof tensor !== 'object') {
    throw new Error(
      `ema-wasm: ${method}: session.getContiguousParameters(true) must give a float32 tensor, got ${describe(tensor)}`,
    );
  }
  // ORT tensors carry their element type as a string; check it when present,
  // and always check the array itself, which is what gets averaged.
  const { type, data } = tensor;
  if ((type !== undefined && type !== 'float32') || typedArrayKind(data) !== 'Float32Array') {
    const what = type !== undefined ? `a '${clip(String(type))}' tensor` : 'a tensor';
    throw new Error(
      `ema-wasm: ${method}: session.getContiguousParameters(true) must give a float32 tensor, ` +
        `got ${what} whose data is ${describe(data)}`,
    );
  }
  if (size !== undefined && lengthOf(data) !== size) {
    throw new Error(
      `ema-wasm: ${method}: session.getContiguousParameters(true) gave ${lengthOf(data)} parameters; ` +
        `the EMA tracks ${size}`,
    );
  }
  return data;
}

/**
 * Creates an EMA of a TrainingSession's trainable parameters; the shadow
 * starts as a copy of them (as LitEma does).
 */
export async function createOrtEma(session, options = {}) {
  checkSession(session);
  const create = await prepareEma(readOptions(options, OPTION_KEYS, 'createOrtEma'), 'createOrtEma');
  // Held for reading from here on: no withEma of another EMA of this session
  // can swap weights in while these are read.
  const release = hold('createOrtEma', OWNER, [objectTarget('the session', session)], 'read');
  try {
    return await createFromSession(session, create);
  } finally {
    release();
  }
}

/** Reads the size and the parameters and builds the OrtEma (the session is held). */
async function createFromSession(session, create) {
  const size = await session.getParametersSize(true);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new Error(
      `ema-wasm: createOrtEma: session.getParametersSize(true) must give a non-negative integer, got ${describe(size)}`,
    );
  }
  if (size === 0) {
    // An EMA of nothing is certainly a mistake (a session without trainable
    // parameters, or a checkpoint that froze them all): say so now.
    throw new Error('ema-wasm: createOrtEma: the session has no trainable parameters (getParametersSize(true) is 0)');
  }
  const data = await readParameters(session, size, 'createOrtEma');
  // No await between reading the parameters and copying them in.
  return new OrtEma(create([{ name: SLOT, data, shape: [size] }]), session, size);
}

export class OrtEma {
  #ema;
  #session;
  #size;
  #stored = false; // whether this adapter's store() (or withEma) has run
  #scope; // the core EMA's own, so that `.ema` is refused inside withEma too
  #targets; // what this EMA's calls touch (scope.js): the session, by identity

  /** @private Use createOrtEma(). */
  constructor(ema, session, size) {
    this.#ema = ema;
    this.#session = session;
    this.#size = size;
    this.#scope = adapterAccess.scopeOf(ema);
    this.#targets = [objectTarget('the session', session)];
  }

  // ---- state ---------------------------------------------------------------

  /** The underlying core Ema (one parameter, 'parameters', of shape [size]). */
  get ema() {
    return OrtEma.#emaOf(this, 'ema');
  }

  /** Number of trainable parameters tracked (getParametersSize(true)). */
  get size() {
    OrtEma.#emaOf(this, 'size');
    return this.#size;
  }

  /** The base decay, as the float32 value LitEma stores. */
  get decay() {
    return OrtEma.#emaOf(this, 'decay').decay;
  }

  /** Updates since creation or reset; -1 when warmup is off. */
  get numUpdates() {
    return OrtEma.#emaOf(this, 'numUpdates').numUpdates;
  }

  /** True when the SIMD128 build runs, false for the scalar build. */
  get simd() {
    return OrtEma.#emaOf(this, 'simd').simd;
  }

  /** A copy of the whole EMA vector, in getContiguousParameters order. */
  shadow() {
    return OrtEma.#emaOf(this, 'shadow').shadow(SLOT);
  }

  /** LitEma's state_dict: 'decay', 'num_updates', 'parameters' (copies). */
  stateDict() {
    return OrtEma.#emaOf(this, 'stateDict').stateDict();
  }

  /** LitEma.reset_num_updates(): the counter goes to 0, turning warmup on. */
  resetNumUpdates() {
    OrtEma.#emaOf(this, 'resetNumUpdates').resetNumUpdates();
  }

  // ---- the EMA step --------------------------------------------------------

  /**
   * One EMA step with the session's current trainable parameters (call it
   * after runOptimizerStep). Returns the decay the step used.
   */
  async update() {
    OrtEma.#emaOf(this, 'update');
    return this.#holding('update', 'read', async () => {
      // Read and check before stepping: a wrong tensor throws with the EMA
      // untouched. The core copies the values in, so a view is fine here.
      const data = await readParameters(this.#session, this.#size, 'update');
      return OrtEma.#emaOf(this, 'update').update([{ name: SLOT, data }]);
    });
  }

  // ---- swapping weights ----------------------------------------------------

  /** LitEma.copy_to: loads the EMA weights into the session. */
  async copyTo() {
    OrtEma.#emaOf(this, 'copyTo');
    return this.#holding('copyTo', 'write', () => this.#loadShadow('copyTo'));
  }

  /**
   * LitEma.store: snapshots the session's trainable parameters (into the
   * core's arena), replacing an earlier snapshot.
   */
  async store() {
    OrtEma.#emaOf(this, 'store');
    return this.#holding('store', 'read', () => this.#snapshot('store'));
  }

  /** LitEma.restore: loads the last snapshot back into the session. */
  async restore() {
    OrtEma.#emaOf(this, 'restore');
    return this.#holding('restore', 'write', () => this.#loadSnapshot('restore'));
  }

  /**
   * LitEma's ema_scope: store, copyTo, `await fn()`, then restore even if fn
   * (or copyTo) throws. Returns what fn returns. The session stays held
   * until the training weights have been loaded back, so no other call of
   * any EMA of this session can run in between.
   */
  async withEma(fn) {
    OrtEma.#emaOf(this, 'withEma');
    this.#scope.check('withEma');
    if (typeof fn !== 'function') {
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}`);
    }
    return this.#scope.run('withEma', OWNER, this.#targets, {
      store: () => this.#snapshot('withEma'),
      swapIn: () => this.#loadShadow('withEma'),
      restore: () => this.#loadSnapshot('withEma'),
    }, fn);
  }

  /** Frees the arena; every later call throws. Calling it again does nothing. */
  dispose() {
    if (!(this !== null && typeof this === 'object' && #ema in this)) OrtEma.#emaOf(this, 'dispose');
    if (this.#ema === null) return;
    this.#scope.check('dispose');
    this.#ema.dispose();
    this.#ema = null;
    this.#session = null; // let the session be collected even if the EMA is kept
  }

  // ---- internals -----------------------------------------------------------

  /**
   * Runs `action` with the session held (see scope.js) across all of its
   * awaits: a withEma of any EMA of this session cannot swap weights in the
   * middle of it, nor can this call land in the middle of a withEma.
   */
  async #holding(method, mode, action) {
    this.#scope.check(method);
    const release = hold(method, OWNER, this.#targets, mode);
    try {
      return await action();
    } finally {
      release();
    }
  }

  async #snapshot(method) {
    const data = await readParameters(this.#session, this.#size, method);
    adapterAccess.store(OrtEma.#emaOf(this, method), [{ name: SLOT, data }], method);
    this.#stored = true;
  }

  async #loadShadow(method) {
    // shadow() is a fresh copy out of Wasm memory, so the bytes handed to
    // onnxruntime are ours and stay valid whatever either heap does.
    const values = OrtEma.#emaOf(this, method).shadow(SLOT);
    try {
      await this.#session.loadParametersBuffer(bytesOf(values), true);
    } catch (error) {
      throw new Error(`ema-wasm: ${method}: the session refused the EMA weights: ${error?.message ?? error}`, { cause: error });
    }
  }

  async #loadSnapshot(method) {
    const ema = OrtEma.#emaOf(this, method);
    if (!this.#stored) {
      throw new Error(`ema-wasm: ${method}: nothing is stored; call store() first`);
    }
    // The core writes the snapshot into an array we allocate, so the buffer
    // given to onnxruntime is an owned copy, not a view into Wasm memory.
    const values = new Float32Array(this.#size);
    adapterAccess.restore(ema, [{ name: SLOT, data: values }], method);
    try {
      await this.#session.loadParametersBuffer(bytesOf(values), true);
    } catch (error) {
      throw new Error(
        `ema-wasm: ${method}: could not load the stored weights back into the session (${error?.message ?? error}); ` +
          'they stay stored in the EMA: call restore() to try again',
      );
    }
  }

  /**
   * The core EMA of `adapter` for a call of `method`: a TypeError when the
   * method was called on something else, an Error once disposed.
   */
  static #emaOf(adapter, method) {
    if (adapter === null || typeof adapter !== 'object' || !(#ema in adapter)) {
      throw new TypeError(
        `ema-wasm: ${method}: called on ${describe(adapter)}, not on an onnxruntime-web EMA; call it as ema.${method}, ` +
          `or bind it (ema.${method}.bind(ema)) before passing it as a callback`,
      );
    }
    if (adapter.#ema === null) {
      throw new Error(`ema-wasm: ${method}: this EMA was disposed; create a new one with createOrtEma()`);
    }
    return adapter.#ema;
  }
}
