// Side-by-side benchmark of ema-wasm against what a user has without it: the
// plain JS loop, idiomatic TensorFlow.js, the same C core built natively, and
// the memory-bandwidth floor (TypedArray.prototype.set / memcpy), on four
// model shapes, in one run.
//
//   node bench/compare.mjs                    full run (a few minutes)
//   node bench/compare.mjs --quick            fewer repetitions, a smoke test
//   node bench/compare.mjs --only 1M,tiny     some models (1M, resnet50, 64M, tiny2000; 16M only on request)
//   node bench/compare.mjs --json PATH        results file (default bench/results.json)
//   node bench/compare.mjs --no-native --no-tfjs --tfjs-large
//
// scripts/readme-perf.mjs turns the JSON into the README's performance table.
//
// Before any timing, every model is verified: the SIMD build, the scalar
// build, the resident mode, the plain JS loop (both workers) and the native
// binary (both paths) must give bit-identical shadows after the same updates
// (FNV-1a 64 over the shadow bytes, decays compared too), or the run exits
// with code 1. TF.js rows are checked the same way, for information only.
//
// Two lessons from the first benchmark shape this file:
//
// 1. Where JS loops run. V8 compiles typed-array loops with fewer checks while
//    no ArrayBuffer in the isolate has ever been detached; the first detach
//    (a transfer, any WebAssembly memory.grow) makes them ~1.6x slower for
//    good. The plain JS loop baseline therefore runs in a worker whose isolate
//    never saw a detach (a user without this package); 'plain JS loop
//    (detached isolate)' is the same loop in a worker that detached one buffer
//    first, for information. TF.js rows run in workers too (the cpu backend's
//    kernels are typed-array loops; the idiomatic-cpu worker never detaches).
//
// 2. Noise (2 cores, shared VM). Variants are timed in many short interleaved
//    rounds, a few operations of each per round with the order rotating, so a
//    burst of load slows all of them alike; on the models that fit in cache
//    each block starts with two untimed operations so its own data is back in
//    cache (after one, the first timed operation is still measurably slower). Workers and the native child process run only while the main
//    thread waits for them. TF.js is timed in a second phase, in workers
//    started only then, so its garbage and background GC cannot disturb the
//    other rows. The numbers are medians (and minimums) of the timed
//    operations after warm-up; expect +-15% between runs on a shared VM.
//
// 3. The native rows (bench/native.c, CMake target bench_native, built here
//    into build/bench-native with -O3 -march=native -ffp-contract=off) run in
//    a child process driven over stdin/stdout, on the same parameter values
//    (same xorshift32 generator and seed).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import { createEma, hasWasmSimd } from '../js/index.js';
import { createCommandLine, resolvedPath, UsageError } from '../scripts/flags.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = `usage: node bench/compare.mjs [--quick] [--only MODEL[,MODEL]] [--json PATH]
                              [--no-native] [--no-tfjs] [--tfjs-large]
  models: 1M, resnet50, 64M, tiny2000
  --json PATH    where to write the results (default bench/results.json)
  --no-native    skip the native C rows (no cmake/gcc build)
  --no-tfjs      skip the TF.js rows
  --tfjs-large   also time TF.js on resnet50 and 64M (slow: seconds per update)`;

// ---- configuration ---------------------------------------------------------

const DECAY = 0.9999; // LitEma's default, with warmup on (useNumUpdates)
const VERIFY_STEPS = 3;

/** ResNet-50 (torchvision) trainable parameters: 161 tensors, 25,557,032 floats. */
function resnet50Spec() {
  const spec = [];
  const add = (name, shape) => spec.push({ name, shape });
  const bn = (prefix, channels) => {
    add(`${prefix}.weight`, [channels]);
    add(`${prefix}.bias`, [channels]);
  };
  add('conv1.weight', [64, 3, 7, 7]);
  bn('bn1', 64);
  let inplanes = 64;
  [[64, 3], [128, 4], [256, 6], [512, 3]].forEach(([planes, blocks], layer) => {
    for (let block = 0; block < blocks; block++) {
      const p = `layer${layer + 1}.${block}`;
      add(`${p}.conv1.weight`, [planes, inplanes, 1, 1]);
      bn(`${p}.bn1`, planes);
      add(`${p}.conv2.weight`, [planes, planes, 3, 3]);
      bn(`${p}.bn2`, planes);
      add(`${p}.conv3.weight`, [planes * 4, planes, 1, 1]);
      bn(`${p}.bn3`, planes * 4);
      if (block === 0) {
        add(`${p}.downsample.0.weight`, [planes * 4, inplanes, 1, 1]);
        bn(`${p}.downsample.1`, planes * 4);
      }
      inplanes = planes * 4;
    }
  });
  add('fc.weight', [1000, 2048]);
  add('fc.bias', [1000]);
  return spec;
}

function uniformSpec(count, shape, prefix) {
  return Array.from({ length: count }, (_, i) => ({ name: `${prefix}.${i}.weight`, shape }));
}

// plan: warm-up operations per variant; interleaved rounds (tfRounds for the
// TF.js phase); per round and variant one block of blockWarmup untimed then
// at most repsPerRound timed operations, fewer for slow variants so that a
// block takes about blockMs. Many short rounds rather than a few long ones:
// load bursts on a shared VM last seconds, and short rounds spread them over
// every variant. (Models past the caches need no untimed operation per block.)
const MODELS = [
  {
    key: '1M',
    label: '1M params, 8 tensors',
    spec: () => uniformSpec(8, [512, 256], 'layers'),
    tfjs: true,
    full: { warmup: 10, rounds: 25, repsPerRound: 4, blockWarmup: 2, blockMs: 100, tfRounds: 12 },
    quick: { warmup: 3, rounds: 3, repsPerRound: 3, blockWarmup: 2, blockMs: 50, tfRounds: 2 },
  },
  {
    key: 'resnet50',
    label: 'ResNet-50, 161 tensors',
    spec: resnet50Spec,
    tfjs: false,
    full: { warmup: 2, rounds: 12, repsPerRound: 2, blockWarmup: 0, blockMs: 150, tfRounds: 3 },
    quick: { warmup: 1, rounds: 2, repsPerRound: 1, blockWarmup: 0, blockMs: 100, tfRounds: 1 },
  },
  {
    // Not in the default run: the model of the first benchmark's 3x target
    // (npm run bench:update runs it with 1M).
    key: '16M',
    label: '16M params, 64 tensors',
    spec: () => uniformSpec(64, [512, 512], 'layers'),
    tfjs: false,
    inDefaultRun: false,
    full: { warmup: 2, rounds: 12, repsPerRound: 2, blockWarmup: 0, blockMs: 150, tfRounds: 3 },
    quick: { warmup: 1, rounds: 2, repsPerRound: 1, blockWarmup: 0, blockMs: 100, tfRounds: 1 },
  },
  {
    key: '64M',
    label: '64M params, 64 tensors',
    spec: () => uniformSpec(64, [1024, 1024], 'layers'),
    tfjs: false,
    full: { warmup: 2, rounds: 12, repsPerRound: 1, blockWarmup: 0, blockMs: 150, tfRounds: 3 },
    quick: { warmup: 1, rounds: 2, repsPerRound: 1, blockWarmup: 0, blockMs: 100, tfRounds: 1 },
  },
  {
    key: 'tiny2000',
    label: '2000 tensors of 64',
    spec: () => uniformSpec(2000, [64], 'tiny'),
    tfjs: true,
    full: { warmup: 10, rounds: 25, repsPerRound: 4, blockWarmup: 2, blockMs: 100, tfRounds: 12 },
    quick: { warmup: 3, rounds: 3, repsPerRound: 3, blockWarmup: 2, blockMs: 50, tfRounds: 2 },
  },
];

// The rows. bytes: bytes moved per parameter (update: read param, read
// shadow, write shadow; copy: read, write); ref: the row this one is compared
// with (time ratio median / ref median, times refScale); jsLoop: show the
// speedup over the plain JS loop.
const VARIANTS = [
  { id: 'simd', label: 'ema-wasm update(params), SIMD', bytes: 12, ref: 'nativeCopyin', jsLoop: true },
  { id: 'scalar', label: 'ema-wasm update(params), scalar', bytes: 12, ref: 'nativeCopyin', jsLoop: true },
  { id: 'resident', label: 'ema-wasm resident update(), SIMD', bytes: 12, ref: 'nativeDirect', jsLoop: true },
  { id: 'nativeCopyin', label: 'native C: copy-in + update', bytes: 12, ref: 'nativeDirect', jsLoop: true },
  { id: 'nativeDirect', label: 'native C: update alone', bytes: 12, jsLoop: true },
  { id: 'jsLoop', label: 'plain JS loop', bytes: 12, jsLoop: true },
  { id: 'jsLoopDetached', label: 'plain JS loop (detached isolate)', bytes: 12, ref: 'jsLoop', jsLoop: true },
  { id: 'tfjsCpuIdiomatic', label: 'TF.js cpu, idiomatic ops', bytes: 12, jsLoop: true },
  { id: 'tfjsCpuAdapter', label: 'TF.js cpu, ema-wasm adapter', bytes: 12, ref: 'tfjsCpuIdiomatic', jsLoop: true },
  { id: 'tfjsWasmIdiomatic', label: 'TF.js wasm, idiomatic ops', bytes: 12, jsLoop: true },
  { id: 'tfjsWasmAdapter', label: 'TF.js wasm, ema-wasm adapter', bytes: 12, ref: 'tfjsWasmIdiomatic', jsLoop: true },
  { id: 'copyTo', label: 'ema-wasm copyTo(params), SIMD', bytes: 8, ref: 'set' },
  { id: 'storeRestore', label: 'ema-wasm store+restore(params), SIMD', bytes: 16, ref: 'set', refScale: 2 },
  { id: 'residentCopyTo', label: 'ema-wasm resident copyTo(), SIMD', bytes: 8, ref: 'set' },
  { id: 'residentStoreRestore', label: 'ema-wasm resident store()+restore()', bytes: 16, ref: 'set', refScale: 2 },
  { id: 'set', label: 'TypedArray.set (copy floor)', bytes: 8, ref: 'nativeMemcpy' },
  { id: 'nativeMemcpy', label: 'native C: memcpy', bytes: 8 },
];
const VARIANT = new Map(VARIANTS.map((variant) => [variant.id, variant]));

// ---- shared by every thread: data, the JS loop, hashing ---------------------

function modelByKey(key) {
  return MODELS.find((model) => model.key === key);
}

function sizeOf(shape) {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

function seedOf(spec) {
  const total = spec.reduce((sum, { shape }) => sum + sizeOf(shape), 0);
  return (0x9e3779b9 ^ total ^ (spec.length << 20)) >>> 0 || 1;
}

/** xorshift32; bench/native.c has the same generator and mapping to [-1, 1). */
function makeRandom(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state >>> 8) / 8388608 - 1;
  };
}

function fillRandom(arrays, random) {
  for (const data of arrays) {
    for (let i = 0; i < data.length; i++) data[i] = random();
  }
}

/** The model's parameters, filled from a fresh generator; returns both. */
function makeParams(spec) {
  const random = makeRandom(seedOf(spec));
  const params = spec.map(({ name, shape }) => ({ name, shape, data: new Float32Array(sizeOf(shape)) }));
  fillRandom(params.map((p) => p.data), random);
  return { params, random };
}

/**
 * One element of every tensor moves before each timed operation, as a
 * training step would change the weights, so nothing can treat two steps as
 * the same work. Same rule in bench/native.c.
 */
function touchArrays(arrays, iteration) {
  for (const data of arrays) {
    if (data.length === 0) continue;
    const index = (iteration * 7919) % data.length;
    data[index] = Math.fround(data[index] + 1 / 1024);
  }
}

/** LitEma's decay for the next step, in float32, as the C core computes it. */
function nextDecay(state) {
  let decay = state.decay;
  if (state.numUpdates >= 0) {
    state.numUpdates += 1;
    const n = state.numUpdates;
    const ratio = Math.fround(Math.fround(1 + n) / Math.fround(10 + n));
    if (ratio < decay) decay = ratio;
  }
  return decay;
}

/** What a user writes without this package: LitEma's step as a loop, rounded like float32. */
class JsLoopEma {
  constructor(arrays) {
    this.state = { decay: Math.fround(DECAY), numUpdates: 0 };
    this.shadows = arrays.map((data) => Float32Array.from(data));
  }

  update(arrays) {
    const decay = nextDecay(this.state);
    const w = Math.fround(1 - decay);
    for (let t = 0; t < arrays.length; t++) {
      const p = arrays[t];
      const s = this.shadows[t];
      for (let i = 0; i < s.length; i++) {
        s[i] = Math.fround(s[i] - Math.fround(w * Math.fround(s[i] - p[i])));
      }
    }
    return decay;
  }
}

/** FNV-1a 64 over the bytes of the arrays, in order; as a 16-digit hex string. */
function fnv1a64(arrays) {
  let lo = 0x84222325;
  let hi = 0xcbf29ce4;
  for (const array of arrays) {
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < bytes.length; i++) {
      lo = (lo ^ bytes[i]) >>> 0;
      // h *= 0x100000001b3 (mod 2^64) = h * 0x1b3 + (h << 40)
      const low = lo * 0x1b3; // < 2^41: exact in a double
      hi = (Math.imul(hi, 0x1b3) + Math.floor(low / 4294967296) + (lo << 8)) >>> 0;
      lo = low >>> 0;
    }
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

let sink = 0; // keeps results alive so no call can be dropped

/**
 * `warmup` untimed then `reps` timed calls of op; `touch(iteration)` runs
 * before each one, outside timing. Returns the samples in ms.
 */
function timeOps(op, touch, warmup, reps, counter) {
  for (let i = 0; i < warmup; i++) {
    touch?.(counter.next++);
    sink += op() ?? 0;
  }
  const samples = [];
  for (let i = 0; i < reps; i++) {
    touch?.(counter.next++);
    const start = performance.now();
    const result = op();
    samples.push(performance.now() - start);
    sink += result ?? 0;
  }
  return samples;
}

// ---- workers ---------------------------------------------------------------

/** The plain JS loop in its own isolate; `detach` detaches one buffer first. */
function jsLoopWorker({ modelKey, detach }) {
  if (detach) {
    const buffer = new ArrayBuffer(8);
    structuredClone(buffer, { transfer: [buffer] });
    if (buffer.byteLength !== 0) throw new Error('the buffer did not detach');
  }
  const { params, random } = makeParams(modelByKey(modelKey).spec());
  const arrays = params.map((p) => p.data);
  const ema = new JsLoopEma(arrays);
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
 *   idiomatic: a shadow tf.Variable per weight and, per step,
 *              tf.tidy(() => { for each: shadow.assign(shadow.sub(shadow.sub(param).mul(oneMinusDecay))) })
 *              (one tidy around the loop so no tensor leaks);
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
    const state = { decay: Math.fround(DECAY), numUpdates: 0 };
    const shadowVars = variables.map((v, i) => tf.variable(v.clone(), false, `ema${i}_${modelKey}`));
    update = () => {
      const decay = nextDecay(state);
      const oneMinusDecay = Math.fround(1 - decay);
      tf.tidy(() => {
        for (let i = 0; i < shadowVars.length; i++) {
          const shadow = shadowVars[i];
          shadow.assign(shadow.sub(shadow.sub(variables[i]).mul(oneMinusDecay)));
        }
      });
      return decay;
    };
    shadows = () => shadowVars.map((v) => v.dataSync());
  } else {
    const { createTfjsEma } = await import('../js/adapters/tfjs.js');
    const ema = await createTfjsEma(variables, { tf, decay: DECAY, simd: true });
    update = () => ema.update();
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

function workerMain() {
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
}

// ---- the main thread's view of workers and the native process ---------------

/** Request/reply over a stream of messages, one outstanding request at a time. */
class Remote {
  constructor(name) {
    this.name = name;
    this.waiting = [];
    this.closed = null;
    this.ready = this.next();
  }

  next() {
    if (this.closed !== null) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  receive(reply) {
    const pending = this.waiting.shift();
    if (pending === undefined) return;
    if (reply.ok === false || reply.error !== undefined) {
      pending.reject(new Error(`${this.name}: ${reply.error}`));
    } else {
      pending.resolve(reply);
    }
  }

  fail(error) {
    this.closed = error;
    for (const pending of this.waiting.splice(0)) pending.reject(error);
  }
}

class WorkerRemote extends Remote {
  constructor(name, data) {
    super(name);
    this.worker = new Worker(new URL(import.meta.url), { workerData: data });
    this.worker.on('message', (reply) => this.receive(reply));
    this.worker.on('error', (error) => this.fail(new Error(`${name}: ${error.stack ?? error}`)));
    this.worker.on('exit', (code) => this.fail(new Error(`${name}: worker exited (code ${code})`)));
  }

  request(message) {
    const reply = this.next();
    this.worker.postMessage(message);
    return reply;
  }

  close() {
    return this.worker.terminate();
  }
}

class NativeRemote extends Remote {
  constructor(binary, spec) {
    super('native');
    const lengths = spec.map(({ shape }) => sizeOf(shape));
    this.child = spawn(binary, [runLengths(lengths), String(seedOf(spec))], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    this.child.stderr.on('data', (chunk) => (stderr += chunk));
    createInterface({ input: this.child.stdout }).on('line', (line) => this.receive(JSON.parse(line)));
    this.child.on('error', (error) => this.fail(error));
    this.child.on('exit', (code) => this.fail(new Error(`native: exited (code ${code}) ${stderr.trim()}`)));
  }

  request(line) {
    const reply = this.next();
    this.child.stdin.write(`${line}\n`);
    return reply;
  }

  close() {
    this.child.stdin.end('quit\n');
  }
}

function runLengths(lengths) {
  const items = [];
  for (let i = 0; i < lengths.length; ) {
    let j = i;
    while (j < lengths.length && lengths[j] === lengths[i]) j++;
    items.push(j - i > 1 ? `${lengths[i]}*${j - i}` : `${lengths[i]}`);
    i = j;
  }
  return items.join(',');
}

/** Builds bench_native (incremental) with CMake; returns { binary } or { skip }. */
function buildNative() {
  const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
  if (!has('cmake')) return { skip: 'cmake not found' };
  if (!has('gcc')) return { skip: 'gcc not found (apt-get install gcc)' };
  const dir = path.join(ROOT, 'build', 'bench-native');
  const binary = path.join(dir, 'bench_native');
  const log = path.join(ROOT, 'build', 'bench-native.log');
  mkdirSync(path.join(ROOT, 'build'), { recursive: true });
  const run = (args) => {
    const result = spawnSync('cmake', args, { cwd: ROOT, env: { ...process.env, CC: 'gcc' }, encoding: 'utf8' });
    writeFileSync(log, `$ cmake ${args.join(' ')}\n${result.stdout ?? ''}${result.stderr ?? ''}`, { flag: 'a' });
    return result.status === 0;
  };
  writeFileSync(log, '');
  const configured =
    existsSync(path.join(dir, 'CMakeCache.txt')) ||
    run(['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_TESTING=OFF', '-DEMA_SANITIZE=OFF']);
  const built = configured && run(['--build', dir, '--target', 'bench_native']);
  if (!built) {
    if (existsSync(binary)) return { binary, note: `rebuilding bench_native failed (see ${log}); the previous binary ran` };
    return { skip: `building bench_native failed (see ${log})` };
  }
  return { binary };
}

// ---- one model -------------------------------------------------------------

function median(sorted) {
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function sameBits(a, b) {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Waits for every remote to be ready; drops (with a note) those that fail. */
async function whenReady(remotes, model, notes) {
  await Promise.all(
    Object.entries(remotes).map(([id, remote]) =>
      remote.ready.catch((error) => {
        notes.push(`${model.key}: ${remote.name} skipped: ${error.message.split('\n')[0]}`);
        remote.close?.();
        delete remotes[id];
      }),
    ),
  );
}

/**
 * Warms every variant up (JIT tiers, Wasm tier-up, page faults), the last
 * warm-up operation timed to size the variant's blocks (about plan.blockMs),
 * then times them in interleaved rounds with the order rotating.
 */
async function timeInterleaved(timed, plan, rounds) {
  for (const variant of timed) {
    const [estimate] = await variant.run(plan.warmup, 1);
    variant.reps = Math.max(1, Math.min(plan.repsPerRound, Math.floor(plan.blockMs / Math.max(estimate, 1e-3))));
  }
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < timed.length; k++) {
      const variant = timed[(round + k) % timed.length]; // rotate who goes first
      variant.samples.push(...(await variant.run(plan.blockWarmup, variant.reps)));
    }
  }
}

function remoteRun(remote, message, model, notes) {
  return async (warmup, reps) => {
    const reply = await remote.request(typeof message === 'string' ? `${message} ${warmup} ${reps}` : { ...message, warmup, reps });
    if (reply.leaked) notes.push(`${model.key}: ${remote.name} leaked ${reply.leaked} tensors`);
    return reply.samples;
  };
}

/** Checks a hash and decays against the SIMD build's; fills verify. */
function verifier(verify, referenceDecays, mismatches) {
  return (id, hash, decays, required = true) => {
    const decaysMatch = decays.length === VERIFY_STEPS && decays.every((d, i) => Object.is(Math.fround(d), referenceDecays[i]));
    const identical = hash === verify.reference && decaysMatch;
    (required ? verify.variants : verify.informational)[id] = { hash, identical };
    if (!identical && required) mismatches.push(`${id} (hash ${hash}${decaysMatch ? '' : ', decays differ'})`);
  };
}

async function benchModel(model, options, nativeBuild, notes) {
  const plan = options.quick ? model.quick : model.full;
  const spec = model.spec();
  const totalParams = spec.reduce((sum, { shape }) => sum + sizeOf(shape), 0);
  const { params, random } = makeParams(spec);
  const arrays = params.map((p) => p.data);
  const say = (text) => console.log(`[${model.key}] ${text}`);
  say(`${totalParams.toLocaleString('en-US')} params in ${spec.length} tensors`);

  // Phase 1: ema-wasm, the JS loop, native C and the copy floor. The remotes
  // start first and build their own copies of the same values meanwhile.
  const remotes = {
    jsLoop: new WorkerRemote(VARIANT.get('jsLoop').label, { role: 'jsloop', modelKey: model.key, detach: false }),
    jsLoopDetached: new WorkerRemote(VARIANT.get('jsLoopDetached').label, { role: 'jsloop', modelKey: model.key, detach: true }),
  };
  if (nativeBuild.binary) remotes.native = new NativeRemote(nativeBuild.binary, spec);

  const simd = await createEma(params, { decay: DECAY, simd: true });
  const scalar = await createEma(params, { decay: DECAY, simd: false });
  if (!simd.simd || scalar.simd) throw new Error('expected the SIMD and the scalar build');
  let resident = null;
  try {
    resident = await createEma(params, { decay: DECAY, simd: true, resident: true });
    if (typeof resident.param !== 'function') throw new Error('no ema.param()');
  } catch (error) {
    resident = null;
    notes.push(`${model.key}: resident rows skipped: createEma(params, { resident: true }) failed (${error.message})`);
  }
  const residentViews = () => params.map((p) => resident.param(p.name));
  const targets = params.map(({ name, data }) => ({ name, data: new Float32Array(data.length) }));
  const copies = params.map(({ data }) => new Float32Array(data.length));
  await whenReady(remotes, model, notes);
  if (!remotes.jsLoop) throw new Error(`${model.key}: the JS loop worker failed`);

  // ---- verification (outside timing) ----
  // The remotes verify concurrently with the main thread (2 cores, no timing yet).
  const t0 = performance.now();
  const pending = {};
  for (const id of ['jsLoop', 'jsLoopDetached']) {
    if (remotes[id]) pending[id] = remotes[id].request({ type: 'verify' });
  }
  if (remotes.native) pending.native = remotes.native.request(`verify ${VERIFY_STEPS}`);
  const decays = { simd: [], scalar: [], resident: [] };
  for (let step = 0; step < VERIFY_STEPS; step++) {
    fillRandom(arrays, random);
    decays.simd.push(simd.update(params));
    decays.scalar.push(scalar.update(params));
    if (resident) {
      residentViews().forEach((view, i) => view.set(arrays[i])); // the training loop writes in place
      decays.resident.push(resident.update());
    }
  }
  const simdShadows = params.map((p) => simd.shadow(p.name));
  const verify = { model: model.key, reference: fnv1a64(simdShadows), steps: VERIFY_STEPS, variants: {}, informational: {} };
  const mismatches = [];
  const record = verifier(verify, decays.simd, mismatches);
  const hashOf = (ema) => {
    const same = params.every((p, i) => sameBits(simdShadows[i], ema.shadow(p.name)));
    return same ? verify.reference : fnv1a64(params.map((p) => ema.shadow(p.name)));
  };
  record('simd', verify.reference, decays.simd);
  record('scalar', hashOf(scalar), decays.scalar);
  if (resident) record('resident', hashOf(resident), decays.resident);
  for (const id of ['jsLoop', 'jsLoopDetached']) {
    if (!pending[id]) continue;
    const reply = await pending[id];
    record(id, reply.hash, reply.decays);
  }
  if (pending.native) {
    const reply = await pending.native;
    record('nativeCopyin', reply.copyin, reply.decaysCopyin);
    record('nativeDirect', reply.direct, reply.decaysDirect);
  }
  say(
    `verify: ${Object.keys(verify.variants).join(', ')} after ${VERIFY_STEPS} updates: ` +
      `${mismatches.length === 0 ? 'bit-identical' : 'MISMATCH'}, shadow hash ${verify.reference} ` +
      `(${(performance.now() - t0).toFixed(0)} ms)`,
  );
  if (mismatches.length > 0) {
    console.log(`[${model.key}] bit-identical: NO: ${mismatches.join('; ')} differ from the SIMD build`);
    for (const remote of Object.values(remotes)) await remote.close();
    process.exit(1);
  }
  if (resident) residentViews().forEach((view, i) => view.set(arrays[i]));

  // ---- the timed variants ----
  const counter = { next: 0 };
  const touch = (i) => touchArrays(arrays, i);
  const local = (op, touchFn = null) => async (warmup, reps) => timeOps(op, touchFn, warmup, reps, counter);
  const parts = new Map(); // variant id -> { store: [], restore: [] }
  const storeRestore = (id, ema, args) => {
    const split = { store: [], restore: [] };
    parts.set(id, split);
    let timing = false;
    const op = () => {
      const a = performance.now();
      ema.store(...args);
      const b = performance.now();
      ema.restore(...args);
      if (timing) {
        split.store.push(b - a);
        split.restore.push(performance.now() - b);
      }
    };
    return async (warmup, reps) => {
      timeOps(op, null, warmup, 0, counter);
      timing = true;
      const samples = timeOps(op, null, 0, reps, counter);
      timing = false;
      return samples;
    };
  };

  const runs = {
    simd: local(() => simd.update(params), touch),
    scalar: local(() => scalar.update(params), touch),
    copyTo: local(() => simd.copyTo(targets)),
    storeRestore: storeRestore('storeRestore', simd, [params]),
    set: local(() => {
      for (let t = 0; t < copies.length; t++) copies[t].set(arrays[t]);
    }),
  };
  if (resident) {
    let views = residentViews();
    const residentUpdate = local(() => resident.update(), (i) => touchArrays(views, i));
    runs.resident = async (warmup, reps) => {
      views = residentViews(); // valid for the EMA's life anyway; fetched outside timing
      return residentUpdate(warmup, reps);
    };
    runs.residentCopyTo = local(() => resident.copyTo());
    runs.residentStoreRestore = storeRestore('residentStoreRestore', resident, []);
  }
  for (const id of ['jsLoop', 'jsLoopDetached']) {
    if (remotes[id]) runs[id] = remoteRun(remotes[id], { type: 'time' }, model, notes);
  }
  if (remotes.native) {
    runs.nativeCopyin = remoteRun(remotes.native, 'time copyin', model, notes);
    runs.nativeDirect = remoteRun(remotes.native, 'time direct', model, notes);
    runs.nativeMemcpy = remoteRun(remotes.native, 'time memcpy', model, notes);
  }
  const makeTimed = (ids) =>
    VARIANTS.filter((variant) => ids.includes(variant.id)).map((variant) => ({ ...variant, run: runs[variant.id], samples: [] }));

  const timed = makeTimed(Object.keys(runs));
  const t1 = performance.now();
  await timeInterleaved(timed, plan, plan.rounds);
  say(`timed ${timed.length} variants: ${plan.warmup} warm-up, ${plan.rounds} interleaved rounds (${(performance.now() - t1).toFixed(0)} ms)`);
  for (const ema of [simd, scalar, resident]) ema?.dispose();
  for (const remote of Object.values(remotes)) await remote.close();

  // Phase 2: TF.js, in workers started only now, so that their loading,
  // garbage and background GC cannot disturb the rows above (2 cores).
  if (options.tfjs && (model.tfjs || options.tfjsLarge)) {
    const tfRemotes = {};
    for (const backend of ['cpu', 'wasm']) {
      for (const mode of ['idiomatic', 'adapter']) {
        const id = `tfjs${backend === 'cpu' ? 'Cpu' : 'Wasm'}${mode === 'idiomatic' ? 'Idiomatic' : 'Adapter'}`;
        tfRemotes[id] = new WorkerRemote(VARIANT.get(id).label, { role: 'tfjs', modelKey: model.key, backend, mode });
      }
    }
    await whenReady(tfRemotes, model, notes);
    const informational = [];
    for (const [id, remote] of Object.entries(tfRemotes)) {
      const reply = await remote.request({ type: 'verify' });
      record(id, reply.hash, reply.decays, false);
      informational.push(`${id} ${verify.informational[id].identical ? 'identical' : 'DIFFERENT'}`);
      runs[id] = remoteRun(remote, { type: 'time' }, model, notes);
    }
    say(`TF.js verify (information): ${informational.join(', ')}`);
    const tfTimed = makeTimed(Object.keys(tfRemotes));
    const t2 = performance.now();
    await timeInterleaved(tfTimed, plan, plan.tfRounds);
    say(`timed ${tfTimed.length} TF.js variants: ${plan.warmup} warm-up, ${plan.tfRounds} interleaved rounds (${(performance.now() - t2).toFixed(0)} ms)`);
    for (const remote of Object.values(tfRemotes)) await remote.close();
    timed.push(...tfTimed);
    for (const [id, { identical }] of Object.entries(verify.informational)) {
      if (!identical) notes.push(`${model.key}: ${VARIANT.get(id).label}: shadows not bit-identical to ema-wasm's (information)`);
    }
  } else if (options.tfjs) {
    notes.push(`${model.key}: TF.js rows skipped (an idiomatic cpu update takes seconds at this size; --tfjs-large times them)`);
  }

  const order = new Map(VARIANTS.map((variant, index) => [variant.id, index]));
  timed.sort((a, b) => order.get(a.id) - order.get(b.id));
  const rows = timed.map((variant) => {
    const sorted = variant.samples.slice().sort((a, b) => a - b);
    const medianMs = median(sorted);
    const row = {
      model: model.key,
      modelLabel: model.label,
      params: totalParams,
      tensors: spec.length,
      variant: variant.id,
      label: variant.label,
      reps: sorted.length,
      warmup: plan.warmup,
      medianMs,
      minMs: sorted[0],
      mParamsPerSecond: totalParams / medianMs / 1e3,
      gbPerSecond: (totalParams * variant.bytes) / medianMs / 1e6,
      bytesPerParam: variant.bytes,
      samplesMs: variant.samples.map((ms) => Number(ms.toFixed(5))),
    };
    const split = parts.get(variant.id);
    if (split) {
      row.storeMedianMs = median(split.store.sort((a, b) => a - b));
      row.restoreMedianMs = median(split.restore.sort((a, b) => a - b));
    }
    return row;
  });
  const byId = new Map(rows.map((row) => [row.variant, row]));
  for (const row of rows) {
    const variant = VARIANT.get(row.variant);
    const ref = variant.ref && byId.get(variant.ref);
    if (ref) {
      row.ref = variant.ref;
      row.refScale = variant.refScale ?? 1;
      row.ratioVsRef = row.medianMs / (ref.medianMs * row.refScale);
    }
    const js = byId.get('jsLoop');
    if (variant.jsLoop && js) row.speedupVsJsLoop = js.medianMs / row.medianMs;
  }
  return { rows, verify };
}

