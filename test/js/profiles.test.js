// Several power profiles in one EMA (recipe 'power' with a sigmaRel or gamma
// list): on both builds, an EMA of K profiles is K one-profile EMAs, bit for
// bit (every profile's shadows, its decay and weight, the counter and steps)
// over uneven samples and lengths around the core's 1,024-element blocks and
// the 65,536-float staging window, copied in and resident; copyTo, withEma,
// shadow, stateDict and save with { profile }; the options' and profile's
// refusals, word for word; states of several profiles and of one of them,
// round trips that continue bit for bit, and the refusals of states that do
// not fit (each leaves the EMA as it was); and hostile options (a Proxy or
// getters for the widths and for `profile`), read once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma, loadEma } from '../../js/index.js';
import { BUILDS, buildName, randomArray } from './helpers.js';
import { assertSameBits } from './recipe-fixture.js';

const SIGMA_REL_MAX = Math.sqrt(1 / 12);
const WIDTHS = [0.05, 0.1, 0.2, SIGMA_REL_MAX];
const GAMMAS = [0, 1.5, 6.94, 16.97, 1000];

// Around the 1,024-element blocks of the fused update (EMA_PROFILE_BLOCK),
// odd sizes, and a tensor that crosses the 65,536-float staging window.
const LENGTHS = [0, 1, 3, 5, 7, 17, 33, 1023, 1024, 1025, 2047, 2048, 2049, 3071, 70001];

/** Tensors of LENGTHS, 40 small ones, and a frozen parameter and a buffer (which the power recipe leaves alone). */
function model(seed) {
  const params = LENGTHS.map((length, i) => ({ name: `layer${i}.n${length}`, data: randomArray(length, seed + i) }));
  for (let i = 0; i < 40; i++) params.push({ name: `many.${i}`, data: randomArray(1 + ((i * 7) % 13), seed + 100 + i) });
  params.push({ name: 'frozen', data: randomArray(4, seed + 200), trainable: false });
  params.push({ name: 'bn.mean', data: randomArray(3, seed + 201), buffer: true });
  return params;
}

/** The model's values at step `step`: fresh random values in every array. */
function train(params, step) {
  params.forEach((param, i) => param.data.set(randomArray(param.data.length, 7919 * step + i)));
}

/** Each step's samples (batchSize 7 does not divide them; undefined: a whole batch). */
const SAMPLES = [undefined, 3, undefined, undefined, 1, 50, undefined, 2, 7, undefined, 13, undefined, 1, 1, undefined, 1000, undefined, 4, undefined, undefined, 6, 9, undefined, undefined, 2];
const samplesAt = (step) => SAMPLES[(step - 1) % SAMPLES.length];
const updateOptions = (step) => (samplesAt(step) === undefined ? undefined : { samples: samplesAt(step) });

const trackedNames = (params) => params.filter((param) => param.trainable !== false && param.buffer !== true).map((param) => param.name);

/** Every shadow of profile `profile` of `multi` equals `single`'s, bit for bit. */
function assertProfileEquals(multi, profile, single, names, where) {
  for (const name of names) assertSameBits(multi.shadow(name, { profile }), single.shadow(name), `${where}: '${name}' of profile ${profile}`);
}

/** Checks a K-profile step result against the K one-profile results. */
function assertSameStep(result, singles, where) {
  assert.equal(result.action, 'averaged', `${where}: action`);
  assert.equal(result.profiles.length, singles.length, `${where}: a decay and weight per profile`);
  singles.forEach((single, k) => {
    assert.equal(single.profiles, undefined, `${where}: a one-profile result lists no profiles`);
    assert.equal(result.counter, single.counter, `${where}: counter`);
    assert.ok(Object.is(result.profiles[k].decay, single.decay), `${where}: profile ${k}'s decay ${result.profiles[k].decay}, alone ${single.decay}`);
    assert.ok(Object.is(result.profiles[k].weight, single.weight), `${where}: profile ${k}'s weight ${result.profiles[k].weight}, alone ${single.weight}`);
  });
  assert.ok(Object.is(result.decay, result.profiles[0].decay) && Object.is(result.weight, result.profiles[0].weight), `${where}: the top level is profile 0's`);
}

/** Everything a state-changing refusal must leave as it was. */
function observe(ema) {
  const state = [...ema.stateDict()].map(([key, value]) => [key, Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))]);
  return { state, counter: ema.counter, steps: ema.steps, profiles: ema.profiles, options: ema.options };
}

