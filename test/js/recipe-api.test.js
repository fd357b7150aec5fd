// The recipes through the JS API: options and their errors, what update()
// reports, frozen parameters and buffers (integer ones too), timm's step,
// Keras's overwrite, the debiased read, the non-finite guard, and state:
// stateDict/loadStateDict and save/loadEma round trips that continue bit for
// bit. The bit-for-bit PyTorch replays are in recipes.test.js.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma, loadEma, readMetadata } from '../../js/index.js';
import { BUILDS, buildName, randomArray } from './helpers.js';

const RECIPES = ['litema', 'torch_ema', 'diffusers', 'timm', 'ema-pytorch', 'keras', 'debiased', 'power'];

/** A small model: a trainable weight, a frozen one, a float buffer and an int64 counter buffer. */
function model(seed = 1) {
  return [
    { name: 'conv.weight', data: randomArray(37, seed), shape: [37] },
    { name: 'head.bias', data: randomArray(5, seed + 1), trainable: false },
    { name: 'bn.running_mean', data: randomArray(4, seed + 2), buffer: true },
    { name: 'bn.num_batches_tracked', data: BigInt64Array.of(3n), buffer: true },
  ];
}

function step(params, seed) {
  params[0].data.set(randomArray(37, seed));
  params[1].data.set(randomArray(5, seed + 7));
  params[2].data.set(randomArray(4, seed + 9));
  params[3].data[0] += 1n;
}

function sameState(a, b) {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [key, value] of a) {
    const other = b.get(key);
    assert.equal(other.constructor.name, value.constructor.name, key);
    assert.deepEqual(new Uint8Array(other.buffer, other.byteOffset, other.byteLength), new Uint8Array(value.buffer, value.byteOffset, value.byteLength), key);
  }
}

// Options that make every recipe average, copy and skip within a few calls.
const BUSY = {
  'ema-pytorch': { updateAfterStep: 2, updateEvery: 2 }, keras: { emaOverwriteFrequency: 3 }, diffusers: { useEmaWarmup: true },
  power: { sigmaRel: 0.1, batchSize: 8 },
};

