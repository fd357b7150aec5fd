// The baselines that run in workers: the plain JS loop, and TF.js. Started
// by remotes.mjs (WorkerRemote) with workerData { role, modelKey, ... }; each
// builds its own copy of the model's parameters (params.mjs) and answers
// two requests: { type: 'verify' } and { type: 'time', warmup, reps }.
//
// Why the JS loop runs in a worker: V8 compiles typed-array loops with fewer
// checks while no ArrayBuffer in the isolate has ever been detached; the
// first detach (a transfer, any WebAssembly memory.grow) makes them ~1.6x
// slower for good. The main thread runs ema-wasm, so its isolate has
// detached buffers. The plain JS loop baseline therefore runs in a worker
// whose isolate never saw a detach (a user without this package); 'plain JS
// loop (detached isolate)' is the same loop in a worker that detached one
// buffer first, for information. This module imports nothing that could
// detach a buffer (not js/, which the TF.js adapter worker loads itself).
// TF.js rows run in workers too (the cpu backend's kernels are typed-array
// loops; the idiomatic-cpu worker never detaches).

import { isMainThread, parentPort, workerData } from 'node:worker_threads';

import { IdiomaticTfjsEma, JsLoopEma } from './baselines.mjs';
import { DECAY, modelByKey } from './models.mjs';
import { fillRandom, makeParams, touchArrays } from './params.mjs';
import { timeOps } from './timing.mjs';
import { fnv1a64, VERIFY_STEPS } from './verify.mjs';

/** The plain JS loop in its own isolate; `detach` detaches one buffer first. */
function jsLoopWorker({ modelKey, detach }) {
  if (detach) {
    const buffer = new ArrayBuffer(8);
    structuredClone(buffer, { transfer: [buffer] });
    if (buffer.byteLength !== 0) throw new Error('the buffer did not detach');
  }
  const { params, random } = makeParams(modelByKey(modelKey).spec());
  const arrays = params.map((p) => p.data);
  const ema = new JsLoopEma(arrays, DECAY);
  const counter = { next: 0 };
  return {
    verify() {
      const decays = [];
      for (let step = 0; step < VERIFY_STEPS; step++) {
        fillRandom(arrays, random);
        decays.push(ema.update(arrays));
      }
      return { decays, hash: fnv1a64(ema.shadows) };
    },
    time({ warmup, reps }) {
      return { samples: timeOps(() => ema.update(arrays), (i) => touchArrays(arrays, i), warmup, reps, counter) };
    },
  };
}

/**
 * TF.js on one backend, one way of keeping the EMA:
 *   idiomatic: IdiomaticTfjsEma (baselines.mjs), ops on shadow tf.Variables;
 *   adapter:   createTfjsEma(variables, { tf }) then ema.update().
 * Weights are tf.Variables holding the same values as everywhere else.
 */
async function tfjsWorker({ modelKey, backend, mode }) {
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend)) || (await tf.ready(), tf.getBackend() !== backend)) {
    throw new Error(`TF.js backend '${backend}' failed to initialise`);
  }
  tf.enableProdMode(); // only silences the "install tfjs-node" banner
  const { params, random } = makeParams(modelByKey(modelKey).spec());
  const variables = params.map(({ data, shape }, i) =>
    tf.tidy(() => tf.variable(tf.tensor(data.slice(), shape, 'float32'), true, `w${i}_${modelKey}`)),
  );

  let update;
  let shadows;
  if (mode === 'idiomatic') {
    const ema = new IdiomaticTfjsEma(tf, variables, DECAY, modelKey);
    update = () => ema.update();
    shadows = () => ema.shadows();
  } else {
    const { createTfjsEma } = await import('../../js/adapters/tfjs.js');
    const ema = await createTfjsEma(variables, { tf, decay: DECAY, simd: true, threads: 1 });
    update = () => ema.update().decay;
    shadows = () => variables.map((v) => ema.shadow(v.name));
  }
  const tensorsAtStart = tf.memory().numTensors;
  const counter = { next: 0 };
  return {
    verify() {
      const decays = [];
      for (let step = 0; step < VERIFY_STEPS; step++) {
        fillRandom(params.map((p) => p.data), random);
        params.forEach(({ data, shape }, i) => {
          const value = tf.tensor(data.slice(), shape, 'float32');
          variables[i].assign(value);
          value.dispose();
        });
        decays.push(update());
      }
      return { decays, hash: fnv1a64(shadows()) };
    },
    time({ warmup, reps }) {
      const samples = timeOps(update, null, warmup, reps, counter);
      const leaked = tf.memory().numTensors - tensorsAtStart;
      return { samples, leaked };
    },
  };
}

if (isMainThread) throw new Error('bench/lib/worker.mjs runs in a worker started by bench/compare.mjs');

// Replies as remotes.mjs expects: { ok: true, ready: true } once, then one
// { ok: true, ...result } or { ok: false, error } per request.
const { role } = workerData;
const ready = role === 'jsloop' ? Promise.resolve(jsLoopWorker(workerData)) : tfjsWorker(workerData);
ready.then(
  (handler) => {
    parentPort.on('message', (message) => {
      try {
        parentPort.postMessage({ ok: true, ...handler[message.type](message) });
      } catch (error) {
        parentPort.postMessage({ ok: false, error: String(error?.stack ?? error) });
      }
    });
    parentPort.postMessage({ ok: true, ready: true });
  },
  (error) => parentPort.postMessage({ ok: false, error: String(error?.stack ?? error) }),
);
