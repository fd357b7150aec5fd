// The state of every recipe but LitEma (whose state, with its dot-free keys,
// is state.js's): the recipe's counters and options as scalars named as its
// library names them, and each shadow under its parameter's name, in its own
// element type. Both forms, state dicts (Maps of typed arrays) and
// safetensors files, are read into one checked form before anything is
// applied:
//   { scalars: Map(key -> number | boolean), shadows: [{ key, dtype, data, length, shape }] }
// where `data` holds the shadow's raw 32-bit words (integer buffers too).

import { clip, describe } from './describe.js';
import { readNamedValues } from './resolve.js';
import { MAX_PROFILES, RECIPES, RULES } from './recipes.js';
import { encodeSafetensors, parseSafetensors, tensorValues } from './safetensors.js';
import { DTYPE_OF_KIND, elementsIn, elementsView, lengthOf, pinnedView, typedArrayKind, unusableReason, wordsFor, wordsView } from './typed-arrays.js';

export const RECIPE_METADATA_KEY = 'ema_wasm.recipe';
export const OPTIONS_METADATA_KEY = 'ema_wasm.options';
export const KINDS_METADATA_KEY = 'ema_wasm.kinds';

const scalar = (key, dtype, target, rule) => ({ key, dtype, target, rule: RULES[rule] });

/**
 * Each recipe's scalars, in file order: the key its library uses, the
 * safetensors dtype written, and where the value lives (a field of struct
 * ema_schedule, 'counter', 'steps' or 'initted').
 */
export const RECIPE_SCALARS = Object.freeze({
  torch_ema: [scalar('decay', 'F64', 'decay', 'unit'), scalar('num_updates', 'I64', 'counter', 'counterOrNone')],
  diffusers: [
    scalar('decay', 'F64', 'decay', 'unit'), scalar('min_decay', 'F64', 'min_decay', 'unit'),
    scalar('optimization_step', 'I64', 'counter', 'count'), scalar('update_after_step', 'I64', 'update_after_step', 'count'),
    scalar('use_ema_warmup', 'BOOL', 'warmup', 'flag'), scalar('inv_gamma', 'F64', 'inv_gamma', 'positive'),
    scalar('power', 'F64', 'power', 'nonNegative'),
  ],
  timm: [
    scalar('decay', 'F64', 'decay', 'unit'), scalar('min_decay', 'F64', 'min_decay', 'unit'),
    scalar('update_after_step', 'I64', 'update_after_step', 'count'), scalar('use_warmup', 'BOOL', 'warmup', 'flag'),
    scalar('warmup_gamma', 'F64', 'inv_gamma', 'positive'), scalar('warmup_power', 'F64', 'power', 'nonNegative'),
    scalar('updates', 'I64', 'counter', 'count'),
  ],
  'ema-pytorch': [
    scalar('initted', 'BOOL', 'initted', 'flag'), scalar('step', 'I64', 'counter', 'count'),
    scalar('beta', 'F64', 'decay', 'unit'), scalar('update_after_step', 'I64', 'update_after_step', 'count'),
    scalar('update_every', 'I64', 'update_every', 'countFromOne'), scalar('inv_gamma', 'F64', 'inv_gamma', 'positive'),
    scalar('power', 'F64', 'power', 'nonNegative'), scalar('min_value', 'F64', 'min_decay', 'unit'),
  ],
  keras: [
    scalar('iterations', 'I64', 'counter', 'count'), scalar('ema_momentum', 'F64', 'decay', 'unit'),
    scalar('ema_overwrite_frequency', 'I64', 'overwrite_every', 'count'),
  ],
  debiased: [scalar('count', 'I32', 'counter', 'int32Count'), scalar('decay', 'F64', 'decay', 'unit'), scalar('debias', 'BOOL', 'debias', 'flag')],
  // Several profiles: sigma_rel and gamma hold one value per profile.
  power: [
    scalar('samples', 'I64', 'counter', 'count'), { ...scalar('sigma_rel', 'F64', 'sigma_rel', 'sigmaRelOrZero'), perProfile: true },
    { ...scalar('gamma', 'F64', 'power', 'gamma'), perProfile: true }, scalar('batch_size', 'I64', 'batch_size', 'countFromOne'),
    scalar('steps', 'I64', 'steps', 'count'),
  ],
});

