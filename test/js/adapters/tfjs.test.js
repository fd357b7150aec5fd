// The TF.js adapter on the cpu and wasm backends in Node: shadows after real
// training steps equal a float32 JS reference bit for bit, the weights swap
// in and out exactly, model.fit drives it through callback(), and no call
// leaks a tensor.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import { createTfjsEma } from '../../../js/adapters/tfjs.js';
import { BUILDS, buildName, referenceStep, warmupDecay } from '../helpers.js';

function makeModel(seed) {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 16, inputShape: [8], activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
  return model;
}

function makeBatch(seed) {
  return tf.tidy(() => {
    const x = tf.randomUniform([32, 8], -1, 1, 'float32', seed);
    const labels = tf.randomUniform([32], 0, 3, 'int32', seed + 7);
    return { x, y: tf.oneHot(labels, 3).toFloat() };
  });
}

function readWeights(model) {
  return model.trainableWeights.map((w) => w.read().dataSync().slice());
}

for (const backend of ['cpu', 'wasm']) {
  describe(`TF.js adapter, ${backend} backend`, () => {
    before(async () => {
      await tf.setBackend(backend);
      await tf.ready();
      assert.equal(tf.getBackend(), backend);
    });

    for (const simd of BUILDS) {
      test(`shadows after real training steps equal the float32 reference (${buildName(simd)} build)`, async () => {
        const model = makeModel(1);
        const ema = await createTfjsEma(model, { decay: 0.99, simd, tf });
        assert.deepEqual(ema.names, model.trainableWeights.map((w) => w.name));
        const reference = readWeights(model);
        for (let step = 1; step <= 6; step++) {
          const { x, y } = makeBatch(step);
          await model.trainOnBatch(x, y);
          tf.dispose([x, y]);
          const tensorsBefore = tf.memory().numTensors;
          const { decay } = ema.update();
          assert.equal(tf.memory().numTensors, tensorsBefore, 'update leaks no tensor');
          assert.equal(decay, warmupDecay(0.99, step));
          readWeights(model).forEach((weights, i) => referenceStep(reference[i], weights, decay));
        }
        model.trainableWeights.forEach((w, i) => {
          assert.deepEqual(ema.shadow(w.name), reference[i], w.name);
        });
        assert.equal(ema.numUpdates, 6);
        ema.dispose();
        model.dispose();
      });
    }

    test('copyTo, store/restore and withEma swap weights exactly and leak no tensor', async () => {
      const model = makeModel(2);
      const ema = await createTfjsEma(model, { decay: 0.9, tf });
      for (let step = 1; step <= 3; step++) {
        const { x, y } = makeBatch(10 + step);
        await model.trainOnBatch(x, y);
        tf.dispose([x, y]);
        ema.update();
      }
      const training = readWeights(model);
      const shadows = model.trainableWeights.map((w) => ema.shadow(w.name));
      const tensorsBefore = tf.memory().numTensors;

      const inside = await ema.withEma(async () => readWeights(model));
      assert.deepEqual(inside, shadows, 'EMA weights inside withEma');
      assert.deepEqual(readWeights(model), training, 'training weights after withEma');
      await assert.rejects(ema.withEma(() => { throw new Error('eval failed'); }), /eval failed/);
      assert.deepEqual(readWeights(model), training, 'training weights after a throwing fn');

      ema.store();
      ema.copyTo();
      assert.deepEqual(readWeights(model), shadows);
      ema.restore();
      assert.deepEqual(readWeights(model), training);
      assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor leaked');

      // The model still trains after the swaps (the variables are intact).
      const { x, y } = makeBatch(99);
      await model.trainOnBatch(x, y);
      tf.dispose([x, y]);
      ema.dispose();
      model.dispose();
    });

    test('callback() updates after every batch of model.fit', async () => {
      const model = makeModel(3);
      const ema = await createTfjsEma(model, { decay: 0.999, tf });
      const { x, y } = makeBatch(5);
      await model.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0, callbacks: [ema.callback()] });
      tf.dispose([x, y]);
      assert.equal(ema.numUpdates, 8, '32 samples / 8 per batch x 2 epochs');
      ema.dispose();
      model.dispose();
    });

    test('save and loadState through the adapter: a file loads into another EMA of the variables, and copyTo writes it in', async () => {
      const a = tf.variable(tf.tensor([1, 2, 3, 4], [2, 2]), true, `${backend}/checkpoint/a`);
      const b = tf.variable(tf.tensor([5, 6], [2]), true, `${backend}/checkpoint/b`);
      const saved = await createTfjsEma([a, b], { decay: 0.5, tf });
      for (const scale of [3, -2]) {
        for (const v of [a, b]) v.assign(tf.mul(v, scale));
        saved.update();
      }
      const bytes = saved.save({ prefix: 'model_ema.', metadata: { step: '2' } });
      assert.ok(bytes instanceof Uint8Array);

      const loaded = await createTfjsEma([a, b], { decay: 0.9, tf });
      const training = [a, b].map((v) => Array.from(v.dataSync()));
      const tensorsBefore = tf.memory().numTensors;
      await loaded.loadState(bytes, { prefix: 'model_ema.' });
      assert.equal(loaded.numUpdates, 2);
      assert.equal(loaded.decay, saved.decay);
      assert.deepEqual(loaded.stateDict(), saved.stateDict());
      assert.deepEqual([a, b].map((v) => Array.from(v.dataSync())), training, 'loadState leaves the variables alone');
      loaded.copyTo();
      assert.deepEqual([a, b].map((v) => Array.from(v.dataSync())), [a, b].map((v) => Array.from(saved.shadow(v.name))));
      assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor leaked');

      // A file of other variables is refused, and changes nothing.
      const c = tf.variable(tf.tensor([7], [1]), true, `${backend}/checkpoint/c`);
      const stranger = await createTfjsEma([c], { tf });
      await assert.rejects(loaded.loadState(stranger.save()), { message: /^ema-wasm: loadState: / });
      assert.deepEqual(loaded.stateDict(), saved.stateDict());

      for (const ema of [saved, loaded, stranger]) ema.dispose();
      assert.throws(() => loaded.save(), { message: 'ema-wasm: save: this EMA was disposed; create a new one with createTfjsEma()' });
      await assert.rejects(loaded.loadState(bytes), /loadState: this EMA was disposed/);
      tf.dispose([a, b, c]);
    });

    test('tf.Variable lists are tracked too, with the default tf import', async () => {
      const a = tf.variable(tf.tensor([1, 2, 3, 4], [2, 2]), true, 'plain/a');
      const ema = await createTfjsEma([a], { decay: 0, useNumUpdates: false });
      a.assign(tf.tensor([5, 6, 7, 8], [2, 2]));
      ema.update();
      a.assign(tf.zeros([2, 2]));
      ema.copyTo();
      assert.deepEqual(Array.from(a.dataSync()), [5, 6, 7, 8]);
      ema.dispose();
      a.dispose();
    });
  });
}

