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
import { hasWasmSimd, loadModule, loadThreadsModule } from './loader.js';
import { checkFits, creationBytes, inUseBytes, regionBytes, tooLargeMessage } from './memory-budget.js';
import { shadowKey, shadowKeysFor } from './names.js';
import { readOptions, refuseDuplicates, refuseUnusable, resolveParams } from './resolve.js';
import { RECIPE_METADATA_KEY, RECIPE_SCALARS, recipeStateFromFile, reservedKeys, stateTargets } from './recipe-state.js';
import { ALL_RECIPE_OPTION_KEYS, checkSafeInteger, DTYPE_WORDS, entryKind, NONFINITE, optionsOfFields, readRecipe, readUpdateOptions, RECIPES, treatmentOf } from './recipes.js';
import { parseSafetensors } from './safetensors.js';
import { ResidentEma } from './resident-ema.js';
import { arrayTarget, checkFree } from './scope.js';
import { checkFileArguments, checkSavableShape, COUNTER_KEY, stateFromFile } from './state.js';
import { elementsIn, elementsView, lengthOf, unusableReason } from './typed-arrays.js';
import { availableThreads, MAX_WORKERS, threadsUnavailableReason } from './threads.js';
import { adoptWasmSource } from './wasm-source.js';

const MAX_SLOTS = 1048576; // EMA_MAX_SLOTS in include/ema.h

/** createEma's options and their defaults. */
// recipe: which reference library's EMA (recipes.js); its own options
// (decay, useNumUpdates, ...) are read by readRecipe. wasm: a module to use
// instead of the built-in builds (see wasm-source.js).
// threads: 'auto', or how many threads (the calling one included) share a
// step; background: whether update() returns before the averaging ends.
export const EMA_OPTION_DEFAULTS = Object.freeze({
  recipe: 'litema', decay: 0.9999, useNumUpdates: true, nonFinite: 'allow', simd: 'auto', resident: false, wasm: undefined,
  threads: 'auto', background: false,
});
/**
 * Floats from which threads: 'auto' runs a resident EMA on the threads build
 * (2 MiB of parameters): below it a step takes well under a millisecond,
 * and waking the workers costs about what they would save.
 */
export const AUTO_THREADS_MIN_FLOATS = 1 << 19;
const EMA_OPTION_KEYS = [...new Set([...Object.keys(EMA_OPTION_DEFAULTS), ...ALL_RECIPE_OPTION_KEYS])];

