// The Ema class: LitEma's API over one instance of the C core.
//
// Every public method reads its arguments once, through the resolution seam
// (resolve.js), checks all of them against the EMA, and only then touches the
// arena, working from what it read with no user code in between. So a call
// that throws leaves the EMA, and every array it was given, exactly as they
// were. The one deliberate exception is restoring (restore, and the end of
// withEma): its job is to give the training weights back, so it writes every
// array it can and then reports the ones it could not (#restoreInto).

import { STATUS, WasmCore } from './core.js';
import { clip, describe, listSome, quoteList } from './describe.js';
import { instantiate, loadModule } from './loader.js';
import { checkFits, creationBytes, inUseBytes, regionBytes, tooLargeMessage } from './memory-budget.js';
import { shadowKeysFor } from './names.js';
import { readOptions, refuseDuplicates, refuseUnusable, resolveParams } from './resolve.js';
import { arrayTarget, checkFree, EmaScope, memoryTarget } from './scope.js';
import {
  checkFileArguments, checkSavableShape, COUNTER_KEY, DECAY_KEY, MAX_NUM_UPDATES, readFileOptions, stateFromDict, stateFromFile, stateToFile,
} from './state.js';
import { copyOf, lengthOf, unusableReason, windowOf, writeInto } from './typed-arrays.js';
import { adoptWasmSource } from './wasm-source.js';

const STAGING_FLOATS = 65536; // EMA_STAGING_FLOATS in include/ema.h
const SEGMENT_CAPACITY = 4096; // EMA_SEGMENT_CAPACITY in include/ema.h
const SEGMENT_WORDS = 3; // ema_segment is { slot, offset, count }, uint32 each
const MAX_SLOTS = 1048576; // EMA_MAX_SLOTS in include/ema.h

/** createEma's options and their defaults. */
// wasm: a module to use instead of the built-in builds (see wasm-source.js).
export const EMA_OPTION_DEFAULTS = Object.freeze({ decay: 0.9999, useNumUpdates: true, simd: 'auto', resident: false, wasm: undefined });
const EMA_OPTION_KEYS = Object.keys(EMA_OPTION_DEFAULTS);

/** Checks option values already read by readOptions(). */
function checkOptionValues(values, method) {
  const { decay, useNumUpdates, simd, resident } = { ...EMA_OPTION_DEFAULTS, ...values };
  // First: a promise given as options.wasm must not reject unhandled when another option is refused.
  const wasm = adoptWasmSource(values.wasm);
  if (typeof decay !== 'number') {
    throw new TypeError(`ema-wasm: ${method}: options.decay must be a number, got ${describe(decay)}`);
  }
  if (!(decay >= 0 && decay <= 1)) {
    throw new RangeError(`ema-wasm: ${method}: options.decay must be in [0, 1], got ${decay}`);
  }
  if (typeof useNumUpdates !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: options.useNumUpdates must be a boolean, got ${describe(useNumUpdates)}`);
  }
  if (simd !== 'auto' && simd !== true && simd !== false) {
    throw new TypeError(`ema-wasm: ${method}: options.simd must be 'auto', true or false, got ${describe(simd)}`);
  }
  if (typeof resident !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: options.resident must be a boolean, got ${describe(resident)}`);
  }
  return { decay, useNumUpdates, simd, resident, wasm };
}

/**
 * Creates an EMA of the trainable entries of `params`, with shadows starting
 * as copies of them (as LitEma does).
 */
export async function createEma(params, options = {}) {
  const create = await prepareEma(readOptions(options, EMA_OPTION_KEYS, 'createEma'), 'createEma');
  return create(params);
}

/**
 * The asynchronous half of creating an EMA: checks option values (read by
 * the caller with readOptions) and compiles the build. Returns
 * create(params), which reads `params` and builds the EMA synchronously, so
 * nothing can run between reading the arrays and copying them into the arena.
 * The adapters use it with their own method name and option list.
 */
