// Creating EMAs, and the Ema class: LitEma's API over an arena
// (boundary.js), taking the caller's arrays on every call. A resident EMA,
// whose parameters live in the arena, is its own class (resident-ema.js);
// what both share is BaseEma (base-ema.js).
//
// Every public method reads its arguments once, through the resolution seam
// (resolve.js), checks all of them against the EMA, and only then touches the
// arena, working from what it read with no user code in between. So a call
// that throws leaves the EMA, and every array it was given, exactly as they
// were. The one deliberate exception is restoring (restore, and the end of
// withEma): its job is to give the training weights back, so it writes every
// array it can and then reports the ones it could not (#restoreInto).

import { BaseEma, emaInternals } from './base-ema.js';
import { EmaArena } from './boundary.js';
import { clip, describe, listSome, quoteList, wrongReceiver } from './describe.js';
import { loadModule } from './loader.js';
import { checkFits, creationBytes, inUseBytes, regionBytes, tooLargeMessage } from './memory-budget.js';
import { shadowKey, shadowKeysFor } from './names.js';
import { readOptions, refuseDuplicates, refuseUnusable, resolveParams } from './resolve.js';
import { ResidentEma } from './resident-ema.js';
import { arrayTarget, checkFree } from './scope.js';
import { checkFileArguments, checkSavableShape, COUNTER_KEY, stateFromFile } from './state.js';
import { lengthOf, unusableReason } from './typed-arrays.js';
import { adoptWasmSource } from './wasm-source.js';

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
 * as copies of them (as LitEma does): an Ema, or with `resident: true` a
 * ResidentEma.
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
  // byLitEmaKeys: the names are LitEma's dot-free keys (a file PyTorch wrote),
  // so calls may name parameters as the model does (see Ema).
  return (params, { byLitEmaKeys = false } = {}) => {
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
    const expectedBytes = resident ? needed : needed + regionBytes(lengths);
    // The arrays were pinned by the seam and no user code ran since.
    const initial = tracked.map((entry) => entry.data);
    const arena = new EmaArena(module, { decay, useNumUpdates, lengths, resident, initial, expectedBytes, method, what, needed });
    return resident ? new ResidentEma(arena, build, tracked, keys) : new Ema(arena, build, tracked, keys, byLitEmaKeys);
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
  const ema = create(params, { byLitEmaKeys: state.shadows.some(({ name }) => name === undefined) });
  ema.loadStateDict(new Map([[COUNTER_KEY, Int32Array.of(state.numUpdates)]]), { strict: false });
  return ema;
}

/** See Ema's static block: what the adapters may do inside their own scopes. */
export let adapterAccess;

const { arenaOf, enter, scopeOf, tracked, checkCounter, owner } = emaInternals;

/** An EMA that takes the model's arrays on every call. */
export class Ema extends BaseEma {
  #stored = null; // { names, lengths, indexOf } of the last store, or null
  // Loaded from a file without dotted names (PyTorch's LitEma): its names are
  // LitEma's keys, and a parameter is also found by its name with the dots
  // removed, as LitEma itself matches them.
  #byLitEmaKeys;

  /** @private Use createEma() or loadEma(). */
  constructor(arena, build, tracked, keys, byLitEmaKeys = false) {
    super(arena, build, tracked, keys);
    this.#byLitEmaKeys = byLitEmaKeys;
  }

  /** False: the parameters stay the caller's arrays (see ResidentEma). */
  get resident() {
    Ema.#check(this, 'resident');
    return false;
  }

  /** Only a ResidentEma has its parameters in the arena. */
  param() {
    Ema.#check(this, 'param');
    throw new Error('ema-wasm: param: this EMA is not resident; create it with { resident: true }');
  }

  // ---- the EMA step --------------------------------------------------------

  /**
   * LitEma.forward(model): one EMA step over every tracked parameter.
   * Returns the decay the step used (float32 value).
   */
  update(params) {
    Ema.#check(this, 'update');
    const entries = resolveParams(params, 'update');
    const arena = enter(this, 'update');
    const arrays = this.#matchTracked(entries, 'update');
    checkFree('update', () => targetsOf(arrays), 'read');
    checkCounter(this, arena, 'update');
    // Everything is checked: from here on nothing can fail.
    return arena.update(arrays);
  }

  // ---- swapping weights ----------------------------------------------------