/** Checks option values already read by readOptions(). */
function checkOptionValues(values, method) {
  // An option given as undefined takes its default, as an absent one does.
  const given = Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined));
  const { simd, resident, nonFinite } = { ...EMA_OPTION_DEFAULTS, ...given };
  // First: a promise given as options.wasm must not reject unhandled when another option is refused.
  const wasm = adoptWasmSource(values.wasm);
  const recipe = readRecipe(values, nonFinite, method);
  if (simd !== 'auto' && simd !== true && simd !== false) {
    throw new TypeError(`ema-wasm: ${method}: options.simd must be 'auto', true or false, got ${describe(simd)}`);
  }
  if (typeof resident !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: options.resident must be a boolean, got ${describe(resident)}`);
  }
  if (resident && recipe.recipe === 'debiased') {
    throw new Error(`ema-wasm: ${method}: a debiased EMA cannot be resident: its shadows are read through the bias correction`);
  }
  return { recipe, simd, resident, wasm, ...checkThreadOptions(given, simd, resident, wasm, method) };
}

/**
 * Checks options.threads and options.background against each other and the
 * rest. Returns { threads, background, threadsRefused }: threadsRefused is
 * why 'auto' runs single-threaded here (null when it need not).
 */
function checkThreadOptions(given, simd, resident, wasm, method) {
  const { threads, background } = { ...EMA_OPTION_DEFAULTS, ...given };
  if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1 && threads <= MAX_WORKERS + 1)) {
    throw new TypeError(
      `ema-wasm: ${method}: options.threads must be 'auto' or a whole number of threads from 1 to ${MAX_WORKERS + 1}, got ${describe(threads)}`,
    );
  }
  if (typeof background !== 'boolean') {
    throw new TypeError(`ema-wasm: ${method}: options.background must be a boolean, got ${describe(background)}`);
  }
  if (background && threads === 1) {
    throw new TypeError(`ema-wasm: ${method}: options.background needs workers, but options.threads is 1; leave threads at 'auto' or give 2 or more`);
  }
  if (background && resident) {
    throw new Error(
      `ema-wasm: ${method}: a resident EMA cannot average in the background: its parameters are the ones training changes meanwhile; ` +
        'use update(params) (resident: false) with background: true',
    );
  }
  let refused = null;
  if (threads !== 1) {
    refused =
      wasm !== undefined ? 'options.wasm hands over a module, and only the built-in threads build runs on several threads'
        : simd === false ? 'options.simd is false, and the threads build is a SIMD128 build'
          : !hasWasmSimd() ? 'this runtime does not support WebAssembly SIMD, which the threads build needs'
            : threadsUnavailableReason();
    if (refused === null && threads === 'auto' && availableThreads() < 2) refused = 'this runtime reports one core';
    if (refused !== null && threads !== 'auto') {
      throw new Error(`ema-wasm: ${method}: options.threads is ${threads}, but ${refused}; use threads: 'auto' to fall back to one thread`);
    }
  }
  return { threads, background, threadsRefused: threads === 1 ? 'options.threads is 1' : refused };
}

/**
 * Creates an EMA of the trainable entries of `params`, with shadows starting
 * as copies of them (as LitEma does): an Ema, or with `resident: true` a
 * ResidentEma.
 */
export async function createEma(params, options = {}) {
  const create = await prepareEma(readOptions(options, EMA_OPTION_KEYS, 'createEma'), 'createEma');
  return startThreads(create(params), 'createEma');
}

/**
 * Resolves to `ema` once its workers (if it runs the threads build) can take
 * steps. When they cannot start and options.threads asked for them, the EMA
 * is disposed and the promise rejects; with 'auto' it runs on its calling
 * thread and `ema.threads` says 1.
 */
export async function startThreads(ema, method) {
  try {
    await emaInternals.arenaOf(ema, method).attachThreads();
  } catch (error) {
    ema.dispose();
    throw new Error(`ema-wasm: ${method}: the threads build's workers could not start (${error.message})`, { cause: error });
  }
  return ema;
}

/**
 * The asynchronous half of creating an EMA: checks option values (read by
 * the caller with readOptions) and compiles the build. Returns
 * create(params), which reads `params` and builds the EMA synchronously, so
 * nothing can run between reading the arrays and copying them into the arena.
 * The adapters use it with their own method name and option list.
 */