// ---- targets ---------------------------------------------------------------

function evaluateTargets(rows) {
  const get = (model, id) => rows.find((row) => row.model === model && row.variant === id);
  const models = [...new Set(rows.map((row) => row.model))];
  const fmt = (x, digits = 2) => x.toFixed(digits);
  const targets = [];
  const add = (id, text, checks) => {
    const measured = checks.filter((check) => check !== null);
    targets.push({
      id,
      text,
      met: measured.length === 0 ? null : measured.every((check) => check.ok),
      checks: measured,
    });
  };
  const ratioCheck = (model, id, refId, limit, scale = 1) => {
    const row = get(model, id);
    const ref = get(model, refId);
    if (!row || !ref) return null;
    const value = row.medianMs / (ref.medianMs * scale);
    return { model, value, ok: value <= limit, detail: `${model}: ${fmt(row.medianMs, 3)} / ${fmt(ref.medianMs * scale, 3)} ms = ${fmt(value)}x` };
  };
  const speedupCheck = (model, id, refId, atLeast, strict = false) => {
    const row = get(model, id);
    const ref = get(model, refId);
    if (!row || !ref) return null;
    const value = ref.medianMs / row.medianMs;
    return { model, value, ok: strict ? value > atLeast : value >= atLeast, detail: `${model}: ${fmt(ref.medianMs, 3)} / ${fmt(row.medianMs, 3)} ms = ${fmt(value)}x faster` };
  };

  add('updateVsNative', 'update(params) (SIMD) within 1.15x of native copy-in + update',
    models.map((model) => ratioCheck(model, 'simd', 'nativeCopyin', 1.15)));
  add('updateVsJsLoop', 'update(params) (SIMD) >= 4.5x faster than the plain JS loop at 16M+ (ResNet-50, 64M)',
    ['resnet50', '64M'].map((model) => speedupCheck(model, 'simd', 'jsLoop', 4.5)));
  add('tfjsCpu', 'TF.js adapter >= 20x faster than idiomatic TF.js on cpu (1M)',
    [speedupCheck('1M', 'tfjsCpuAdapter', 'tfjsCpuIdiomatic', 20)]);
  add('tfjsWasm', 'TF.js adapter faster than idiomatic TF.js on wasm (1M)',
    [speedupCheck('1M', 'tfjsWasmAdapter', 'tfjsWasmIdiomatic', 1, true)]);
  add('copyTo', 'copyTo within 1.2x of TypedArray.set',
    models.map((model) => ratioCheck(model, 'copyTo', 'set', 1.2)));
  const tiny = get('tiny2000', 'simd');
  add('tiny', '2000 tiny tensors: one update(params) < 0.5 ms',
    [tiny ? { model: 'tiny2000', value: tiny.medianMs, ok: tiny.medianMs < 0.5, detail: `tiny2000: ${fmt(tiny.medianMs, 3)} ms` } : null]);
  add('resident', 'resident update() within 1.1x of native update alone',
    models.map((model) => ratioCheck(model, 'resident', 'nativeDirect', 1.1)));
  return targets;
}