/** Where profile k's shadows are in the state of several profiles: 'profiles.<k>.<name>'. */
const PROFILE_KEY = /^profiles\.(0|[1-9][0-9]?)\.(.*)$/s;

/**
 * The key prefix of each profile a state holds: [''] for one profile (the
 * one `profile` names, or an EMA's only one), else 'profiles.<k>.' for each.
 */
export function profileKeyPrefixes(arena, profile) {
  if (profile !== undefined || arena.profileCount === 1) return [''];
  return Array.from({ length: arena.profileCount }, (_, k) => `profiles.${k}.`);
}

/** The keys a recipe's scalars take: no parameter may be named so. */
/**
 * Where a library's own state_dict keeps the EMA weights, when it is not at
 * the top: ema-pytorch's EMA module holds `ema_model.*` beside
 * `online_model.*` (the model it follows), with its scalars at the top.
 */
const LIBRARY_LAYOUT = Object.freeze({
  'ema-pytorch': { shadows: 'ema_model.', ignored: ['online_model.'] },
});

export function reservedKeys(recipe) {
  return new Set((RECIPE_SCALARS[recipe] ?? []).map(({ key }) => key));
}

/** Typed arrays of the scalars' dtypes. */
const ARRAY_OF = Object.freeze({ F64: Float64Array, I64: BigInt64Array, I32: Int32Array, BOOL: Uint8Array });
const SAFETENSORS_DTYPE = Object.freeze({ f32: 'F32', i32: 'I32', i64: 'I64', f16: 'F16' }); // f16: snapshots only
const DTYPE_OF_SAFETENSORS = Object.freeze({ F32: 'f32', I32: 'i32', I64: 'i64' });

/** A scalar's value as its typed array of one element. */
function scalarArray(dtype, value) {
  if (dtype === 'I64') return BigInt64Array.of(BigInt(value));
  if (dtype === 'BOOL') return Uint8Array.of(value ? 1 : 0);
  return ARRAY_OF[dtype].of(value);
}

/** The value of each scalar target, read from the arena. */
function currentValue(arena, schedule, target) {
  if (target === 'counter') return arena.counter;
  if (target === 'steps') return arena.steps;
  if (target === 'initted') return arena.initted;
  const value = schedule[target];
  return target === 'warmup' || target === 'debias' ? value !== 0 : value;
}

/**
 * The state dict of a recipe EMA: its scalars, then each shadow under its
 * name (raw: a debiased EMA's uncorrected average, as optax keeps it), each a
 * fresh copy.
 */
export function recipeStateDict(arena, recipe, names, dtypes, profile = undefined) {
  const prefixes = profileKeyPrefixes(arena, profile);
  const profiles = prefixes.length > 1 ? prefixes.map((_, k) => k) : [profile ?? 0];
  const schedules = profiles.map((k) => arena.profileSchedule(k));
  const state = new Map();
  for (const { key, dtype, target, perProfile } of RECIPE_SCALARS[recipe]) {
    state.set(key, perProfile && profiles.length > 1
      ? Float64Array.from(schedules, (schedule) => schedule[target])
      : scalarArray(dtype, currentValue(arena, schedules[0], target)));
  }
  profiles.forEach((k, index) => {
    names.forEach((name, slot) => state.set(`${prefixes[index]}${name}`, elementsView(arena.shadow(slot, 1, k), dtypes[slot])));
  });
  return state;
}

/** A scalar from a state dict: a number (boolean for flags) or a typed array of one element. */
/** The typed arrays a scalar of each dtype may come in (a float for a float, an integer for an integer). */
const SCALAR_KINDS = Object.freeze({
  F64: ['Float64Array', 'Float32Array'],
  I64: ['BigInt64Array', 'Int32Array'],
  I32: ['Int32Array', 'BigInt64Array'],
  BOOL: ['Uint8Array', 'Int8Array'],
});

