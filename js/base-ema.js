// What every kind of EMA shares: the tracked names and shapes, LitEma's state
// (decay, counter, shadows), checkpoints, disposal, the scope of its withEma
// and the checks every call makes. How parameters reach the arena is each
// kind's own: Ema takes the caller's arrays (ema.js), ResidentEma keeps them
// in the arena (resident-ema.js).

import { clip, describe, quoteList, wrongReceiver } from './describe.js';
import { readOptions } from './resolve.js';
import { EmaScope } from './scope.js';
import { elementsIn, elementsView } from './typed-arrays.js';
import { profileKeyPrefixes, recipeStateDict, recipeStateFromDict, recipeStateFromFile, recipeStateToFile, reservedKeys, stateTargets } from './recipe-state.js';
import { DTYPE_WORDS, isWidthOfGamma, optionsFromSchedule, sigmaRelOfGamma } from './recipes.js';
import { readSnapshotOptions, SNAPSHOT_METADATA_KEY, snapshotName, snapshotStateDict } from './snapshots.js';
import { checkFileArguments, COUNTER_KEY, DECAY_KEY, MAX_NUM_UPDATES, readFileOptions, stateFromDict, stateFromFile, stateToFile } from './state.js';

/** See BaseEma's static block: what the kinds of EMA reach of the base. */
export let emaInternals;

export class BaseEma {
  #arena;
  #build;
  #names; // tracked parameter names, in order
  #keys; // LitEma shadow keys (dots removed), same order
  #shapes;
  #lengths;
  #dtypes; // 'f32', or 'i32'/'i64' for integer buffers (kept as raw words)
  #kinds; // how each was passed: 'param', 'frozen' or 'buffer'
  #slotOf; // name -> slot index
  #recipe; // { recipe, options, schedule } from readRecipe
  #scope = new EmaScope();

  /** @private Use createEma(). */
  constructor(arena, build, tracked, keys, recipe) {
    this.#arena = arena;
    this.#build = build;
    this.#names = tracked.map((entry) => entry.name);
    this.#keys = keys;
    this.#shapes = tracked.map(({ shape, elements }) => (shape === undefined ? [elements] : shape.slice()));
    this.#lengths = tracked.map((entry) => entry.length);
    this.#dtypes = tracked.map((entry) => entry.dtype);
    this.#kinds = tracked.map((entry) => (entry.buffer ? 'buffer' : entry.trainable ? 'param' : 'frozen'));
    this.#slotOf = new Map(this.#names.map((name, slot) => [name, slot]));
    this.#recipe = recipe;
  }

  /** Which reference library's EMA this follows ('litema', 'diffusers', ...). */
  get recipe() {
    BaseEma.#arenaOf(this, 'recipe');
    return this.#recipe.recipe;
  }

