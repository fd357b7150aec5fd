// ema-wasm/tfjs in the model-based tests (model.test.js): three EMAs of fake
// tf.Variables and a fake tf; T0 and T1 share three variables, T2 has its own.
// A variable's dataSync() may give an odd array for one call, and a withEma's
// fn may dispose a variable: the run then goes on with it disposed.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { createTfjsEma } from '../../../js/adapters/tfjs.js';
import { randomArray } from '../helpers.js';
import {
  COMMON_COMMANDS,
  allowed, assertSameBits, awaitEntered, checkBackup, EmaModel, gatedScope, heldBy, hostileArray, outcomeOf, quote, refused,
  settle,
  weights,
} from './shared.js';

const TF_VARIABLES = [['dense/kernel', [2, 3]], ['dense/bias', [3]], ['out/w', [4]], ['head/d', [2]]];
const TF_EMAS = [
  { label: 'T0', variables: [0, 1, 2], decay: 0.9, useNumUpdates: true },
  { label: 'T1', variables: [0, 1, 2], decay: 0.99, useNumUpdates: false },
  { label: 'T2', variables: [3], decay: 0.5, useNumUpdates: true },
];
const tfName = (v) => TF_VARIABLES[v][0];
const tfSize = (v) => TF_VARIABLES[v][1].reduce((p, d) => p * d, 1);

// The adapter calls only tf.tensor, and on a variable without read():
// name, shape, dtype, isDisposed, dataSync(), assign().
const fakeTf = {
  tensor(values, shape, dtype) {
    assert.equal(dtype, 'float32');
    return { values: Float32Array.from(values), shape, dispose() {} };
  },
};

function fakeVariable(name, shape, values) {
  return {
    name,
    shape,
    dtype: 'float32',
    isDisposed: false,
    values,
    dataSync() {
      return this.values;
    },
    assign(tensor) {
      assert.equal(this.isDisposed, false, `assign to the disposed variable '${name}'`);
      this.values = Float32Array.from(tensor.values);
    },
    dispose() {
      this.isDisposed = true;
    },
  };
}

async function makeTfWorld(simd) {
  const world = { simd, variables: [], expected: [], disposed: [], emas: [], models: [], scopes: [] };
  TF_VARIABLES.forEach(([name, shape], v) => {
    const values = randomArray(tfSize(v), 300 + v);
    world.variables.push(fakeVariable(name, shape, values.slice()));
    world.expected.push(values);
    world.disposed.push(false);
  });
  for (const spec of TF_EMAS) {
    const { decay, useNumUpdates } = spec;
    world.emas.push(await createTfjsEma(spec.variables.map((v) => world.variables[v]), { tf: fakeTf, decay, useNumUpdates, simd }));
    world.models.push(new EmaModel(spec.variables.map(tfName), spec.variables.map((v) => world.expected[v]), spec));
  }
  return world;
}

/** The first of `variables` an open scope holds, in the realm's order, or null. */
function heldVariable(world, variables) {
  for (const scope of world.scopes) for (const held of scope.variables) if (variables.includes(held)) return held;
  return null;
}

/** The model's prediction for T<e>.method(). */
function predictTf(world, e, method) {
  const m = world.models[e];
  const { variables } = TF_EMAS[e];
  if (m.scope) return refused(Error, method, 'not allowed while withEma() is running');
  const held = heldVariable(world, variables);
  if (held !== null) return heldBy(method, `variable '${tfName(held)}'`);
  const disposed = variables.filter((v) => world.disposed[v]);
  const wereDisposed = refused(Error, method, disposed.length === 1
    ? `variable '${tfName(disposed[0])}' was disposed`
    : `variables ${quote(disposed.map(tfName))} were disposed`);
  const write = (v, values) => world.expected[v].set(values);
  switch (method) {
    case 'update':
      return disposed.length > 0 ? wereDisposed : allowed(() => m.update((name) => world.expected[variables[m.names.indexOf(name)]]), true);
    case 'store':
      return disposed.length > 0 ? wereDisposed : allowed(() => m.store(variables.map((v) => [tfName(v), world.expected[v]])));
    case 'copyTo':
      return disposed.length > 0 ? wereDisposed : allowed(() => variables.forEach((v) => write(v, m.shadows.get(tfName(v)))));
    case 'withEma':
      return disposed.length > 0 ? wereDisposed : { scope: true };
    case 'restore': {
      if (m.backup === null) return refused(Error, method, 'nothing is stored');
      const apply = () => variables.filter((v) => !world.disposed[v]).forEach((v) => write(v, m.backup.get(tfName(v))));
      if (disposed.length === 0) return allowed(apply);
      return refused(Error, method, `could not write the stored weights back into ${disposed.length} of ${variables.length} variables`, apply);
    }
    default:
      throw new Error(method);
  }
}

