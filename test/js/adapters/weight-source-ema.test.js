// The adapters' base (js/adapters/weight-source-ema.js) over a fake weight
// source that keeps its weights in plain Float32Arrays: once synchronous (as
// TF.js is) and once asynchronous (as onnxruntime-web is). What the base
// owns is checked here, apart from either real adapter: options, the
// receiver checks, dispose, the withEma scope and its holds, restoring after
// a throw, and save/loadState.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createWeightSourceEma, liveEmaOf, WeightSourceEma } from '../../../js/adapters/weight-source-ema.js';
import { createEma } from '../../../js/index.js';
import { objectTarget } from '../../../js/scope.js';
import { BUILDS, buildName, randomArray, referenceStep, warmupDecay } from '../helpers.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

class MemoryEma extends WeightSourceEma {
  /** An adapter's own member, checked as the base's are. */
  get label() {
    liveEmaOf(this, 'label');
    return 'memory';
  }
}

/**
 * A weight source over `model` ({ name: Float32Array }). With `async`, every
 * read and write waits a tick, and the arrays are read or written after it.
 * `failWrite` / `failWriteBack` make the next write refuse.
 */
class MemorySource {
  constructor(model, async) {
    this.model = model;
    this.async = async;
    this.names = Object.keys(model);
    this.owner = 'a memory EMA';
    this.targets = [objectTarget('the arrays', model)];
    this.slots = this.names.map((name) => ({ name, length: model[name].length }));
    this.calls = [];
    this.failWrite = null;
    this.failWriteBack = null;
    this.written = []; // every array write() and writeBack() were given
  }

  read(method) {
    this.calls.push(`read ${method}`);
    const take = () => this.names.map((name) => ({ name, data: this.model[name], shape: [this.model[name].length] }));
    return this.async ? tick().then(take) : take();
  }

  write(valueOf, method) {
    this.calls.push(`write ${method}`);
    const put = () => {
      if (this.failWrite !== null) {
        const error = this.failWrite;
        this.failWrite = null;
        throw error;
      }
      for (const name of this.names) {
        const values = valueOf(name);
        this.written.push(values);
        this.model[name].set(values);
      }
    };
    return this.async ? tick().then(put) : put();
  }

  writeBack(values, method) {
    this.calls.push(`writeBack ${method}`);
    const put = () => {
      if (this.failWriteBack !== null) {
        const error = this.failWriteBack;
        this.failWriteBack = null;
        throw new Error(`ema-wasm: ${method}: could not put the arrays back (${error.message})`);
      }
      for (const name of this.names) {
        this.written.push(values.get(name));
        this.model[name].set(values.get(name));
      }
    };
    return this.async ? tick().then(put) : put();
  }
}

/** A kind of adapter over MemorySource; `opened` records what open() got. */
function memoryKind(async) {
  const kind = {
    create: 'createMemoryEma',
    options: ['label'],
    weightsIn: 'plain arrays',
    opened: [],
    open: (model, own, method) => {
      kind.opened.push({ own, method });
      if (model === null || typeof model !== 'object') throw new TypeError(`ema-wasm: ${method}: expected arrays`);
      kind.source = new MemorySource(model, async);
      return async ? tick().then(() => kind.source) : kind.source;
    },
  };
  return kind;
}

async function create(async, model, options = {}) {
  const kind = memoryKind(async);
  const ema = await createWeightSourceEma(MemoryEma, kind, model, options);
  return { ema, kind, source: kind.source };
}

const makeModel = (seed) => ({ 'layer.w': randomArray(6, seed), 'layer.b': randomArray(2, seed + 1) });
const copyModel = (model) => Object.fromEntries(Object.entries(model).map(([name, values]) => [name, values.slice()]));
const NOT_ALLOWED = /not allowed while withEma\(\) is running/;