  /**
   * The power recipe's profiles, one per width given: [{ sigmaRel, gamma }]
   * (sigmaRel null when the profile was given by gamma); null for the other
   * recipes. A fresh array.
   */
  get profiles() {
    const arena = BaseEma.#arenaOf(this, 'profiles');
    if (this.#recipe.recipe !== 'power') return null;
    return Array.from({ length: arena.profileCount }, (_, profile) => {
      const { sigma_rel: sigmaRel, power: gamma } = arena.profileSchedule(profile);
      return { sigmaRel: sigmaRel === 0 ? null : sigmaRel, gamma };
    });
  }

  /** The recipe's options, every one (defaults included), as a fresh object. */
  get options() {
    BaseEma.#arenaOf(this, 'options');
    return structuredClone(this.#recipe.options);
  }

  /**
   * The recipe's counter: LitEma's and torch_ema's num_updates (-1 with
   * warmup off), diffusers' optimization_step, ema-pytorch's step (calls),
   * Keras's iterations, the debiased EMA's count, timm's update calls.
   */
  get counter() {
    return BaseEma.#arenaOf(this, 'counter').counter;
  }

  /**
   * Updates that averaged or copied since creation (skipped ones do not
   * count): the training step, which the power recipe's counter is not when
   * a step brings several samples. The power recipe saves it.
   */
  get steps() {
    return BaseEma.#arenaOf(this, 'steps').steps;
  }

  // ---- state ---------------------------------------------------------------

  /**
   * The base decay (beta for ema-pytorch, ema_momentum for Keras): LitEma's
   * is the float32 value it stores, the others the float64 their library
   * keeps.
   */
  get decay() {
    return BaseEma.#arenaOf(this, 'decay').schedule.decay;
  }

  /** The counter (see `counter`); for LitEma, updates since creation or reset, -1 when warmup is off. */
  get numUpdates() {
    return BaseEma.#arenaOf(this, 'numUpdates').counter;
  }

  /** Tracked parameter names, in creation order (a copy). */
  get names() {
    BaseEma.#arenaOf(this, 'names');
    return this.#names.slice();
  }

  /** True when a SIMD128 build runs (the SIMD128 or the threads build), false for the scalar build. */
  get simd() {
    BaseEma.#arenaOf(this, 'simd');
    return this.#build !== 'scalar';
  }

  /** Which build runs: 'threads', 'simd' or 'scalar'. */
  get build() {
    BaseEma.#arenaOf(this, 'build');
    return this.#build;
  }

  /**
   * How many threads share a step: 1, or the calling thread and the live
   * workers (fewer than asked when a worker stopped; 1 until they started).
   */
  get threads() {
    return BaseEma.#arenaOf(this, 'threads').threads;
  }

  /** Whether update() returns once the parameters are copied, the averaging finishing in the workers. */
  get background() {
    return BaseEma.#arenaOf(this, 'background').background;
  }

  /** Bytes the arena holds in linear memory (shadows, staging, backup). */
  get byteLength() {
    return BaseEma.#arenaOf(this, 'byteLength').byteLength;
  }

  /** LitEma.reset_num_updates(): the counter goes to 0, turning warmup on. */
  resetNumUpdates() {
    const arena = BaseEma.#arenaOf(this, 'resetNumUpdates');
    if (this.#recipe.recipe === 'debiased') {
      // Its average would keep its weight while the correction starts over.
      throw new Error(
        "ema-wasm: resetNumUpdates: a debiased EMA's count goes with its average; create a new EMA to start over",
      );
    }
    if (this.#recipe.recipe === 'power') {
      // A profile is defined from the start of training, and its snapshots are placed by samples and steps.
      throw new Error(
        "ema-wasm: resetNumUpdates: a power EMA's sample count is its profiles' time axis, which its snapshots are placed on; create a new EMA to start over",
      );
    }
    arena.resetNumUpdates('resetNumUpdates');
  }

  /**
   * A copy of the shadow of parameter `name`: what copyTo() writes (for a
   * debiased EMA, the bias-corrected average). An integer buffer's copy is
   * an Int32Array or a BigInt64Array, like the buffer. `options.profile`
   * picks a profile (default 0).
   */
  shadow(name, options = undefined) {
    BaseEma.#arenaOf(this, 'shadow');
    const profile = this.#profileOf(options, 'shadow');
    const arena = BaseEma.#arenaOf(this, 'shadow');
    const slot = this.#slotFor(name, 'shadow');
    const copy = arena.shadow(slot, this.#dtypes[slot] === 'f32' ? BaseEma.#readDivisor(arena, 'shadow') : 1, profile);
    return elementsView(copy, this.#dtypes[slot]);
  }

  /** Shape of a tracked parameter (a copy), as given at creation. */
  shape(name) {
    BaseEma.#arenaOf(this, 'shape');
    return this.#shapes[this.#slotFor(name, 'shape')].slice();
  }

  /**
   * LitEma's state_dict(): 'decay' (Float32Array of 1), 'num_updates'
   * (Int32Array of 1), then each shadow under its name with the dots removed.
   * Every other recipe: its counters and options under the names its library
   * uses (RECIPE_SCALARS in recipe-state.js), then each shadow under its
   * parameter's name, in its element type. Every value is a copy.
   * Several power profiles: `sigma_rel` and `gamma` list every profile's, and
   * profile k's shadows are under 'profiles.<k>.<name>'; with
   * `options.profile`, the state of that profile alone, as a one-profile
   * EMA's.
   */
  stateDict(options = undefined) {
    BaseEma.#arenaOf(this, 'stateDict');
    const profile = this.#profileOf(options, 'stateDict', true);
    const arena = BaseEma.#arenaOf(this, 'stateDict');
    if (this.#recipe.recipe !== 'litema') return recipeStateDict(arena, this.#recipe.recipe, this.#names, this.#dtypes, profile);
    const state = new Map();
    state.set(DECAY_KEY, Float32Array.of(arena.decay));
    state.set(COUNTER_KEY, Int32Array.of(arena.numUpdates));
    this.#keys.forEach((key, slot) => state.set(key, arena.shadow(slot)));
    return state;
  }

  /**
   * LitEma's load_state_dict: 'decay', 'num_updates' and each shadow under
   * its LitEma key, as stateDict() returns them (a Map or a plain object).
   * strict (default): exactly the tracked keys, no more, no fewer; otherwise
   * what is present is loaded and unknown keys are ignored. All or nothing.
   */
  loadStateDict(state, options = {}) {
    BaseEma.#arenaOf(this, 'loadStateDict');
    const { strict = true } = readOptions(options, ['strict'], 'loadStateDict');
    if (this.#recipe.recipe !== 'litema') {
      const checked = recipeStateFromDict(state, this.#recipe.recipe, 'loadStateDict');
      this.#applyRecipeState(BaseEma.#arenaOf(this, 'loadStateDict'), checked, strict, 'loadStateDict');
      return;
    }
    const checked = stateFromDict(state, 'loadStateDict');
    // Reading ran the caller's getters, which may have disposed this EMA.
    this.#applyState(BaseEma.#arenaOf(this, 'loadStateDict'), checked, strict, 'loadStateDict');
  }

  /**
   * The state as a safetensors file: '<prefix>decay' (F32 scalar),
   * '<prefix>num_updates' (I32 scalar) and each shadow as F32 under
   * '<prefix><LitEma key>' with its shape. The metadata records the dotted
   * names; `metadata` adds string entries of your own. `profile` saves one
   * profile of several, as stateDict().
   */
  save(options = {}) {
    BaseEma.#arenaOf(this, 'save');
    // Options first: reading them runs the caller's getters, which must not
    // run between taking the state and copying it into the file.
    const { profile: profileOption, ...rest } = readOptions(options, ['prefix', 'metadata', 'profile'], 'save');
    const fileOptions = readFileOptions(rest, 'save');
    const profile = this.#profileOf({ profile: profileOption }, 'save', true);
    const arena = BaseEma.#arenaOf(this, 'save');
    if (this.#recipe.recipe !== 'litema') {
      const stateDict = recipeStateDict(arena, this.#recipe.recipe, this.#names, this.#dtypes, profile);
      const shapes = new Map();
      for (const keyPrefix of profileKeyPrefixes(arena, profile)) {
        this.#names.forEach((name, slot) => shapes.set(`${keyPrefix}${name}`, { shape: this.#shapes[slot], dtype: this.#dtypes[slot] }));
      }
      return recipeStateToFile({
        recipe: this.#recipe.recipe,
        // One profile of a power EMA saves as a one-profile EMA, with that profile's width.
        options: profile === undefined || this.#recipe.recipe !== 'power' ? this.#recipe.options
          : optionsFromSchedule('power', this.#recipe.options, arena.profileSchedule(profile)),
        stateDict,
        shapes,
        kinds: Object.fromEntries(this.#names.map((name, slot) => [name, this.#kinds[slot]])),
      }, fileOptions, 'save');
    }
    // stateToFile copies the shadows' views before any other code can run.
    return arena.readShadows((views) => stateToFile({
      decay: arena.decay,
      numUpdates: arena.numUpdates,
      shadows: this.#keys.map((key, slot) => ({ key, name: this.#names[slot], shape: this.#shapes[slot], data: views[slot] })),
    }, fileOptions, 'save'));
  }

  /**
   * Snapshots for post-hoc EMA (reconstruct()): one per profile, each its
   * weights now as a safetensors file (`options.dtype` 'float32', the
   * default, or 'float16' at half the size) with the step, samples and
   * profile in its metadata. Returns [{ name, profile, sigmaRel, gamma,
   * step, samples, batchSize, dtype, bytes }]; `name` is the file name
   * writeSnapshots() gives it. A float32 snapshot is also a one-profile
   * checkpoint loadEma() reads.
   */
  snapshot(options = undefined) {
    BaseEma.#arenaOf(this, 'snapshot');
    const { dtype } = readSnapshotOptions(options, 'snapshot');
    const arena = BaseEma.#arenaOf(this, 'snapshot');
    if (this.#recipe.recipe !== 'power') {
      throw new Error(
        `ema-wasm: snapshot: snapshots are of power-function profiles, for post-hoc EMA; this EMA follows recipe '${this.#recipe.recipe}' ` +
          "(create it with recipe: 'power', e.g. sigmaRel: [0.05, 0.1])",
      );
    }
    const step = arena.steps;
    if (step === 0) throw new Error('ema-wasm: snapshot: no update yet; a snapshot holds the average after one or more steps');
    const samples = arena.counter;
    const shapes = new Map(this.#names.map((name, slot) => [name, { shape: this.#shapes[slot], dtype: dtype === 'F16' ? 'f16' : 'f32' }]));
    const kinds = Object.fromEntries(this.#names.map((name, slot) => [name, this.#kinds[slot]]));
    return Array.from({ length: arena.profileCount }, (_, profile) => {
      const schedule = arena.profileSchedule(profile);
      const info = {
        step, samples, profile, sigmaRel: schedule.sigma_rel === 0 ? null : schedule.sigma_rel, gamma: schedule.power,
        batchSize: schedule.batch_size, dtype,
      };
      const stateDict = snapshotStateDict(recipeStateDict(arena, 'power', this.#names, this.#dtypes, profile), this.#names, dtype, profile);
      const bytes = recipeStateToFile({
        recipe: 'power', options: optionsFromSchedule('power', this.#recipe.options, schedule), stateDict, shapes, kinds,
      }, { prefix: '', metadata: [[SNAPSHOT_METADATA_KEY, JSON.stringify(info)]] }, 'snapshot');
      return { name: snapshotName(step, profile), ...info, bytes };
    });
  }

  /**
   * Loads a safetensors file (from save() or PyTorch) into this EMA, under
   * `prefix`. Same rules as loadStateDict; a file that fails any check
   * changes nothing.
   */
  async loadState(bytes, options = {}) {
    const { module } = BaseEma.#arenaOf(this, 'loadState');
    const { prefix = '', strict = true } = readOptions(options, ['prefix', 'strict'], 'loadState');
    if (this.#recipe.recipe !== 'litema') {
      checkFileArguments(bytes, prefix, 'loadState');
      const state = await recipeStateFromFile(bytes, prefix, this.#recipe.recipe, 'loadState', module);
      this.#applyRecipeState(BaseEma.#arenaOf(this, 'loadState'), state, strict, 'loadState');
      return;
    }
    const state = await stateFromFile(bytes, prefix, 'loadState', module);
    this.#applyState(BaseEma.#arenaOf(this, 'loadState'), state, strict, 'loadState');
  }

  /** Frees the arena. Every later call throws. Calling it again does nothing. */
  dispose() {
    if (!BaseEma.#isEma(this)) BaseEma.#arenaOf(this, 'dispose'); // throws: not an EMA
    if (this.#arena === null) return;
    this.#scope.check('dispose');
    const arena = this.#arena;
    // Disposed even when finishing a step in flight throws (a worker died in it).
    this.#arena = null;
    arena.dispose();
  }

  /**
   * For the kinds of EMA (ema.js, resident-ema.js) only: the arena and the
   * checks a call makes, the scope, and what is tracked.
   */
  static {
    emaInternals = Object.freeze({
      arenaOf: (ema, method) => BaseEma.#arenaOf(ema, method),
      enter: (ema, method) => ema.#enter(method),
      scopeOf: (ema) => ema.#scope,
      tracked: (ema) => ({ names: ema.#names, lengths: ema.#lengths, dtypes: ema.#dtypes, slotOf: ema.#slotOf }),
      recipeOf: (ema) => ema.#recipe,
      readDivisor: (arena, method) => BaseEma.#readDivisor(arena, method),
      profileOf: (ema, options, method) => ema.#profileOf(options, method),
      // loadStateDict under another method's name (loadEma's own loading).
      loadStateDictAs: (ema, state, strict, method) => {
        const checked = recipeStateFromDict(state, ema.#recipe.recipe, method);
        ema.#applyRecipeState(BaseEma.#arenaOf(ema, method), checked, strict, method);
      },
      slotFor: (ema, name, method) => ema.#slotFor(name, method),
      checkCounter: (ema, arena, method) => BaseEma.#checkCounter(arena, ema.#recipe.recipe, method),
      owner: (ema) => `an EMA of ${quoteList(ema.#names)}`,
    });
  }

  // ---- internals -----------------------------------------------------------

  static #isEma(value) {
    return value !== null && typeof value === 'object' && #arena in value;
  }

  /**
   * The arena of `ema` for a call of `method`: throws a TypeError when the
   * method was called on something else (a method passed as a callback loses
   * its object), and an Error once the EMA is disposed.
   */
  static #arenaOf(ema, method) {
    if (!BaseEma.#isEma(ema)) {
      throw wrongReceiver(method, ema);
    }
    if (ema.#arena === null) {
      throw new Error(`ema-wasm: ${method}: this EMA was disposed; create a new one`);
    }
    return ema.#arena;
  }

  /**
   * The checks every call that changes state makes after it has read its
   * arguments (reading runs the caller's getters, which may have disposed
   * this EMA or opened its withEma): returns the arena.
   */
  #enter(method) {
    const arena = BaseEma.#arenaOf(this, method);
    this.#scope.check(method);
    return arena;
  }

  /**
   * What shadows are divided by when read: 1, or for a debiased EMA its bias
   * correction, which does not exist before the first update (an Error).
   */
  static #readDivisor(arena, method) {
    const divisor = arena.readDivisor;
    if (divisor === 0) {
      throw new Error(
        `ema-wasm: ${method}: this debiased EMA has no average yet: its bias correction divides by 1 - decay^0 = 0; call update() first`,
      );
    }
    return divisor;
  }

  static #checkCounter(arena, recipe, method) {
    const numUpdates = arena.counter;
    if (recipe === 'debiased') return; // optax's count saturates
    if (recipe !== 'litema') {
      if (numUpdates >= Number.MAX_SAFE_INTEGER) {
        throw new RangeError(`ema-wasm: ${method}: the counter is ${numUpdates}, the most it can count (2^53 - 1)`);
      }
      return;
    }
    if (numUpdates >= MAX_NUM_UPDATES) {
      throw new RangeError(
        `ema-wasm: ${method}: num_updates is ${numUpdates}, the most it can count (EMA_MAX_NUM_UPDATES, so that ` +
          "LitEma's int32 (10 + num_updates) cannot overflow); call resetNumUpdates() or load a state with a smaller count",
      );
    }
  }

  /**
   * A power state's widths: a gamma given with a sigma_rel must be its
   * profile's (else one would be silently ignored); a gamma given alone sets
   * the width by gamma (sigma_rel 0), as a state written by gamma has it.
   * Completes `fields` in place.
   */
  static #checkWidths(fields, method) {
    if (fields.power === undefined) return;
    const gammas = [fields.power].flat();
    if (fields.sigma_rel === undefined) {
      fields.sigma_rel = Array.isArray(fields.power) ? gammas.map(() => 0) : 0;
      return;
    }
    [fields.sigma_rel].flat().forEach((sigmaRel, k) => {
      const g = gammas[k];
      if (sigmaRel !== 0 && !isWidthOfGamma(sigmaRel, g)) {
        throw new Error(
          `ema-wasm: ${method}: state 'gamma' ${g} is the profile of sigma_rel ${sigmaRelOfGamma(g)}, not of state 'sigma_rel' ${sigmaRel}` +
            (gammas.length > 1 ? ` (profile ${k})` : '') + '; give one of them, or both as save() writes them',
        );
      }
    });
  }

  /** The schedule's fields, with every profile's width as a list when there are several. */
  static #scheduleFields(arena) {
    const fields = arena.schedule;
    if (arena.profileCount === 1) return fields;
    const schedules = Array.from({ length: arena.profileCount }, (_, profile) => arena.profileSchedule(profile));
    return { ...fields, sigma_rel: schedules.map((schedule) => schedule.sigma_rel), power: schedules.map((schedule) => schedule.power) };
  }

  /**
   * The profile `options.profile` names: 0 when not given (undefined when
   * not given and `allWhenAbsent`); an integer below the profile count.
   */
  #profileOf(options, method, allWhenAbsent = false) {
    const { profile } = options === undefined ? {} : readOptions(options, ['profile'], method);
    if (profile === undefined) return allWhenAbsent ? undefined : 0;
    const count = BaseEma.#arenaOf(this, method).profileCount;
    const which = count > 1 ? `this EMA keeps ${count} profiles, 0 to ${count - 1}` : 'this EMA keeps one profile, 0';
    if (!Number.isInteger(profile)) {
      throw new TypeError(`ema-wasm: ${method}: options.profile must be an integer (${which}), got ${describe(profile)}`);
    }
    if (profile < 0 || profile >= count) {
      throw new RangeError(`ema-wasm: ${method}: options.profile must be a profile's index (${which}), got ${profile}`);
    }
    return profile;
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
   * Checks a recipe's whole state (recipe-state.js's checked form) against
   * this EMA, then applies it: schedule options, counter, `initted`, shadows.
   */
  #applyRecipeState(arena, { scalars, shadows: given, profileCount }, strict, method) {
    const recipe = this.#recipe.recipe;
    if (profileCount !== arena.profileCount) {
      throw new Error(
        `ema-wasm: ${method}: the state holds ${profileCount} profile${profileCount === 1 ? '' : 's'}; this EMA keeps ${arena.profileCount}` +
          (profileCount === 1 ? ' (save one profile of several with save({ profile }) / stateDict({ profile }), and load it into a one-profile EMA)' : ''),
      );
    }
    const several = profileCount > 1;
    const shownKey = (key, profile) => (several ? `profiles.${profile}.${key}` : key);
    const shadows = [];
    const unknown = [];
    for (const { key: name, profile, dtype, data, length, elements } of given) {
      const slot = this.#slotOf.get(name);
      const key = shownKey(name, profile);
      if (slot === undefined) {
        unknown.push(key);
        continue;
      }
      if (dtype !== this.#dtypes[slot]) {
        throw new Error(`ema-wasm: ${method}: '${clip(key)}' holds ${DTYPE_WORDS[dtype]}; the shadow of '${clip(key)}' holds ${DTYPE_WORDS[this.#dtypes[slot]]}`);
      }
      if (length !== this.#lengths[slot]) {
        throw new Error(
          `ema-wasm: ${method}: '${clip(key)}' has ${elements} elements; the shadow of '${clip(key)}' has ${elementsIn(this.#lengths[slot], this.#dtypes[slot])}`,
        );
      }
      shadows.push({ slot, data, profile });
    }
    if (strict) {
      if (unknown.length > 0) {
        throw new Error(`ema-wasm: ${method}: unexpected keys ${quoteList(unknown)} (pass strict: false to ignore them)`);
      }
      const present = new Set(given.map(({ key, profile }) => shownKey(key, profile)));
      const expected = Array.from({ length: profileCount }, (_, profile) => this.#names.map((name) => shownKey(name, profile))).flat();
      const missing = [
        ...[...reservedKeys(recipe)].filter((key) => !scalars.has(key)),
        ...expected.filter((key) => !present.has(key)),
      ];
      if (missing.length > 0) {
        throw new Error(`ema-wasm: ${method}: missing keys ${quoteList(missing)} (pass strict: false to load a part)`);
      }
    }
    const { fields, counter, steps, initted } = stateTargets(scalars, recipe);
    if (recipe === 'power') {
      BaseEma.#checkWidths(fields, method);
      // Every step brings one or more samples: snapshots rely on it.
      const samples = counter ?? arena.counter;
      const stepCount = steps ?? arena.steps;
      if (stepCount > samples) {
        throw new RangeError(`ema-wasm: ${method}: the state has ${samples} samples after ${stepCount} steps; each step brings one or more samples`);
      }
    }
    // Everything is checked: nothing below can fail. Per-profile fields are
    // lists: profile 0's value goes with the shared fields, then each other's.
    const widthOf = (profile) => Object.fromEntries(Object.entries(fields).filter(([, value]) => Array.isArray(value)).map(([field, values]) => [field, values[profile]]));
    if (Object.keys(fields).length > 0) arena.setSchedule({ ...fields, ...widthOf(0) }, method);
    if (several) for (let profile = 1; profile < profileCount; profile++) arena.setProfileWidth(profile, widthOf(profile), method);
    if (counter !== undefined) arena.setCounter(counter, method);
    if (steps !== undefined) arena.setSteps(steps, method);
    if (initted !== undefined) arena.setInitted(initted, method);
    arena.loadState({ decay: undefined, numUpdates: undefined, shadows }, method);
    this.#recipe = { ...this.#recipe, options: optionsFromSchedule(recipe, this.#recipe.options, BaseEma.#scheduleFields(arena)) };
  }

  /** Checks a whole state against this EMA, then applies it. */
  #applyState(arena, state, strict, method) {
    const slotOfKey = new Map(this.#keys.map((key, slot) => [key, slot]));
    const shadows = [];
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
      shadows.push({ slot, data });
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
    arena.loadState({ decay: state.decay, numUpdates: state.numUpdates, shadows }, method);
  }
}
