// Linear memory grows when large models are created or stored. Values must
// stay right across growth, and nothing handed to the caller may be a view
// that growth detaches.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma } from '../../js/index.js';
import { BUILDS, buildName, randomArray, referenceStep, warmupDecay } from './helpers.js';

/** A view of Wasm memory has a buffer far larger than itself. */
function assertOwnsItsBuffer(array, what) {
  assert.equal(array.buffer.byteLength, array.byteLength, `${what} must be a copy, not a view into memory`);
}

for (const simd of BUILDS) {
  describe(`memory growth, ${buildName(simd)} build`, () => {
    test('values and returned copies survive growth from store and update', async () => {
      const small = { 'a.w': randomArray(1000, 1) };
      const ema = await createEma(small, { decay: 0.5, simd });
      const byteLengthBefore = ema.byteLength;
      const shadowBefore = ema.shadow('a.w');
      const stateBefore = ema.stateDict();
      for (const value of [shadowBefore, ...stateBefore.values()]) assertOwnsItsBuffer(value, 'shadow/stateDict value');

      // 48 MB of stored arrays forces memory to grow several times.
      const big = { ...small, huge: randomArray(12_000_000, 2) };
      ema.store(big);
      assert.ok(ema.byteLength >= byteLengthBefore + 48_000_000);

      // Copies taken before growth are intact, not detached.
      assert.equal(shadowBefore.length, 1000);
      assert.deepEqual(shadowBefore, small['a.w']);
      assert.deepEqual(stateBefore.get('aw'), small['a.w']);

      // The arena still updates and restores correctly after growth.
      const reference = small['a.w'].slice();
      small['a.w'].set(randomArray(1000, 3));
      ema.update(small);
      referenceStep(reference, small['a.w'], warmupDecay(0.5, 1));
      assert.deepEqual(ema.shadow('a.w'), reference);

      big.huge.fill(0);
      ema.restore(big);
      assert.deepEqual(big.huge.subarray(0, 5), randomArray(5, 2));
      assert.deepEqual(big.huge.subarray(11_999_995), randomArray(12_000_000, 2).subarray(11_999_995));
    });

    test('a large model with big stores between updates: updates stay exact, copyTo writes plain arrays', async () => {
      const params = [];
      for (let i = 0; i < 16; i++) params.push({ name: `block.${i}.w`, data: randomArray(250_000 + i, i + 1) });
      const ema = await createEma(params, { decay: 0.9, simd });
      const shadows = params.map((p) => p.data.slice());
      for (let step = 1; step <= 3; step++) {
        params.forEach((p, i) => p.data.set(randomArray(p.data.length, 1000 * step + i)));
        ema.update(params);
        shadows.forEach((s, i) => referenceStep(s, params[i].data, warmupDecay(0.9, step)));
        // Growth between steps: a big store in the middle of training.
        if (step === 2) ema.store([...params, { name: 'extra', data: new Float32Array(8_000_000) }]);
      }
      const targets = params.map((p) => ({ name: p.name, data: new Float32Array(p.data.length) }));
      ema.copyTo(targets);
      targets.forEach((t, i) => {
        assertOwnsItsBuffer(t.data, 'copyTo target');
        assert.deepEqual(t.data, shadows[i], t.name);
      });
      const copy = ema.shadow('block.3.w');
      ema.store([{ name: 'grow', data: new Float32Array(20_000_000) }]);
      assert.deepEqual(copy, shadows[3], 'a shadow copy taken before growth is still intact');
      assert.deepEqual(ema.shadow('block.15.w'), shadows[15]);
    });

    test('dispose releases the arena for other EMAs to be created', async () => {
      for (let round = 0; round < 4; round++) {
        const ema = await createEma({ w: new Float32Array(16_000_000) }, { simd });
        ema.update({ w: new Float32Array(16_000_000) });
        ema.dispose();
      }
    });
  });
}
