// Checkpoints: state dicts and safetensors files, both ways between this
// package and PyTorch's LitEma, atomic files, and broken input that must be
// refused with the EMA left exactly as it was.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { createEma, loadEma } from '../../js/index.js';
import { loadEmaFile, loadEmaStateFile, saveEmaFile } from '../../js/node.js';
import { bitsToFloat, firstBitDifference, hex, readFixtures } from './fixture.js';
import { BUILDS, buildName, randomArray, snapshot } from './helpers.js';

const interop = fileURLToPath(new URL('../fixtures/interop/', import.meta.url));
const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const readInterop = (name) => new Uint8Array(readFileSync(join(interop, name)));
const [continuation] = readFixtures(join(interop, 'litema-continue.txt'));
const SYSTEM_PYTHON = '/usr/bin/python3';

function assertBitsEqual(actual, expected, where) {
  const index = firstBitDifference(actual, expected);
  assert.equal(index, -1, index === -1 ? '' : `${where}: element ${index} is ${hex(actual[index])}, expected ${hex(expected[index])}`);
}

async function sampleEma(simd, options = {}) {
  const params = [
    { name: 'model.diffusion_model.out.0.weight', data: randomArray(12, 1), shape: [3, 4] },
    { name: 'model.diffusion_model.out.0.bias', data: randomArray(3, 2) },
    { name: 'frozen.table', data: randomArray(5, 3), trainable: false },
    { name: 'über.gewicht', data: randomArray(70000, 4), shape: [70000] },
  ];
  const ema = await createEma(params, { decay: 0.995, simd, ...options });
  for (let step = 0; step < 3; step++) {
    params.forEach((p, i) => p.data.set(randomArray(p.data.length, 10 * step + i)));
    ema.update(params);
  }
  return { ema, params };
}

/** A safetensors file from a header object and raw data bytes. */
function makeFile(header, data = new Uint8Array(0)) {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const file = new Uint8Array(8 + json.length + data.length);
  new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
  file.set(json, 8);
  file.set(data, 8 + json.length);
  return file;
}

