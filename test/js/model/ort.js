// ema-wasm/ort in the model-based tests (model.test.js): two EMAs of one fake
// TrainingSession whose reads and loads can be held at a gate, so that a call
// can be caught in the middle: the session is held for reading by update and
// store, for writing by copyTo, restore and withEma (until its restore's load
// has landed).
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { createOrtEma } from '../../../js/adapters/ort.js';
import { randomArray } from '../helpers.js';
import {
  COMMON_COMMANDS,
  allowed, assertSameBits, awaitEntered, checkBackup, deferred, EmaModel, gatedScope, hostileArray, outcomeOf, refused,
  settle, weights,
} from './shared.js';

const ORT_SIZE = 11;
const SLOT = 'parameters';
const ORT_EMAS = [
  { label: 'A', decay: 0.9, useNumUpdates: true },
  { label: 'B', decay: 0.99, useNumUpdates: false },
];

/** A TrainingSession look-alike whose reads and loads can be held at a gate. */
function fakeSession(size, seed) {
  const session = {
    weights: randomArray(size, seed),
    tensor: undefined, // when set (null included), what getContiguousParameters gives
    readGate: null, // when set, reads wait for it (after resolving `reading`)
    loadGate: null, // when set, loads wait for it (after resolving `loading`)
    reading: deferred(),
    loading: deferred(),
    failNextLoad: false,
    async getParametersSize() {
      return size;
    },
    async getContiguousParameters() {
      if (session.readGate !== null) {
        session.reading.resolve();
        await session.readGate.promise;
      }
      if (session.tensor !== undefined) return session.tensor;
      return { type: 'float32', dims: [size], data: session.weights.slice() };
    },
    async loadParametersBuffer(bytes) {
      if (session.loadGate !== null) {
        session.loading.resolve();
        await session.loadGate.promise;
      }
      if (session.failNextLoad) {
        session.failNextLoad = false;
        throw new Error('session is busy');
      }
      assert.ok(bytes instanceof Uint8Array && bytes.length === size * 4, 'loadParametersBuffer gets the bytes of every parameter');
      session.weights = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    },
  };
  return session;
}

// What getContiguousParameters may give: `part` of the error, or ok.
const TENSORS = {
  wrongLength: { make: () => ({ type: 'float32', data: new Float32Array(ORT_SIZE - 1) }), part: `gave ${ORT_SIZE - 1} parameters; the EMA tracks ${ORT_SIZE}` },
  float64: { make: (v) => ({ type: 'float64', data: Float64Array.from(v) }), part: "must give a float32 tensor, got a 'float64' tensor" },
  int32: { make: (v) => ({ data: Int32Array.from(v) }), part: 'must give a float32 tensor, got a tensor whose data is a' },
  nullTensor: { make: () => null, part: 'must give a float32 tensor, got null' },
  proxy: { make: (v) => ({ type: 'float32', data: new Proxy(v.slice(), {}) }), part: 'must give a float32 tensor' },
  detached: { make: (v) => ({ type: 'float32', data: hostileArray('detached', v) }), part: 'gave 0 parameters' },
  noType: { make: (v) => ({ data: v.slice() }) },
  view: {
    make: (v) => {
      const big = new Float32Array(ORT_SIZE + 8);
      big.set(v, 3);
      return { type: 'float32', data: big.subarray(3, 3 + ORT_SIZE) };
    },
  },
  ownLength: { make: (v) => ({ type: 'float32', data: hostileArray('ownLength', v) }) },
  subclass: { make: (v) => ({ type: 'float32', data: hostileArray('subclass', v) }) },
  foreign: { make: (v) => ({ type: 'float32', data: hostileArray('foreign', v) }) },
};

async function makeOrtWorld(simd) {
  const session = fakeSession(ORT_SIZE, 7);
  const world = { simd, session, expected: session.weights.slice(), emas: [], models: [], holds: [] };
  for (const spec of ORT_EMAS) {
    world.emas.push(await createOrtEma(session, { decay: spec.decay, useNumUpdates: spec.useNumUpdates, simd }));
    world.models.push(new EmaModel([SLOT], [world.expected], spec));
  }
  return world;
}

