// A resident EMA: the parameters themselves live in the arena, next to their
// shadows. The training loop works in ema.param(name) views, and update,
// copyTo, store, restore and withEma take no arrays: there is nothing to copy
// in, and each is one call into Wasm.

import { BaseEma, emaInternals } from './base-ema.js';
import { wrongReceiver } from './describe.js';
import { readUpdateOptions } from './recipes.js';
import { checkFree, memoryTarget } from './scope.js';

const { enter, scopeOf, slotFor, checkCounter, owner, recipeOf, profileOf } = emaInternals;

export class ResidentEma extends BaseEma {
  // The brand of this kind (methods check it); the arena keeps what is stored.
  #resident = true;
  #averaged; // per slot: whether the recipe averages it (what the non-finite guard reads)

  /** @private Use createEma(). */
  constructor(arena, build, tracked, keys, recipe, modes) {
    super(arena, build, tracked, keys, recipe);
    this.#averaged = modes.map((mode) => mode === 'average');
  }

  /** True: the parameters live in the arena. */
  get resident() {
    ResidentEma.#check(this, 'resident');
    return this.#resident;
  }

  /**
   * The parameter `name` itself, a Float32Array over this EMA's WebAssembly
   * memory, to train in place. A resident EMA allocates everything when it is
   * created, so the view stays valid for the EMA's whole life; after
   * dispose() it must not be used. (Calling param() again always gives a
   * valid view.)
   */
  param(name) {
    const arena = ResidentEma.#check(this, 'param');
    return arena.paramView(slotFor(this, name, 'param'));
  }

  /**
   * One EMA step over the resident parameters (LitEma.forward(model), or the
   * recipe's own); returns what it did, as Ema.update() does. The first
   * argument must be undefined; `options.step` is timm's step (timm only),
   * `options.samples` the power recipe's samples in this step.
   * A Keras overwrite writes the averages into the resident parameters.
   */
  update(params, options = undefined) {
    ResidentEma.#check(this, 'update', params);
    const step = readUpdateOptions(options, recipeOf(this).recipe, 'update');
    const arena = this.#enter('update', recipeOf(this).options.emaOverwriteFrequency != null ? 'write' : 'read');
    checkCounter(this, arena, 'update');
    const result = arena.updateResident(step, 'update');
    if (result === null) {
      // Refused in C; where is read here, for the message only.
      const names = this.names;
      const slot = this.#averaged.findIndex((averaged, s) => averaged && arena.paramView(s).some((x) => x - x !== 0));
      const view = arena.paramView(slot);
      const index = view.findIndex((x) => x - x !== 0);
      throw new RangeError(
        `ema-wasm: update: resident parameter '${names[slot]}' holds ${view[index]} at index ${index}; ` +
          "the step was refused and nothing changed (options.nonFinite is 'throw')",
      );
    }
    return result;
  }

  /**
   * LitEma.copy_to(model): the shadows into the resident parameters.
   * `copyTo({ profile })` picks a profile (default 0).
   */
  copyTo(options = undefined) {
    ResidentEma.#check(this, 'copyTo', ResidentEma.#paramsIn(options));
    const profile = profileOf(this, options, 'copyTo');
    this.#enter('copyTo', 'write').copyToResident('copyTo', profile);
  }

  /** LitEma.store(parameters): snapshots the resident parameters. */
  store(params) {
    ResidentEma.#check(this, 'store', params);
    this.#enter('store', 'read').storeResident('store');
  }

  /** LitEma.restore(parameters): the snapshot back into the resident parameters. */
  restore(params) {
    ResidentEma.#check(this, 'restore', params);
    this.#restore(this.#enter('restore', 'write'), 'restore');
  }

  /**
   * LitEma's ema_scope over the resident parameters: store, copyTo,
   * `await fn()`, then restore even if fn throws. Until the restore lands, no
   * EMA may touch this EMA's memory. `withEma(fn, { profile })` picks the
   * profile swapped in (default 0).
   */
  async withEma(fn, options = undefined) {
    ResidentEma.#check(this, 'withEma');
    if (typeof fn !== 'function' || ResidentEma.#paramsIn(options) !== undefined) {
      throw new TypeError('ema-wasm: withEma: this EMA is resident: call withEma(fn), without params');
    }
    const profile = profileOf(this, options, 'withEma');
    const arena = enter(this, 'withEma');
    return scopeOf(this).run('withEma', () => owner(this), [ResidentEma.#memoryOf(arena)], {
      store: () => arena.storeResident('withEma'),
      swapIn: () => arena.copyToResident('withEma', profile),
      restore: () => this.#restore(arena, 'withEma'),
    }, fn);
  }

  // ---- internals -----------------------------------------------------------

  /**
   * A resident call's first argument as params (refused) or not: options
   * are undefined or an object of `profile`; anything else is taken for
   * params, which a resident EMA does not take.
   */
  static #paramsIn(argument) {
    if (argument === undefined) return undefined;
    // An object with a numeric `profile` is options even with other keys
    // (readOptions then names the unknown one); a params object maps names to arrays.
    const isOptions = argument !== null && typeof argument === 'object' && !Array.isArray(argument) &&
      !(argument instanceof Map) &&
      (Object.keys(argument).every((key) => key === 'profile') || typeof Object.getOwnPropertyDescriptor(argument, 'profile')?.value === 'number');
    return isOptions ? undefined : argument;
  }

  /**
   * A TypeError unless `ema` is a ResidentEma called with no params; an Error
   * once disposed. Returns the arena.
   */
  static #check(ema, method, params = undefined) {
    if (ema === null || typeof ema !== 'object' || !(#resident in ema)) {
      throw wrongReceiver(method, ema);
    }
    const arena = emaInternals.arenaOf(ema, method);
    if (params !== undefined) {
      throw new TypeError(
        `ema-wasm: ${method}: this EMA is resident and takes no params; train in ema.param(name) and call ${method}()`,
      );
    }
    return arena;
  }

  /**
   * What resident calls touch: this EMA's whole memory, not just the
   * parameters. param() views reach all of it, and the backup that holds the
   * training weights during withEma must be as safe as the parameters. (A
   * resident EMA's memory never grows, so its buffer stays the same.)
   */
  static #memoryOf(arena) {
    const buffer = arena.memoryBuffer;
    return memoryTarget("the resident EMA's memory", buffer, buffer.byteLength);
  }

  /** The checks of a resident call that touches this EMA's memory as `mode`; returns the arena. */
  #enter(method, mode) {
    const arena = enter(this, method);
    checkFree(method, () => [ResidentEma.#memoryOf(arena)], mode);
    return arena;
  }

  #restore(arena, method) {
    if (!arena.restoreResident(method)) {
      throw new Error(`ema-wasm: ${method}: nothing is stored; call store() first`);
    }
  }
}
