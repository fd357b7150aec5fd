// ema-wasm/tfjs: an EMA of a TensorFlow.js model's trainable weights (and,
// with `buffers: true`, its non-trainable ones, as buffers).
//
// TF.js is a peer dependency and is never bundled: the adapter needs only
// `tf.tensor`, taken from `options.tf` or, when that is absent, from
// '@tensorflow/tfjs-core' (which every TF.js install includes). Pass your `tf`
// explicitly in browsers without an import map.
//
// This file holds only how weights come and go (the weight source, see
// weight-source-ema.js); TF.js calls are synchronous, and so are the EMA's.
// Two rules of the TF.js side shape it:
// - Reading: `dataSync()` per variable is the cheapest read (no tf.concat, no
//   new tensor); the core copies the values into its staging window at once,
//   so the array TF.js returned is never kept.
// - Writing: the cpu backend keeps a reference to the array given to
//   tf.tensor(), so it always gets a fresh copy, never a view into Wasm memory
//   (which dies when that memory grows).

import { clip, describe, listSome, quoteList } from '../describe.js';
import { objectTarget } from '../scope.js';
import { createWeightSourceEma, liveEmaOf, WeightSourceEma } from './weight-source-ema.js';

const TFJS = Object.freeze({
  create: 'createTfjsEma',
  options: ['tf', 'buffers'],
  weightsIn: 'TF.js variables',
  open: (modelOrVariables, { tf, buffers }, method) => TfjsVariables.open(modelOrVariables, tf, buffers, method),
});

/**
 * Creates an EMA of the trainable weights of a tf.LayersModel (or of a list
 * of tf.Variable), keyed by variable name, starting from their current
 * values. `buffers: true` adds the model's nonTrainableWeights (BatchNorm's
 * moving mean and variance) as buffers: recipes that average buffers (timm,
 * ema-pytorch) average them, the others leave them alone.
 */
export async function createTfjsEma(modelOrVariables, options = {}) {
  return createWeightSourceEma(TfjsEma, TFJS, modelOrVariables, options);
}

export class TfjsEma extends WeightSourceEma {
  /**
   * A callback for `model.fit(x, y, { callbacks: [ema.callback()] })` that
   * applies one EMA step after every batch (after the optimizer's step).
   */
  callback() {
    liveEmaOf(this, 'callback');
    return {
      onBatchEnd: async () => {
        this.update();
      },
    };
  }
}

/** The weight source: the variables, read with dataSync() and written with assign(). */
class TfjsVariables {
  #variables; // [{ variable, tensor, name, shape, buffer }], read once
  #tf;

  constructor(variables, tf) {
    this.#variables = variables;
    this.#tf = tf;
    // The tf.Variable objects: two EMAs of one model share them.
    this.targets = variables.map(({ name, tensor }) => objectTarget(`variable '${clip(name)}'`, tensor));
    this.slots = variables.map(({ name, shape }) => ({ name, length: sizeOf(shape) }));
    this.owner = () => `a TF.js EMA of ${quoteList(variables.map(({ name }) => name))}`;
  }

  static async open(modelOrVariables, tf, buffers = false, method) {
    if (typeof buffers !== 'boolean') {
      throw new TypeError(`ema-wasm: ${method}: options.buffers must be a boolean, got ${describe(buffers)}`);
    }
    const variables = resolveVariables(modelOrVariables, buffers, method);
    return new TfjsVariables(variables, await loadTf(tf, method));
  }

  read(method) {
    this.#refuseDisposed(method);
    return this.#variables.map(({ tensor, name, shape, buffer }) => ({ name, data: valuesOf(tensor, this.#tf), shape, buffer }));
  }

  /**
   * Every variable gets its values. Disposed variables are refused before
   * anything is written; a variable whose assign throws is named, and those
   * written before it keep their new values.
   */
  write(valueOf, method) {
    this.#refuseDisposed(method);
    const failures = this.#assignEach(valueOf);
    if (failures.length > 0) {
      throw new Error(`ema-wasm: ${method}: could not write the EMA weights into ${listSome(failures)}`);
    }
  }

  /** Writes the stored weights into every variable that is still there, then names each one that could not take them. */
  writeBack(values, method) {
    const failures = this.#assignEach((name) => values.get(name));
    if (failures.length > 0) {
      throw new Error(
        `ema-wasm: ${method}: could not write the stored weights back into ${failures.length} of ` +
          `${this.#variables.length} variables: ${listSome(failures)}. Every other variable was restored; the ` +
          'stored weights stay in the EMA, so restore() can write them back once those variables exist',
      );
    }
  }