for (const simd of BUILDS) {
  describe(`several power profiles, ${buildName(simd)} build`, () => {
    for (const [key, widths] of [['sigmaRel', WIDTHS], ['gamma', GAMMAS]]) {
      test(`${widths.length} profiles by ${key} equal ${widths.length} one-profile EMAs bit for bit, over 25 uneven steps`, async () => {
        const params = model(1);
        const names = trackedNames(params);
        const multi = await createEma(params, { recipe: 'power', [key]: widths, batchSize: 7, simd });
        const singles = await Promise.all(widths.map((width) => createEma(params, { recipe: 'power', [key]: width, batchSize: 7, simd })));
        assert.equal(multi.simd, simd);
        assert.deepEqual(multi.names, names, 'the frozen parameter and the buffer are not kept');
        assert.deepEqual(multi.options, { sigmaRel: key === 'sigmaRel' ? widths : null, gamma: key === 'gamma' ? widths : null, batchSize: 7 });
        assert.deepEqual(multi.profiles, singles.map((single) => single.profiles[0]), 'the profiles, in order, with their gamma');
        assert.equal(multi.steps, 0);
        widths.forEach((_, k) => assertProfileEquals(multi, k, singles[k], names, 'at creation'));

        let samples = 0;
        for (let step = 1; step <= 25; step++) {
          const where = `step ${step}`;
          train(params, step);
          const result = multi.update(params, updateOptions(step));
          assertSameStep(result, singles.map((single) => single.update(params, updateOptions(step))), where);
          samples += samplesAt(step) ?? 7;
          assert.equal(multi.counter, samples, `${where}: the counter is the samples seen`);
          assert.equal(multi.steps, step, `${where}: steps`);
          if (step === 2) {
            const decays = new Set(result.profiles.map((profile) => profile.decay));
            assert.equal(decays.size, widths.length, `${where}: every profile has its own decay`);
          }
          if (step <= 3 || step % 4 === 0 || step === 25) {
            widths.forEach((_, k) => assertProfileEquals(multi, k, singles[k], names, where));
          }
        }
        singles.forEach((single) => assert.equal(single.steps, 25));
        for (const ema of [multi, ...singles]) ema.dispose();
      });
    }

    test('resident: a K-profile resident EMA equals K one-profile EMAs; copyTo and withEma swap in each profile', async () => {
      const params = model(3);
      const names = trackedNames(params);
      const resident = await createEma(params, { recipe: 'power', sigmaRel: WIDTHS, batchSize: 7, simd, resident: true });
      const singles = await Promise.all(WIDTHS.map((width) => createEma(params, { recipe: 'power', sigmaRel: width, batchSize: 7, simd })));
      assert.deepEqual(resident.names, names);
      const views = names.map((name) => resident.param(name));
      const buffer = views[0].buffer;
      for (let step = 1; step <= 13; step++) {
        train(params, step);
        names.forEach((name, i) => views[i].set(params.find((param) => param.name === name).data));
        const result = resident.update(undefined, updateOptions(step));
        assertSameStep(result, singles.map((single) => single.update(params, updateOptions(step))), `step ${step}`);
        if (step % 4 === 1) WIDTHS.forEach((_, k) => assertProfileEquals(resident, k, singles[k], names, `step ${step}`));
      }
      assert.equal(resident.steps, 13);
      const training = views.map((view) => view.slice());
      for (let k = 0; k < WIDTHS.length; k++) {
        const seen = await resident.withEma(() => views.map((view) => view.slice()), { profile: k });
        seen.forEach((values, i) => assertSameBits(values, singles[k].shadow(names[i]), `withEma({ profile: ${k} }): '${names[i]}'`));
        views.forEach((view, i) => assertSameBits(view.slice(), training[i], `after withEma({ profile: ${k} }): '${names[i]}' restored`));
      }
      const defaultSeen = await resident.withEma(() => views[8].slice());
      assertSameBits(defaultSeen, singles[0].shadow(names[8]), 'withEma(fn): profile 0');
      for (let k = WIDTHS.length - 1; k >= 0; k--) {
        resident.copyTo({ profile: k });
        views.forEach((view, i) => assertSameBits(view.slice(), singles[k].shadow(names[i]), `copyTo({ profile: ${k} }): '${names[i]}'`));
      }
      resident.copyTo();
      views.forEach((view, i) => assertSameBits(view.slice(), singles[0].shadow(names[i]), `copyTo(): '${names[i]}' is profile 0's`));
      assert.equal(views[0].buffer, buffer, 'the views stay valid');
      for (const ema of [resident, ...singles]) ema.dispose();
    });

    test('copyTo, withEma and shadow with each profile; without one, profile 0', async () => {
      const params = model(5);
      const names = trackedNames(params);
      const multi = await createEma(params, { recipe: 'power', gamma: GAMMAS, simd });
      const singles = await Promise.all(GAMMAS.map((gamma) => createEma(params, { recipe: 'power', gamma, simd })));
      for (let step = 1; step <= 6; step++) {
        train(params, step);
        multi.update(params, updateOptions(step));
        for (const single of singles) single.update(params, updateOptions(step));
      }
      const training = params.map((param) => param.data.slice());
      for (let k = 0; k < GAMMAS.length; k++) {
        const seen = await multi.withEma(params, () => params.map((param) => param.data.slice()), { profile: k });
        params.forEach((param, i) => {
          const expected = names.includes(param.name) ? singles[k].shadow(param.name) : training[i];
          assertSameBits(seen[i], expected, `withEma({ profile: ${k} }): '${param.name}'`);
          assertSameBits(param.data, training[i], `after withEma({ profile: ${k} }): '${param.name}' restored`);
        });
        await assert.rejects(multi.withEma(params, () => { throw new Error('eval failed'); }, { profile: k }), /eval failed/);
        params.forEach((param, i) => assertSameBits(param.data, training[i], `after a throw in withEma({ profile: ${k} })`));
      }
      for (const k of [2, 0, 4, 1, 3]) {
        multi.copyTo(params, { profile: k });
        params.forEach((param, i) => {
          const expected = names.includes(param.name) ? singles[k].shadow(param.name) : training[i];
          assertSameBits(param.data, expected, `copyTo({ profile: ${k} }): '${param.name}'`);
        });
        for (const name of names) assertSameBits(multi.shadow(name, { profile: k }), singles[k].shadow(name), `shadow('${name}', { profile: ${k} })`);
      }
      multi.copyTo(params);
      for (const name of names) assertSameBits(params.find((param) => param.name === name).data, singles[0].shadow(name), `copyTo(): '${name}'`);
      for (const name of names) assertSameBits(multi.shadow(name), singles[0].shadow(name), `shadow('${name}')`);
      // A shadow is a copy: changing it changes nothing.
      const copy = multi.shadow(names[8], { profile: 2 });
      copy.fill(123);
      assertSameBits(multi.shadow(names[8], { profile: 2 }), singles[2].shadow(names[8]), 'shadow() is a copy');
    });

    test('a one-element list is one profile, the same as the plain number', async () => {
      const params = model(6);
      const listed = await createEma(params, { recipe: 'power', sigmaRel: [0.1], batchSize: 7, simd });
      const plain = await createEma(params, { recipe: 'power', sigmaRel: 0.1, batchSize: 7, simd });
      assert.deepEqual(listed.profiles, plain.profiles);
      for (let step = 1; step <= 4; step++) {
        train(params, step);
        assert.deepEqual(listed.update(params, updateOptions(step)), plain.update(params, updateOptions(step)));
      }
      for (const name of trackedNames(params)) assertSameBits(listed.shadow(name), plain.shadow(name), name);
      // Its state is a one-profile state, which the plain EMA loads.
      const other = await createEma(params, { recipe: 'power', sigmaRel: 0.2, batchSize: 7, simd });
      other.loadStateDict(listed.stateDict());
      assert.deepEqual(other.profiles, plain.profiles);
    });
  });
}