describe('TF.js adapter: recipes and non-trainable weights', () => {
  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  function batchNormModel() {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 4, inputShape: [3], kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
        tf.layers.batchNormalization({ momentum: 0.5 }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
    return model;
  }

  test("buffers: true tracks nonTrainableWeights as buffers: timm averages them bit for bit, LitEma leaves them", async () => {
    const model = batchNormModel();
    const buffers = model.nonTrainableWeights.map((w) => w.name);
    assert.equal(buffers.length, 2, 'BatchNormalization has a moving mean and variance');
    const timm = await createTfjsEma(model, { recipe: 'timm', decay: 0.5, buffers: true, tf });
    const litema = await createTfjsEma(model, { buffers: true, tf });
    assert.deepEqual(timm.names, [...model.trainableWeights, ...model.nonTrainableWeights].map((w) => w.name));
    assert.deepEqual(litema.names, model.trainableWeights.map((w) => w.name));
    const before = model.nonTrainableWeights.map((w) => w.read().dataSync().slice());
    const x = tf.randomUniform([16, 3], -1, 1, 'float32', 3);
    const y = tf.randomUniform([16, 4], -1, 1, 'float32', 4);
    await model.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0 });
    const after = model.nonTrainableWeights.map((w) => w.read().dataSync().slice());
    assert.notDeepEqual(after, before, 'training moved the statistics');
    timm.update();
    litema.update();
    // timm: lerp_(p, 0.5) on each buffer; weight 0.5 < ... takes the fma(w - 1, p - s, p) branch.
    model.nonTrainableWeights.forEach((w, i) => {
      const expected = before[i].map((s, k) => Math.fround(after[i][k] - Math.fround(after[i][k] - s) * 0.5));
      assert.deepEqual(timm.shadow(w.name), expected, w.name);
    });
    // copyTo writes the buffers timm keeps; LitEma's copyTo leaves them alone.
    litema.copyTo();
    model.nonTrainableWeights.forEach((w, i) => assert.deepEqual(w.read().dataSync(), after[i]));
    timm.copyTo();
    model.nonTrainableWeights.forEach((w) => assert.deepEqual(w.read().dataSync(), timm.shadow(w.name)));
    await assert.rejects(createTfjsEma(model, { buffers: 'yes', tf }), { name: 'TypeError', message: /options\.buffers must be a boolean/ });
    await assert.rejects(createTfjsEma(model.trainableWeights, { buffers: true, tf }), /options\.buffers takes a tf\.LayersModel's nonTrainableWeights/);
    timm.dispose();
    litema.dispose();
    tf.dispose([x, y]);
  });
});

