// The threads build (js/threads.js, js/thread-worker.js, and the threads
// paths of js/boundary.js and js/ema.js): the workers' control layout
// agrees with the pool's; every recipe's steps on several threads (copied
// in, in the background, resident) equal one thread's bit for bit, over
// lengths that cross the 65,536-float staging window and odd ones; what
// ema.build, ema.threads and ema.background say; the option refusals; and
// the failure modes: workers that cannot start or never answer, a worker
// that dies idle or holding a claim, dispose() with a step in flight,
// memory growth of a shared memory, and a process that ends without
// dispose().
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { createOrtEma } from '../../js/adapters/ort.js';
import { createTfjsEma } from '../../js/adapters/tfjs.js';
import { emaInternals } from '../../js/base-ema.js';
import { AUTO_THREADS_MIN_FLOATS } from '../../js/ema.js';
import { createEma } from '../../js/index.js';
import { threadWorkerMain } from '../../js/thread-worker.js';
import { availableThreads, CONTROL, currentPool, MAX_RING, MAX_WORKERS, MODE_WINDOWS, threadSettings, threadTestHooks } from '../../js/threads.js';
import { randomArray } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const DEFAULT_SETTINGS = { ...threadSettings };
/** Cores 'auto' uses here (the calling thread included). */
const AUTO = availableThreads();

// ---- models ---------------------------------------------------------------------

// Empty, tiny, odd, and two that cross the 65,536-float staging window.
const LENGTHS = [0, 1, 3, 1000, 70001, 200003];
const STEPS = 8;
const NAN_STEP = 4;
const NAN_AT = { name: 'layer5.w', index: 150001 };

/**
 * The layers of LENGTHS, and on request a frozen parameter, a float buffer
 * and an integer buffer (recipes copy, hold, keep, average or skip them).
 */
function model({ frozen = false, floatBuffer = false, intBuffer = false } = {}) {
  const params = LENGTHS.map((length, i) => ({ name: `layer${i}.w`, data: new Float32Array(length) }));
  if (frozen) params.push({ name: 'frozen.w', data: new Float32Array(70001), trainable: false });
  if (floatBuffer) params.push({ name: 'bn.mean', data: new Float32Array(1001), buffer: true });
  if (intBuffer) params.push({ name: 'bn.count', data: new Int32Array(7), buffer: true });
  return params;
}

function seedOf(name) {
  let hash = 7;
  for (const character of name) hash = (hash * 31 + character.charCodeAt(0)) >>> 0;
  return hash;
}

/** Fresh values for step `step` in every entry, the same for an entry's name wherever it lives. */
function train(entries, step) {
  for (const { name, data } of entries) {
    const values = randomArray(data.length, seedOf(name) + 7919 * step);
    if (data instanceof Int32Array) data.set(values.map((value) => Math.round(value * 1000)));
    else data.set(values);
  }
}

/** A copy of an array's bits (any 4-byte element type). */
function wordsOf(array) {
  return new Uint32Array(array.buffer.slice(array.byteOffset, array.byteOffset + array.byteLength));
}

function assertSameWords(actual, expected, where) {
  assert.equal(actual.length, expected.length, `${where}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`${where}: element ${i} has bits 0x${actual[i].toString(16)}, one thread has 0x${expected[i].toString(16)}`);
    }
  }
}

/** Every shadow of every profile, the counters, and the model's arrays (Keras overwrites them; nothing else may write them). */
function observe(ema, entries) {
  const profiles = ema.profiles?.length ?? 1;
  const shadows = [];
  for (let profile = 0; profile < profiles; profile++) {
    for (const name of ema.names) shadows.push([`profile ${profile}: '${name}'`, wordsOf(ema.shadow(name, profiles > 1 ? { profile } : undefined))]);
  }
  const arrays = entries.map(({ name, data }) => [`the model's '${name}'`, wordsOf(data)]);
  return { counter: ema.counter, steps: ema.steps, numUpdates: ema.numUpdates, shadows, arrays };
}

function assertSameObservation(actual, expected, where) {
  assert.deepEqual(
    { counter: actual.counter, steps: actual.steps, numUpdates: actual.numUpdates },
    { counter: expected.counter, steps: expected.steps, numUpdates: expected.numUpdates },
    `${where}: counters`,
  );
  assert.deepEqual(actual.shadows.map(([what]) => what), expected.shadows.map(([what]) => what), `${where}: the shadows`);
  actual.shadows.forEach(([what, words], i) => assertSameWords(words, expected.shadows[i][1], `${where}: ${what}`));
  actual.arrays.forEach(([what, words], i) => assertSameWords(words, expected.arrays[i][1], `${where}: ${what}`));
}

/** A state dict's values as bits (typed arrays) or as they are. */
function stateBits(ema) {
  return [...ema.stateDict()].map(([key, value]) => [key, ArrayBuffer.isView(value) ? Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) : value]);
}

/** What update() did: its result, or the error it threw. */
function outcomeOf(call) {
  try {
    return { result: call() };
  } catch (error) {
    return { error: { name: error.name, message: error.message } };
  }
}

/**
 * Runs STEPS steps of `ema` over `entries` (the caller's arrays, or the
 * resident parameters' views): fresh values each step, a NaN planted at
 * NAN_STEP when `nan`. `check(step, outcome)` runs after each update, after
 * `pause()` when given.
 */
