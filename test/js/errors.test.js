// Bad input gets a clear error of the right class, and the EMA afterwards is
// exactly as it was before the call.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma } from '../../js/index.js';
import { BUILDS, buildName, randomArray, snapshot } from './helpers.js';

/** assert.throws that also checks the class and that the message names things. */
function throwsNaming(call, ErrorClass, ...parts) {
  assert.throws(call, (error) => {
    assert.equal(error.constructor, ErrorClass, `expected ${ErrorClass.name}, got ${error.constructor.name}: ${error.message}`);
    for (const part of parts) {
      assert.ok(error.message.includes(part), `message "${error.message}" should mention ${part}`);
    }
    return true;
  });
}

async function rejectsNaming(promise, ErrorClass, ...parts) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.constructor, ErrorClass, `expected ${ErrorClass.name}, got ${error.constructor.name}: ${error.message}`);
    for (const part of parts) {
      assert.ok(error.message.includes(part), `message "${error.message}" should mention ${part}`);
    }
    return true;
  });
}

const good = () => ({ 'layer.w': Float32Array.of(1, 2, 3), 'layer.b': Float32Array.of(4) });

describe('createEma refuses bad options and params', () => {
  for (const decay of [-0.1, 1.1, NaN, Infinity, -Infinity]) {
    test(`decay ${decay} is a RangeError`, async () => {
      await rejectsNaming(createEma(good(), { decay }), RangeError, 'options.decay', '[0, 1]', String(decay));
    });
  }
  test('decay of the wrong type is a TypeError', async () => {
    await rejectsNaming(createEma(good(), { decay: '0.9' }), TypeError, 'options.decay', 'string');
  });
  test('decay 0 and 1 are accepted', async () => {
    assert.equal((await createEma(good(), { decay: 0 })).decay, 0);
    assert.equal((await createEma(good(), { decay: 1 })).decay, 1);
  });
  test('useNumUpdates, simd and unknown options are checked', async () => {
    await rejectsNaming(createEma(good(), { useNumUpdates: 1 }), TypeError, 'options.useNumUpdates');
    await rejectsNaming(createEma(good(), { simd: 'yes' }), TypeError, 'options.simd');
    await rejectsNaming(createEma(good(), { use_num_updates: false }), TypeError, "'use_num_updates'");
    await rejectsNaming(createEma(good(), null), TypeError, 'options');
  });
  test('params that are not a collection', async () => {
    for (const params of [null, undefined, 42, 'w', new Float32Array(3)]) {
      await rejectsNaming(createEma(params), TypeError, 'params must be');
    }
  });
  test('a parameter that is not a Float32Array is a TypeError naming it', async () => {
    await rejectsNaming(createEma({ w: new Float64Array(3) }), TypeError, "'w'", 'Float32Array', 'Float64Array');
    await rejectsNaming(createEma([{ name: 'w', data: [1, 2] }]), TypeError, "'w'", 'Float32Array');
    await rejectsNaming(createEma(new Map([['w', new Int32Array(2)]])), TypeError, "'w'", 'Int32Array');
  });
  test('names must be non-empty strings', async () => {
    await rejectsNaming(createEma([{ name: 3, data: new Float32Array(1) }]), TypeError, 'params[0].name');
    await rejectsNaming(createEma([{ name: '', data: new Float32Array(1) }]), Error, 'params[0].name');
    await rejectsNaming(createEma([null]), TypeError, 'params[0]');
  });
  test('duplicate names are refused, naming them', async () => {
    const params = [
      { name: 'w', data: new Float32Array(1) },
      { name: 'w', data: new Float32Array(1) },
    ];
    await rejectsNaming(createEma(params), Error, 'duplicate', "'w'");
  });
  test('shape and trainable are checked', async () => {
    await rejectsNaming(createEma([{ name: 'w', data: new Float32Array(6), shape: [2, 2] }]), Error, "'w'", '[2, 2]', '6');
    await rejectsNaming(createEma([{ name: 'w', data: new Float32Array(6), shape: [2, -3] }]), RangeError, "'w'");
    await rejectsNaming(createEma([{ name: 'w', data: new Float32Array(6), shape: 6 }]), TypeError, "'w'", 'shape');
    await rejectsNaming(createEma([{ name: 'w', data: new Float32Array(1), trainable: 'no' }]), TypeError, "'w'", 'trainable');
  });
  test('names that LitEma would merge once dots are removed are refused', async () => {
    await rejectsNaming(createEma({ 'a.bc': new Float32Array(1), 'ab.c': new Float32Array(1) }), Error, "'a.bc'", "'ab.c'", "'abc'");
    await rejectsNaming(
      createEma({ 'blocks.1.10.w': new Float32Array(1), 'blocks.11.0.w': new Float32Array(1) }),
      Error, "'blocks.1.10.w'", "'blocks.11.0.w'",
    );
  });
  test('names that strip to decay or num_updates, or to nothing, are refused', async () => {
    await rejectsNaming(createEma({ 'de.cay': new Float32Array(1) }), Error, "'de.cay'", "'decay'");
    await rejectsNaming(createEma({ num_updates: new Float32Array(1) }), Error, "'num_updates'");
    await rejectsNaming(createEma({ '..': new Float32Array(1) }), Error, "'..'");
  });
  test('a collision with an untrainable parameter is fine: it is not tracked', async () => {
    const ema = await createEma([
      { name: 'a.bc', data: new Float32Array(1) },
      { name: 'ab.c', data: new Float32Array(1), trainable: false },
      { name: 'decay', data: new Float32Array(1), trainable: false },
    ]);
    assert.deepEqual(ema.names, ['a.bc']);
  });
});