for (const async of [false, true]) {
  const flavour = async ? 'asynchronous source' : 'synchronous source';
  /** A call's result: awaited for an asynchronous source, which must give a promise; a value otherwise. */
  const settled = async (result) => {
    assert.equal(result instanceof Promise, async, `a ${flavour} gives ${async ? 'a promise' : 'a value'}`);
    return result;
  };

  describe(`WeightSourceEma over a ${flavour}`, () => {
    for (const simd of BUILDS) {
      test(`update, copyTo, store and restore through the source match the float32 reference, ${buildName(simd)} build`, async () => {
        const model = makeModel(1);
        const { ema, source } = await create(async, model, { decay: 0.9, simd });
        assert.equal(ema.simd, simd);
        assert.deepEqual(ema.names, ['layer.w', 'layer.b']);
        const reference = copyModel(model);
        for (let step = 1; step <= 3; step++) {
          for (const [name, values] of Object.entries(makeModel(10 * step))) model[name].set(values);
          const { decay } = await settled(ema.update());
          assert.equal(decay, warmupDecay(0.9, step));
          for (const name of source.names) referenceStep(reference[name], model[name], decay);
        }
        for (const name of source.names) assert.deepEqual(ema.shadow(name), reference[name], name);
        const training = copyModel(model);

        await settled(ema.store());
        await settled(ema.copyTo());
        assert.deepEqual(model, reference, 'copyTo wrote the shadows');
        await settled(ema.restore());
        assert.deepEqual(model, training, 'restore wrote the snapshot back');
        // What the source was given are owned copies, not views into Wasm memory.
        for (const values of source.written) {
          assert.equal(values.byteOffset, 0);
          assert.equal(values.buffer.byteLength, values.length * 4);
        }
        ema.dispose();
      });
    }

    test('options: read once, the core ones checked under the adapter\'s name, its own handed to open()', async () => {
      const reads = [];
      const options = new Proxy({ decay: 0.5, label: 'mine' }, {
        get: (target, key) => {
          reads.push(key);
          return target[key];
        },
      });
      const { ema, kind } = await create(async, makeModel(2), options);
      assert.deepEqual(reads.filter((key) => typeof key === 'string').sort(), ['decay', 'label'], 'each option read once');
      assert.deepEqual(kind.opened, [{ own: { label: 'mine' }, method: 'createMemoryEma' }]);
      assert.equal(ema.decay, Math.fround(0.5));
      ema.dispose();

      await assert.rejects(create(async, makeModel(2), { colour: 'red' }), {
        name: 'TypeError',
        message:
          "ema-wasm: createMemoryEma: unknown option 'colour'; expected recipe, decay, useNumUpdates, nonFinite, simd, wasm, threads, background, minDecay, updateAfterStep, useEmaWarmup, invGamma, power, foreach, useWarmup, warmupGamma, warmupPower, excludeBuffers, beta, updateEvery, minValue, paramOrBufferNamesNoEma, ignoreNames, ignoreStartswithNames, emaMomentum, emaOverwriteFrequency, sigmaRel, gamma, batchSize, debias, label",
      });
      await assert.rejects(create(async, makeModel(2), { resident: true }), {
        name: 'TypeError',
        message: "ema-wasm: createMemoryEma: option 'resident' is not available here: the weights live in plain arrays",
      });
      await assert.rejects(create(async, makeModel(2), { decay: 2 }), { name: 'RangeError', message: /^ema-wasm: createMemoryEma: options\.decay/ });
      await assert.rejects(create(async, makeModel(2), 'fast'), { name: 'TypeError', message: /^ema-wasm: createMemoryEma: options must be an object/ });
      await assert.rejects(create(async, null), { name: 'TypeError', message: 'ema-wasm: createMemoryEma: expected arrays' });
    });

    test('recipes: their options reach the core EMA, and a Keras overwrite writes the averages into the weights', async () => {
      const model = { 'layer.w': Float32Array.of(1, 2, 3), 'layer.b': Float32Array.of(4) };
      const { ema, source } = await create(async, model, { recipe: 'keras', emaMomentum: 0.5, emaOverwriteFrequency: 2, nonFinite: 'throw' });
      assert.equal(ema.ema.recipe, 'keras');
      assert.deepEqual(ema.ema.options, { emaMomentum: 0.5, emaOverwriteFrequency: 2 });
      model['layer.w'].set([3, 4, 5]);
      model['layer.b'].set([6]);
      const first = await settled(ema.update());
      assert.deepEqual(first, { action: 'averaged', decay: 0, weight: 1, counter: 1, overwrote: false, nonFinite: false });
      assert.deepEqual(model, { 'layer.w': Float32Array.of(3, 4, 5), 'layer.b': Float32Array.of(6) }, 'no overwrite before the second step');
      model['layer.w'].set([5, 6, 7]);
      model['layer.b'].set([8]);
      source.calls.length = 0;
      source.written.length = 0;
      const second = await settled(ema.update());
      assert.deepEqual(second, { action: 'averaged', decay: 0.5, weight: 0.5, counter: 2, overwrote: true, nonFinite: false });
      assert.deepEqual(source.calls, ['read update', 'write update'], 'the averages go in through the source');
      assert.deepEqual(model, { 'layer.w': Float32Array.of(4, 5, 6), 'layer.b': Float32Array.of(7) }, 'the averages overwrote the weights');
      assert.ok(source.written.every((values) => !Object.values(model).includes(values)), 'the source got copies');
      for (const name of source.names) assert.deepEqual(ema.shadow(name), model[name], name);
      if (async) {
        // A step that may overwrite holds the weights for writing while it runs.
        const { ema: reader } = await create(async, model);
        const updating = ema.update();
        assert.throws(() => reader.update(), /update: the arrays is held by update\(\) of a memory EMA, which is still writing it/);
        await updating;
        reader.dispose();
      }
      model['layer.b'][0] = NaN;
      await assert.rejects(async () => settled(ema.update()), { name: 'RangeError', message: /parameter 'layer\.b' holds NaN at index 0; the step was refused/ });
      ema.dispose();

      await assert.rejects(create(async, makeModel(2), { recipe: 'keras', decay: 0.9 }), {
        name: 'TypeError',
        message: "ema-wasm: createMemoryEma: recipe 'keras' has no option 'decay'; its options are emaMomentum, emaOverwriteFrequency",
      });
      await assert.rejects(create(async, makeModel(2), { nonFinite: 'maybe' }), { name: 'TypeError', message: /^ema-wasm: createMemoryEma: options\.nonFinite must be/ });
      const { ema: timm } = await create(async, makeModel(2), { recipe: 'timm', useWarmup: true, excludeBuffers: true });
      assert.equal(timm.ema.recipe, 'timm');
      assert.equal((await settled(timm.update())).counter, 1);
      timm.dispose();
    });

    test('receiver checks: every member called on something else is a TypeError naming it', async () => {
      const { ema } = await create(async, makeModel(3));
      const core = ema.ema;
      const members = ['update', 'copyTo', 'store', 'restore', 'shadow', 'stateDict', 'resetNumUpdates', 'save', 'dispose'];
      for (const receiver of [undefined, {}, core]) {
        for (const name of members) {
          assert.throws(() => WeightSourceEma.prototype[name].call(receiver), {
            name: 'TypeError',
            message: new RegExp(`^ema-wasm: ${name}: called on .*, not on an EMA; call it as ema\\.${name}, or bind it`),
          });
        }
        for (const name of ['ema', 'numUpdates', 'decay', 'names', 'simd']) {
          const getter = Object.getOwnPropertyDescriptor(WeightSourceEma.prototype, name).get;
          assert.throws(() => getter.call(receiver), { name: 'TypeError', message: new RegExp(`^ema-wasm: ${name}: called on`) });
        }
        assert.throws(() => Object.getOwnPropertyDescriptor(MemoryEma.prototype, 'label').get.call(receiver), {
          name: 'TypeError',
          message: /^ema-wasm: label: called on/,
        });
        await assert.rejects(WeightSourceEma.prototype.withEma.call(receiver, () => {}), { name: 'TypeError', message: /^ema-wasm: withEma: called on/ });
        await assert.rejects(WeightSourceEma.prototype.loadState.call(receiver, new Uint8Array(8)), { name: 'TypeError', message: /^ema-wasm: loadState: called on/ });
      }
      const { update } = ema;
      assert.throws(() => update(), { message: /^ema-wasm: update: called on undefined, not on an EMA; call it as ema\.update, or bind it \(ema\.update\.bind\(ema\)\)/ });
      assert.equal(ema.label, 'memory');
      await assert.rejects(ema.withEma('nope'), { name: 'TypeError', message: 'ema-wasm: withEma: fn must be a function, got the string "nope"' });
      ema.dispose();
    });

    test('dispose frees the core EMA; every later call names the create function; a second dispose does nothing', async () => {
      const model = makeModel(4);
      const { ema } = await create(async, model);
      const core = ema.ema;
      ema.dispose();
      ema.dispose();
      assert.throws(() => core.numUpdates, /disposed/, 'the core EMA is disposed too');
      const disposed = (name) => ({ name: 'Error', message: `ema-wasm: ${name}: this EMA was disposed; create a new one with createMemoryEma()` });
      for (const name of ['ema', 'numUpdates', 'decay', 'names', 'simd', 'label']) assert.throws(() => ema[name], disposed(name));
      for (const name of ['shadow', 'stateDict', 'resetNumUpdates', 'save']) assert.throws(() => ema[name]('layer.w'), disposed(name));
      for (const name of ['update', 'copyTo', 'store', 'restore']) assert.throws(() => ema[name](), disposed(name));
      await assert.rejects(ema.withEma(() => {}), disposed('withEma'));
      await assert.rejects(ema.loadState(new Uint8Array(8)), disposed('loadState'));
    });

    test('restore before store is an Error naming store(), with nothing written', async () => {
      const model = makeModel(5);
      const { ema, source } = await create(async, model);
      assert.throws(() => ema.restore(), { name: 'Error', message: 'ema-wasm: restore: nothing is stored; call store() first' });
      assert.deepEqual(source.calls, ['read createMemoryEma']);
      ema.dispose();
    });

    test('inside withEma: the EMA, its core EMA and every other EMA of the same weights are refused; afterwards they work', async () => {
      const model = makeModel(6);
      const { ema } = await create(async, model, { decay: 0.5 });
      const { ema: other } = await create(async, model, { decay: 0.9 });
      model['layer.w'].fill(3);
      await settled(ema.update());
      const training = copyModel(model);
      const inside = await ema.withEma(async () => {
        for (const name of ['update', 'copyTo', 'store', 'restore']) {
          assert.throws(() => ema[name](), { name: 'Error', message: `ema-wasm: ${name}: not allowed while withEma() is running (the training weights are stored for it and would be lost); call it after withEma() returns` });
          assert.throws(() => other[name](), {
            name: 'Error',
            message: `ema-wasm: ${name}: the arrays is held by an open withEma() of a memory EMA, which has put EMA weights there until it puts the training weights back; await that call before calling ${name}()`,
          });
        }
        assert.throws(() => ema.dispose(), NOT_ALLOWED);
        assert.throws(() => ema.ema.store([{ name: 'layer.w', data: new Float32Array(6) }]), NOT_ALLOWED);
        await assert.rejects(ema.withEma(() => {}), NOT_ALLOWED);
        await assert.rejects(other.withEma(() => {}), /withEma: the arrays is held by an open withEma\(\) of a memory EMA/);
        await assert.rejects(create(async, model), /createMemoryEma: the arrays is held by an open withEma\(\) of a memory EMA/);
        // What needs no weights still works.
        assert.equal(ema.numUpdates, 1);
        return copyModel(model);
      });
      assert.deepEqual(inside, { 'layer.w': ema.shadow('layer.w'), 'layer.b': ema.shadow('layer.b') });
      assert.deepEqual(model, training, 'training weights back');
      await settled(other.update());
      await settled(ema.store());
      ema.dispose();
      other.dispose();
    });

    test('withEma restores after fn throws, after the swap throws, and names a failed restore with fn\'s error as cause', async () => {
      const model = makeModel(7);
      const { ema, source } = await create(async, model);
      model['layer.b'].fill(-1);
      await settled(ema.update());
      const training = copyModel(model);

      const thrown = new Error('evaluation failed');
      await assert.rejects(ema.withEma(() => { throw thrown; }), (error) => error === thrown);
      assert.deepEqual(model, training, 'restored after fn threw');

      const refusal = new Error('ema-wasm: withEma: the arrays refused the EMA weights');
      source.failWrite = refusal;
      let ran = false;
      await assert.rejects(ema.withEma(() => { ran = true; }), (error) => error === refusal);
      assert.equal(ran, false, 'fn does not run when the swap fails');
      assert.deepEqual(model, training, 'restored after the swap threw');

      await assert.rejects(
        ema.withEma(() => {
          source.failWriteBack = new Error('busy');
          throw thrown;
        }),
        (error) => error.message === 'ema-wasm: withEma: could not put the arrays back (busy)' && error.cause === thrown,
      );
      assert.deepEqual(model, { 'layer.w': ema.shadow('layer.w'), 'layer.b': ema.shadow('layer.b') }, 'the EMA weights stayed in');
      // The scope is closed and the training weights are still stored.
      await settled(ema.restore());
      assert.deepEqual(model, training, 'a later restore() puts them back');
      ema.dispose();
    });

    test('save and loadState are forwarded: a file loads into another EMA of the same weights, and copyTo writes it in', async () => {
      const model = makeModel(8);
      const { ema: saved } = await create(async, model, { decay: 0.5 });
      model['layer.w'].fill(2);
      await settled(saved.update());
      await settled(saved.update());
      const bytes = saved.save({ prefix: 'model_ema.' });
      assert.ok(bytes instanceof Uint8Array);

      const target = makeModel(9);
      const { ema: loaded } = await create(async, target, { decay: 0.9 });
      const before = copyModel(target);
      await loaded.loadState(bytes, { prefix: 'model_ema.' });
      assert.equal(loaded.numUpdates, 2);
      assert.equal(loaded.decay, saved.decay);
      assert.deepEqual(loaded.stateDict(), saved.stateDict());
      assert.deepEqual(target, before, 'loadState does not touch the weights');
      await settled(loaded.copyTo());
      assert.deepEqual(target, { 'layer.w': saved.shadow('layer.w'), 'layer.b': saved.shadow('layer.b') });

      // A file of other weights is refused under the adapter's EMA, changing nothing.
      const stranger = await createEma([{ name: 'other', data: new Float32Array(3) }]);
      await assert.rejects(loaded.loadState(stranger.save()), { message: /^ema-wasm: loadState: / });
      assert.deepEqual(loaded.stateDict(), saved.stateDict());
      stranger.dispose();
      saved.dispose();
      loaded.dispose();
    });
  });
}

