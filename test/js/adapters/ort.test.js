// The onnxruntime-web training adapter (js/adapters/ort.js).
//
// Part one runs against a real onnxruntime-web 1.19.2 TrainingSession on the
// MNIST MLP artifacts in <repo>/../shared/ort-mnist: a few training steps with
// the EMA updated after each, compared bit for bit with a float32 JS
// reference of LitEma, then an evaluation under withEma. It is skipped, with
// a message naming the folder, when the artifacts are absent.
//
// The environment variable EMA_WASM_ORT_ARTIFACTS overrides that folder (for
// example, point it at a missing folder to check that the skip is clean).
//
// Part two checks the argument and error handling with small fake sessions,
// so it runs everywhere.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { createOrtEma } from '../../../js/adapters/ort.js';
import { BUILDS, buildName, randomArray, referenceStep, warmupDecay } from '../helpers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const artifacts = process.env.EMA_WASM_ORT_ARTIFACTS
  ? resolve(process.env.EMA_WASM_ORT_ARTIFACTS)
  : resolve(root, '..', 'shared', 'ort-mnist');
const ARTIFACT_FILES = ['checkpoint', 'training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx'];
// './training' maps node to null in onnxruntime-web's exports: load by path.
const bundle = join(root, 'node_modules', 'onnxruntime-web', 'dist', 'ort.training.wasm.min.mjs');

function skipReason() {
  if (!existsSync(artifacts)) return `onnxruntime-web training artifacts folder ${artifacts} not found`;
  const missing = ARTIFACT_FILES.filter((file) => !existsSync(join(artifacts, file)));
  if (missing.length > 0) {
    return `onnxruntime-web training artifacts folder ${artifacts} lacks ${missing.join(', ')}`;
  }
  if (!existsSync(bundle)) return `onnxruntime-web 1.19.2 is not installed (${bundle}); run npm ci`;
  return false;
}

const BATCH = 16;
const STEPS = 5;
const LOSS = 'onnx::loss::8';

