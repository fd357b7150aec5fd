// The EMA weights people have from other libraries, written by PyTorch runs
// (test/fixtures/generate_interop.py): ema-pytorch's EMA state_dict, a
// diffusers EMA model saved with save_pretrained, timm's EMA state_dict, each
// in test/fixtures/interop/<library>.safetensors. On both builds, loadEma
// reads each file with the run's options (and counter where the library keeps
// it elsewhere), holds exactly the library's EMA state, continues bit for bit
// with the PyTorch run (interop/recipes-continue.txt), and what it then saves
// loads back whole.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { loadEma } from '../../js/index.js';
import { bitsToFloat } from './fixture.js';
import { BUILDS, buildName } from './helpers.js';
import { assertSameBits, assertStepResult, bytesOf, callOptions, FixtureTokens } from './recipe-fixture.js';

const INTEROP = new URL('../fixtures/interop/', import.meta.url);
const readInterop = (name) => new Uint8Array(readFileSync(new URL(name, INTEROP)));

// ---- the fixture ------------------------------------------------------------

const DTYPES = ['f32', 'i64'];
const KINDS = ['param', 'frozen', 'buffer'];
const ACTIONS = ['averaged', 'copied', 'skipped'];

/**
 * Returns [{ id, recipe, file, loadOptions, counter, entries: [{ name, kind,
 * dtype, shape, elements, fileKey }], loaded: [array | null], calls: [{ call,
 * values, action, decayBits, decay, weightBits, counter, shadows }] }]
 * (generate_interop.py documents the format).
 */
function readInteropFixtures() {
  const tokens = new FixtureTokens(readFileSync(new URL('recipes-continue.txt', INTEROP), 'utf8'), 'recipes-continue.txt');
  tokens.expect('emainterop');
  tokens.expect('1');
  const cases = [];
  while (!tokens.done) {
    tokens.expect('case');
    const id = tokens.next();
    tokens.where = `case ${id}`;
    const recipe = tokens.next();
    const file = tokens.next();
    const loadOptions = tokens.json();
    const counter = tokens.int();
    const entryCount = tokens.int();
    const callCount = tokens.int();
    const entries = [];
    for (let e = 0; e < entryCount; e++) {
      tokens.expect('entry');
      const name = tokens.next();
      const kind = tokens.oneOf(KINDS, 'a kind');
      const dtype = tokens.oneOf(DTYPES, 'a dtype');
      const shapeToken = tokens.next();
      const shape = shapeToken === '-' ? [] : shapeToken.split(',').map(Number);
      const elements = shape.reduce((product, d) => product * d, 1);
      entries.push({ name, kind, dtype, shape, elements, length: elements, fileKey: tokens.next() });
    }
    tokens.expect('loaded');
    const loaded = entries.map((entry) => tokens.array(entry, { allowNone: true }));
    const calls = [];
    for (let c = 0; c < callCount; c++) {
      tokens.where = `case ${id}, call ${c + 1}`;
      tokens.expect('call');
      const call = tokens.json();
      const values = entries.map((entry) => tokens.array(entry));
      tokens.expect('result');
      const action = tokens.oneOf(ACTIONS, 'an action');
      tokens.expect('decay');
      const decayBits = BigInt(`0x${tokens.hex(16)}`);
      tokens.expect('weight');
      const weightHex = tokens.hex(8);
      tokens.expect('counter');
      const callCounter = tokens.int();
      tokens.expect('shadows');
      tokens.expect('1');
      const shadows = entries.map((entry) => tokens.array(entry, { allowNone: true }));
      calls.push({
        call,
        values,
        action,
        decayBits,
        decay: new Float64Array(BigUint64Array.of(decayBits).buffer)[0],
        weightBits: Number.parseInt(weightHex, 16),
        weight: bitsToFloat(weightHex),
        counter: callCounter,
        shadows,
      });
    }
    tokens.where = 'the header';
    cases.push({ id, recipe, file, loadOptions, counter, entries, loaded, calls });
  }
  return cases;
}

/** The tensors of a safetensors file, read here independently of js/: name -> { dtype, shape, bytes }. */
function readTensors(file) {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const length = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + length)));
  const data = 8 + length;
  const tensors = new Map();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    tensors.set(name, { dtype: info.dtype, shape: info.shape, bytes: file.slice(data + begin, data + end) });
  }
  return tensors;
}

// ---- comparisons --------------------------------------------------------------

const SAFETENSORS_DTYPE = { f32: 'F32', i64: 'I64' };
const ARRAY_TYPE = { f32: 'Float32Array', i64: 'BigInt64Array' };

/** The model's entries as update() takes them, flagged as the model has them. */
function modelParams(fixture) {
  return fixture.entries.map((entry) => ({
    name: entry.name,
    data: entry.dtype === 'i64' ? new BigInt64Array(entry.elements) : new Float32Array(entry.elements),
    shape: entry.shape,
    trainable: entry.kind !== 'frozen',
    buffer: entry.kind === 'buffer',
  }));
}

function sorted(names) {
  return [...names].sort();
}

/** Checks one continued call's result and shadows against PyTorch's. */
function checkCall(ema, fixture, call, result, where) {
  assertStepResult(result, call, fixture.recipe, where);
  assert.equal(ema.counter, call.counter, `${where}: ema.counter`);
  fixture.entries.forEach((entry, e) => {
    const expected = call.shadows[e];
    if (expected === null) {
      assert.throws(() => ema.shadow(entry.name), /no tracked parameter/, `${where}: '${entry.name}' is not kept`);
    } else {
      assertSameBits(ema.shadow(entry.name), expected, `${where}: shadow of '${entry.name}'`);
    }
  });
}