const ORT_MODES = { update: 'read', store: 'read', copyTo: 'write', restore: 'write', withEma: 'write' };

/** Refusals by scope and holds (null when the call may go ahead). */
function ortRefusal(world, e, method) {
  if (world.models[e].scope) return refused(Error, method, 'not allowed while withEma() is running');
  const mode = ORT_MODES[method];
  const hold = world.holds.find((h) => h.mode === 'write' || mode === 'write');
  if (hold === undefined) return null;
  const part =
    hold.mode === 'write'
      ? 'the session is held by an open withEma() of an onnxruntime-web EMA'
      : `the session is held by ${hold.method}() of an onnxruntime-web EMA, which is still reading it`;
  return refused(Error, method, part);
}

/** What update/copyTo/store/restore do once allowed; `read` is what the session gives. */
function ortEffect(world, e, method, read) {
  const m = world.models[e];
  switch (method) {
    case 'update':
      return allowed(() => m.update(() => read), true);
    case 'store':
      return allowed(() => m.store([[SLOT, read]]));
    case 'copyTo':
      return allowed(() => world.expected.set(m.shadows.get(SLOT)));
    case 'restore':
      if (m.backup === null) return refused(Error, method, 'nothing is stored; call store() first');
      return allowed(() => world.expected.set(m.backup.get(SLOT)));
    default:
      throw new Error(method);
  }
}

function ortCall(world, e, method) {
  const ema = world.emas[e];
  return outcomeOf(() => (method === 'withEma' ? ema.withEma(() => 'evaluated') : ema[method]()));
}

function closeOrtScope(world, scope) {
  world.models[scope.e].scope = null;
  world.holds.splice(world.holds.indexOf(scope.hold), 1);
}

