// Before any timing, every variant of a model must compute the same thing:
// the SIMD build, the scalar build, the resident mode, the plain JS loop
// (both workers) and the native binary (both paths) must give bit-identical
// shadows after the same VERIFY_STEPS updates (FNV-1a 64 over the shadow
// bytes, decays compared too), or the run stops (bench/compare.mjs exits
// with code 1). TF.js rows are checked the same way, for information only:
// a faster row that computed something else would be no result.

import { fillRandom } from './params.mjs';

export const VERIFY_STEPS = 3;

/** FNV-1a 64 over the bytes of the arrays, in order; as a 16-digit hex string. */
export function fnv1a64(arrays) {
  let lo = 0x84222325;
  let hi = 0xcbf29ce4;
  for (const array of arrays) {
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < bytes.length; i++) {
      lo = (lo ^ bytes[i]) >>> 0;
      // h *= 0x100000001b3 (mod 2^64) = h * 0x1b3 + (h << 40)
      const low = lo * 0x1b3; // < 2^41: exact in a double
      hi = (Math.imul(hi, 0x1b3) + Math.floor(low / 4294967296) + (lo << 8)) >>> 0;
      lo = low >>> 0;
    }
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

function sameBits(a, b) {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * One model's verification: every variant's hash and decays against the
 * SIMD build's. `result` is what results.json lists under `verification`;
 * `mismatches` names the required variants that differ.
 */
export class Verification {
  constructor(modelKey, referenceShadows, referenceDecays) {
    this.referenceShadows = referenceShadows;
    this.referenceDecays = referenceDecays;
    this.result = { model: modelKey, reference: fnv1a64(referenceShadows), steps: VERIFY_STEPS, variants: {}, informational: {} };
    this.mismatches = [];
  }

  /** Records a variant; `required` false lists it under `informational`, where a difference does not stop the run. */
  record(id, hash, decays, required = true) {
    const decaysMatch = decays.length === VERIFY_STEPS && decays.every((d, i) => Object.is(Math.fround(d), this.referenceDecays[i]));
    const identical = hash === this.result.reference && decaysMatch;
    (required ? this.result.variants : this.result.informational)[id] = { hash, identical };
    if (!identical && required) this.mismatches.push(`${id} (hash ${hash}${decaysMatch ? '' : ', decays differ'})`);
  }

  /**
   * The hash of shadows in this process, `shadowAt(i)` giving the i-th: the
   * reference's when the bits are the same, so the bytes are not hashed
   * again. One shadow at a time: on 64M, all copies at once are 256 MB.
   */
  hashOf(shadowAt) {
    const count = this.referenceShadows.length;
    for (let i = 0; i < count; i++) {
      if (!sameBits(this.referenceShadows[i], shadowAt(i))) return fnv1a64(Array.from({ length: count }, (_, j) => shadowAt(j)));
    }
    return this.result.reference;
  }
}

/**
 * Runs VERIFY_STEPS updates, with new values drawn from `random` before
 * each, on the ema-wasm EMAs (`emas`, main-thread.mjs) and asks the remotes
 * (the JS loop workers, the native process) to do the same on their copies.
 * Returns the Verification; the caller decides what a mismatch stops.
 */
export async function verifyVariants({ modelKey, params, random, emas, remotes }) {
  const { simd, scalar, resident } = emas;
  const arrays = params.map((p) => p.data);
  // The remotes verify concurrently with the main thread (2 cores, no timing yet).
  const pending = {};
  for (const id of ['jsLoop', 'jsLoopDetached']) {
    if (remotes[id]) pending[id] = remotes[id].request({ type: 'verify' });
  }
  if (remotes.native) pending.native = remotes.native.request(`verify ${VERIFY_STEPS}`);
  const decays = { simd: [], scalar: [], resident: [] };
  for (let step = 0; step < VERIFY_STEPS; step++) {
    fillRandom(arrays, random);
    decays.simd.push(simd.update(params).decay);
    decays.scalar.push(scalar.update(params).decay);
    if (resident) {
      emas.residentViews().forEach((view, i) => view.set(arrays[i])); // the training loop writes in place
      decays.resident.push(resident.update().decay);
    }
  }
  const shadowReader = (ema) => (i) => ema.shadow(params[i].name);
  const verification = new Verification(modelKey, params.map((p) => simd.shadow(p.name)), decays.simd);
  verification.record('simd', verification.result.reference, decays.simd);
  verification.record('scalar', verification.hashOf(shadowReader(scalar)), decays.scalar);
  if (resident) verification.record('resident', verification.hashOf(shadowReader(resident)), decays.resident);
  for (const id of ['jsLoop', 'jsLoopDetached']) {
    if (!pending[id]) continue;
    const reply = await pending[id];
    verification.record(id, reply.hash, reply.decays);
  }
  if (pending.native) {
    const reply = await pending.native;
    verification.record('nativeCopyin', reply.copyin, reply.decaysCopyin);
    verification.record('nativeDirect', reply.direct, reply.decaysDirect);
  }
  return verification;
}
