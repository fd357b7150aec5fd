// The pieces every world of the model-based tests shares (model.test.js):
// the float32 model of one EMA, bit-exact comparisons, expected outcomes, the
// hostile arrays, gated withEma() scopes, and the loop that runs a command
// list against a world.
import assert from 'node:assert/strict';
import { inspect, isDeepStrictEqual } from 'node:util';
import vm from 'node:vm';

import { randomArray, referenceStep, warmupDecay } from '../helpers.js';

/** One EMA as LitEma defines it, in float32: what the real one must hold. */
export class EmaModel {
  constructor(names, values, { decay, useNumUpdates }) {
    this.names = names.slice();
    this.decay = Math.fround(decay);
    this.numUpdates = useNumUpdates ? 0 : -1;
    this.shadows = new Map(names.map((name, i) => [name, Float32Array.from(values[i])]));
    this.backup = null; // Map name -> values, in stored order, after a store
    this.scope = null; // the open withEma(), if any
  }

  length(name) {
    return this.shadows.get(name).length;
  }

  /**
   * One step; valueOf(name) gives the parameter's values. Returns what
   * update() must return: the decay used, the float32 weight applied
   * (1 - decay), the counter after the step, and that it averaged.
   */
  update(valueOf) {
    let decay = this.decay;
    if (this.numUpdates >= 0) {
      this.numUpdates += 1;
      decay = warmupDecay(this.decay, this.numUpdates);
    }
    for (const [name, shadow] of this.shadows) referenceStep(shadow, valueOf(name), decay);
    return {
      action: 'averaged', decay, weight: Math.fround(1 - decay), counter: this.numUpdates, overwrote: false, nonFinite: false,
    };
  }

  /** store(): copies of every [name, values] given. */
  store(pairs) {
    this.backup = new Map(pairs.map(([name, values]) => [name, Float32Array.from(values)]));
  }
}

// Arrays are read through the intrinsic getters, so that a subclass, an own
// `length` or another realm's array is read as the engine sees it and no
// user code runs.
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
const intrinsic = (key) => Object.getOwnPropertyDescriptor(TypedArrayPrototype, key).get;
const bufferOf = intrinsic('buffer');
const byteOffsetOf = intrinsic('byteOffset');
export const lengthOf = intrinsic('length');
export const setInto = (target, source) => TypedArrayPrototype.set.call(target, source);

const bitsOf = (array) => new Uint32Array(bufferOf.call(array), byteOffsetOf.call(array), lengthOf.call(array));
export const copyOf = (array) => new Float32Array(new Uint32Array(bitsOf(array)).buffer);
const isNaNBits = (bits) => (bits & 0x7fffffff) > 0x7f800000;
const hex = (bits) => `0x${bits.toString(16).padStart(8, '0')}`;