// What a variable's dataSync() may give for one call: the error it must
// cause (class and message part, given the variable), or none.
const ODD_VALUES = {
  wrongLength: {
    make: (values) => randomArray(values.length + 1, 7),
    error: (v) => [Error, `parameter '${tfName(v)}'.shape [${TF_VARIABLES[v][1].join(', ')}] holds ${tfSize(v)} elements but its data has ${tfSize(v) + 1}`],
  },
  float64: { make: (values) => hostileArray('float64', values), error: (v) => [TypeError, `parameter '${tfName(v)}' must be a Float32Array`] },
  detached: { make: (values) => hostileArray('detached', values), error: (v) => [Error, `parameter '${tfName(v)}' cannot be used`] },
  view: {
    make: (values) => {
      const big = new Float32Array(values.length + 8);
      big.set(values, 5);
      return big.subarray(5, 5 + values.length);
    },
  },
  ownLength: { make: (values) => hostileArray('ownLength', values) },
  subclass: { make: (values) => hostileArray('subclass', values) },
  foreign: { make: (values) => hostileArray('foreign', values) },
};

const TF_COMMANDS = {
  async step(world, { variables, seed, special }) {
    variables.forEach((v, i) => {
      if (world.disposed[v]) return;
      const values = weights(tfSize(v), seed + i, special);
      world.variables[v].values = values.slice();
      world.expected[v].set(values);
    });
  },

  async call(world, { ema: e, method }) {
    const expected = predictTf(world, e, method);
    settle(await outcomeOf(() => world.emas[e][method]()), expected, `${TF_EMAS[e].label}.${method}`);
  },

  /**
   * One variable's dataSync() gives an odd array for one update, store or
   * withEma: a wrong one fails with nothing changed, an unusual but valid
   * one is used like any other.
   */
  async oddValues(world, { ema: e, method, odd, pick, seed }) {
    const m = world.models[e];
    const { variables } = TF_EMAS[e];
    const v = variables[pick % variables.length];
    const values = randomArray(tfSize(v), seed);
    const read = (u) => (u === v ? values : world.expected[u]);
    const variable = world.variables[v];
    const { dataSync } = variable;
    const data = ODD_VALUES[odd].make(values);
    variable.dataSync = () => data;
    try {
      let expected = predictTf(world, e, method);
      if (!expected.error && ODD_VALUES[odd].error) {
        const [ErrorClass, part] = ODD_VALUES[odd].error(v);
        expected = refused(ErrorClass, method, part);
      } else if (!expected.error && method === 'update') {
        expected = allowed(() => m.update((name) => read(variables[m.names.indexOf(name)])), true);
      } else if (!expected.error && method === 'store') {
        expected = allowed(() => m.store(variables.map((u) => [tfName(u), read(u)])));
      }
      let seen = null;
      const fn = () => {
        seen = variables.map((u) => world.variables[u].values.slice());
        return 'evaluated';
      };
      const outcome = await outcomeOf(() => (method === 'withEma' ? world.emas[e].withEma(fn) : world.emas[e][method]()));
      const label = `${TF_EMAS[e].label}.${method} with ${odd} values for '${tfName(v)}'`;
      if (method !== 'withEma' || expected.error) {
        settle(outcome, expected, label);
        assert.equal(seen, null, 'fn of a refused withEma ran');
        return;
      }
      // withEma stored what dataSync gave, and puts exactly that back.
      settle(outcome, allowed(), label);
      variables.forEach((u, i) => assertSameBits(seen[i], m.shadows.get(tfName(u)), `inside withEma: '${tfName(u)}'`));
      m.store(variables.map((u) => [tfName(u), read(u)]));
      for (const u of variables) world.expected[u].set(m.backup.get(tfName(u)));
    } finally {
      variable.dataSync = dataSync;
    }
  },

  async open(world, { ema: e }) {
    const m = world.models[e];
    const expected = predictTf(world, e, 'withEma');
    const scope = gatedScope();
    scope.settled = outcomeOf(() => world.emas[e].withEma(scope.fn));
    const label = `${TF_EMAS[e].label}.withEma`;
    if (expected.scope === undefined) {
      settle(await scope.settled, expected, label);
      assert.equal(scope.ran, false, 'fn of a refused withEma ran');
      return;
    }
    const { variables } = TF_EMAS[e];
    Object.assign(scope, { e, variables });
    world.scopes.push(scope);
    m.scope = scope;
    m.store(variables.map((v) => [tfName(v), world.expected[v]]));
    for (const v of variables) world.expected[v].set(m.shadows.get(tfName(v)));
    await awaitEntered(scope, label);
  },

  /** Lets an open withEma() finish: fn returns, throws, or disposes one of the variables. */
  async release(world, { ema: e, outcome, pick }) {
    const m = world.models[e];
    const scope = m.scope;
    if (scope === null) return;
    const { variables } = scope;
    const victim = outcome === 'dispose' ? variables[pick % variables.length] : null;
    const thrown = new Error('evaluation failed');
    scope.gate.resolve(() => {
      if (outcome === 'throw') throw thrown;
      if (victim !== null) world.variables[victim].dispose();
      return 'evaluated';
    });
    const result = await scope.settled;
    m.scope = null;
    world.scopes.splice(world.scopes.indexOf(scope), 1);
    if (victim !== null) world.disposed[victim] = true;
    const restore = () => variables.filter((v) => v !== victim).forEach((v) => world.expected[v].set(m.backup.get(tfName(v))));
    const label = `${TF_EMAS[e].label}.withEma`;
    if (victim !== null) {
      const part = `could not write the stored weights back into 1 of ${variables.length} variables: '${tfName(victim)}' (it was disposed)`;
      settle(result, refused(Error, 'withEma', part, restore), label);
    } else if (outcome === 'throw') {
      assert.equal(result.error, thrown, `${label}: rejects with fn's error`);
      restore();
    } else {
      settle(result, allowed(), label);
      assert.equal(result.value, 'evaluated');
      restore();
    }
  },

  async create(world, { variables }) {
    const disposed = variables.find((v) => world.disposed[v]);
    const held = heldVariable(world, variables);
    let expected = allowed();
    if (disposed !== undefined) expected = refused(Error, 'createTfjsEma', `variable '${tfName(disposed)}' was disposed`);
    else if (held !== null) expected = heldBy('createTfjsEma', `variable '${tfName(held)}'`);
    const outcome = await outcomeOf(() => createTfjsEma(variables.map((v) => world.variables[v]), { tf: fakeTf, decay: 0.5, simd: world.simd }));
    settle(outcome, expected, 'createTfjsEma');
    if (outcome.value !== undefined) {
      for (const v of variables) assertSameBits(outcome.value.shadow(tfName(v)), world.expected[v], `new EMA shadow '${tfName(v)}'`);
      outcome.value.dispose();
    }
  },

  async badFn(world, { ema: e }) {
    // The adapter checks fn before its scope.
    settle(await outcomeOf(() => world.emas[e].withEma('nope')), refused(TypeError, 'withEma', 'fn must be a function'), 'withEma');
  },

  ...COMMON_COMMANDS,
};