// ---- output ----------------------------------------------------------------

function formatRatio(ratio) {
  return `${ratio < 0.1 ? ratio.toPrecision(2) : ratio.toFixed(2)}x`;
}

function printTable(rows) {
  const header = ['model', 'variant', 'median ms', 'min ms', 'GB/s', 'Mparam/s', 'vs JS loop', 'ratio vs ref'];
  const lines = rows.map((row) => [
    row.model,
    row.label,
    row.medianMs.toFixed(3),
    row.minMs.toFixed(3),
    row.gbPerSecond.toFixed(1),
    row.mParamsPerSecond.toFixed(0),
    row.speedupVsJsLoop !== undefined ? `${row.speedupVsJsLoop.toFixed(2)}x` : '',
    row.ratioVsRef !== undefined
      ? `${formatRatio(row.ratioVsRef)} ${row.refScale !== 1 ? `${row.refScale}x ` : ''}${VARIANT.get(row.ref).label}`
      : '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells) =>
    cells
      .map((cell, column) => (column < 2 || column === 7 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ')
      .trimEnd();
  console.log(format(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  rows.forEach((row, index) => {
    if (index > 0 && row.model !== rows[index - 1].model) console.log('');
    console.log(format(lines[index]));
  });
}

function printTargets(targets) {
  for (const target of targets) {
    const verdict = target.met === null ? 'not measured' : target.met ? 'MET' : 'MISSED';
    console.log(`  [${verdict}] ${target.text}`);
    for (const check of target.checks) console.log(`      ${check.ok ? 'ok  ' : 'miss'} ${check.detail}`);
  }
}

/** The models named by --only (a comma-separated list; 'tiny' is tiny2000). */
function namedModels(text, flag) {
  const keys = text.split(',').map((key) => key.trim().toLowerCase());
  const chosen = MODELS.filter((model) => keys.some((key) => model.key.toLowerCase() === key || (key === 'tiny' && model.key === 'tiny2000')));
  if (chosen.length !== keys.length) throw new UsageError(`${flag}: unknown model in '${text}'`);
  return chosen;
}

const { readOptions } = createCommandLine({
  program: 'bench/compare',
  usage: USAGE,
  defaults: {
    quick: false,
    models: MODELS.filter((model) => model.inDefaultRun !== false),
    jsonPath: path.join(ROOT, 'bench', 'results.json'),
    native: true,
    tfjs: true,
    tfjsLarge: false,
  },
  valueFlags: {
    '--only': ['models', namedModels],
    '--json': ['jsonPath', resolvedPath],
  },
  switches: {
    '--quick': ['quick', true],
    '--no-native': ['native', false],
    '--no-tfjs': ['tfjs', false],
    '--tfjs-large': ['tfjsLarge', true],
  },
});

async function main() {
  const options = readOptions(process.argv.slice(2));
  if (options === null) return;
  const started = performance.now();
  const cpus = os.cpus();
  const environment = {
    tool: 'bench/compare.mjs',
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    platform: `${process.platform} ${process.arch}`,
    os: `${os.type()} ${os.release()}`,
    wasmSimd: hasWasmSimd(),
    quick: options.quick,
    decay: DECAY,
    warmupDecay: true,
  };
  console.log('ema-wasm side-by-side benchmark (bench/compare.mjs)');
  console.log(`date:  ${environment.date}`);
  console.log(`node:  ${environment.node} (V8 ${environment.v8}), ${environment.platform}`);
  console.log(`cpu:   ${environment.cpu}, ${environment.cores} cores, ${environment.memoryGB} GB`);
  console.log(`mode:  ${options.quick ? 'quick' : 'full'}; decay ${DECAY} with warmup; models ${options.models.map((m) => m.key).join(', ')}`);
  if (!environment.wasmSimd) throw new Error('this runtime has no WebAssembly SIMD; the benchmark compares the SIMD build');

  const notes = [];
  let nativeBuild = { skip: 'disabled (--no-native)' };
  if (options.native) {
    nativeBuild = buildNative();
    if (nativeBuild.note) notes.push(`native: ${nativeBuild.note}`);
  }
  if (nativeBuild.skip) notes.push(`native rows skipped: ${nativeBuild.skip}`);
  else {
    const gcc = spawnSync('gcc', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'gcc';
    environment.native = `${gcc}, -O3 -march=native -ffp-contract=off (build/bench-native/bench_native)`;
    console.log(`native: ${environment.native}`);
  }
  console.log('');

  const rows = [];
  const verification = [];
  for (const model of options.models) {
    const result = await benchModel(model, options, nativeBuild, notes);
    rows.push(...result.rows);
    verification.push(result.verify);
  }
  const verifiedIds = [...new Set(verification.flatMap((v) => Object.keys(v.variants)))];
  console.log('');
  console.log(`bit-identical: yes (${verifiedIds.join(', ')}; every model, after ${VERIFY_STEPS} identical updates)`);
  console.log('');
  printTable(rows);
  console.log('');
  console.log("vs JS loop: the plain JS loop's median / this row's median (a worker whose isolate never");
  console.log('detached an ArrayBuffer). ratio vs ref: this median / the reference row\'s median (lower is');
  console.log('better). GB/s counts 12 bytes per parameter for an update, 8 for a copy, 16 for store+restore.');
  for (const row of rows.filter((r) => r.storeMedianMs !== undefined)) {
    console.log(`${row.model}: ${row.label}: store ${row.storeMedianMs.toFixed(3)} ms + restore ${row.restoreMedianMs.toFixed(3)} ms (medians)`);
  }
  const targets = evaluateTargets(rows);
  console.log('');
  console.log('targets:');
  printTargets(targets);
  if (notes.length > 0) {
    console.log('');
    console.log('notes:');
    for (const note of notes) console.log(`  - ${note}`);
  }

  const json = {
    ...environment,
    durationSeconds: Number(((performance.now() - started) / 1e3).toFixed(1)),
    models: options.models.map((model) => {
      const spec = model.spec();
      return { key: model.key, label: model.label, tensors: spec.length, params: spec.reduce((s, { shape }) => s + sizeOf(shape), 0) };
    }),
    variants: VARIANTS.map(({ id, label, bytes, ref, refScale }) => ({ id, label, bytesPerParam: bytes, ref, refScale })),
    bitIdentical: true,
    verification,
    targets,
    notes,
    results: rows,
  };
  writeFileSync(options.jsonPath, `${JSON.stringify(json, null, 2)}\n`);
  console.log('');
  console.log(`wrote ${path.relative(process.cwd(), options.jsonPath) || options.jsonPath} (${json.durationSeconds} s)`);
  if (!Number.isFinite(sink)) console.log('');
}

if (isMainThread) {
  // process.exit() rather than waiting for the event loop to drain: a worker
  // or the native child that failed to close must not keep the run alive.
  // Without an argument it keeps the exit code readOptions() set (2).
  main().then(
    () => process.exit(),
    (error) => {
      console.error(error instanceof Error ? error.stack : error);
      process.exit(1);
    },
  );
} else {
  workerMain();
}