  /** LitEma.copy_to(model): writes every shadow into its trainable array. */
  copyTo(params) {
    Ema.#check(this, 'copyTo');
    const entries = resolveParams(params, 'copyTo');
    const arena = enter(this, 'copyTo');
    const arrays = this.#matchTracked(entries, 'copyTo');
    checkFree('copyTo', () => targetsOf(arrays), 'write');
    arena.copyShadowsInto(arrays);
  }

  /** LitEma.store(parameters): snapshots every array given, trainable or not. */
  store(params) {
    Ema.#check(this, 'store');
    const entries = resolveParams(params, 'store');
    this.#storeChecked(enter(this, 'store'), entries, 'store');
  }

  /**
   * LitEma.restore(parameters): writes the last snapshot back, by name. Every
   * array that can be written is; one that cannot (its buffer was detached)
   * is named in the error thrown afterwards, and stays stored.
   */
  restore(params) {
    Ema.#check(this, 'restore');
    const entries = resolveParams(params, 'restore');
    this.#restoreChecked(enter(this, 'restore'), entries, 'restore');
  }

  /**
   * LitEma's ema_scope: store, copyTo, `await fn()`, then restore even if fn
   * throws. Returns what fn returns. While it runs, the arrays are held:
   * no EMA may store, restore, copy into or update from them.
   */
  async withEma(params, fn) {
    Ema.#check(this, 'withEma');
    if (typeof fn !== 'function') {
      const hint = typeof params === 'function' ? ' (call withEma(params, fn))' : '';
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}${hint}`);
    }
    const entries = resolveParams(params, 'withEma');
    const arena = enter(this, 'withEma');
    const trackedArrays = this.#matchTracked(entries, 'withEma');
    let stored;
    return scopeOf(this).run('withEma', () => owner(this), targetsOf(entries), {
      store: () => {
        this.#storeEntries(arena, entries, 'withEma');
        stored = this.#matchStored(entries, 'withEma');
      },
      swapIn: () => arena.copyShadowsInto(trackedArrays),
      restore: () => this.#restoreInto(arena, stored, 'withEma'),
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
      scopeOf: (ema) => {
        Ema.#check(ema, 'withEma');
        return scopeOf(ema);
      },
      store: (ema, params, method) => {
        Ema.#check(ema, method);
        const entries = resolveParams(params, method);
        ema.#storeChecked(arenaOf(ema, method), entries, method);
      },
      restore: (ema, params, method) => {
        Ema.#check(ema, method);
        const entries = resolveParams(params, method);
        ema.#restoreChecked(arenaOf(ema, method), entries, method);
      },
    });
  }

  // ---- internals -----------------------------------------------------------

  /**
   * A TypeError unless `ema` is an Ema (a method passed as a callback loses
   * its object; a ResidentEma has methods of its own); an Error once disposed.
   */
  static #check(ema, method) {
    if (ema === null || typeof ema !== 'object' || !(#stored in ema)) {
      throw wrongReceiver(method, ema);
    }
    arenaOf(ema, method);
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
    const { names, lengths, slotOf } = tracked(this);
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
      let slot = slotOf.get(name);
      if (slot === undefined && this.#byLitEmaKeys) slot = slotOf.get(shadowKey(name));
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
      if (arrays[slot] !== undefined) {
        // Only by LitEma's rule can two names reach one slot ('a.bc' and 'ab.c').
        throw new Error(
          `ema-wasm: ${method}: parameters '${clip(arrays[slot].name)}' and '${clip(name)}' both stand for ` +
            `'${clip(names[slot])}' once the dots are removed`,
        );
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

  #storeChecked(arena, entries, method) {
    refuseDuplicates(entries, method);
    refuseUnusable(entries, method);
    checkFree(method, () => targetsOf(entries), 'read');
    this.#storeEntries(arena, entries, method);
  }

  #restoreChecked(arena, entries, method) {
    const targets = this.#matchStored(entries, method);
    checkFree(method, () => targetsOf(targets.map(({ entry }) => entry)), 'write');
    this.#restoreInto(arena, targets, method);
  }

  #storeEntries(arena, entries, method) {
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
    if (!reused) checkFits(method, what, backupBytes, inUseBytes(arena.byteLength));
    const outOfMemory = () => new RangeError(tooLargeMessage(method, what, backupBytes, inUseBytes(arena.byteLength)));
    arena.store(entries.map((entry) => entry.data), lengths, method, outOfMemory);
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
  #restoreInto(arena, targets, method) {
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
      arena.restoreInto(index, entry.data, entry.length);
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
