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
import { execFile } from 'node:child_process';
import fsPromises, { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, mock, test } from 'node:test';
import { promisify } from 'node:util';
import { runInNewContext } from 'node:vm';

import { createEma, loadEma, readSnapshot, reconstruct, snapshotName } from '../../js/index.js';
import { float16Bits, FLOAT16_MAX, toFloat16 } from '../../js/float16.js';
import { compareSnapshotNames, isSnapshotName, snapshotBytesUsable, snapshotStateDict } from '../../js/snapshots.js';
import { readSnapshots, writeSnapshots } from '../../js/node.js';
import { BUILDS, buildName, randomArray } from './helpers.js';
import { assertSameBits } from './recipe-fixture.js';

const execFileAsync = promisify(execFile);

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
          sigmaRel: SIGMA_RELS[k], gamma: ema.profiles[k].gamma, batchSize: 4, dtype: 'F32',
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
      [(info) => delete info.sigmaRel, "metadata field 'sigmaRel' must be null or a number in [0.000001, 0.28867513459481287] (the profile's relative width), got undefined"],
      [(info) => { info.sigmaRel = 0.5; }, "metadata field 'sigmaRel' must be null or a number in [0.000001, 0.28867513459481287] (the profile's relative width), got number 0.5"],
      [(info) => { info.gamma = -1; }, "metadata field 'gamma' must be a number in [0, 1000000], got number -1"],
      [(info) => { info.gamma = '6.9'; }, "metadata field 'gamma' must be a number in [0, 1000000], got the string \"6.9\""],
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
    const at = 'ema-wasm: writeSnapshots: snapshots[1]';
    const forged = [
      [{ ...snapshot, name: 'weights.safetensors' }, 'TypeError',
        `${at}.name must be a snapshot's file name (snapshotName(step, profile), like ema-snapshot-0000001000-profile-0.safetensors), got the string "weights.safetensors"`],
      [{ ...snapshot, name: snapshotName(8, 0) }, 'Error',
        `${at} is named 'ema-snapshot-0000000008-profile-0.safetensors', but its bytes are step 7 of profile 0, whose name is 'ema-snapshot-0000000007-profile-0.safetensors'`],
      [{ ...snapshot, profile: 1 }, 'Error', `${at} says step number 7 and profile number 1, but its bytes are step 7 of profile 0`],
      [{ ...snapshot, bytes: Array.from(snapshot.bytes) }, 'TypeError', `${at}.bytes must be a Uint8Array (the snapshot's file), got an array`],
      [null, 'TypeError', `${at} must be one of ema.snapshot()'s or readSnapshots()' objects, got null`],
      [snapshot.bytes, 'TypeError', `${at}.name must be a snapshot's file name (snapshotName(step, profile), like ema-snapshot-0000001000-profile-0.safetensors), got undefined`],
    ];
    for (const [bad, name, message] of forged) {
      await assert.rejects(writeSnapshots(folder, [snapshot, bad]), { name, message });
    }
    assert.deepEqual(await readdir(folder), ['notes.txt'], 'a refused call writes nothing, not even the good snapshots before the bad one');
    assert.deepEqual(await writeSnapshots(join(folder, 'none'), []), []);
    await assert.rejects(writeSnapshots(folder, [snapshot], { dtype: 'F16' }), { name: 'TypeError', message: "ema-wasm: writeSnapshots: unknown option 'dtype'; expected simd, wasm" });
    await assert.rejects(writeSnapshots(folder, [snapshot], null), { name: 'TypeError', message: 'ema-wasm: writeSnapshots: options must be an object, got null' });
  });
});


// ---- the review's findings: each input read once and checked before anything is written ----

/** A power EMA of one 5-element weight after one update with `values`. */
async function oneWeight(values, simd = 'auto', options = {}) {
  const params = [{ name: 'w', data: Float32Array.from(values) }];
  const ema = await createEma(params, { recipe: 'power', sigmaRel: [0.05, 0.1], simd, ...options });
  ema.update(params);
  return ema;
}

/** A fresh folder; every one is removed after the file's tests. */
const scratch = [];
after(() => Promise.all(scratch.map((folder) => rm(folder, { recursive: true, force: true }))));
async function scratchFolder() {
  const folder = await mkdtemp(join(tmpdir(), 'ema-wasm-review-'));
  scratch.push(folder);
  return folder;
}

