// ema-wasm/tfjs: an EMA of a TensorFlow.js model's trainable weights.
//
// TF.js is a peer dependency and is never bundled: the adapter needs only
// `tf.tensor`, taken from `options.tf` or, when that is absent, from
// '@tensorflow/tfjs-core' (which every TF.js install includes). Pass your `tf`
// explicitly in browsers without an import map.
//
// Two rules of the TF.js side shape this file:
// - Reading: `dataSync()` per variable is the cheapest read (no tf.concat, no
//   new tensor); the core copies the values into its staging window at once,
//   so the array TF.js returned is never kept.
// - Writing: the cpu backend keeps a reference to the array given to
//   tf.tensor(), so it always gets a fresh copy, never a view into Wasm memory
//   (which dies when that memory grows).

import { createEma } from '../ema.js';
import { describe } from '../params.js';
import { EmaScope } from '../scope.js';

const ADAPTER_OPTIONS = ['tf'];

function isVariableLike(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.name === 'string' &&
    Array.isArray(value.shape) &&
    (typeof value.read === 'function' || typeof value.dataSync === 'function')
  );
}

/**
 * The variables to track: a LayersModel's trainableWeights (LayerVariables),
 * or an array of tf.Variable / LayerVariable.
 */
function resolveVariables(modelOrVariables) {
  const source = Array.isArray(modelOrVariables?.trainableWeights)
    ? modelOrVariables.trainableWeights
    : modelOrVariables;
  if (!Array.isArray(source)) {
    throw new TypeError(
      'ema-wasm: createTfjsEma: expected a tf.LayersModel or an array of tf.Variable, ' +
        `got ${describe(modelOrVariables)}`,
    );
  }
  source.forEach((variable, index) => {
    if (!isVariableLike(variable)) {
      throw new TypeError(
        `ema-wasm: createTfjsEma: variable ${index} must be a tf.Variable or LayerVariable, got ${describe(variable)}`,
      );
    }
    if (variable.dtype !== undefined && variable.dtype !== 'float32') {
      throw new TypeError(
        `ema-wasm: createTfjsEma: variable '${variable.name}' has dtype ${variable.dtype}; only float32 is supported`,
      );
    }
  });
  return source.slice();
}

/** The tf.Variable behind a LayerVariable (or the variable itself). */
function tensorOf(variable) {
  return typeof variable.read === 'function' ? variable.read() : variable;
}

/**
 * On TF.js's wasm backend, a view of the variable's values in that backend's
 * own memory, or null elsewhere. dataSync() there allocates a fresh array per
 * call, and at 1M parameters per update the garbage collector's work on those
 * costs ~40x the update itself; a view costs nothing. It reads TF.js's
 * internal tables (backend.dataIdMap, backend.wasm.HEAPU8), checked at each
 * step, and falls back to dataSync() if they ever change. The view is only
 * read right away by the core, which copies it; it is never kept.
 */
function wasmBackendView(tf, tensor) {
  if (typeof tf.getBackend !== 'function' || tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend();
  const info = backend?.dataIdMap?.get?.(tensor.dataId);
  const heap = backend?.wasm?.HEAPU8;
  if (info === undefined || !(heap instanceof Uint8Array) || info.dtype !== 'float32') return null;
  const size = sizeOf(tensor.shape);
  const offset = info.memoryOffset;
  if (!Number.isInteger(offset) || offset % 4 !== 0 || offset + size * 4 > heap.buffer.byteLength) return null;
  return new Float32Array(heap.buffer, offset, size);
}

function readValues(variable, tf) {
  const tensor = tensorOf(variable);
  const view = tf === undefined ? null : wasmBackendView(tf, tensor);
  if (view !== null) return view;
  const values = tensor.dataSync();
  if (!(values instanceof Float32Array)) {
    throw new TypeError(`ema-wasm: variable '${variable.name}' did not read as a Float32Array`);
  }
  return values;
}

async function loadTf(tf) {
  if (tf !== undefined) {
    if (typeof tf?.tensor !== 'function') {
      throw new TypeError(`ema-wasm: createTfjsEma: options.tf must be the TensorFlow.js namespace, got ${describe(tf)}`);
    }
    return tf;
  }
  try {
    return await import('@tensorflow/tfjs-core');
  } catch (error) {
    throw new Error(
      'ema-wasm: createTfjsEma could not import @tensorflow/tfjs-core; install @tensorflow/tfjs ' +
        `or pass your tf namespace as options.tf (${error.message})`,
    );
  }
}

/**
 * Creates an EMA of the trainable weights of a tf.LayersModel (or of a list
 * of tf.Variable), keyed by variable name, starting from their current values.
 */
export async function createTfjsEma(modelOrVariables, options = {}) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`ema-wasm: createTfjsEma: options must be an object, got ${describe(options)}`);
  }
  const { tf: tfOption, ...emaOptions } = options;
  if ('resident' in emaOptions) {
    throw new TypeError(
      "ema-wasm: createTfjsEma: option 'resident' is not available here: the weights live in TF.js variables",
    );
  }
  const variables = resolveVariables(modelOrVariables);
  const tf = await loadTf(tfOption);
  const params = variables.map((variable) => ({
    name: variable.name,
    data: readValues(variable),
    shape: variable.shape.slice(),
  }));
  let ema;
  try {
    ema = await createEma(params, emaOptions);
  } catch (error) {
    // createEma names its own options; ours are valid too.
    if (error instanceof TypeError && error.message.includes('unknown option')) {
      error.message += `, ${ADAPTER_OPTIONS.join(', ')}`;
    }
    throw error;
  }
  return new TfjsEma(ema, variables, tf);
}

