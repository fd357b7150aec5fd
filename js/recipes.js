// The EMA recipes, as data: each reference library's options (camelCase
// names, the reference's defaults), where each lands in the C schedule
// (struct ema_schedule, include/ema.h), and what the recipe does with
// frozen parameters and buffers. The schedules themselves run in C
// (src/schedule.c); nothing here computes a decay.

import { describe } from './describe.js';
import { MAX_ENTRIES, readOptions } from './resolve.js';

/** ema_recipe numbers (include/ema.h; pinned; test/js/c-abi.test.js checks them). */
export const RECIPE_IDS = Object.freeze({ litema: 0, torch_ema: 1, diffusers: 2, timm: 3, 'ema-pytorch': 4, keras: 5, debiased: 6, power: 7 });

/** ema_rounding numbers (include/ema.h; pinned). */
export const ROUNDING = Object.freeze({ UNFUSED: 0, LERP: 1, FUSED: 2, TWO_PRODUCTS: 3 });

/** ema_nonfinite numbers, by the option's values. */
export const NONFINITE = Object.freeze({ allow: 0, skip: 1, throw: 2 });

// EMA_MAX_SIGMA_REL (include/ema.h): sqrt(1/12), the widest profile (gamma 0).
const MAX_SIGMA_REL = Math.sqrt(1 / 12);
// EMA_MIN_SIGMA_REL: the narrowest (gamma about 1e6).
const MIN_SIGMA_REL = 1e-6;
/** The most profiles one EMA keeps (EMA_MAX_PROFILES in include/ema.h). */
export const MAX_PROFILES = 16;

/**
 * The width of the profile of exponent `gamma`, sqrt((g + 1) / ((g + 2)^2
 * (g + 3))) as ema_sigma_rel_of_gamma has it, in an order that cannot
 * overflow; and whether a sigma_rel and a gamma are one profile's (gamma
 * came from sigma_rel by the core's solver, to full precision).
 */
export function sigmaRelOfGamma(gamma) {
  return Math.sqrt((gamma + 1) / (gamma + 3)) / (gamma + 2);
}

export function isWidthOfGamma(sigmaRel, gamma) {
  return Math.abs(sigmaRelOfGamma(gamma) - sigmaRel) <= 1e-12 * sigmaRel;
}

/**
 * How a value is checked, and how a message names what it must be: one set
 * for the options here and for the scalars of a state (recipe-state.js). The
 * C core checks the schedule again (ema_schedule_check).
 */
export const RULES = Object.freeze({
  unit: { what: 'a number in [0, 1]', check: (v) => typeof v === 'number' && v >= 0 && v <= 1 },
  flag: { what: 'a boolean', check: (v) => typeof v === 'boolean' },
  positive: { what: 'a finite number above 0', check: (v) => typeof v === 'number' && v > 0 && v <= 1e300 },
  nonNegative: { what: 'a finite number, 0 or more', check: (v) => typeof v === 'number' && v >= 0 && v <= 1e300 },
  count: { what: 'an integer, 0 or more', check: (v) => Number.isSafeInteger(v) && v >= 0 },
  countFromOne: { what: 'an integer, 1 or more', check: (v) => Number.isSafeInteger(v) && v >= 1 },
  counterOrNone: { what: '-1 (None) or an integer, 0 or more', check: (v) => Number.isSafeInteger(v) && v >= -1 },
  int32Count: { what: 'an integer from 0 to 2147483647', check: (v) => Number.isInteger(v) && v >= 0 && v <= 0x7fffffff },
  everyOrNull: { what: 'null or an integer, 1 or more', check: (v) => v === null || (Number.isSafeInteger(v) && v >= 1) },
  names: { what: 'an array of strings', check: (v) => Array.isArray(v) && v.every((name) => typeof name === 'string') },
  sigmaRel: {
    what: `null or a number in [${MIN_SIGMA_REL}, ${MAX_SIGMA_REL}] (the profile's relative width)`,
    check: (v) => v === null || (typeof v === 'number' && v >= MIN_SIGMA_REL && v <= MAX_SIGMA_REL),
  },
  // A state's sigma_rel: 0 when the profile was given by gamma.
  sigmaRelOrZero: {
    what: `0 (gamma given) or a number in [${MIN_SIGMA_REL}, ${MAX_SIGMA_REL}]`,
    check: (v) => v === 0 || (typeof v === 'number' && v >= MIN_SIGMA_REL && v <= MAX_SIGMA_REL),
  },
  // The power recipe's gamma: 0 to EMA_MAX_GAMMA (1e6, the narrowest profile, as sigmaRel's floor).
  gamma: { what: 'a number in [0, 1000000]', check: (v) => typeof v === 'number' && v >= 0 && v <= 1e6 },
  gammaOrNull: { what: 'null or a number in [0, 1000000]', check: (v) => v === null || (typeof v === 'number' && v >= 0 && v <= 1e6) },
});
const { unit, flag, positive, nonNegative, count, countFromOne, everyOrNull, names, sigmaRel, gammaOrNull } = RULES;