/** Runs `body` with fs/promises' `name` replaced by `replacement` (for the ESM imports too), then restores it. */
async function withFsCall(name, replacement, body) {
  mock.method(fsPromises, name, replacement);
  syncBuiltinESMExports();
  try {
    return await body();
  } finally {
    mock.restoreAll();
    syncBuiltinESMExports();
  }
}

/** The paths fs/promises' open was called with while `body` ran (the calls go through). */
async function openedDuring(body) {
  const original = fsPromises.open;
  const opened = [];
  await withFsCall('open', (path, ...rest) => {
    opened.push(path);
    return original(path, ...rest);
  }, body);
  return opened;
}

const fsFailure = (code, text) => Object.assign(new Error(`${code}: ${text}`), { code });

for (const simd of BUILDS) {
  describe(`writeSnapshots checks every snapshot before writing any, ${buildName(simd)} build`, () => {
    test('a forged object (the name of step 1000 over the bytes of step 5; three bytes) is refused and nothing is written', async () => {
      const params = model(7);
      const ema = await createEma(params, { recipe: 'power', sigmaRel: SIGMA_RELS, simd });
      for (let step = 1; step <= 5; step++) ema.update(params);
      const [good, second] = ema.snapshot();
      const folder = await scratchFolder();
      const at = 'ema-wasm: writeSnapshots: snapshots[1]';
      await assert.rejects(writeSnapshots(folder, [good, { ...second, name: snapshotName(1000, 1), step: 1000 }], { simd }), {
        name: 'Error',
        message: `${at} is named 'ema-snapshot-0000001000-profile-1.safetensors', but its bytes are step 5 of profile 1, whose name is 'ema-snapshot-0000000005-profile-1.safetensors'`,
      });
      await assert.rejects(writeSnapshots(folder, [good, { ...second, bytes: Uint8Array.of(1, 2, 3) }], { simd }), {
        name: 'Error',
        message: `${at}: not a valid safetensors file: file too short: fewer than the 8 bytes of the header length (at byte 0, status 14)`,
      });
      const checkpoint = ema.save({ profile: 1 });
      await assert.rejects(writeSnapshots(folder, [good, { ...second, bytes: checkpoint }], { simd }), {
        name: 'Error', message: `${at} is not a snapshot of ema-wasm's power recipe: it has no metadata 'ema_wasm.snapshot' (save() writes checkpoints; snapshot() writes snapshots)`,
      });
      assert.deepEqual(await readdir(folder), [], 'nothing written, not even snapshots[0]');
      assert.deepEqual(await writeSnapshots(folder, [good, second], { simd }), [good, second].map(({ name }) => join(folder, name)));
    });

    test("each field is read once, and what is written is the checked copy: a getter cannot swap the bytes, later changes don't reach the file", async () => {
      const ema = await oneWeight([1, 2, 3, 4, 5], simd);
      const [first] = ema.snapshot();
      const original = first.bytes.slice();
      const reads = { name: 0, step: 0, profile: 0, bytes: 0 };
      let bytesGiven = 0;
      const swapping = {
        get name() { reads.name++; return first.name; },
        get step() { reads.step++; return first.step; },
        get profile() { reads.profile++; return first.profile; },
        // The first read gets the real file, any later one three bytes.
        get bytes() { reads.bytes++; return bytesGiven++ === 0 ? first.bytes : Uint8Array.of(1, 2, 3); },
      };
      const folder = await scratchFolder();
      const writing = writeSnapshots(folder, [swapping], { simd });
      first.bytes.fill(0, 8); // after the call has read it, before it checks it
      await assert.rejects(writing, { name: 'Error', message: /^ema-wasm: writeSnapshots: snapshots\[0\]: not a valid safetensors file/ });
      assert.deepEqual(reads, { name: 1, step: 1, profile: 1, bytes: 1 });
      assert.deepEqual(await readdir(folder), []);

      // A change once the copy is taken (while the file is being written) is not written.
      first.bytes.set(original);
      const open = fsPromises.open;
      await withFsCall('open', (...args) => {
        first.bytes.fill(7, 8); // as the file is being opened for writing
        return open(...args);
      }, () => writeSnapshots(folder, [first], { simd }));
      assert.deepEqual(new Uint8Array(await readFile(join(folder, first.name))), original);
      assert.equal(first.bytes[100], 7);
    });

    test('bytes of another realm are taken; a Proxy, a detached or shrunk buffer are refused', async () => {
      const ema = await oneWeight([1, 2, 3, 4, 5], simd);
      const [first] = ema.snapshot();
      const folder = await scratchFolder();
      const foreign = runInNewContext('new Uint8Array(length)', { length: first.bytes.length });
      foreign.set(first.bytes);
      assert.ok(!(foreign instanceof Uint8Array));
      await writeSnapshots(folder, [{ ...first, bytes: foreign }], { simd });
      assert.deepEqual(new Uint8Array(await readFile(join(folder, first.name))), first.bytes);

      const at = 'ema-wasm: writeSnapshots: snapshots[0]';
      const proxy = new Proxy(first.bytes, {});
      assert.ok(proxy instanceof Uint8Array, 'a Proxy passes instanceof');
      await assert.rejects(writeSnapshots(folder, [{ ...first, bytes: proxy }], { simd }), {
        name: 'TypeError',
        message: `${at}.bytes must be a Uint8Array (the snapshot's file), got an object posing as a Uint8Array (a Proxy, or an object given its prototype), not a real typed array`,
      });
      const detached = first.bytes.slice();
      structuredClone(detached.buffer, { transfer: [detached.buffer] });
      await assert.rejects(writeSnapshots(folder, [{ ...first, bytes: detached }], { simd }), {
        name: 'Error', message: `${at}.bytes cannot be read: its ArrayBuffer was detached (transferred to a worker, or by ArrayBuffer.transfer)`,
      });
      if (typeof ArrayBuffer.prototype.resize === 'function') {
        const buffer = new ArrayBuffer(first.bytes.length, { maxByteLength: 2 * first.bytes.length });
        const tracking = new Uint8Array(buffer, 16);
        buffer.resize(8);
        await assert.rejects(writeSnapshots(folder, [{ ...first, bytes: tracking }], { simd }), {
          name: 'Error', message: `${at}.bytes cannot be read: it lies outside its resizable ArrayBuffer, which was shrunk`,
        });
      }
      assert.deepEqual(await readdir(folder), [first.name], 'only the first, accepted write');
    });

    test("readSnapshots' results write back as they are; readSnapshot's (no name) are refused", async () => {
      const ema = await oneWeight([1, 2, 3, 4, 5], simd);
      const source = await scratchFolder();
      await writeSnapshots(source, ema.snapshot({ dtype: 'float16' }), { simd });
      const read = await readSnapshots(source, { simd });
      const copy = await scratchFolder();
      await writeSnapshots(copy, read, { simd });
      for (const { name, bytes } of read) assert.deepEqual(new Uint8Array(await readFile(join(copy, name))), bytes);
      const one = await readSnapshot(read[0].bytes, { simd });
      await assert.rejects(writeSnapshots(copy, [one], { simd }), {
        name: 'TypeError', message: /^ema-wasm: writeSnapshots: snapshots\[0\]\.name must be a snapshot's file name .*, got undefined$/,
      });
      // A checked snapshot whose bytes were transferred away is refused too.
      const [transferred] = await readSnapshots(source, { simd });
      structuredClone(transferred.bytes.buffer, { transfer: [transferred.bytes.buffer] });
      await assert.rejects(writeSnapshots(copy, [transferred], { simd }), {
        name: 'Error', message: /^ema-wasm: writeSnapshots: snapshots\[0\]\.bytes cannot be read: its ArrayBuffer was detached/,
      });
    });
  });

  describe(`readSnapshot keeps its own copy of the bytes, ${buildName(simd)} build`, () => {
    test("changing, detaching or shrinking the caller's bytes afterwards changes nothing; snapshotBytesUsable tells a transferred copy", async () => {
      const ema = await oneWeight([1, -2, 3.5, 1e-3, 7], simd);
      const [snapshot] = ema.snapshot();
      const bytes = snapshot.bytes.slice();
      const read = await readSnapshot(bytes, { simd });
      assert.notEqual(read.bytes, bytes);
      assert.notEqual(read.bytes.buffer, bytes.buffer);
      assert.deepEqual(read.bytes, snapshot.bytes);
      const before = await reconstruct([read], { sigmaRel: 0.05, simd, warn: false });
      bytes.fill(0);
      assert.deepEqual(read.bytes, snapshot.bytes, 'a later change of the caller does not reach the checked copy');
      structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
      const after = await reconstruct([read], { sigmaRel: 0.05, simd, warn: false });
      assertSameBits(after.weights.get('w'), before.weights.get('w'), 'the same weights');

      // A snapshot object's bytes are copied too.
      const fromObject = await readSnapshot(snapshot, { simd });
      assert.notEqual(fromObject.bytes, snapshot.bytes);
      snapshot.bytes.fill(0);
      assert.equal(fromObject.step, 1);
      assert.deepEqual(fromObject.bytes, read.bytes);

      if (typeof ArrayBuffer.prototype.resize === 'function') {
        const buffer = new ArrayBuffer(read.bytes.length, { maxByteLength: 2 * read.bytes.length });
        const resizable = new Uint8Array(buffer);
        resizable.set(read.bytes);
        const fromResizable = await readSnapshot(resizable, { simd });
        buffer.resize(4);
        assert.deepEqual(fromResizable.bytes, read.bytes);
        assert.equal(fromResizable.bytes.buffer.resizable, false);
      }

      assert.equal(snapshotBytesUsable(read), null);
      structuredClone(read.bytes.buffer, { transfer: [read.bytes.buffer] });
      assert.equal(snapshotBytesUsable(read), 'its ArrayBuffer was detached (transferred to a worker, or by ArrayBuffer.transfer)');
      assert.ok(Object.isFrozen(read));
    });

    test("readSnapshots' files are read into buffers of their own (not copied again)", async () => {
      const ema = await oneWeight([1, 2, 3, 4, 5], simd);
      const folder = await scratchFolder();
      await writeSnapshots(folder, ema.snapshot(), { simd });
      for (const snapshot of await readSnapshots(folder, { simd })) {
        assert.equal(snapshot.bytes.byteOffset, 0);
        assert.equal(snapshot.bytes.buffer.byteLength, snapshot.bytes.length, 'the whole buffer is the file: not a slice of a pool');
        assert.equal(snapshotBytesUsable(snapshot), null);
      }
    });
  });

  describe(`float16 snapshots refuse weights past 65504, ${buildName(simd)} build`, () => {
    test('a finite weight float16 cannot hold is a RangeError naming it, its index and value; the limits and non-finite weights pass', async () => {
      const message = (value, sign = '') => new RegExp(
        `^ema-wasm: snapshot: options\\.dtype 'float16' cannot hold parameter 'w'( of profile 0)?: its element 3 is ${escape(String(value))}, ` +
          `past float16's largest finite value 65504, and would be saved as ${sign}Infinity; use dtype 'float32'$`,
      );
      for (const [value, sign] of [[70000, ''], [-70000, '-'], [65520, ''], [3e38, '']]) {
        const ema = await oneWeight([1, 2, 3, value, 1e6], simd);
        const float32 = Math.fround(value);
        assert.throws(() => ema.snapshot({ dtype: 'float16' }), { name: 'RangeError', message: message(float32, sign) }, `${value}`);
        assert.equal(ema.snapshot().length, 2, 'float32 holds it');
      }
      // 65504 and what rounds down to it are kept; infinities and NaN stay what they are.
      const edge = Math.fround(65519.99);
      assert.ok(edge < 65520);
      const kept = await oneWeight([65504, -65504, edge, 1, 2], simd);
      const [snapshot] = kept.snapshot({ dtype: 'float16' });
      const read = await readSnapshot(snapshot, { simd });
      const [tensor] = read.tensors;
      assert.deepEqual([...tensorData(read.bytes, tensor, Uint16Array)], [0x7bff, 0xfbff, 0x7bff, 0x3c00, 0x4000]);
      const params = [{ name: 'w', data: Float32Array.of(Infinity, -Infinity, NaN, 1, 2) }];
      const nonFinite = await createEma(params, { recipe: 'power', sigmaRel: 0.05, simd, nonFinite: 'allow' });
      nonFinite.update(params);
      const [inf] = nonFinite.snapshot({ dtype: 'float16' });
      const bits = tensorData(inf.bytes, (await readSnapshot(inf, { simd })).tensors[0], Uint16Array);
      // (The first step averages inf - inf: NaN shadows; toFloat16's own test keeps infinities.)
      assert.deepEqual([...bits].map((b, i) => (i < 3 ? b & 0x7c00 : b)), [0x7c00, 0x7c00, 0x7c00, 0x3c00, 0x4000], 'non-finite shadows pass');
    });
  });
}