describe('options and the profile option: refusals name the option', () => {
  const small = () => [{ name: 'w', data: Float32Array.of(1, 2, 3) }, { name: 'b', data: Float32Array.of(-1) }];

  test('sigmaRel and gamma lists: empty, 17 widths, a non-number, out of range, both given', async () => {
    const params = small();
    const cases = [
      [{ sigmaRel: [] }, RangeError, 'ema-wasm: createEma: options.sigmaRel lists 0 profiles; give 1 to 16 (EMA_MAX_PROFILES)'],
      [{ gamma: [] }, RangeError, 'ema-wasm: createEma: options.gamma lists 0 profiles; give 1 to 16 (EMA_MAX_PROFILES)'],
      [{ sigmaRel: new Array(17).fill(0.1) }, RangeError, 'ema-wasm: createEma: options.sigmaRel lists 17 profiles; give 1 to 16 (EMA_MAX_PROFILES)'],
      [{ gamma: new Array(17).fill(1) }, RangeError, 'ema-wasm: createEma: options.gamma lists 17 profiles; give 1 to 16 (EMA_MAX_PROFILES)'],
      [{ sigmaRel: [0.1, 'x'] }, TypeError, 'ema-wasm: createEma: options.sigmaRel[1] must be a number, got the string "x"'],
      [{ sigmaRel: [0.1, 0.2, null] }, TypeError, 'ema-wasm: createEma: options.sigmaRel[2] must be a number, got null'],
      [{ gamma: [1, 2n] }, TypeError, 'ema-wasm: createEma: options.gamma[1] must be a number, got bigint 2n'],
      [{ sigmaRel: [0.1, 0.5] }, RangeError, "ema-wasm: createEma: options.sigmaRel[1] must be a number in [0.000001, 0.28867513459481287] (the profile's relative width), got 0.5"],
      [{ sigmaRel: [0, 0.1] }, RangeError, "ema-wasm: createEma: options.sigmaRel[0] must be a number in [0.000001, 0.28867513459481287] (the profile's relative width), got 0"],
      [{ sigmaRel: [0.1, NaN] }, RangeError, "ema-wasm: createEma: options.sigmaRel[1] must be a number in [0.000001, 0.28867513459481287] (the profile's relative width), got NaN"],
      [{ gamma: [1, -1] }, RangeError, 'ema-wasm: createEma: options.gamma[1] must be a number in [0, 1000000], got -1'],
      [{ gamma: [Infinity] }, RangeError, 'ema-wasm: createEma: options.gamma[0] must be a number in [0, 1000000], got Infinity'],
      [{ sigmaRel: [0.1, 0.2], gamma: [1, 2] }, TypeError, 'ema-wasm: createEma: give options.sigmaRel or options.gamma, not both (sigmaRel sets gamma)'],
      [{ sigmaRel: [0.1, 0.2], gamma: 1 }, TypeError, 'ema-wasm: createEma: give options.sigmaRel or options.gamma, not both (sigmaRel sets gamma)'],
      [{ sigmaRel: 0.1, gamma: [1, 2] }, TypeError, 'ema-wasm: createEma: give options.sigmaRel or options.gamma, not both (sigmaRel sets gamma)'],
    ];
    for (const [options, name, message] of cases) {
      await assert.rejects(createEma(params, { recipe: 'power', ...options }), { name: name.name, message }, JSON.stringify(options, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)));
    }
    await assert.rejects(createEma(params, { recipe: 'timm', gamma: [1, 2] }), { name: 'TypeError', message: /^ema-wasm: createEma: recipe 'timm' has no option 'gamma'/ });
    await assert.rejects(createEma(params, { sigmaRel: [0.1, 0.2] }), { name: 'TypeError', message: /^ema-wasm: createEma: recipe 'litema' has no option 'sigmaRel'; its options are decay, useNumUpdates$/ });
    // Sixteen is the most, and the widest profile (gamma 0) is a width.
    const sixteen = await createEma(params, { recipe: 'power', sigmaRel: Array.from({ length: 16 }, (_, k) => (k + 1) * (SIGMA_REL_MAX / 16)) });
    assert.equal(sixteen.profiles.length, 16);
    assert.equal(sixteen.profiles[15].gamma, 0);
  });

  test('options.profile on every method: not an integer, negative, past the end; messages name the method', async () => {
    const params = small();
    const ema = await createEma(params, { recipe: 'power', sigmaRel: [0.05, 0.1, 0.2] });
    ema.update(params);
    params[0].data.set([4, 5, 6]);
    ema.update(params, { samples: 3 });
    const before = observe(ema);
    const training = params.map((param) => param.data.slice());
    const which = 'this EMA keeps 3 profiles, 0 to 2';
    const calls = {
      shadow: (options) => ema.shadow('w', options),
      copyTo: (options) => ema.copyTo(params, options),
      stateDict: (options) => ema.stateDict(options),
      save: (options) => ema.save(options),
    };
    for (const [method, call] of Object.entries(calls)) {
      for (const [profile, got] of [[1.5, 'number 1.5'], ['1', 'the string "1"'], [null, 'null'], [NaN, 'number NaN'], [1n, 'bigint 1n'], [true, 'boolean true']]) {
        assert.throws(() => call({ profile }), { name: 'TypeError', message: `ema-wasm: ${method}: options.profile must be an integer (${which}), got ${got}` }, `${method} ${String(profile)}`);
      }
      for (const profile of [-1, 3, 16, 2 ** 53]) {
        assert.throws(() => call({ profile }), { name: 'RangeError', message: `ema-wasm: ${method}: options.profile must be a profile's index (${which}), got ${profile}` }, `${method} ${profile}`);
      }
      assert.throws(() => call({ profil: 1 }), { name: 'TypeError', message: new RegExp(`^ema-wasm: ${method}: unknown option 'profil'; expected .*profile`) });
    }
    await assert.rejects(ema.withEma(params, () => assert.fail('fn must not run'), { profile: 3 }), {
      name: 'RangeError', message: `ema-wasm: withEma: options.profile must be a profile's index (${which}), got 3`,
    });
    await assert.rejects(ema.withEma(params, () => assert.fail('fn must not run'), { profile: 0.5 }), {
      name: 'TypeError', message: `ema-wasm: withEma: options.profile must be an integer (${which}), got number 0.5`,
    });
    assert.deepEqual(observe(ema), before, 'refusals change nothing');
    params.forEach((param, i) => assertSameBits(param.data, training[i], `'${param.name}' untouched`));

    const resident = await createEma(small(), { recipe: 'power', gamma: [1, 2, 3], resident: true });
    const residentBefore = resident.param('w').slice();
    resident.update();
    assert.throws(() => resident.copyTo({ profile: 3 }), { name: 'RangeError', message: `ema-wasm: copyTo: options.profile must be a profile's index (${which}), got 3` });
    assert.throws(() => resident.copyTo({ profile: -0.5 }), { name: 'TypeError', message: `ema-wasm: copyTo: options.profile must be an integer (${which}), got number -0.5` });
    await assert.rejects(resident.withEma(() => assert.fail('fn must not run'), { profile: 7 }), {
      name: 'RangeError', message: `ema-wasm: withEma: options.profile must be a profile's index (${which}), got 7`,
    });
    assertSameBits(resident.param('w'), residentBefore, 'the resident parameters are untouched');
  });

  test('a recipe other than power keeps one profile: only profile 0 is accepted', async () => {
    const params = small();
    for (const [recipe, options] of [['litema', {}], ['diffusers', {}], ['power', { sigmaRel: 0.1 }], ['power', { gamma: [4] }]]) {
      const ema = await createEma(params, { recipe, ...options });
      ema.update(params);
      assert.equal(ema.profiles === null, recipe !== 'power', `${recipe}: profiles`);
      assertSameBits(ema.shadow('w', { profile: 0 }), ema.shadow('w'), `${recipe}: shadow({ profile: 0 })`);
      assert.deepEqual(ema.stateDict({ profile: 0 }), ema.stateDict(), `${recipe}: stateDict({ profile: 0 })`);
      ema.copyTo(params, { profile: 0 });
      await ema.withEma(params, () => {}, { profile: 0 });
      const message = (method, got) => `ema-wasm: ${method}: options.profile must be a profile's index (this EMA keeps one profile, 0), got ${got}`;
      assert.throws(() => ema.shadow('w', { profile: 1 }), { name: 'RangeError', message: message('shadow', 1) });
      assert.throws(() => ema.copyTo(params, { profile: 1 }), { name: 'RangeError', message: message('copyTo', 1) });
      assert.throws(() => ema.stateDict({ profile: -1 }), { name: 'RangeError', message: message('stateDict', -1) });
      assert.throws(() => ema.save({ profile: 1 }), { name: 'RangeError', message: message('save', 1) });
      await assert.rejects(ema.withEma(params, () => {}, { profile: 1 }), { name: 'RangeError', message: message('withEma', 1) });
      assert.throws(() => ema.shadow('w', { profile: 0.5 }), {
        name: 'TypeError', message: 'ema-wasm: shadow: options.profile must be an integer (this EMA keeps one profile, 0), got number 0.5',
      });
    }
  });

  test('save({ profile: 0 }) of a one-profile EMA is save()', async () => {
    const params = small();
    for (const [recipe, options] of [['litema', {}], ['power', { sigmaRel: 0.1 }], ['diffusers', {}], ['timm', {}]]) {
      const ema = await createEma(params, { recipe, ...options });
      ema.update(params);
      assert.deepEqual(ema.save({ profile: 0 }), ema.save(), `${recipe} ${JSON.stringify(options)}: save({ profile: 0 })`);
    }
  });
});

