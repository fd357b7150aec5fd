// Snapshots for post-hoc EMA: ema.snapshot() (js/base-ema.js, js/snapshots.js),
// readSnapshot (js/index.js), and writeSnapshots / readSnapshots
// (ema-wasm/node, js/node.js). One file per profile, named by step and
// profile, with what reconstruction needs in its metadata; its float32
// weights are the profile's shadows bit for bit, its float16 weights their
// binary16 rounding (js/float16.js, checked in float16.test.js); a float32
// snapshot is a one-profile checkpoint that loadEma continues bit for bit.
// Every malformed input is refused with a message that names what is wrong
// (and, from a folder, which file).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { createEma, loadEma, readSnapshot, snapshotName } from '../../js/index.js';
import { float16Bits } from '../../js/float16.js';
import { readSnapshots, writeSnapshots } from '../../js/node.js';
import { BUILDS, buildName, randomArray } from './helpers.js';
import { assertSameBits } from './recipe-fixture.js';

const SIGMA_RELS = [0.05, 0.1, 0.2];

function model(seed) {
  return [
    { name: 'conv.weight', data: randomArray(6, seed), shape: [2, 3] },
    { name: 'conv.bias', data: randomArray(1, seed + 1), shape: [1] },
    { name: 'blocks.0.w', data: randomArray(1025, seed + 2), shape: [5, 205] },
    { name: 'frozen', data: randomArray(2, seed + 3), trainable: false },
  ];
}

function train(params, step) {
  params.forEach((param, i) => param.data.set(randomArray(param.data.length, 101 * step + i)));
}

const SAMPLES = [undefined, 3, 9, undefined, 1, undefined, 2];

/** An EMA of `widths` (batchSize 4) after `steps` uneven steps; samples seen: 4 + 3 + 9 + 4 + 1 + 4 + 2 = 27 after 7. */
async function trained({ simd = 'auto', steps = 7, seed = 1, ...options } = {}) {
  const params = model(seed);
  const ema = await createEma(params, { recipe: 'power', sigmaRel: SIGMA_RELS, batchSize: 4, simd, ...options });
  for (let step = 1; step <= steps; step++) {
    train(params, step);
    const samples = SAMPLES[(step - 1) % SAMPLES.length];
    ema.update(params, samples === undefined ? undefined : { samples });
  }
  return { params, ema };
}

/** The safetensors header of `bytes` (parsed JSON) and where the data starts. */
function headerOf(bytes) {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))), dataStart: 8 + length };
}

/** The file with its header edited by edit(header) (the data stays where the header says). */
function withHeader(bytes, edit) {
  const { header, dataStart } = headerOf(bytes);
  edit(header);
  const text = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + (bytes.length - dataStart));
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(bytes.subarray(dataStart), 8 + text.length);
  return out;
}

/** The file with its snapshot metadata (the JSON object) edited by edit(info); `raw` replaces the JSON text. */
function withSnapshotInfo(bytes, edit, raw = undefined) {
  return withHeader(bytes, (header) => {
    const info = JSON.parse(header.__metadata__['ema_wasm.snapshot']);
    edit(info);
    header.__metadata__['ema_wasm.snapshot'] = raw ?? JSON.stringify(info);
  });
}

/** A tensor's elements as a fresh typed array of `Type`, from a file and readSnapshot's { offset, byteLength }. */
function tensorData(bytes, { offset, byteLength }, Type) {
  return new Type(bytes.slice(offset, offset + byteLength).buffer);
}

