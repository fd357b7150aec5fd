// The JS API as a user meets it: the three forms of params, LitEma's methods,
// the read-only properties, withEma and dispose, on both builds.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma, hasWasmSimd, shadowKey } from '../../js/index.js';
import { BUILDS, buildName, randomArray, referenceStep, warmupDecay } from './helpers.js';

test('SIMD is detected in Node and auto picks it', async () => {
  assert.equal(hasWasmSimd(), true);
  const ema = await createEma({ w: new Float32Array(3) });
  assert.equal(ema.simd, true);
});

test('shadowKey removes every dot, as LitEma does', () => {
  assert.equal(shadowKey('model.diffusion_model.input_blocks.0.0.bias'), 'modeldiffusion_modelinput_blocks00bias');
  assert.equal(shadowKey('plain'), 'plain');
});

for (const simd of BUILDS) {
  describe(`API, ${buildName(simd)} build`, () => {
    test('defaults: decay 0.9999 as float32, warmup on', async () => {
      const ema = await createEma([{ name: 'w', data: new Float32Array(2) }], { simd });
      assert.equal(ema.decay, Math.fround(0.9999));
      assert.equal(ema.numUpdates, 0);
      assert.deepEqual(ema.names, ['w']);
      assert.equal(ema.simd, simd);
      assert.ok(ema.byteLength > 65536 * 4, 'arena includes the staging window');
    });

    test('warmup off starts the counter at -1 and uses the base decay', async () => {
      const w = Float32Array.of(1, 2);
      const ema = await createEma({ w }, { decay: 0.5, useNumUpdates: false, simd });
      assert.equal(ema.numUpdates, -1);
      w.set([3, 4]);
      assert.deepEqual(ema.update({ w }), {
        action: 'averaged', decay: 0.5, weight: 0.5, counter: -1, overwrote: false, nonFinite: false,
      });
      assert.equal(ema.numUpdates, -1);
      assert.deepEqual(Array.from(ema.shadow('w')), [2, 3]);
    });

    test('the three forms of params are equivalent', async () => {
      const a = randomArray(37, 1);
      const b = randomArray(5, 2);
      const next = [randomArray(37, 3), randomArray(5, 4)];
      const forms = [
        () => [{ name: 'l.a', data: a.slice() }, { name: 'l.b', data: b.slice() }],
        () => new Map([['l.a', a.slice()], ['l.b', b.slice()]]),
        () => ({ 'l.a': a.slice(), 'l.b': b.slice() }),
      ];
      const results = [];
      for (const form of forms) {
        const params = form();
        const ema = await createEma(params, { decay: 0.9, simd });
        const arrays = Array.isArray(params) ? params.map((p) => p.data) : [...(params instanceof Map ? params.values() : Object.values(params))];
        arrays[0].set(next[0]);
        arrays[1].set(next[1]);
        ema.update(params);
        results.push([Array.from(ema.shadow('l.a')), Array.from(ema.shadow('l.b'))]);
      }
      assert.deepEqual(results[1], results[0]);
      assert.deepEqual(results[2], results[0]);
    });

    test('update matches a float32 JS reference over many steps and returns the decay', async () => {
      const lengths = [1, 3, 16, 17, 65536, 65537, 1000];
      const params = lengths.map((length, i) => ({ name: `p${i}.w`, data: randomArray(length, i + 1) }));
      const shadows = params.map((p) => p.data.slice());
      const ema = await createEma(params, { decay: 0.99, simd });
      for (let step = 1; step <= 30; step++) {
        params.forEach((p, i) => p.data.set(randomArray(p.data.length, step * 100 + i)));
        const expectedDecay = warmupDecay(0.99, step);
        assert.equal(ema.update(params).decay, expectedDecay);
        shadows.forEach((s, i) => referenceStep(s, params[i].data, expectedDecay));
      }
      params.forEach((p, i) => assert.deepEqual(ema.shadow(p.name), shadows[i], p.name));
    });

    test('untrainable parameters are not tracked and are skipped by update and copyTo', async () => {
      const frozen = Float32Array.of(7, 7);
      const params = [
        { name: 'w', data: Float32Array.of(1, 2, 3), shape: [3] },
        { name: 'running_mean', data: frozen, trainable: false },
      ];
      const ema = await createEma(params, { simd });
      assert.deepEqual(ema.names, ['w']);
      assert.deepEqual([...ema.stateDict().keys()], ['decay', 'num_updates', 'w']);
      ema.update(params);
      ema.copyTo(params);
      assert.deepEqual(Array.from(frozen), [7, 7]);
    });

    test('copyTo writes the shadows into the arrays in place', async () => {
      const w = Float32Array.of(0, 0);
      const ema = await createEma({ w }, { decay: 0, simd });
      w.set([5, 6]);
      ema.update({ w });
      w.set([100, 100]);
      ema.copyTo({ w });
      assert.deepEqual(Array.from(w), [5, 6]);
    });

    test('store and restore cover every array given, trainable or not, by name', async () => {
      const w = Float32Array.of(1, 2);
      const frozen = Float32Array.of(9);
      const params = [{ name: 'w', data: w }, { name: 'f', data: frozen, trainable: false }];
      const ema = await createEma(params, { simd });
      ema.store(params);
      w.set([0, 0]);
      frozen[0] = 0;
      ema.restore([{ name: 'f', data: frozen, trainable: false }, { name: 'w', data: w }]);
      assert.deepEqual(Array.from(w), [1, 2]);
      assert.deepEqual(Array.from(frozen), [9]);
      w.set([3, 3]);
      ema.restore(params); // the snapshot is kept, as LitEma keeps it
      assert.deepEqual(Array.from(w), [1, 2]);
    });

    test('withEma evaluates with EMA weights and restores, also when fn throws', async () => {
      const w = Float32Array.of(0, 0);
      const ema = await createEma({ w }, { decay: 0, simd });
      w.set([1, 1]);
      ema.update({ w });
      w.set([2, 2]);
      const seen = await ema.withEma({ w }, async () => {
        await Promise.resolve();
        return Array.from(w);
      });
      assert.deepEqual(seen, [1, 1]);
      assert.deepEqual(Array.from(w), [2, 2]);
      await assert.rejects(
        ema.withEma({ w }, () => {
          assert.deepEqual(Array.from(w), [1, 1]);
          throw new Error('evaluation failed');
        }),
        /evaluation failed/,
      );
      assert.deepEqual(Array.from(w), [2, 2]);
    });

    test('resetNumUpdates turns warmup on, as LitEma does', async () => {
      const w = Float32Array.of(1);
      const ema = await createEma({ w }, { decay: 0.999, useNumUpdates: false, simd });
      ema.update({ w });
      assert.equal(ema.numUpdates, -1);
      ema.resetNumUpdates();
      assert.equal(ema.numUpdates, 0);
      assert.equal(ema.update({ w }).decay, Math.fround(2 / 11));
      assert.equal(ema.numUpdates, 1);
    });

    test('stateDict has LitEma keys and types, and copies', async () => {
      const params = [
        { name: 'model.diffusion_model.out.0.weight', data: Float32Array.of(1, 2) },
        { name: 'model.betas', data: Float32Array.of(3), trainable: false },
      ];
      const ema = await createEma(params, { decay: 0.75, simd });
      ema.update(params);
      const state = ema.stateDict();
      assert.deepEqual([...state.keys()], ['decay', 'num_updates', 'modeldiffusion_modelout0weight']);
      assert.ok(state.get('decay') instanceof Float32Array);
      assert.deepEqual(Array.from(state.get('decay')), [0.75]);
      assert.ok(state.get('num_updates') instanceof Int32Array);
      assert.deepEqual(Array.from(state.get('num_updates')), [1]);
      state.get('modeldiffusion_modelout0weight')[0] = 99;
      assert.equal(ema.shadow('model.diffusion_model.out.0.weight')[0], 1);
    });

    test('shadow returns a copy and shape returns the given shape', async () => {
      const ema = await createEma([{ name: 'k', data: new Float32Array(6), shape: [2, 3] }], { simd });
      const copy = ema.shadow('k');
      copy[0] = 5;
      assert.equal(ema.shadow('k')[0], 0);
      assert.deepEqual(ema.shape('k'), [2, 3]);
    });

    test('zero-length and empty models work', async () => {
      const empty = await createEma([], { simd });
      assert.equal(empty.update([]).decay, Math.fround(2 / 11));
      const params = { e: new Float32Array(0), w: Float32Array.of(1) };
      const ema = await createEma(params, { simd });
      ema.update(params);
      assert.equal(ema.shadow('e').length, 0);
    });

    test('two EMAs are independent', async () => {
      const w = Float32Array.of(1);
      const first = await createEma({ w }, { decay: 0, simd });
      const second = await createEma({ w }, { decay: 1, useNumUpdates: false, simd });
      w[0] = 2;
      first.update({ w });
      second.update({ w });
      assert.equal(first.shadow('w')[0], 2);
      assert.equal(second.shadow('w')[0], 1);
    });

    test('after dispose every call throws, and dispose can be repeated', async () => {
      const w = Float32Array.of(1);
      const ema = await createEma({ w }, { simd });
      ema.dispose();
      ema.dispose();
      const calls = [
        () => ema.update({ w }), () => ema.copyTo({ w }), () => ema.store({ w }),
        () => ema.restore({ w }), () => ema.shadow('w'), () => ema.stateDict(),
        () => ema.resetNumUpdates(), () => ema.numUpdates, () => ema.decay, () => ema.names,
        () => ema.byteLength, () => ema.simd,
      ];
      for (const call of calls) assert.throws(call, /disposed/);
      await assert.rejects(ema.withEma({ w }, () => {}), /disposed/);
    });
  });
}

