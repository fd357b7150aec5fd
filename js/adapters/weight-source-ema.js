// The base of the adapters (tfjs.js, ort.js): an EMA of weights that live
// outside it, in TF.js variables or an onnxruntime-web session.
//
// An adapter supplies only a weight source: what its calls hold (scope.js),
// how to read the weights as the params the core EMA takes, and how to write
// values into them. Everything else is here, the same for every adapter:
// options, creating the core EMA, the members forwarded to it, save and
// loadState, store/restore, the withEma scope, dispose, and the errors.
//
// A kind of adapter is described by a plain object:
//
//   create    its create function's name ('createTfjsEma'), for messages
//   options   its own option keys, besides the core's (all but 'resident':
//             recipe, nonFinite, simd, wasm and every recipe's options)
//   weightsIn where its weights live, to say why 'resident' is refused
//   open(target, ownOptions, method)
//             checks what was passed for weights and loads what reaching
//             them needs; gives (or resolves to) the weight source
//
// and a weight source, one per EMA, by:
//
//   owner     names the EMA in scope refusals (a string, or a function
//             giving one, called only for a message)
//   targets   what its calls touch, for scope.js (built once)
//   slots     [{ name, length }]: the weights, in the core EMA's order
//   read(method)             the weights now, as params for the core EMA
//   write(valueOf, method)   writes valueOf(name) into every weight for which
//                            it is not undefined
//   writeBack(values, method) puts values.get(name) back into every weight
//                            it can, then throws naming those it could not
//
// valueOf(name) and values.get(name) are fresh Float32Arrays the source may
// keep (never views into Wasm memory). A source is synchronous (TF.js) or
// asynchronous (onnxruntime-web): read and the writes return values or
// promises, and every method here returns what the source gives, chained by
// then(). A synchronous source stays synchronous: nothing waits, so no other
// code runs between reading the weights and copying them into the arena.

import { describe, wrongReceiver } from '../describe.js';
import { adapterAccess, EMA_OPTION_DEFAULTS, prepareEma, startThreads } from '../ema.js';
import { ALL_RECIPE_OPTION_KEYS } from '../recipes.js';
import { readOptions } from '../resolve.js';
import { hold } from '../scope.js';

// createEma's own (recipe, nonFinite, simd, ...) and every recipe's options
// (the core checks which the chosen recipe has), in createEma's order.
const CORE_OPTION_KEYS = [...new Set([...Object.keys(EMA_OPTION_DEFAULTS), ...ALL_RECIPE_OPTION_KEYS])].filter(
  (key) => key !== 'resident',
);

/**
 * Creates an `Adapter` (a subclass of WeightSourceEma) of the weights
 * `target` stands for: reads the options once, prepares the core EMA, opens
 * the weight source, then reads the weights and copies them in with the
 * source held, so that no withEma of another EMA of these weights can swap
 * its own in meanwhile.
 */
export async function createWeightSourceEma(Adapter, kind, target, options) {
  const method = kind.create;
  if (options !== null && typeof options === 'object' && Object.hasOwn(options, 'resident')) {
    throw new TypeError(`ema-wasm: ${method}: option 'resident' is not available here: the weights live in ${kind.weightsIn}`);
  }
  const values = readOptions(options, [...CORE_OPTION_KEYS, ...kind.options], method);
  const coreValues = {};
  const ownValues = {};
  for (const key of Object.keys(values)) {
    if (kind.options.includes(key)) ownValues[key] = values[key];
    else coreValues[key] = values[key];
  }
  const create = await prepareEma(coreValues, method);
  const source = await kind.open(target, ownValues, method);
  const adapter = await holding(method, source, 'read', () => then(source.read(method), (params) => new Adapter(create(params), source, kind)));
  // The workers start after the weights are read (the threads build; see createEma).
  await startThreads(liveEmaOf(adapter, method), method);
  return adapter;
}

/** See WeightSourceEma's static block: the checked core EMA, for an adapter's own members. */
export let liveEmaOf;

export class WeightSourceEma {
  #ema; // the core Ema; null once disposed
  #source; // null once disposed
  #kind;
  #scope; // the core EMA's own, so that `.ema` is refused inside withEma too
  #stored = false; // whether this adapter's store() (or withEma) has run
  #overwrites; // whether a step may write the averages into the weights (Keras's emaOverwriteFrequency)

  /** @private Use the adapter's create function. */
  constructor(ema, source, kind) {
    this.#ema = ema;
    this.#source = source;
    this.#kind = kind;
    this.#scope = adapterAccess.scopeOf(ema);
    this.#overwrites = ema.options.emaOverwriteFrequency != null;
  }