/** Same float32 bits, except that any NaN equals any NaN (Wasm and JS may differ in NaN sign). */
export function assertSameBits(actual, expected, what) {
  const a = bitsOf(actual);
  const e = bitsOf(expected);
  assert.equal(a.length, e.length, `${what}: ${a.length} elements, expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i] && !(isNaNBits(a[i]) && isNaNBits(e[i]))) {
      const f = new Float32Array(Uint32Array.of(a[i], e[i]).buffer);
      assert.fail(`${what}: element ${i} is ${f[0]} (${hex(a[i])}), expected ${f[1]} (${hex(e[i])})`);
    }
  }
}

const SPECIALS = [NaN, -0, 1e-40, -Infinity, 3.4028234663852886e38];

/** New weights, as an optimizer step writes them; `special` puts one NaN, -0, subnormal, ... in. */
export function weights(length, seed, special) {
  const values = randomArray(length, seed + 1);
  if (special && length > 0) values[seed % length] = SPECIALS[seed % SPECIALS.length];
  return values;
}

export function detach(buffer) {
  structuredClone(buffer, { transfer: [buffer] });
}

export function deferred() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export const quote = (names) => names.map((name) => `'${name}'`).join(', ');

/** Runs a call (sync or async) and captures what it returned or threw. */
export async function outcomeOf(call) {
  try {
    return { value: await call() };
  } catch (error) {
    return { error };
  }
}

// Expectations: refused(...) is an error of this class whose message starts
// with 'ema-wasm: <method>: ' and contains `part`; `apply` updates the model
// with what the call does (also when it throws, for best-effort restores) and
// returns the value the call must return when `checkValue` is set.
export const refused = (ErrorClass, method, part, apply) => ({ error: { ErrorClass, method, part }, apply });
export const allowed = (apply, checkValue = false) => ({ apply, checkValue });

export function settle(outcome, expected, what) {
  if (expected.error) {
    const { ErrorClass, method, part } = expected.error;
    const wanted = `${ErrorClass.name} 'ema-wasm: ${method}: …${part}…'`;
    if (!('error' in outcome)) assert.fail(`${what}: expected ${wanted}, but it succeeded`);
    const { error } = outcome;
    const got = `${error?.constructor?.name}: ${error?.message}`;
    assert.equal(error?.constructor, ErrorClass, `${what}: expected ${wanted}, got ${got}`);
    assert.ok(error.message.startsWith(`ema-wasm: ${method}: `), `${what}: expected ${wanted}, got ${got}`);
    assert.ok(error.message.includes(part), `${what}: expected ${wanted}, got ${got}`);
  } else if ('error' in outcome) {
    assert.fail(`${what}: expected success, got ${outcome.error?.constructor?.name}: ${outcome.error?.message}`);
  }
  const value = expected.apply?.();
  if (expected.checkValue && !isDeepStrictEqual(outcome.value, value)) {
    assert.fail(`${what}: returned ${inspect(outcome.value)}, expected ${inspect(value)}`);
  }
}

// Hostile arrays. Sneaky's overrides must never run; the check after every
// call asserts the counter stays 0.
let userCodeRuns = 0;
class Sneaky extends Float32Array {
  static get [Symbol.species]() {
    userCodeRuns++;
    return Float32Array;
  }
  get length() {
    userCodeRuns++;
    return 1;
  }
  set() {
    userCodeRuns++;
  }
  subarray() {
    userCodeRuns++;
    return new Float32Array(1);
  }
  slice() {
    userCodeRuns++;
    return new Float32Array(1);
  }
}
const foreignFloat32 = vm.runInNewContext('(length) => new Float32Array(length)');

/** An array of `kind` holding `values` (a fresh copy; never user-visible elsewhere). */
export function hostileArray(kind, values) {
  switch (kind) {
    case 'plain':
      return values.slice();
    case 'float64':
      return Float64Array.from(values);
    case 'proxy':
      return new Proxy(values.slice(), {});
    case 'ownLength': {
      const array = values.slice();
      Object.defineProperty(array, 'length', { value: 1000 });
      return array;
    }
    case 'subclass': {
      const array = new Sneaky(values.length);
      setInto(array, values);
      return array;
    }
    case 'foreign': {
      const array = foreignFloat32(values.length);
      setInto(array, values);
      return array;
    }
    case 'detached': {
      const array = values.slice();
      detach(array.buffer);
      return array;
    }
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

/** A gated withEma() fn: it signals `entered`, then does what release() hands it. */
export function gatedScope() {
  const scope = { gate: deferred(), entered: deferred(), ran: false };
  scope.fn = async () => {
    scope.ran = true;
    scope.entered.resolve();
    const action = await scope.gate.promise;
    return action();
  };
  return scope;
}

/** Waits until the scope's fn is running; fails with the error if withEma settled first. */
export async function awaitEntered(scope, what) {
  const first = await Promise.race([scope.entered.promise.then(() => null), scope.settled]);
  if (first !== null) settle(first, allowed(), `${what} (fn never ran)`);
}

/** Runs commands on a fresh world, checking it after each; always closes what is open. */
export async function runCommands(makeWorld, commands, handlers, check, cleanup) {
  userCodeRuns = 0;
  const world = await makeWorld();
  try {
    for (const [index, command] of commands.entries()) {
      try {
        await handlers[command.kind](world, command);
        check(world);
        assert.equal(userCodeRuns, 0, 'a method or getter of a Float32Array subclass ran');
      } catch (error) {
        // Name the command in the report (fast-check shows the stack).
        if (error instanceof Error) {
          const where = `command ${index} ${JSON.stringify(command)}: `;
          error.message = where + error.message;
          error.stack = where + error.stack;
        }
        throw error;
      }
    }
  } finally {
    await cleanup(world);
  }
}

export const heldBy = (method, label) => refused(Error, method, `${label} is held by an open withEma()`);

/** What a restore of `ema` (a core Ema) would write, read into throwaway arrays. */
export function checkBackup(ema, m, label) {
  if (m.backup === null) {
    assert.throws(() => ema.restore([]), /nothing is stored/, `${label}: nothing stored`);
    return;
  }
  const targets = [...m.backup].map(([name, values]) => ({ name, data: new Float32Array(values.length) }));
  ema.restore(targets);
  for (const { name, data } of targets) assertSameBits(data, m.backup.get(name), `${label} stored '${name}'`);
}

/**
 * Commands every world has in the same form: dispose() inside the EMA's own
 * withEma is refused (outside it would end the run), and resetNumUpdates().
 */
export const COMMON_COMMANDS = {
  async dispose(world, { ema: e }) {
    if (world.models[e].scope === null) return;
    settle(await outcomeOf(() => world.emas[e].dispose()), refused(Error, 'dispose', 'not allowed while withEma() is running'), 'dispose');
  },

  async reset(world, { ema: e }) {
    world.emas[e].resetNumUpdates();
    world.models[e].numUpdates = 0;
  },
};