describe('float16 overflow: toFloat16 and snapshotStateDict', () => {
  test('toFloat16 calls onOverflow once, for the first finite value past 65504, and converts as before', () => {
    const values = Float32Array.of(1, 65504, Infinity, NaN, 65520, -1e5, 2);
    const calls = [];
    const bits = toFloat16(values, (index, value) => calls.push([index, value]));
    assert.deepEqual(calls, [[4, 65520]]);
    assert.deepEqual(bits, toFloat16(values));
    assert.deepEqual([...bits].map((b) => b.toString(16)), ['3c00', '7bff', '7c00', '7e00', '7c00', 'fc00', '4000']);
    assert.equal(FLOAT16_MAX, 65504);
  });

  test('snapshotStateDict names the profile when given, and leaves other entries alone', () => {
    const state = new Map([['samples', BigInt64Array.of(5n)], ['a', Float32Array.of(1, 2)], ['b', Float32Array.of(0, -1e9)]]);
    assert.throws(() => snapshotStateDict(state, ['a', 'b'], 'F16', 2), {
      name: 'RangeError',
      message: "ema-wasm: snapshot: options.dtype 'float16' cannot hold parameter 'b' of profile 2: its element 1 is -1000000000, " +
        "past float16's largest finite value 65504, and would be saved as -Infinity; use dtype 'float32'",
    });
    assert.equal(snapshotStateDict(state, ['a', 'b'], 'F32', 2), state);
    const half = snapshotStateDict(new Map([['samples', state.get('samples')], ['a', state.get('a')]]), ['a'], 'F16');
    assert.equal(half.get('samples'), state.get('samples'));
    assert.deepEqual(half.get('a'), Uint16Array.of(0x3c00, 0x4000));
  });
});