async function run(ema, entries, { resident, nan, updateOptions }, check, pause = null) {
  for (let step = 1; step <= STEPS; step++) {
    train(entries, step);
    if (nan && step === NAN_STEP) entries.find(({ name }) => name === NAN_AT.name).data[NAN_AT.index] = NaN;
    const options = updateOptions?.(step);
    const outcome = outcomeOf(() => (resident ? ema.update(undefined, options) : ema.update(entries, options)));
    if (pause !== null) await pause();
    check(step, outcome);
  }
}

/**
 * The steps of one thread, recorded: each step's outcome and what the EMA
 * holds after it, and its state dict at the end.
 */
async function recordOneThread(recipe, resident) {
  const params = model(recipe.entries);
  const ema = await createEma(params, { ...recipe.options, threads: 1, resident });
  assert.equal(ema.build, 'simd');
  const entries = resident ? ema.names.map((name) => ({ name, data: ema.param(name) })) : params;
  const steps = [];
  await run(ema, entries, { ...recipe, resident }, (step, outcome) => steps.push({ outcome, observed: observe(ema, entries) }));
  const record = { steps, state: stateBits(ema) };
  ema.dispose();
  return record;
}

// ---- 1. the control layout ---------------------------------------------------------

test("thread-worker.js's CONTROL layout is threads.js's, word for word", () => {
  const source = threadWorkerMain.toString();
  const literal = /const CONTROL = \{([^}]*)\};/.exec(source);
  assert.ok(literal !== null, 'threadWorkerMain declares const CONTROL = { ... }');
  const words = {};
  for (const field of literal[1].split(',').map((text) => text.trim()).filter((text) => text !== '')) {
    const match = /^([A-Z_]+):\s*(\d+)$/.exec(field);
    assert.ok(match !== null, `a CONTROL field is NAME: number, got '${field}'`);
    assert.equal(Object.hasOwn(words, match[1]), false, `${match[1]} is given once`);
    words[match[1]] = Number(match[2]);
  }
  assert.deepEqual(words, { ...CONTROL });
  assert.equal(Number(/const MODE_WINDOWS = (\d+);/.exec(source)?.[1]), MODE_WINDOWS, 'MODE_WINDOWS agrees');
  // The per-window and per-worker arrays do not overlap each other or the single words.
  const single = Object.entries(CONTROL).filter(([name]) => !['BUSY', 'YIELD', 'CLAIM'].includes(name)).map(([, index]) => index);
  assert.equal(new Set(single).size, single.length, 'no two words share an index');
  assert.ok(Math.max(...single) < CONTROL.BUSY, 'the single words come before BUSY');
  assert.ok(CONTROL.BUSY + MAX_RING <= CONTROL.YIELD, 'BUSY has a word per window of the ring');
  assert.ok(CONTROL.YIELD + MAX_WORKERS <= CONTROL.CLAIM, 'YIELD has a word per worker');
  assert.ok(CONTROL.CLAIM + MAX_WORKERS <= 256, 'CLAIM has a word per worker, inside the 256-word block');
});

// ---- 2. bit identity with one thread -------------------------------------------------

const everyStep = () => true;
const VARIANTS = [
  { label: 'copy-in, threads: 2', options: { threads: 2 }, read: everyStep },
  // Read a moment after each update: the worker, alone meanwhile, takes the step's ranges.
  { label: 'copy-in, threads: 2, background', options: { threads: 2, background: true }, read: everyStep, pause: () => sleep(1) },
  // Two updates back to back: the second waits for the first's averaging.
  { label: 'copy-in, threads: 2, background, two updates back to back', options: { threads: 2, background: true }, read: (step) => step % 2 === 0 },
  { label: 'resident, threads: 2', options: { threads: 2 }, resident: true, read: everyStep },
];
// More workers than this machine may have cores, for one recipe.
const MORE_THREADS = [
  { label: 'copy-in, threads: 4', options: { threads: 4 }, read: everyStep },
  { label: 'copy-in, threads: 3, background', options: { threads: 3, background: true }, read: (step) => step % 3 === 0 || step === STEPS },
  { label: 'resident, threads: 4', options: { threads: 4 }, resident: true, read: everyStep },
];

const ALL_EXTRAS = { frozen: true, floatBuffer: true, intBuffer: true };
const RECIPES = [
  { label: 'litema, defaults', options: {}, entries: { frozen: true, floatBuffer: true }, more: true },
  { label: 'torch_ema (frozen parameters averaged)', options: { recipe: 'torch_ema', decay: 0.9 }, entries: { frozen: true, floatBuffer: true } },
  {
    label: 'diffusers, fused (foreach), frozen parameters copied',
    options: { recipe: 'diffusers', foreach: true, useEmaWarmup: true, updateAfterStep: 2 },
    entries: { frozen: true, floatBuffer: true },
  },
  {
    label: "timm with update(params, { step }), buffers copied (excludeBuffers)",
    options: { recipe: 'timm', decay: 0.99, useWarmup: true, updateAfterStep: 3, excludeBuffers: true },
    entries: ALL_EXTRAS,
    residentEntries: { frozen: true, floatBuffer: true },
    updateOptions: (step) => (step === 6 ? undefined : { step: 2 * step }),
  },
  {
    label: 'ema-pytorch, updateAfterStep 2 and updateEvery 2 (copies and skips), held, copied and kept entries',
    options: { recipe: 'ema-pytorch', beta: 0.9, updateAfterStep: 2, updateEvery: 2, ignoreNames: ['bn.mean'], paramOrBufferNamesNoEma: ['layer3.w'] },
    entries: ALL_EXTRAS,
    residentEntries: { frozen: true, floatBuffer: true },
  },
  { label: 'keras, emaOverwriteFrequency 2', options: { recipe: 'keras', emaMomentum: 0.9, emaOverwriteFrequency: 2 }, entries: { frozen: true } },
  { label: 'debiased', options: { recipe: 'debiased', decay: 0.9 }, entries: { floatBuffer: true }, residentAllowed: false },
  {
    label: 'power, sigmaRel [0.05, 0.1]',
    options: { recipe: 'power', sigmaRel: [0.05, 0.1], batchSize: 4 },
    entries: { frozen: true },
    updateOptions: (step) => (step % 3 === 0 ? { samples: step } : undefined),
  },
  { label: 'power, 3 profiles by gamma', options: { recipe: 'power', gamma: [1.5, 6.94, 16.97] }, entries: {} },
  { label: "nonFinite 'skip', a NaN on one step", options: { decay: 0.9, nonFinite: 'skip' }, entries: {}, nan: true },
  { label: "nonFinite 'throw', a NaN on one step", options: { decay: 0.9, nonFinite: 'throw' }, entries: {}, nan: true },
];