export async function prepareEma(optionValues, method) {
  const { recipe, simd, resident, wasm, threads, background, threadsRefused } = checkOptionValues(optionValues, method);
  const { module, build } = await loadModule(simd, wasm, method);
  // Compiled only where 'auto' might choose it (see useThreads below: a
  // resident or background EMA; the size is not known yet): a copy-in EMA
  // in the foreground never pays for it.
  const mayThread = threadsRefused === null && (threads !== 'auto' || background || resident);
  const threadsModule = mayThread ? await loadThreadsModule(method) : null;
  // byLitEmaKeys: the names are LitEma's dot-free keys (a file PyTorch wrote),
  // so calls may name parameters as the model does (see Ema).
  return (params, { byLitEmaKeys = false } = {}) => {
    const entries = resolveParams(params, method);
    refuseDuplicates(entries, method);
    refuseUnusable(entries, method);
    const modes = [];
    const tracked = entries.filter((entry) => {
      const treatment = treatmentOf(recipe.recipe, recipe.options, entry);
      if (treatment !== 'skip') modes.push(treatment);
      return treatment !== 'skip';
    });
    if (resident) {
      const integer = tracked.find((entry) => entry.dtype !== 'f32');
      if (integer !== undefined) {
        throw new TypeError(
          `ema-wasm: ${method}: a resident EMA keeps float32 parameters only; '${clip(integer.name)}' is ${entryKind(integer)}`,
        );
      }
    }
    // Arrays another EMA's withEma holds have EMA weights in them just now.
    checkFree(method, () => targetsOf(tracked), 'read');
    if (tracked.length > MAX_SLOTS) {
      throw new RangeError(
        `ema-wasm: ${method}: ${tracked.length.toLocaleString('en-US')} tracked entries; ` +
          `an EMA tracks at most ${MAX_SLOTS.toLocaleString('en-US')} (EMA_MAX_SLOTS)`,
      );
    }
    const keys = shadowKeysFor(tracked.map((entry) => entry.name), method, recipe.recipe === 'litema');
    const reserved = reservedKeys(recipe.recipe);
    const clash = keys.find((key) => reserved.has(key));
    if (clash !== undefined) {
      throw new Error(
        `ema-wasm: ${method}: parameter '${clip(clash)}' has the name of ${RECIPES[recipe.recipe].title}'s own ` +
          `'${clip(clash)}' state entry, so its shadow could not be saved; rename the parameter`,
      );
    }
    for (const { shape, name } of tracked) if (shape !== undefined) checkSavableShape(shape, name, method);
    const lengths = tracked.map((entry) => entry.length);
    const profileCount = recipe.profiles?.length ?? 1;
    // The threads build when it may run and pays: asked for by number, or
    // 'auto' with a background step, or resident with enough parameters. Not
    // 'auto' for update(params) in the foreground: there only the calling
    // thread can copy the caller's arrays, and V8 copies into shared memory
    // slower than into unshared, which on 2 cores ate the workers' gain
    // (bench/threads.mjs; README, Threads on 2 cores).
    const floats = lengths.reduce((sum, length) => sum + length, 0);
    const useThreads = threadsModule !== null && (threads !== 'auto' || background || (resident && floats >= AUTO_THREADS_MIN_FLOATS));
    // A background step copies the parameters into a mirror in the arena.
    const mirror = useThreads && background;
    const needed = creationBytes(lengths, resident, profileCount) + (mirror ? regionBytes(lengths) : 0);
    const shadowsWhat = profileCount > 1 ? `the shadows of ${profileCount} profiles` : 'the shadows';
    const what = resident ? `${shadowsWhat}, the resident parameters and their backup` : mirror ? `${shadowsWhat} and the parameters' mirror (background: true)` : shadowsWhat;
    checkFits(method, what, needed);
    // Size memory for one store() of the tracked arrays as well (what
    // withEma needs) when that fits, so evaluating never grows it.
    const expectedBytes = resident ? needed : needed + regionBytes(lengths);
    // The arrays were pinned by the seam and no user code ran since. Some
    // recipes' averages start from zero (Keras's, a debiased EMA's).
    const zeroShadows = RECIPES[recipe.recipe].startsAtZero === true;
    const initial = tracked.map((entry) => entry.data);
    // 'auto' gives each thread at least AUTO_THREADS_MIN_FLOATS / 2 floats:
    // a small model in the background takes one worker, not every core.
    const autoThreads = Math.min(availableThreads(), Math.max(2, Math.floor(floats / (AUTO_THREADS_MIN_FLOATS / 2))));
    const workers = useThreads ? (threads === 'auto' ? autoThreads : threads) - 1 : 0;
    const arena = new EmaArena(useThreads ? threadsModule : module, {
      schedule: recipe.schedule, profiles: recipe.profiles, lengths, modes, resident, initial, zeroShadows, expectedBytes, method, what, needed,
      threads: useThreads ? { workers, background, required: threads !== 'auto' } : null,
    });
    const runs = useThreads ? 'threads' : build;
    return resident
      ? new ResidentEma(arena, runs, tracked, keys, recipe, modes)
      : new Ema(arena, runs, tracked, keys, recipe, modes, byLitEmaKeys);
  };
}

