// The Ema class: LitEma's API over one instance of the C core.
//
// Every public method first resolves and checks all of its arguments (pure
// JS, nothing changes), and only then touches the arena, so a call that throws
// leaves the EMA exactly as it was.

import { STATUS, WasmCore } from './core.js';
import { chooseBuild, compileBuild, instantiate } from './loader.js';
import { shadowKeysFor } from './names.js';
import { describe, normalizeParams, quoteList } from './params.js';
import { EmaScope } from './scope.js';
import { COUNTER_KEY, DECAY_KEY, stateFromDict, stateFromFile, stateToFile } from './state.js';

const STAGING_FLOATS = 65536; // EMA_STAGING_FLOATS in include/ema.h
const SEGMENT_CAPACITY = 4096; // EMA_SEGMENT_CAPACITY in include/ema.h
const SEGMENT_WORDS = 3; // ema_segment is { slot, offset, count }, uint32 each
const MAX_SLOT_LENGTH = 0xffffffff;

const OPTION_DEFAULTS = { decay: 0.9999, useNumUpdates: true, simd: 'auto', resident: false };
const ARENA_ALIGNMENT = 64; // EMA_ARENA_ALIGNMENT in src/arena.h
// Staging window, segment table and the small allocations around them.
const FIXED_ARENA_BYTES = STAGING_FLOATS * 4 + SEGMENT_CAPACITY * SEGMENT_WORDS * 4 + (1 << 20);

function checkOptions(options) {
  checkOptionKeys(options, Object.keys(OPTION_DEFAULTS), 'createEma');
  const { decay, useNumUpdates, simd, resident } = { ...OPTION_DEFAULTS, ...options };
  if (typeof decay !== 'number') {
    throw new TypeError(`ema-wasm: createEma: options.decay must be a number, got ${describe(decay)}`);
  }
  if (!(decay >= 0 && decay <= 1)) {
    throw new RangeError(`ema-wasm: createEma: options.decay must be in [0, 1], got ${decay}`);
  }
  if (typeof useNumUpdates !== 'boolean') {
    throw new TypeError(
      `ema-wasm: createEma: options.useNumUpdates must be a boolean, got ${describe(useNumUpdates)}`,
    );
  }
  if (simd !== 'auto' && simd !== true && simd !== false) {
    throw new TypeError(`ema-wasm: createEma: options.simd must be 'auto', true or false, got ${describe(simd)}`);
  }
  if (typeof resident !== 'boolean') {
    throw new TypeError(`ema-wasm: createEma: options.resident must be a boolean, got ${describe(resident)}`);
  }
  return { decay, useNumUpdates, simd, resident };
}

/**
 * Bytes the arena will want: the shadows, plus either the resident parameters
 * and their backup, or room for one store() of the same size, which is what
 * evaluating with withEma() needs. Allocating this up front means memory
 * never has to grow in the common case (see instantiate in loader.js).
 */
function expectedArenaBytes(tracked, resident) {
  let shadowBytes = 0;
  for (const { data } of tracked) {
    shadowBytes += Math.ceil((data.length * 4) / ARENA_ALIGNMENT) * ARENA_ALIGNMENT;
  }
  return shadowBytes * (resident ? 3 : 2) + tracked.length * 64 + FIXED_ARENA_BYTES;
}

/**
 * Creates an EMA of the trainable entries of `params`, with shadows starting
 * as copies of them (as LitEma does).
 */
export async function createEma(params, options = {}) {
  const { decay, useNumUpdates, simd, resident } = checkOptions(options);
  const entries = normalizeParams(params, 'createEma');
  const tracked = entries.filter((entry) => entry.trainable);
  const keys = shadowKeysFor(tracked.map((entry) => entry.name));
  for (const { name, data } of tracked) {
    if (data.length > MAX_SLOT_LENGTH) {
      throw new RangeError(`ema-wasm: createEma: parameter '${name}' has ${data.length} elements; at most ${MAX_SLOT_LENGTH}`);
    }
  }
  const build = chooseBuild(simd);
  const module = await compileBuild(build);
  const core = new WasmCore(instantiate(module, expectedArenaBytes(tracked, resident)));
  return new Ema(core, build, tracked, keys, decay, useNumUpdates, resident);
}

/** Whether `shape` is an array of non-negative integers whose product is `length`. */
function shapeHolds(shape, length) {
  if (!Array.isArray(shape)) return false;
  let product = 1;
  for (const dimension of shape) {
    if (!Number.isSafeInteger(dimension) || dimension < 0) return false;
    product *= dimension;
  }
  return product === length;
}