const ORT_COMMANDS = {
  async step(world, { seed, special }) {
    const values = weights(ORT_SIZE, seed, special);
    world.session.weights = values.slice();
    world.expected.set(values);
  },

  async call(world, { ema: e, method }) {
    const expected = ortRefusal(world, e, method) ?? ortEffect(world, e, method, world.expected);
    settle(await ortCall(world, e, method), expected, `${ORT_EMAS[e].label}.${method}`);
  },

  /** The session hands over an odd tensor for one call: a wrong one fails with nothing changed. */
  async tensor(world, { ema: e, method, tensor, seed }) {
    const values = randomArray(ORT_SIZE, seed);
    const { make, part } = TENSORS[tensor];
    const label = `${method === 'create' ? 'createOrtEma' : `${ORT_EMAS[e].label}.${method}`} with a ${tensor} tensor`;
    world.session.tensor = make(values);
    try {
      if (method === 'create') {
        const expected = world.holds.some((h) => h.mode === 'write')
          ? refused(Error, 'createOrtEma', 'the session is held by an open withEma()')
          : part !== undefined ? refused(Error, 'createOrtEma', part) : allowed();
        const outcome = await outcomeOf(() => createOrtEma(world.session, { decay: 0.5, simd: world.simd }));
        settle(outcome, expected, label);
        if (outcome.value !== undefined) {
          assertSameBits(outcome.value.shadow(), values, 'new EMA shadow');
          assert.equal(outcome.value.numUpdates, 0);
          outcome.value.dispose();
        }
        return;
      }
      const refusal = ortRefusal(world, e, method) ?? (part !== undefined ? refused(Error, method, part) : null);
      if (method !== 'withEma') {
        settle(await ortCall(world, e, method), refusal ?? ortEffect(world, e, method, values), label);
        return;
      }
      // withEma stores what the session gave, swaps the shadow in, and loads the stored values back.
      const m = world.models[e];
      let seen = null;
      const outcome = await outcomeOf(() => world.emas[e].withEma(() => {
        seen = world.session.weights.slice();
        return 'evaluated';
      }));
      settle(outcome, refusal ?? allowed(), label);
      if (refusal === null) {
        assertSameBits(seen, m.shadows.get(SLOT), 'session weights inside withEma');
        m.store([[SLOT, values]]);
        world.expected.set(values);
      } else {
        assert.equal(seen, null, 'fn of a refused withEma ran');
      }
    } finally {
      world.session.tensor = undefined;
    }
  },

  async open(world, { ema: e }) {
    const m = world.models[e];
    const refusal = ortRefusal(world, e, 'withEma');
    const scope = gatedScope();
    scope.settled = outcomeOf(() => world.emas[e].withEma(scope.fn));
    const label = `${ORT_EMAS[e].label}.withEma`;
    if (refusal !== null) {
      settle(await scope.settled, refusal, label);
      assert.equal(scope.ran, false, 'fn of a refused withEma ran');
      return;
    }
    scope.e = e;
    scope.hold = { e, mode: 'write', method: 'withEma' };
    world.holds.push(scope.hold);
    m.scope = scope;
    m.store([[SLOT, world.expected]]);
    world.expected.set(m.shadows.get(SLOT));
    await awaitEntered(scope, label);
  },

  /**
   * Lets an open withEma() finish: fn returns, throws, or the session refuses
   * the restore's load. With `probe`, the load is held at a gate and other
   * calls are tried while it is under way: the scope is still closed to them.
   */
  async release(world, { ema: e, outcome, probe }) {
    const m = world.models[e];
    const scope = m.scope;
    if (scope === null) return;
    const { session } = world;
    const thrown = new Error('evaluation failed');
    if (probe) {
      session.loadGate = deferred();
      session.loading = deferred();
    }
    scope.gate.resolve(() => {
      if (outcome === 'throw') throw thrown;
      if (outcome === 'refuseLoad') session.failNextLoad = true;
      return 'evaluated';
    });
    if (probe) {
      await Promise.race([session.loading.promise, scope.settled]);
      const other = 1 - e;
      for (const [p, method] of [[e, 'withEma'], [e, 'update'], [other, 'update'], [other, 'store'], [other, 'copyTo'], [other, 'withEma']]) {
        const expected = ortRefusal(world, p, method);
        assert.notEqual(expected, null, 'the model refuses calls during a withEma');
        settle(await ortCall(world, p, method), expected, `${ORT_EMAS[p].label}.${method} during the restore`);
      }
      const gate = session.loadGate;
      session.loadGate = null;
      gate.resolve();
    }
    const result = await scope.settled;
    closeOrtScope(world, scope);
    const label = `${ORT_EMAS[e].label}.withEma`;
    if (outcome === 'refuseLoad') {
      // The stored weights stay stored; the session keeps what it had.
      settle(result, refused(Error, 'withEma', 'could not load the stored weights back into the session (session is busy)'), label);
    } else if (outcome === 'throw') {
      assert.equal(result.error, thrown, `${label}: rejects with fn's error`);
      world.expected.set(m.backup.get(SLOT));
    } else {
      settle(result, allowed(), label);
      assert.equal(result.value, 'evaluated');
      world.expected.set(m.backup.get(SLOT));
    }
  },

  /** An update held while it reads the session: reads may join it, writes are refused. */
  async gatedUpdate(world, { ema: e, probes }) {
    const refusal = ortRefusal(world, e, 'update');
    if (refusal !== null) {
      settle(await ortCall(world, e, 'update'), refusal, `${ORT_EMAS[e].label}.update`);
      return;
    }
    const { session } = world;
    session.readGate = deferred();
    session.reading = deferred();
    const reads = [{ e, method: 'update', outcome: ortCall(world, e, 'update') }];
    const transient = [{ e, mode: 'read', method: 'update' }];
    world.holds.push(transient[0]);
    try {
      await Promise.race([session.reading.promise, reads[0].outcome]);
      for (const { ema: p, method } of probes) {
        const expected = ortRefusal(world, p, method);
        const call = ortCall(world, p, method);
        if (expected !== null) {
          settle(await call, expected, `${ORT_EMAS[p].label}.${method} during an update`);
          continue;
        }
        reads.push({ e: p, method, outcome: call });
        transient.push({ e: p, mode: ORT_MODES[method], method });
        world.holds.push(transient.at(-1));
      }
    } finally {
      session.readGate.resolve();
      session.readGate = null;
    }
    const outcomes = await Promise.all(reads.map((read) => read.outcome));
    world.holds = world.holds.filter((hold) => !transient.includes(hold));
    // Every read saw the same weights. Updates of one EMA may land in either
    // order, so what they did (their decays and counters) is compared as a multiset.
    const read = world.expected.slice();
    const results = { actual: [], expected: [] };
    // Each result as one string, its keys sorted, so that the multisets sort.
    const key = (r, result) => `${r}:${JSON.stringify(result, Object.keys(result ?? {}).sort())}`;
    reads.forEach(({ e: r, method }, i) => {
      settle(outcomes[i], allowed(), `${ORT_EMAS[r].label}.${method} (concurrent)`);
      const m = world.models[r];
      if (method === 'store') {
        m.store([[SLOT, read]]);
        return;
      }
      results.expected.push(key(r, m.update(() => read)));
      results.actual.push(key(r, outcomes[i].value));
    });
    assert.deepEqual(results.actual.sort(), results.expected.sort(), 'what the concurrent updates did');
  },

  async badFn(world, { ema: e }) {
    // The adapter checks fn before its scope, as every adapter does.
    const expected = refused(TypeError, 'withEma', 'fn must be a function, got the string "nope"');
    settle(await outcomeOf(() => world.emas[e].withEma('nope')), expected, 'withEma');
  },

  async create(world) {
    const held = world.holds.some((h) => h.mode === 'write');
    const outcome = await outcomeOf(() => createOrtEma(world.session, { decay: 0.5, simd: world.simd }));
    settle(outcome, held ? refused(Error, 'createOrtEma', 'the session is held by an open withEma()') : allowed(), 'createOrtEma');
    if (!held) {
      assertSameBits(outcome.value.shadow(), world.expected, 'new EMA shadow');
      outcome.value.dispose();
    }
  },

  ...COMMON_COMMANDS,
};