// ---- the tests ------------------------------------------------------------------

const cases = readInteropFixtures();

test('the interop fixture covers ema-pytorch, diffusers and timm, each file under 50 KB', () => {
  assert.deepEqual(sorted(cases.map((c) => c.recipe)), ['diffusers', 'ema-pytorch', 'timm']);
  for (const fixture of cases) {
    assert.ok(readInterop(fixture.file).length < 50_000, fixture.file);
    const kinds = new Set(fixture.entries.map((e) => `${e.kind} ${e.dtype}`));
    for (const kind of ['param f32', 'frozen f32', 'buffer f32', 'buffer i64']) assert.ok(kinds.has(kind), `${fixture.id}: no ${kind}`);
  }
});

for (const simd of BUILDS) {
  describe(`other libraries' EMA files, ${buildName(simd)} build`, () => {
    for (const fixture of cases) {
      // A library's own file does not say which tensors are buffers or frozen
      // parameters: options.params (the model's entries) does. diffusers needs
      // it (it keeps no buffers); ema-pytorch and timm load right either way.
      const load = (withParams = true) => loadEma(readInterop(fixture.file), {
        recipe: fixture.recipe, ...fixture.loadOptions, simd, ...(withParams ? { params: modelParams(fixture) } : {}),
      });

      test(`${fixture.file}: loadEma holds the library's EMA state, bit for bit`, async () => {
        const ema = await load();
        assert.equal(ema.simd, simd);
        assert.equal(ema.recipe, fixture.recipe);
        assert.equal(ema.counter, fixture.counter, 'the counter the library had');
        for (const [key, value] of Object.entries(fixture.loadOptions)) {
          if (key !== 'counter') assert.deepEqual(ema.options[key], value, `option ${key}`);
        }
        const kept = fixture.entries.filter((_, e) => fixture.loaded[e] !== null).map((entry) => entry.name);
        assert.deepEqual(sorted(ema.names), sorted(kept), 'the names the library keeps');
        const tensors = readTensors(readInterop(fixture.file));
        fixture.entries.forEach((entry, e) => {
          const expected = fixture.loaded[e];
          if (expected === null) {
            assert.throws(() => ema.shadow(entry.name), /no tracked parameter/, `'${entry.name}' is not kept`);
            return;
          }
          const shadow = ema.shadow(entry.name);
          assert.equal(shadow.constructor.name, ARRAY_TYPE[entry.dtype], `${entry.name}: dtype`);
          assert.deepEqual(ema.shape(entry.name), entry.shape, `${entry.name}: shape`);
          assertSameBits(shadow, expected, `loaded '${entry.name}'`);
          const tensor = tensors.get(entry.fileKey);
          assert.equal(tensor.dtype, SAFETENSORS_DTYPE[entry.dtype], `${entry.fileKey}: the file's dtype`);
          assert.deepEqual(tensor.shape, entry.shape, `${entry.fileKey}: the file's shape`);
          assert.deepEqual(bytesOf(shadow), tensor.bytes, `'${entry.name}' equals the file's '${entry.fileKey}'`);
        });
        ema.dispose();
      });

      test(`${fixture.file}: the loaded EMA continues bit for bit with PyTorch, and save() loads back whole`, async () => {
        const ema = await load();
        const params = modelParams(fixture);
        fixture.calls.forEach((call, index) => {
          params.forEach((param, p) => param.data.set(call.values[p]));
          const options = callOptions(call);
          checkCall(ema, fixture, call, ema.update(params, options), `${fixture.id} call ${index + 1}`);
        });

        const back = await loadEma(ema.save(), { simd });
        assert.equal(back.recipe, fixture.recipe);
        assert.deepEqual(back.names, ema.names);
        assert.equal(back.counter, ema.counter);
        assert.deepEqual(back.options, ema.options);
        for (const name of ema.names) {
          assert.deepEqual(back.shape(name), ema.shape(name), `round trip: shape of '${name}'`);
          assertSameBits(back.shadow(name), ema.shadow(name), `round trip: '${name}'`);
        }
        assert.deepEqual(back.stateDict(), ema.stateDict());
        ema.dispose();
        back.dispose();
      });
    }

    test('options.params: needed for diffusers (its file does not say which tensors are buffers), checked against the file', async () => {
      for (const fixture of cases) {
        const bytes = readInterop(fixture.file);
        const kept = fixture.entries.filter((_, e) => fixture.loaded[e] !== null).map((entry) => entry.name);
        const plain = await loadEma(bytes, { recipe: fixture.recipe, ...fixture.loadOptions, simd });
        if (fixture.recipe === 'diffusers') {
          // Without the model's flags every float tensor is taken for a parameter.
          assert.ok(plain.names.length > kept.length, 'the float buffers are taken for parameters');
        } else {
          assert.deepEqual(sorted(plain.names), sorted(kept), `${fixture.id}: the same without params`);
        }
        plain.dispose();
        const params = modelParams(fixture);
        await assert.rejects(
          loadEma(bytes, { recipe: fixture.recipe, ...fixture.loadOptions, simd, params: params.slice(1) }),
          new RegExp(`the file holds '${params[0].name.replaceAll('.', '\\.')}', which options\\.params does not have`),
        );
      }
      await assert.rejects(loadEma(readInterop(cases[0].file), { params: [] }), /a LitEma file carries its own options/);
    });
  });
}
