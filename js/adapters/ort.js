// ema-wasm for onnxruntime-web training: an EMA of a TrainingSession's
// trainable parameters.
//
// onnxruntime-web (1.17 to 1.19.2, the versions with the training API) hands
// out all trainable parameters as ONE contiguous float32 tensor
// (getContiguousParameters) and takes them back as one byte buffer
// (loadParametersBuffer). So the adapter tracks a single slot named
// 'parameters' of shape [n], with the session as the only source and sink of
// weights. This file holds only how they come and go (the weight source, see
// weight-source-ema.js); the session's calls are asynchronous, and so are the
// EMA's calls that read or write them.
//
// The adapter never imports onnxruntime-web: the user passes the session they
// created, so this module stays free of a heavy optional dependency and works
// with whichever copy of the bundle the user loaded (in Node that has to be
// dist/ort.training.wasm.min.mjs by file path, as './training' maps node to
// null). The session is checked by shape (duck typing), not by class.

import { bytesOf } from '../bytes.js';
import { clip, describe } from '../describe.js';
import { objectTarget } from '../scope.js';
import { lengthOf, typedArrayKind } from '../typed-arrays.js';
import { createWeightSourceEma, liveEmaOf, WeightSourceEma } from './weight-source-ema.js';

const SLOT = 'parameters';
const SESSION_METHODS = ['getParametersSize', 'getContiguousParameters', 'loadParametersBuffer'];

const ORT = Object.freeze({
  create: 'createOrtEma',
  options: [],
  weightsIn: 'the session',
  open: (session, _ownOptions, method) => OrtSession.open(session, method),
});

/**
 * Creates an EMA of a TrainingSession's trainable parameters; the shadow
 * starts as a copy of them (as LitEma does).
 */
export async function createOrtEma(session, options = {}) {
  return createWeightSourceEma(OrtEma, ORT, session, options);
}

export class OrtEma extends WeightSourceEma {
  #size;

  /** @private Use createOrtEma(). */
  constructor(ema, source, kind) {
    super(ema, source, kind);
    this.#size = source.size;
  }

  /** Number of trainable parameters tracked (getParametersSize(true)). */
  get size() {
    liveEmaOf(this, 'size');
    return this.#size;
  }

  /** A copy of the whole EMA vector, in getContiguousParameters order; `options.profile` picks a profile. */
  shadow(options) {
    return super.shadow(SLOT, options);
  }

  // The session's calls return promises: so do these, refusals included.

  /**
   * One EMA step with the session's current trainable parameters (call it
   * after runOptimizerStep); `options.step` is timm's step.
   */
  async update(options) {
    return super.update(options);
  }

  async copyTo(options) {
    return super.copyTo(options);
  }

  async store() {
    return super.store();
  }

  async restore() {
    return super.restore();
  }
}

/** The weight source: the session, read with getContiguousParameters and written with loadParametersBuffer. */
class OrtSession {
  #session;

  constructor(session, size) {
    this.#session = session;
    this.size = size;
    this.owner = 'an onnxruntime-web EMA';
    this.targets = [objectTarget('the session', session)];
    this.slots = [{ name: SLOT, length: size }];
  }

  static async open(session, method) {
    checkSession(session, method);
    const size = await session.getParametersSize(true);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new Error(
        `ema-wasm: ${method}: session.getParametersSize(true) must give a non-negative integer, got ${describe(size)}`,
      );
    }
    if (size === 0) {
      // An EMA of nothing is certainly a mistake (a session without trainable
      // parameters, or a checkpoint that froze them all): say so now.
      throw new Error(`ema-wasm: ${method}: the session has no trainable parameters (getParametersSize(true) is 0)`);
    }
    return new OrtSession(session, size);
  }

  /**
   * The trainable parameters, checked: a float32 tensor of `size` values.
   * Its array may be a view into someone else's memory; the core only
   * copies from it, at once.
   */
  async read(method) {
    const tensor = await this.#session.getContiguousParameters(true);
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
    if (lengthOf(data) !== this.size) {
      throw new Error(
        `ema-wasm: ${method}: session.getContiguousParameters(true) gave ${lengthOf(data)} parameters; ` +
          `the EMA tracks ${this.size}`,
      );
    }
    return [{ name: SLOT, data, shape: [this.size] }];
  }

  async write(valueOf, method) {
    const values = valueOf(SLOT);
    try {
      await this.#session.loadParametersBuffer(bytesOf(values), true);
    } catch (error) {
      throw new Error(`ema-wasm: ${method}: the session refused the EMA weights: ${error?.message ?? error}`, { cause: error });
    }
  }

  async writeBack(values, method) {
    try {
      await this.#session.loadParametersBuffer(bytesOf(values.get(SLOT)), true);
    } catch (error) {
      // No cause of its own: withEma makes the error its fn threw the cause.
      throw new Error(
        `ema-wasm: ${method}: could not load the stored weights back into the session (${error?.message ?? error}); ` +
          'they stay stored in the EMA: call restore() to try again',
      );
    }
  }
}

function checkSession(session, method) {
  const expected =
    'an onnxruntime-web TrainingSession (an object with getParametersSize, ' +
    'getContiguousParameters and loadParametersBuffer methods)';
  if (session === null || typeof session !== 'object') {
    throw new TypeError(`ema-wasm: ${method}: session must be ${expected}, got ${describe(session)}`);
  }
  const missing = SESSION_METHODS.filter((name) => typeof session[name] !== 'function');
  if (missing.length > 0) {
    // The peer range is open (it must never block an install), so the
    // version check happens here: what a session without the training API
    // most likely is, and which onnxruntime-web has one.
    const inference = typeof session.run === 'function' && missing.length === SESSION_METHODS.length;
    throw new TypeError(
      `ema-wasm: ${method}: session must be ${expected}, got ${describe(session)} ` +
        `without ${missing.join(', ')}${inference ? ' (an InferenceSession, which cannot train)' : ''}. ` +
        "onnxruntime-web's training API (TrainingSession, from 'onnxruntime-web/training') exists only in " +
        'versions 1.17.0 to 1.19.2 (1.19.2 in Node); it was removed in 1.20.',
    );
  }
}