/**
 * Each recipe: its options ({ default, rule, field }, `field` naming the
 * schedule field it sets, or none when only JS uses it), its name in
 * messages, `startsAtZero` when its averages start at zero rather than as
 * copies (and so are read by the count they were made with), and
 * `treat(entry, options)` for a resolved entry ({ name,
 * trainable, buffer, dtype }): 'skip' (not kept), or the slot mode it gets
 * (ema_slot_mode): 'average', 'copy' (at every update), 'hold' (only whole-
 * model copies write it), 'keep' (never written after creation).
 */
export const RECIPES = Object.freeze({
  litema: {
    title: "LitEma (latent-diffusion's ldm/modules/ema.py)",
    options: {
      decay: { default: 0.9999, rule: unit, field: 'decay', float32: true },
      useNumUpdates: { default: true, rule: flag, field: 'warmup' },
    },
    // LitEma averages trainable parameters and ignores everything else.
    treat: (entry) => (entry.trainable && !entry.buffer ? 'average' : 'skip'),
  },
  torch_ema: {
    title: "torch_ema's ExponentialMovingAverage",
    options: {
      decay: { default: 0.9999, rule: unit, field: 'decay' },
      useNumUpdates: { default: true, rule: flag, field: 'warmup' },
    },
    // torch_ema averages every parameter it is given, trainable or not.
    treat: (entry) => (entry.buffer ? 'skip' : 'average'),
  },
  diffusers: {
    title: "diffusers' EMAModel",
    options: {
      decay: { default: 0.9999, rule: unit, field: 'decay' },
      minDecay: { default: 0, rule: unit, field: 'min_decay' },
      updateAfterStep: { default: 0, rule: count, field: 'update_after_step' },
      useEmaWarmup: { default: false, rule: flag, field: 'warmup' },
      invGamma: { default: 1, rule: positive, field: 'inv_gamma' },
      power: { default: 2 / 3, rule: nonNegative, field: 'power' },
      foreach: { default: false, rule: flag },
    },
    // Parameters without requires_grad are copied; buffers are not kept.
    treat: (entry) => (entry.buffer ? 'skip' : entry.trainable ? 'average' : 'copy'),
  },
  timm: {
    title: "timm's ModelEmaV3",
    options: {
      decay: { default: 0.9999, rule: unit, field: 'decay' },
      minDecay: { default: 0, rule: unit, field: 'min_decay' },
      updateAfterStep: { default: 0, rule: count, field: 'update_after_step' },
      useWarmup: { default: false, rule: flag, field: 'warmup' },
      warmupGamma: { default: 1, rule: positive, field: 'inv_gamma' },
      warmupPower: { default: 2 / 3, rule: nonNegative, field: 'power' },
      excludeBuffers: { default: false, rule: flag },
    },
    // The whole state_dict: float entries averaged, integer ones copied;
    // with exclude_buffers the buffers are copied.
    treat: (entry, options) =>
      entry.dtype !== 'f32' || (entry.buffer && options.excludeBuffers) ? 'copy' : 'average',
  },
  'ema-pytorch': {
    title: "lucidrains' ema-pytorch EMA",
    options: {
      beta: { default: 0.9999, rule: unit, field: 'decay' },
      updateAfterStep: { default: 100, rule: count, field: 'update_after_step' },
      updateEvery: { default: 10, rule: countFromOne, field: 'update_every' },
      invGamma: { default: 1, rule: positive, field: 'inv_gamma' },
      power: { default: 2 / 3, rule: nonNegative, field: 'power' },
      minValue: { default: 0, rule: unit, field: 'min_decay' },
      paramOrBufferNamesNoEma: { default: [], rule: names },
      ignoreNames: { default: [], rule: names },
      ignoreStartswithNames: { default: [], rule: names },
    },
    // Float parameters (frozen too) and float buffers are averaged; integer
    // buffers keep the copy made at creation; ignored names change only when
    // the whole model is copied; no-EMA names are copied at every update.
    treat: (entry, options) => {
      if (entry.dtype !== 'f32') return 'keep';
      if (options.ignoreNames.includes(entry.name)) return 'hold';
      if (options.ignoreStartswithNames.some((prefix) => entry.name.startsWith(prefix))) return 'hold';
      if (options.paramOrBufferNamesNoEma.includes(entry.name)) return 'copy';
      return 'average';
    },
  },
  keras: {
    title: "Keras 3 optimizers' use_ema",
    options: {
      emaMomentum: { default: 0.99, rule: unit, field: 'decay' },
      emaOverwriteFrequency: { default: null, rule: everyOrNull, field: 'overwrite_every' },
    },
    // The optimizer's trainable variables only.
    treat: (entry) => (entry.trainable && !entry.buffer ? 'average' : 'skip'),
    // Its averages start at zero, and its first step (momentum 0) fills them.
    startsAtZero: true,
  },
  power: {
    title: "a power-function profile of EDM2's post-hoc EMA",
    options: {
      // One of the two (readRecipe checks); without either, sigmaRel 0.05.
      // A list of them keeps one profile per value (`profiles`).
      sigmaRel: { default: null, rule: sigmaRel, field: 'sigma_rel', profiles: true },
      gamma: { default: null, rule: gammaOrNull, field: 'power', profiles: true },
      batchSize: { default: 1, rule: countFromOne, field: 'batch_size' },
    },
    treat: (entry) => (entry.trainable && !entry.buffer ? 'average' : 'skip'),
    // The schedule keeps both: gamma derived in C when sigma_rel is given.
    // Several profiles: lists, by sigmaRel unless one was given by gamma.
    fromFields: (fields) => {
      const widths = [fields.sigma_rel].flat();
      const byGamma = widths.includes(0);
      const list = (value) => (Array.isArray(fields.sigma_rel) ? value : value[0]);
      return {
        sigmaRel: byGamma ? null : list(widths),
        gamma: byGamma ? list([fields.power].flat()) : null,
        batchSize: fields.batch_size,
      };
    },
  },
  debiased: {
    title: 'a zero-initialised, bias-corrected EMA (optax ema(debias=True))',
    options: {
      decay: { default: 0.9999, rule: unit, field: 'decay' },
      debias: { default: true, rule: flag, field: 'debias' },
    },
    treat: (entry) => (entry.trainable && !entry.buffer ? 'average' : 'skip'),
    startsAtZero: true,
  },
});