for (const simd of BUILDS) {
  describe(`safetensors round trips, ${buildName(simd)} build`, () => {
    for (const prefix of ['', 'model_ema.']) {
      test(`save then loadEma restores names, shapes, decay, counter and every bit (prefix '${prefix}')`, async () => {
        const { ema } = await sampleEma(simd);
        const bytes = ema.save({ prefix, metadata: { run: 'test' } });
        const back = await loadEma(bytes, { prefix, simd });
        assert.deepEqual(back.names, ema.names);
        assert.equal(back.decay, ema.decay);
        assert.equal(back.numUpdates, 3);
        assert.deepEqual(back.shape('model.diffusion_model.out.0.weight'), [3, 4]);
        for (const name of ema.names) assertBitsEqual(back.shadow(name), ema.shadow(name), name);
        assert.deepEqual(back.stateDict(), ema.stateDict());
      });
    }

    test('warmup off (-1) survives the round trip', async () => {
      const { ema } = await sampleEma(simd, { useNumUpdates: false });
      const back = await loadEma(ema.save(), { simd });
      assert.equal(back.numUpdates, -1);
    });

    test('loadState into an existing EMA replaces its whole state', async () => {
      const { ema } = await sampleEma(simd);
      const { ema: other } = await sampleEma(simd, { decay: 0.5 });
      other.update([...other.names.map((name) => ({ name, data: randomArray(other.shadow(name).length, 99) }))]);
      await other.loadState(ema.save({ prefix: 'ema.' }), { prefix: 'ema.' });
      assert.deepEqual(other.stateDict(), ema.stateDict());
    });

    test('loadStateDict takes what stateDict gives, strict and not', async () => {
      const { ema } = await sampleEma(simd);
      const { ema: other } = await sampleEma(simd, { decay: 0.1 });
      other.loadStateDict(ema.stateDict());
      assert.deepEqual(other.stateDict(), ema.stateDict());
      const partial = new Map([['num_updates', Int32Array.of(42)], ['unrelated', new Float32Array(2)]]);
      other.loadStateDict(partial, { strict: false });
      assert.equal(other.numUpdates, 42);
      other.loadStateDict({ decay: 0.25, num_updates: -1, ...Object.fromEntries([...ema.stateDict()].slice(2)) });
      assert.equal(other.decay, 0.25);
      assert.equal(other.numUpdates, -1);
    });
  });

  describe(`PyTorch interop, ${buildName(simd)} build`, () => {
    for (const [file, prefix] of [['litema-state.safetensors', ''], ['sd-like-checkpoint.safetensors', 'model_ema.']]) {
      test(`loads ${file} (prefix '${prefix}') and continues exactly as PyTorch does`, async () => {
        const ema = await loadEma(readInterop(file), { prefix, simd });
        assert.equal(hex(ema.decay), continuation.decayBits.toString(16).padStart(8, '0'));
        assert.equal(ema.numUpdates, 7);
        assert.deepEqual(ema.names, continuation.params.map((p) => p.name));
        continuation.params.forEach((p) => assertBitsEqual(ema.shadow(p.name), p.init, `loaded ${p.name}`));

        const params = continuation.params.map((p) => ({ name: p.name, data: new Float32Array(p.length) }));
        continuation.steps.forEach((step, s) => {
          params.forEach((p, i) => p.data.set(step.values[i]));
          assert.equal(hex(ema.update(params).decay), step.decayBits.toString(16).padStart(8, '0'));
          assert.equal(ema.numUpdates, step.numUpdates);
          continuation.params.forEach((p, i) => assertBitsEqual(ema.shadow(p.name), step.shadows[i], `step ${s + 1} ${p.name}`));
        });
      });
    }

    test("a file PyTorch wrote takes the model's dotted names by LitEma's rule (dots removed), and continues exactly", async () => {
      const ema = await loadEma(readInterop('litema-state.safetensors'), { simd });
      // Any dotted name whose dot-free form is the key, as the model's own names are.
      const dotted = (key) => `${key.slice(0, 5)}.${key.slice(5, 9)}.${key.slice(9)}`;
      const params = continuation.params.map((p) => ({ name: dotted(p.name), data: new Float32Array(p.length) }));
      continuation.steps.forEach((step, s) => {
        params.forEach((p, i) => p.data.set(step.values[i]));
        assert.equal(hex(ema.update(params).decay), step.decayBits.toString(16).padStart(8, '0'));
        continuation.params.forEach((p, i) => assertBitsEqual(ema.shadow(p.name), step.shadows[i], `step ${s + 1} ${p.name}`));
      });
      const written = params.map((p) => ({ name: p.name, data: new Float32Array(p.data.length) }));
      ema.copyTo(written);
      continuation.params.forEach((p, i) => assertBitsEqual(written[i].data, ema.shadow(p.name), `copyTo ${p.name}`));
      // Two names that stand for one key are refused, with nothing changed.
      const [first] = continuation.params;
      const twice = [...params, { name: `${first.name.slice(0, 3)}.${first.name.slice(3)}`, data: new Float32Array(first.length) }];
      const before = ema.numUpdates;
      assert.throws(() => ema.update(twice), {
        message: new RegExp(`update: parameters '${dotted(first.name).replace(/\./g, '\\.')}' and '.*' both stand for '${first.name}' once the dots are removed`),
      });
      assert.equal(ema.numUpdates, before);
    });

    test('an EMA created with dotted names does not take their dot-free forms', async () => {
      const ema = await createEma({ 'a.b': new Float32Array(2) }, { simd });
      assert.throws(() => ema.update({ ab: new Float32Array(2) }), { message: /unknown trainable parameters 'ab'/ });
      const loaded = await loadEma(ema.save(), { simd }); // the file records the dotted names
      assert.throws(() => loaded.update({ ab: new Float32Array(2) }), { message: /unknown trainable parameters 'ab'/ });
    });

    test('a file this package saves is read back in Python and equals PyTorch\'s state', async () => {
      const ema = await loadEma(readInterop('litema-state.safetensors'), { simd });
      const params = continuation.params.map((p) => ({ name: p.name, data: new Float32Array(p.length) }));
      for (const step of continuation.steps) {
        params.forEach((p, i) => p.data.set(step.values[i]));
        ema.update(params);
      }
      const work = mkdtempSync(join(tmpdir(), 'ema-wasm-py-'));
      try {
        for (const prefix of ['', 'model_ema.']) {
          const saved = join(work, `saved${prefix}.safetensors`);
          writeFileSync(saved, ema.save({ prefix }));
          const python = existsSync(SYSTEM_PYTHON) ? SYSTEM_PYTHON : 'python3';
          const output = execFileSync(python, [join(fixtures, 'check_saved.py'), saved,
            join(interop, 'litema-continued.safetensors'), '--prefix', prefix], { encoding: 'utf8', stdio: 'pipe' });
          assert.match(output, /6 tensors compared, 0 problems/);
        }
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  });

  describe(`broken files are refused and change nothing, ${buildName(simd)} build`, () => {
    const f32 = (values) => new Uint8Array(Float32Array.from(values).buffer);
    const goodHeader = {
      decay: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
      num_updates: { dtype: 'I32', shape: [], data_offsets: [4, 8] },
    };
    const goodData = new Uint8Array([...f32([0.5]), ...new Uint8Array(Int32Array.of(3).buffer)]);
    const cases = {
      'truncated before the header length': [new Uint8Array(5), /fewer than the 8 bytes/],
      'header length past the end': [(() => { const f = makeFile(goodHeader, goodData); new DataView(f.buffer).setBigUint64(0, 9999n, true); return f; })(), /past the end of the file/],
      'truncated data': [makeFile(goodHeader, goodData).subarray(0, -2), /past the end of the file/],
      'not JSON': [makeFile('{"decay": {', goodData), /not well-formed JSON/],
      'overlapping offsets': [makeFile({ ...goodHeader, num_updates: { dtype: 'I32', shape: [], data_offsets: [2, 6] } }, goodData.subarray(0, 6)), /overlaps/],
      'unknown dtype': [makeFile({ ...goodHeader, decay: { dtype: 'F33', shape: [], data_offsets: [0, 4] } }, goodData), /unknown dtype/],
      'shape mismatch': [makeFile({ ...goodHeader, decay: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, goodData), /shape and dtype/],
      'duplicate keys': [makeFile('{"decay":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"decay":{"dtype":"I32","shape":[],"data_offsets":[4,8]}}', goodData), /duplicate tensor name/],
      'non-UTF-8 name': [(() => { const f = makeFile({ ...goodHeader, 'x\u00ff': { dtype: 'F32', shape: [0], data_offsets: [8, 8] } }, goodData); const at = f.indexOf(0xc3); f[at] = 0xff; return f; })(), /invalid UTF-8/],
      'decay of the wrong dtype': [makeFile({ ...goodHeader, decay: { dtype: 'I32', shape: [], data_offsets: [0, 4] } }, goodData), /'decay' must be a F32 scalar/],
      'decay out of range': [makeFile(goodHeader, new Uint8Array([...f32([1.5]), ...goodData.subarray(4)])), /decay must be in \[0, 1\]/],
    };
    for (const [label, [bytes, pattern]] of Object.entries(cases)) {
      test(label, async () => {
        const { ema } = await sampleEma(simd);
        const before = snapshot(ema);
        await assert.rejects(loadEma(bytes, { simd }), pattern);
        await assert.rejects(ema.loadState(bytes), pattern);
        assert.deepEqual(snapshot(ema), before);
      });
    }

    test('a valid file that does not fit this EMA is refused whole', async () => {
      const { ema } = await sampleEma(simd);
      const before = snapshot(ema);
      const { ema: other } = await createEma({ 'model.diffusion_model.out.0.bias': new Float32Array(4) }, { simd }).then((e) => ({ ema: e }));
      await assert.rejects(ema.loadState(other.save()), /'modeldiffusion_modelout0bias' has 4 elements/);
      await assert.rejects(ema.loadState(other.save(), { strict: false }), /has 4 elements/);
      const state = ema.stateDict();
      state.set('stray', new Float32Array(1));
      assert.throws(() => ema.loadStateDict(state), /unexpected keys 'stray'/);
      state.delete('stray');
      state.delete('decay');
      assert.throws(() => ema.loadStateDict(state), /missing keys 'decay'/);
      assert.throws(() => ema.loadStateDict({ decay: Float64Array.of(0.5) }, { strict: false }), TypeError);
      assert.throws(() => ema.loadStateDict({ num_updates: -2 }, { strict: false }), RangeError);
      assert.throws(() => ema.loadStateDict({ decay: 2 }, { strict: false }), RangeError);
      await assert.rejects(ema.loadState(new Uint8Array(0), { prefix: 3 }), TypeError);
      assert.throws(() => ema.save({ metadata: { n: 1 } }), TypeError);
      assert.throws(() => ema.save({ metadata: { 'ema_wasm.names': '{}' } }), /reserved/);
      assert.deepEqual(snapshot(ema), before);
    });

    test('a PyTorch checkpoint loaded without its prefix says which prefix to use', async () => {
      await assert.rejects(loadEma(readInterop('sd-like-checkpoint.safetensors'), { simd }), /pass prefix: 'model_ema\.'/);
    });
  });
}

describe('files on disk (ema-wasm/node)', () => {
  test('saveEmaFile writes atomically, replaces, and leaves no temporary file', async () => {
    const work = mkdtempSync(join(tmpdir(), 'ema-wasm-file-'));
    try {
      const { ema } = await sampleEma('auto');
      const path = join(work, 'ema.safetensors');
      writeFileSync(path, 'an older file that must be replaced whole');
      const size = await saveEmaFile(ema, path, { prefix: 'model_ema.' });
      assert.deepEqual(readdirSync(work), ['ema.safetensors']);
      assert.equal(readFileSync(path).length, size);
      const back = await loadEmaFile(path, { prefix: 'model_ema.' });
      assert.deepEqual(back.stateDict(), ema.stateDict());
      const { ema: fresh } = await sampleEma('auto', { decay: 0.3 });
      await loadEmaStateFile(fresh, path, { prefix: 'model_ema.' });
      assert.deepEqual(fresh.stateDict(), ema.stateDict());
      await assert.rejects(saveEmaFile(ema, join(work, 'missing-folder', 'x.safetensors')), { code: 'ENOENT' });
      assert.deepEqual(readdirSync(work), ['ema.safetensors']);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

test('continuation fixture parses', () => {
  assert.equal(continuation.steps.length, 5);
  assert.equal(bitsToFloat(continuation.decayBits.toString(16)), Math.fround(0.999));
});

describe('names that are special to JSON or safetensors', () => {
  test("a parameter named '__proto__' round-trips", async () => {
    const ema = await createEma([{ name: '__proto__', data: Float32Array.of(1, 2) }, { name: 'x', data: Float32Array.of(3) }]);
    const back = await loadEma(ema.save());
    assert.deepEqual(back.names, ['__proto__', 'x']);
    assert.deepEqual(Array.from(back.shadow('__proto__')), [1, 2]);
  });

  test("a shadow that would be saved as '__metadata__' is refused, naming the parameter", async () => {
    const ema = await createEma([{ name: '__meta.data__', data: Float32Array.of(1) }]);
    assert.throws(() => ema.save(), /'__meta\.data__' would be saved as '__metadata__'/);
    assert.deepEqual((await loadEma(ema.save({ prefix: 'ema.' }), { prefix: 'ema.' })).names, ['__meta.data__']);
  });

  test('lone surrogates in the prefix or metadata are refused', async () => {
    const ema = await createEma({ w: Float32Array.of(1) });
    assert.throws(() => ema.save({ prefix: 'a\ud800.' }), /options\.prefix is not well-formed/);
    assert.throws(() => ema.save({ metadata: { note: 'x\udc00' } }), /metadata 'note' is not well-formed/);
  });

  test('a names record that is not an object is refused', async () => {
    const ema = await createEma({ w: Float32Array.of(1) });
    const bytes = ema.save();
    const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(bytes.subarray(8, headerEnd));
    const patchedHeader = header.replace('"ema_wasm.names":"{\\"w\\":\\"w\\"}"', '"ema_wasm.names":"null           "');
    assert.notEqual(patchedHeader, header);
    const patched = bytes.slice();
    patched.set(new TextEncoder().encode(patchedHeader), 8);
    await assert.rejects(loadEma(patched), /'ema_wasm\.names' must be a JSON object/);
  });
});