describe('snapshot names: exactly what snapshotName writes', () => {
  test('isSnapshotName accepts every name snapshotName writes and nothing else', () => {
    for (const step of [1, 5, 999, 9_999_999_999, 10_000_000_000, 123_456_789_012, Number.MAX_SAFE_INTEGER]) {
      for (let profile = 0; profile < 16; profile++) assert.ok(isSnapshotName(snapshotName(step, profile)), snapshotName(step, profile));
    }
    const refused = [
      'ema-snapshot-00000000005-profile-0.safetensors', // 11 digits, a leading zero
      'ema-snapshot-010000000000-profile-0.safetensors',
      'ema-snapshot-0000000005-profile-00.safetensors',
      'ema-snapshot-0000000005-profile-01.safetensors',
      'ema-snapshot-0000000005-profile-16.safetensors',
      'ema-snapshot-0000000005-profile-99.safetensors',
      'ema-snapshot-0000000000-profile-0.safetensors', // step 0: no snapshot
      'ema-snapshot-5-profile-0.safetensors',
      'ema-snapshot-000000005-profile-0.safetensors',
      'ema-snapshot-9007199254740992-profile-0.safetensors', // past 2^53 - 1
      'ema-snapshot-99999999999999999999-profile-0.safetensors',
      'ema-snapshot-0000000005-profile--1.safetensors',
      'ema-snapshot-0000000005-profile-0.safetensors.tmp',
      'ema-snapshot-000000000５-profile-0.safetensors',
      '',
    ];
    for (const name of refused) assert.equal(isSnapshotName(name), false, name);
    for (const value of [undefined, null, 5, {}, new String(snapshotName(5, 0))]) assert.equal(isSnapshotName(value), false);
    assert.deepEqual(
      [snapshotName(10_000_000_000, 0), snapshotName(9, 1), snapshotName(9, 10), snapshotName(9, 2), snapshotName(1, 15)].sort(compareSnapshotNames),
      [snapshotName(1, 15), snapshotName(9, 1), snapshotName(9, 2), snapshotName(9, 10), snapshotName(10_000_000_000, 0)],
    );
  });

  test('readSnapshots leaves names snapshotName never writes alone, even when they hold snapshots', async () => {
    const ema = await oneWeight([1, 2, 3, 4, 5]);
    const folder = await scratchFolder();
    const [first] = ema.snapshot();
    await writeSnapshots(folder, [first]);
    await writeFile(join(folder, 'ema-snapshot-00000000001-profile-0.safetensors'), first.bytes);
    await writeFile(join(folder, 'ema-snapshot-0000000001-profile-00.safetensors'), first.bytes);
    assert.deepEqual((await readSnapshots(folder)).map(({ name }) => name), [first.name]);
  });
});