/**
 * Builds a new EMA from a safetensors file: one written by save() (any
 * recipe: its metadata names it), LitEma's state_dict from PyTorch
 * (optionally under a prefix such as 'model_ema.'), or the EMA weights of
 * another library with `recipe` and its options (ema-pytorch's state_dict
 * under prefix 'ema_model.', a diffusers EMA model saved with
 * save_pretrained, timm's EMA model state_dict). For LitEma files, names come
 * from the metadata when it records them, else they are LitEma's keys. For
 * the others, the counter comes from options.counter, else from the file,
 * else it starts at the recipe's start; options given override the file's;
 * options.params (the model's entries) says which tensors are frozen
 * parameters or buffers, which a library's own file does not record.
 */
export async function loadEma(bytes, options = {}) {
  const values = readOptions(options, [...EMA_OPTION_KEYS.filter((key) => key !== 'resident'), 'prefix', 'counter', 'params'], 'loadEma');
  const { prefix = '', simd = 'auto', counter } = values;
  const wasm = adoptWasmSource(values.wasm);
  // Checked with the rest by prepareEma; the workers start once the state is loaded.
  const threadOptions = { threads: values.threads, background: values.background };
  if (simd !== 'auto' && simd !== true && simd !== false) {
    throw new TypeError(`ema-wasm: loadEma: options.simd must be 'auto', true or false, got ${describe(simd)}`);
  }
  if (counter !== undefined) checkSafeInteger(counter, 'options.counter', 'loadEma');
  if (values.recipe !== undefined) readRecipe(values, values.nonFinite ?? 'allow', 'loadEma'); // checks recipe and options early
  // options.params: the model's entries, for what each tensor in the file is
  // (a parameter, frozen, a buffer), which a library's plain file does not say.
  let flagsOf;
  if (values.params !== undefined) {
    const entries = resolveParams(values.params, 'loadEma');
    refuseDuplicates(entries, 'loadEma');
    flagsOf = new Map(entries.map(({ name, trainable, buffer, dtype, elements, shape }) => [name, { trainable, buffer, dtype, elements, shape }]));
  }
  // The file's arguments are checked before any module is fetched.
  checkFileArguments(bytes, prefix, 'loadEma');
  // One module for parsing and for the EMA: a Response can be read only once.
  const { module } = await loadModule(simd, wasm, 'loadEma');
  const handOver = wasm === undefined ? undefined : module;
  const { metadata } = await parseSafetensors(bytes, 'loadEma', module);
  if (values.recipe === undefined && !metadata.has(RECIPE_METADATA_KEY)) {
    if (counter !== undefined || values.nonFinite !== undefined || flagsOf !== undefined || ALL_RECIPE_OPTION_KEYS.some((key) => values[key] !== undefined)) {
      throw new TypeError("ema-wasm: loadEma: a LitEma file carries its own options and counter; pass recipe: 'litema' to override them, or none");
    }
    return loadLitEmaFile(bytes, prefix, simd, handOver, module, threadOptions);
  }
  if ((values.recipe ?? metadata.get(RECIPE_METADATA_KEY)) === 'litema') {
    return loadLitEmaFile(bytes, prefix, simd, handOver, module, threadOptions, values);
  }
  const state = await recipeStateFromFile(bytes, prefix, values.recipe, 'loadEma', module);
  const { fields, counter: fileCounter, steps, initted } = stateTargets(state.scalars, state.recipe);
  const given = Object.fromEntries(ALL_RECIPE_OPTION_KEYS.filter((key) => values[key] !== undefined).map((key) => [key, values[key]]));
  // The file's metadata may only name the recipe's own options (it is outside input).
  const ownKeys = Object.keys(RECIPES[state.recipe].options);
  const fromMetadata = Object.fromEntries(ownKeys.filter((key) => Object.hasOwn(state.options, key)).map((key) => [key, state.options[key]]));
  // A width given (sigmaRel or gamma) replaces the file's, whichever way the file gave it.
  const widthGiven = given.sigmaRel !== undefined || given.gamma !== undefined;
  const fileOptions = { ...fromMetadata, ...optionsOfFields(state.recipe, fields) };
  if (widthGiven) {
    delete fileOptions.sigmaRel;
    delete fileOptions.gamma;
    const widths = [given.sigmaRel ?? given.gamma].flat().length;
    if (widths !== state.profileCount) {
      throw new Error(
        `ema-wasm: loadEma: options.${given.sigmaRel !== undefined ? 'sigmaRel' : 'gamma'} gives ${widths} profile${widths === 1 ? '' : 's'}; ` +
          `the file holds ${state.profileCount}`,
      );
    }
  }
  const recipeOptions = { ...fileOptions, ...given };
  // Several profiles: the model's entries are profile 0's shadows (each
  // profile has one per entry); every profile's is loaded below.
  const params = state.shadows.filter(({ profile }) => profile === 0).map(({ key, dtype, data, shape }) => {
    const kind = state.kinds[key];
    const flags = flagsOf?.get(key);
    if (flagsOf !== undefined && flags === undefined) {
      throw new Error(`ema-wasm: loadEma: the file holds '${clip(key)}', which options.params does not have`);
    }
    if (flags !== undefined && flags.dtype !== dtype) {
      throw new Error(`ema-wasm: loadEma: the file's '${clip(key)}' holds ${DTYPE_WORDS[dtype]}; options.params has it as ${entryKind(flags)}`);
    }
    const elements = elementsIn(data.length, dtype);
    if (flags !== undefined && (flags.elements !== elements || (flags.shape !== undefined && flags.shape.join() !== shape.join()))) {
      throw new Error(
        `ema-wasm: loadEma: the file's '${clip(key)}' has shape [${shape.join(', ')}]; options.params has ` +
          `${flags.shape === undefined ? `${flags.elements} elements` : `shape [${flags.shape.join(', ')}]`}`,
      );
    }
    return {
      name: key,
      data: elementsView(data, dtype),
      shape,
      trainable: flags?.trainable ?? kind !== 'frozen',
      buffer: flags?.buffer ?? (kind === 'buffer' || dtype !== 'f32'),
    };
  });
  if (flagsOf !== undefined) {
    const inFile = new Set(params.map(({ name }) => name));
    const { options: checkedOptions } = readRecipe({ ...recipeOptions, recipe: state.recipe }, 'allow', 'loadEma');
    const missing = [...flagsOf].filter(([name, flags]) => !inFile.has(name) && treatmentOf(state.recipe, checkedOptions, { name, ...flags }) !== 'skip');
    if (missing.length > 0) {
      throw new Error(`ema-wasm: loadEma: the file has no ${quoteList(missing.map(([name]) => name))}, which ${RECIPES[state.recipe].title} keeps`);
    }
  }
  const counterSpec = RECIPE_SCALARS[state.recipe].find(({ target }) => target === 'counter');
  if (counter !== undefined && !counterSpec.rule.check(counter)) {
    throw new RangeError(`ema-wasm: loadEma: options.counter must be ${counterSpec.rule.what} for recipe '${state.recipe}', got ${counter}`);
  }
  const startCounter = counter ?? fileCounter;
  // Weights alone do not say how far a Keras or debiased average has come,
  // and both read their averages by the count (momentum 0 at iteration 0; a
  // correction of 1 - decay^count): a file without the count needs it given.
  if (!state.ours && RECIPES[state.recipe].startsAtZero === true && !(startCounter >= 1)) {
    throw new TypeError(
      `ema-wasm: loadEma: a '${state.recipe}' EMA read from ${startCounter === undefined ? 'a file without its count' : 'a count of 0'} ` +
        `has no average to continue; pass options.counter (the ${counterSpec.key} the averages were made with, 1 or more)`,
    );
  }
  const create = await prepareEma(
    { ...recipeOptions, recipe: state.recipe, nonFinite: values.nonFinite, simd, wasm: handOver, ...threadOptions },
    'loadEma',
  );
  const ema = create(params);
  // The shadows as the file holds them (a debiased EMA starts from zero
  // otherwise), and the counter.
  // Several profiles: every profile's shadows, and the widths the EMA was
  // made with (the file's, or those given), which say how many there are.
  const several = state.profileCount > 1;
  const stateDict = several
    ? new Map(state.shadows.map(({ key, profile, dtype, data }) => [`profiles.${profile}.${key}`, elementsView(data, dtype)]))
    : new Map(params.map(({ name, data }) => [name, data]));
  if (several) {
    const widths = ema.profiles;
    stateDict.set('sigma_rel', Float64Array.from(widths, ({ sigmaRel }) => sigmaRel ?? 0));
    stateDict.set('gamma', Float64Array.from(widths, ({ gamma }) => gamma));
  }
  if (startCounter !== undefined) stateDict.set(counterSpec.key, startCounter);
  if (initted !== undefined) stateDict.set('initted', initted);
  if (steps !== undefined) stateDict.set('steps', steps);
  loadStateDictAs(ema, stateDict, false, 'loadEma');
  return startThreads(ema, 'loadEma');
}