  // ---- state, forwarded to the core EMA ------------------------------------

  /** The underlying core EMA, for advanced use; its store/restore share this adapter's snapshot. */
  get ema() {
    return WeightSourceEma.#live(this, 'ema');
  }

  /** Updates since creation or reset; -1 when warmup is off. */
  get numUpdates() {
    return WeightSourceEma.#live(this, 'numUpdates').numUpdates;
  }

  /** The base decay, as the float32 value LitEma stores. */
  get decay() {
    return WeightSourceEma.#live(this, 'decay').decay;
  }

  get names() {
    return WeightSourceEma.#live(this, 'names').names;
  }

  /** True when the SIMD128 build runs, false for the scalar build. */
  get simd() {
    return WeightSourceEma.#live(this, 'simd').simd;
  }

  /** Which build runs: 'threads', 'simd' or 'scalar'. */
  get build() {
    return WeightSourceEma.#live(this, 'build').build;
  }

  /** Threads an update uses (see Ema.threads). */
  get threads() {
    return WeightSourceEma.#live(this, 'threads').threads;
  }

  /** Whether update() returns before the averaging ends (see Ema.background). */
  get background() {
    return WeightSourceEma.#live(this, 'background').background;
  }

  /** The power recipe's profiles (see Ema.profiles); null for other recipes. */
  get profiles() {
    return WeightSourceEma.#live(this, 'profiles').profiles;
  }

  /** Updates that averaged or copied (see Ema.steps). */
  get steps() {
    return WeightSourceEma.#live(this, 'steps').steps;
  }

  /** A copy of the EMA weights of one weight, by name; `options.profile` picks a profile. */
  shadow(name, options) {
    return WeightSourceEma.#live(this, 'shadow').shadow(name, options);
  }

  /** LitEma's state_dict (see Ema.stateDict); every value is a copy. */
  stateDict(options) {
    return WeightSourceEma.#live(this, 'stateDict').stateDict(options);
  }

  /** Snapshots of every profile for post-hoc EMA (see Ema.snapshot). */
  snapshot(options) {
    return WeightSourceEma.#live(this, 'snapshot').snapshot(options);
  }

  /** LitEma.reset_num_updates(): the counter goes to 0, turning warmup on. */
  resetNumUpdates() {
    WeightSourceEma.#live(this, 'resetNumUpdates').resetNumUpdates();
  }

  /** The EMA as a safetensors file (see Ema.save). */
  save(options) {
    return WeightSourceEma.#live(this, 'save').save(options);
  }

  /**
   * Loads a safetensors file into the EMA (see Ema.loadState). The weights
   * are not touched: copyTo() writes the loaded shadows into them.
   */
  async loadState(bytes, options) {
    return WeightSourceEma.#live(this, 'loadState').loadState(bytes, options);
  }

  // ---- what reads or writes the weights -------------------------------------

  /**
   * One EMA step from the weights' current values; returns what the core
   * EMA's update() returns: { action, decay, weight, counter, overwrote,
   * nonFinite }. `options.step` is timm's step, `options.samples` the power
   * recipe's samples in this step (read once, checked by the core). When the step overwrites (Keras's emaOverwriteFrequency), the
   * averages are written into the weights through the source before it
   * settles.
   */
  update(options = undefined) {
    WeightSourceEma.#live(this, 'update');
    const updateOptions = options === undefined ? undefined : { ...readOptions(options, ['step', 'samples'], 'update') };
    const overwrites = this.#overwrites;
    return WeightSourceEma.#holding(this, 'update', overwrites ? 'write' : 'read', (source) =>
      then(source.read('update'), (params) => {
        const ema = WeightSourceEma.#live(this, 'update');
        if (!overwrites) return ema.update(params, updateOptions);
        // The core writes the averages into the arrays it steps from: give it
        // copies, never the source's own (a view into TF.js's memory), and
        // write them into the weights the source's way.
        const result = ema.update(params.map((param) => ({ ...param, data: new Float32Array(param.data) })), updateOptions);
        return result.overwrote ? then(this.#writeShadows(source, 'update'), () => result) : result;
      }),
    );
  }