for (const simd of BUILDS) {
  describe(`states of several profiles, ${buildName(simd)} build`, () => {
    /** A K-profile EMA after 9 uneven steps, and its model. */
    async function trained(seed, options = { sigmaRel: [0.05, 0.1, 0.2] }) {
      const params = model(seed);
      const ema = await createEma(params, { recipe: 'power', batchSize: 7, simd, ...options });
      for (let step = 1; step <= 9; step++) {
        train(params, step);
        ema.update(params, updateOptions(step));
      }
      return { params, ema, names: trackedNames(params) };
    }

    /** Steps every EMA from step `from` on and compares each one's profiles with the first's. */
    function continueTogether(params, names, [reference, ...others], from, pairs) {
      for (let step = from; step < from + 8; step++) {
        train(params, step);
        const expected = reference.update(params, updateOptions(step));
        others.forEach((ema, i) => {
          const where = `step ${step}, ${pairs[i].label}`;
          const result = ema.update(params, updateOptions(step));
          assert.equal(result.counter, expected.counter, `${where}: counter`);
          assert.equal(ema.steps, reference.steps, `${where}: steps`);
          const profiles = pairs[i].profile === undefined ? expected.profiles : [expected.profiles?.[pairs[i].profile] ?? expected];
          const got = result.profiles ?? [{ decay: result.decay, weight: result.weight }];
          assert.deepEqual(got, profiles, `${where}: each profile's decay and weight`);
          if (step % 3 === 0 || step === from + 7) {
            const count = pairs[i].profile === undefined ? reference.profiles.length : 1;
            for (let k = 0; k < count; k++) {
              const referenceProfile = pairs[i].profile ?? k;
              for (const name of names) {
                assertSameBits(ema.shadow(name, { profile: k }), reference.shadow(name, { profile: referenceProfile }), `${where}: '${name}' of profile ${k}`);
              }
            }
          }
        });
      }
    }

    test('stateDict() and save() of 3 profiles: loadEma, loadStateDict and loadState continue bit for bit', async () => {
      const { params, ema, names } = await trained(11);
      const state = ema.stateDict();
      assert.deepEqual([...state.keys()].slice(0, 5), ['samples', 'sigma_rel', 'gamma', 'batch_size', 'steps']);
      assert.deepEqual(state.get('sigma_rel'), Float64Array.of(0.05, 0.1, 0.2));
      assert.deepEqual(state.get('gamma'), Float64Array.from(ema.profiles, ({ gamma }) => gamma));
      assert.deepEqual(state.get('steps'), BigInt64Array.of(9n));
      assert.deepEqual(state.get('samples'), BigInt64Array.of(BigInt(ema.counter)));
      assert.deepEqual([...state.keys()].slice(5), [0, 1, 2].flatMap((k) => names.map((name) => `profiles.${k}.${name}`)));
      const bytes = ema.save();

      const loaded = await loadEma(bytes, { simd });
      assert.deepEqual(loaded.profiles, ema.profiles);
      assert.deepEqual(loaded.options, ema.options);
      assert.deepEqual(loaded.names, names);
      assert.equal(loaded.counter, ema.counter);
      assert.equal(loaded.steps, 9);
      // Fresh EMAs of 3 other widths (gamma lists even) and other weights take the state's.
      const byDict = await createEma(model(99), { recipe: 'power', gamma: [1, 2, 3], batchSize: 3, simd });
      byDict.loadStateDict(state);
      const byFile = await createEma(model(98), { recipe: 'power', sigmaRel: [0.25, 0.15, 0.01], simd });
      await byFile.loadState(bytes);
      for (const other of [byDict, byFile]) {
        assert.deepEqual(other.profiles, ema.profiles);
        assert.deepEqual(other.options, ema.options);
        assert.equal(other.counter, ema.counter);
        assert.equal(other.steps, 9);
        for (let k = 0; k < 3; k++) for (const name of names) assertSameBits(other.shadow(name, { profile: k }), ema.shadow(name, { profile: k }), `'${name}' of profile ${k}`);
      }
      continueTogether(params, names, [ema, loaded, byDict, byFile], 10, [{ label: 'loadEma' }, { label: 'loadStateDict' }, { label: 'loadState' }]);
      assert.equal(loaded.steps, 17);
    });

    test('save({ profile: k }) and stateDict({ profile: k }): a one-profile EMA equal to profile k, continuing bit for bit', async () => {
      const { params, ema, names } = await trained(21, { gamma: [0, 6.94, 16.97] });
      const ones = [];
      const pairs = [];
      for (let k = 0; k < 3; k++) {
        const state = ema.stateDict({ profile: k });
        assert.deepEqual([...state.keys()], ['samples', 'sigma_rel', 'gamma', 'batch_size', 'steps', ...names]);
        assert.deepEqual(state.get('gamma'), Float64Array.of(ema.profiles[k].gamma));
        const one = await loadEma(ema.save({ profile: k }), { simd });
        assert.deepEqual(one.profiles, [ema.profiles[k]]);
        assert.deepEqual(one.options, { sigmaRel: null, gamma: ema.profiles[k].gamma, batchSize: 7 });
        assert.equal(one.counter, ema.counter);
        assert.equal(one.steps, 9);
        for (const name of names) assertSameBits(one.shadow(name), ema.shadow(name, { profile: k }), `save({ profile: ${k} }): '${name}'`);
        const byDict = await createEma(model(5), { recipe: 'power', sigmaRel: 0.1, simd });
        byDict.loadStateDict(state);
        assert.deepEqual(byDict.profiles, [ema.profiles[k]]);
        assert.equal(byDict.steps, 9);
        ones.push(one, byDict);
        pairs.push({ label: `loadEma(save({ profile: ${k} }))`, profile: k }, { label: `loadStateDict(stateDict({ profile: ${k} }))`, profile: k });
      }
      continueTogether(params, names, [ema, ...ones], 10, pairs);
    });

    test('steps counts every update, apart from the samples, and is saved', async () => {
      const params = [{ name: 'w', data: Float32Array.of(1, 2) }];
      const ema = await createEma(params, { recipe: 'power', sigmaRel: [0.05, 0.1], batchSize: 5, simd });
      assert.equal(ema.steps, 0);
      assert.equal(ema.counter, 0);
      for (const [samples, counter] of [[undefined, 5], [1, 6], [100, 106], [undefined, 111]]) {
        ema.update(params, samples === undefined ? undefined : { samples });
        assert.equal(ema.counter, counter);
      }
      assert.equal(ema.steps, 4);
      assert.deepEqual(ema.stateDict().get('steps'), BigInt64Array.of(4n));
      assert.equal((await loadEma(ema.save(), { simd })).steps, 4);
      assert.equal((await loadEma(ema.save({ profile: 1 }), { simd })).steps, 4);
      // A state with its own steps sets them.
      const state = ema.stateDict();
      state.set('steps', BigInt64Array.of(100n));
      ema.loadStateDict(state);
      assert.equal(ema.steps, 100);
      ema.update(params);
      assert.equal(ema.steps, 101);
      // More steps than samples is no power EMA's state: refused, nothing changed.
      state.set('steps', BigInt64Array.of(1234n));
      assert.throws(() => ema.loadStateDict(state), {
        name: 'RangeError', message: 'ema-wasm: loadStateDict: the state has 111 samples after 1234 steps; each step brings one or more samples',
      });
      assert.equal(ema.steps, 101);
      // Only steps that averaged or copied count (ema-pytorch's update_every skips).
      const skipping = await createEma(params, { recipe: 'ema-pytorch', updateAfterStep: 0, updateEvery: 3, simd });
      const actions = Array.from({ length: 7 }, () => skipping.update(params).action);
      assert.equal(skipping.steps, actions.filter((action) => action !== 'skipped').length);
      assert.ok(actions.includes('skipped') && skipping.steps < 7, actions.join());
    });

    test('refused states leave the EMA as it was, with messages that say why', async () => {
      const params = [{ name: 'w', data: Float32Array.of(1, 2, 3) }, { name: 'b', data: Float32Array.of(4) }];
      const ema = await createEma(params, { recipe: 'power', sigmaRel: [0.05, 0.1, 0.2], simd });
      const one = await createEma(params, { recipe: 'power', sigmaRel: 0.1, simd });
      const two = await createEma(params, { recipe: 'power', gamma: [1, 2], simd });
      for (const [step, values] of [[1, [1, 2, 3, 4]], [2, [5, -6, 7, 8]], [3, [0.5, 0.25, -1, 2]]]) {
        params[0].data.set(values.slice(0, 3));
        params[1].data[0] = values[3];
        for (const each of [ema, one, two]) each.update(params, { samples: step });
      }
      const state = ema.stateDict();
      const bytes = ema.save();
      const edited = (edit) => {
        const copy = new Map(state);
        edit(copy);
        return copy;
      };
      const renamed = (from, to) => edited((copy) => {
        const value = copy.get(from);
        copy.delete(from);
        copy.set(to, value);
      });
      const several = 'the state holds 3 profiles, so each shadow is under \'profiles.<k>.\' with k from 0 to 2';
      const refusals = [
        [one, () => one.loadStateDict(state), 'ema-wasm: loadStateDict: the state holds 3 profiles; this EMA keeps 1'],
        [one, () => one.loadState(bytes), 'ema-wasm: loadState: the state holds 3 profiles; this EMA keeps 1'],
        [two, () => two.loadStateDict(state), 'ema-wasm: loadStateDict: the state holds 3 profiles; this EMA keeps 2'],
        [ema, () => ema.loadStateDict(one.stateDict()),
          'ema-wasm: loadStateDict: the state holds 1 profile; this EMA keeps 3 (save one profile of several with save({ profile }) / stateDict({ profile }), and load it into a one-profile EMA)'],
        [ema, () => ema.loadState(one.save()),
          'ema-wasm: loadState: the state holds 1 profile; this EMA keeps 3 (save one profile of several with save({ profile }) / stateDict({ profile }), and load it into a one-profile EMA)'],
        [ema, () => ema.loadStateDict(ema.stateDict({ profile: 2 })),
          'ema-wasm: loadStateDict: the state holds 1 profile; this EMA keeps 3 (save one profile of several with save({ profile }) / stateDict({ profile }), and load it into a one-profile EMA)'],
        [ema, () => ema.loadStateDict(edited((copy) => copy.set('gamma', copy.get('gamma').slice(0, 2)))), "ema-wasm: loadStateDict: state 'gamma' holds 2 profiles; 'sigma_rel' holds 3"],
        [ema, () => ema.loadStateDict(edited((copy) => copy.set('gamma', copy.get('gamma').slice(0, 1)))), "ema-wasm: loadStateDict: state 'gamma' holds 1 profile; 'sigma_rel' holds 3"],
        [ema, () => ema.loadStateDict(edited((copy) => copy.set('sigma_rel', Float64Array.of(0.1, 0.2)))), "ema-wasm: loadStateDict: state 'gamma' holds 3 profiles; 'sigma_rel' holds 2"],
        [ema, () => ema.loadStateDict(renamed('profiles.1.w', 'w')), `ema-wasm: loadStateDict: ${several}; got 'w'`],
        [ema, () => ema.loadStateDict(renamed('profiles.1.w', 'profiles.3.w')), `ema-wasm: loadStateDict: ${several}; got 'profiles.3.w'`],
        [ema, () => ema.loadStateDict(renamed('profiles.1.w', 'profiles.01.w')), `ema-wasm: loadStateDict: ${several}; got 'profiles.01.w'`],
        [ema, () => ema.loadStateDict(renamed('profiles.2.b', 'profile.2.b')), `ema-wasm: loadStateDict: ${several}; got 'profile.2.b'`],
        [ema, () => ema.loadStateDict(edited((copy) => copy.delete('profiles.2.w'))), "ema-wasm: loadStateDict: missing keys 'profiles.2.w' (pass strict: false to load a part)"],
        [ema, () => ema.loadStateDict(edited((copy) => copy.set('profiles.2.w', Float32Array.of(1, 2)))),
          "ema-wasm: loadStateDict: 'profiles.2.w' has 2 elements; the shadow of 'profiles.2.w' has 3"],
        [ema, () => ema.loadStateDict(edited((copy) => copy.set('profiles.1.x', Float32Array.of(1)))), "ema-wasm: loadStateDict: unexpected keys 'profiles.1.x' (pass strict: false to ignore them)"],
        [ema, () => ema.loadStateDict(edited((copy) => copy.set('steps', BigInt64Array.of(-1n)))), "ema-wasm: loadStateDict: state 'steps' must be an integer, 0 or more, got -1"],
        [ema, () => ema.loadStateDict(edited((copy) => copy.set('sigma_rel', Float64Array.of(0.05, 0.5, 0.2)))),
          "ema-wasm: loadStateDict: state 'sigma_rel' must be 0 (gamma given) or a number in [0.000001, 0.28867513459481287], got 0.5"],
        [ema, () => ema.loadStateDict(edited((copy) => copy.set('sigma_rel', new Float64Array(17).fill(0.1)))),
          "ema-wasm: loadStateDict: state 'sigma_rel' must hold one value or one per profile (2 to 16), got a Float64Array of 17"],
      ];
      for (const [target, call, message] of refusals) {
        const before = observe(target);
        try {
          await call();
          assert.fail(`no refusal; expected: ${message}`);
        } catch (error) {
          assert.equal(error.message, message);
        }
        assert.deepEqual(observe(target), before, `unchanged after: ${message}`);
      }
      // Not strict: a part of one profile loads, and only that part changes.
      const partial = new Map([['profiles.1.w', Float32Array.of(9, 9, 9)], ['sigma_rel', state.get('sigma_rel')]]);
      const loadedBefore = observe(ema);
      ema.loadStateDict(partial, { strict: false });
      assertSameBits(ema.shadow('w', { profile: 1 }), Float32Array.of(9, 9, 9), 'the part loaded');
      assert.deepEqual(observe(ema).state.filter(([key]) => key !== 'profiles.1.w'), loadedBefore.state.filter(([key]) => key !== 'profiles.1.w'));
    });
  });
}