function checkTf(world) {
  world.variables.forEach((variable, v) => {
    assert.equal(variable.isDisposed, world.disposed[v], `variable '${tfName(v)}' disposed`);
    assertSameBits(variable.values, world.expected[v], `variable '${tfName(v)}'`);
  });
  world.models.forEach((m, e) => {
    const ema = world.emas[e];
    const { label } = TF_EMAS[e];
    assert.equal(ema.numUpdates, m.numUpdates, `${label}.numUpdates`);
    assert.equal(ema.decay, m.decay, `${label}.decay`);
    for (const [name, shadow] of m.shadows) assertSameBits(ema.shadow(name), shadow, `${label} shadow '${name}'`);
    if (m.scope === null) checkBackup(ema.ema, m, label);
  });
}

async function closeTf(world) {
  for (const scope of world.scopes) scope.gate.resolve(() => undefined);
  await Promise.all(world.scopes.map((scope) => scope.settled));
  for (const ema of world.emas) ema.dispose();
}

const tfIndex = fc.nat(TF_EMAS.length - 1);
const tfVariables = fc.subarray(TF_VARIABLES.map((_, v) => v), { minLength: 1 });
const tfCommand = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('step'), variables: tfVariables, seed: fc.nat(9999), special: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('call'), ema: tfIndex, method: fc.constantFrom('update', 'copyTo', 'store', 'restore') }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('oddValues'), ema: tfIndex, method: fc.constantFrom('update', 'store', 'withEma'),
      odd: fc.constantFrom(...Object.keys(ODD_VALUES)), pick: fc.nat(7), seed: fc.nat(9999),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('open'), ema: tfIndex }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('release'), ema: tfIndex, pick: fc.nat(7),
      // Disposing a variable for good is rare, or most runs would end in refusals.
      outcome: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('return', 'throw') }, { weight: 1, arbitrary: fc.constant('dispose') }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('create'), variables: tfVariables }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('badFn'), ema: tfIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dispose'), ema: tfIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset'), ema: tfIndex }) },
);

export const tfjsWorld = {
  title: 'ema-wasm/tfjs (three EMAs of fake variables)',
  make: makeTfWorld,
  command: tfCommand,
  handlers: TF_COMMANDS,
  check: checkTf,
  close: closeTf,
};