  /** LitEma.copy_to: writes the EMA weights into the weights; `options.profile` picks a profile. */
  copyTo(options = undefined) {
    const profile = adapterAccess.profileOf(WeightSourceEma.#live(this, 'copyTo'), options, 'copyTo');
    return WeightSourceEma.#holding(this, 'copyTo', 'write', (source) => this.#writeShadows(source, 'copyTo', profile));
  }

  /** LitEma.store: snapshots the weights' current values, replacing an earlier snapshot. */
  store() {
    return WeightSourceEma.#holding(this, 'store', 'read', (source) => this.#storeFrom(source, 'store'));
  }

  /**
   * LitEma.restore: writes the snapshot back into every weight that can take
   * it, then throws naming those that could not; the snapshot stays stored.
   */
  restore() {
    return WeightSourceEma.#holding(this, 'restore', 'write', (source) => this.#writeStored(source, 'restore'));
  }

  /**
   * LitEma's ema_scope: store, copyTo, `await fn()`, then restore even if fn
   * (or copyTo) throws. Returns what fn returns. The weights stay held until
   * the training weights are back, so no call of any EMA of them can land in
   * between. `options.profile` picks the profile swapped in.
   */
  async withEma(fn, options = undefined) {
    WeightSourceEma.#live(this, 'withEma');
    if (typeof fn !== 'function') {
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}`);
    }
    const profile = adapterAccess.profileOf(WeightSourceEma.#live(this, 'withEma'), options, 'withEma');
    const source = this.#source;
    return this.#scope.run('withEma', source.owner, source.targets, {
      store: () => this.#storeFrom(source, 'withEma'),
      swapIn: () => this.#writeShadows(source, 'withEma', profile),
      restore: () => this.#writeStored(source, 'withEma'),
    }, fn);
  }

  /** Frees the arena; every later call throws. Calling it again does nothing. The weights are not touched. */
  dispose() {
    if (!WeightSourceEma.#isAdapter(this)) WeightSourceEma.#live(this, 'dispose'); // throws: not an adapter
    if (this.#ema === null) return;
    this.#scope.check('dispose');
    this.#ema.dispose();
    this.#ema = null;
    this.#source = null; // let the model or session be collected even if the EMA is kept
  }

  // ---- internals -------------------------------------------------------------

  /**
   * Runs action(source) with the weights held (scope.js) until what it
   * returns has settled: reading or writing them may run the caller's code
   * (a wrapped variable, a session's promise), and no withEma of any EMA of
   * these weights may swap them in the middle.
   */
  static #holding(adapter, method, mode, action) {
    WeightSourceEma.#live(adapter, method);
    adapter.#scope.check(method);
    const source = adapter.#source;
    return holding(method, source, mode, () => action(source));
  }

  #storeFrom(source, method) {
    return then(source.read(method), (params) => {
      adapterAccess.store(WeightSourceEma.#live(this, method), params, method);
      this.#stored = true;
    });
  }

  /**
   * Each shadow is a fresh copy out of Wasm memory, made when the source
   * asks for it; a weight the recipe does not keep (a buffer LitEma leaves
   * alone) gets undefined, and the source leaves it as it is.
   */
  #writeShadows(source, method, profile = 0) {
    const ema = WeightSourceEma.#live(this, method);
    const kept = new Set(ema.names);
    return source.write((name) => (kept.has(name) ? WeightSourceEma.#live(this, method).shadow(name, { profile }) : undefined), method);
  }

  #writeStored(source, method) {
    const ema = WeightSourceEma.#live(this, method);
    if (!this.#stored) {
      throw new Error(`ema-wasm: ${method}: nothing is stored; call store() first`);
    }
    // Into arrays of our own, which cannot fail: the source then has owned
    // copies, and the snapshot stays stored whatever the source does.
    const values = source.slots.map(({ name, length }) => ({ name, data: new Float32Array(length) }));
    adapterAccess.restore(ema, values, method);
    return source.writeBack(new Map(values.map(({ name, data }) => [name, data])), method);
  }

  static #isAdapter(value) {
    return value !== null && typeof value === 'object' && #ema in value;
  }

  /**
   * The core EMA of `adapter` for a call of `method`: a TypeError when the
   * method was called on something else, an Error once disposed.
   */
  static #live(adapter, method) {
    if (!WeightSourceEma.#isAdapter(adapter)) {
      throw wrongReceiver(method, adapter);
    }
    if (adapter.#ema === null) {
      throw new Error(`ema-wasm: ${method}: this EMA was disposed; create a new one with ${adapter.#kind.create}()`);
    }
    return adapter.#ema;
  }

  static {
    liveEmaOf = (adapter, method) => WeightSourceEma.#live(adapter, method);
  }
}

/** Runs action() with the source's weights held until what it returns has settled. */
function holding(method, source, mode, action) {
  const release = hold(method, source.owner, source.targets, mode);
  let result;
  try {
    result = action();
  } catch (error) {
    release();
    throw error;
  }
  if (result instanceof Promise) return result.finally(release);
  release();
  return result;
}

/** next(value) once `value` is there: at once for a value, once settled for a promise. */
function then(value, next) {
  return value instanceof Promise ? value.then(next) : next(value);
}