/** loadEma for a LitEma file (PyTorch's LitEma state_dict or save()'s). */
async function loadLitEmaFile(bytes, prefix, simd, wasm, module, threadOptions, overrides = {}) {
  const state = await stateFromFile(bytes, prefix, 'loadEma', module);
  const params = state.shadows.map(({ key, name, shape, data }) => {
    if (name !== undefined && shadowKeysFor([name], 'loadEma')[0] !== key) {
      throw new Error(`ema-wasm: loadEma: the file's metadata names '${clip(name)}' for '${clip(key)}', which does not match`);
    }
    return { name: name ?? key, data, shape };
  });
  const create = await prepareEma({
    decay: overrides.decay ?? state.decay,
    useNumUpdates: overrides.useNumUpdates ?? state.numUpdates >= 0,
    nonFinite: overrides.nonFinite,
    simd,
    wasm,
    ...threadOptions,
  }, 'loadEma');
  const ema = create(params, { byLitEmaKeys: state.shadows.some(({ name }) => name === undefined) });
  const numUpdates = overrides.counter ?? (overrides.useNumUpdates === undefined ? state.numUpdates : overrides.useNumUpdates ? Math.max(state.numUpdates, 0) : -1);
  ema.loadStateDict(new Map([[COUNTER_KEY, Int32Array.of(numUpdates)]]), { strict: false });
  return startThreads(ema, 'loadEma');
}