describe('readSnapshots: entries that are not snapshot files, and file-system errors', () => {
  test('a folder, a broken link, a FIFO and a device under a snapshot name are refused by name, never opened; a link to a file is followed', async () => {
    const ema = await oneWeight([1, 2, 3, 4, 5]);
    const [first, second] = ema.snapshot();
    const prefix = 'ema-wasm: readSnapshots: ';
    const withEntry = async (make) => {
      const folder = await scratchFolder();
      await writeSnapshots(folder, [first]);
      await make(join(folder, second.name));
      return folder;
    };
    await assert.rejects(readSnapshots(await withEntry((path) => mkdir(path))), {
      name: 'Error', message: `${prefix}'${second.name}' is a folder, not a snapshot file; only snapshot files may be named like one`,
    });
    await assert.rejects(readSnapshots(await withEntry((path) => symlink(join(tmpdir(), 'ema-wasm-missing-target'), path))), (error) =>
      error.name === 'Error' && error.cause?.code === 'ENOENT' &&
      error.message.startsWith(`${prefix}'${second.name}' is a symbolic link to nothing (its target is missing): ENOENT`));
    if (process.platform !== 'win32') {
      const fifo = await withEntry((path) => execFileAsync('mkfifo', [path]));
      const device = await withEntry((path) => symlink('/dev/zero', path));
      const opened = await openedDuring(async () => {
        await assert.rejects(readSnapshots(fifo), {
          name: 'Error', message: `${prefix}'${second.name}' is a FIFO (named pipe), not a snapshot file; only snapshot files may be named like one`,
        });
        await assert.rejects(readSnapshots(device), {
          name: 'Error', message: `${prefix}'${second.name}' is a character device, not a snapshot file; only snapshot files may be named like one`,
        });
      });
      assert.deepEqual(opened, [], 'every entry is looked at before any is opened');
    }
    const elsewhere = await scratchFolder();
    await writeSnapshots(elsewhere, [second]);
    const linked = await withEntry((path) => symlink(join(elsewhere, second.name), path));
    assert.deepEqual((await readSnapshots(linked)).map(({ name }) => name), [first.name, second.name]);
  });

  test('a file past 2 GiB - 1 bytes is refused before it is read', async () => {
    const ema = await oneWeight([1, 2, 3, 4, 5]);
    const folder = await scratchFolder();
    const [first, second] = ema.snapshot();
    await writeSnapshots(folder, [first]);
    const huge = join(folder, second.name);
    await writeFile(huge, '');
    await truncate(huge, 2 ** 31); // sparse: no disk used
    const opened = await openedDuring(() => assert.rejects(readSnapshots(folder), {
      name: 'RangeError',
      message: `ema-wasm: readSnapshots: '${second.name}' is 2,147,483,648 bytes (2 GiB), more than the 2,147,483,647 bytes (2 GiB) Node reads into one buffer`,
    }));
    assert.deepEqual(opened, [], 'no file opened, not even the good one before it');
  });

  test('fs errors become ema-wasm Errors naming readSnapshots and the file, the original as cause', async () => {
    const ema = await oneWeight([1, 2, 3, 4, 5]);
    const folder = await scratchFolder();
    const [first] = ema.snapshot();
    await writeSnapshots(folder, [first]);
    for (const code of ['EACCES', 'EIO', 'EMFILE']) {
      await withFsCall('open', async () => { throw fsFailure(code, `failed, open '${join(folder, first.name)}'`); }, async () => {
        await assert.rejects(readSnapshots(folder), (error) => {
          assert.equal(error.name, 'Error');
          assert.equal(error.message, `ema-wasm: readSnapshots: cannot read '${first.name}': ${code}: failed, open '${join(folder, first.name)}'`);
          assert.equal(error.cause.code, code);
          return true;
        });
      });
    }
    await withFsCall('stat', async () => { throw fsFailure('EACCES', 'permission denied, stat'); }, async () => {
      await assert.rejects(readSnapshots(folder), (error) =>
        error.message === `ema-wasm: readSnapshots: cannot read '${first.name}': EACCES: permission denied, stat` && error.cause.code === 'EACCES');
    });
    const file = join(folder, first.name);
    await assert.rejects(readSnapshots(file), (error) =>
      error.message.startsWith(`ema-wasm: readSnapshots: cannot read the folder '${file}': ENOTDIR`) && error.cause.code === 'ENOTDIR');
  });
});