export const RECIPE_NAMES = Object.freeze(Object.keys(RECIPES));

/** Every recipe option name, for readOptions (each recipe then checks its own). */
export const ALL_RECIPE_OPTION_KEYS = Object.freeze([...new Set(RECIPE_NAMES.flatMap((name) => Object.keys(RECIPES[name].options)))]);

/**
 * Reads `recipe` and its options from option values already read once
 * (readOptions): { recipe, options (every option, defaults filled in, name
 * lists copied), schedule (the fields of struct ema_schedule to set) }.
 * Throws a TypeError for an option the recipe does not have or a value of
 * the wrong type, a RangeError for one out of range.
 */
export function readRecipe(values, nonFinite, method) {
  const recipe = values.recipe ?? 'litema';
  if (typeof recipe !== 'string' || !Object.hasOwn(RECIPES, recipe)) {
    throw new TypeError(
      `ema-wasm: ${method}: options.recipe must be one of ${RECIPE_NAMES.map((name) => `'${name}'`).join(', ')}, got ${describe(recipe)}`,
    );
  }
  const { options: specs } = RECIPES[recipe];
  for (const key of ALL_RECIPE_OPTION_KEYS) {
    if (values[key] !== undefined && !Object.hasOwn(specs, key)) {
      throw new TypeError(
        `ema-wasm: ${method}: recipe '${recipe}' has no option '${key}'; its options are ${Object.keys(specs).join(', ')}`,
      );
    }
  }
  const options = {};
  const schedule = { recipe: RECIPE_IDS[recipe] };
  let profiles = null; // one entry of schedule fields per profile, when given a list
  for (const [key, spec] of Object.entries(specs)) {
    let value = values[key] === undefined ? spec.default : values[key];
    if (spec.profiles === true && Array.isArray(value)) {
      value = readProfileList(value, key, spec.rule, method);
      options[key] = value;
      schedule[spec.field] = value[0];
      profiles = value.map((width) => (spec.field === 'power' ? { power: width, sigma_rel: 0 } : { sigma_rel: width }));
      continue;
    }
    // A list is read once, element by element, into a plain array of our own
    // (a getter or a Proxy must not answer the check and the copy differently).
    if (spec.rule === names && Array.isArray(value)) {
      const length = value.length;
      // An EMA tracks at most EMA_MAX_SLOTS entries: a longer list names nothing more.
      if (!(length <= MAX_ENTRIES)) {
        throw new RangeError(`ema-wasm: ${method}: options.${key} has ${length} names; at most ${MAX_ENTRIES} (EMA_MAX_SLOTS)`);
      }
      const given = value;
      value = Array.from({ length }, (_, i) => given[i]);
      const bad = value.findIndex((name) => typeof name !== 'string');
      if (bad !== -1) {
        throw new TypeError(`ema-wasm: ${method}: options.${key}[${bad}] must be a string, got ${describe(value[bad])}`);
      }
    }
    if (!spec.rule.check(value)) {
      // A value of the right type but out of range is a RangeError, as JS's own are.
      const rightType = spec.rule === names ? Array.isArray(value) : typeof value === 'number' && spec.rule !== flag;
      throw rightType
        ? new RangeError(`ema-wasm: ${method}: options.${key} must be ${spec.rule.what}, got ${Array.isArray(value) ? describe(value) : value}`)
        : new TypeError(`ema-wasm: ${method}: options.${key} must be ${spec.rule.what}, got ${describe(value)}`);
    }
    if (spec.float32) value = Math.fround(value);
    options[key] = value;
    if (spec.field !== undefined) schedule[spec.field] = typeof value === 'boolean' ? Number(value) : value ?? 0;
  }
  if (recipe === 'diffusers' && options.foreach) schedule.rounding = ROUNDING.FUSED;
  if (recipe === 'power') {
    if (options.sigmaRel !== null && options.gamma !== null) {
      throw new TypeError(`ema-wasm: ${method}: give options.sigmaRel or options.gamma, not both (sigmaRel sets gamma)`);
    }
    if (options.sigmaRel === null && options.gamma === null) {
      options.sigmaRel = 0.05;
      schedule.sigma_rel = 0.05;
    }
  }
  if (typeof nonFinite !== 'string' || !Object.hasOwn(NONFINITE, nonFinite)) {
    throw new TypeError(
      `ema-wasm: ${method}: options.nonFinite must be 'allow', 'skip' or 'throw', got ${describe(nonFinite)}`,
    );
  }
  schedule.nonfinite = NONFINITE[nonFinite];
  return { recipe, options, schedule, profiles };
}

