// reconstruct(): post-hoc EMA from snapshots of power-function profiles.
//
// The method's own check: an EMA tracked directly at a width is what the
// reconstruction from two other widths' snapshots must come close to (the
// paper's claim; the gap is the method's, not rounding). Then exact cases:
// a target equal to a snapshot's profile is that snapshot; edge cases (one
// snapshot, duplicate times, a target after the last snapshot, the width
// limits); float16 snapshots; the warning; and every refusal. The numbers
// against an independent numpy implementation are in
// test/js/posthoc-fixture.test.js and test/c/test_posthoc.c.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma, readSnapshot, reconstruct } from '../../js/index.js';
import { encodeSafetensors } from '../../js/safetensors.js';
import { BUILDS, buildName } from './helpers.js';

const LENGTH = 300;

/** A noisy drifting signal: parameter i at step s. */
function signal(step, i) {
  const phase = (step * 0.013 + i * 0.7) % (2 * Math.PI);
  return Math.sin(phase) + 0.25 * Math.sin(step * 1.7 + i * 3.1);
}

/**
 * Trains a power EMA of `widths` and one of each `direct` width over
 * `steps` steps of `batch` samples, snapshotting every `every` steps.
 */
async function run({ widths, direct = [], steps, every, batch = 1, simd, dtype = 'float32' }) {
  const w = new Float32Array(LENGTH);
  const params = { w };
  const ema = await createEma(params, { recipe: 'power', sigmaRel: widths, batchSize: batch, simd });
  const tracked = await Promise.all(direct.map((sigmaRel) => createEma(params, { recipe: 'power', sigmaRel, batchSize: batch, simd })));
  const snapshots = [];
  for (let step = 1; step <= steps; step++) {
    for (let i = 0; i < LENGTH; i++) w[i] = signal(step, i);
    ema.update(params);
    for (const other of tracked) other.update(params);
    if (step % every === 0) snapshots.push(...ema.snapshot({ dtype }));
  }
  return { ema, tracked, snapshots };
}