export async function prepareEma(optionValues, method) {
  const { decay, useNumUpdates, simd, resident, wasm } = checkOptionValues(optionValues, method);
  const { module, build } = await loadModule(simd, wasm, method);
  return (params) => {
    const entries = resolveParams(params, method);
    refuseDuplicates(entries, method);
    refuseUnusable(entries, method);
    const tracked = entries.filter((entry) => entry.trainable);
    // Arrays another EMA's withEma holds have EMA weights in them just now.
    checkFree(method, () => targetsOf(tracked), 'read');
    if (tracked.length > MAX_SLOTS) {
      throw new RangeError(
        `ema-wasm: ${method}: ${tracked.length.toLocaleString('en-US')} trainable parameters; ` +
          `an EMA tracks at most ${MAX_SLOTS.toLocaleString('en-US')} (EMA_MAX_SLOTS)`,
      );
    }
    const keys = shadowKeysFor(tracked.map((entry) => entry.name), method);
    for (const { shape, name } of tracked) if (shape !== undefined) checkSavableShape(shape, name, method);
    const lengths = tracked.map((entry) => entry.length);
    const needed = creationBytes(lengths, resident);
    const what = resident ? 'the shadows, the resident parameters and their backup' : 'the shadows';
    checkFits(method, what, needed);
    // Size memory for one store() of the tracked arrays as well (what
    // withEma needs) when that fits, so evaluating never grows it.
    const expected = resident ? needed : needed + regionBytes(lengths);
    const core = new WasmCore(instantiate(module, expected));
    return new Ema(core, build, tracked, keys, { decay, useNumUpdates, resident, method, what, needed });
  };
}

/**
 * Builds a new EMA from a safetensors file written by save() or by PyTorch
 * (LitEma's state_dict, optionally under a prefix such as 'model_ema.').
 * Names come from the file's metadata when it records them, else they are
 * LitEma's keys (the dotted names cannot be recovered from those).
 */
export async function loadEma(bytes, options = {}) {
  const { prefix = '', simd = 'auto', wasm: wasmOption } = readOptions(options, ['prefix', 'simd', 'wasm'], 'loadEma');
  const wasm = adoptWasmSource(wasmOption);
  if (simd !== 'auto' && simd !== true && simd !== false) {
    throw new TypeError(`ema-wasm: loadEma: options.simd must be 'auto', true or false, got ${describe(simd)}`);
  }
  // The file's arguments are checked before any module is fetched.
  checkFileArguments(bytes, prefix, 'loadEma');
  // One module for parsing and for the EMA: a Response can be read only once.
  const { module } = await loadModule(simd, wasm, 'loadEma');
  const state = await stateFromFile(bytes, prefix, 'loadEma', module);
  const params = state.shadows.map(({ key, name, shape, data }) => {
    if (name !== undefined && shadowKeysFor([name], 'loadEma')[0] !== key) {
      throw new Error(`ema-wasm: loadEma: the file's metadata names '${clip(name)}' for '${clip(key)}', which does not match`);
    }
    return { name: name ?? key, data, shape };
  });
  const create = await prepareEma({ decay: state.decay, useNumUpdates: state.numUpdates >= 0, simd, wasm: wasm === undefined ? undefined : module }, 'loadEma');
  const ema = create(params);
  ema.loadStateDict(new Map([[COUNTER_KEY, Int32Array.of(state.numUpdates)]]), { strict: false });
  return ema;
}

/** See Ema's static block: what the adapters may do inside their own scopes. */
export let adapterAccess;

export class Ema {
  #core;
  #context = 0;
  #build;
  #names; // tracked parameter names, in order
  #keys; // LitEma shadow keys (dots removed), same order
  #shapes;
  #lengths;
  #slotOf; // name -> slot index
  #shadowOffsets; // float index of each shadow in linear memory
  #scratch; // 4 bytes for out-parameters
  #stored = null; // { names, lengths, indexOf } of the last store, or null
  #paramOffsets = null; // resident mode: float index of each parameter
  #scope = new EmaScope();
  #shadowViews = null; // see #shadowViewsOf
  #shadowViewsBuffer = null;