/**
 * A list of profile widths (sigmaRel or gamma values), read once element by
 * element into a frozen array of our own: 1 to MAX_PROFILES numbers, each
 * passing `rule` (and not null).
 */
function readProfileList(list, key, rule, method) {
  const length = list.length;
  if (!(length >= 1 && length <= MAX_PROFILES)) {
    throw new RangeError(`ema-wasm: ${method}: options.${key} lists ${length} profiles; give 1 to ${MAX_PROFILES} (EMA_MAX_PROFILES)`);
  }
  const values = Array.from({ length }, (_, i) => list[i]);
  values.forEach((value, i) => {
    if (typeof value !== 'number') {
      throw new TypeError(`ema-wasm: ${method}: options.${key}[${i}] must be a number, got ${describe(value)}`);
    }
    if (!rule.check(value)) {
      throw new RangeError(`ema-wasm: ${method}: options.${key}[${i}] must be ${rule.what.replace(/^null or /, '')}, got ${value}`);
    }
  });
  return Object.freeze(values);
}

/**
 * The options after a state was loaded: every option that lives in the
 * schedule read back from it (the others, JS's own, stay as they were).
 */
export function optionsFromSchedule(recipe, options, schedule) {
  return { ...options, ...optionsOfFields(recipe, schedule) };
}

