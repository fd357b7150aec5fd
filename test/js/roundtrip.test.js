// Round trips are total: whatever createEma and save accept, loadEma and
// loadState read back bit for bit, with identical names, shapes and metadata;
// anything that could not be read back is refused up front, at createEma or
// at save, never hours later.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { createEma, loadEma, readMetadata } from '../../js/index.js';
import { shadowKey } from '../../js/names.js';
import { BUILDS, buildName } from './helpers.js';

const SEED = Number(process.env.EMA_WASM_FC_SEED ?? 20261129);
const RUNS = Number(process.env.EMA_WASM_FC_RUNS ?? 60);

function bitsOf(array) {
  return Array.from(new Uint32Array(array.buffer, array.byteOffset, array.length));
}

/** Everything a file carries, as plain data: names, shapes, state bits. */
function contents(ema) {
  return {
    names: ema.names,
    shapes: ema.names.map((name) => ema.shape(name)),
    state: [...ema.stateDict()].map(([key, value]) => [key, bitsOf(value)]),
  };
}

function rejects(promise, ErrorClass, ...parts) {
  return assert.rejects(promise, (error) => {
    assert.equal(error.constructor, ErrorClass, `${error.constructor.name}: ${error.message}`);
    for (const part of parts) assert.ok(error.message.includes(part), `"${error.message}" should mention ${part}`);
    return true;
  });
}

describe('what cannot be read back is refused up front', () => {
  test('names with U+0000 or a lone surrogate are refused at createEma', async () => {
    await rejects(createEma({ 'a\0b': new Float32Array(1) }), Error, 'createEma', 'holds U+0000');
    await rejects(createEma({ 'w\ud800': new Float32Array(1) }), Error, 'createEma', 'not well-formed Unicode');
    await rejects(createEma({ '\udc00.x': new Float32Array(1) }), Error, 'lone surrogate');
    // Untracked names are never saved: no need to refuse them.
    const ema = await createEma([{ name: 'w', data: new Float32Array(1) }, { name: 'x\0', data: new Float32Array(1), trainable: false }]);
    assert.deepEqual(ema.names, ['w']);
  });

  test('a prefix with U+0000 or a lone surrogate, and metadata with a lone surrogate, are refused at save', async () => {
    const ema = await createEma({ w: new Float32Array(1) });
    assert.throws(() => ema.save({ prefix: 'model\0' }), /options\.prefix holds U\+0000/);
    assert.throws(() => ema.save({ prefix: '\ud800' }), /options\.prefix is not well-formed/);
    assert.throws(() => ema.save({ metadata: { note: 'x\udc00' } }), /metadata 'note' is not well-formed/);
    assert.throws(() => ema.save({ metadata: { '\ud800': 'x' } }), /metadata key .* is not well-formed/);
    assert.throws(() => ema.save({ metadata: { n: 1 } }), TypeError);
  });

  test('a header over the loader\'s 100 MB is a RangeError at save', async () => {
    const ema = await createEma({ w: new Float32Array(1) });
    assert.throws(
      () => ema.save({ metadata: { notes: 'x'.repeat(100_000_000) } }),
      (error) => error instanceof RangeError && /header would be 100,000,\d+ bytes .* more than the 100,000,000 bytes loaders read/.test(error.message),
    );
  });

  test('shapes the loader would refuse are refused at createEma', async () => {
    await rejects(
      createEma([{ name: 'w', data: new Float32Array(0), shape: [2 ** 40, 2 ** 40, 0] }]),
      RangeError, "parameter 'w'.shape [1099511627776, 1099511627776, 0] cannot be saved",
    );
    await rejects(createEma([{ name: 'w', data: new Float32Array(1), shape: new Array(33).fill(1) }]), RangeError, 'at most 32');
  });
});