function scalarValue(value, spec, method) {
  const { key, dtype, rule } = spec;
  let read = value;
  const kind = typedArrayKind(value);
  if (kind !== undefined) {
    if (!SCALAR_KINDS[dtype].includes(kind)) {
      throw new TypeError(
        `ema-wasm: ${method}: state '${key}' must be ${rule.what} (a number or a ${SCALAR_KINDS[dtype].join(' or ')} of one), got ${describe(value)}`,
      );
    }
    const length = lengthOf(value);
    if (spec.perProfile && length > 1 && length <= MAX_PROFILES) {
      // One value per profile: each read once and checked like a scalar.
      return Array.from(value.slice(0, length), (element) => scalarValue(element, spec, method));
    }
    if (length !== 1) {
      const many = spec.perProfile ? ` or one per profile (2 to ${MAX_PROFILES})` : '';
      throw new TypeError(`ema-wasm: ${method}: state '${key}' must hold one value${many}, got ${describe(value)}`);
    }
    read = value[0];
    if (typeof read === 'bigint') read = Number(read);
    if (dtype === 'BOOL' && (kind === 'Uint8Array' || kind === 'Int8Array') && (read === 0 || read === 1)) read = read === 1;
  }
  if (dtype === 'BOOL' ? typeof read !== 'boolean' : typeof read !== 'number') {
    throw new TypeError(`ema-wasm: ${method}: state '${key}' must be ${rule.what}, got ${describe(value)}`);
  }
  if (!rule.check(read)) throw new RangeError(`ema-wasm: ${method}: state '${key}' must be ${rule.what}, got ${read}`);
  return read;
}

/** A shadow from a state dict: a Float32Array, Int32Array or BigInt64Array, as raw words. */
function shadowValue(key, value, method) {
  const kind = typedArrayKind(value);
  const dtype = DTYPE_OF_KIND[kind];
  if (dtype === undefined) {
    throw new TypeError(`ema-wasm: ${method}: state '${clip(key)}' must be a Float32Array, Int32Array or BigInt64Array, got ${describe(value)}`);
  }
  const elements = lengthOf(value);
  const unusable = unusableReason(value, elements);
  if (unusable !== null) throw new Error(`ema-wasm: ${method}: state '${clip(key)}' cannot be read: ${unusable}`);
  const data = dtype === 'f32' ? pinnedView(value, elements, Float32Array) : wordsView(value, dtype, elements);
  return { key, dtype, data, length: wordsFor(elements, dtype), elements };
}

/** Reads a recipe's state dict (a Map or a plain object) into the checked form. */
export function recipeStateFromDict(state, recipe, method) {
  const pairs = ArrayBuffer.isView(state) ? null : readNamedValues(state, method, 'state');
  if (pairs === null) {
    throw new TypeError(`ema-wasm: ${method}: state must be a Map or an object of typed arrays, got ${describe(state)}`);
  }
  const specs = new Map(RECIPE_SCALARS[recipe].map((spec) => [spec.key, spec]));
  const scalars = new Map();
  const shadows = [];
  for (const { name: key, value } of pairs) {
    if (typeof key !== 'string') throw new TypeError(`ema-wasm: ${method}: state keys must be strings, got ${describe(key)}`);
    const spec = specs.get(key);
    if (spec !== undefined) scalars.set(key, scalarValue(value, spec, method));
    else shadows.push(shadowValue(key, value, method));
  }
  return withProfiles({ scalars, shadows }, recipe, method);
}

/**
 * The checked form with `profileCount`, and each shadow's `profile`: a state
 * of several profiles (its per-profile scalars list one value each) keeps
 * profile k's shadows under 'profiles.<k>.<name>', read here into { key:
 * name, profile: k }.
 */
function withProfiles(checked, recipe, method) {
  const lists = RECIPE_SCALARS[recipe].filter(({ key, perProfile }) => perProfile && Array.isArray(checked.scalars.get(key)));
  const profileCount = lists.length === 0 ? 1 : checked.scalars.get(lists[0].key).length;
  for (const { key, perProfile } of RECIPE_SCALARS[recipe]) {
    if (!perProfile || !checked.scalars.has(key)) continue;
    const value = checked.scalars.get(key);
    const count = Array.isArray(value) ? value.length : 1;
    if (count !== profileCount) {
      throw new Error(`ema-wasm: ${method}: state '${key}' holds ${count} profile${count === 1 ? '' : 's'}; '${lists[0].key}' holds ${profileCount}`);
    }
  }
  if (profileCount === 1) return { ...checked, profileCount, shadows: checked.shadows.map((shadow) => ({ ...shadow, profile: 0 })) };
  const shadows = checked.shadows.map((shadow) => {
    const match = PROFILE_KEY.exec(shadow.key);
    if (match === null || Number(match[1]) >= profileCount) {
      throw new Error(
        `ema-wasm: ${method}: the state holds ${profileCount} profiles, so each shadow is under 'profiles.<k>.' with k from 0 to ${profileCount - 1}; got '${clip(shadow.key)}'`,
      );
    }
    return { ...shadow, key: match[2], profile: Number(match[1]) };
  });
  return { ...checked, profileCount, shadows };
}

