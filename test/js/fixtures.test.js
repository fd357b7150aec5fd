// Replays the PyTorch LitEma runs through the JS API on both Wasm builds and
// compares every bit of every shadow, decay and counter.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma, hasWasmSimd } from '../../js/index.js';
import { bitsToFloat, firstBitDifference, hex, readFixtures } from './fixture.js';

const cases = readFixtures();
const builds = hasWasmSimd() ? [true, false] : [false];

function assertBitsEqual(actual, expected, where) {
  const index = firstBitDifference(actual, expected);
  if (index !== -1) {
    assert.fail(
      `${where}: element ${index} is ${hex(actual[index])} (${actual[index]}), ` +
        `PyTorch has ${hex(expected[index])} (${expected[index]})`,
    );
  }
}

test('the fixture file holds every case the issue asks for', () => {
  const ids = cases.map((c) => c.id);
  for (const id of ['dotted_untrainable_default_decay', 'decay_zero', 'decay_one', 'lengths_1_to_17',
    'decay_0999_no_warmup', 'large_crosses_staging_window']) {
    assert.ok(ids.includes(id), `missing case ${id}`);
  }
  const updates = cases.flatMap((c) => c.steps).filter((s) => s.kind === 'update').length;
  assert.ok(updates > 100, `only ${updates} updates`);
});

for (const simd of builds) {
  describe(`LitEma fixtures, ${simd ? 'SIMD' : 'scalar'} build`, () => {
    for (const fixture of cases) {
      test(fixture.id, async () => {
        const params = fixture.params.map((param) => ({
          name: param.name,
          data: param.init.slice(),
          trainable: param.trainable,
        }));
        const ema = await createEma(params, {
          decay: bitsToFloat(fixture.decayBits.toString(16)),
          useNumUpdates: fixture.warmup,
          simd,
        });
        assert.equal(ema.simd, simd);
        assert.equal(hex(ema.decay), fixture.decayBits.toString(16).padStart(8, '0'));
        assert.equal(ema.numUpdates, fixture.warmup ? 0 : -1);
        const trainable = fixture.params.filter((param) => param.trainable);

        fixture.steps.forEach((step, index) => {
          const where = `${fixture.id} step ${index + 1}`;
          if (step.kind === 'reset') {
            ema.resetNumUpdates();
            assert.equal(ema.numUpdates, step.numUpdates, where);
            return;
          }
          params.forEach((param, p) => param.data.set(step.values[p]));
          const decayUsed = ema.update(params).decay;
          assert.equal(hex(decayUsed), step.decayBits.toString(16).padStart(8, '0'), `${where}: decay used`);
          assert.equal(ema.numUpdates, step.numUpdates, `${where}: num_updates`);
          if (step.shadows) {
            trainable.forEach((param, t) => {
              assertBitsEqual(ema.shadow(param.name), step.shadows[t], `${where}, shadow of ${param.name}`);
            });
          }
        });
        ema.dispose();
      });
    }
  });
}
