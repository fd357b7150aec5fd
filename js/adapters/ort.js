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
import { checkOptionKeys, createEma } from '../ema.js';
import { describe } from '../params.js';
import { EmaScope } from '../scope.js';

const SLOT = 'parameters';
const OPTION_KEYS = ['decay', 'useNumUpdates', 'simd'];
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
    throw new TypeError(
      `ema-wasm: createOrtEma: session must be ${expected}, got ${describe(session)} ` +
        `without ${missing.join(', ')}`,
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
  if ((type !== undefined && type !== 'float32') || !(data instanceof Float32Array)) {
    const what = type !== undefined ? `a '${type}' tensor` : 'a tensor';
    throw new Error(
      `ema-wasm: ${method}: session.getContiguousParameters(true) must give a float32 tensor, ` +
        `got ${what} whose data is ${describe(data)}`,
    );
  }
  if (size !== undefined && data.length !== size) {
    throw new Error(
      `ema-wasm: ${method}: session.getContiguousParameters(true) gave ${data.length} parameters; ` +
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
  // Only the keys are checked here; createEma checks the values, so both
  // entry points accept the same decay/useNumUpdates/simd with the same errors.
  checkOptionKeys(options, OPTION_KEYS, 'createOrtEma');
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
  const ema = await createEma([{ name: SLOT, data, shape: [size] }], options);
  return new OrtEma(ema, session, size);
}

export class OrtEma {
  #ema;
  #session;
  #size;
  #stored = false; // whether this adapter's store() (or withEma) has run
  #scope = new EmaScope();

  /** @private Use createOrtEma(). */
  constructor(ema, session, size) {
    this.#ema = ema;
    this.#session = session;
    this.#size = size;
  }

  // ---- state ---------------------------------------------------------------

  /** The underlying core Ema (one parameter, 'parameters', of shape [size]). */
  get ema() {
    return this.#live();
  }

  /** Number of trainable parameters tracked (getParametersSize(true)). */
  get size() {
    this.#live();
    return this.#size;
  }

  /** The base decay, as the float32 value LitEma stores. */
  get decay() {
    return this.#live().decay;
  }

  /** Updates since creation or reset; -1 when warmup is off. */
  get numUpdates() {
    return this.#live().numUpdates;
  }

  /** True when the SIMD128 build runs, false for the scalar build. */
  get simd() {
    return this.#live().simd;
  }

  /** A copy of the whole EMA vector, in getContiguousParameters order. */
  shadow() {
    return this.#live().shadow(SLOT);
  }

  /** LitEma's state_dict: 'decay', 'num_updates', 'parameters' (copies). */
  stateDict() {
    return this.#live().stateDict();
  }

  /** LitEma.reset_num_updates(): the counter goes to 0, turning warmup on. */
  resetNumUpdates() {
    this.#live().resetNumUpdates();
  }

  // ---- the EMA step --------------------------------------------------------

  /**
   * One EMA step with the session's current trainable parameters (call it
   * after runOptimizerStep). Returns the decay the step used.
   */
  async update() {
    this.#live();
    this.#scope.check('update');
    // Read and check before stepping: a wrong tensor throws with the EMA
    // untouched. The core copies the values in, so a view is fine here.
    const data = await readParameters(this.#session, this.#size, 'update');
    return this.#live().update([{ name: SLOT, data }]);
  }

  // ---- swapping weights ----------------------------------------------------

  /** LitEma.copy_to: loads the EMA weights into the session. */
  async copyTo() {
    this.#live();
    this.#scope.check('copyTo');
    await this.#loadShadow();
  }

  /**
   * LitEma.store: snapshots the session's trainable parameters (into the
   * core's arena), replacing an earlier snapshot.
   */
  async store() {
    this.#live();
    this.#scope.check('store');
    await this.#snapshot('store');
  }

  /** LitEma.restore: loads the last snapshot back into the session. */
  async restore() {
    this.#live();
    this.#scope.check('restore');
    await this.#loadSnapshot();
  }

  /**
   * LitEma's ema_scope: store, copyTo, `await fn()`, then restore even if fn
   * (or copyTo) throws. Returns what fn returns.
   */
  async withEma(fn) {
    this.#live();
    this.#scope.check('withEma');
    if (typeof fn !== 'function') {
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}`);
    }
    // Loading the EMA weights (swapIn) may fail halfway; the training
    // weights still go back.
    return this.#scope.run('withEma', {
      store: () => this.#snapshot('withEma'),
      swapIn: () => this.#loadShadow(),
      restore: () => this.#loadSnapshot(),
    }, fn);
  }

  /** Frees the arena; every later call throws. Calling it again does nothing. */
  dispose() {
    if (this.#ema === null) return;
    this.#scope.check('dispose');
    this.#ema.dispose();
    this.#ema = null;
    this.#session = null; // let the session be collected even if the EMA is kept
  }

  // ---- internals -----------------------------------------------------------

  async #snapshot(method) {
    const data = await readParameters(this.#session, this.#size, method);
    this.#live().store([{ name: SLOT, data }]);
    this.#stored = true;
  }

  async #loadShadow() {
    // shadow() is a fresh copy out of Wasm memory, so the bytes handed to
    // onnxruntime are ours and stay valid whatever either heap does.
    const values = this.#live().shadow(SLOT);
    await this.#session.loadParametersBuffer(bytesOf(values), true);
  }

  async #loadSnapshot() {
    const ema = this.#live();
    if (!this.#stored) {
      throw new Error('ema-wasm: restore: nothing is stored; call store() first');
    }
    // The core writes the snapshot into an array we allocate, so the buffer
    // given to onnxruntime is an owned copy, not a view into Wasm memory.
    const values = new Float32Array(this.#size);
    ema.restore([{ name: SLOT, data: values }]);
    await this.#session.loadParametersBuffer(bytesOf(values), true);
  }

  #live() {
    if (this.#ema === null) {
      throw new Error('ema-wasm: this EMA was disposed; create a new one with createOrtEma()');
    }
    return this.#ema;
  }
}