/**
 * What a checked state sets in the arena: { schedule fields, counter,
 * steps, initted }; a per-profile field of several profiles is a list.
 */
export function stateTargets(scalars, recipe) {
  const fields = {};
  let counter;
  let steps;
  let initted;
  for (const { key, target } of RECIPE_SCALARS[recipe]) {
    if (!scalars.has(key)) continue;
    const value = scalars.get(key);
    if (target === 'counter') counter = value;
    else if (target === 'steps') steps = value;
    else if (target === 'initted') initted = value;
    else fields[target] = typeof value === 'boolean' ? Number(value) : value;
  }
  return { fields, counter, steps, initted };
}

/**
 * Encodes a recipe EMA's state as a safetensors file under `prefix`: the
 * scalars, each shadow under its name with its shape and element type, and
 * metadata naming the recipe, its options (those no scalar carries too) and
 * how each entry was passed (parameter, frozen or buffer).
 */
export function recipeStateToFile({ recipe, options, stateDict, shapes, kinds }, { prefix, metadata }, method) {
  const tensors = [];
  for (const [key, data] of stateDict) {
    const slot = shapes.has(key) ? shapes.get(key) : undefined;
    const dtype = slot === undefined ? scalarDtype(recipe, key) : SAFETENSORS_DTYPE[slot.dtype];
    const name = `${prefix}${key}`;
    if (name === '__metadata__') {
      throw new Error(`ema-wasm: ${method}: '${clip(key)}' would be saved as '__metadata__', which safetensors reserves; save with a prefix`);
    }
    // A scalar is shape []; a per-profile one of several profiles, [profiles].
    const scalarShape = data.length > 1 ? [data.length] : [];
    tensors.push({ name, dtype, shape: slot === undefined ? scalarShape : slot.shape, data });
  }
  const format = metadata.find(([key]) => key === 'format') ?? ['format', 'pt'];
  const entries = [
    format, ...metadata.filter(([key]) => key !== 'format'),
    [RECIPE_METADATA_KEY, recipe], [OPTIONS_METADATA_KEY, JSON.stringify(options)], [KINDS_METADATA_KEY, JSON.stringify(kinds)],
  ];
  return encodeSafetensors(tensors, entries, method);
}

function scalarDtype(recipe, key) {
  return RECIPE_SCALARS[recipe].find((spec) => spec.key === key).dtype;
}

/**
 * A scalar tensor's value from a file: any integer or float dtype its
 * library may have used; a per-profile scalar of several profiles is a list.
 */
function scalarFromFile(fileBytes, tensor, spec, method) {
  const elements = tensor.shape.reduce((product, d) => product * d, 1);
  const ArrayType = { F64: Float64Array, F32: Float32Array, I64: BigInt64Array, I32: Int32Array, BOOL: Uint8Array, U8: Uint8Array }[tensor.dtype];
  const perProfile = spec.perProfile && tensor.shape.length === 1 && elements > 1 && elements <= MAX_PROFILES;
  if (ArrayType === undefined || (elements !== 1 && !perProfile)) {
    const many = spec.perProfile ? ` or one per profile (2 to ${MAX_PROFILES})` : '';
    throw new Error(`ema-wasm: ${method}: '${clip(tensor.name)}' must be a scalar (one value)${many}, got ${tensor.dtype} of shape [${tensor.shape.join(', ')}]`);
  }
  if (perProfile) {
    return Array.from(tensorValues(fileBytes, tensor, ArrayType), (value) => checkedScalar(value, tensor, spec, method));
  }
  return checkedScalar(tensorValues(fileBytes, tensor, ArrayType)[0], tensor, spec, method);
}