describe('threads: every step equals one thread\'s, bit for bit', () => {
  for (const recipe of RECIPES) {
    test(recipe.label, async () => {
      const residentAllowed = recipe.residentAllowed !== false;
      const records = { copied: await recordOneThread(recipe, false) };
      if (residentAllowed) records.resident = await recordOneThread({ ...recipe, entries: recipe.residentEntries ?? recipe.entries }, true);
      const actions = new Set(records.copied.steps.map(({ outcome }) => outcome.result?.action ?? 'threw'));
      for (const variant of [...VARIANTS, ...(recipe.more ? MORE_THREADS : [])]) {
        const resident = variant.resident === true;
        if (resident && !residentAllowed) continue;
        const expected = records[resident ? 'resident' : 'copied'];
        const params = model(resident ? recipe.residentEntries ?? recipe.entries : recipe.entries);
        const ema = await createEma(params, { ...recipe.options, ...variant.options, resident });
        assert.equal(ema.build, 'threads', variant.label);
        assert.equal(ema.threads, variant.options.threads, `${variant.label}: threads`);
        assert.equal(ema.background, variant.options.background === true, `${variant.label}: background`);
        const entries = resident ? ema.names.map((name) => ({ name, data: ema.param(name) })) : params;
        await run(ema, entries, { ...recipe, resident }, (step, outcome) => {
          const where = `${variant.label}, step ${step}`;
          assert.deepEqual(outcome, expected.steps[step - 1].outcome, `${where}: what update() did`);
          if (variant.read(step)) assertSameObservation(observe(ema, entries), expected.steps[step - 1].observed, where);
        }, variant.pause);
        assert.deepEqual(stateBits(ema), expected.state, `${variant.label}: the state dict at the end`);
        assert.equal(ema.threads, variant.options.threads, `${variant.label}: threads at the end`);
        ema.dispose();
      }
      // The cases do what they are for.
      if (recipe.nan) {
        const atNan = records.copied.steps[NAN_STEP - 1].outcome;
        if (recipe.options.nonFinite === 'throw') assert.match(atNan.error?.message ?? '', /holds NaN at index 150001/);
        else assert.equal(atNan.result.nonFinite, true);
      }
      if (recipe.options.recipe === 'ema-pytorch') assert.deepEqual([...actions].sort(), ['averaged', 'copied', 'skipped']);
      if (recipe.options.recipe === 'keras') assert.ok(records.copied.steps.some(({ outcome }) => outcome.result.overwrote), 'a step overwrote');
    });
  }

  test('two EMAs share the pool: one update waits for the other\'s step in the background', async () => {
    const recipe = { options: { decay: 0.9 }, entries: { frozen: true } };
    const expected = await recordOneThread(recipe, false);
    const first = model(recipe.entries);
    const second = model(recipe.entries);
    const background = await createEma(first, { ...recipe.options, threads: 2, background: true });
    const foreground = await createEma(second, { ...recipe.options, threads: 2 });
    for (let step = 1; step <= STEPS; step++) {
      train(first, step);
      train(second, step);
      assert.deepEqual(background.update(first), expected.steps[step - 1].outcome.result);
      // The background step is in flight: this step finishes it before its own.
      assert.deepEqual(foreground.update(second), expected.steps[step - 1].outcome.result);
      assertSameObservation(observe(foreground, second), expected.steps[step - 1].observed, `step ${step}, foreground`);
      assertSameObservation(observe(background, first), expected.steps[step - 1].observed, `step ${step}, background`);
    }
    background.dispose();
    foreground.dispose();
  });
});

// ---- 3. what an EMA says it runs -------------------------------------------------

