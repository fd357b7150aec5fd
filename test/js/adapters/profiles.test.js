// Several power profiles through the adapters (js/adapters/weight-source-ema.js):
// the TF.js adapter (cpu backend) and the onnxruntime-web adapter (a fake
// TrainingSession, as in ort.test.js) against one-profile core EMAs of the
// same weights, bit for bit: update() with each profile's decay and weight,
// shadow/copyTo/withEma with { profile } (the right profile swapped in, the
// training weights restored, no tensor leaked), snapshot(), and the refusals
// of a profile past the end, which leave the weights alone.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { createOrtEma } from '../../../js/adapters/ort.js';
import { createTfjsEma } from '../../../js/adapters/tfjs.js';
import { createEma, readSnapshot } from '../../../js/index.js';
import { BUILDS, buildName, randomArray } from '../helpers.js';
import { assertSameBits } from '../recipe-fixture.js';

const WIDTHS = [0.05, 0.2];
const SAMPLES = [undefined, 5, 1, undefined, 40, 2];
const updateOptions = (step) => (SAMPLES[step % SAMPLES.length] === undefined ? undefined : { samples: SAMPLES[step % SAMPLES.length] });
const tooFar = (method) => `ema-wasm: ${method}: options.profile must be a profile's index (this EMA keeps 2 profiles, 0 to 1), got 2`;

/** A tensor's values out of a snapshot file, by readSnapshot's { offset, byteLength }. */
function tensorData(bytes, { offset, byteLength }) {
  return new Float32Array(bytes.slice(offset, offset + byteLength).buffer);
}

/** Checks a two-profile update result against two one-profile results. */
function assertSameStep(result, singles, where) {
  assert.equal(result.profiles.length, 2, `${where}: two profiles listed`);
  singles.forEach((single, k) => {
    assert.equal(result.counter, single.counter, `${where}: counter`);
    assert.ok(Object.is(result.profiles[k].decay, single.decay), `${where}: profile ${k}'s decay`);
    assert.ok(Object.is(result.profiles[k].weight, single.weight), `${where}: profile ${k}'s weight`);
  });
}