for (const simd of BUILDS) {
  describe(`failed calls change nothing, ${buildName(simd)} build`, () => {
    /** An EMA with history: a few updates and a store. */
    async function used() {
      const params = {
        'layer.w': randomArray(70000, 1),
        'layer.b': randomArray(3, 2),
      };
      const ema = await createEma(params, { decay: 0.9, simd });
      for (let step = 0; step < 3; step++) {
        params['layer.w'].set(randomArray(70000, 10 + step));
        ema.update(params);
      }
      ema.store(params);
      const storedShape = [{ name: 'layer.w', length: 70000 }, { name: 'layer.b', length: 3 }];
      return { ema, params, storedShape, before: snapshot(ema, storedShape) };
    }

    const badCalls = {
      'wrong type': (p) => [{ ...p, 'layer.b': new Float64Array(3) }, TypeError, "'layer.b'", 'Float32Array'],
      'wrong length': (p) => [{ ...p, 'layer.b': new Float32Array(4) }, Error, "'layer.b'", '4', '3'],
      'missing name': (p) => [{ 'layer.w': p['layer.w'] }, Error, 'missing', "'layer.b'"],
      'unknown name': (p) => [{ ...p, 'layer.x': new Float32Array(1) }, Error, 'unknown', "'layer.x'"],
      'duplicate name': (p) => [
        [{ name: 'layer.w', data: p['layer.w'] }, { name: 'layer.b', data: p['layer.b'] }, { name: 'layer.b', data: p['layer.b'] }],
        Error, 'duplicate', "'layer.b'",
      ],
      'tracked passed as untrainable': (p) => [
        [{ name: 'layer.w', data: p['layer.w'] }, { name: 'layer.b', data: p['layer.b'], trainable: false }],
        Error, "'layer.b'", 'trainable: false',
      ],
      'not a collection': () => [new Float32Array(3), TypeError, 'params must be'],
    };

    for (const method of ['update', 'copyTo']) {
      for (const [label, make] of Object.entries(badCalls)) {
        test(`${method} with ${label}`, async () => {
          const { ema, params, storedShape, before } = await used();
          const [bad, ErrorClass, ...parts] = make(params);
          const arraysBefore = Object.values(params).map((a) => Array.from(a));
          throwsNaming(() => ema[method](bad), ErrorClass, method, ...parts);
          assert.deepEqual(snapshot(ema, storedShape), before);
          assert.deepEqual(Object.values(params).map((a) => Array.from(a)), arraysBefore, 'arrays untouched');
        });
      }
    }

    test('restore with nothing stored', async () => {
      const w = Float32Array.of(1, 2);
      const ema = await createEma({ w }, { simd });
      throwsNaming(() => ema.restore({ w }), Error, 'restore', 'nothing is stored');
      assert.deepEqual(Array.from(w), [1, 2]);
    });

    test('restore with other names or lengths than were stored', async () => {
      const { ema, params, storedShape, before } = await used();
      const arraysBefore = Object.values(params).map((a) => Array.from(a));
      throwsNaming(() => ema.restore({ 'layer.w': params['layer.w'] }), Error, 'restore', "'layer.b'", 'missing');
      throwsNaming(() => ema.restore({ ...params, extra: new Float32Array(1) }), Error, 'restore', "'extra'", 'not stored');
      throwsNaming(() => ema.restore({ ...params, 'layer.b': new Float32Array(2) }), Error, 'restore', "'layer.b'", '2', '3');
      assert.deepEqual(Object.values(params).map((a) => Array.from(a)), arraysBefore);
      assert.deepEqual(snapshot(ema, storedShape), before);
    });

    test('a failed store keeps the previous snapshot', async () => {
      const { ema, params, storedShape, before } = await used();
      throwsNaming(() => ema.store({ ...params, 'layer.b': [1, 2, 3] }), TypeError, 'store', "'layer.b'");
      throwsNaming(() => ema.store([{ name: 'x', data: new Float32Array(1) }, { name: 'x', data: new Float32Array(1) }]), Error, 'duplicate');
      assert.deepEqual(snapshot(ema, storedShape), before);
    });

    test('withEma with a bad fn or bad params changes nothing', async () => {
      const { ema, params, storedShape, before } = await used();
      const arraysBefore = Object.values(params).map((a) => Array.from(a));
      await rejectsNaming(ema.withEma(params, 'not a function'), TypeError, 'withEma', 'fn');
      await rejectsNaming(ema.withEma({ 'layer.w': params['layer.w'] }, () => {}), Error, 'withEma', "'layer.b'");
      assert.deepEqual(snapshot(ema, storedShape), before);
      assert.deepEqual(Object.values(params).map((a) => Array.from(a)), arraysBefore);
    });

    test('shadow of an unknown name', async () => {
      const { ema } = await used();
      throwsNaming(() => ema.shadow('layer.x'), Error, 'shadow', "'layer.x'", "'layer.w'");
      throwsNaming(() => ema.shadow(3), TypeError, 'shadow', 'string');
    });
  });
}