describe('threads: ema.build, ema.threads, ema.background, ema.simd', () => {
  const cases = [
    { label: 'threads: 1', size: 1000, options: { threads: 1 }, build: 'simd', threads: 1, background: false },
    { label: 'threads: 1, simd: false', size: 1000, options: { threads: 1, simd: false }, build: 'scalar', threads: 1, background: false, simd: false },
    { label: 'threads: 2', size: 1000, options: { threads: 2 }, build: 'threads', threads: 2, background: false },
    { label: 'threads: 2, background', size: 1000, options: { threads: 2, background: true }, build: 'threads', threads: 2, background: true },
    { label: 'threads: 2, resident', size: 1000, options: { threads: 2, resident: true }, build: 'threads', threads: 2, background: false },
    { label: "'auto', a small model", size: 1000, options: {}, build: 'simd', threads: 1, background: false },
    { label: "'auto', one float short of AUTO_THREADS_MIN_FLOATS", size: AUTO_THREADS_MIN_FLOATS - 1, options: { threads: 'auto' }, build: 'simd', threads: 1, background: false },
    // 'auto' gives each thread at least AUTO_THREADS_MIN_FLOATS / 2 floats, on the cores there are.
    ...(AUTO >= 2
      ? [
          // update(params) in the foreground stays on one thread with 'auto' (see js/ema.js).
          { label: "'auto', AUTO_THREADS_MIN_FLOATS floats, copied in", size: AUTO_THREADS_MIN_FLOATS, options: { threads: 'auto' }, build: 'simd', threads: 1, background: false },
          { label: "'auto', AUTO_THREADS_MIN_FLOATS floats, resident", size: AUTO_THREADS_MIN_FLOATS, options: { threads: 'auto', resident: true }, build: 'threads', threads: 2, background: false },
          { label: "'auto', 3 x AUTO_THREADS_MIN_FLOATS floats, resident", size: 3 * AUTO_THREADS_MIN_FLOATS, options: { resident: true }, build: 'threads', threads: Math.min(AUTO, 6), background: false },
          { label: "'auto' with background, a small model", size: 1000, options: { background: true }, build: 'threads', threads: 2, background: true },
        ]
      : []),
    { label: "'auto' with background and simd: false (stays off)", size: 1000, options: { background: true, simd: false }, build: 'scalar', threads: 1, background: false, simd: false },
    { label: "'auto', a large model and simd: false", size: AUTO_THREADS_MIN_FLOATS, options: { simd: false }, build: 'scalar', threads: 1, background: false, simd: false },
  ];
  for (const { label, size, options, build, threads, background, simd = true } of cases) {
    test(label, async () => {
      const ema = await createEma({ w: randomArray(size, 1) }, options);
      assert.deepEqual({ build: ema.build, threads: ema.threads, background: ema.background, simd: ema.simd }, { build, threads, background, simd });
      ema.dispose();
      for (const getter of ['build', 'threads', 'background', 'simd']) {
        assert.throws(() => ema[getter], { name: 'Error', message: `ema-wasm: ${getter}: this EMA was disposed; create a new one` });
      }
    });
  }
});

// ---- 4. option refusals ----------------------------------------------------------

describe('threads: option refusals leave nothing behind', () => {
  const THREADS_RANGE = "options.threads must be 'auto' or a whole number of threads from 1 to 64";
  const wasmBytes = () => readFileSync(`${root}/dist/ema-simd.wasm`);
  const cases = [
    ...[[0, 'number 0'], [-1, 'number -1'], [1.5, 'number 1.5'], [65, 'number 65'], ['two', 'the string "two"'], [null, 'null']].map(([threads, shown]) => ({
      options: { threads }, error: { name: 'TypeError', message: `ema-wasm: createEma: ${THREADS_RANGE}, got ${shown}` },
    })),
    { options: { background: 'yes' }, error: { name: 'TypeError', message: /^ema-wasm: createEma: options\.background must be a boolean, got .*yes/ } },
    { options: { threads: 1, background: true }, error: { name: 'TypeError', message: /^ema-wasm: createEma: options\.background needs workers, but options\.threads is 1/ } },
    { options: { resident: true, background: true }, error: { name: 'Error', message: /^ema-wasm: createEma: a resident EMA cannot average in the background/ } },
    { options: { resident: true, threads: 2, background: true }, error: { name: 'Error', message: /^ema-wasm: createEma: a resident EMA cannot average in the background/ } },
    {
      options: () => ({ threads: 2, wasm: wasmBytes() }),
      error: { name: 'Error', message: /^ema-wasm: createEma: options\.threads is 2, but options\.wasm hands over a module.*use threads: 'auto'/ },
    },
    { options: { threads: 2, simd: false }, error: { name: 'Error', message: /^ema-wasm: createEma: options\.threads is 2, but options\.simd is false/ } },
  ];

  beforeEach(() => threadTestHooks.resetPool());
  afterEach(() => Object.assign(threadSettings, DEFAULT_SETTINGS));

  for (const { options, error } of cases) {
    const given = typeof options === 'function' ? '{ threads: 2, wasm: <bytes> }' : JSON.stringify(options);
    test(given, async () => {
      let spawned = 0;
      threadSettings.spawn = (name) => {
        spawned += 1;
        return threadTestHooks.spawnWorker(name);
      };
      // The params are never read: the options are refused first.
      const reads = [];
      const params = new Proxy({ w: new Float32Array(4) }, {
        get: (target, key) => {
          reads.push(key);
          return target[key];
        },
        ownKeys: (target) => {
          reads.push('ownKeys');
          return Reflect.ownKeys(target);
        },
      });
      await assert.rejects(createEma(params, typeof options === 'function' ? options() : options), error);
      assert.deepEqual(reads, [], 'the params were not read');
      assert.equal(spawned, 0, 'no worker was started');
      assert.equal(currentPool(), null, 'no pool was made');
    });
  }

  test("with threads: 'auto' the same conflicts run on one thread", async () => {
    const wasm = await createEma({ w: randomArray(AUTO_THREADS_MIN_FLOATS, 2) }, { wasm: wasmBytes() });
    assert.deepEqual([wasm.build, wasm.threads, wasm.background], ['simd', 1, false]);
    wasm.dispose();
    assert.equal(currentPool(), null, 'no pool was made');
  });
});