describe('recipe options', () => {
  test('an unknown recipe, an option of another recipe and bad values are refused, naming the option', async () => {
    const params = model();
    await assert.rejects(createEma(params, { recipe: 'optax' }), {
      name: 'TypeError',
      message: /options\.recipe must be one of 'litema', 'torch_ema', 'diffusers', 'timm', 'ema-pytorch', 'keras', 'power', 'debiased', got the string "optax"/,
    });
    await assert.rejects(createEma(params, { recipe: 'keras', decay: 0.9 }), {
      name: 'TypeError',
      message: /recipe 'keras' has no option 'decay'; its options are emaMomentum, emaOverwriteFrequency/,
    });
    await assert.rejects(createEma(params, { recipe: 'ema-pytorch', updateEvery: 0 }), { name: 'RangeError', message: /options\.updateEvery must be an integer, 1 or more, got 0/ });
    await assert.rejects(createEma(params, { recipe: 'diffusers', invGamma: 0 }), { name: 'RangeError', message: /options\.invGamma must be a finite number above 0/ });
    await assert.rejects(createEma(params, { recipe: 'diffusers', power: '2/3' }), { name: 'TypeError', message: /options\.power/ });
    await assert.rejects(createEma(params, { recipe: 'timm', useWarmup: 1 }), { name: 'TypeError', message: /options\.useWarmup must be a boolean/ });
    await assert.rejects(createEma(params, { recipe: 'keras', emaOverwriteFrequency: 2.5 }), { name: 'RangeError', message: /emaOverwriteFrequency must be null or an integer/ });
    await assert.rejects(createEma(params, { recipe: 'ema-pytorch', ignoreNames: 'bn' }), { name: 'TypeError', message: /ignoreNames must be an array of strings/ });
    await assert.rejects(createEma(params, { recipe: new String('timm') }), { name: 'TypeError', message: /options\.recipe must be one of/ });
    const huge = new Proxy([], { get: (target, key) => (key === 'length' ? 2 ** 32 - 1 : Reflect.get(target, key)) });
    await assert.rejects(createEma(params, { recipe: 'ema-pytorch', ignoreNames: huge }), { name: 'RangeError', message: /options\.ignoreNames has 4294967295 names; at most 1048576/ });
    let reads = 0;
    const shifty = new Proxy(['bn.'], { get: (target, key) => (key === '0' ? (reads++ === 0 ? 'bn.' : 42) : Reflect.get(target, key)) });
    const read = await createEma(params, { recipe: 'ema-pytorch', ignoreStartswithNames: shifty });
    assert.deepEqual(read.options.ignoreStartswithNames, ['bn.'], 'each name is read once');
    await assert.rejects(createEma(params, { nonFinite: 'ignore' }), { name: 'TypeError', message: /nonFinite must be 'allow', 'skip' or 'throw'/ });
    await assert.rejects(createEma(params, { recipe: 'debiased', resident: true }), /a debiased EMA cannot be resident/);
    await assert.rejects(createEma([{ name: 'step', data: new Float32Array(2) }], { recipe: 'ema-pytorch' }), /'step' has the name of lucidrains' ema-pytorch EMA's own 'step' state entry/);
    await assert.rejects(createEma([{ name: 'n', data: new Int32Array(2) }]), { name: 'TypeError', message: /must be a Float32Array, got an Int32Array of 2 \(an integer buffer, such as a step count, is passed with buffer: true\)/ });
  });

  test('recipe, options and counter read back; defaults are the references\'', async () => {
    const ema = await createEma(model(), { recipe: 'diffusers', decay: 0.999 });
    assert.equal(ema.recipe, 'diffusers');
    assert.deepEqual(ema.options, { decay: 0.999, minDecay: 0, updateAfterStep: 0, useEmaWarmup: false, invGamma: 1, power: 2 / 3, foreach: false });
    assert.equal(ema.counter, 0);
    assert.equal(ema.decay, 0.999);
    const options = ema.options;
    options.decay = 0.5;
    assert.equal(ema.options.decay, 0.999, 'options is a copy');
    const pytorch = await createEma(model(), { recipe: 'ema-pytorch' });
    assert.deepEqual(pytorch.options, {
      beta: 0.9999, updateAfterStep: 100, updateEvery: 10, invGamma: 1, power: 2 / 3, minValue: 0,
      paramOrBufferNamesNoEma: [], ignoreNames: [], ignoreStartswithNames: [],
    });
  });
});