function checkOrt(world) {
  assertSameBits(world.session.weights, world.expected, 'session weights');
  world.models.forEach((m, e) => {
    const ort = world.emas[e];
    const { label } = ORT_EMAS[e];
    assert.equal(ort.numUpdates, m.numUpdates, `${label}.numUpdates`);
    assert.equal(ort.decay, m.decay, `${label}.decay`);
    assertSameBits(ort.shadow(), m.shadows.get(SLOT), `${label} shadow`);
    if (m.scope === null) checkBackup(ort.ema, m, label);
  });
}

async function closeOrt(world) {
  const { session } = world;
  session.readGate?.resolve();
  session.loadGate?.resolve();
  session.readGate = null;
  session.loadGate = null;
  const scopes = world.models.map((m) => m.scope).filter((scope) => scope !== null);
  for (const scope of scopes) scope.gate.resolve(() => undefined);
  await Promise.all(scopes.map((scope) => scope.settled));
  for (const ema of world.emas) ema.dispose();
}

const ortIndex = fc.nat(ORT_EMAS.length - 1);
const ortMethod = fc.constantFrom('update', 'copyTo', 'store', 'restore');
const ortCommand = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('step'), seed: fc.nat(9999), special: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('call'), ema: ortIndex, method: ortMethod }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('tensor'), ema: ortIndex, method: fc.constantFrom('update', 'store', 'withEma', 'create'),
      tensor: fc.constantFrom(...Object.keys(TENSORS)), seed: fc.nat(9999),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('open'), ema: ortIndex }) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('release'), ema: ortIndex, outcome: fc.constantFrom('return', 'throw', 'refuseLoad'), probe: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('gatedUpdate'), ema: ortIndex,
      probes: fc.array(fc.record({ ema: ortIndex, method: fc.constantFrom('update', 'store', 'copyTo', 'restore', 'withEma') }), { maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('badFn'), ema: ortIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('create') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dispose'), ema: ortIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset'), ema: ortIndex }) },
);

export const ortWorld = {
  title: 'ema-wasm/ort (two EMAs of one fake session)',
  make: makeOrtWorld,
  command: ortCommand,
  handlers: ORT_COMMANDS,
  check: checkOrt,
  close: closeOrt,
};