for (const simd of BUILDS) {
  describe(`ema.snapshot(), ${buildName(simd)} build`, () => {
    test('one float32 file per profile: predictable names, metadata, weights equal to shadow(name, { profile })', async () => {
      const { ema } = await trained({ simd });
      assert.equal(ema.steps, 7);
      assert.equal(ema.counter, 27);
      const snapshots = ema.snapshot();
      assert.equal(snapshots.length, 3);
      for (const [k, snapshot] of snapshots.entries()) {
        const { bytes, ...described } = snapshot;
        assert.deepEqual(described, {
          name: `ema-snapshot-0000000007-profile-${k}.safetensors`, step: 7, samples: 27, profile: k,
          sigmaRel: SIGMA_RELS[k], gamma: ema.profiles[k].gamma, dtype: 'F32',
        });
        assert.equal(snapshot.name, snapshotName(7, k));
        assert.ok(bytes instanceof Uint8Array);
        const { header } = headerOf(bytes);
        assert.deepEqual(JSON.parse(header.__metadata__['ema_wasm.snapshot']), {
          step: 7, samples: 27, profile: k, sigmaRel: SIGMA_RELS[k], gamma: ema.profiles[k].gamma, batchSize: 4, dtype: 'F32',
        });
        assert.equal(header.__metadata__['ema_wasm.recipe'], 'power');
        const read = await readSnapshot(bytes, { simd });
        assert.deepEqual({ ...read, tensors: undefined, bytes: undefined }, {
          step: 7, samples: 27, profile: k, sigmaRel: SIGMA_RELS[k], gamma: ema.profiles[k].gamma, batchSize: 4, dtype: 'F32', tensors: undefined, bytes: undefined,
        });
        assert.deepEqual(await readSnapshot(snapshot, { simd }), read, 'a snapshot object reads as its bytes');
        assert.deepEqual(read.tensors.map(({ name, shape }) => [name, shape]), ema.names.map((name) => [name, ema.shape(name)]));
        for (const tensor of read.tensors) {
          assertSameBits(tensorData(read.bytes, tensor, Float32Array), ema.shadow(tensor.name, { profile: k }), `profile ${k}: '${tensor.name}'`);
        }
      }
      // The files are copies: later steps leave them as they were.
      const before = snapshots.map(({ bytes }) => bytes.slice());
      const params = model(50);
      ema.update(params);
      snapshots.forEach(({ bytes }, k) => assert.deepEqual(bytes, before[k]));
      assert.equal(ema.snapshot()[2].name, 'ema-snapshot-0000000008-profile-2.safetensors');
    });

    test('float16: the binary16 rounding of each shadow, at half the weight bytes; gamma profiles have sigmaRel null', async () => {
      const { ema } = await trained({ simd, sigmaRel: undefined, gamma: [0, 6.94] });
      const wide = ema.snapshot();
      const half = ema.snapshot({ dtype: 'float16' });
      assert.deepEqual(ema.snapshot({ dtype: 'float32' }), wide, "dtype 'float32' is the default");
      for (const [k, snapshot] of half.entries()) {
        assert.equal(snapshot.dtype, 'F16');
        assert.equal(snapshot.sigmaRel, null);
        assert.equal(snapshot.gamma, [0, 6.94][k]);
        assert.equal(snapshot.name, wide[k].name, 'the name does not depend on the dtype');
        const read = await readSnapshot(snapshot.bytes, { simd });
        assert.equal(read.dtype, 'F16');
        assert.equal(read.sigmaRel, null);
        assert.equal(headerOf(snapshot.bytes).header['blocks.0.w'].dtype, 'F16');
        for (const tensor of read.tensors) {
          const shadow = ema.shadow(tensor.name, { profile: k });
          assert.equal(tensor.byteLength, 2 * shadow.length);
          const bits = tensorData(read.bytes, tensor, Uint16Array);
          const expected = Uint16Array.from(shadow, (value) => float16Bits(value));
          assertSameBits(bits, expected, `profile ${k}: '${tensor.name}' in float16`);
        }
        const weightBytes = (bytes) => bytes.length - headerOf(bytes).dataStart;
        const scalars = 8 + 8 + 8 + 8 + 8; // samples, sigma_rel, gamma, batch_size, steps
        assert.equal(weightBytes(snapshot.bytes) - scalars, (weightBytes(wide[k].bytes) - scalars) / 2);
      }
    });

    test('a float32 snapshot is a one-profile checkpoint: loadEma continues it bit for bit; a float16 one is refused', async () => {
      const { params, ema } = await trained({ simd });
      const snapshots = ema.snapshot();
      const loaded = await Promise.all(snapshots.map(({ bytes }) => loadEma(bytes, { simd })));
      loaded.forEach((one, k) => {
        assert.deepEqual(one.profiles, [ema.profiles[k]]);
        assert.deepEqual(one.options, { sigmaRel: SIGMA_RELS[k], gamma: null, batchSize: 4 });
        assert.equal(one.counter, 27);
        assert.equal(one.steps, 7);
        assert.deepEqual(one.names, ema.names);
        assert.deepEqual(one.shape('conv.weight'), [2, 3]);
      });
      for (let step = 8; step <= 12; step++) {
        train(params, step);
        const options = step % 2 === 0 ? { samples: step } : undefined;
        const expected = ema.update(params, options);
        loaded.forEach((one, k) => {
          const result = one.update(params, options);
          assert.equal(result.counter, expected.counter);
          assert.equal(result.weight, expected.profiles[k].weight, `step ${step}, profile ${k}: weight`);
          for (const name of ema.names) assertSameBits(one.shadow(name), ema.shadow(name, { profile: k }), `step ${step}, profile ${k}: '${name}'`);
        });
      }
      await assert.rejects(loadEma(ema.snapshot({ dtype: 'float16' })[0].bytes, { simd }), {
        name: 'Error', message: "ema-wasm: loadEma: shadow 'conv.weight' must be F32, I32 or I64, got F16 " +
          '(a float16 snapshot is for reconstruct(); save float32 snapshots to load one as an EMA)',
      });
    });

    test('a one-profile and a resident EMA snapshot too', async () => {
      const params = model(3);
      const one = await createEma(params, { recipe: 'power', sigmaRel: 0.15, simd });
      const resident = await createEma(params, { recipe: 'power', gamma: [3, 9], simd, resident: true });
      one.update(params);
      resident.update();
      const [only] = one.snapshot();
      assert.equal(only.name, 'ema-snapshot-0000000001-profile-0.safetensors');
      assert.equal(only.sigmaRel, 0.15);
      const pair = resident.snapshot();
      assert.deepEqual(pair.map(({ name }) => name), [0, 1].map((k) => snapshotName(1, k)));
      for (const [k, snapshot] of pair.entries()) {
        const read = await readSnapshot(snapshot, { simd });
        for (const tensor of read.tensors) {
          assertSameBits(tensorData(read.bytes, tensor, Float32Array), resident.shadow(tensor.name, { profile: k }), `resident profile ${k}: '${tensor.name}'`);
        }
      }
    });
  });
}