for (const simd of BUILDS) {
  describe(`TF.js adapter with two profiles, ${buildName(simd)} build`, () => {
    before(async () => {
      await tf.setBackend('cpu');
      await tf.ready();
    });

    const SHAPES = { 'dense/kernel': [3, 4], 'dense/bias': [1025], 'out/kernel': [5] };

    function assign(variable, values) {
      const tensor = tf.tensor(values.slice(), variable.shape, 'float32');
      variable.assign(tensor);
      tensor.dispose();
    }

    async function setUp(seed) {
      const variables = Object.entries(SHAPES).map(([name, shape], i) => {
        const variable = tf.variable(tf.zeros(shape), true, `${name}_${simd}_${seed}`);
        assign(variable, randomArray(variable.size, seed + i));
        return variable;
      });
      const params = () => variables.map((variable) => ({ name: variable.name, data: variable.dataSync().slice() }));
      const ema = await createTfjsEma(variables, { recipe: 'power', sigmaRel: WIDTHS, batchSize: 3, simd, tf });
      const singles = await Promise.all(WIDTHS.map((sigmaRel) => createEma(params(), { recipe: 'power', sigmaRel, batchSize: 3, simd })));
      for (let step = 1; step <= 6; step++) {
        variables.forEach((variable, i) => assign(variable, randomArray(variable.size, 97 * step + i + seed)));
        const result = ema.update(updateOptions(step));
        assertSameStep(result, singles.map((single) => single.update(params(), updateOptions(step))), `step ${step}`);
      }
      return { variables, ema, singles, values: () => variables.map((variable) => variable.dataSync().slice()) };
    }

    test('update, shadow, profiles and steps equal two one-profile EMAs bit for bit', async () => {
      const { variables, ema, singles } = await setUp(1);
      assert.deepEqual(ema.profiles, singles.map((single) => single.profiles[0]));
      assert.equal(ema.steps, 6);
      for (const variable of variables) {
        for (const k of [0, 1]) assertSameBits(ema.shadow(variable.name, { profile: k }), singles[k].shadow(variable.name), `'${variable.name}' of profile ${k}`);
        assertSameBits(ema.shadow(variable.name), singles[0].shadow(variable.name), `'${variable.name}': profile 0 by default`);
      }
      assert.deepEqual(ema.stateDict({ profile: 1 }).get('sigma_rel'), Float64Array.of(0.2));
      assert.deepEqual(ema.stateDict().get('sigma_rel'), Float64Array.of(...WIDTHS));
      ema.dispose();
      tf.dispose(variables);
    });

    test('copyTo({ profile }) and withEma(fn, { profile }) swap in that profile, restore the training weights and leak no tensor', async () => {
      const { variables, ema, singles, values } = await setUp(2);
      const training = values();
      const tensors = tf.memory().numTensors;
      for (const k of [1, 0]) {
        const seen = await ema.withEma(() => values(), { profile: k });
        seen.forEach((array, v) => assertSameBits(array, singles[k].shadow(variables[v].name), `withEma({ profile: ${k} }): '${variables[v].name}'`));
        values().forEach((array, v) => assertSameBits(array, training[v], `after withEma({ profile: ${k} }): '${variables[v].name}' restored`));
        await assert.rejects(ema.withEma(() => { throw new Error('eval failed'); }, { profile: k }), /eval failed/);
        values().forEach((array, v) => assertSameBits(array, training[v], `after a throw in withEma({ profile: ${k} })`));
      }
      const byDefault = await ema.withEma(() => values());
      byDefault.forEach((array, v) => assertSameBits(array, singles[0].shadow(variables[v].name), 'withEma(fn): profile 0'));
      assert.equal(tf.memory().numTensors, tensors, 'withEma leaks no tensor');

      assert.throws(() => ema.copyTo({ profile: 2 }), { name: 'RangeError', message: tooFar('copyTo') });
      await assert.rejects(ema.withEma(() => assert.fail('fn must not run'), { profile: 2 }), { name: 'RangeError', message: tooFar('withEma') });
      assert.throws(() => ema.shadow(variables[0].name, { profile: 2 }), { name: 'RangeError', message: tooFar('shadow') });
      values().forEach((array, v) => assertSameBits(array, training[v], 'refusals leave the weights alone'));

      ema.copyTo({ profile: 1 });
      values().forEach((array, v) => assertSameBits(array, singles[1].shadow(variables[v].name), `copyTo({ profile: 1 }): '${variables[v].name}'`));
      ema.copyTo();
      values().forEach((array, v) => assertSameBits(array, singles[0].shadow(variables[v].name), `copyTo(): '${variables[v].name}'`));
      assert.equal(tf.memory().numTensors, tensors, 'copyTo leaks no tensor');
      ema.dispose();
      tf.dispose(variables);
    });

    test('snapshot(): one file per profile holding that profile\'s weights', async () => {
      const { variables, ema, singles } = await setUp(3);
      const snapshots = ema.snapshot();
      assert.deepEqual(snapshots.map(({ name, profile, step, sigmaRel }) => [name, profile, step, sigmaRel]), [
        ['ema-snapshot-0000000006-profile-0.safetensors', 0, 6, 0.05],
        ['ema-snapshot-0000000006-profile-1.safetensors', 1, 6, 0.2],
      ]);
      for (const [k, snapshot] of snapshots.entries()) {
        const read = await readSnapshot(snapshot, { simd });
        assert.deepEqual(read.tensors.map(({ name, shape }) => [name, shape]), variables.map((variable) => [variable.name, variable.shape]));
        for (const tensor of read.tensors) assertSameBits(tensorData(read.bytes, tensor), singles[k].shadow(tensor.name), `profile ${k}: '${tensor.name}'`);
      }
      ema.dispose();
      tf.dispose(variables);
    });
  });

  describe(`onnxruntime-web adapter with two profiles, ${buildName(simd)} build`, () => {
    /** A TrainingSession as ort.test.js fakes it: its trainable parameters as one float32 buffer. */
    function fakeSession(size, seed) {
      const session = {
        weights: randomArray(size, seed),
        async getParametersSize() {
          return size;
        },
        async getContiguousParameters() {
          return { type: 'float32', dims: [size], data: session.weights.slice() };
        },
        async loadParametersBuffer(bytes) {
          assert.equal(bytes.length, size * 4);
          session.weights = new Float32Array(bytes.slice().buffer);
        },
      };
      return session;
    }

    test('update, shadow({ profile }), copyTo({ profile }) and withEma(fn, { profile }) equal two one-profile EMAs', async () => {
      const size = 2051;
      const session = fakeSession(size, 5);
      const ema = await createOrtEma(session, { recipe: 'power', gamma: [1, 8], batchSize: 3, simd });
      const singles = await Promise.all([1, 8].map((gamma) => createEma([{ name: 'parameters', data: session.weights }], { recipe: 'power', gamma, batchSize: 3, simd })));
      for (let step = 1; step <= 6; step++) {
        session.weights = randomArray(size, 31 * step);
        const result = await ema.update(updateOptions(step));
        assertSameStep(result, singles.map((single) => single.update([{ name: 'parameters', data: session.weights }], updateOptions(step))), `step ${step}`);
      }
      assert.deepEqual(ema.profiles, [{ sigmaRel: null, gamma: 1 }, { sigmaRel: null, gamma: 8 }]);
      assert.equal(ema.steps, 6);
      for (const k of [0, 1]) assertSameBits(ema.shadow({ profile: k }), singles[k].shadow('parameters'), `shadow({ profile: ${k} })`);
      assertSameBits(ema.shadow(), singles[0].shadow('parameters'), 'shadow(): profile 0');
      assert.throws(() => ema.shadow({ profile: 2 }), { name: 'RangeError', message: tooFar('shadow') });
      assert.throws(() => ema.shadow({ profile: '1' }), {
        name: 'TypeError', message: 'ema-wasm: shadow: options.profile must be an integer (this EMA keeps 2 profiles, 0 to 1), got the string "1"',
      });

      const training = session.weights.slice();
      await assert.rejects(ema.copyTo({ profile: 2 }), { name: 'RangeError', message: tooFar('copyTo') });
      await assert.rejects(ema.withEma(() => assert.fail('fn must not run'), { profile: 2 }), { name: 'RangeError', message: tooFar('withEma') });
      assertSameBits(session.weights, training, 'refusals leave the session alone');

      for (const k of [1, 0]) {
        const seen = await ema.withEma(() => session.weights.slice(), { profile: k });
        assertSameBits(seen, singles[k].shadow('parameters'), `withEma({ profile: ${k} })`);
        assertSameBits(session.weights, training, `after withEma({ profile: ${k} }): restored`);
      }
      await ema.copyTo({ profile: 1 });
      assertSameBits(session.weights, singles[1].shadow('parameters'), 'copyTo({ profile: 1 })');
      await ema.copyTo();
      assertSameBits(session.weights, singles[0].shadow('parameters'), 'copyTo(): profile 0');

      const snapshots = ema.snapshot();
      assert.deepEqual(snapshots.map(({ name, gamma }) => [name, gamma]), [
        ['ema-snapshot-0000000006-profile-0.safetensors', 1], ['ema-snapshot-0000000006-profile-1.safetensors', 8],
      ]);
      for (const [k, snapshot] of snapshots.entries()) {
        const read = await readSnapshot(snapshot, { simd });
        assert.deepEqual(read.tensors.map(({ name, shape }) => [name, shape]), [['parameters', [size]]]);
        assertSameBits(tensorData(read.bytes, read.tensors[0]), singles[k].shadow('parameters'), `snapshot of profile ${k}`);
      }
      ema.dispose();
    });
  });
}
