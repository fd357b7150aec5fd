// Post-hoc EMA (Karras et al. 2024, Section 3 and Appendix C.2): the EMA of
// any relative width, at any time, reconstructed after training from
// snapshots of a few power-function profiles. The coefficients come from a
// float64 least-squares solve of the profiles' inner products in closed form
// (src/posthoc.c); the weights are the snapshots' sum with them, in float64
// in snapshot order, rounded once to float32, in Wasm.

import { describe } from './describe.js';
import { fromFloat16 } from './float16.js';
import { PosthocSolver } from './boundary.js';
import { loadModule } from './loader.js';
import { readOptions } from './resolve.js';
import { RULES } from './recipes.js';
import { checkedSnapshot, MAX_SNAPSHOTS, parseSnapshot, snapshotBytesUsable } from './snapshots.js';
import { windowOf } from './typed-arrays.js';
import { adoptWasmSource } from './wasm-source.js';

/**
 * Beyond this relative distance between the target profile and the mix of
 * the snapshots' profiles, the mix does not stand for the target: a good fit
 * is a few thousandths off; a mix 0.087 off gave weights 8.7% off an EMA
 * tracked at that width; a target at a time after the last snapshot is 0.3
 * to 10 off.
 */
export const FIT_WARNING = 0.05;
/**
 * Beyond this condition number the float64 solve itself loses digits that
 * matter (about cond x 2^-53 of relative error in the coefficients).
 */
export const CONDITION_WARNING = 1e12;
/**
 * Beyond this, the snapshots' own rounding (float32: 2^-24, float16: 2^-11
 * of each weight) summed with the coefficients' magnitudes may reach this
 * fraction of a weight's size: 1%, which float16 snapshots reach at a
 * coefficient sum of 20 and float32 ones at 168,000.
 */
export const NOISE_WARNING = 1e-2;
const UNIT_ROUNDOFF = Object.freeze({ F32: 2 ** -24, F16: 2 ** -11 });

/**
 * The weights of the power-function EMA of relative width `sigmaRel` (or
 * exponent `gamma`) at time `at` (in samples, as the snapshots count them;
 * default: the last snapshot's), reconstructed from `snapshots` (each a
 * snapshot()'s or readSnapshots()'s object, or a snapshot file's bytes).
 * Returns { weights: Map(name -> Float32Array), shapes: Map(name -> shape),
 * coefficients: Float64Array (one per snapshot, in the order given, summing
 * to 1), conditionNumber, fitError (how far the snapshots' mix is from the
 * target profile), amplification (the sum of the coefficients'
 * magnitudes), sigmaRel, gamma, at, warning (a string, or null) }; the
 * warning is also printed with console.warn unless options.warn is false.
 */