describe('writeSnapshots: file-system errors', () => {
  test('a file in the folder\'s way, a folder in a file\'s way, a read-only file system: ema-wasm Errors naming the target, the original as cause', async () => {
    const ema = await oneWeight([1, 2, 3, 4, 5]);
    const snapshots = ema.snapshot();
    const root = await scratchFolder();
    const file = join(root, 'a-file');
    await writeFile(file, 'in the way');
    await assert.rejects(writeSnapshots(file, snapshots), (error) =>
      error.message.startsWith(`ema-wasm: writeSnapshots: cannot create the folder '${file}' (a file has its name): EEXIST`) && error.cause.code === 'EEXIST');
    await assert.rejects(writeSnapshots(join(file, 'below'), snapshots), (error) =>
      error.message.startsWith(`ema-wasm: writeSnapshots: cannot create the folder '${join(file, 'below')}' (a part of its path is a file): ENOTDIR`) &&
      error.cause.code === 'ENOTDIR');

    // The second target is a folder: the first is written, the second's temporary file removed.
    const folder = join(root, 'snapshots');
    await mkdir(join(folder, snapshots[1].name), { recursive: true });
    await assert.rejects(writeSnapshots(folder, snapshots), (error) => {
      assert.match(error.message, new RegExp(`^ema-wasm: writeSnapshots: cannot write '${escape(join(folder, snapshots[1].name))}' \\(after 1 of the 2 snapshots\\): E`));
      assert.ok(['EISDIR', 'EEXIST', 'ENOTEMPTY', 'EPERM'].includes(error.cause.code), error.cause.code);
      return true;
    });
    assert.deepEqual((await readdir(folder)).sort(), snapshots.map(({ name }) => name), 'no temporary file left');

    const readOnly = join(root, 'read-only');
    await withFsCall('open', async (path) => { throw fsFailure('EROFS', `read-only file system, open '${path}'`); }, async () => {
      await assert.rejects(writeSnapshots(readOnly, snapshots), (error) => {
        assert.match(error.message, new RegExp(`^ema-wasm: writeSnapshots: cannot write '${escape(join(readOnly, snapshots[0].name))}': EROFS: read-only file system, open '.*\\.tmp'$`));
        assert.equal(error.cause.code, 'EROFS');
        return true;
      });
    });
  });
});

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('writeSnapshots refuses two snapshots that would be written under one name, and writes nothing', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'ema-wasm-twins-'));
  try {
    const makeRun = async (offset) => {
      const w = Float32Array.of(1 + offset, 2, 3);
      const ema = await createEma({ w }, { recipe: 'power', sigmaRel: [0.05, 0.1], simd: false });
      ema.update({ w });
      return ema.snapshot();
    };
    const [a, b] = [await makeRun(0), await makeRun(5)];
    await assert.rejects(writeSnapshots(join(folder, 'run'), [a[0], b[0]]), {
      name: 'Error', message: "ema-wasm: writeSnapshots: snapshots[0] and snapshots[1] would both be written as 'ema-snapshot-0000000001-profile-0.safetensors'",
    });
    assert.deepEqual(await readdir(folder), [], 'nothing written, no folder made');
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});
