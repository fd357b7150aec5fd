// The ema-wasm side of bench/profiles.mjs: for each Wasm build, the groups of
// power EMAs it compares (the same groups as bench/profiles.c's contexts),
// their verification steps, the hashes of their shadows, and one timed
// update of a group.
//
//   fused              createEma(params, { recipe: 'power', sigmaRel: [s0, s1] })
//   separate           one createEma(params, { recipe: 'power', sigmaRel: s }) per profile
//   single             the first profile alone
//   residentFused      fused with { resident: true }: no copy into Wasm memory
//   residentSeparate   separate, each resident (each holds its own parameters)

import { createEma } from '../../js/index.js';
import { touchArrays } from './params.mjs';
import { fnv1a64 } from './verify.mjs';

/** The groups, in the order of the table, with what they update. */
export const GROUPS = [
  { id: 'fused', label: '2 profiles, one EMA', fused: true, resident: false },
  { id: 'separate', label: '2 separate EMAs', fused: false, resident: false },
  { id: 'single', label: '1 profile, one EMA', fused: true, resident: false, single: true },
  { id: 'residentFused', label: '2 profiles, one EMA, resident', fused: true, resident: true },
  { id: 'residentSeparate', label: '2 separate EMAs, resident', fused: false, resident: true },
];

/** How many profiles' shadows a group's update writes. */
export function profilesUpdated(group, sigmaRels) {
  return group.single ? 1 : sigmaRels.length;
}

/**
 * Each group's EMAs for one Wasm build (`simd` true or false), as { [group
 * id]: [ema] }: the built-in module, or `module` (createEma's options.wasm)
 * when one is given.
 */
export async function createGroups(params, sigmaRels, simd, module = undefined) {
  const build = module === undefined ? { simd } : { wasm: module };
  const make = (sigmaRel, resident) => createEma(params, { recipe: 'power', sigmaRel, resident, threads: 1, ...build });
  const groups = {};
  for (const group of GROUPS) {
    if (group.single) groups[group.id] = [await make(sigmaRels[0], false)];
    else if (group.fused) groups[group.id] = [await make(sigmaRels, group.resident)];
    else groups[group.id] = await Promise.all(sigmaRels.map((sigmaRel) => make(sigmaRel, group.resident)));
  }
  for (const emas of Object.values(groups)) {
    if (emas.some((ema) => ema.simd !== simd)) throw new Error(`expected the ${simd ? 'SIMD' : 'scalar'} build`);
  }
  return groups;
}

export function disposeGroups(groups) {
  for (const emas of Object.values(groups)) for (const ema of emas) ema.dispose();
}

/** A resident EMA's parameters, as the views a training loop writes into. */
function residentViews(ema, params) {
  return params.map((p) => ema.param(p.name));
}

/**
 * One step of every group: `samples` (or undefined: the batch size) for the
 * power recipe; a resident EMA gets the arrays' current values first, as a
 * training loop writes them in place. Returns the fused group's step result.
 */
export function stepGroups(groups, params, samples) {
  const options = samples === undefined ? undefined : { samples };
  let fusedResult = null;
  for (const group of GROUPS) {
    for (const ema of groups[group.id]) {
      if (group.resident) {
        residentViews(ema, params).forEach((view, i) => view.set(params[i].data));
        ema.update(undefined, options);
      } else {
        const result = ema.update(params, options);
        if (group.id === 'fused') fusedResult = result;
      }
    }
  }
  return fusedResult;
}

function sameBits(a, b) {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * The reference: the fused group's shadows, per profile, and their hashes
 * (FNV-1a 64 over the bytes, slot by slot, as bench/profiles.c hashes).
 */
export function referenceOf(groups, params, sigmaRels) {
  const [ema] = groups.fused;
  const shadows = sigmaRels.map((_, profile) => params.map((p) => ema.shadow(p.name, { profile })));
  return { shadows, hashes: shadows.map((arrays) => fnv1a64(arrays)) };
}

/**
 * Each group's hashes, one per profile it keeps (separate groups: one per
 * EMA), in profile order: as bench/profiles.c answers `verify`. A profile
 * with the reference's bits gets the reference's hash without hashing again.
 */
export function groupHashes(groups, params, reference) {
  const hashes = {};
  for (const group of GROUPS) {
    hashes[group.id] = [];
    for (const ema of groups[group.id]) {
      const profileCount = ema.profiles?.length ?? 1;
      for (let profile = 0; profile < profileCount; profile++) {
        const index = hashes[group.id].length;
        const arrays = params.map((p) => ema.shadow(p.name, profileCount > 1 ? { profile } : undefined));
        const same = arrays.every((array, slot) => sameBits(array, reference.shadows[index][slot]));
        hashes[group.id].push(same ? reference.hashes[index] : fnv1a64(arrays));
      }
    }
  }
  return hashes;
}

// EMA_STAGING_FLOATS (include/ema_stream.h): the window update(params) copies into.
const STAGING_FLOATS = 65536;

/**
 * update(params)'s copy alone, as js/boundary.js makes it: every parameter
 * into a window of STAGING_FLOATS floats in a WebAssembly memory, piece by
 * piece, with no kernel after it. Its time is the part of an update(params)
 * that a second profile in the same EMA does not pay again.
 */
export function stagingCopyOperation(params) {
  const memory = new WebAssembly.Memory({ initial: (STAGING_FLOATS * 4) / 65536 });
  const staging = new Float32Array(memory.buffer, 0, STAGING_FLOATS);
  const arrays = params.map((p) => p.data);
  return {
    op: () => {
      let staged = 0;
      for (const data of arrays) {
        for (let offset = 0; offset < data.length; ) {
          const count = Math.min(data.length - offset, STAGING_FLOATS - staged);
          staging.set(count === data.length ? data : new Float32Array(data.buffer, data.byteOffset + offset * 4, count), staged);
          staged = staged + count === STAGING_FLOATS ? 0 : staged + count;
          offset += count;
        }
      }
      return staging[0];
    },
    touch: (i) => touchArrays(arrays, i),
  };
}

/**
 * A group's timed operation and its touch (one element of every parameter
 * moves, outside timing): update(params) of every EMA of the group, or
 * update() after the touch of each resident EMA's own parameters.
 */
export function groupOperation(group, emas, params) {
  const arrays = params.map((p) => p.data);
  if (!group.resident) {
    return {
      op: () => {
        for (const ema of emas) ema.update(params);
      },
      touch: (i) => touchArrays(arrays, i),
    };
  }
  const views = emas.map((ema) => residentViews(ema, params)); // valid for the EMA's life
  return {
    op: () => {
      for (const ema of emas) ema.update();
    },
    touch: (i) => {
      for (const emaViews of views) touchArrays(emaViews, i);
    },
  };
}