function maxAbsDifference(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

for (const simd of BUILDS) {
  describe(`reconstruct, ${buildName(simd)} build`, () => {
    test('a width between and beyond the tracked ones comes close to an EMA tracked at that width', async () => {
      const targets = [0.03, 0.07, 0.15];
      const { tracked, snapshots } = await run({ widths: [0.05, 0.1], direct: targets, steps: 2000, every: 100, simd });
      for (const [index, sigmaRel] of targets.entries()) {
        const result = await reconstruct(snapshots, { sigmaRel, simd, warn: false });
        const want = tracked[index].shadow('w');
        const error = maxAbsDifference(result.weights.get('w'), want);
        // The signal's amplitude is ~1.25; the method's own error at 40
        // snapshots is a few thousandths (measured: < 2e-3 for these).
        assert.ok(error < 5e-3, `sigmaRel ${sigmaRel}: max error ${error}`);
        const sum = result.coefficients.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-12, `coefficients sum to ${sum}`);
        assert.equal(result.at, 2000);
        assert.equal(result.sigmaRel, sigmaRel);
        assert.equal(result.warning, null);
        assert.deepEqual(result.shapes.get('w'), [LENGTH]);
      }
    });

    test("a target equal to a snapshot's profile and time gives that snapshot", async () => {
      const { ema, snapshots } = await run({ widths: [0.05, 0.1], steps: 600, every: 100, simd });
      for (const [profile, sigmaRel] of [0.05, 0.1].entries()) {
        const result = await reconstruct(snapshots, { sigmaRel, simd, warn: false });
        const last = snapshots.length - 2 + profile;
        result.coefficients.forEach((c, i) => assert.ok(Math.abs(c - (i === last ? 1 : 0)) < 1e-9, `coefficient ${i}: ${c}`));
        const error = maxAbsDifference(result.weights.get('w'), ema.shadow('w', { profile }));
        assert.ok(error <= 1e-6, `max error ${error}`);
      }
    });

    test('an earlier time, between snapshots, comes close to the EMA at that time', async () => {
      const direct = await run({ widths: [0.08], steps: 1250, every: 1250, simd });
      const { snapshots } = await run({ widths: [0.05, 0.1], steps: 2000, every: 100, simd });
      const result = await reconstruct(snapshots, { sigmaRel: 0.08, at: 1250, simd, warn: false });
      const error = maxAbsDifference(result.weights.get('w'), direct.ema.shadow('w'));
      // Later snapshots must cancel what came after 1250: measured 5.7e-3.
      assert.ok(error < 1e-2, `max error ${error}`);
      assert.equal(result.at, 1250);
    });

    test('edge cases: one snapshot, duplicate times, a target after the last snapshot, the width limits', async () => {
      const { snapshots } = await run({ widths: [0.05, 0.1], steps: 400, every: 100, simd });
      // One snapshot: whatever the target, the mix is that snapshot.
      const one = await reconstruct([snapshots[0]], { sigmaRel: 0.2, simd, warn: false });
      assert.deepEqual([...one.coefficients], [1]);
      assert.equal(one.conditionNumber, 1);
      // Duplicates: the minimum-norm solution splits the weight evenly, the sum is the same.
      const once = await reconstruct(snapshots, { sigmaRel: 0.07, simd, warn: false });
      const twice = await reconstruct([...snapshots, ...snapshots], { sigmaRel: 0.07, simd, warn: false });
      once.coefficients.forEach((c, i) => {
        assert.ok(Math.abs(twice.coefficients[i] - c / 2) < 1e-9 && Math.abs(twice.coefficients[i + snapshots.length] - c / 2) < 1e-9, `snapshot ${i}`);
      });
      assert.ok(maxAbsDifference(once.weights.get('w'), twice.weights.get('w')) < 1e-5);
      // After the last snapshot: nothing after it was recorded; the result is refused by nothing but warned about.
      const later = await reconstruct(snapshots, { sigmaRel: 0.05, at: 800, simd, warn: false });
      assert.ok(later.fitError > 0.3 && later.warning !== null, `fit error ${later.fitError}`);
      // The width limits: sqrt(1/12) is gamma 0 (a plain average); a tiny width.
      const widest = await reconstruct(snapshots, { sigmaRel: Math.sqrt(1 / 12), simd, warn: false });
      assert.equal(widest.gamma, 0);
      const narrow = await reconstruct(snapshots, { sigmaRel: 0.001, simd, warn: false });
      assert.ok(narrow.gamma > 900, `gamma ${narrow.gamma}`);
      for (const result of [widest, narrow]) assert.ok(result.weights.get('w').every(Number.isFinite));
      // gamma directly.
      const byGamma = await reconstruct(snapshots, { gamma: once.gamma, simd, warn: false });
      assert.deepEqual(byGamma.coefficients, once.coefficients);
      assert.equal(byGamma.sigmaRel, null);
    });

    test('float16 snapshots reconstruct within their rounding', async () => {
      const full = await run({ widths: [0.05, 0.1], steps: 500, every: 100, simd });
      const half = await run({ widths: [0.05, 0.1], steps: 500, every: 100, simd, dtype: 'float16' });
      const a = await reconstruct(full.snapshots, { sigmaRel: 0.07, simd, warn: false });
      const b = await reconstruct(half.snapshots, { sigmaRel: 0.07, simd, warn: false });
      assert.deepEqual(a.coefficients, b.coefficients, 'the coefficients depend on the profiles only');
      const bound = b.amplification * 2 ** -11 * 1.5; // each weight |w| < 1.5, rounded to 2^-11 relative
      assert.ok(maxAbsDifference(a.weights.get('w'), b.weights.get('w')) <= bound);
    });

    test('warns when the snapshots cannot stand for the target: a time after the last snapshot, a width they cannot resolve', async () => {
      const { snapshots } = await run({ widths: [0.05, 0.1], steps: 400, every: 50, simd });
      const after = await reconstruct(snapshots, { sigmaRel: 0.07, at: 800, simd, warn: false });
      assert.ok(after.fitError > 0.3, `fit error ${after.fitError}`);
      assert.match(after.warning, /^the snapshots cannot stand for this EMA: their best mix is .* off its profile .*options\.at is after the last snapshot \(400 samples\)/);
      const narrow = await reconstruct(snapshots, { sigmaRel: 0.005, simd, warn: false });
      assert.match(narrow.warning, /narrower \(or wider\) than these snapshots can resolve/);
      const before = await reconstruct(snapshots, { sigmaRel: 0.07, at: 20, simd, warn: false });
      assert.match(before.warning, /options\.at is before the first snapshot \(50 samples\)/);
      const between = await reconstruct(snapshots, { sigmaRel: 0.07, at: 125, simd, warn: false });
      assert.match(between.warning, /options\.at falls between snapshots/);
      const good = await reconstruct(snapshots, { sigmaRel: 0.07, simd, warn: false });
      assert.ok(good.fitError < 0.02, `fit error ${good.fitError}`);
      assert.equal(good.warning, null);
    });

    test("warns when the coefficients amplify the snapshots' rounding, and prints it unless warn: false", async () => {
      // 80 close float16 snapshots and a narrow target: large alternating coefficients (sum ~40).
      const { snapshots } = await run({ widths: [0.05, 0.1], steps: 400, every: 10, simd, dtype: 'float16' });
      const warnings = [];
      const original = console.warn;
      console.warn = (message) => warnings.push(message);
      try {
        const result = await reconstruct(snapshots, { sigmaRel: 0.02, simd });
        assert.ok(result.fitError < 0.1, `fit error ${result.fitError}`);
        assert.match(result.warning, /coefficients' magnitudes sum to/);
        assert.equal(warnings.length, 1);
        assert.match(warnings[0], /^ema-wasm: reconstruct: /);
        await reconstruct(snapshots, { sigmaRel: 0.02, simd, warn: false });
        assert.equal(warnings.length, 1, 'warn: false is quiet');
        const wide = await reconstruct(snapshots, { sigmaRel: 0.2, simd, warn: false });
        assert.equal(wide.warning, null, `a target between the profiles' widths: sum ${wide.amplification}`);
      } finally {
        console.warn = original;
      }
    });
  });
}

describe('reconstruct refuses', () => {
  test('bad options and snapshots, naming what was expected', async () => {
    const { snapshots } = await run({ widths: [0.05, 0.1], steps: 20, every: 10, simd: false });
    const refuses = (snapshotsArgument, options, error, message) =>
      assert.rejects(reconstruct(snapshotsArgument, options), (thrown) => thrown instanceof error && message.test(thrown.message));
    await refuses(snapshots, {}, TypeError, /give options.sigmaRel .* or options.gamma, one of them/);
    await refuses(snapshots, { sigmaRel: 0.1, gamma: 3 }, TypeError, /one of them/);
    await refuses(snapshots, { sigmaRel: 0.3 }, RangeError, /options.sigmaRel must be a number in \[0.000001, 0.288/);
    await refuses(snapshots, { sigmaRel: '0.1' }, TypeError, /options.sigmaRel must be/);
    await refuses(snapshots, { gamma: -1 }, RangeError, /options.gamma must be a number in \[0, 1000000\], got -1/);
    await refuses(snapshots, { sigmaRel: 0.1, at: 0 }, RangeError, /options.at must be a time above 0 \(in samples\), got 0/);
    await refuses(snapshots, { sigmaRel: 0.1, at: Infinity }, RangeError, /options.at/);
    await refuses(snapshots, { sigmaRel: 0.1, warn: 1 }, TypeError, /options.warn must be a boolean/);
    await refuses(snapshots, { sigmaRel: 0.1, decay: 0.9 }, TypeError, /decay/);
    await refuses('snapshots', { sigmaRel: 0.1 }, TypeError, /snapshots must be an array/);
    await refuses([], { sigmaRel: 0.1 }, RangeError, /snapshots must hold 1 to 1024 snapshots, got 0/);
    await refuses(new Array(1025).fill(snapshots[0]), { sigmaRel: 0.1 }, RangeError, /got 1025/);
    const ema = await createEma({ w: new Float32Array(3) }, { recipe: 'power', simd: false });
    await refuses([ema.save()], { sigmaRel: 0.1 }, Error, /snapshots\[0\] is not a snapshot .* no metadata 'ema_wasm.snapshot' \(save\(\) writes checkpoints/);
    ema.update({ w: new Float32Array(3) });
    await refuses([snapshots[0], ema.snapshot()[0]], { sigmaRel: 0.1 }, Error, /snapshots\[1\] holds other weights than snapshots\[0\] \(3 elements|snapshots\[1\]/);
    const other = await createEma({ v: new Float32Array(LENGTH) }, { recipe: 'power', simd: false });
    other.update({ v: new Float32Array(LENGTH) });
    await refuses([snapshots[0], other.snapshot()[0]], { sigmaRel: 0.1 }, Error, /snapshots\[1\] holds other weights than snapshots\[0\] \(it has no 'w'\)/);
    await refuses([new Uint8Array(8)], { sigmaRel: 0.1 }, Error, /snapshots\[0\]/);
    // Two runs of the same widths: different snapshots of one profile and step.
    const nudged = await createEma({ w: Float32Array.from({ length: LENGTH }, (_, i) => i) }, { recipe: 'power', sigmaRel: [0.05, 0.1], simd: false });
    for (let step = 1; step <= 10; step++) nudged.update({ w: Float32Array.from({ length: LENGTH }, (_, i) => i + step) });
    await refuses([snapshots[0], nudged.snapshot()[0]], { sigmaRel: 0.1 }, Error,
      /snapshots\[0\] and snapshots\[1\] are both profile 0 at step 10 but hold different samples or weights/);
    // The same snapshot twice, and in float16 and float32, is one run.
    const half = await run({ widths: [0.05, 0.1], steps: 20, every: 10, simd: false, dtype: 'float16' });
    const mixed = await reconstruct([...snapshots, ...half.snapshots, snapshots[0]], { sigmaRel: 0.07, warn: false, simd: false });
    assert.equal(mixed.coefficients.length, 9);
    await refuses(snapshots, { gamma: 2e6 }, RangeError, /options\.gamma must be a number in \[0, 1000000\], got 2000000/);
    // Two runs' snapshots in one folder: profile 0 of different widths.
    const otherRun = await run({ widths: [0.2, 0.25], steps: 20, every: 10, simd: false });
    await refuses([...snapshots, ...otherRun.snapshots], { sigmaRel: 0.1 }, Error,
      /snapshots\[0\] and snapshots\[4\] are both profile 0 but of different runs \(gamma 16\.97\d* and 1\.82\d*, batch size 1 and 1\); keep one folder per run/);
    // A snapshot whose gamma is not its sigmaRel's (edited metadata).
    const info = { step: 5, samples: 5, profile: 0, sigmaRel: 0.05, gamma: 3, batchSize: 1, dtype: 'F32' };
    const forged = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [LENGTH], data: new Float32Array(LENGTH) }],
      [['ema_wasm.recipe', 'power'], ['ema_wasm.snapshot', JSON.stringify(info)]]);
    await refuses([forged], { sigmaRel: 0.1 }, Error, /its gamma 3 is the profile of sigma_rel 0\.1632\d*, not of its sigmaRel 0\.05/);
  });
});

test("reconstruct refuses a checked snapshot whose bytes were transferred away", async () => {
  const { snapshots } = await run({ widths: [0.05], steps: 10, every: 10, simd: false });
  const checked = await readSnapshot(snapshots[0].bytes);
  structuredClone(checked.bytes.buffer, { transfer: [checked.bytes.buffer] });
  await assert.rejects(reconstruct([checked], { sigmaRel: 0.1 }), {
    name: 'Error', message: /^ema-wasm: reconstruct: snapshots\[0\]'s bytes cannot be read: its ArrayBuffer was detached/,
  });
});