describe('withEma is one scope at a time', () => {
  for (const resident of [false, true]) {
    test(`overlapping withEma calls are refused and the training weights survive (resident: ${resident})`, async () => {
      const w = Float32Array.of(1, 2, 3, 4);
      const ema = await createEma({ w }, { decay: 0.5, useNumUpdates: false, resident });
      const weights = resident ? ema.param('w') : w;
      weights.set([3, 4, 5, 6]);
      resident ? ema.update() : ema.update({ w });
      const training = Array.from(weights);
      const call = (fn) => (resident ? ema.withEma(fn) : ema.withEma({ w }, fn));
      const results = await Promise.allSettled([
        call(async () => { await new Promise((r) => setTimeout(r, 5)); return Array.from(weights); }),
        call(async () => Array.from(weights)),
      ]);
      assert.equal(results[0].status, 'fulfilled');
      assert.deepEqual(results[0].value, [2, 3, 4, 5], 'EMA weights inside the first scope');
      assert.equal(results[1].status, 'rejected');
      assert.match(results[1].reason.message, /withEma: not allowed while withEma\(\) is running/);
      assert.deepEqual(Array.from(weights), training);
    });
  }

  test('store, restore, copyTo, update and dispose inside withEma are refused', async () => {
    const w = Float32Array.of(1, 2);
    const ema = await createEma({ w }, { decay: 0 });
    await ema.withEma({ w }, () => {
      for (const call of [() => ema.store({ w }), () => ema.restore({ w }), () => ema.copyTo({ w }),
        () => ema.update({ w }), () => ema.dispose()]) {
        assert.throws(call, /not allowed while withEma\(\) is running/);
      }
    });
    ema.update({ w }); // fine again afterwards
    ema.dispose();
  });
});