// ---- 5. failure modes -----------------------------------------------------------------

/** A small model's steps on one thread and on `ema`, compared after each. */
async function assertExactSteps(ema, params, where, { from = 1, steps = 4 } = {}) {
  const reference = await createEma(model(), { decay: 0.9, threads: 1 });
  const referenceParams = model();
  for (let step = 1; step < from; step++) {
    train(referenceParams, step);
    reference.update(referenceParams);
  }
  for (let step = from; step < from + steps; step++) {
    train(params, step);
    train(referenceParams, step);
    assert.deepEqual(ema.update(params), reference.update(referenceParams), `${where}, step ${step}`);
    assertSameObservation(observe(ema, params), observe(reference, referenceParams), `${where}, step ${step}`);
  }
  reference.dispose();
}

/** Resolves once the pool counts `count` live workers. */
async function liveWorkersReach(count) {
  for (let waited = 0; threadTestHooks.liveWorkers() !== count; waited += 5) {
    if (waited > 5000) assert.fail(`the pool still counts ${threadTestHooks.liveWorkers()} live workers, not ${count}`);
    await sleep(5);
  }
}

describe('threads: failure modes', () => {
  beforeEach(() => threadTestHooks.resetPool());
  afterEach(async () => {
    Object.assign(threadSettings, DEFAULT_SETTINGS);
    await threadTestHooks.resetPool();
  });

  const refusedByNumber = /^ema-wasm: createEma: the threads build's workers could not start \(/;

  test('a worker that cannot be spawned: threads: 2 rejects naming why; \'auto\' runs on one thread, exactly', async () => {
    threadSettings.spawn = () => {
      throw new Error('no workers here');
    };
    await assert.rejects(createEma(model(), { decay: 0.9, threads: 2 }), (error) => {
      assert.equal(error.name, 'Error');
      assert.match(error.message, refusedByNumber);
      assert.match(error.message, /no workers here/);
      assert.equal(error.cause?.message, 'no workers here');
      return true;
    });
    const params = model();
    const ema = await createEma(params, { decay: 0.9, background: true });
    assert.deepEqual([ema.build, ema.threads, ema.background], ['threads', 1, false]);
    await assertExactSteps(ema, params, "'auto' without workers");
    ema.dispose();
  });

  test('the second worker cannot be spawned: threads: 3 rejects; once workers spawn again, threads: 3 works', async () => {
    // The first worker, started.
    (await createEma(model(), { threads: 2 })).dispose();
    threadSettings.spawn = () => {
      throw new Error('the second one fails');
    };
    await assert.rejects(createEma(model(), { decay: 0.9, threads: 3 }), { name: 'Error', message: /could not start \(the second one fails\)/ });
    Object.assign(threadSettings, DEFAULT_SETTINGS);
    const params = model();
    const ema = await createEma(params, { decay: 0.9, threads: 3 });
    assert.equal(ema.threads, 3);
    await assertExactSteps(ema, params, 'threads: 3 after a failed spawn');
    ema.dispose();
  });

  test('a worker that never answers: threads: 2 rejects after startTimeoutMs; \'auto\' runs on one thread, exactly', async () => {
    threadSettings.startTimeoutMs = 200;
    const silent = () => ({ post() {}, terminate() {}, onMessage() {}, onExit() {} });
    threadSettings.spawn = silent;
    const started = performance.now();
    await assert.rejects(createEma(model(), { decay: 0.9, threads: 2 }), (error) => {
      assert.match(error.message, refusedByNumber);
      assert.match(error.message, /did not answer within 0\.2 s/);
      return true;
    });
    assert.ok(performance.now() - started < 5000, 'the refusal came after the short timeout');
    await threadTestHooks.resetPool();
    const params = model();
    const ema = await createEma(params, { decay: 0.9, background: true });
    assert.deepEqual([ema.build, ema.threads, ema.background], ['threads', 1, false]);
    await assertExactSteps(ema, params, "'auto' with a silent worker");
    ema.dispose();
  });

  test('a worker that never answered is not kept: once workers start again, threads: 2 works', async () => {
    threadSettings.startTimeoutMs = 200;
    threadSettings.spawn = () => ({ post() {}, terminate() {}, onMessage() {}, onExit() {} });
    await assert.rejects(createEma(model(), { decay: 0.9, threads: 2 }), { message: /did not answer within 0\.2 s/ });
    threadSettings.spawn = null;
    threadSettings.startTimeoutMs = DEFAULT_SETTINGS.startTimeoutMs;
    const ema = await createEma(model(), { decay: 0.9, threads: 2 });
    assert.equal(ema.threads, 2);
    ema.dispose();
  });

  test('a worker that dies while idle: later steps stay exact on the calling thread; a new EMA gets a new worker', async () => {
    const params = model();
    const ema = await createEma(params, { decay: 0.9, threads: 2 });
    const background = await createEma(model(), { decay: 0.9, threads: 2, background: true });
    await assertExactSteps(ema, params, 'before the worker dies', { steps: 2 });
    await threadTestHooks.terminate(0);
    await liveWorkersReach(0);
    assert.equal(ema.threads, 1, 'ema.threads counts the live workers');
    assert.equal(background.threads, 1);
    await assertExactSteps(ema, params, 'after the worker died', { from: 3, steps: 3 });
    // A background EMA whose worker died finishes its steps on the calling thread.
    const backgroundParams = model();
    await assertExactSteps(background, backgroundParams, 'background, after the worker died');
    const freshParams = model();
    const fresh = await createEma(freshParams, { decay: 0.9, threads: 2 });
    assert.equal(fresh.threads, 2, 'the dead worker was replaced');
    await assertExactSteps(fresh, freshParams, 'a new EMA after the worker died');
    await assertExactSteps(ema, params, 'the first EMA once its worker was replaced', { from: 6, steps: 2 });
    for (const each of [ema, background, fresh]) each.dispose();
  });

  test('an EMA whose worker died still says 1 thread once the pool replaced that worker for another EMA', async () => {
    const ema = await createEma(model(), { decay: 0.9, threads: 2 });
    await threadTestHooks.terminate(0);
    await liveWorkersReach(0);
    assert.equal(ema.threads, 1);
    const fresh = await createEma(model(), { decay: 0.9, threads: 2 });
    assert.equal(fresh.threads, 2);
    assert.equal(ema.threads, 1, 'the new worker is not attached to the first EMA');
    fresh.dispose();
    ema.dispose();
  });

  test('a worker that dies holding a claim: update() throws, the EMA refuses further use; other EMAs go on, and new ones work', async () => {
    // Many windows (64 of 65,536 floats, 8 in the ring): the worker claims some.
    const big = [{ name: 'big.w', data: randomArray(64 * 65536, 3) }];
    const ema = await createEma(big, { decay: 0.9, threads: 2 });
    const otherParams = model();
    const other = await createEma(otherParams, { decay: 0.9, threads: 2 });
    assert.equal(other.threads, 2);
    ema.update(big);
    threadSettings.stallMs = 300;
    threadTestHooks.dieAfterClaims(0, 0);
    await sleep(20);
    let thrown = null;
    for (let attempt = 0; attempt < 20 && thrown === null; attempt++) {
      try {
        ema.update(big);
      } catch (error) {
        thrown = error;
      }
    }
    assert.ok(thrown !== null, 'an update met the dead worker');
    const refusal = /^ema-wasm: a worker of the thread pool stopped in the middle of a step .*refuses further use: load its last checkpoint into a new EMA$/;
    assert.equal(thrown.name, 'Error');
    assert.match(thrown.message, refusal);
    for (const [what, call] of [
      ['update', () => ema.update(big)],
      ['shadow', () => ema.shadow('big.w')],
      ['stateDict', () => ema.stateDict()],
      ['copyTo', () => ema.copyTo(big)],
      ['store', () => ema.store(big)],
      ['numUpdates', () => ema.numUpdates],
      ['threads', () => ema.threads],
    ]) {
      assert.throws(call, { message: refusal }, `${what} refuses`);
    }
    await assert.rejects(ema.withEma(big, () => {}), { message: refusal }, 'withEma refuses');
    // dispose() frees the EMA; it may report the refusal once more.
    try {
      ema.dispose();
    } catch (error) {
      assert.match(error.message, refusal);
    }
    assert.throws(() => ema.update(big), { message: 'ema-wasm: update: this EMA was disposed; create a new one' });
    ema.dispose(); // again: nothing to do
    // An EMA of the broken pool runs on its calling thread, exactly.
    assert.equal(other.threads, 1);
    await assertExactSteps(other, otherParams, 'an EMA of the broken pool');
    other.dispose();
    // A new EMA gets a new pool.
    const freshParams = model();
    const fresh = await createEma(freshParams, { decay: 0.9, threads: 2 });
    assert.equal(fresh.threads, 2);
    await assertExactSteps(fresh, freshParams, 'a new EMA after the pool broke');
    fresh.dispose();
  });

  test("a worker dies in another EMA's background step: this EMA's update() is not the one that throws, and stays exact", async () => {
    const big = [{ name: 'big.w', data: randomArray(64 * 65536, 5) }];
    const background = await createEma(big, { decay: 0.9, threads: 2, background: true });
    const params = model();
    const ema = await createEma(params, { decay: 0.9, threads: 2 });
    threadSettings.stallMs = 300;
    let failed = false;
    for (let attempt = 0; attempt < 20 && !failed; attempt++) {
      threadTestHooks.dieAfterClaims(0, 0);
      await sleep(20);
      background.update(big); // returns at once; the worker takes a claim and dies
      await sleep(20);
      // This EMA's step first finishes the other's: the stall is that EMA's, not this one's.
      await assertExactSteps(ema, params, `attempt ${attempt}`, { from: 1 + 4 * attempt, steps: 4 });
      try {
        background.shadow('big.w');
      } catch (error) {
        assert.match(error.message, /refuses further use/);
        failed = true;
      }
    }
    assert.ok(failed, 'the background EMA met the dead worker');
    assert.equal(ema.threads, 1, 'the pool broke: this EMA runs on its calling thread');
    background.dispose();
    ema.dispose();
  });


  test('dispose() while a step runs in the background: no error, later calls say disposed, a new EMA works', async () => {
    const big = { w: randomArray(8 * 65536 + 3, 4) };
    const ema = await createEma(big, { decay: 0.9, threads: 2, background: true });
    assert.equal(ema.background, true);
    const result = ema.update(big);
    assert.equal(result.action, 'averaged');
    assert.ok(currentPool().open, 'the step is still in flight');
    ema.dispose();
    assert.equal(currentPool().open, null, 'dispose finished it');
    for (const [what, call] of [['update', () => ema.update(big)], ['shadow', () => ema.shadow('w')], ['threads', () => ema.threads]]) {
      assert.throws(call, { name: 'Error', message: `ema-wasm: ${what}: this EMA was disposed; create a new one` });
    }
    const params = model();
    const fresh = await createEma(params, { decay: 0.9, threads: 2, background: true });
    await assertExactSteps(fresh, params, 'a new EMA after dispose');
    // And once more with another EMA's step in flight meanwhile.
    const other = await createEma({ w: big.w.slice() }, { decay: 0.9, threads: 2, background: true });
    other.update({ w: big.w });
    fresh.update(params);
    other.dispose();
    fresh.dispose();
  });

  for (const background of [false, true]) {
    test(`memory growth of the shared memory${background ? ', in the background' : ''}: steps stay exact, the workers go on`, async () => {
      // With 17 windows of 65,536 floats, more than the ring's 8: the worker takes some of every step.
      const growthModel = () => [...model({ frozen: true }), { name: 'big.w', data: new Float32Array(16 * 65536 + 5) }];
      const params = growthModel();
      const referenceParams = growthModel();
      const ema = await createEma(params, { decay: 0.9, threads: 2, background });
      const reference = await createEma(referenceParams, { decay: 0.9, threads: 1 });
      const memoryOf = () => emaInternals.arenaOf(ema, 'test').memoryBuffer;
      assert.ok(memoryOf() instanceof SharedArrayBuffer, 'the threads build runs over a shared memory');
      const before = ema.byteLength;
      const memoryBefore = memoryOf().byteLength;
      const huge = [{ name: 'huge', data: randomArray(12_000_000, 5) }];
      let step = 0;
      const stepBoth = (where) => {
        step += 1;
        train(params, step);
        train(referenceParams, step);
        assert.deepEqual(ema.update(params), reference.update(referenceParams), `${where}, step ${step}`);
      };
      const compare = (where) => assertSameObservation(observe(ema, params), observe(reference, referenceParams), `${where}, step ${step}`);
      stepBoth('before growth');
      compare('before growth');
      stepBoth('before growth, not read');
      // 48 MB stored, with a step (in the background) in flight: memory grows.
      ema.store(huge);
      reference.store(huge);
      assert.ok(ema.byteLength >= before + 48_000_000, `byteLength grew from ${before} to ${ema.byteLength}`);
      assert.ok(memoryOf().byteLength > memoryBefore && memoryOf().byteLength >= ema.byteLength, `memory grew from ${memoryBefore} to ${memoryOf().byteLength} bytes`);
      compare('after growth');
      for (let i = 0; i < 3; i++) {
        stepBoth('after growth');
        compare('after growth');
      }
      // What was stored reads back after the steps.
      const restored = [{ name: 'huge', data: new Float32Array(12_000_000) }];
      ema.restore(restored);
      assertSameWords(wordsOf(restored[0].data.subarray(11_999_000)), wordsOf(huge[0].data.subarray(11_999_000)), 'the stored array, read back');
      // withEma over the model and another large array: grows again, swaps in, restores.
      const training = params.map(({ data }) => data.slice());
      const large = { name: 'large', data: randomArray(20_000_000, 6), trainable: false };
      await ema.withEma([...params, large], () => {
        for (const { name, data } of params) {
          if (reference.names.includes(name)) assertSameWords(wordsOf(data), wordsOf(reference.shadow(name)), `withEma swapped in '${name}'`);
        }
      });
      params.forEach(({ name, data }, i) => assertSameWords(wordsOf(data), wordsOf(training[i]), `withEma restored '${name}'`));
      assert.equal(large.data[19_999_999], randomArray(20_000_000, 6)[19_999_999]);
      stepBoth('after withEma');
      stepBoth('after withEma, back to back');
      compare('after withEma');
      assert.equal(ema.threads, 2, 'the worker is still live');
      reference.dispose();
      // The worker still takes this EMA's tasks: made to die at its next claim, it stops a step.
      threadSettings.stallMs = 300;
      threadTestHooks.dieAfterClaims(0, 0);
      await sleep(20);
      assert.throws(() => {
        for (let attempt = 0; attempt < 20; attempt++) ema.update(params);
      }, { message: /^ema-wasm: a worker of the thread pool stopped in the middle of a step/ });
      try {
        ema.dispose();
      } catch {
        // The refusal, once more.
      }
    });
  }

  /**
   * Runs `body` (statements with createEma and threadSettings in scope) in a
   * child Node process that ends without dispose(): as a CommonJS -e script,
   * or with `module` as an ES module (node --input-type=module -e). Checks
   * it exited 0 within `seconds`; returns its stdout.
   */
  function runChild(body, { module, seconds = 5 }) {
    const index = JSON.stringify(pathToFileURL(`${root}/js/index.js`).href);
    const threads = JSON.stringify(pathToFileURL(`${root}/js/threads.js`).href);
    const script = module
      ? `import { createEma } from ${index};\nimport { threadSettings } from ${threads};\n${body}`
      : `Promise.all([import(${index}), import(${threads})]).then(async ([{ createEma }, { threadSettings }]) => {\n${body}\n});`;
    const started = performance.now();
    const child = spawnSync(process.execPath, [...(module ? ['--input-type=module'] : []), '-e', script], { encoding: 'utf8', timeout: 30000 });
    const took = (performance.now() - started) / 1000;
    assert.equal(child.signal, null, `the child was not killed by the timeout (${took.toFixed(1)} s); stderr: ${child.stderr}`);
    assert.equal(child.status, 0, `the child exited with 0; stderr: ${child.stderr}`);
    assert.ok(took < seconds, `the child exited within ${seconds} s (took ${took.toFixed(1)} s); stdout: ${child.stdout}`);
    return child.stdout.trim();
  }

  // Copied in, in the background (a step still in flight at the end) and resident.
  const CHILD_BODY = `
    const params = { w: new Float32Array(300001).fill(1), v: new Float32Array(5) };
    const copied = await createEma(params, { threads: 2 });
    const background = await createEma(params, { threads: 2, background: true });
    const resident = await createEma(params, { threads: 2, resident: true });
    copied.update(params);
    resident.update();
    background.update(params);
    background.update(params);
    console.log([copied, background, resident].map((ema) => ema.build + ' ' + ema.threads).join(', '));
  `;

  test('a process that ends without dispose() exits: the workers do not keep it alive', () => {
    assert.equal(runChild(CHILD_BODY, { module: false }), 'threads 2, threads 2, threads 2');
  });

  test('the same under node --input-type=module -e', () => {
    assert.equal(runChild(CHILD_BODY, { module: true }), 'threads 2, threads 2, threads 2');
  });

  test('a worker that cannot be spawned leaves no timer behind: the process exits at once', () => {
    const body = `
      threadSettings.startTimeoutMs = 4000;
      threadSettings.spawn = () => { throw new Error('no workers here'); };
      await createEma({ w: new Float32Array(4) }, { threads: 2 }).catch((error) => console.log(error.message));
    `;
    assert.match(runChild(body, { module: false, seconds: 2 }), /no workers here/);
  });
});