describe('WeightSourceEma: holds of an asynchronous source last until it settles', () => {
  test('an update still reading keeps withEma of another EMA out; a dispose meanwhile fails the update', async () => {
    const model = makeModel(10);
    const { ema } = await create(true, model);
    const { ema: other } = await create(true, model);
    const reading = ema.update();
    await assert.rejects(other.withEma(() => {}), /withEma: the arrays is held by update\(\) of a memory EMA, which is still reading it/);
    // Two reads may run together.
    await Promise.all([reading, other.update()]);
    const copying = other.copyTo();
    assert.throws(() => ema.update(), /update: the arrays is held by copyTo\(\) of a memory EMA, which is still writing it/);
    await copying;

    const updating = ema.update();
    ema.dispose();
    await assert.rejects(updating, { message: 'ema-wasm: update: this EMA was disposed; create a new one with createMemoryEma()' });
    other.dispose();
  });

  test('a synchronous source holds nothing once a call returns', async () => {
    const model = makeModel(11);
    const { ema } = await create(false, model);
    const { ema: other } = await create(false, model);
    const result = ema.update();
    assert.ok(!(result instanceof Promise), 'a synchronous source updates synchronously');
    assert.equal(typeof result.decay, 'number');
    ema.copyTo();
    assert.equal(await other.withEma(() => 'evaluated'), 'evaluated');
    ema.dispose();
    other.dispose();
  });
});