  /**
   * Assigns valueOf(name) to each variable that is not disposed and for
   * which it gives values (a buffer the recipe does not keep gets none);
   * returns "'name' (why)" for each one that could not be written. The
   * arrays must be our own copies: the cpu backend keeps the array given to
   * tf.tensor().
   */
  #assignEach(valueOf) {
    const failures = [];
    for (const entry of this.#variables) {
      const { variable, name, shape } = entry;
      if (isDisposed(entry)) {
        failures.push(`'${clip(name)}' (it was disposed)`);
        continue;
      }
      const values = valueOf(name);
      if (values === undefined) continue;
      try {
        const tensor = this.#tf.tensor(values, shape, 'float32');
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

  #refuseDisposed(method) {
    const disposed = this.#variables.filter(isDisposed);
    if (disposed.length > 0) {
      const one = disposed.length === 1;
      const names = quoteList(disposed.map(({ name }) => name));
      throw new Error(`ema-wasm: ${method}: ${one ? 'variable' : 'variables'} ${names} ${one ? 'was' : 'were'} disposed`);
    }
  }
}

/**
 * The variables to track: a LayersModel's trainableWeights (LayerVariables),
 * with `buffers` its nonTrainableWeights too, or an array of tf.Variable /
 * LayerVariable. Each is read once into { variable, tensor, name, shape,
 * buffer }: `tensor` is the tf.Variable itself, the identity by which two
 * EMAs of one model see that they share a weight.
 */
function resolveVariables(modelOrVariables, buffers, method) {
  const weights = modelOrVariables?.trainableWeights;
  const isModel = Array.isArray(weights);
  const source = isModel ? weights : modelOrVariables;
  if (!Array.isArray(source)) {
    throw new TypeError(
      `ema-wasm: ${method}: expected a tf.LayersModel or an array of tf.Variable, got ${describe(modelOrVariables)}`,
    );
  }
  if (buffers && !isModel) {
    throw new TypeError(
      `ema-wasm: ${method}: options.buffers takes a tf.LayersModel's nonTrainableWeights; with a list of variables, ` +
        'list the buffers among them as an EMA of params would ({ buffer: true })',
    );
  }
  const nonTrainable = buffers ? modelOrVariables.nonTrainableWeights : [];
  if (!Array.isArray(nonTrainable)) {
    throw new TypeError(`ema-wasm: ${method}: the model's nonTrainableWeights must be an array, got ${describe(nonTrainable)}`);
  }
  const all = [...source.map((variable) => [variable, false]), ...nonTrainable.map((variable) => [variable, true])];
  return all.map(([variable, buffer], index) => {
    const expected = `ema-wasm: ${method}: variable ${index} must be a tf.Variable or LayerVariable`;
    if (variable === null || typeof variable !== 'object') throw new TypeError(`${expected}, got ${describe(variable)}`);
    const { name, shape, dtype, read, dataSync, isDisposed: disposed } = variable;
    if (typeof name !== 'string' || !Array.isArray(shape) || (typeof read !== 'function' && typeof dataSync !== 'function')) {
      throw new TypeError(`${expected} (with a name, a shape and read() or dataSync()), got ${describe(variable)}`);
    }
    if (dtype !== undefined && dtype !== 'float32') {
      throw new TypeError(`ema-wasm: ${method}: variable '${clip(name)}' has dtype ${dtype}; only float32 is supported`);
    }
    if (disposed === true) {
      throw new Error(`ema-wasm: ${method}: variable '${clip(name)}' was disposed`);
    }
    // The tf.Variable behind a LayerVariable (or the variable itself).
    const tensor = typeof read === 'function' ? read.call(variable) : variable;
    if (tensor === null || typeof tensor !== 'object' || typeof tensor.dataSync !== 'function') {
      throw new TypeError(
        `ema-wasm: ${method}: variable '${clip(name)}'.read() must give a tf.Variable (with dataSync()), got ${describe(tensor)}`,
      );
    }
    return { variable, tensor, name, shape: shape.slice(), buffer };
  });
}

function isDisposed({ variable, tensor }) {
  return variable.isDisposed === true || tensor.isDisposed === true;
}

async function loadTf(tf, method) {
  if (tf !== undefined) {
    if (typeof tf?.tensor !== 'function') {
      throw new TypeError(`ema-wasm: ${method}: options.tf must be the TensorFlow.js namespace, got ${describe(tf)}`);
    }
    return tf;
  }
  try {
    return await import('@tensorflow/tfjs-core');
  } catch (error) {
    throw new Error(
      `ema-wasm: ${method} could not import @tensorflow/tfjs-core; install @tensorflow/tfjs ` +
        `or pass your tf namespace as options.tf (${error.message})`,
    );
  }
}

/** A variable's values: a view on TF.js's wasm backend (see wasmBackendView), else dataSync(). */
function valuesOf(tensor, tf) {
  return wasmBackendView(tf, tensor) ?? tensor.dataSync();
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

function sizeOf(shape) {
  return shape.reduce((product, dimension) => product * dimension, 1);
}
