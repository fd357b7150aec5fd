// reconstruct() against NumPy: test/fixtures/posthoc.txt, written by
// test/fixtures/generate_posthoc.py from the paper's formulas (closed-form
// inner products, np.linalg.lstsq, the float64 weighted sum in order).
//
// Each case becomes snapshot files (one weight: the fixture's 37-float input
// rows) and goes through the public API. Tolerances, as test_posthoc.c
// derives them (its comments): the coefficients within
// 4 u cond |x|_2 (1 + |x|_inf), u = 2^-53, of NumPy's; the condition number
// within 4 u (cond + 1), relative. The weights: NumPy's expected values were
// summed with NumPy's coefficients, ours with ours, so each may differ by
// what the coefficients differ by, sum_i |dc_i| |x_ij|, plus each float64
// sum's own error ((count + 1) u sum_i |c_i x_ij|) and each rounding to
// float32 (half an ulp). The C test checks the weighted sum bit for bit.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { reconstruct } from '../../js/index.js';
import { encodeSafetensors } from '../../js/safetensors.js';
import { BUILDS, buildName } from './helpers.js';

const U = 2 ** -53;

function f64(hex) {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

function f32(hex) {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, Number.parseInt(hex, 16));
  return view.getFloat32(0);
}

/** The fixture's cases: { name, target, snapshots, coefficients, condition, sums }. */
function readCases() {
  const lines = readFileSync(new URL('../fixtures/posthoc.txt', import.meta.url), 'utf8').split('\n');
  const cases = [];
  let current = null;
  for (const line of lines) {
    if (line === '' || line.startsWith('#') || line.startsWith('emaposthoc')) continue;
    const [kind, ...words] = line.split(' ');
    const profile = ([sigmaRel, gamma, time]) => ({ sigmaRel: f64(sigmaRel), gamma: f64(gamma), time: f64(time) });
    if (kind === 'case') current = { name: words[0], snapshots: [], sums: [] };
    else if (kind === 'target') current.target = profile(words);
    else if (kind === 'snapshot') current.snapshots.push(profile(words));
    else if (kind === 'coefficients') current.coefficients = words.map(f64);
    else if (kind === 'condition') current.condition = f64(words[0]);
    else if (kind === 'sum') {
      const n = Number(words[0]);
      const stride = Number(words[1]);
      const split = words.indexOf('expect');
      current.sums.push({ n, stride, inputs: Float32Array.from(words.slice(2, split), f32), expect: Float32Array.from(words.slice(split + 1), f32) });
    } else if (kind === 'end') cases.push(current);
  }
  return cases;
}

/** A snapshot file of one weight `w`: profile number `profile` of the width and time given. */
function snapshotFile({ sigmaRel, gamma, time }, profile, data) {
  const info = { step: time, samples: time, profile, sigmaRel, gamma, batchSize: 1, dtype: 'F32' };
  return encodeSafetensors(
    [{ name: 'w', dtype: 'F32', shape: [data.length], data }],
    [['format', 'pt'], ['ema_wasm.recipe', 'power'], ['ema_wasm.snapshot', JSON.stringify(info)]],
  );
}

const CASES = readCases();

test('the fixture has every case the generator writes', () => {
  assert.equal(CASES.length, 22);
  for (const name of ['one_snapshot', 'duplicates', 'target_past_last', 'target_sigma_tiny', 'target_sigma_max', 'big_256']) {
    assert.ok(CASES.some((fixture) => fixture.name === name), name);
  }
});

for (const simd of BUILDS) {
  describe(`reconstruct against NumPy, ${buildName(simd)} build`, () => {
    for (const fixture of CASES) {
      test(fixture.name, async () => {
        const { n, stride, inputs, expect } = fixture.sums.find((sum) => sum.n === 37);
        const rows = fixture.snapshots.map((_, i) => inputs.slice(i * stride, i * stride + n));
        // One profile number per width, as one run numbers its profiles; a
        // duplicate (the same width and time, other data) gets a profile
        // number of its own, as reconstruct refuses two different snapshots
        // of one profile and step.
        const widths = [...new Set(fixture.snapshots.map(({ gamma }) => gamma))];
        const seen = new Map();
        const files = fixture.snapshots.map((snapshot, i) => {
          const key = `${snapshot.gamma}/${snapshot.time}`;
          const copies = seen.get(key) ?? 0;
          seen.set(key, copies + 1);
          return snapshotFile(snapshot, widths.indexOf(snapshot.gamma) + widths.length * copies, rows[i]);
        });
        const result = await reconstruct(files, { gamma: fixture.target.gamma, at: fixture.target.time, simd, warn: false });

        const want = fixture.coefficients;
        const norm2 = Math.hypot(...want);
        const normInf = Math.max(...want.map(Math.abs));
        const bound = 4 * U * fixture.condition * norm2 * (1 + normInf);
        const delta = want.map((c, i) => Math.abs(result.coefficients[i] - c));
        delta.forEach((d, i) => assert.ok(d <= bound, `coefficient ${i}: off by ${d}, bound ${bound}`));
        const conditionError = Math.abs(result.conditionNumber - fixture.condition) / fixture.condition;
        assert.ok(conditionError <= 4 * U * (fixture.condition + 1), `condition ${result.conditionNumber} vs ${fixture.condition}`);

        const got = result.weights.get('w');
        for (let j = 0; j < n; j++) {
          if (!Number.isFinite(expect[j])) {
            // An infinity's sign is its coefficient's: when that coefficient
            // is zero but for rounding (a target that is one snapshot), the
            // sign is noise, and only "not finite" is certain.
            const determined = rows.every((row, i) => Number.isFinite(row[j]) || Math.abs(want[i]) > bound);
            if (determined) assert.ok(Object.is(got[j], expect[j]) || (Number.isNaN(got[j]) && Number.isNaN(expect[j])), `w[${j}]: ${got[j]} vs ${expect[j]}`);
            else assert.ok(!Number.isFinite(got[j]), `w[${j}]: ${got[j]} vs ${expect[j]}`);
            continue;
          }
          let spread = 0;
          let magnitude = 0;
          rows.forEach((row, i) => {
            spread += delta[i] * Math.abs(row[j]);
            magnitude += Math.abs(want[i] * row[j]);
          });
          // Both sums' float64 rounding (a product and an addition per
          // snapshot each) and both roundings to float32.
          const allowed = spread + 2 * (rows.length + 1) * U * magnitude + (Math.abs(expect[j]) + Math.abs(got[j])) * 2 ** -24 + 2 ** -149;
          assert.ok(Math.abs(got[j] - expect[j]) <= allowed, `w[${j}]: ${got[j]} vs ${expect[j]}, allowed ${allowed}`);
        }
      });
    }
  });
}