describe('what each recipe keeps', () => {
  const expected = {
    litema: ['conv.weight'],
    torch_ema: ['conv.weight', 'head.bias'],
    diffusers: ['conv.weight', 'head.bias'],
    timm: ['conv.weight', 'head.bias', 'bn.running_mean', 'bn.num_batches_tracked'],
    'ema-pytorch': ['conv.weight', 'head.bias', 'bn.running_mean', 'bn.num_batches_tracked'],
    keras: ['conv.weight'],
    debiased: ['conv.weight'],
    power: ['conv.weight'],
  };
  for (const recipe of RECIPES) {
    test(`${recipe}: ${expected[recipe].join(', ')}`, async () => {
      const ema = await createEma(model(), { recipe });
      assert.deepEqual(ema.names, expected[recipe]);
    });
  }

  test('integer buffers: timm copies them bit for bit, ema-pytorch keeps its copy from creation', async () => {
    const params = model();
    const ema = await createEma(params, { recipe: 'timm' });
    params[3].data[0] = -(2n ** 62n) - 5n;
    ema.update(params);
    assert.deepEqual(ema.shadow('bn.num_batches_tracked'), BigInt64Array.of(-(2n ** 62n) - 5n));
    const int32 = [{ name: 'w', data: Float32Array.of(1) }, { name: 'steps', data: Int32Array.of(-7), buffer: true }];
    const other = await createEma(int32, { recipe: 'ema-pytorch', updateAfterStep: 0, updateEvery: 1 });
    int32[1].data[0] = 2 ** 31 - 1;
    other.update(int32); // a whole-model copy: of float entries only
    other.update(int32);
    assert.deepEqual(other.shadow('steps'), Int32Array.of(-7));
    assert.throws(() => other.update([int32[0], { name: 'steps', data: Float32Array.of(1), buffer: true }]), /'steps' is a float buffer; its shadow holds int32 values/);
  });

  test('ema-pytorch: ignored names change only with whole-model copies, no-EMA names are copied at every update', async () => {
    const params = model();
    const ema = await createEma(params, {
      recipe: 'ema-pytorch', updateAfterStep: 0, updateEvery: 1,
      ignoreStartswithNames: ['bn.'], paramOrBufferNamesNoEma: ['head.bias'],
    });
    assert.deepEqual(ema.names, ['conv.weight', 'head.bias', 'bn.running_mean', 'bn.num_batches_tracked']);
    step(params, 40);
    assert.equal(ema.update(params).action, 'copied');
    const copied = params[2].data.slice();
    assert.deepEqual(ema.shadow('bn.running_mean'), copied, 'the first update copies ignored names too');
    step(params, 50);
    ema.update(params);
    step(params, 60);
    assert.equal(ema.update(params).action, 'averaged');
    assert.deepEqual(ema.shadow('head.bias'), params[1].data, 'copied');
    assert.deepEqual(ema.shadow('bn.running_mean'), copied, 'untouched by averages');
    assert.deepEqual(ema.shadow('bn.num_batches_tracked'), BigInt64Array.of(3n), 'integer buffers: never written');
    assert.notDeepEqual(ema.shadow('conv.weight'), params[0].data, 'averaged');
  });

  test('diffusers copies a parameter frozen since the last step, and averages it again once unfrozen', async () => {
    const params = model();
    const ema = await createEma(params, { recipe: 'diffusers', decay: 0.5 });
    ema.update(params); // decay 0 at the first step
    step(params, 5);
    params[0].trainable = false;
    ema.update(params);
    assert.deepEqual(ema.shadow('conv.weight'), params[0].data);
    const frozen = params[0].data.slice();
    params[0].trainable = true;
    step(params, 6);
    ema.update(params);
    assert.notDeepEqual(ema.shadow('conv.weight'), params[0].data);
    assert.notDeepEqual(ema.shadow('conv.weight'), frozen);
  });

  test('LitEma still refuses a tracked parameter passed with trainable: false', async () => {
    const params = model();
    const ema = await createEma(params);
    params[0].trainable = false;
    assert.throws(() => ema.update(params), /parameter 'conv.weight' is tracked but was passed with trainable: false/);
  });
});