// ---- 6. the adapters ------------------------------------------------------------------------

describe('threads: the adapters take threads and background', () => {
  /** A fake onnxruntime-web TrainingSession of `size` parameters (see adapters/ort.test.js). */
  function fakeSession(size) {
    const session = {
      weights: new Float32Array(size),
      async getParametersSize() {
        return size;
      },
      async getContiguousParameters() {
        return { type: 'float32', dims: [size], data: session.weights.slice() };
      },
      async loadParametersBuffer(bytes) {
        session.weights = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
      },
    };
    return session;
  }

  test('createOrtEma: threads: 2 with background equals threads: 1, bit for bit; refusals name createOrtEma', async () => {
    const size = 200003;
    const sessions = [fakeSession(size), fakeSession(size)];
    const [one, two] = [await createOrtEma(sessions[0], { decay: 0.9, threads: 1 }), await createOrtEma(sessions[1], { decay: 0.9, threads: 2, background: true })];
    assert.deepEqual([one.build, one.threads, one.background], ['simd', 1, false]);
    assert.deepEqual([two.build, two.threads, two.background], ['threads', 2, true]);
    assert.equal(two.ema.threads, 2);
    for (let step = 1; step <= 4; step++) {
      for (const session of sessions) session.weights.set(randomArray(size, 100 + step));
      assert.deepEqual(await two.update(), await one.update(), `step ${step}`);
      assertSameWords(wordsOf(two.shadow()), wordsOf(one.shadow()), `step ${step}`);
    }
    await two.copyTo();
    await one.copyTo();
    assertSameWords(wordsOf(sessions[1].weights), wordsOf(sessions[0].weights), 'copyTo');
    one.dispose();
    two.dispose();
    await assert.rejects(createOrtEma(fakeSession(4), { threads: 0 }), { name: 'TypeError', message: /^ema-wasm: createOrtEma: options\.threads must be/ });
    await assert.rejects(createOrtEma(fakeSession(4), { threads: 1, background: true }), { name: 'TypeError', message: /^ema-wasm: createOrtEma: options\.background needs workers/ });
  });

  test('createTfjsEma (cpu backend): threads: 2 with background equals threads: 1, bit for bit', async () => {
    const [tf] = await Promise.all([import('@tensorflow/tfjs-core'), import('@tensorflow/tfjs-backend-cpu')]);
    await tf.setBackend('cpu');
    const variables = (prefix) => LENGTHS.filter((length) => length > 0).map((length, i) => tf.variable(tf.tensor1d(randomArray(length, i + 1)), true, `${prefix}${i}`));
    const [first, second] = [variables('a'), variables('b')];
    const one = await createTfjsEma(first, { decay: 0.9, threads: 1, tf });
    const two = await createTfjsEma(second, { decay: 0.9, threads: 2, background: true, tf });
    assert.deepEqual([two.build, two.threads, two.background], ['threads', 2, true]);
    for (let step = 1; step <= 3; step++) {
      for (const list of [first, second]) list.forEach((variable, i) => variable.assign(tf.tensor1d(randomArray(variable.size, 1000 * step + i))));
      assert.deepEqual(two.update(), one.update(), `step ${step}`);
      first.forEach((variable, i) => assertSameWords(wordsOf(two.shadow(second[i].name)), wordsOf(one.shadow(variable.name)), `step ${step}, variable ${i}`));
    }
    one.dispose();
    two.dispose();
    tf.dispose([...first, ...second]);
    const third = variables('c');
    await assert.rejects(createTfjsEma(third, { threads: 65, tf }), { name: 'TypeError', message: /^ema-wasm: createTfjsEma: options\.threads must be/ });
    tf.dispose(third);
  });
});