describe('TF.js adapter: restoring and scopes', () => {
  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  async function trained(seed) {
    const a = tf.variable(tf.tensor([1, 2, 3, 4], [2, 2]), true, `restore${seed}/a`);
    const b = tf.variable(tf.tensor([5, 6], [2]), true, `restore${seed}/b`);
    const c = tf.variable(tf.tensor([7], [1]), true, `restore${seed}/c`);
    const ema = await createTfjsEma([a, b, c], { decay: 0.5, useNumUpdates: false, tf });
    for (const v of [a, b, c]) v.assign(tf.mul(v, 3));
    ema.update();
    return { ema, variables: [a, b, c], training: [a, b, c].map((v) => Array.from(v.dataSync())) };
  }

  test('a variable disposed inside withEma: every other one gets its training weights back, one Error names it', async () => {
    const { ema, variables: [a, b, c], training } = await trained(1);
    await assert.rejects(
      ema.withEma(() => {
        assert.deepEqual(Array.from(a.dataSync()), Array.from(ema.shadow(a.name)));
        b.dispose();
      }),
      (error) =>
        error.message.startsWith('ema-wasm: withEma: could not write the stored weights back into 1 of 3 variables') &&
        error.message.includes(`'${b.name}' (it was disposed)`),
    );
    assert.deepEqual(Array.from(a.dataSync()), training[0]);
    assert.deepEqual(Array.from(c.dataSync()), training[2]);
    // The stored weights are kept, and update refuses the disposed variable.
    assert.throws(() => ema.update(), { message: `ema-wasm: update: variable '${b.name}' was disposed` });
    tf.dispose([a, c]);
  });

  test('inside withEma the core EMA behind .ema refuses to store, restore, copy, update or dispose', async () => {
    const { ema, variables, training } = await trained(3);
    await ema.withEma(() => {
      const zeros = variables.map((v) => ({ name: v.name, data: new Float32Array(v.shape.reduce((a, b) => a * b, 1)) }));
      for (const method of ['store', 'restore', 'copyTo', 'update']) {
        assert.throws(() => ema.ema[method](zeros), { message: `ema-wasm: ${method}: not allowed while withEma() is running (the training weights are stored for it and would be lost); call it after withEma() returns` });
      }
      assert.throws(() => ema.ema.dispose(), /dispose: not allowed while withEma\(\) is running/);
    });
    assert.deepEqual(variables.map((v) => Array.from(v.dataSync())), training);
    tf.dispose(variables);
  });

  test('two EMAs of one model: while one evaluates, the other cannot touch the variables', async () => {
    const { ema, variables, training } = await trained(2);
    const other = await createTfjsEma(variables, { decay: 0.9, tf });
    let inside = null;
    const evaluation = ema.withEma(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      inside = variables.map((v) => Array.from(v.dataSync()));
    });
    await assert.rejects(other.withEma(() => {}), /withEma: variable 'restore2\/a' is held by an open withEma\(\) of a TF.js EMA/);
    for (const method of ['update', 'store', 'copyTo', 'restore']) {
      assert.throws(() => other[method](), new RegExp(`${method}: variable 'restore2/a' is held by an open withEma`));
    }
    await evaluation;
    assert.deepEqual(inside, variables.map((v) => Array.from(ema.shadow(v.name))));
    assert.deepEqual(variables.map((v) => Array.from(v.dataSync())), training);
    assert.equal(other.numUpdates, 0);
    tf.dispose(variables);
  });
});