describe('hostile options: read once, each value used as it was checked', () => {
  const small = () => [{ name: 'w', data: Float32Array.of(1, 2, 3) }];

  test('a Proxy list of widths: its length and each element are read once', async () => {
    const reads = new Map();
    const count = (key) => reads.set(key, (reads.get(key) ?? 0) + 1);
    const widths = new Proxy([0.05, 0.1], {
      get(target, key, receiver) {
        if (typeof key === 'string') count(key);
        // A second read of an element would see a width out of range.
        if ((key === '0' || key === '1') && reads.get(key) > 1) return 0.9;
        return Reflect.get(target, key, receiver);
      },
    });
    const ema = await createEma(small(), { recipe: 'power', sigmaRel: widths });
    assert.deepEqual(ema.profiles.map(({ sigmaRel }) => sigmaRel), [0.05, 0.1]);
    assert.deepEqual(ema.options.sigmaRel, [0.05, 0.1]);
    assert.equal(reads.get('length'), 1, 'length read once');
    assert.equal(reads.get('0'), 1, 'element 0 read once');
    assert.equal(reads.get('1'), 1, 'element 1 read once');
    // The EMA keeps its own copy: the caller's list may change.
    widths[0] = 0.2;
    assert.equal(ema.profiles[0].sigmaRel, 0.05);

    // A list claiming 2^32 - 1 widths is refused from its length alone.
    const huge = new Proxy([], { get: (target, key) => (key === 'length' ? 2 ** 32 - 1 : assert.fail(`read ${String(key)}`)) });
    await assert.rejects(createEma(small(), { recipe: 'power', gamma: huge }), {
      name: 'RangeError', message: 'ema-wasm: createEma: options.gamma lists 4294967295 profiles; give 1 to 16 (EMA_MAX_PROFILES)',
    });
  });

  test('getters: an element getter and an option getter run once; a throwing one creates nothing', async () => {
    let elementReads = 0;
    const gammas = [1, 2, 3];
    Object.defineProperty(gammas, 1, { get: () => (++elementReads === 1 ? 2 : -5), enumerable: true });
    let optionReads = 0;
    const options = {
      recipe: 'power',
      get gamma() {
        optionReads++;
        return optionReads === 1 ? gammas : 'not a list';
      },
    };
    const ema = await createEma(small(), options);
    assert.deepEqual(ema.profiles.map(({ gamma }) => gamma), [1, 2, 3]);
    assert.equal(elementReads, 1);
    assert.equal(optionReads, 1);
    const throwing = [0.1];
    Object.defineProperty(throwing, 0, { get: () => { throw new Error('no width'); } });
    await assert.rejects(createEma(small(), { recipe: 'power', sigmaRel: throwing }), /no width/);
  });

  test('options.profile behind a getter or a Proxy is read once and that value is used', async () => {
    const params = small();
    const ema = await createEma(params, { recipe: 'power', sigmaRel: [0.05, 0.2] });
    ema.update(params);
    params[0].data.set([7, 8, 9]);
    ema.update(params);
    const shadows = [0, 1].map((k) => ema.shadow('w', { profile: k }));
    assert.notDeepEqual(shadows[0], shadows[1]);
    /** { profile } that gives 1 the first time and an index past the end after. */
    const shifty = () => {
      const state = { reads: 0 };
      state.options = { get profile() { return ++state.reads === 1 ? 1 : 5; } };
      return state;
    };
    const checks = {
      shadow: (options) => assertSameBits(ema.shadow('w', options), shadows[1], 'shadow'),
      stateDict: (options) => assert.deepEqual(ema.stateDict(options).get('sigma_rel'), Float64Array.of(0.2)),
      save: (options) => assert.ok(ema.save(options) instanceof Uint8Array),
      copyTo: (options) => {
        const target = [{ name: 'w', data: new Float32Array(3) }];
        ema.copyTo(target, options);
        assertSameBits(target[0].data, shadows[1], 'copyTo');
      },
    };
    for (const [method, check] of Object.entries(checks)) {
      const state = shifty();
      check(state.options);
      assert.equal(state.reads, 1, `${method}: profile read once`);
    }
    const state = shifty();
    const target = [{ name: 'w', data: Float32Array.of(1, 1, 1) }];
    const seen = await ema.withEma(target, () => target[0].data.slice(), state.options);
    assertSameBits(seen, shadows[1], 'withEma');
    assert.equal(state.reads, 1, 'withEma: profile read once');

    let proxyReads = 0;
    const proxy = new Proxy({ profile: 1 }, { get: (t, key, r) => { if (key === 'profile') proxyReads++; return Reflect.get(t, key, r); } });
    assertSameBits(ema.shadow('w', proxy), shadows[1], 'shadow, Proxy options');
    assert.equal(proxyReads, 1, 'shadow: a Proxy\'s profile read once');
  });

  test('a profile getter that disposes the EMA: the call is refused and nothing is written', async () => {
    for (const method of ['copyTo', 'shadow', 'save', 'stateDict']) {
      const params = small();
      const ema = await createEma(params, { recipe: 'power', gamma: [1, 2] });
      ema.update(params);
      const target = [{ name: 'w', data: Float32Array.of(-1, -1, -1) }];
      const options = { get profile() { ema.dispose(); return 1; } };
      const call = { copyTo: () => ema.copyTo(target, options), shadow: () => ema.shadow('w', options), save: () => ema.save(options), stateDict: () => ema.stateDict(options) }[method];
      assert.throws(call, { name: 'Error', message: `ema-wasm: ${method}: this EMA was disposed; create a new one` }, method);
      assertSameBits(target[0].data, Float32Array.of(-1, -1, -1), `${method}: nothing written`);
    }
  });
});

