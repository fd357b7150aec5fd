// Snapshots of power-function EMA profiles, for post-hoc EMA (Karras et al.
// 2024): each is one profile's weights at one step as a safetensors file,
// float32 or float16, with what reconstruction needs in its metadata. A
// float32 snapshot is also a one-profile checkpoint that loadEma reads.

import { clip, describe, formatBytes } from './describe.js';
import { FLOAT16_MAX, toFloat16 } from './float16.js';
import { loadModule } from './loader.js';
import { readOptions } from './resolve.js';
import { isWidthOfGamma, MAX_PROFILES, RULES, sigmaRelOfGamma } from './recipes.js';
import { RECIPE_METADATA_KEY } from './recipe-state.js';
import { parseSafetensors, resolveFileBytes } from './safetensors.js';
import { lengthOf, unusableReason, writeInto } from './typed-arrays.js';
import { adoptWasmSource } from './wasm-source.js';

/** The metadata entry of a snapshot: JSON of { step, samples, profile, sigmaRel, gamma, batchSize, dtype }. */
export const SNAPSHOT_METADATA_KEY = 'ema_wasm.snapshot';

/** Element types a snapshot may be saved in, by option value. */
export const SNAPSHOT_DTYPES = Object.freeze({ float32: 'F32', float16: 'F16' });

/** The most snapshots one reconstruction takes (EMA_MAX_POSTHOC_SNAPSHOTS). */
export const MAX_SNAPSHOTS = 1024;

/**
 * A snapshot's file name: the step (zero-padded, so names sort by time) and
 * the profile. The same step and profile always give the same name.
 */
export function snapshotName(step, profile) {
  return `ema-snapshot-${String(step).padStart(10, '0')}-profile-${profile}.safetensors`;
}

const SNAPSHOT_NAME = /^ema-snapshot-(\d+)-profile-(\d+)\.safetensors$/;

/**
 * Whether `name` is a name snapshotName writes for a snapshot that can be
 * (step 1 to 2^53 - 1, profile 0 to 15), and nothing else: no extra leading
 * zeros, so one snapshot has one name.
 */
export function isSnapshotName(name) {
  const match = typeof name === 'string' ? SNAPSHOT_NAME.exec(name) : null;
  if (match === null) return false;
  const step = Number(match[1]);
  const profile = Number(match[2]);
  return Number.isSafeInteger(step) && step >= 1 && profile < MAX_PROFILES && snapshotName(step, profile) === name;
}

/** Orders snapshot file names (isSnapshotName's) by step, then profile, as numbers. */
export function compareSnapshotNames(a, b) {
  const [, stepA, profileA] = SNAPSHOT_NAME.exec(a);
  const [, stepB, profileB] = SNAPSHOT_NAME.exec(b);
  return Number(stepA) - Number(stepB) || Number(profileA) - Number(profileB);
}

/** snapshot()'s options: { dtype: 'F32' | 'F16' }. */
export function readSnapshotOptions(options, method) {
  const { dtype = 'float32' } = options === undefined ? {} : readOptions(options, ['dtype'], method);
  if (!Object.hasOwn(SNAPSHOT_DTYPES, dtype)) {
    throw new TypeError(`ema-wasm: ${method}: options.dtype must be 'float32' or 'float16', got ${describe(dtype)}`);
  }
  return { dtype: SNAPSHOT_DTYPES[dtype] };
}

/**
 * A one-profile state dict in a snapshot's element type: float16 shadows as
 * their bits (Uint16Array), everything else as it is. A finite weight that
 * float16 cannot hold (past 65504) is a RangeError, not an infinity in the
 * file; `profile`, when given, is named in it.
 */
export function snapshotStateDict(stateDict, names, dtype, profile = undefined) {
  if (dtype === 'F32') return stateDict;
  const shadowNames = new Set(names);
  return new Map([...stateDict].map(([key, value]) => {
    if (!shadowNames.has(key)) return [key, value];
    return [key, toFloat16(value, (index, weight) => {
      const where = profile === undefined ? '' : ` of profile ${profile}`;
      throw new RangeError(
        `ema-wasm: snapshot: options.dtype 'float16' cannot hold parameter '${clip(key)}'${where}: its element ${index} is ${weight}, ` +
          `past float16's largest finite value ${FLOAT16_MAX}, and would be saved as ${weight > 0 ? '' : '-'}Infinity; use dtype 'float32'`,
      );
    })];
  }));
}

const integerFrom = (min) => ({ what: `an integer, ${min} or more`, check: (v) => Number.isSafeInteger(v) && v >= min });
/** What each field of a snapshot's metadata must be. */
const SNAPSHOT_FIELDS = Object.freeze({
  step: integerFrom(1),
  samples: integerFrom(1),
  profile: { what: `an integer from 0 to ${MAX_PROFILES - 1}`, check: (v) => Number.isInteger(v) && v >= 0 && v < MAX_PROFILES },
  sigmaRel: { what: `null or ${RULES.sigmaRel.what.replace(/^null or /, '')}`, check: (v) => RULES.sigmaRel.check(v) },
  gamma: { what: RULES.gamma.what, check: RULES.gamma.check },
  batchSize: integerFrom(1),
  dtype: { what: "'F32' or 'F16'", check: (v) => v === 'F32' || v === 'F16' },
});