  /** @private Use createEma(). */
  constructor(core, build, tracked, keys, { decay, useNumUpdates, resident, method, what, needed }) {
    this.#core = core;
    this.#build = build;
    this.#names = tracked.map((entry) => entry.name);
    this.#keys = keys;
    this.#shapes = tracked.map(({ shape, length }) => (shape === undefined ? [length] : shape.slice()));
    this.#lengths = tracked.map((entry) => entry.length);
    this.#slotOf = new Map(this.#names.map((name, slot) => [name, slot]));

    const exports = core.exports;
    const outOfMemory = (status) => {
      if (status === STATUS.OUT_OF_MEMORY) throw new RangeError(tooLargeMessage(method, what, needed));
      core.check(status, `${method}: allocating the arena`);
    };
    this.#scratch = core.malloc(8, method);
    const lengthsPointer = core.mallocU32(this.#lengths, method);
    try {
      outOfMemory(exports.ema_create(this.#scratch, decay, useNumUpdates ? 1 : 0, tracked.length, lengthsPointer));
    } finally {
      core.free(lengthsPointer);
    }
    this.#context = core.heapU32[this.#scratch >>> 2];
    this.#shadowOffsets = this.#names.map((_, slot) => exports.ema_shadow(this.#context, slot) >>> 2);
    if (resident) {
      outOfMemory(exports.ema_resident_enable(this.#context));
      this.#paramOffsets = this.#names.map((_, slot) => exports.ema_param(this.#context, slot) >>> 2);
    }

    // The arrays were pinned by the seam and no user code ran since.
    const heap = core.heapF32;
    tracked.forEach(({ data }, slot) => {
      heap.set(data, this.#shadowOffsets[slot]);
      if (resident) heap.set(data, this.#paramOffsets[slot]);
    });
  }

  // ---- state ---------------------------------------------------------------

  /** The base decay, as the float32 value LitEma stores. */
  get decay() {
    const core = Ema.#coreOf(this, 'decay');
    return this.#decayOf(core);
  }

  /** Updates since creation or reset; -1 when warmup is off. */
  get numUpdates() {
    const core = Ema.#coreOf(this, 'numUpdates');
    return this.#numUpdatesOf(core);
  }

  /** Tracked parameter names, in creation order (a copy). */
  get names() {
    Ema.#coreOf(this, 'names');
    return this.#names.slice();
  }

  /** True when the SIMD128 build runs, false for the scalar build. */
  get simd() {
    Ema.#coreOf(this, 'simd');
    return this.#build === 'simd';
  }

  /** True when the parameters live in the arena (createEma with resident: true). */
  get resident() {
    Ema.#coreOf(this, 'resident');
    return this.#paramOffsets !== null;
  }

  /**
   * Resident mode: the parameter `name` itself, a Float32Array over this
   * EMA's WebAssembly memory, to train in place. A resident EMA allocates
   * everything when it is created, so the view stays valid for the EMA's
   * whole life; after dispose() it must not be used. (Calling param() again
   * always gives a valid view.)
   */
  param(name) {
    const core = Ema.#coreOf(this, 'param');
    if (this.#paramOffsets === null) {
      throw new Error('ema-wasm: param: this EMA is not resident; create it with { resident: true }');
    }
    const slot = this.#slotFor(name, 'param');
    return new Float32Array(core.memory.buffer, this.#paramOffsets[slot] * 4, this.#lengths[slot]);
  }

  /** Bytes the arena holds in linear memory (shadows, staging, backup). */
  get byteLength() {
    const core = Ema.#coreOf(this, 'byteLength');
    return this.#byteLengthOf(core);
  }

  /** LitEma.reset_num_updates(): the counter goes to 0, turning warmup on. */
  resetNumUpdates() {
    const core = Ema.#coreOf(this, 'resetNumUpdates');
    core.check(core.exports.ema_reset_num_updates(this.#context), 'resetNumUpdates');
  }

  /** A copy of the shadow of parameter `name`. */
  shadow(name) {
    const core = Ema.#coreOf(this, 'shadow');
    const slot = this.#slotFor(name, 'shadow');
    return copyOf(core.heapF32, this.#shadowOffsets[slot], this.#lengths[slot], Float32Array);
  }

  /** Shape of a tracked parameter (a copy), as given at creation. */
  shape(name) {
    Ema.#coreOf(this, 'shape');
    const slot = this.#slotFor(name, 'shape');
    return this.#shapes[slot].slice();
  }

  /**
   * LitEma's state_dict(): 'decay' (Float32Array of 1), 'num_updates'
   * (Int32Array of 1), then each shadow under its name with the dots removed.
   * Every value is a copy.
   */
  stateDict() {
    const core = Ema.#coreOf(this, 'stateDict');
    const state = new Map();
    state.set(DECAY_KEY, Float32Array.of(this.#decayOf(core)));
    state.set(COUNTER_KEY, Int32Array.of(this.#numUpdatesOf(core)));
    const heap = core.heapF32;
    this.#keys.forEach((key, slot) => {
      state.set(key, copyOf(heap, this.#shadowOffsets[slot], this.#lengths[slot], Float32Array));
    });
    return state;
  }

  /**
   * LitEma's load_state_dict: 'decay', 'num_updates' and each shadow under
   * its LitEma key, as stateDict() returns them (a Map or a plain object).
   * strict (default): exactly the tracked keys, no more, no fewer; otherwise
   * what is present is loaded and unknown keys are ignored. All or nothing.
   */
  loadStateDict(state, options = {}) {
    Ema.#coreOf(this, 'loadStateDict');
    const { strict = true } = readOptions(options, ['strict'], 'loadStateDict');
    const checked = stateFromDict(state, 'loadStateDict');
    // Reading ran the caller's getters, which may have disposed this EMA.
    this.#applyState(Ema.#coreOf(this, 'loadStateDict'), checked, strict, 'loadStateDict');
  }

  /**
   * The state as a safetensors file: '<prefix>decay' (F32 scalar),
   * '<prefix>num_updates' (I32 scalar) and each shadow as F32 under
   * '<prefix><LitEma key>' with its shape. The metadata records the dotted
   * names; `metadata` adds string entries of your own.
   */
  save(options = {}) {
    Ema.#coreOf(this, 'save');
    // Options first: reading them runs the caller's getters, which must not
    // run between taking the state and copying it into the file.
    const fileOptions = readFileOptions(readOptions(options, ['prefix', 'metadata'], 'save'), 'save');
    const core = Ema.#coreOf(this, 'save');
    const buffer = core.memory.buffer;
    const state = {
      decay: this.#decayOf(core),
      numUpdates: this.#numUpdatesOf(core),
      // Views are fine here: stateToFile copies them before any other code
      // can run.
      shadows: this.#keys.map((key, slot) => ({
        key,
        name: this.#names[slot],
        shape: this.#shapes[slot],
        data: new Float32Array(buffer, this.#shadowOffsets[slot] * 4, this.#lengths[slot]),
      })),
    };
    return stateToFile(state, fileOptions, 'save');
  }

  /**
   * Loads a safetensors file (from save() or PyTorch) into this EMA, under
   * `prefix`. Same rules as loadStateDict; a file that fails any check
   * changes nothing.
   */
  async loadState(bytes, options = {}) {
    Ema.#coreOf(this, 'loadState');
    const { prefix = '', strict = true } = readOptions(options, ['prefix', 'strict'], 'loadState');
    const state = await stateFromFile(bytes, prefix, 'loadState', this.#core.module);
    this.#applyState(Ema.#coreOf(this, 'loadState'), state, strict, 'loadState');
  }

  // ---- the EMA step --------------------------------------------------------

  /**
   * LitEma.forward(model): one EMA step over every tracked parameter.
   * Returns the decay the step used (float32 value).
   */
  update(params) {
    Ema.#coreOf(this, 'update');
    if (this.#residentCall(params, 'update')) {
      const core = this.#enterResident('update', 'read');
      this.#checkCounter(core, 'update');
      core.check(core.exports.ema_update_resident(this.#context, this.#scratch), 'update');
      return core.heapF32[this.#scratch >>> 2];
    }
    const entries = resolveParams(params, 'update');
    const core = this.#enter('update');
    const exports = core.exports;
    const arrays = this.#matchTracked(entries, 'update');
    checkFree('update', () => targetsOf(arrays), 'read');
    this.#checkCounter(core, 'update');

    // Everything is checked: from here on nothing can fail. The step opens
    // (the counter advances), then every parameter streams through the
    // staging window, several small ones per window, each full window
    // applied with one call into Wasm.
    core.check(exports.ema_step_begin(this.#context, this.#scratch), 'update');
    const decayUsed = core.heapF32[this.#scratch >>> 2];
    // Wasm returns pointers as i32: above 2 GiB they read negative here.
    const stagingPointer = exports.ema_staging(this.#context) >>> 0;
    const segmentPointer = exports.ema_segment_table(this.#context) >>> 0;
    const buffer = core.memory.buffer;
    const staging = new Float32Array(buffer, stagingPointer, STAGING_FLOATS);
    const segments = new Uint32Array(buffer, segmentPointer, SEGMENT_CAPACITY * SEGMENT_WORDS);
    let staged = 0;
    let segmentCount = 0;
    const flush = () => {
      core.check(exports.ema_step_apply(this.#context, segmentPointer, segmentCount, stagingPointer), 'update');
      staged = 0;
      segmentCount = 0;
    };
    for (let slot = 0; slot < arrays.length; slot++) {
      const { data, length } = arrays[slot];
      for (let offset = 0; offset < length; ) {
        const count = Math.min(length - offset, STAGING_FLOATS - staged);
        // A whole array is copied from its internal slots; a piece goes
        // through a window built from them (never subarray: @@species).
        staging.set(count === length ? data : windowOf(data, offset, count, Float32Array), staged);
        const word = segmentCount * SEGMENT_WORDS;
        segments[word] = slot;
        segments[word + 1] = offset;
        segments[word + 2] = count;
        segmentCount += 1;
        staged += count;
        offset += count;
        if (staged === STAGING_FLOATS || segmentCount === SEGMENT_CAPACITY) flush();
      }
    }
    if (segmentCount > 0) flush();
    return decayUsed;
  }

  // ---- swapping weights ----------------------------------------------------

  /** LitEma.copy_to(model): writes every shadow into its trainable array. */
  copyTo(params) {
    Ema.#coreOf(this, 'copyTo');
    if (this.#residentCall(params, 'copyTo')) {
      const core = this.#enterResident('copyTo', 'write');
      core.check(core.exports.ema_copy_to_resident(this.#context), 'copyTo');
      return;
    }
    const entries = resolveParams(params, 'copyTo');
    const core = this.#enter('copyTo');
    const arrays = this.#matchTracked(entries, 'copyTo');
    checkFree('copyTo', () => targetsOf(arrays), 'write');
    this.#copyShadowsInto(core, arrays);
  }

  /** LitEma.store(parameters): snapshots every array given, trainable or not. */
  store(params) {
    Ema.#coreOf(this, 'store');
    if (this.#residentCall(params, 'store')) {
      const core = this.#enterResident('store', 'read');
      core.check(core.exports.ema_store_resident(this.#context), 'store');
      return;
    }
    const entries = resolveParams(params, 'store');
    this.#storeChecked(this.#enter('store'), entries, 'store');
  }

  /**
   * LitEma.restore(parameters): writes the last snapshot back, by name. Every
   * array that can be written is; one that cannot (its buffer was detached)
   * is named in the error thrown afterwards, and stays stored.
   */
  restore(params) {
    Ema.#coreOf(this, 'restore');
    if (this.#residentCall(params, 'restore')) {
      const core = this.#enterResident('restore', 'write');
      this.#restoreResident(core, 'restore');
      return;
    }
    const entries = resolveParams(params, 'restore');
    this.#restoreChecked(this.#enter('restore'), entries, 'restore');
  }

  /**
   * LitEma's ema_scope: store, copyTo, `await fn()`, then restore even if fn
   * throws. Returns what fn returns. While it runs, the arrays are held:
   * no EMA may store, restore, copy into or update from them.
   */
  async withEma(params, fn) {
    Ema.#coreOf(this, 'withEma');
    if (this.#paramOffsets !== null) {
      if (typeof params !== 'function' || fn !== undefined) {
        throw new TypeError('ema-wasm: withEma: this EMA is resident: call withEma(fn), without params');
      }
      const core = this.#enter('withEma');
      const exports = core.exports;
      return this.#scope.run('withEma', () => this.#owner(), [this.#residentTarget(core)], {
        store: () => core.check(exports.ema_store_resident(this.#context), 'withEma'),
        swapIn: () => core.check(exports.ema_copy_to_resident(this.#context), 'withEma'),
        restore: () => this.#restoreResident(core, 'withEma'),
      }, params);
    }
    if (typeof fn !== 'function') {
      const hint = typeof params === 'function' ? ' (call withEma(params, fn))' : '';
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}${hint}`);
    }
    const entries = resolveParams(params, 'withEma');
    const core = this.#enter('withEma');
    const trackedArrays = this.#matchTracked(entries, 'withEma');
    let stored;
    return this.#scope.run('withEma', () => this.#owner(), targetsOf(entries), {
      store: () => {
        this.#storeEntries(core, entries, 'withEma');
        stored = this.#matchStored(entries, 'withEma');
      },
      swapIn: () => this.#copyShadowsInto(core, trackedArrays),
      restore: () => this.#restoreInto(core, stored, 'withEma'),
    }, fn);
  }

  /**
   * For the adapters (js/adapters/) only. An adapter runs its own withEma
   * over this EMA's scope (so that the core EMA it exposes as `.ema` is
   * refused while the adapter's withEma runs, like the adapter itself), and
   * stores and restores inside that scope under its own method name.
   */
  static {
    adapterAccess = Object.freeze({
      scopeOf: (ema) => ema.#scope,
      store: (ema, params, method) => {
        const entries = resolveParams(params, method);
        ema.#storeChecked(Ema.#coreOf(ema, method), entries, method);
      },
      restore: (ema, params, method) => {
        const entries = resolveParams(params, method);
        ema.#restoreChecked(Ema.#coreOf(ema, method), entries, method);
      },
    });
  }

  /** Frees the arena. Every later call throws. Calling it again does nothing. */
  dispose() {
    if (!Ema.#isEma(this)) Ema.#coreOf(this, 'dispose'); // throws: not an EMA
    if (this.#core === null) return;
    this.#scope.check('dispose');
    this.#core.exports.ema_destroy(this.#context);
    this.#core = null;
    this.#context = 0;
    this.#shadowViews = null;
    this.#shadowViewsBuffer = null;
  }

  // ---- internals -----------------------------------------------------------

  /**
   * Resident EMAs take no params: their parameters are in the arena. True
   * for a resident call; throws if params are given to a resident EMA.
   */
  #residentCall(params, method) {
    if (this.#paramOffsets === null) return false;
    if (params !== undefined) {
      throw new TypeError(
        `ema-wasm: ${method}: this EMA is resident and takes no params; train in ema.param(name) and call ${method}()`,
      );
    }
    return true;
  }

  #restoreResident(core, method) {
    const status = core.exports.ema_restore_resident(this.#context);
    if (status === STATUS.NOTHING_STORED) {
      throw new Error(`ema-wasm: ${method}: nothing is stored; call store() first`);
    }
    core.check(status, method);
  }

  /**
   * What resident calls touch: this EMA's whole memory, not just the
   * parameters. param() views reach all of it, and the backup that holds the
   * training weights during withEma must be as safe as the parameters. (A
   * resident EMA's memory never grows, so its buffer stays the same.)
   */
  #residentTarget(core) {
    const buffer = core.memory.buffer;
    return memoryTarget("the resident EMA's memory", buffer, buffer.byteLength);
  }

  #owner() {
    return `an EMA of ${quoteList(this.#names)}`;
  }

  #checkCounter(core, method) {
    const numUpdates = this.#numUpdatesOf(core);
    if (numUpdates >= MAX_NUM_UPDATES) {
      throw new RangeError(
        `ema-wasm: ${method}: num_updates is ${numUpdates}, the most it can count (EMA_MAX_NUM_UPDATES, so that ` +
          "LitEma's int32 (10 + num_updates) cannot overflow); call resetNumUpdates() or load a state with a smaller count",
      );
    }
  }

  /**
   * The checks every call that changes state makes after it has read its
   * arguments (reading runs the caller's getters, which may have disposed
   * this EMA or opened its withEma): returns the core.
   */
  #enter(method) {
    const core = Ema.#coreOf(this, method);
    this.#scope.check(method);
    return core;
  }

  /** #enter for a resident call, which touches this EMA's own memory as `mode`. */
  #enterResident(method, mode) {
    const core = this.#enter(method);
    checkFree(method, () => [this.#residentTarget(core)], mode);
    return core;
  }

  static #isEma(value) {
    return value !== null && typeof value === 'object' && #core in value;
  }

  /**
   * The core of `ema` for a call of `method`: throws a TypeError when the
   * method was called on something else (a method passed as a callback loses
   * its object), and an Error once the EMA is disposed.
   */
  static #coreOf(ema, method) {
    if (!Ema.#isEma(ema)) {
      throw new TypeError(
        `ema-wasm: ${method}: called on ${describe(ema)}, not on an EMA; call it as ema.${method}, ` +
          `or bind it (ema.${method}.bind(ema)) before passing it as a callback`,
      );
    }
    if (ema.#core === null) {
      throw new Error(`ema-wasm: ${method}: this EMA was disposed; create a new one`);
    }
    return ema.#core;
  }

  // The state as the core holds it, never through the public getters: an own
  // getter on the instance must not run in the middle of a call.
  #decayOf(core) {
    return core.exports.ema_decay(this.#context);
  }

  #numUpdatesOf(core) {
    return core.exports.ema_num_updates(this.#context);
  }

  #byteLengthOf(core) {
    return core.exports.ema_byte_length(this.#context) >>> 0;
  }

  #slotFor(name, method) {
    const slot = this.#slotOf.get(name);
    if (slot === undefined) {
      if (typeof name !== 'string') {
        throw new TypeError(`ema-wasm: ${method}: name must be a string, got ${describe(name)}`);
      }
      throw new Error(`ema-wasm: ${method}: no tracked parameter named '${clip(name)}'; tracked: ${quoteList(this.#names)}`);
    }
    return slot;
  }

  /**
   * Checks resolved entries against the tracked set; returns the tracked
   * entries in slot order. Untrainable entries are skipped, as LitEma skips
   * them, unless they are tracked, which LitEma asserts against. The common
   * call, exactly the tracked entries in creation order, is recognised first:
   * with thousands of small tensors the general match costs more than the
   * update itself.
   */
  #matchTracked(entries, method) {
    const names = this.#names;
    const lengths = this.#lengths;
    if (entries.length === names.length) {
      let slot = 0;
      for (; slot < names.length; slot++) {
        const entry = entries[slot];
        if (entry.name !== names[slot] || !entry.trainable || entry.length !== lengths[slot] || entry.unusable !== null) {
          break;
        }
      }
      if (slot === names.length) return entries;
    }
    refuseUnusable(entries, method);
    refuseDuplicates(entries, method);
    const arrays = new Array(names.length);
    const unknown = [];
    for (const entry of entries) {
      const { name, length, trainable } = entry;
      const slot = this.#slotOf.get(name);
      if (!trainable) {
        if (slot !== undefined) {
          throw new Error(`ema-wasm: ${method}: parameter '${clip(name)}' is tracked but was passed with trainable: false`);
        }
        continue;
      }
      if (slot === undefined) {
        unknown.push(name);
        continue;
      }
      if (length !== lengths[slot]) {
        throw new Error(`ema-wasm: ${method}: parameter '${clip(name)}' has ${length} elements; its shadow has ${lengths[slot]}`);
      }
      arrays[slot] = entry;
    }
    if (unknown.length > 0) {
      throw new Error(
        `ema-wasm: ${method}: unknown trainable parameters ${quoteList(unknown)}; ` +
          'pass them with trainable: false or create the EMA with them',
      );
    }
    const missing = names.filter((_, slot) => arrays[slot] === undefined);
    if (missing.length > 0) {
      throw new Error(`ema-wasm: ${method}: missing tracked parameters ${quoteList(missing)}`);
    }
    return arrays;
  }

  /** Checks a whole state against this EMA, then applies it. */
  #applyState(core, state, strict, method) {
    const slotOfKey = new Map(this.#keys.map((key, slot) => [key, slot]));
    const targets = [];
    const unknown = [];
    for (const { key, data, length } of state.shadows) {
      const slot = slotOfKey.get(key);
      if (slot === undefined) {
        unknown.push(key);
        continue;
      }
      if (length !== this.#lengths[slot]) {
        throw new Error(
          `ema-wasm: ${method}: '${clip(key)}' has ${length} elements; the shadow of '${clip(this.#names[slot])}' has ${this.#lengths[slot]}`,
        );
      }
      targets.push({ slot, data });
    }
    if (strict) {
      if (unknown.length > 0) {
        throw new Error(`ema-wasm: ${method}: unexpected keys ${quoteList(unknown)} (pass strict: false to ignore them)`);
      }
      const given = new Set(state.shadows.map(({ key }) => key));
      const missing = this.#keys.filter((key) => !given.has(key));
      if (state.decay === undefined) missing.unshift(DECAY_KEY);
      if (state.numUpdates === undefined) missing.unshift(COUNTER_KEY);
      if (missing.length > 0) {
        throw new Error(`ema-wasm: ${method}: missing keys ${quoteList(missing)} (pass strict: false to load a part)`);
      }
    }

    const exports = core.exports;
    if (state.decay !== undefined) core.check(exports.ema_set_decay(this.#context, state.decay), method);
    if (state.numUpdates !== undefined) core.check(exports.ema_set_num_updates(this.#context, state.numUpdates), method);
    const heap = core.heapF32;
    for (const { slot, data } of targets) heap.set(data, this.#shadowOffsets[slot]);
  }

  #copyShadowsInto(core, arrays) {
    const views = this.#shadowViewsOf(core);
    for (let slot = 0; slot < arrays.length; slot++) writeInto(arrays[slot].data, views[slot]);
  }

  /**
   * One view per shadow, kept between calls (making thousands of views per
   * copyTo cost more than the copy) and re-made only when memory has grown.
   * Internal: never handed out.
   */
  #shadowViewsOf(core) {
    const buffer = core.memory.buffer;
    if (this.#shadowViews === null || this.#shadowViewsBuffer !== buffer) {
      this.#shadowViews = this.#shadowOffsets.map((start, slot) => new Float32Array(buffer, start * 4, this.#lengths[slot]));
      this.#shadowViewsBuffer = buffer;
    }
    return this.#shadowViews;
  }

  #storeChecked(core, entries, method) {
    refuseDuplicates(entries, method);
    refuseUnusable(entries, method);
    checkFree(method, () => targetsOf(entries), 'read');
    this.#storeEntries(core, entries, method);
  }

  #restoreChecked(core, entries, method) {
    const targets = this.#matchStored(entries, method);
    checkFree(method, () => targetsOf(targets.map(({ entry }) => entry)), 'write');
    this.#restoreInto(core, targets, method);
  }

  #storeEntries(core, entries, method) {
    if (entries.length > MAX_SLOTS) {
      throw new RangeError(
        `ema-wasm: ${method}: ${entries.length.toLocaleString('en-US')} arrays to store; ` +
          `at most ${MAX_SLOTS.toLocaleString('en-US')} (EMA_MAX_SLOTS)`,
      );
    }
    const lengths = entries.map((entry) => entry.length);
    // A backup of the same lengths is reused; any other is allocated before
    // the old one is freed, so both must fit for a moment.
    const what = `the backup of ${entries.length} ${entries.length === 1 ? 'array' : 'arrays'}`;
    const backupBytes = regionBytes(lengths);
    const reused = this.#stored !== null && sameNumbers(this.#stored.lengths, lengths);
    if (!reused) checkFits(method, what, backupBytes, inUseBytes(this.#byteLengthOf(core)));
    const lengthsPointer = core.mallocU32(lengths, method);
    try {
      const status = core.exports.ema_backup_prepare(this.#context, entries.length, lengthsPointer);
      if (status === STATUS.OUT_OF_MEMORY) {
        throw new RangeError(tooLargeMessage(method, what, backupBytes, inUseBytes(this.#byteLengthOf(core))));
      }
      core.check(status, method);
    } finally {
      core.free(lengthsPointer);
    }
    // The backup was just allocated (memory may have grown): fresh view.
    const heap = core.heapF32;
    entries.forEach(({ data }, index) => {
      heap.set(data, core.exports.ema_backup(this.#context, index) >>> 2);
    });
    this.#stored = {
      names: entries.map((entry) => entry.name),
      lengths,
      indexOf: new Map(entries.map((entry, index) => [entry.name, index])),
    };
  }

  /**
   * Checks resolved entries against the last store; returns [{ index, entry }].
   * An entry that cannot be written (unusable) passes here and is reported by
   * #restoreInto, after every other array has been written.
   */
  #matchStored(entries, method) {
    refuseDuplicates(entries, method);
    if (this.#stored === null) {
      throw new Error(`ema-wasm: ${method}: nothing is stored; call store(params) first`);
    }
    const { names, lengths, indexOf } = this.#stored;
    const targets = [];
    const unknown = [];
    for (const entry of entries) {
      const index = indexOf.get(entry.name);
      if (index === undefined) {
        unknown.push(entry.name);
        continue;
      }
      if (entry.unusable === null && entry.length !== lengths[index]) {
        throw new Error(
          `ema-wasm: ${method}: parameter '${clip(entry.name)}' has ${entry.length} elements; ${lengths[index]} were stored`,
        );
      }
      targets.push({ index, entry });
    }
    if (unknown.length > 0) {
      throw new Error(`ema-wasm: ${method}: parameters ${quoteList(unknown)} were not stored`);
    }
    if (targets.length !== names.length) {
      const given = new Set(entries.map((entry) => entry.name));
      const missing = names.filter((name) => !given.has(name));
      throw new Error(`ema-wasm: ${method}: stored parameters ${quoteList(missing)} are missing`);
    }
    return targets;
  }

  /**
   * Writes the backup into every target that can still take it, then throws
   * one Error naming each one that could not, and why. User code may have run
   * since the targets were resolved (withEma's fn), so each array is measured
   * again here. The backup is kept: a later restore() can still write it.
   */
  #restoreInto(core, targets, method) {
    const buffer = core.memory.buffer;
    const failures = [];
    for (const { index, entry } of targets) {
      const now = lengthOf(entry.data);
      const why =
        entry.unusable ??
        (now === entry.length ? null : unusableReason(entry.data, now) ?? `it now has ${now} elements; ${entry.length} were stored`);
      if (why !== null) {
        failures.push(`'${clip(entry.name)}' (${why})`);
        continue;
      }
      const pointer = core.exports.ema_backup(this.#context, index) >>> 0;
      writeInto(entry.data, new Float32Array(buffer, pointer, entry.length));
    }
    if (failures.length > 0) {
      throw new Error(
        `ema-wasm: ${method}: could not write the stored weights back into ${failures.length} of ${targets.length} ` +
          `arrays: ${listSome(failures)}. Every other array was restored; the stored weights stay in the EMA, so ` +
          'restore() with usable arrays of the same names can still write them back',
      );
    }
  }
}

/** What calls on these entries touch, for the scopes (scope.js). */
function targetsOf(entries) {
  return entries.map(({ name, data, length }) => arrayTarget(`parameter '${clip(name)}'`, data, length));
}

function sameNumbers(a, b) {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