describe('review fixes: widths, resets and states that do not hold together', () => {
  const params = () => ({ w: Float32Array.of(1, 2, 3) });

  test('sigmaRel has a floor of 1e-6 (EMA_MIN_SIGMA_REL): narrower widths are no EMA and overflow gamma', async () => {
    const ema = await createEma(params(), { recipe: 'power', sigmaRel: 1e-6, simd: false });
    assert.ok(ema.profiles[0].gamma > 9e5 && ema.profiles[0].gamma < 1.1e6, `gamma ${ema.profiles[0].gamma}`);
    await assert.rejects(createEma(params(), { recipe: 'power', sigmaRel: [0.05, 9e-7], simd: false }), {
      name: 'RangeError', message: /options\.sigmaRel\[1\] must be a number in \[0\.000001, 0\.28867513459481287\]/,
    });
  });

  test('a power EMA refuses resetNumUpdates: its samples are the profiles\' time axis', async () => {
    const p = params();
    const ema = await createEma(p, { recipe: 'power', sigmaRel: [0.05, 0.1], simd: false });
    ema.update(p);
    assert.throws(() => ema.resetNumUpdates(), { name: 'Error', message: /a power EMA's sample count is its profiles' time axis/ });
    assert.equal(ema.counter, 1);
    assert.equal(ema.steps, 1);
  });

  test("a state's gamma must be its sigma_rel's; a gamma alone sets the width by gamma", async () => {
    const p = params();
    const ema = await createEma(p, { recipe: 'power', sigmaRel: [0.05, 0.1], simd: false });
    ema.update(p);
    const state = ema.stateDict();
    state.set('gamma', Float64Array.of(16.97219860230345, 3));
    assert.throws(() => ema.loadStateDict(state), {
      name: 'Error', message: /state 'gamma' 3 is the profile of sigma_rel 0\.16\d*, not of state 'sigma_rel' 0\.1 \(profile 1\)/,
    });
    assert.deepEqual(ema.profiles.map(({ sigmaRel }) => sigmaRel), [0.05, 0.1], 'unchanged');
    ema.loadStateDict(new Map([['gamma', Float64Array.of(7, 2)]]), { strict: false });
    assert.deepEqual(ema.profiles, [{ sigmaRel: null, gamma: 7 }, { sigmaRel: null, gamma: 2 }]);
    assert.deepEqual(ema.options.gamma, [7, 2]);
  });

  test("loadEma's sigmaRel or gamma replaces the file's widths; the profile count must match", async () => {
    const p = params();
    const two = await createEma(p, { recipe: 'power', sigmaRel: [0.05, 0.1], simd: false });
    two.update(p);
    two.update(p);
    const wider = await loadEma(two.save(), { sigmaRel: [0.2, 0.25], simd: false });
    assert.deepEqual(wider.profiles.map(({ sigmaRel }) => sigmaRel), [0.2, 0.25]);
    assertSameBits(wider.shadow('w', { profile: 1 }), two.shadow('w', { profile: 1 }), 'the shadows are the file\'s');
    const one = await createEma(p, { recipe: 'power', sigmaRel: 0.1, simd: false });
    one.update(p);
    assert.deepEqual((await loadEma(one.save(), { gamma: 1, simd: false })).profiles, [{ sigmaRel: null, gamma: 1 }]);
    await assert.rejects(loadEma(two.save(), { sigmaRel: 0.2, simd: false }), {
      name: 'Error', message: 'ema-wasm: loadEma: options.sigmaRel gives 1 profile; the file holds 2',
    });
  });
});