/** Throws unless `options` is an object whose keys are all in `allowed`. */
export function checkOptionKeys(options, allowed, method) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`ema-wasm: ${method}: options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`ema-wasm: ${method}: unknown option '${key}'; expected ${allowed.join(', ')}`);
    }
  }
  if (options.strict !== undefined && typeof options.strict !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: options.strict must be a boolean, got ${describe(options.strict)}`);
  }
  return options;
}

/**
 * Builds a new EMA from a safetensors file written by save() or by PyTorch
 * (LitEma's state_dict, optionally under a prefix such as 'model_ema.').
 * Names come from the file's metadata when it records them, else they are
 * LitEma's keys (the dotted names cannot be recovered from those).
 */
export async function loadEma(bytes, options = {}) {
  const { prefix = '', simd = 'auto' } = checkOptionKeys(options, ['prefix', 'simd'], 'loadEma');
  const state = await stateFromFile(bytes, prefix, 'loadEma');
  const params = state.shadows.map(({ key, name, shape, data }) => {
    if (name !== undefined && shadowKeysFor([name])[0] !== key) {
      throw new Error(`ema-wasm: loadEma: the file's metadata names '${name}' for '${key}', which does not match`);
    }
    return { name: name ?? key, data, shape };
  });
  const ema = await createEma(params, { decay: state.decay, useNumUpdates: state.numUpdates >= 0, simd });
  ema.loadStateDict(new Map([[COUNTER_KEY, Int32Array.of(state.numUpdates)]]), { strict: false });
  return ema;
}

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
  #stored = null; // { names, lengths, slotOf } of the last store, or null
  #paramOffsets = null; // resident mode: float index of each parameter
  #scope = new EmaScope();
  #shadowViews = null; // see #shadowViewsOf
  #shadowViewsBuffer = null;

  /** @private Use createEma(). */
  constructor(core, build, tracked, keys, decay, useNumUpdates, resident) {
    this.#core = core;
    this.#build = build;
    this.#names = tracked.map((entry) => entry.name);
    this.#keys = keys;
    this.#shapes = tracked.map((entry) => entry.shape);
    this.#lengths = tracked.map((entry) => entry.data.length);
    this.#slotOf = new Map(this.#names.map((name, slot) => [name, slot]));

    const exports = core.exports;
    this.#scratch = core.malloc(8);
    const lengthsPointer = core.mallocU32(this.#lengths);
    try {
      const status = exports.ema_create(this.#scratch, decay, useNumUpdates ? 1 : 0, tracked.length, lengthsPointer);
      core.check(status, 'createEma: allocating the shadow arena');
    } finally {
      core.free(lengthsPointer);
    }
    this.#context = core.heapU32[this.#scratch >>> 2];
    this.#shadowOffsets = this.#names.map((_, slot) => exports.ema_shadow(this.#context, slot) >>> 2);
    if (resident) {
      core.check(exports.ema_resident_enable(this.#context), 'createEma: allocating resident parameters');
      this.#paramOffsets = this.#names.map((_, slot) => exports.ema_param(this.#context, slot) >>> 2);
    }

    const heap = core.heapF32;
    tracked.forEach((entry, slot) => {
      heap.set(entry.data, this.#shadowOffsets[slot]);
      if (resident) heap.set(entry.data, this.#paramOffsets[slot]);
    });
  }

  // ---- state ---------------------------------------------------------------

  /** The base decay, as the float32 value LitEma stores. */
  get decay() {
    return this.#live().exports.ema_decay(this.#context);
  }

  /** Updates since creation or reset; -1 when warmup is off. */
  get numUpdates() {
    return this.#live().exports.ema_num_updates(this.#context);
  }

  /** Tracked parameter names, in creation order (a copy). */
  get names() {
    this.#live();
    return this.#names.slice();
  }

  /** True when the SIMD128 build runs, false for the scalar build. */
  get simd() {
    this.#live();
    return this.#build === 'simd';
  }

  /** True when the parameters live in the arena (createEma with resident: true). */
  get resident() {
    this.#live();
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
    const core = this.#live();
    if (this.#paramOffsets === null) {
      throw new Error('ema-wasm: param: this EMA is not resident; create it with { resident: true }');
    }
    const slot = this.#slotFor(name, 'param');
    return new Float32Array(core.memory.buffer, this.#paramOffsets[slot] * 4, this.#lengths[slot]);
  }

  /** Bytes the arena holds in linear memory (shadows, staging, backup). */
  get byteLength() {
    return this.#live().exports.ema_byte_length(this.#context) >>> 0;
  }

  /** LitEma.reset_num_updates(): the counter goes to 0, turning warmup on. */
  resetNumUpdates() {
    const core = this.#live();
    core.check(core.exports.ema_reset_num_updates(this.#context), 'resetNumUpdates');
  }

  /** A copy of the shadow of parameter `name`. */
  shadow(name) {
    const core = this.#live();
    const slot = this.#slotFor(name, 'shadow');
    const start = this.#shadowOffsets[slot];
    return core.heapF32.slice(start, start + this.#lengths[slot]);
  }

  /** Shape of a tracked parameter (a copy), as given at creation. */
  shape(name) {
    this.#live();
    const slot = this.#slotFor(name, 'shape');
    return this.#shapes[slot].slice();
  }

  /**
   * LitEma's state_dict(): 'decay' (Float32Array of 1), 'num_updates'
   * (Int32Array of 1), then each shadow under its name with the dots removed.
   * Every value is a copy.
   */
  stateDict() {
    const core = this.#live();
    const state = new Map();
    state.set('decay', Float32Array.of(this.decay));
    state.set('num_updates', Int32Array.of(this.numUpdates));
    const heap = core.heapF32;
    this.#keys.forEach((key, slot) => {
      const start = this.#shadowOffsets[slot];
      state.set(key, heap.slice(start, start + this.#lengths[slot]));
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
    const core = this.#live();
    const { strict = true } = checkOptionKeys(options, ['strict'], 'loadStateDict');
    this.#applyState(core, stateFromDict(state, 'loadStateDict'), strict, 'loadStateDict');
  }

  /**
   * The state as a safetensors file: '<prefix>decay' (F32 scalar),
   * '<prefix>num_updates' (I32 scalar) and each shadow as F32 under
   * '<prefix><LitEma key>' with its shape. The metadata records the dotted
   * names; `metadata` adds string entries of your own.
   */
  save(options = {}) {
    const core = this.#live();
    checkOptionKeys(options, ['prefix', 'metadata'], 'save');
    const heap = core.heapF32;
    const state = {
      decay: this.decay,
      numUpdates: this.numUpdates,
      // Views are fine here: stateToFile copies them before anything else
      // can run in this arena.
      shadows: this.#keys.map((key, slot) => ({
        key,
        name: this.#names[slot],
        shape: this.#shapes[slot],
        data: heap.subarray(this.#shadowOffsets[slot], this.#shadowOffsets[slot] + this.#lengths[slot]),
      })),
    };
    return stateToFile(state, options, 'save');
  }

  /**
   * Loads a safetensors file (from save() or PyTorch) into this EMA, under
   * `prefix`. Same rules as loadStateDict; a file that fails any check
   * changes nothing.
   */
  async loadState(bytes, options = {}) {
    this.#live();
    const { prefix = '', strict = true } = checkOptionKeys(options, ['prefix', 'strict'], 'loadState');
    const state = await stateFromFile(bytes, prefix, 'loadState');
    this.#applyState(this.#live(), state, strict, 'loadState');
  }

  // ---- the EMA step --------------------------------------------------------

  /**
   * LitEma.forward(model): one EMA step over every tracked parameter.
   * Returns the decay the step used (float32 value).
   */
  update(params) {
    const core = this.#live();
    this.#scope.check('update');
    const exports = core.exports;
    if (this.#residentCall(params, 'update')) {
      core.check(exports.ema_update_resident(this.#context, this.#scratch), 'update');
      return core.heapF32[this.#scratch >>> 2];
    }
    const arrays = this.#resolveInOrder(params) ?? this.#resolveTracked(normalizeParams(params, 'update'), 'update');
    core.check(exports.ema_step_begin(this.#context, this.#scratch), 'update');
    const decayUsed = core.heapF32[this.#scratch >>> 2];

    // Stream every parameter through the staging window, several small ones
    // per window, and apply each full window with one call into Wasm.
    const stagingPointer = exports.ema_staging(this.#context);
    const segmentPointer = exports.ema_segment_table(this.#context);
    const staging = core.heapF32.subarray(stagingPointer >>> 2, (stagingPointer >>> 2) + STAGING_FLOATS);
    const segments = core.heapU32.subarray(segmentPointer >>> 2, (segmentPointer >>> 2) + SEGMENT_CAPACITY * SEGMENT_WORDS);
    let staged = 0;
    let segmentCount = 0;
    const flush = () => {
      core.check(exports.ema_step_apply(this.#context, segmentPointer, segmentCount, stagingPointer), 'update');
      staged = 0;
      segmentCount = 0;
    };
    for (let slot = 0; slot < arrays.length; slot++) {
      const data = arrays[slot];
      const length = data.length;
      for (let offset = 0; offset < length; ) {
        const count = Math.min(length - offset, STAGING_FLOATS - staged);
        staging.set(count === length ? data : data.subarray(offset, offset + count), staged);
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
    const core = this.#live();
    this.#scope.check('copyTo');
    if (this.#residentCall(params, 'copyTo')) {
      core.check(core.exports.ema_copy_to_resident(this.#context), 'copyTo');
      return;
    }
    const arrays = this.#resolveInOrder(params) ?? this.#resolveTracked(normalizeParams(params, 'copyTo'), 'copyTo');
    this.#copyShadowsInto(core, arrays);
  }

  /** LitEma.store(parameters): snapshots every array given, trainable or not. */
  store(params) {
    const core = this.#live();
    this.#scope.check('store');
    if (this.#residentCall(params, 'store')) {
      core.check(core.exports.ema_store_resident(this.#context), 'store');
      return;
    }
    this.#storeEntries(core, normalizeParams(params, 'store'), 'store');
  }

  /** LitEma.restore(parameters): writes the last snapshot back, by name. */
  restore(params) {
    const core = this.#live();
    this.#scope.check('restore');
    if (this.#residentCall(params, 'restore')) {
      this.#restoreResident(core, 'restore');
      return;
    }
    this.#restoreInto(core, this.#resolveStored(normalizeParams(params, 'restore'), 'restore'));
  }

  /**
   * LitEma's ema_scope: store, copyTo, `await fn()`, then restore even if fn
   * throws. Returns what fn returns.
   */
  async withEma(params, fn) {
    const core = this.#live();
    this.#scope.check('withEma');
    const exports = core.exports;
    if (this.#paramOffsets !== null) {
      if (typeof params !== 'function' || fn !== undefined) {
        throw new TypeError('ema-wasm: withEma: this EMA is resident: call withEma(fn), without params');
      }
      return this.#scope.run('withEma', {
        store: () => core.check(exports.ema_store_resident(this.#context), 'withEma'),
        swapIn: () => core.check(exports.ema_copy_to_resident(this.#context), 'withEma'),
        restore: () => this.#restoreResident(core, 'withEma'),
      }, params);
    }
    if (typeof fn !== 'function') {
      const hint = typeof params === 'function' ? ' (call withEma(params, fn))' : '';
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}${hint}`);
    }
    const entries = normalizeParams(params, 'withEma');
    const trackedArrays = this.#resolveTracked(entries, 'withEma');
    let stored;
    return this.#scope.run('withEma', {
      store: () => {
        this.#storeEntries(core, entries, 'withEma');
        stored = this.#resolveStored(entries, 'withEma');
      },
      swapIn: () => this.#copyShadowsInto(core, trackedArrays),
      restore: () => this.#restoreInto(core, stored),
    }, fn);
  }

  /** Frees the arena. Every later call throws. Calling it again does nothing. */
  dispose() {
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

  #live() {
    if (this.#core === null) {
      throw new Error('ema-wasm: this EMA was disposed; create a new one with createEma()');
    }
    return this.#core;
  }

  #slotFor(name, method) {
    const slot = this.#slotOf.get(name);
    if (slot === undefined) {
      if (typeof name !== 'string') {
        throw new TypeError(`ema-wasm: ${method}: name must be a string, got ${describe(name)}`);
      }
      throw new Error(`ema-wasm: ${method}: no tracked parameter named '${name}'; tracked: ${quoteList(this.#names)}`);
    }
    return slot;
  }

  /**
   * The fast path of update() and copyTo() for the common call: an array of
   * exactly the tracked entries, in creation order, each well-formed. Returns
   * the arrays in slot order, or null for anything else, which then takes
   * the full path (and its error messages). With thousands of small tensors
   * the full path's checks cost more than the update itself.
   */
  #resolveInOrder(params) {
    const names = this.#names;
    if (!Array.isArray(params) || params.length !== names.length) return null;
    const arrays = new Array(names.length);
    for (let slot = 0; slot < names.length; slot++) {
      const entry = params[slot];
      if (entry === null || typeof entry !== 'object' || entry.name !== names[slot]) return null;
      const { data, shape, trainable } = entry;
      if (!(data instanceof Float32Array) || data.length !== this.#lengths[slot]) return null;
      if (trainable !== undefined && trainable !== true) return null;
      if (shape !== undefined && !shapeHolds(shape, data.length)) return null;
      arrays[slot] = data;
    }
    return arrays;
  }

  /**
   * Checks normalized entries against the tracked set and returns the arrays in slot
   * order. Untrainable entries are skipped, as LitEma skips them, unless they
   * are tracked, which LitEma asserts against.
   */
  #resolveTracked(entries, method) {
    const arrays = new Array(this.#names.length);
    const unknown = [];
    for (const { name, data, trainable } of entries) {
      const slot = this.#slotOf.get(name);
      if (!trainable) {
        if (slot !== undefined) {
          throw new Error(
            `ema-wasm: ${method}: parameter '${name}' is tracked but was passed with trainable: false`,
          );
        }
        continue;
      }
      if (slot === undefined) {
        unknown.push(name);
        continue;
      }
      if (data.length !== this.#lengths[slot]) {
        throw new Error(
          `ema-wasm: ${method}: parameter '${name}' has ${data.length} elements; ` +
            `its shadow has ${this.#lengths[slot]}`,
        );
      }
      arrays[slot] = data;
    }
    if (unknown.length > 0) {
      throw new Error(
        `ema-wasm: ${method}: unknown trainable parameters ${quoteList(unknown)}; ` +
          'pass them with trainable: false or create the EMA with them',
      );
    }
    const missing = this.#names.filter((_, slot) => arrays[slot] === undefined);
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
    for (const { key, data } of state.shadows) {
      const slot = slotOfKey.get(key);
      if (slot === undefined) {
        unknown.push(key);
        continue;
      }
      if (data.length !== this.#lengths[slot]) {
        throw new Error(
          `ema-wasm: ${method}: '${key}' has ${data.length} elements; the shadow of '${this.#names[slot]}' has ${this.#lengths[slot]}`,
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
    for (let slot = 0; slot < arrays.length; slot++) arrays[slot].set(views[slot]);
  }

  /**
   * One view per shadow, kept between calls (making thousands of subarrays
   * per copyTo cost more than the copy) and re-made only when memory has
   * grown. Internal: never handed out.
   */
  #shadowViewsOf(core) {
    const buffer = core.memory.buffer;
    if (this.#shadowViews === null || this.#shadowViewsBuffer !== buffer) {
      this.#shadowViews = this.#shadowOffsets.map((start, slot) => new Float32Array(buffer, start * 4, this.#lengths[slot]));
      this.#shadowViewsBuffer = buffer;
    }
    return this.#shadowViews;
  }

  #storeEntries(core, entries, method) {
    const lengths = entries.map((entry) => entry.data.length);
    const tooLong = entries.find((entry) => entry.data.length > MAX_SLOT_LENGTH);
    if (tooLong) {
      throw new RangeError(
        `ema-wasm: ${method}: parameter '${tooLong.name}' has ${tooLong.data.length} elements; at most ${MAX_SLOT_LENGTH}`,
      );
    }
    const lengthsPointer = core.mallocU32(lengths);
    try {
      core.check(core.exports.ema_backup_prepare(this.#context, entries.length, lengthsPointer), method);
    } finally {
      core.free(lengthsPointer);
    }
    // The backup was just allocated (memory may have grown): fresh view.
    const heap = core.heapF32;
    entries.forEach((entry, index) => {
      heap.set(entry.data, core.exports.ema_backup(this.#context, index) >>> 2);
    });
    this.#stored = {
      names: entries.map((entry) => entry.name),
      lengths,
      indexOf: new Map(entries.map((entry, index) => [entry.name, index])),
    };
  }

  /** Checks entries against the last store; returns [{ index, data }]. */
  #resolveStored(entries, method) {
    if (this.#stored === null) {
      throw new Error(`ema-wasm: ${method}: nothing is stored; call store(params) first`);
    }
    const { names, lengths, indexOf } = this.#stored;
    const targets = [];
    const unknown = [];
    for (const { name, data } of entries) {
      const index = indexOf.get(name);
      if (index === undefined) {
        unknown.push(name);
        continue;
      }
      if (data.length !== lengths[index]) {
        throw new Error(
          `ema-wasm: ${method}: parameter '${name}' has ${data.length} elements; ` +
            `${lengths[index]} were stored`,
        );
      }
      targets.push({ index, data });
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

  #restoreInto(core, targets) {
    const heap = core.heapF32;
    for (const { index, data } of targets) {
      const pointer = core.exports.ema_backup(this.#context, index);
      if (pointer === 0) {
        // #stored and the C backup always change together; this would be our bug.
        throw new Error(`ema-wasm: internal error: no backup array ${index}`);
      }
      data.set(heap.subarray(pointer >>> 2, (pointer >>> 2) + data.length));
    }
  }
}