describe('snapshot refusals', () => {
  test('a recipe other than power, and an EMA before its first update, are refused', async () => {
    const params = model(1);
    for (const recipe of ['litema', 'diffusers', 'keras']) {
      const ema = await createEma(params, { recipe });
      ema.update(params);
      assert.throws(() => ema.snapshot(), {
        name: 'Error',
        message: `ema-wasm: snapshot: snapshots are of power-function profiles, for post-hoc EMA; this EMA follows recipe '${recipe}' ` +
          "(create it with recipe: 'power', e.g. sigmaRel: [0.05, 0.1])",
      });
    }
    const fresh = await createEma(params, { recipe: 'power', sigmaRel: SIGMA_RELS });
    assert.throws(() => fresh.snapshot(), { name: 'Error', message: 'ema-wasm: snapshot: no update yet; a snapshot holds the average after one or more steps' });
    fresh.update(params);
    assert.throws(() => fresh.snapshot({ dtype: 'bfloat16' }), { name: 'TypeError', message: 'ema-wasm: snapshot: options.dtype must be \'float32\' or \'float16\', got the string "bfloat16"' });
    assert.throws(() => fresh.snapshot({ dtype: 'F32' }), { name: 'TypeError', message: 'ema-wasm: snapshot: options.dtype must be \'float32\' or \'float16\', got the string "F32"' });
    assert.throws(() => fresh.snapshot({ dtyp: 'float16' }), { name: 'TypeError', message: "ema-wasm: snapshot: unknown option 'dtyp'; expected dtype" });
    assert.throws(() => fresh.snapshot('float16'), { name: 'TypeError', message: 'ema-wasm: snapshot: options must be an object, got the string "float16"' });
    fresh.dispose();
    assert.throws(() => fresh.snapshot(), { name: 'Error', message: 'ema-wasm: snapshot: this EMA was disposed; create a new one' });
  });

  test('readSnapshot refuses checkpoints and other files: save() of any recipe, not safetensors, not bytes', async () => {
    const { ema } = await trained();
    const prefix = "ema-wasm: readSnapshot: the snapshot is not a snapshot of ema-wasm's power recipe: ";
    const checkpoint = "it has no metadata 'ema_wasm.snapshot' (save() writes checkpoints; snapshot() writes snapshots)";
    await assert.rejects(readSnapshot(ema.save()), { name: 'Error', message: prefix + checkpoint });
    await assert.rejects(readSnapshot(ema.save({ profile: 1 })), { name: 'Error', message: prefix + checkpoint });
    const params = model(2);
    const litema = await createEma(params);
    await assert.rejects(readSnapshot(litema.save()), { name: 'Error', message: `${prefix}its metadata 'ema_wasm.recipe' is missing` });
    const diffusers = await createEma(params, { recipe: 'diffusers' });
    await assert.rejects(readSnapshot(diffusers.save()), { name: 'Error', message: `${prefix}its metadata 'ema_wasm.recipe' is 'diffusers'` });
    await assert.rejects(readSnapshot(new Uint8Array(10)), { name: 'Error', message: /^ema-wasm: readSnapshot: the snapshot: not a valid safetensors file/ });
    await assert.rejects(readSnapshot(null), { name: 'TypeError', message: 'ema-wasm: readSnapshot: the snapshot: bytes must be a Uint8Array, got null' });
  });

  test('bad snapshot metadata is refused, naming the field', async () => {
    const { ema } = await trained();
    const { bytes } = ema.snapshot()[1];
    const prefix = "ema-wasm: readSnapshot: the snapshot is not a snapshot of ema-wasm's power recipe: ";
    const cases = [
      [(info) => delete info.step, "metadata field 'step' must be an integer, 1 or more, got undefined"],
      [(info) => { info.step = '7'; }, "metadata field 'step' must be an integer, 1 or more, got the string \"7\""],
      [(info) => { info.step = 0; }, "metadata field 'step' must be an integer, 1 or more, got number 0"],
      [(info) => { info.step = 7.5; }, "metadata field 'step' must be an integer, 1 or more, got number 7.5"],
      [(info) => delete info.samples, "metadata field 'samples' must be an integer, 1 or more, got undefined"],
      [(info) => { info.samples = 6; }, 'it has 6 samples after 7 steps; each step brings one or more'],
      [(info) => { info.profile = 16; }, "metadata field 'profile' must be an integer from 0 to 15, got number 16"],
      [(info) => { info.profile = null; }, "metadata field 'profile' must be an integer from 0 to 15, got null"],
      [(info) => delete info.sigmaRel, "metadata field 'sigmaRel' must be null or a number in (0, 0.28867513459481287] (the profile's relative width), got undefined"],
      [(info) => { info.sigmaRel = 0.5; }, "metadata field 'sigmaRel' must be null or a number in (0, 0.28867513459481287] (the profile's relative width), got number 0.5"],
      [(info) => { info.gamma = -1; }, "metadata field 'gamma' must be a finite number, 0 or more, got number -1"],
      [(info) => { info.gamma = '6.9'; }, "metadata field 'gamma' must be a finite number, 0 or more, got the string \"6.9\""],
      [(info) => { info.batchSize = 0; }, "metadata field 'batchSize' must be an integer, 1 or more, got number 0"],
      [(info) => { info.dtype = 'float32'; }, "metadata field 'dtype' must be 'F32' or 'F16', got the string \"float32\""],
      [(info) => { info.dtype = 'F16'; }, "weight 'conv.weight' is F32, not F16 as its metadata says"],
    ];
    for (const [edit, message] of cases) {
      await assert.rejects(readSnapshot(withSnapshotInfo(bytes, edit)), { name: 'Error', message: prefix + message }, message);
    }
    await assert.rejects(readSnapshot(withSnapshotInfo(bytes, () => {}, '{"step": 7,')), { name: 'Error', message: `${prefix}metadata 'ema_wasm.snapshot' must be a JSON object` });
    await assert.rejects(readSnapshot(withSnapshotInfo(bytes, () => {}, '[7, 27]')), { name: 'Error', message: `${prefix}metadata 'ema_wasm.snapshot' must be a JSON object` });
    await assert.rejects(readSnapshot(withSnapshotInfo(bytes, () => {}, 'null')), { name: 'Error', message: `${prefix}metadata 'ema_wasm.snapshot' must be a JSON object` });
    await assert.rejects(readSnapshot(withHeader(bytes, (header) => { header.__metadata__['ema_wasm.recipe'] = 'timm'; })), { name: 'Error', message: `${prefix}its metadata 'ema_wasm.recipe' is 'timm'` });
    // The edits alone change nothing else: unedited, the rewritten file reads.
    assert.equal((await readSnapshot(withSnapshotInfo(bytes, () => {}))).samples, 27);
  });
});