export class TfjsEma {
  #ema;
  #variables;
  #tf;
  #scope = new EmaScope();

  /** @private Use createTfjsEma(). */
  constructor(ema, variables, tf) {
    this.#ema = ema;
    this.#variables = variables;
    this.#tf = tf;
  }

  /** The underlying core EMA (names are the variable names). */
  get ema() {
    return this.#ema;
  }

  get numUpdates() {
    return this.#ema.numUpdates;
  }

  get decay() {
    return this.#ema.decay;
  }

  get names() {
    return this.#ema.names;
  }

  get simd() {
    return this.#ema.simd;
  }

  /** One EMA step from the variables' current values; returns the decay used. */
  update() {
    this.#scope.check('update');
    return this.#ema.update(this.#readParams('update'));
  }

  /** Writes the EMA weights into the variables. */
  copyTo() {
    this.#scope.check('copyTo');
    this.#writeShadows();
  }

  /** Snapshots the variables' current values. */
  store() {
    this.#scope.check('store');
    this.#ema.store(this.#readParams('store'));
  }

  /** Writes the snapshot taken by store() back into the variables. */
  restore() {
    this.#scope.check('restore');
    this.#writeSnapshot();
  }

  #writeSnapshot() {
    const targets = this.#variables.map((variable) => ({
      name: variable.name,
      data: new Float32Array(sizeOf(variable.shape)),
    }));
    this.#ema.restore(targets); // throws, changing nothing, if nothing is stored
    const restored = new Map(targets.map(({ name, data }) => [name, data]));
    this.#writeAll((name) => restored.get(name));
  }

  #writeShadows() {
    this.#writeAll((name) => this.#ema.shadow(name));
  }

  /**
   * Runs `await fn()` with the EMA weights in the model, then puts the
   * training weights back, even if fn throws. Returns what fn returns.
   */
  async withEma(fn) {
    if (typeof fn !== 'function') {
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}`);
    }
    return this.#scope.run('withEma', {
      store: () => this.#ema.store(this.#readParams('withEma')),
      swapIn: () => this.#writeShadows(),
      restore: () => this.#writeSnapshot(),
    }, fn);
  }

  /**
   * A callback for `model.fit(x, y, { callbacks: [ema.callback()] })` that
   * applies one EMA step after every batch (after the optimizer's step).
   */
  callback() {
    return {
      onBatchEnd: async () => {
        this.update();
      },
    };
  }

  resetNumUpdates() {
    this.#ema.resetNumUpdates();
  }

  /** A copy of the EMA weights of one variable, by name. */
  shadow(name) {
    return this.#ema.shadow(name);
  }

  /** LitEma's state_dict of the EMA (see Ema.stateDict). */
  stateDict() {
    return this.#ema.stateDict();
  }

  dispose() {
    this.#scope.check('dispose');
    this.#ema.dispose();
  }

  #checkVariables(method) {
    for (const variable of this.#variables) {
      if (variable.isDisposed === true || tensorOf(variable).isDisposed === true) {
        throw new Error(`ema-wasm: ${method}: variable '${variable.name}' was disposed`);
      }
    }
  }

  #readParams(method) {
    this.#checkVariables(method);
    return this.#variables.map((variable) => ({
      name: variable.name,
      data: readValues(variable, this.#tf),
      shape: variable.shape,
    }));
  }

  /**
   * Assigns valuesOf(name) to every variable; the arrays must be our own
   * copies. Every variable is checked first, so a disposed one cannot leave
   * the model half written.
   */
  #writeAll(valuesOf) {
    this.#checkVariables('writing weights');
    const values = this.#variables.map((variable) => valuesOf(variable.name));
    this.#variables.forEach((variable, index) => {
      const tensor = this.#tf.tensor(values[index], variable.shape, 'float32');
      try {
        if (typeof variable.write === 'function') {
          variable.write(tensor);
        } else {
          variable.assign(tensor);
        }
      } finally {
        // assign() takes its own reference to the data; ours can go.
        tensor.dispose();
      }
    });
  }
}

function sizeOf(shape) {
  return shape.reduce((product, dimension) => product * dimension, 1);
}
