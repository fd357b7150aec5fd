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

import { clip, describe, listSome, quoteList } from '../describe.js';
import { adapterAccess, EMA_OPTION_DEFAULTS, prepareEma } from '../ema.js';
import { readOptions } from '../resolve.js';
import { checkFree, hold, objectTarget } from '../scope.js';

const OPTION_KEYS = [...Object.keys(EMA_OPTION_DEFAULTS).filter((key) => key !== 'resident'), 'tf'];

/** The tf.Variable behind a LayerVariable (or the variable itself). */
function tensorOf(variable, read) {
  return typeof read === 'function' ? read.call(variable) : variable;
}

/**
 * The variables to track: a LayersModel's trainableWeights (LayerVariables),
 * or an array of tf.Variable / LayerVariable. Each is read once into
 * { variable, tensor, name, shape }: `tensor` is the tf.Variable itself, the
 * identity by which two EMAs of one model see that they share a weight.
 */
function resolveVariables(modelOrVariables) {
  const weights = modelOrVariables?.trainableWeights;
  const source = Array.isArray(weights) ? weights : modelOrVariables;
  if (!Array.isArray(source)) {
    throw new TypeError(
      'ema-wasm: createTfjsEma: expected a tf.LayersModel or an array of tf.Variable, ' +
        `got ${describe(modelOrVariables)}`,
    );
  }
  return source.slice().map((variable, index) => {
    const expected = `ema-wasm: createTfjsEma: variable ${index} must be a tf.Variable or LayerVariable`;
    if (variable === null || typeof variable !== 'object') throw new TypeError(`${expected}, got ${describe(variable)}`);
    const { name, shape, dtype, read, dataSync, isDisposed: disposed } = variable;
    if (typeof name !== 'string' || !Array.isArray(shape) || (typeof read !== 'function' && typeof dataSync !== 'function')) {
      throw new TypeError(`${expected} (with a name, a shape and read() or dataSync()), got ${describe(variable)}`);
    }
    if (dtype !== undefined && dtype !== 'float32') {
      throw new TypeError(`ema-wasm: createTfjsEma: variable '${clip(name)}' has dtype ${dtype}; only float32 is supported`);
    }
    if (disposed === true) {
      throw new Error(`ema-wasm: createTfjsEma: variable '${clip(name)}' was disposed`);
    }
    const tensor = tensorOf(variable, read);
    if (tensor === null || typeof tensor !== 'object' || typeof tensor.dataSync !== 'function') {
      throw new TypeError(
        `ema-wasm: createTfjsEma: variable '${clip(name)}'.read() must give a tf.Variable (with dataSync()), got ${describe(tensor)}`,
      );
    }
    return { variable, tensor, name, shape: shape.slice() };
  });
}