for (const simd of BUILDS) {
  describe(`round trips, ${buildName(simd)} build`, () => {
    test('names that are hard to carry: a leading U+FEFF, astral, JSON escapes, __proto__, dots only in places', async () => {
      const names = ['\ufeffw', '\ufeff', '𝔀.𝔴', 'quote".back\\slash', 'tab\tnewline\n', '__proto__', 'constructor',
        'x.__metadata__', 'ünï.cödé', '\u2028\u2029', '..a..', '10', '2', '0', '4294967295'];
      const params = names.map((name, i) => ({ name, data: Float32Array.of(i, -i, i / 3), shape: [3, 1] }));
      const ema = await createEma(params, { decay: 0.75, simd });
      ema.update(params.map(({ name }, i) => ({ name, data: Float32Array.of(1, 2, i) })));
      for (const prefix of ['', 'model_ema.', '\ufeff', '𝔀']) {
        const bytes = ema.save({ prefix });
        const back = await loadEma(bytes, { prefix, simd });
        assert.deepEqual(contents(back), contents(ema), `prefix ${JSON.stringify(prefix)}`);
        const into = await createEma(params, { simd });
        await into.loadState(bytes, { prefix });
        assert.deepEqual(contents(into), contents(ema));
      }
    });

    test('metadata comes back identical, U+0000 and a leading U+FEFF included', async () => {
      const ema = await createEma({ w: new Float32Array(2) }, { simd });
      const metadata = { step: '12000', nul: 'a\0b', bom: '\ufeffx', '\ufeffkey': '', astral: '𝔀', __proto__key: 'p' };
      Object.defineProperty(metadata, '__proto__', { value: 'own', enumerable: true });
      const read = await readMetadata(ema.save({ metadata }));
      for (const [key, value] of Object.entries(metadata)) assert.equal(read[key], value, key);
      assert.equal(read.format, 'pt');
      assert.equal(read['ema_wasm.names'], JSON.stringify({ w: 'w' }));
    });

    test('extreme state: decay 0, 1 and subnormal; counters -1, 0 and the maximum; empty and zero-length models', async () => {
      for (const decay of [0, 1, 1e-45, 0.9999]) {
        for (const numUpdates of [-1, 0, 2147483637]) {
          const ema = await createEma({ 'a.b': new Float32Array(0), c: Float32Array.of(-0, NaN, Infinity) }, { decay, simd });
          ema.loadStateDict(new Map([['num_updates', Int32Array.of(numUpdates)]]), { strict: false });
          assert.deepEqual(contents(await loadEma(ema.save(), { simd })), contents(ema));
        }
      }
      const empty = await createEma({}, { simd });
      assert.deepEqual(contents(await loadEma(empty.save(), { simd })), contents(empty));
    });

    test('property: any savable model round-trips bit for bit through save and loadEma', async () => {
      const nameArb = fc
        .string({ unit: 'binary', minLength: 1, maxLength: 12 })
        .filter((name) => !name.includes('\0') && name.isWellFormed() && shadowKey(name) !== '' &&
          shadowKey(name) !== 'decay' && shadowKey(name) !== 'num_updates');
      const tensorArb = fc.record({
        dims: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 4 }),
        bits: fc.array(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { maxLength: 81 }),
      });
      const modelArb = fc.uniqueArray(fc.tuple(nameArb, tensorArb), {
        maxLength: 6,
        selector: ([name]) => shadowKey(name),
      });
      const metadataArb = fc.dictionary(
        fc.string({ unit: 'binary', maxLength: 6 }).filter((k) => k.isWellFormed() && !k.startsWith('ema_wasm.')),
        fc.string({ unit: 'binary', maxLength: 8 }).filter((v) => v.isWellFormed()),
        { maxKeys: 3 },
      );
      await fc.assert(
        fc.asyncProperty(modelArb, metadataArb, fc.constantFrom('', 'model_ema.', 'é.'), async (model, metadata, prefix) => {
          const params = model.map(([name, { dims, bits }]) => {
            const length = dims.reduce((a, b) => a * b, 1);
            const data = new Float32Array(length);
            new Uint32Array(data.buffer).set(bits.slice(0, length));
            return { name, data, shape: dims };
          });
          if (params.some(({ name }) => `${prefix}${shadowKey(name)}` === '__metadata__')) return;
          const ema = await createEma(params, { decay: 0.5, simd });
          const bytes = ema.save({ prefix, metadata });
          const back = await loadEma(bytes, { prefix, simd });
          assert.deepEqual(contents(back), contents(ema));
          const read = await readMetadata(bytes);
          for (const [key, value] of Object.entries(metadata)) assert.equal(read[key], value);
          ema.dispose();
          back.dispose();
        }),
        { seed: SEED, numRuns: RUNS },
      );
    });
  });
}