export async function reconstruct(snapshots, options = {}) {
  const method = 'reconstruct';
  const values = readOptions(options, ['sigmaRel', 'gamma', 'at', 'warn', 'simd', 'wasm'], method);
  const { sigmaRel, gamma, at, warn = true, simd = 'auto' } = values;
  const wasm = adoptWasmSource(values.wasm);
  if ((sigmaRel === undefined) === (gamma === undefined)) {
    throw new TypeError(`ema-wasm: ${method}: give options.sigmaRel (the EMA's relative width) or options.gamma, one of them`);
  }
  if (sigmaRel !== undefined && !(typeof sigmaRel === 'number' && RULES.sigmaRel.check(sigmaRel) && sigmaRel !== null)) {
    const what = RULES.sigmaRel.what.replace(/^null or /, '');
    throw typeof sigmaRel === 'number' ? new RangeError(`ema-wasm: ${method}: options.sigmaRel must be ${what}, got ${sigmaRel}`)
      : new TypeError(`ema-wasm: ${method}: options.sigmaRel must be ${what}, got ${describe(sigmaRel)}`);
  }
  if (gamma !== undefined && !RULES.gamma.check(gamma)) {
    throw typeof gamma === 'number' ? new RangeError(`ema-wasm: ${method}: options.gamma must be ${RULES.gamma.what}, got ${gamma}`)
      : new TypeError(`ema-wasm: ${method}: options.gamma must be ${RULES.gamma.what}, got ${describe(gamma)}`);
  }
  if (at !== undefined && !(typeof at === 'number' && at > 0 && Number.isFinite(at))) {
    throw typeof at === 'number' ? new RangeError(`ema-wasm: ${method}: options.at must be a time above 0 (in samples), got ${at}`)
      : new TypeError(`ema-wasm: ${method}: options.at must be a number (a time in samples), got ${describe(at)}`);
  }
  if (typeof warn !== 'boolean') throw new TypeError(`ema-wasm: ${method}: options.warn must be a boolean, got ${describe(warn)}`);
  if (!Array.isArray(snapshots)) {
    throw new TypeError(`ema-wasm: ${method}: snapshots must be an array of snapshots (from snapshot() or readSnapshots()), got ${describe(snapshots)}`);
  }
  const given = Array.from(snapshots); // read once
  if (given.length === 0 || given.length > MAX_SNAPSHOTS) {
    throw new RangeError(`ema-wasm: ${method}: snapshots must hold 1 to ${MAX_SNAPSHOTS} snapshots, got ${given.length}`);
  }
  const { module } = await loadModule(simd, wasm, method);
  // Snapshots readSnapshot(s) checked are used as they are (a slider calls
  // this again and again); anything else is parsed and checked here.
  const parsed = [];
  for (let i = 0; i < given.length; i++) parsed.push(checkedSnapshot(given[i]) ?? await parseSnapshot(given[i], method, module, `snapshots[${i}]`));
  // A checked snapshot's own bytes could have been transferred away since.
  parsed.forEach((snapshot, i) => {
    const reason = snapshotBytesUsable(snapshot);
    if (reason !== null) throw new Error(`ema-wasm: ${method}: snapshots[${i}]'s bytes cannot be read: ${reason}`);
  });
  checkOneRun(parsed, method);
  const { layout, maps } = checkSameWeights(parsed, method);

  const solver = new PosthocSolver(module, parsed.length);
  const targetGamma = gamma ?? solver.gammaOf(sigmaRel);
  const targetTime = at ?? Math.max(...parsed.map((snapshot) => snapshot.samples)); // the last snapshot's
  const solved = solver.solve(parsed.map((snapshot) => snapshot.gamma), parsed.map((snapshot) => snapshot.samples), targetGamma, targetTime);
  if (solved === null) {
    throw new RangeError(
      `ema-wasm: ${method}: the snapshots cannot express the profile of gamma ${targetGamma} at ${targetTime} samples: ` +
        'nothing of it lies in their span (a time or width far outside theirs)',
    );
  }
  const { coefficients, condition, fitError } = solved;

  const weights = new Map();
  for (const { name, elements } of layout) {
    const out = new Float32Array(elements);
    for (let start = 0; start < elements; start += solver.chunk) {
      const n = Math.min(solver.chunk, elements - start);
      solver.weightedSum(n, (index, view) => readElements(parsed[index], maps[index].get(name), start, n, view), out.subarray(start, start + n));
    }
    weights.set(name, out);
  }

  let amplification = 0;
  for (const c of coefficients) amplification += Math.abs(c);
  const roundoff = Math.max(...parsed.map((snapshot) => UNIT_ROUNDOFF[snapshot.dtype]));
  const times = parsed.map((snapshot) => snapshot.samples);
  const warning = warningFor({
    fitError, condition, amplification, roundoff, targetTime, first: Math.min(...times), last: Math.max(...times), atSnapshot: times.includes(targetTime),
  });
  if (warning !== null && warn) console.warn(`ema-wasm: ${method}: ${warning}`);
  return {
    weights,
    shapes: new Map(layout.map(({ name, shape }) => [name, shape.slice()])),
    coefficients,
    conditionNumber: condition,
    fitError,
    amplification,
    sigmaRel: sigmaRel ?? null,
    gamma: targetGamma,
    at: targetTime,
    warning,
  };
}

function warningFor({ fitError, condition, amplification, roundoff, targetTime, first, last, atSnapshot }) {
  if (!(fitError <= FIT_WARNING)) {
    let why;
    if (targetTime > last) why = `options.at is after the last snapshot (${last} samples): nothing after it was recorded`;
    else if (targetTime < first) why = `options.at is before the first snapshot (${first} samples)`;
    else if (!atSnapshot) why = 'options.at falls between snapshots, whose mix must cancel what came after it: take snapshots more often';
    else why = 'the target is narrower (or wider) than these snapshots can resolve: take snapshots more often, or of profiles nearer the target';
    const off = Number.isFinite(fitError) ? `${fitError.toPrecision(2)} off its profile (relative L2 distance)` : 'off its profile by an amount that cannot be computed';
    return `the snapshots cannot stand for this EMA: their best mix is ${off}; ${why}`;
  }
  if (condition > CONDITION_WARNING) {
    return `the system is ill-conditioned (condition number ${condition.toPrecision(3)}): the coefficients are not reliable; ` +
      'use fewer, more distinct snapshots (duplicate or very close times and widths make it so)';
  }
  if (amplification * roundoff > NOISE_WARNING) {
    return `the coefficients' magnitudes sum to ${amplification.toPrecision(3)} (condition number ${condition.toPrecision(3)}): ` +
      `the snapshots' rounding may reach ${(amplification * roundoff).toPrecision(2)} of each weight; ` +
      'a target much narrower or wider than the tracked profiles, or outside the snapshots\' times, amplifies it (float16 snapshots more)';
  }
  return null;
}