function isDisposed({ variable, tensor }) {
  return variable.isDisposed === true || tensor.isDisposed === true;
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

function readValues({ tensor }, tf) {
  return (tf === undefined ? null : wasmBackendView(tf, tensor)) ?? tensor.dataSync();
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
  if (options !== null && typeof options === 'object' && Object.hasOwn(options, 'resident')) {
    throw new TypeError(
      "ema-wasm: createTfjsEma: option 'resident' is not available here: the weights live in TF.js variables",
    );
  }
  const { tf: tfOption, ...emaOptions } = readOptions(options, OPTION_KEYS, 'createTfjsEma');
  const variables = resolveVariables(modelOrVariables);
  const tf = await loadTf(tfOption);
  const create = await prepareEma(emaOptions, 'createTfjsEma');
  // After the last await: read the values and copy them in, in one go.
  refuseDisposed(variables, 'createTfjsEma');
  checkFree('createTfjsEma', () => targetsOf(variables), 'read');
  const ema = create(variables.map((v) => ({ name: v.name, data: readValues(v), shape: v.shape })));
  return new TfjsEma(ema, variables, tf);
}

export class TfjsEma {
  #ema;
  #variables;
  #targets; // what this EMA's calls touch (scope.js), built once
  #tf;
  #scope; // the core EMA's own, so that `.ema` is refused inside withEma too

  /** @private Use createTfjsEma(). */
  constructor(ema, variables, tf) {
    this.#ema = ema;
    this.#variables = variables;
    this.#targets = targetsOf(variables);
    this.#tf = tf;
    this.#scope = adapterAccess.scopeOf(ema);
  }

  /** The underlying core EMA (names are the variable names). */
  get ema() {
    return TfjsEma.#emaOf(this, 'ema');
  }

  get numUpdates() {
    return TfjsEma.#emaOf(this, 'numUpdates').numUpdates;
  }

  get decay() {
    return TfjsEma.#emaOf(this, 'decay').decay;
  }

  get names() {
    return TfjsEma.#emaOf(this, 'names').names;
  }

  get simd() {
    return TfjsEma.#emaOf(this, 'simd').simd;
  }

  /** One EMA step from the variables' current values; returns the decay used. */
  update() {
    return this.#holding('update', 'read', () => this.#ema.update(this.#readParams('update')));
  }

  /**
   * Writes the EMA weights into the variables. Disposed variables are refused
   * before anything is written; a variable whose assign throws is named, and
   * those written before it keep the EMA weights.
   */
  copyTo() {
    this.#holding('copyTo', 'write', () => this.#writeShadows('copyTo'));
  }

  /** Snapshots the variables' current values. */
  store() {
    this.#holding('store', 'read', () => this.#ema.store(this.#readParams('store')));
  }

  /**
   * Writes the snapshot taken by store() back into every variable that can
   * take it, then throws one Error naming those that could not.
   */
  restore() {
    this.#holding('restore', 'write', () => this.#writeSnapshot('restore'));
  }

  /**
   * Runs `await fn()` with the EMA weights in the model, then puts the
   * training weights back, even if fn throws. Returns what fn returns.
   * While it runs, no EMA may touch these variables.
   */
  async withEma(fn) {
    TfjsEma.#emaOf(this, 'withEma');
    if (typeof fn !== 'function') {
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}`);
    }
    return this.#scope.run('withEma', () => this.#owner(), this.#targets, {
      store: () => adapterAccess.store(this.#ema, this.#readParams('withEma'), 'withEma'),
      swapIn: () => this.#writeShadows('withEma'),
      restore: () => this.#writeSnapshot('withEma'),
    }, fn);
  }

  /**
   * A callback for `model.fit(x, y, { callbacks: [ema.callback()] })` that
   * applies one EMA step after every batch (after the optimizer's step).
   */
  callback() {
    TfjsEma.#emaOf(this, 'callback');
    return {
      onBatchEnd: async () => {
        this.update();
      },
    };
  }

  resetNumUpdates() {
    TfjsEma.#emaOf(this, 'resetNumUpdates').resetNumUpdates();
  }

  /** A copy of the EMA weights of one variable, by name. */
  shadow(name) {
    return TfjsEma.#emaOf(this, 'shadow').shadow(name);
  }

  /** LitEma's state_dict of the EMA (see Ema.stateDict). */
  stateDict() {
    return TfjsEma.#emaOf(this, 'stateDict').stateDict();
  }

  dispose() {
    TfjsEma.#emaOf(this, 'dispose');
    this.#scope.check('dispose');
    this.#ema.dispose();
  }

  /**
   * The core EMA of `adapter` for a call of `method`, or a TypeError when the
   * method was called on something that is not a TfjsEma.
   */
  static #emaOf(adapter, method) {
    if (adapter === null || typeof adapter !== 'object' || !(#ema in adapter)) {
      throw new TypeError(
        `ema-wasm: ${method}: called on ${describe(adapter)}, not on a TF.js EMA; call it as ema.${method}, ` +
          `or bind it (ema.${method}.bind(ema)) before passing it as a callback`,
      );
    }
    return adapter.#ema;
  }

  /**
   * Runs `action` with the variables held (scope.js). The TF.js calls in it
   * (dataSync, tf.tensor, assign) may run code of the caller's (wrapped or
   * fake variables); holding keeps a withEma that code starts off these
   * variables until this call is done.
   */
  #holding(method, mode, action) {
    TfjsEma.#emaOf(this, method);
    this.#scope.check(method);
    const release = hold(method, () => this.#owner(), this.#targets, mode);
    try {
      return action();
    } finally {
      release();
    }
  }

  #owner() {
    return `a TF.js EMA of ${quoteList(this.#variables.map(({ name }) => name))}`;
  }

  #readParams(method) {
    refuseDisposed(this.#variables, method);
    return this.#variables.map((v) => ({ name: v.name, data: readValues(v, this.#tf), shape: v.shape }));
  }

  /**
   * Every variable gets its shadow. Disposed variables are refused before
   * anything is written; a variable that refuses the write is named.
   */
  #writeShadows(method) {
    refuseDisposed(this.#variables, method);
    const failures = this.#writeEach((name) => this.#ema.shadow(name));
    if (failures.length > 0) {
      throw new Error(`ema-wasm: ${method}: could not write the EMA weights into ${listSome(failures)}`);
    }
  }

  /**
   * Writes the stored weights into every variable that is still there, and
   * then names each one that could not take them. The snapshot stays stored.
   */
  #writeSnapshot(method) {
    const targets = this.#variables.map(({ name, shape }) => ({ name, data: new Float32Array(sizeOf(shape)) }));
    // Into arrays of our own, which cannot fail; throws, changing nothing,
    // if nothing is stored.
    adapterAccess.restore(this.#ema, targets, method);
    const restored = new Map(targets.map(({ name, data }) => [name, data]));
    const failures = this.#writeEach((name) => restored.get(name));
    if (failures.length > 0) {
      throw new Error(
        `ema-wasm: ${method}: could not write the stored weights back into ${failures.length} of ` +
          `${this.#variables.length} variables: ${listSome(failures)}. Every other variable was restored; the ` +
          'stored weights stay in the EMA, so restore() can write them back once those variables exist',
      );
    }
  }

  /**
   * Assigns valuesOf(name) to each variable that is not disposed; returns
   * "'name' (why)" for each one that could not be written. The arrays must be
   * our own copies: the cpu backend keeps the array given to tf.tensor().
   */
  #writeEach(valuesOf) {
    const failures = [];
    for (const entry of this.#variables) {
      const { variable, name, shape } = entry;
      if (isDisposed(entry)) {
        failures.push(`'${clip(name)}' (it was disposed)`);
        continue;
      }
      try {
        const tensor = this.#tf.tensor(valuesOf(name), shape, 'float32');
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
      } catch (error) {
        failures.push(`'${clip(name)}' (${error?.message ?? error})`);
      }
    }
    return failures;
  }
}

function refuseDisposed(variables, method) {
  const disposed = variables.filter(isDisposed);
  if (disposed.length > 0) {
    const one = disposed.length === 1;
    const names = quoteList(disposed.map(({ name }) => name));
    throw new Error(`ema-wasm: ${method}: ${one ? 'variable' : 'variables'} ${names} ${one ? 'was' : 'were'} disposed`);
  }
}

/** What calls on these variables touch, for the scopes (scope.js): the tf.Variable objects. */
function targetsOf(variables) {
  return variables.map(({ name, tensor }) => objectTarget(`variable '${clip(name)}'`, tensor));
}

function sizeOf(shape) {
  return shape.reduce((product, dimension) => product * dimension, 1);
}