describe('writeSnapshots and readSnapshots (ema-wasm/node)', () => {
  const folders = [];
  const temporaryFolder = async () => {
    const folder = await mkdtemp(join(tmpdir(), 'ema-wasm-snapshots-'));
    folders.push(folder);
    return folder;
  };
  after(() => Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true }))));

  test('files named by step and profile, written in a folder created when missing, no temporary files left; read back in order', async () => {
    const { params, ema } = await trained();
    const root = await temporaryFolder();
    const folder = join(root, 'run', 'snapshots');
    const first = ema.snapshot();
    const paths = await writeSnapshots(folder, first);
    assert.deepEqual(paths, first.map(({ name }) => join(folder, name)));
    for (let step = 8; step <= 9; step++) {
      train(params, step);
      ema.update(params);
    }
    const second = ema.snapshot({ dtype: 'float16' });
    await writeSnapshots(folder, second);
    const expectedNames = [
      'ema-snapshot-0000000007-profile-0.safetensors', 'ema-snapshot-0000000007-profile-1.safetensors', 'ema-snapshot-0000000007-profile-2.safetensors',
      'ema-snapshot-0000000009-profile-0.safetensors', 'ema-snapshot-0000000009-profile-1.safetensors', 'ema-snapshot-0000000009-profile-2.safetensors',
    ];
    assert.deepEqual((await readdir(folder)).sort(), expectedNames, 'only the snapshots: no temporary files');
    for (const snapshot of [...first, ...second]) assert.deepEqual(new Uint8Array(await readFile(join(folder, snapshot.name))), snapshot.bytes);

    // Other files are left alone.
    await writeFile(join(folder, 'notes.txt'), 'hello');
    await writeFile(join(folder, 'ema-snapshot-7-profile-0.safetensors'), 'not ten digits');
    await writeFile(join(folder, '.ema-snapshot-0000000011-profile-0.safetensors.123.tmp'), 'a crashed write');
    await writeFile(join(folder, 'ema-snapshot-0000000011-profile-0.safetensors.bak'), 'a backup');
    await mkdir(join(folder, 'older'));
    const read = await readSnapshots(folder);
    assert.deepEqual(read.map(({ name }) => name), expectedNames);
    read.forEach((snapshot, i) => {
      const written = [...first, ...second][i];
      assert.deepEqual(snapshot.bytes, written.bytes);
      for (const key of ['name', 'step', 'samples', 'profile', 'sigmaRel', 'gamma', 'dtype']) assert.equal(snapshot[key], written[key], `${written.name}: ${key}`);
      assert.equal(snapshot.batchSize, 4);
      assert.deepEqual(snapshot.tensors.map(({ name }) => name), ema.names);
    });

    // The same step and profile again: the file is replaced, atomically.
    await writeSnapshots(folder, [second[1]]);
    assert.equal((await readdir(folder)).filter((name) => name.endsWith('.tmp')).length, 1, 'only the planted one');
  });

  test('snapshots are read in step order, then profile order, with 12 profiles too', async () => {
    const params = model(4);
    const ema = await createEma(params, { recipe: 'power', sigmaRel: Array.from({ length: 12 }, (_, k) => 0.01 + 0.02 * k) });
    ema.update(params);
    const folder = await temporaryFolder();
    await writeSnapshots(folder, ema.snapshot());
    assert.deepEqual((await readSnapshots(folder)).map(({ profile }) => profile), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  test('a renamed file, a corrupt file and a checkpoint under a snapshot name are refused, naming the file', async () => {
    const { ema } = await trained();
    const folder = await temporaryFolder();
    await writeSnapshots(folder, ema.snapshot());
    const renamedTo = 'ema-snapshot-0000000008-profile-0.safetensors';
    await rename(join(folder, 'ema-snapshot-0000000007-profile-0.safetensors'), join(folder, renamedTo));
    await assert.rejects(readSnapshots(folder), {
      name: 'Error', message: `ema-wasm: readSnapshots: '${renamedTo}' holds step 7 of profile 0, which its name does not say; was it renamed?`,
    });
    await rename(join(folder, renamedTo), join(folder, 'ema-snapshot-0000000007-profile-2.safetensors')); // over profile 2's
    await assert.rejects(readSnapshots(folder), {
      name: 'Error', message: "ema-wasm: readSnapshots: 'ema-snapshot-0000000007-profile-2.safetensors' holds step 7 of profile 0, which its name does not say; was it renamed?",
    });

    const corrupt = await temporaryFolder();
    const snapshots = ema.snapshot();
    await writeSnapshots(corrupt, snapshots);
    const victim = join(corrupt, snapshots[1].name);
    await writeFile(victim, snapshots[1].bytes.subarray(0, snapshots[1].bytes.length - 5));
    await assert.rejects(readSnapshots(corrupt), { name: 'Error', message: new RegExp(`^ema-wasm: readSnapshots: '${snapshots[1].name}': `) });
    await writeFile(victim, new Uint8Array(3));
    await assert.rejects(readSnapshots(corrupt), {
      name: 'Error', message: `ema-wasm: readSnapshots: '${snapshots[1].name}': not a valid safetensors file: file too short: fewer than the 8 bytes of the header length (at byte 0, status 14)`,
    });
    await writeFile(victim, ema.save({ profile: 1 }));
    await assert.rejects(readSnapshots(corrupt), {
      name: 'Error',
      message: `ema-wasm: readSnapshots: '${snapshots[1].name}' is not a snapshot of ema-wasm's power recipe: it has no metadata 'ema_wasm.snapshot' (save() writes checkpoints; snapshot() writes snapshots)`,
    });
    await writeFile(victim, withSnapshotInfo(snapshots[1].bytes, (info) => { info.samples = 1; }));
    await assert.rejects(readSnapshots(corrupt), {
      name: 'Error', message: `ema-wasm: readSnapshots: '${snapshots[1].name}' is not a snapshot of ema-wasm's power recipe: it has 1 samples after 7 steps; each step brings one or more`,
    });
  });

  test('an empty folder, a missing one and bad arguments are refused', async () => {
    const folder = await temporaryFolder();
    await assert.rejects(readSnapshots(folder), {
      name: 'Error', message: `ema-wasm: readSnapshots: '${folder}' holds no snapshot (files named like ema-snapshot-0000001000-profile-0.safetensors)`,
    });
    await writeFile(join(folder, 'notes.txt'), 'no snapshots here');
    await assert.rejects(readSnapshots(folder), { name: 'Error', message: /holds no snapshot/ });
    await assert.rejects(readSnapshots(join(folder, 'missing')), (error) =>
      /^ema-wasm: readSnapshots: cannot read the folder '.*missing': ENOENT/.test(error.message) && error.cause?.code === 'ENOENT');
    await assert.rejects(readSnapshots(''), { name: 'TypeError', message: 'ema-wasm: readSnapshots: folder must be a path, got the string ""' });
    await assert.rejects(readSnapshots(folder, { dtype: 'F16' }), { name: 'TypeError', message: "ema-wasm: readSnapshots: unknown option 'dtype'; expected simd, wasm" });

    const { ema } = await trained();
    const [snapshot] = ema.snapshot();
    await assert.rejects(writeSnapshots('', [snapshot]), { name: 'TypeError', message: 'ema-wasm: writeSnapshots: folder must be a path, got the string ""' });
    await assert.rejects(writeSnapshots(folder, snapshot), { name: 'TypeError', message: /^ema-wasm: writeSnapshots: snapshots must be an array \(what ema\.snapshot\(\) returns\), got / });
    const forged = [
      { ...snapshot, name: 'weights.safetensors' },
      { ...snapshot, name: snapshotName(8, 0) },
      { ...snapshot, profile: 1 },
      { ...snapshot, bytes: Array.from(snapshot.bytes) },
      null,
    ];
    for (const bad of forged) {
      await assert.rejects(writeSnapshots(folder, [snapshot, bad]), { name: 'TypeError', message: /^ema-wasm: writeSnapshots: snapshots\[1\] must be one of ema\.snapshot\(\)'s, got / });
    }
    assert.deepEqual(await readdir(folder), ['notes.txt'], 'a refused call writes nothing, not even the good snapshots before the bad one');
    assert.deepEqual(await writeSnapshots(join(folder, 'none'), []), []);
  });
});