/**
 * Reads a snapshot (its bytes, a Uint8Array, or a snapshot object with
 * `bytes`) and checks it: a safetensors file of the
 * power recipe whose metadata says what the snapshot is, and whose weights
 * are all of its dtype. Returns { step, samples, profile, sigmaRel, gamma,
 * batchSize, dtype, tensors: [{ name, shape, offset, byteLength }], bytes }.
 */
export async function readSnapshot(snapshot, options = {}) {
  const { simd = 'auto', wasm: given } = readOptions(options, ['simd', 'wasm'], 'readSnapshot');
  const { module } = await loadModule(simd, adoptWasmSource(given), 'readSnapshot');
  return parseSnapshot(snapshot, 'readSnapshot', module);
}

/** The snapshot objects parseSnapshot made: checked once, frozen, reused as they are. */
const CHECKED = new WeakSet();

/** `value` when it is a snapshot parseSnapshot checked (readSnapshot's, readSnapshots'), else undefined. */
export function checkedSnapshot(value) {
  return value !== null && typeof value === 'object' && CHECKED.has(value) ? value : undefined;
}

/**
 * readSnapshot with a compiled module; `label` names the snapshot in
 * messages, `extra` adds fields (a file's name). The result is frozen and
 * holds its own copy of the bytes, made before they are checked, so later
 * changes to the caller's array reach neither the check nor the use; bytes
 * the caller just made and hands over (`owned`: a file just read) are kept
 * without a copy.
 */
export async function parseSnapshot(snapshot, method, module, label = 'the snapshot', { extra = {}, owned = false } = {}) {
  // A snapshot object (from snapshot() or readSnapshots()) carries its bytes.
  const isObject = snapshot !== null && typeof snapshot === 'object' && !ArrayBuffer.isView(snapshot);
  const given = isObject && Object.hasOwn(snapshot, 'bytes') ? snapshot.bytes : snapshot;
  const context = `${method}: ${label}`;
  const bytes = owned ? given : ownCopy(resolveFileBytes(given, context), context);
  const parsed = await parseSafetensors(bytes, context, module);
  const { tensors, metadata } = parsed;
  const fail = (what) => new Error(`ema-wasm: ${method}: ${label} is not a snapshot of ema-wasm's power recipe: ${what}`);
  if (metadata.get(RECIPE_METADATA_KEY) !== 'power') {
    throw fail(`its metadata '${RECIPE_METADATA_KEY}' is ${metadata.has(RECIPE_METADATA_KEY) ? `'${clip(metadata.get(RECIPE_METADATA_KEY))}'` : 'missing'}`);
  }
  if (!metadata.has(SNAPSHOT_METADATA_KEY)) throw fail(`it has no metadata '${SNAPSHOT_METADATA_KEY}' (save() writes checkpoints; snapshot() writes snapshots)`);
  let fields;
  try {
    fields = JSON.parse(metadata.get(SNAPSHOT_METADATA_KEY));
  } catch {
    fields = null;
  }
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) throw fail(`metadata '${SNAPSHOT_METADATA_KEY}' must be a JSON object`);
  const info = {};
  for (const [field, rule] of Object.entries(SNAPSHOT_FIELDS)) {
    if (!rule.check(fields[field])) throw fail(`metadata field '${field}' must be ${rule.what}, got ${describe(fields[field])}`);
    info[field] = fields[field];
  }
  if (info.samples < info.step) throw fail(`it has ${info.samples} samples after ${info.step} steps; each step brings one or more`);
  if (info.sigmaRel !== null && !isWidthOfGamma(info.sigmaRel, info.gamma)) {
    throw fail(`its gamma ${info.gamma} is the profile of sigma_rel ${sigmaRelOfGamma(info.gamma)}, not of its sigmaRel ${info.sigmaRel}`);
  }
  const scalars = new Set(['samples', 'sigma_rel', 'gamma', 'batch_size', 'steps']);
  const weights = tensors.filter(({ name }) => !scalars.has(name));
  for (const tensor of weights) {
    if (tensor.dtype !== info.dtype) throw fail(`weight '${clip(tensor.name)}' is ${tensor.dtype}, not ${info.dtype} as its metadata says`);
    if (!tensor.exactShape) throw new RangeError(`ema-wasm: ${method}: ${label}: '${clip(tensor.name)}' has a dimension past 2^53 - 1`);
  }
  const tensorList = weights.map(({ name, shape, offset, byteLength }) => Object.freeze({ name, shape: Object.freeze(shape), offset, byteLength }));
  const checked = Object.freeze({ ...extra, ...info, tensors: Object.freeze(tensorList), bytes: parsed.bytes });
  CHECKED.add(checked);
  return checked;
}

/** A fresh copy of the caller's file (a pinned Uint8Array): the one copy parseSnapshot makes. */
function ownCopy(file, context) {
  const length = lengthOf(file);
  let copy;
  try {
    copy = new Uint8Array(length);
  } catch (error) {
    throw new RangeError(`ema-wasm: ${context}: a copy of its ${formatBytes(length)} cannot be allocated (${error.message})`);
  }
  writeInto(copy, file);
  return copy;
}

/**
 * Why the bytes of a snapshot parseSnapshot checked can no longer be read,
 * or null. They are its own copy, which nothing but a transfer changes: a
 * caller can still detach their ArrayBuffer (structuredClone or postMessage
 * with transfer, ArrayBuffer.prototype.transfer). The reason reads as "its
 * ArrayBuffer was detached (...)".
 */
export function snapshotBytesUsable(snapshot) {
  const { bytes } = snapshot;
  return unusableReason(bytes, lengthOf(bytes));
}