/**
 * Within one run, profile k has one width and one batch size, and one
 * snapshot per step (copies of it in float16 and float32 aside): snapshots
 * that disagree come from two runs (one folder written by both), whose mix
 * means nothing.
 */
function checkOneRun(parsed, method) {
  const first = new Map(); // profile -> the first snapshot of it
  const atStep = new Map(); // 'profile/step' -> index: one run has one snapshot there
  parsed.forEach((snapshot, index) => {
    const seen = first.get(snapshot.profile);
    if (seen === undefined) {
      first.set(snapshot.profile, index);
    } else if (parsed[seen].gamma !== snapshot.gamma || parsed[seen].batchSize !== snapshot.batchSize) {
      const other = parsed[seen];
      throw new Error(
        `ema-wasm: ${method}: snapshots[${seen}] and snapshots[${index}] are both profile ${snapshot.profile} but of different runs ` +
          `(gamma ${other.gamma} and ${snapshot.gamma}, batch size ${other.batchSize} and ${snapshot.batchSize}); keep one folder per run`,
      );
    }
    const key = `${snapshot.profile}/${snapshot.step}`;
    const twin = atStep.get(key);
    if (twin === undefined) {
      atStep.set(key, index);
    } else if (parsed[twin].samples !== snapshot.samples || !sameWeights(parsed[twin], snapshot)) {
      throw new Error(
        `ema-wasm: ${method}: snapshots[${twin}] and snapshots[${index}] are both profile ${snapshot.profile} at step ${snapshot.step} ` +
          'but hold different samples or weights: snapshots of two runs; keep one folder per run',
      );
    }
  });
}

/**
 * Whether two snapshots of one dtype hold the same weight bytes (a float16
 * and a float32 copy of one snapshot are not compared).
 */
function sameWeights(a, b) {
  if (a.dtype !== b.dtype) return true; // not compared
  if (a.tensors.length !== b.tensors.length) return false;
  const byName = new Map(b.tensors.map((tensor) => [tensor.name, tensor]));
  return a.tensors.every((tensor) => {
    const other = byName.get(tensor.name);
    if (other === undefined || other.byteLength !== tensor.byteLength) return false;
    const x = windowOf(a.bytes, tensor.offset, tensor.byteLength, Uint8Array);
    const y = windowOf(b.bytes, other.offset, other.byteLength, Uint8Array);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  });
}

/**
 * Every snapshot has the same weights (names, shapes) as the first: returns
 * { layout: [{ name, shape, elements }], maps: each snapshot's name -> tensor }.
 */
function checkSameWeights(parsed, method) {
  const first = parsed[0].tensors;
  const layout = first.map(({ name, shape }) => ({ name, shape, elements: shape.reduce((product, d) => product * d, 1) }));
  const maps = parsed.map((snapshot, index) => {
    const byName = new Map(snapshot.tensors.map((tensor) => [tensor.name, tensor]));
    const missing = layout.find(({ name }) => !byName.has(name));
    const extra = snapshot.tensors.length !== layout.length;
    if (missing !== undefined || extra) {
      throw new Error(
        `ema-wasm: ${method}: snapshots[${index}] holds other weights than snapshots[0]` +
          (missing !== undefined ? ` (it has no '${missing.name}')` : ` (${snapshot.tensors.length} weights against ${layout.length})`) +
          '; snapshots of one reconstruction must come from one model',
      );
    }
    for (const { name, shape } of layout) {
      const other = byName.get(name).shape;
      if (other.join() !== shape.join()) {
        throw new Error(`ema-wasm: ${method}: '${name}' has shape [${other.join(', ')}] in snapshots[${index}] and [${shape.join(', ')}] in snapshots[0]`);
      }
    }
    return byName;
  });
  return { layout, maps };
}

/** Writes elements [start, start + n) of one of a snapshot's weights (`tensor`), as float32, into `view`. */
function readElements(snapshot, tensor, start, n, view) {
  const width = snapshot.dtype === 'F16' ? 2 : 4;
  const bytes = new Uint8Array(n * width);
  bytes.set(windowOf(snapshot.bytes, tensor.offset + start * width, n * width, Uint8Array));
  if (width === 4) view.set(new Float32Array(bytes.buffer));
  else fromFloat16(new Uint16Array(bytes.buffer), view);
}