function checkedScalar(read, tensor, spec, method) {
  let value = read;
  if (typeof value === 'bigint') value = Number(value);
  if (spec.dtype === 'BOOL' && (value === 0 || value === 1)) value = value === 1;
  if (spec.dtype !== 'BOOL' && typeof value === 'boolean') value = Number(value);
  if (!(spec.dtype === 'BOOL' ? typeof value === 'boolean' : typeof value === 'number') || !spec.rule.check(value)) {
    throw new RangeError(`ema-wasm: ${method}: '${clip(tensor.name)}' must be ${spec.rule.what}, got ${value}`);
  }
  return value;
}

/**
 * Reads a safetensors file into the checked form, for `recipe` (or the one
 * its metadata names). Tensors under `prefix` are the state: the recipe's
 * scalars where present, every other F32, I32 or I64 tensor a shadow. Returns
 * { recipe, ours (save() wrote it), options (from metadata, or {}), kinds
 * (name -> kind, or {}), scalars, shadows }.
 */
export async function recipeStateFromFile(bytes, prefix, recipe, method, module) {
  const { tensors, metadata, bytes: fileBytes } = await parseSafetensors(bytes, method, module);
  const named = metadata.get(RECIPE_METADATA_KEY);
  if (named !== undefined && !Object.hasOwn(RECIPES, named)) {
    throw new Error(`ema-wasm: ${method}: the file's metadata names recipe '${clip(named)}', which this version does not know`);
  }
  if (recipe !== undefined && named !== undefined && recipe !== named) {
    throw new Error(`ema-wasm: ${method}: the file holds a '${named}' EMA, not '${recipe}'`);
  }
  const fileRecipe = recipe ?? named;
  const readJson = (key) => {
    if (!metadata.has(key)) return {};
    let value;
    try {
      value = JSON.parse(metadata.get(key));
    } catch {
      value = null;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`ema-wasm: ${method}: metadata '${key}' must be a JSON object`);
    }
    return value;
  };
  const specs = new Map(RECIPE_SCALARS[fileRecipe].map((spec) => [spec.key, spec]));
  // A file the library wrote itself (no metadata of ours) has its layout.
  const layout = named === undefined ? LIBRARY_LAYOUT[fileRecipe] : undefined;
  const inLayout = layout !== undefined && tensors.some((tensor) => tensor.name.startsWith(`${prefix}${layout.shadows}`));
  const scalars = new Map();
  const shadows = [];
  for (const tensor of tensors) {
    if (!tensor.name.startsWith(prefix)) continue;
    let key = tensor.name.slice(prefix.length);
    const spec = specs.get(key);
    if (spec === undefined && inLayout) {
      if (!key.startsWith(layout.shadows)) continue; // online_model.*, or anything else of the library's
      key = key.slice(layout.shadows.length);
    }
    if (spec !== undefined) {
      scalars.set(key, scalarFromFile(fileBytes, tensor, spec, method));
      continue;
    }
    const dtype = DTYPE_OF_SAFETENSORS[tensor.dtype];
    if (dtype === undefined) {
      const half = tensor.dtype === 'F16' && fileRecipe === 'power' ? ' (a float16 snapshot is for reconstruct(); save float32 snapshots to load one as an EMA)' : '';
      throw new Error(`ema-wasm: ${method}: shadow '${clip(tensor.name)}' must be F32, I32 or I64, got ${tensor.dtype}${half}`);
    }
    if (!tensor.exactShape) {
      throw new RangeError(`ema-wasm: ${method}: shadow '${clip(tensor.name)}' has a dimension past 2^53 - 1, which a JavaScript number cannot hold exactly`);
    }
    const data = tensorValues(fileBytes, tensor, Float32Array);
    shadows.push({ key, dtype, data, length: data.length, elements: elementsIn(data.length, dtype), shape: tensor.shape });
  }
  const kinds = readJson(KINDS_METADATA_KEY);
  for (const [name, kind] of Object.entries(kinds)) {
    if (kind !== 'param' && kind !== 'frozen' && kind !== 'buffer') {
      throw new Error(`ema-wasm: ${method}: metadata '${KINDS_METADATA_KEY}' gives '${clip(name)}' the kind ${describe(kind)}; kinds are 'param', 'frozen' and 'buffer'`);
    }
  }
  // ours: save() wrote it (its metadata names the recipe); else a library's own file.
  return withProfiles(
    { recipe: fileRecipe, ours: named !== undefined, options: readJson(OPTIONS_METADATA_KEY), kinds, scalars, shadows },
    fileRecipe,
    method,
  );
}