/** See Ema's static block: what the adapters may do inside their own scopes. */
export let adapterAccess;

const { arenaOf, enter, scopeOf, tracked, checkCounter, owner, recipeOf, readDivisor, profileOf, loadStateDictAs } = emaInternals;

/** An EMA that takes the model's arrays on every call. */
export class Ema extends BaseEma {
  #stored = null; // { names, lengths, indexOf } of the last store, or null
  // Loaded from a file without dotted names (PyTorch's LitEma): its names are
  // LitEma's keys, and a parameter is also found by its name with the dots
  // removed, as LitEma itself matches them.
  #byLitEmaKeys;
  #modes; // each slot's treatment in the last update (recipes.js)
  #flags; // the entry flags (flagsOf) that treatment was decided from, per slot

  /** @private Use createEma() or loadEma(). */
  constructor(arena, build, tracked, keys, recipe, modes, byLitEmaKeys = false) {
    super(arena, build, tracked, keys, recipe);
    this.#modes = modes.slice();
    this.#flags = tracked.map(flagsOf);
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
   * One EMA step over every tracked entry, as the recipe's library does it
   * (LitEma.forward(model), EMAModel.step(parameters), ...). `options.step`
   * is timm's `step` argument (timm only), `options.samples` the power
   * recipe's samples in this step. Returns what the step did:
   * { action: 'averaged' | 'copied' | 'skipped', decay, weight, counter,
   * overwrote, nonFinite } (see README, "Recipes").
   */
  update(params, options = undefined) {
    Ema.#check(this, 'update');
    const recipe = recipeOf(this);
    const step = readUpdateOptions(options, recipe.recipe, 'update');
    const entries = resolveParams(params, 'update');
    const arena = enter(this, 'update');
    const { arrays, modes, flags } = this.#matchTracked(entries, 'update');
    // Keras overwrites the model's variables with their averages every N steps.
    const overwrites = recipe.options.emaOverwriteFrequency != null;
    checkFree('update', () => targetsOf(arrays), overwrites ? 'write' : 'read');
    checkCounter(this, arena, 'update');
    // A step that skips (ema-pytorch's update_every) reads no parameter: not checked.
    if (recipe.schedule.nonfinite !== NONFINITE.allow && !arena.nextStepSkips(step)) {
      const found = arena.findNonFinite(arrays, modes.map((mode) => mode === 'average'));
      if (found !== null) {
        if (recipe.schedule.nonfinite === NONFINITE.throw) {
          throw new RangeError(
            `ema-wasm: update: parameter '${clip(arrays[found.slot].name)}' holds ${found.value} at index ${found.index}; ` +
              "the step was refused and nothing changed (options.nonFinite is 'throw')",
          );
        }
        return { action: 'skipped', decay: 0, weight: 0, counter: arena.counter, overwrote: false, nonFinite: true };
      }
    }
    // Everything is checked: from here on nothing can fail.
    if (modes !== this.#modes) {
      modes.forEach((mode, slot) => {
        if (mode !== this.#modes[slot]) arena.setSlotMode(slot, mode, 'update');
      });
      this.#modes = modes;
    }
    this.#flags = flags;
    const result = arena.update(arrays, step);
    if (result.overwrote) arena.copyShadowsInto(arrays);
    return result;
  }

  // ---- swapping weights ----------------------------------------------------

  /**
   * LitEma.copy_to(model): writes every shadow into its trainable array;
   * `options.profile` picks a profile (default 0).
   */
  copyTo(params, options = undefined) {
    Ema.#check(this, 'copyTo');
    const entries = resolveParams(params, 'copyTo');
    const profile = profileOf(this, options, 'copyTo');
    const arena = enter(this, 'copyTo');
    const { arrays } = this.#matchTracked(entries, 'copyTo');
    checkFree('copyTo', () => targetsOf(arrays), 'write');
    arena.copyShadowsInto(arrays, readDivisor(arena, 'copyTo'), profile);
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
   * `options.profile` picks the profile swapped in (default 0).
   */
  async withEma(params, fn, options = undefined) {
    Ema.#check(this, 'withEma');
    if (typeof fn !== 'function') {
      const hint = typeof params === 'function' ? ' (call withEma(params, fn))' : '';
      throw new TypeError(`ema-wasm: withEma: fn must be a function, got ${describe(fn)}${hint}`);
    }
    const entries = resolveParams(params, 'withEma');
    const profile = profileOf(this, options, 'withEma');
    const arena = enter(this, 'withEma');
    const { arrays: trackedArrays } = this.#matchTracked(entries, 'withEma');
    const divisor = readDivisor(arena, 'withEma');
    let stored;
    return scopeOf(this).run('withEma', () => owner(this), targetsOf(entries), {
      store: () => {
        this.#storeEntries(arena, entries, 'withEma');
        stored = this.#matchStored(entries, 'withEma');
      },
      swapIn: () => arena.copyShadowsInto(trackedArrays, divisor, profile),
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
      profileOf: (ema, options, method) => {
        Ema.#check(ema, method);
        return profileOf(ema, options, method);
      },
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
   * Checks resolved entries against the tracked set; returns { arrays: the
   * tracked entries in slot order, modes: each slot's treatment now, flags:
   * the entries' flags it was decided from }.
   * Entries the recipe does not keep are skipped (LitEma skips untrainable
   * parameters); a tracked entry passed as one it would not keep is refused,
   * as LitEma asserts. `modes` is the EMA's own array when nothing changed
   * (diffusers copies a parameter frozen since the last step). The common
   * call, exactly the tracked entries in creation order with the flags of
   * the last update, is recognised first: with thousands of small tensors
   * the general match costs more than the update itself.
   */
  #matchTracked(entries, method) {
    const { names, lengths, dtypes, slotOf } = tracked(this);
    const { recipe, options } = recipeOf(this);
    const modes = this.#modes;
    if (entries.length === names.length) {
      const flags = this.#flags;
      let slot = 0;
      for (; slot < names.length; slot++) {
        const entry = entries[slot];
        if (entry.name !== names[slot] || entry.length !== lengths[slot] || entry.unusable !== null ||
            entry.dtype !== dtypes[slot] || flagsOf(entry) !== flags[slot]) {
          break;
        }
      }
      if (slot === names.length) return { arrays: entries, modes, flags };
    }
    refuseUnusable(entries, method);
    refuseDuplicates(entries, method);
    const arrays = new Array(names.length);
    let changed = null;
    const unknown = [];
    for (const entry of entries) {
      const { name, length } = entry;
      let slot = slotOf.get(name);
      if (slot === undefined && this.#byLitEmaKeys) slot = slotOf.get(shadowKey(name));
      const treatment = treatmentOf(recipe, options, entry);
      if (treatment === 'skip') {
        if (slot !== undefined) {
          const passed = entry.trainable || entry.buffer ? `as ${entryKind(entry)}` : 'with trainable: false';
          throw new Error(`ema-wasm: ${method}: parameter '${clip(name)}' is tracked but was passed ${passed}`);
        }
        continue;
      }
      if (slot === undefined) {
        unknown.push(name);
        continue;
      }
      if (entry.dtype !== dtypes[slot]) {
        throw new Error(
          `ema-wasm: ${method}: parameter '${clip(name)}' is ${entryKind(entry)}; its shadow holds ${DTYPE_WORDS[dtypes[slot]]}`,
        );
      }
      if (length !== lengths[slot]) {
        throw new Error(`ema-wasm: ${method}: parameter '${clip(name)}' has ${entry.elements} elements; its shadow has ${elementsIn(lengths[slot], dtypes[slot])}`);
      }
      if (arrays[slot] !== undefined) {
        // Only by LitEma's rule can two names reach one slot ('a.bc' and 'ab.c').
        throw new Error(
          `ema-wasm: ${method}: parameters '${clip(arrays[slot].name)}' and '${clip(name)}' both stand for ` +
            `'${clip(names[slot])}' once the dots are removed`,
        );
      }
      arrays[slot] = entry;
      if (treatment !== modes[slot]) {
        changed ??= modes.slice();
        changed[slot] = treatment;
      }
    }
    if (unknown.length > 0) {
      throw new Error(
        recipe === 'litema'
          ? `ema-wasm: ${method}: unknown trainable parameters ${quoteList(unknown)}; ` +
              'pass them with trainable: false or create the EMA with them'
          : `ema-wasm: ${method}: unknown parameters ${quoteList(unknown)}: ${RECIPES[recipe].title} keeps them, ` +
              'but this EMA was not created with them',
      );
    }
    const missing = names.filter((_, slot) => arrays[slot] === undefined);
    if (missing.length > 0) {
      throw new Error(`ema-wasm: ${method}: missing tracked parameters ${quoteList(missing)}`);
    }
    return { arrays, modes: changed ?? modes, flags: arrays.map(flagsOf) };
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



/** An entry's flags as one number: what a recipe's treatment depends on besides name and type. */
function flagsOf(entry) {
  return (entry.trainable ? 1 : 0) | (entry.buffer ? 2 : 0);
}

/** What calls on these entries touch, for the scopes (scope.js). */
function targetsOf(entries) {
  return entries.map(({ name, data, length }) => arrayTarget(`parameter '${clip(name)}'`, data, length));
}

function sameNumbers(a, b) {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