for (const simd of BUILDS) {
  describe(`update() reports what it did, ${buildName(simd)} build`, () => {
    test('ema-pytorch: the first call copies, then update_every and update_after_step decide', async () => {
      const params = model();
      const ema = await createEma(params, { recipe: 'ema-pytorch', updateAfterStep: 2, updateEvery: 2, simd });
      const actions = [];
      for (let i = 0; i < 7; i++) {
        step(params, i * 10);
        const result = ema.update(params);
        actions.push(`${result.action}:${result.counter}`);
      }
      assert.deepEqual(actions, ['copied:1', 'skipped:2', 'copied:3', 'skipped:4', 'averaged:5', 'skipped:6', 'averaged:7']);
    });

    test("timm takes the caller's step; other recipes refuse one", async () => {
      const params = model();
      const ema = await createEma(params, { recipe: 'timm', useWarmup: true, simd });
      assert.equal(ema.update(params).decay, 0.9999, 'no step: the fixed decay');
      assert.equal(ema.update(params, { step: 1 }).decay, 0, 'step 1: warmup gives 0');
      assert.equal(ema.update(params, { step: 9 }).decay, 1 - 9 ** (-2 / 3));
      assert.throws(() => ema.update(params, { step: 1.5 }), { name: 'TypeError', message: /options\.step must be an integer/ });
      assert.throws(() => ema.update(params, { steps: 1 }), { name: 'TypeError', message: /unknown option 'steps'/ });
      const litema = await createEma(params, { simd });
      assert.throws(() => litema.update(params, { step: 3 }), /options\.step is timm's step argument; recipe 'litema' counts its own steps/);
    });

    test('Keras overwrites the model with the averages every N steps, in update()', async () => {
      const params = model();
      const ema = await createEma(params, { recipe: 'keras', emaOverwriteFrequency: 2, simd });
      step(params, 1);
      assert.equal(ema.update(params).overwrote, false);
      step(params, 2);
      const before = params[0].data.slice();
      const result = ema.update(params);
      assert.equal(result.overwrote, true);
      assert.deepEqual(params[0].data, ema.shadow('conv.weight'));
      assert.notDeepEqual(params[0].data, before);
      const resident = await createEma([{ name: 'w', data: Float32Array.of(1, 2) }], { recipe: 'keras', emaOverwriteFrequency: 2, resident: true, simd });
      assert.deepEqual(resident.param('w'), Float32Array.of(1, 2), 'the parameters start as given');
      assert.deepEqual(resident.shadow('w'), Float32Array.of(0, 0), "Keras's averages start at zero");
      resident.param('w').set([3, 4]);
      resident.update();
      resident.param('w').set([5, 6]);
      assert.equal(resident.update().overwrote, true);
      assert.deepEqual(resident.param('w'), resident.shadow('w'));
    });

    test('debiased: reads bias-corrected, refuses to read before the first update', async () => {
      const params = [{ name: 'w', data: Float32Array.of(2, -4, 0.1) }];
      const ema = await createEma(params, { recipe: 'debiased', decay: 0.9, simd });
      assert.throws(() => ema.shadow('w'), /no average yet/);
      assert.throws(() => ema.copyTo(params), /no average yet/);
      ema.update(params);
      // One step from zero: 0.1 * x / (1 - 0.9), in float32 operations.
      const expected = params[0].data.map((x) => Math.fround(Math.fround(Math.fround(0.1) * x) + 0) / Math.fround(1 - 0.9));
      assert.deepEqual(ema.shadow('w'), expected);
      const state = ema.stateDict();
      assert.deepEqual(state.get('w'), params[0].data.map((x) => Math.fround(Math.fround(1 - 0.9) * x)), 'the state is the raw average');
      assert.deepEqual(state.get('count'), Int32Array.of(1));
      const raw = await createEma(params, { recipe: 'debiased', decay: 0.9, debias: false, simd });
      raw.update(params);
      assert.deepEqual(raw.shadow('w'), state.get('w'));
    });

    for (const mode of ['skip', 'throw']) {
      test(`nonFinite: '${mode}' leaves the counter and every shadow unchanged`, async () => {
        const params = model();
        const ema = await createEma(params, { recipe: 'timm', nonFinite: mode, simd });
        ema.update(params);
        const before = ema.stateDict();
        for (const bad of [NaN, Infinity, -Infinity]) {
          params[2].data[3] = bad; // a float buffer: timm averages it
          if (mode === 'skip') {
            const result = ema.update(params);
            assert.equal(result.action, 'skipped');
            assert.equal(result.nonFinite, true);
          } else {
            assert.throws(() => ema.update(params), { name: 'RangeError', message: new RegExp(`'bn.running_mean' holds ${bad} at index 3`) });
          }
          sameState(ema.stateDict(), before);
        }
        params[2].data[3] = 1;
        assert.equal(ema.update(params).action, 'averaged');
        const resident = await createEma([{ name: 'w', data: Float32Array.of(1, 2) }], { recipe: 'diffusers', nonFinite: mode, resident: true, simd });
        resident.param('w')[1] = NaN;
        if (mode === 'skip') assert.equal(resident.update().nonFinite, true);
        else assert.throws(() => resident.update(), /resident parameter 'w' holds NaN at index 1/);
        assert.equal(resident.counter, 0);
      });
    }

    test('the guard finds a NaN past the first staging window, and ignores integer words that read as NaN', async () => {
      const big = new Float32Array(70001).fill(0.5);
      const params = [
        { name: 'small', data: Float32Array.of(1, 2) },
        { name: 'big', data: big },
        { name: 'counts', data: Int32Array.of(0x7fc00000, -1), buffer: true }, // NaN's bits, but integers
      ];
      const ema = await createEma(params, { recipe: 'timm', nonFinite: 'throw', simd });
      assert.equal(ema.update(params).action, 'averaged', 'integer buffers are not checked');
      big[69999] = -Infinity;
      assert.throws(() => ema.update(params), { name: 'RangeError', message: /'big' holds -Infinity at index 69999/ });
      assert.equal(ema.counter, 1);
    });

    test("nonFinite: 'allow' (the default) averages NaN in, as every reference does", async () => {
      const params = [{ name: 'w', data: Float32Array.of(NaN, 1) }];
      const ema = await createEma(params, { recipe: 'torch_ema', simd });
      params[0].data[0] = NaN;
      assert.equal(ema.update(params).action, 'averaged');
      assert.ok(Number.isNaN(ema.shadow('w')[0]));
    });
  });

  describe(`state round trips and continues bit for bit, ${buildName(simd)} build`, () => {
    for (const recipe of RECIPES) {
      test(recipe, async () => {
        const params = model();
        const options = { recipe, ...BUSY[recipe], simd };
        const ema = await createEma(params, options);
        for (let i = 0; i < 5; i++) {
          step(params, 100 + i);
          ema.update(params);
        }
        const file = ema.save({ prefix: 'ema.', metadata: { run: 'a' } });
        const metadata = await readMetadata(file);
        assert.equal(metadata.run, 'a');
        if (recipe !== 'litema') assert.equal(metadata['ema_wasm.recipe'], recipe);
        const loaded = await loadEma(file, { prefix: 'ema.', simd });
        assert.equal(loaded.recipe, recipe);
        assert.deepEqual(loaded.options, ema.options);
        assert.deepEqual(loaded.names, ema.names);
        sameState(loaded.stateDict(), ema.stateDict());
        const fresh = await createEma(model(9), options);
        fresh.loadStateDict(ema.stateDict());
        const inPlace = await createEma(model(9), options);
        await inPlace.loadState(file, { prefix: 'ema.' });
        for (let i = 0; i < 6; i++) {
          step(params, 200 + i);
          const copy = params.map((p) => ({ ...p, data: p.data.slice() }));
          const results = [ema, loaded, fresh, inPlace].map((e) => JSON.stringify(e.update(params.map((p, k) => ({ ...p, data: copy[k].data.slice() })))));
          assert.equal(new Set(results).size, 1, results.join('\n'));
        }
        for (const other of [loaded, fresh, inPlace]) sameState(other.stateDict(), ema.stateDict());
      });
    }

    test('loadStateDict checks everything first: a bad value changes nothing', async () => {
      const params = model();
      const ema = await createEma(params, { recipe: 'diffusers', simd });
      ema.update(params);
      const before = ema.stateDict();
      const bad = new Map(before);
      bad.set('inv_gamma', Float64Array.of(0));
      assert.throws(() => ema.loadStateDict(bad), { name: 'RangeError', message: /'inv_gamma' must be a finite number above 0, got 0/ });
      bad.set('inv_gamma', Float64Array.of(1));
      bad.set('conv.weight', new Float32Array(3));
      assert.throws(() => ema.loadStateDict(bad), /'conv.weight' has 3 elements; the shadow of 'conv.weight' has 37/);
      const missing = new Map(before);
      missing.delete('optimization_step');
      assert.throws(() => ema.loadStateDict(missing), /missing keys 'optimization_step'/);
      sameState(ema.stateDict(), before);
      missing.set('optimization_step', 41);
      ema.loadStateDict(missing);
      assert.equal(ema.counter, 41);
    });
  });
}

describe("loading other libraries' EMA files", () => {
  test('a file without recipe metadata is read as the recipe named, counters from the file or options', async () => {
    // What ema-pytorch's state_dict saved with safetensors looks like:
    // initted, step, online_model.*, ema_model.*.
    const source = await createEma(model(), { recipe: 'timm' });
    const weights = source.stateDict();
    const { encodeSafetensors } = await import('../../js/safetensors.js');
    const tensors = [
      { name: 'initted', dtype: 'BOOL', shape: [1], data: Uint8Array.of(1) },
      { name: 'step', dtype: 'I64', shape: [1], data: BigInt64Array.of(1234n) },
      { name: 'online_model.conv.weight', dtype: 'F32', shape: [37], data: weights.get('conv.weight') },
      { name: 'ema_model.conv.weight', dtype: 'F32', shape: [37], data: weights.get('conv.weight') },
      { name: 'ema_model.bn.num_batches_tracked', dtype: 'I64', shape: [], data: weights.get('bn.num_batches_tracked') },
    ];
    const file = encodeSafetensors(tensors, [['format', 'pt']]);
    const ema = await loadEma(file, { recipe: 'ema-pytorch', beta: 0.999 });
    assert.deepEqual(ema.names, ['conv.weight', 'bn.num_batches_tracked']);
    assert.equal(ema.counter, 1234);
    assert.equal(ema.decay, 0.999);
    assert.deepEqual(ema.shadow('conv.weight'), weights.get('conv.weight'));
    const counted = await loadEma(file, { recipe: 'ema-pytorch', counter: 7 });
    assert.equal(counted.counter, 7);

    // A diffusers EMA model saved with save_pretrained: plain dotted weights.
    const plain = encodeSafetensors([{ name: 'conv.weight', dtype: 'F32', shape: [37], data: weights.get('conv.weight') }], [['format', 'pt']]);
    const diffusers = await loadEma(plain, { recipe: 'diffusers', counter: 5000, useEmaWarmup: true, power: 0.75 });
    assert.equal(diffusers.counter, 5000);
    assert.equal(diffusers.options.power, 0.75);
    assert.equal(diffusers.update([{ name: 'conv.weight', data: randomArray(37, 3) }]).decay, Math.min(0.9999, 1 - (1 + 5000) ** -0.75));

    await assert.rejects(loadEma(plain), /the file has no 'decay' tensor/);
    await assert.rejects(loadEma(plain, { counter: 3 }), /a LitEma file carries its own options and counter/);
    const ours = source.save();
    await assert.rejects(loadEma(ours, { recipe: 'keras' }), /the file holds a 'timm' EMA, not 'keras'/);
  });
});

test("a file's metadata cannot set options the recipe does not have (resident, simd, another recipe's)", async () => {
  const { encodeSafetensors } = await import('../../js/safetensors.js');
  const file = encodeSafetensors(
    [{ name: 'w', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }],
    [['format', 'pt'], ['ema_wasm.recipe', 'timm'], ['ema_wasm.options', JSON.stringify({ resident: true, simd: 'x', emaMomentum: 0.5, decay: 0.5, __proto__: { x: 1 } })]],
  );
  const ema = await loadEma(file);
  assert.equal(ema.resident, false);
  assert.equal(ema.decay, 0.5);
  assert.equal(ema.options.emaMomentum, undefined);
});

describe('what a hostile review found, fixed', () => {
  test("a debiased EMA refuses resetNumUpdates (its count goes with its average)", async () => {
    const params = [{ name: 'a', data: Float32Array.of(10) }];
    const ema = await createEma(params, { recipe: 'debiased', decay: 0.5 });
    ema.update(params);
    const before = ema.stateDict();
    assert.throws(() => ema.resetNumUpdates(), /a debiased EMA's count goes with its average/);
    sameState(ema.stateDict(), before);
  });

  test('options are checked as values of their own type: nonFinite, list elements, huge steps and counters', async () => {
    const params = model();
    await assert.rejects(createEma(params, { nonFinite: new String('throw') }), { name: 'TypeError', message: /nonFinite must be 'allow', 'skip' or 'throw'/ });
    await assert.rejects(createEma(params, { nonFinite: { toString: () => 'throw' } }), { name: 'TypeError' });
    await assert.rejects(createEma(params, { recipe: 'ema-pytorch', ignoreNames: ['a', 1] }), { name: 'TypeError', message: /options\.ignoreNames\[1\] must be a string, got number 1/ });
    const timm = await createEma(params, { recipe: 'timm' });
    assert.throws(() => timm.update(params, { step: 2 ** 60 }), { name: 'RangeError', message: /options\.step must be within ±\(2\^53 - 1\), got 1152921504606847000/ });
    assert.throws(() => timm.update(params, { step: 1.5 }), { name: 'TypeError', message: /options\.step must be an integer/ });
    assert.equal(timm.counter, 0);
    const file = timm.save();
    await assert.rejects(loadEma(file, { counter: 2 ** 53 }), { name: 'RangeError', message: /options\.counter must be within/ });
    await assert.rejects(loadEma(file, { counter: -1 }), { name: 'RangeError', message: /loadEma: options\.counter must be an integer, 0 or more for recipe 'timm', got -1/ });
  });

  test('loadStateDict takes a scalar only in a type of its kind', async () => {
    const ema = await createEma(model(), { recipe: 'diffusers' });
    const state = ema.stateDict();
    state.set('decay', BigInt64Array.of(1n));
    assert.throws(() => ema.loadStateDict(state), { name: 'TypeError', message: /state 'decay' must be a number in \[0, 1\] \(a number or a Float64Array or Float32Array of one\), got a BigInt64Array/ });
    state.set('decay', Float64Array.of(0.5));
    state.set('optimization_step', Float32Array.of(3));
    assert.throws(() => ema.loadStateDict(state), { name: 'TypeError', message: /'optimization_step'/ });
    state.set('optimization_step', Int32Array.of(3));
    ema.loadStateDict(state);
    assert.equal(ema.counter, 3);
    assert.equal(ema.decay, 0.5);
  });

  test("loadEma: Keras or debiased weights without their count are refused; options.params is checked against the file; kinds in metadata are checked", async () => {
    const { encodeSafetensors } = await import('../../js/safetensors.js');
    const plain = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }], [['format', 'pt']]);
    await assert.rejects(loadEma(plain, { recipe: 'keras' }), /a 'keras' EMA read from a file without its count has no average to continue; pass options\.counter \(the iterations/);
    await assert.rejects(loadEma(plain, { recipe: 'debiased', counter: 0 }), /a 'debiased' EMA read from a count of 0/);
    const keras = await loadEma(plain, { recipe: 'keras', counter: 40 });
    assert.equal(keras.counter, 40);
    assert.deepEqual(keras.shadow('w'), Float32Array.of(1, 2));
    await assert.rejects(loadEma(plain, { recipe: 'timm', params: [{ name: 'w', data: new Float32Array(3) }] }), /the file's 'w' has shape \[2\]; options\.params has 3 elements/);
    await assert.rejects(loadEma(plain, { recipe: 'timm', params: [{ name: 'w', data: new Float32Array(2), shape: [1, 2] }] }), /has shape \[2\]; options\.params has shape \[1, 2\]/);
    await assert.rejects(loadEma(plain, { recipe: 'timm', params: [{ name: 'w', data: new Float32Array(2) }, { name: 'w', data: new Float32Array(2) }] }), /duplicate parameter names: 'w'/);
    const weird = encodeSafetensors(
      [{ name: 'w', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }],
      [['format', 'pt'], ['ema_wasm.recipe', 'timm'], ['ema_wasm.kinds', JSON.stringify({ w: 'weird' })]],
    );
    await assert.rejects(loadEma(weird), /metadata 'ema_wasm\.kinds' gives 'w' the kind the string "weird"/);
    // A fresh Keras EMA saved before its first step loads back (its own file carries the count).
    const fresh = await createEma([{ name: 'w', data: Float32Array.of(1) }], { recipe: 'keras' });
    assert.equal((await loadEma(fresh.save())).counter, 0);
  });

  test("a resident EMA's refused step names the parameter and the index", async () => {
    const ema = await createEma([{ name: 'a', data: new Float32Array(3) }, { name: 'b', data: new Float32Array(5) }], { recipe: 'timm', nonFinite: 'throw', resident: true });
    ema.param('b')[4] = -Infinity;
    assert.throws(() => ema.update(), { name: 'RangeError', message: /resident parameter 'b' holds -Infinity at index 4/ });
  });

  test("ema-pytorch: the guard leaves the calls that skip alone, so the step counts as Python's", async () => {
    const params = [{ name: 'w', data: Float32Array.of(1, 2) }];
    const ema = await createEma(params, { recipe: 'ema-pytorch', updateAfterStep: 0, updateEvery: 3, nonFinite: 'skip' });
    assert.equal(ema.update(params).action, 'copied');
    params[0].data[1] = NaN;
    const skipped = ema.update(params);
    assert.equal(skipped.action, 'skipped');
    assert.equal(skipped.nonFinite, false, 'an update_every skip, not the guard');
    assert.equal(ema.counter, 2);
    ema.update(params);
    const guarded = ema.update(params); // call 4: step 3 averages, and the guard skips it
    assert.equal(guarded.nonFinite, true);
    assert.equal(ema.counter, 3);
  });

  test('integer arrays in a Map or object are refused with a hint that fits that form', async () => {
    await assert.rejects(createEma(new Map([['n', new Int32Array(2)]])), /a Map or object of params holds Float32Arrays; pass integer buffers in the array form, with buffer: true/);
  });
});

describe("the power recipe (a profile of EDM2's post-hoc EMA)", () => {
  test('sigmaRel or gamma, batchSize, and each step\'s samples', async () => {
    const params = [{ name: 'w', data: Float32Array.of(1, 2, 3) }];
    const ema = await createEma(params, { recipe: 'power', sigmaRel: 0.1, batchSize: 32 });
    assert.deepEqual(ema.options, { sigmaRel: 0.1, gamma: null, batchSize: 32 });
    const first = ema.update(params);
    assert.deepEqual([first.decay, first.weight, first.counter], [0, 1, 32], 'the first step copies');
    const gamma = ema.stateDict().get('gamma')[0];
    assert.equal(gamma.toFixed(2), '6.94', "EDM2's sigma_rel 0.1");
    assert.equal(ema.update(params).decay, (1 - 32 / 64) ** (gamma + 1));
    const partial = ema.update(params, { samples: 7 });
    assert.equal(partial.counter, 71);
    assert.equal(partial.weight, Math.fround(1 - partial.decay));
    assert.deepEqual((await createEma(params, { recipe: 'power' })).options, { sigmaRel: 0.05, gamma: null, batchSize: 1 });
    assert.deepEqual((await createEma(params, { recipe: 'power', gamma: 0 })).options, { sigmaRel: null, gamma: 0, batchSize: 1 });
  });

  test('refusals: both widths, widths out of range, samples for other recipes or below 1', async () => {
    const params = [{ name: 'w', data: Float32Array.of(1) }];
    await assert.rejects(createEma(params, { recipe: 'power', sigmaRel: 0.1, gamma: 3 }), { name: 'TypeError', message: /give options\.sigmaRel or options\.gamma, not both/ });
    await assert.rejects(createEma(params, { recipe: 'power', sigmaRel: 0.29 }), { name: 'RangeError', message: /options\.sigmaRel must be null or a number in \[0\.000001, 0\.28867513459481287\]/ });
    await assert.rejects(createEma(params, { recipe: 'power', sigmaRel: 0 }), { name: 'RangeError' });
    await assert.rejects(createEma(params, { recipe: 'power', gamma: -1 }), { name: 'RangeError', message: /options\.gamma/ });
    await assert.rejects(createEma(params, { recipe: 'power', batchSize: 0 }), { name: 'RangeError', message: /options\.batchSize/ });
    const ema = await createEma(params, { recipe: 'power' });
    assert.throws(() => ema.update(params, { samples: 0 }), { name: 'RangeError', message: /options\.samples must be 1 or more, got 0/ });
    assert.throws(() => ema.update(params, { step: 3 }), /options\.step is timm's step argument; recipe 'power'/);
    const timm = await createEma(params, { recipe: 'timm' });
    assert.throws(() => timm.update(params, { samples: 3 }), /options\.samples is the power recipe's; recipe 'timm' counts steps/);
    assert.equal(ema.counter, 0);
  });
});