/**
 * The options a state's schedule fields stand for, by option name (the
 * inverse of readRecipe's mapping), for loadEma.
 */
export function optionsOfFields(recipe, fields) {
  const { fromFields } = RECIPES[recipe];
  if (fromFields !== undefined && Object.keys(RECIPES[recipe].options).every((key) => Object.hasOwn(fields, RECIPES[recipe].options[key].field))) {
    return fromFields(fields);
  }
  const result = {};
  for (const [key, spec] of Object.entries(RECIPES[recipe].options)) {
    if (spec.field === undefined || !Object.hasOwn(fields, spec.field)) continue;
    const value = fields[spec.field];
    if (typeof spec.default === 'boolean') result[key] = value !== 0;
    else if (spec.rule === everyOrNull) result[key] = value === 0 ? null : value;
    else result[key] = value;
  }
  return result;
}

/** An entry's treatment under a recipe (see RECIPES), by name for messages. */
export function treatmentOf(recipe, options, entry) {
  return RECIPES[recipe].treat(entry, options);
}

/**
 * `value` if it is an integer a JS number holds exactly: a TypeError for
 * anything else, a RangeError for an integer past 2^53 - 1 in magnitude.
 */
export function checkSafeInteger(value, what, method) {
  if (!Number.isInteger(value)) {
    throw new TypeError(`ema-wasm: ${method}: ${what} must be an integer, got ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`ema-wasm: ${method}: ${what} must be within ±(2^53 - 1), got ${value}`);
  }
  return value;
}

/**
 * update()'s options, read once: timm's `step`, or the power recipe's
 * `samples` (this step's samples, 1 or more); each only for its recipe.
 * Returns the core's `step` argument, or undefined.
 */
export function readUpdateOptions(options, recipe, method) {
  if (options === undefined) return undefined;
  const { step, samples } = readOptions(options, ['step', 'samples'], method);
  if (step !== undefined && recipe !== 'timm') {
    throw new TypeError(
      `ema-wasm: ${method}: options.step is timm's step argument; recipe '${recipe}' counts its own steps (see ema.counter)`,
    );
  }
  if (samples !== undefined && recipe !== 'power') {
    throw new TypeError(`ema-wasm: ${method}: options.samples is the power recipe's; recipe '${recipe}' counts steps, not samples`);
  }
  if (step !== undefined) return checkSafeInteger(step, 'options.step', method);
  if (samples === undefined) return undefined;
  if (checkSafeInteger(samples, 'options.samples', method) < 1) {
    throw new RangeError(`ema-wasm: ${method}: options.samples must be 1 or more, got ${samples}`);
  }
  return samples;
}

/** What a shadow of each element type holds, for messages. */
export const DTYPE_WORDS = Object.freeze({ f32: 'float32 values', i32: 'int32 values', i64: 'int64 values' });

/** How an entry was passed, for messages. */
export function entryKind(entry) {
  if (entry.buffer) return entry.dtype === 'f32' ? 'a float buffer' : `an integer buffer (${entry.dtype})`;
  return entry.trainable ? 'a trainable parameter' : 'a frozen parameter (trainable: false)';
}