/** Index of the first element whose float32 bits differ, or -1. */
function firstBitDifference(a, b) {
  assert.equal(a.length, b.length, 'lengths differ');
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function assertSameBits(actual, expected, what) {
  const index = firstBitDifference(actual, expected);
  assert.equal(index, -1, `${what}: element ${index} is ${actual[index]}, expected ${expected[index]}`);
}

// The skip goes on each test (not the suite) so the summary counts them.
const skip = skipReason();

describe('onnxruntime-web training adapter (real TrainingSession)', () => {
  let ort;
  let session;
  let initial; // the checkpoint's trainable parameters, to reset between tests
  let batches;

  before(async () => {
    if (skip) return;
    ort = await import(pathToFileURL(bundle).href);
    ort.env.wasm.numThreads = 1; // no worker threads in Node
    const bytes = (file) => new Uint8Array(readFileSync(join(artifacts, file)));
    session = await ort.TrainingSession.create({
      checkpointState: bytes('checkpoint'),
      trainModel: bytes('training_model.onnx'),
      evalModel: bytes('eval_model.onnx'),
      optimizerModel: bytes('optimizer_model.onnx'),
    });
    initial = (await session.getContiguousParameters(true)).data.slice();
    // Deterministic synthetic digits: pixels in [0, 1), labels 0..9.
    batches = Array.from({ length: STEPS + 1 }, (_, step) => {
      const pixels = randomArray(BATCH * 784, 1000 + step).map((value) => value / 4 + 0.5);
      const labels = BigInt64Array.from({ length: BATCH }, (_, i) => BigInt((i * 7 + step * 3) % 10));
      return {
        input: new ort.Tensor('float32', pixels, [BATCH, 784]),
        labels: new ort.Tensor('int64', labels, [BATCH]),
      };
    });
  });

  after(async () => {
    await session?.release();
  });

  const readParameters = async () => (await session.getContiguousParameters(true)).data.slice();

  for (const simd of BUILDS) {
    test(`train, update and evaluate with EMA weights, bit-exact, ${buildName(simd)} build`, { skip }, async () => {
      // Same starting weights for every build (the optimizer state differs,
      // which does not matter: the reference follows the weights read back).
      const start = initial.slice();
      await session.loadParametersBuffer(new Uint8Array(start.buffer), true);

      const decay = 0.9999;
      const ema = await createOrtEma(session, { decay, useNumUpdates: true, simd });
      try {
        assert.equal(ema.simd, simd);
        assert.equal(ema.size, initial.length);
        assert.equal(ema.size, await session.getParametersSize(true));
        assert.equal(ema.decay, Math.fround(decay));
        assert.equal(ema.numUpdates, 0);
        assertSameBits(ema.shadow(), initial, 'initial shadow');

        // Float32 reference: s = s - w*(s - p), LitEma's warmup decay.
        const reference = initial.slice();
        let parameters = initial;
        for (let step = 1; step <= STEPS; step++) {
          const outputs = await session.runTrainStep(batches[step - 1]);
          assert.ok(Number.isFinite(outputs[LOSS].data[0]), 'training loss is finite');
          await session.runOptimizerStep();
          await session.lazyResetGrad();

          const decayUsed = (await ema.update()).decay;
          parameters = await readParameters();
          const expectedDecay = warmupDecay(decay, step);
          assert.equal(decayUsed, expectedDecay, `decay at update ${step}`);
          assert.equal(ema.numUpdates, step);
          referenceStep(reference, parameters, expectedDecay);
          assertSameBits(ema.shadow(), reference, `shadow after update ${step}`);
        }
        // The run must have moved the weights, or the checks above prove little.
        assert.notEqual(firstBitDifference(parameters, initial), -1, 'training changed the weights');
        assert.notEqual(firstBitDifference(ema.shadow(), parameters), -1, 'the EMA lags the weights');

        const state = ema.stateDict();
        assert.deepEqual([...state.keys()], ['decay', 'num_updates', 'parameters']);
        assert.deepEqual(Array.from(state.get('num_updates')), [STEPS]);
        assertSameBits(state.get('parameters'), reference, 'stateDict parameters');

        // Evaluate with the EMA weights; the training weights come back.
        const training = await readParameters();
        const rawLoss = (await session.runEvalStep(batches[STEPS]))[LOSS].data[0];
        const emaLoss = await ema.withEma(async () => {
          assertSameBits(await readParameters(), reference, 'weights inside withEma');
          return (await session.runEvalStep(batches[STEPS]))[LOSS].data[0];
        });
        assert.ok(Number.isFinite(emaLoss), 'EMA eval loss is finite');
        assert.notEqual(emaLoss, rawLoss, 'evaluation saw different weights');
        assertSameBits(await readParameters(), training, 'weights after withEma');
        assert.equal(ema.numUpdates, STEPS, 'withEma does not step the EMA');
        assertSameBits(ema.shadow(), reference, 'shadow after withEma');

        // withEma restores when fn throws, too.
        await assert.rejects(
          ema.withEma(() => {
            throw new Error('boom');
          }),
          /boom/,
        );
        assertSameBits(await readParameters(), training, 'weights after a throwing withEma');

        // store / copyTo / restore by hand.
        await ema.store();
        await ema.copyTo();
        assertSameBits(await readParameters(), reference, 'weights after copyTo');
        await ema.restore();
        assertSameBits(await readParameters(), training, 'weights after restore');

        // A checkpoint of the EMA loads into a fresh EMA of the session, and
        // copyTo then puts the same weights in as the original's would.
        const copy = await createOrtEma(session, { decay: 0.5, simd });
        try {
          await copy.loadState(ema.save());
          assertSameBits(copy.shadow(), reference, 'shadow loaded from save()');
          assert.equal(copy.numUpdates, STEPS);
          await copy.copyTo();
          assertSameBits(await readParameters(), reference, 'weights after copyTo of the loaded EMA');
          await session.loadParametersBuffer(new Uint8Array(training.buffer), true);
        } finally {
          copy.dispose();
        }

        // Failing calls are covered with fake sessions below; the counter
        // reset is just forwarded to the core.
        ema.resetNumUpdates();
        assert.equal(ema.numUpdates, 0);
      } finally {
        ema.dispose();
      }
      assert.throws(() => ema.shadow(), /disposed/);
    });
  }
});

// ---- argument and error handling, with fake sessions --------------------------

/** A TrainingSession look-alike holding `size` parameters in JS. */
function fakeSession(size, seed = 1) {
  const session = {
    weights: randomArray(size, seed),
    loaded: [],
    // Overridable: what getContiguousParameters returns next.
    tensor: null,
    async getParametersSize() {
      return size;
    },
    async getContiguousParameters() {
      return session.tensor ?? { type: 'float32', dims: [size], data: session.weights.slice() };
    },
    async loadParametersBuffer(bytes) {
      assert.ok(bytes instanceof Uint8Array, 'loadParametersBuffer gets a Uint8Array');
      assert.equal(bytes.length, size * 4, 'loadParametersBuffer gets the right byte count');
      session.loaded.push(bytes);
      session.weights = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    },
  };
  return session;
}

describe('onnxruntime-web adapter: arguments and errors', () => {
  test('a session without the TrainingSession methods is a TypeError naming what came', async () => {
    await assert.rejects(createOrtEma(null), {
      name: 'TypeError',
      message: /^ema-wasm: createOrtEma: session must be an onnxruntime-web TrainingSession .*got null$/,
    });
    await assert.rejects(createOrtEma(new Float32Array(3)), { name: 'TypeError', message: /got a Float32Array/ });
    const partial = { getParametersSize: async () => 3, getContiguousParameters: async () => null };
    await assert.rejects(createOrtEma(partial), {
      name: 'TypeError',
      message: /got an object \(Object\) without loadParametersBuffer\. .*training API .* only in versions 1\.17\.0 to 1\.19\.2 .*removed in 1\.20\.$/,
    });
  });

  test('an InferenceSession (all onnxruntime-web has from 1.20 on) is named as such, with the versions that can train', async () => {
    // The shape of onnxruntime-web's InferenceSession: run(), no training methods.
    const inferenceSession = { run: async () => ({}), release: async () => {}, inputNames: ['input'], outputNames: ['output'] };
    await assert.rejects(createOrtEma(inferenceSession), {
      name: 'TypeError',
      message: /without getParametersSize, getContiguousParameters, loadParametersBuffer \(an InferenceSession, which cannot train\)\. onnxruntime-web's training API .* 1\.17\.0 to 1\.19\.2/,
    });
  });

  test('options: unknown keys and bad values are refused', async () => {
    const session = fakeSession(4);
    await assert.rejects(createOrtEma(session, { decay: 0.9, warmup: true }), {
      name: 'TypeError',
      message:
        "ema-wasm: createOrtEma: unknown option 'warmup'; expected recipe, decay, useNumUpdates, nonFinite, simd, wasm, threads, background, minDecay, updateAfterStep, useEmaWarmup, invGamma, power, foreach, useWarmup, warmupGamma, warmupPower, excludeBuffers, beta, updateEvery, minValue, paramOrBufferNamesNoEma, ignoreNames, ignoreStartswithNames, emaMomentum, emaOverwriteFrequency, sigmaRel, gamma, batchSize, debias",
    });
    await assert.rejects(createOrtEma(session, 'fast'), { name: 'TypeError', message: /options must be an object/ });
    await assert.rejects(createOrtEma(session, { decay: 2 }), { name: 'RangeError', message: /^ema-wasm: createOrtEma: options\.decay must be (a number )?in \[0, 1\], got (number )?2$/ });
    await assert.rejects(createOrtEma(session, { simd: 'yes' }), { name: 'TypeError', message: /options\.simd/ });
  });

  test('the session must give a float32 tensor of getParametersSize values', async () => {
    const session = fakeSession(4);
    session.tensor = { type: 'float64', data: new Float64Array(4) };
    await assert.rejects(createOrtEma(session), { name: 'Error', message: /must give a float32 tensor, got a 'float64' tensor/ });
    session.tensor = { type: 'float32', data: new Float32Array(5) };
    await assert.rejects(createOrtEma(session), { name: 'Error', message: /gave 5 parameters; the EMA tracks 4/ });
    const empty = fakeSession(0);
    await assert.rejects(createOrtEma(empty), { name: 'Error', message: /no trainable parameters/ });
  });

  for (const simd of BUILDS) {
    test(`a failing update or store leaves the EMA unchanged, ${buildName(simd)} build`, async () => {
      const session = fakeSession(9);
      const ema = await createOrtEma(session, { decay: 0.5, simd });
      session.weights = randomArray(9, 2);
      assert.equal((await ema.update()).decay, warmupDecay(0.5, 1));
      const shadow = ema.shadow();

      session.tensor = { type: 'float32', data: new Float32Array(8) };
      await assert.rejects(ema.update(), { name: 'Error', message: /^ema-wasm: update: .*gave 8 parameters; the EMA tracks 9$/ });
      session.tensor = { type: 'int32', data: new Int32Array(9) };
      await assert.rejects(ema.update(), { name: 'Error', message: /float32 tensor/ });
      session.tensor = { data: new Float32Array(9).subarray(0, 3) };
      await assert.rejects(ema.update(), { name: 'Error', message: /gave 3 parameters/ });
      assert.equal(ema.numUpdates, 1);
      assertSameBits(ema.shadow(), shadow, 'shadow after failed updates');

      // The same check guards store: nothing half-stored is left behind.
      await assert.rejects(ema.store(), { name: 'Error', message: /^ema-wasm: store: .*gave 3 parameters/ });
      await assert.rejects(ema.restore(), { name: 'Error', message: /nothing is stored; call store\(\) first/ });

      // A view into a larger buffer is fine: the core copies it in.
      session.tensor = null;
      const big = new Float32Array(20);
      big.set(session.weights, 5);
      session.tensor = { type: 'float32', data: big.subarray(5, 14) };
      await ema.update();
      assert.equal(ema.numUpdates, 2);
      ema.dispose();
    });

    test(`restore before store is an Error; copyTo hands over an owned copy, ${buildName(simd)} build`, async () => {
      const session = fakeSession(6);
      const ema = await createOrtEma(session, { simd });
      await assert.rejects(ema.restore(), { name: 'Error', message: 'ema-wasm: restore: nothing is stored; call store() first' });
      await assert.rejects(ema.withEma('not a function'), {
        name: 'TypeError',
        message: 'ema-wasm: withEma: fn must be a function, got the string "not a function"',
      });

      const training = randomArray(6, 3);
      session.weights = training.slice();
      await ema.update();
      await ema.copyTo();
      const handed = session.loaded.at(-1);
      const handedValues = new Float32Array(handed.buffer.slice(handed.byteOffset, handed.byteOffset + handed.length));
      assertSameBits(handedValues, ema.shadow(), 'copyTo bytes');
      // The bytes are a copy: stepping the EMA does not change them.
      session.weights = randomArray(6, 4);
      await ema.update();
      assertSameBits(
        new Float32Array(handed.buffer.slice(handed.byteOffset, handed.byteOffset + handed.length)),
        handedValues,
        'copyTo bytes after another update',
      );
      // Its buffer is just the 6 floats, not a window on a WebAssembly memory.
      assert.equal(handed.byteOffset, 0);
      assert.equal(handed.buffer.byteLength, 6 * 4);

      ema.dispose();
      ema.dispose();
      await assert.rejects(ema.update(), /disposed; create a new one with createOrtEma/);
      await assert.rejects(ema.copyTo(), /disposed/);
      assert.throws(() => ema.size, /disposed/);
    });
  }
});

describe('onnxruntime-web adapter: save and loadState', () => {
  for (const simd of BUILDS) {
    test(`a file loads into an EMA of another session, and copyTo loads it into that session, ${buildName(simd)} build`, async () => {
      const session = fakeSession(7);
      const saved = await createOrtEma(session, { decay: 0.5, simd });
      for (const seed of [11, 12]) {
        session.weights = randomArray(7, seed);
        await saved.update();
      }
      const bytes = saved.save({ prefix: 'model_ema.' });
      assert.ok(bytes instanceof Uint8Array);

      const other = fakeSession(7, 5);
      const loaded = await createOrtEma(other, { decay: 0.9, simd });
      const before = other.weights.slice();
      await loaded.loadState(bytes, { prefix: 'model_ema.' });
      assert.equal(loaded.numUpdates, 2);
      assert.equal(loaded.decay, saved.decay);
      assertSameBits(loaded.shadow(), saved.shadow(), 'loaded shadow');
      assert.deepEqual([...loaded.stateDict().keys()], ['decay', 'num_updates', 'parameters']);
      assertSameBits(other.weights, before, 'loadState leaves the session alone');
      assert.equal(other.loaded.length, 0);
      await loaded.copyTo();
      assertSameBits(other.weights, saved.shadow(), 'session weights after copyTo');

      // A file of another size is refused, and changes nothing.
      const small = await createOrtEma(fakeSession(3), { simd });
      await assert.rejects(loaded.loadState(small.save()), { message: /^ema-wasm: loadState: / });
      assertSameBits(loaded.shadow(), saved.shadow(), 'shadow after a refused file');

      for (const ema of [saved, loaded, small]) ema.dispose();
      assert.throws(() => loaded.save(), { message: 'ema-wasm: save: this EMA was disposed; create a new one with createOrtEma()' });
      await assert.rejects(loaded.loadState(bytes), /loadState: this EMA was disposed/);
    });
  }
});

// ---- scopes: no call of any EMA of a session can land inside a withEma -------

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fake session whose reads and writes take `delay` ms, like a real one. */
function slowSession(size, delay) {
  const session = fakeSession(size);
  const { getContiguousParameters, loadParametersBuffer } = session;
  session.getContiguousParameters = async (...args) => {
    await tick(delay);
    return getContiguousParameters(...args);
  };
  session.loadParametersBuffer = async (bytes, ...args) => {
    await tick(delay);
    if (session.failNextLoad) {
      session.failNextLoad = false;
      throw new Error('session is busy');
    }
    return loadParametersBuffer(bytes, ...args);
  };
  return session;
}

describe('onnxruntime-web adapter: scopes across EMAs of one session', () => {
  for (const simd of BUILDS) {
    test(`a second EMA cannot store, update, copy or restore while the first evaluates, ${buildName(simd)} build`, async () => {
      const session = slowSession(8, 2);
      const fast = await createOrtEma(session, { decay: 0.9, simd });
      const slow = await createOrtEma(session, { decay: 0.99, simd });
      session.weights = randomArray(8, 5);
      await fast.update();
      await slow.update();
      const training = session.weights.slice();
      let evaluated = null;
      const evaluation = fast.withEma(async () => {
        await tick(10);
        evaluated = session.weights.slice();
      });
      for (const method of ['withEma', 'update', 'store', 'copyTo', 'restore']) {
        await assert.rejects(method === 'withEma' ? slow.withEma(() => {}) : slow[method](), {
          name: 'Error',
          message: new RegExp(`^ema-wasm: ${method}: the session is held by an open withEma\\(\\) of an onnxruntime-web EMA`),
        });
      }
      await evaluation;
      assertSameBits(evaluated, fast.shadow(), 'fn saw the first EMA');
      assertSameBits(session.weights, training, 'training weights back');
      assert.equal(slow.numUpdates, 1);
    });

    test(`the scope stays closed until the restore has landed, ${buildName(simd)} build`, async () => {
      const session = slowSession(8, 20);
      const ema = await createOrtEma(session, { decay: 0.5, simd });
      const other = await createOrtEma(session, { simd });
      session.weights = randomArray(8, 6);
      await ema.update();
      const training = session.weights.slice();
      let fnDone = false;
      const evaluation = ema.withEma(() => { fnDone = true; });
      while (!fnDone) await tick(1);
      // fn has returned; the restore's loadParametersBuffer is still under way.
      await assert.rejects(ema.withEma(() => {}), /not allowed while withEma\(\) is running/);
      await assert.rejects(other.withEma(() => {}), /the session is held by an open withEma\(\)/);
      await assert.rejects(other.update(), /the session is held by an open withEma\(\)/);
      await evaluation;
      assertSameBits(session.weights, training, 'training weights back');
    });

    test(`inside withEma the core EMA behind .ema refuses to store over the training weights, ${buildName(simd)} build`, async () => {
      const session = slowSession(8, 1);
      const ema = await createOrtEma(session, { simd });
      session.weights = randomArray(8, 7);
      const training = session.weights.slice();
      await ema.withEma(() => {
        assert.throws(() => ema.ema.store([{ name: 'parameters', data: new Float32Array(8) }]), /store: not allowed while withEma\(\) is running/);
        assert.throws(() => ema.ema.update([{ name: 'parameters', data: new Float32Array(8) }]), /update: not allowed while withEma\(\) is running/);
      });
      assertSameBits(session.weights, training, 'training weights back');
      assert.equal(ema.numUpdates, 0);
    });

    test(`an update still reading the session keeps withEma out, ${buildName(simd)} build`, async () => {
      const session = slowSession(8, 10);
      const ema = await createOrtEma(session, { simd });
      const other = await createOrtEma(session, { simd });
      const reading = ema.update();
      await assert.rejects(other.withEma(() => {}), /the session is held by update\(\) of an onnxruntime-web EMA, which is still reading it/);
      // Two reads may run together.
      await Promise.all([reading, other.update()]);
      assert.equal(ema.numUpdates, 1);
      assert.equal(other.numUpdates, 1);
    });

    test(`a restore the session refuses is an Error with the stored weights kept, ${buildName(simd)} build`, async () => {
      const session = slowSession(8, 1);
      const ema = await createOrtEma(session, { simd });
      const training = session.weights.slice();
      const thrown = new Error('fn failed');
      session.failNextLoad = false;
      await assert.rejects(
        ema.withEma(() => { session.failNextLoad = true; throw thrown; }),
        (error) => /^ema-wasm: withEma: could not load the stored weights back into the session \(session is busy\)/.test(error.message) &&
          error.cause === thrown,
      );
      await ema.restore();
      assertSameBits(session.weights, training, 'a later restore() puts them back');
    });
  }
});