describe('TF.js adapter: code that runs inside TF.js calls', () => {
  test('an assign that starts another EMA\'s withEma mid-copyTo is refused; copyTo writes everything', async () => {
    const fakeTf = { tensor: (values, shape) => ({ values: Float32Array.from(values), shape, dispose() {} }) };
    let onAssign = () => {};
    const variable = (name, values) => ({
      name, shape: [values.length], dtype: 'float32', isDisposed: false, values: Float32Array.from(values),
      dataSync() { return this.values; },
      assign(tensor) { this.values = Float32Array.from(tensor.values); onAssign(); },
    });
    const x = variable('x', [1]);
    const y = variable('y', [1]);
    const a = await createTfjsEma([x, y], { tf: fakeTf, decay: 0, useNumUpdates: false });
    const b = await createTfjsEma([x, y], { tf: fakeTf });
    x.values[0] = 100;
    y.values[0] = 100;
    a.update();
    x.values[0] = 1;
    y.values[0] = 1;
    let attempt;
    onAssign = () => {
      onAssign = () => {};
      attempt = b.withEma(() => assert.fail('fn must not run'));
    };
    a.copyTo();
    await assert.rejects(attempt, /withEma: variable 'x' is held by copyTo\(\) of a TF.js EMA of 'x', 'y', which is still writing it/);
    assert.deepEqual([x.values[0], y.values[0]], [100, 100]);
  });
});

describe('TF.js adapter errors', () => {
  after(() => tf.disposeVariables());
  test('bad models, options and calls', async () => {
    await assert.rejects(createTfjsEma(42), (e) => e instanceof TypeError && /LayersModel/.test(e.message));
    await assert.rejects(createTfjsEma([{ name: 'x' }]), (e) => e instanceof TypeError && /variable 0/.test(e.message));
    const model = makeModel(4);
    await assert.rejects(createTfjsEma(model, { tf: {} }), (e) => e instanceof TypeError && /options\.tf/.test(e.message));
    await assert.rejects(createTfjsEma(model, { decay: 2, tf }), RangeError);
    await assert.rejects(createTfjsEma(model, { colour: 'red', tf }), (e) => e instanceof TypeError && /'colour'/.test(e.message) && /tf/.test(e.message));
    const ema = await createTfjsEma(model, { tf });
    assert.throws(() => ema.restore(), /nothing is stored/);
    await assert.rejects(ema.withEma('nope'), TypeError);
    assert.equal(ema.numUpdates, 0);
    model.dispose();
  });
});
