// The core Ema in the model-based tests (model.test.js): E0 over {w, b, big}
// (big exceeds the 64K-float staging window), E1 over {w, b} (warmup off),
// E2 over {c} or over R's view of 'c', and R, a resident EMA whose parameters
// are R.param(name) views. Commands call them on the world's arrays, on
// hostile throwaway arrays, and open withEma() scopes that stay open across
// later commands.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { createEma } from '../../../js/index.js';
import { randomArray } from '../helpers.js';
import {
  COMMON_COMMANDS,
  allowed, assertSameBits, awaitEntered, checkBackup, copyOf, detach, EmaModel, gatedScope, heldBy, hostileArray,
  lengthOf, outcomeOf, quote, refused, settle, weights,
} from './shared.js';

const CORE_SLOTS = { w: 5, b: 3, big: 65536 + 7, c: 2, frozen: 1, 'R.c': 2, 'R.r': 6 };
const SLOT_NAMES = Object.keys(CORE_SLOTS);
const RESIDENT = 3;
const CORE_EMAS = [
  { label: 'E0', names: ['w', 'b', 'big'], decay: 0.9, useNumUpdates: true },
  { label: 'E1', names: ['w', 'b'], decay: 0.99, useNumUpdates: false },
  { label: 'E2', names: ['c'], decay: 0.5, useNumUpdates: true },
  { label: 'R', names: ['c', 'r'], decay: 0.75, useNumUpdates: true, resident: true },
];
const FORMS = ['array', 'map', 'object', 'proxy'];
const MUTATIONS = [
  'none', 'wrongLength', 'unknownName', 'missingName', 'duplicateName', 'float64', 'proxy', 'ownLength',
  'subclass', 'foreign', 'detached', 'detachingGetter', 'trackedFrozen', 'badName', 'emptyName',
  'badTrainable', 'badShape', 'hugeRank', 'notParams', 'proxyParams', 'openingGetter',
];
// Mutations that need fields only the array form has.
const ARRAY_FORM_ONLY = new Set([
  'duplicateName', 'detachingGetter', 'trackedFrozen', 'badName', 'badTrainable', 'badShape', 'hugeRank',
]);
const REGION = { label: "the resident EMA's memory", slots: ['R.c', 'R.r'] };

/** The world slot an EMA's parameter lives in (E2 may use R's view of 'c'). */
function slotOf(e, name, alt) {
  if (e === RESIDENT) return `R.${name}`;
  return e === 2 && alt ? 'R.c' : name;
}

async function makeCoreWorld(simd) {
  const world = { simd, arrays: new Map(), expected: new Map(), emas: [], models: [], scopes: [] };
  SLOT_NAMES.forEach((slot, i) => {
    const values = randomArray(CORE_SLOTS[slot], 100 + i);
    world.expected.set(slot, values.slice());
    if (!slot.startsWith('R.')) world.arrays.set(slot, values);
  });
  for (const [e, spec] of CORE_EMAS.entries()) {
    const slots = spec.names.map((name) => slotOf(e, name, false));
    const params = spec.names.map((name, i) => ({
      name,
      data: spec.resident ? world.expected.get(slots[i]).slice() : world.arrays.get(slots[i]),
    }));
    const { decay, useNumUpdates } = spec;
    world.emas.push(await createEma(params, { decay, useNumUpdates, simd, resident: spec.resident === true }));
    world.models.push(new EmaModel(spec.names, slots.map((slot) => world.expected.get(slot)), spec));
  }
  return world;
}

function realArray(world, slot) {
  return slot.startsWith('R.') ? world.emas[RESIDENT].param(slot.slice(2)) : world.arrays.get(slot);
}

// A call's params are described by items: { name, slot } for a world array,
// { name, data, model, kind } for a throwaway one (model: what it must hold),
// plus trainable / shape / detaches (index of an earlier item whose buffer
// this item's data getter detaches).
function worldItems(e, { frozen, alt, form }) {
  const items = CORE_EMAS[e].names.map((name) => ({ name, slot: slotOf(e, name, alt) }));
  if (frozen && (form === 'array' || form === 'proxy')) items.push({ name: 'frozen', slot: 'frozen', trainable: false });
  return items;
}

function throwaway(name, length, seed, kind = 'plain') {
  const model = randomArray(length, seed);
  return { name, model, kind, data: hostileArray(kind, model) };
}

/** Applies one hostile mutation to throwaway items; returns the params form to use. */
function mutate(items, mutation, pick, seed, form) {
  if (items.length === 0 && !['none', 'notParams', 'proxyParams'].includes(mutation)) mutation = 'unknownName';
  if (ARRAY_FORM_ONLY.has(mutation) && form !== 'proxy') form = 'array';
  const i = pick % Math.max(items.length, 1);
  const item = items[i];
  switch (mutation) {
    case 'wrongLength':
      items[i] = throwaway(item.name, item.model.length + 1, seed + 50);
      break;
    case 'unknownName':
      items.push(throwaway('zz', 2, seed + 51));
      break;
    case 'missingName':
      items.splice(i, 1);
      break;
    case 'duplicateName':
      items.push(throwaway(item.name, item.model.length, seed + 52));
      break;
    case 'float64': case 'proxy': case 'ownLength': case 'subclass': case 'foreign': case 'detached':
      items[i] = throwaway(item.name, item.model.length, seed + 53, mutation);
      break;
    case 'detachingGetter': {
      // The last entry's getter detaches an earlier one (same name and length as a tracked array).
      if (items.length < 2) items.push({ ...throwaway('extra', 1, seed + 54), trainable: false });
      const last = items.length - 1;
      items[last].detaches = i < last ? i : 0;
      break;
    }
    case 'trackedFrozen':
      item.trainable = false;
      break;
    case 'badName':
      item.name = 42;
      break;
    case 'emptyName':
      item.name = '';
      break;
    case 'badTrainable':
      item.trainable = 'yes';
      break;
    case 'badShape':
      item.shape = [item.model.length + 1];
      break;
    case 'hugeRank':
      item.shape = new Array(33).fill(1);
      break;
    case 'notParams':
      return 'notParams';
    case 'proxyParams':
      return 'proxy';
    default:
      break;
  }
  return form;
}

function paramsOf(world, items, form) {
  if (form === 'notParams') return 'weights';
  const dataOf = (item) => (item.slot !== undefined ? realArray(world, item.slot) : item.data);
  if (form === 'map') return new Map(items.map((item) => [item.name, dataOf(item)]));
  if (form === 'object') return Object.fromEntries(items.map((item) => [item.name, dataOf(item)]));
  const list = items.map((item) => {
    const entry = { name: item.name };
    if (item.detaches !== undefined) {
      const victim = items[item.detaches];
      Object.defineProperty(entry, 'data', {
        enumerable: true,
        get() {
          detach(dataOf(victim).buffer);
          return dataOf(item);
        },
      });
    } else if (item.onRead !== undefined) {
      Object.defineProperty(entry, 'data', {
        enumerable: true,
        get() {
          item.onRead();
          return dataOf(item);
        },
      });
    } else {
      entry.data = dataOf(item);
    }
    if (item.trainable !== undefined) entry.trainable = item.trainable;
    if (item.shape !== undefined) entry.shape = item.shape;
    return entry;
  });
  return form === 'proxy' ? new Proxy(list, {}) : list;
}

const valuesOf = (world, entry) => (entry.slot !== undefined ? world.expected.get(entry.slot) : entry.item.model);

function writeModel(world, entry, values) {
  if (entry.slot !== undefined) world.expected.get(entry.slot).set(values);
  else entry.item.model.set(values);
}

const targetsOf = (entries) => entries.map((entry) => ({ label: `parameter '${entry.name}'`, slots: entry.slot ? [entry.slot] : [] }));

/** The label of the first of `targets` an open scope holds, in the realm's order; null if free. */
function heldLabel(world, targets) {
  for (const scope of world.scopes) {
    for (const target of targets) {
      if (scope.targets.some((held) => target.slots.some((slot) => held.slots.includes(slot)))) return target.label;
    }
  }
  return null;
}

/** What the read-once seam makes of the items: { entries } or { error }. */
function resolveModel(items, form, method) {
  if (form === 'notParams') return { error: refused(TypeError, method, 'params must be an array of { name, data }') };
  const arrayForm = form === 'array' || form === 'proxy';
  // Phase one reads each entry in order: the data getter, then the shape.
  for (const item of items) {
    if (item.detaches !== undefined) items[item.detaches].detachedNow = true;
    if (arrayForm && item.shape !== undefined && item.shape.length > 32) {
      return { error: refused(RangeError, method, `parameter '${item.name}'.shape has ${item.shape.length} dimensions`) };
    }
  }
  // Phase two checks each entry in order.
  const entries = [];
  for (const item of items) {
    const { name } = item;
    const trainable = arrayForm ? item.trainable : undefined;
    if (typeof name !== 'string') return { error: refused(TypeError, method, '.name must be a string') };
    if (name === '') return { error: refused(Error, method, '.name is empty') };
    if (item.kind === 'float64' || item.kind === 'proxy') {
      return { error: refused(TypeError, method, `parameter '${name}' must be a Float32Array`) };
    }
    if (trainable !== undefined && typeof trainable !== 'boolean') {
      return { error: refused(TypeError, method, `parameter '${name}'.trainable must be a boolean`) };
    }
    const usable = item.slot !== undefined || (item.kind !== 'detached' && !item.detachedNow);
    const length = !usable ? 0 : item.slot !== undefined ? CORE_SLOTS[item.slot] : item.model.length;
    const shape = arrayForm ? item.shape : undefined;
    if (usable && shape !== undefined && shape.reduce((p, d) => p * d, 1) !== length) {
      return { error: refused(Error, method, `parameter '${name}'.shape [${shape.join(', ')}] holds`) };
    }
    entries.push({ item, name, slot: item.slot, length, usable, trainable: trainable ?? true });
  }
  return { entries };
}

function duplicatesOf(entries) {
  const names = entries.map((entry) => entry.name);
  return names.filter((name, i) => names.indexOf(name) !== i);
}

/** Ema#matchTracked: { tracked } (in slot order) or { error }. */
function matchTracked(m, entries, method) {
  const unusable = entries.find((entry) => !entry.usable);
  if (unusable) return { error: refused(Error, method, `parameter '${unusable.name}' cannot be used`) };
  if (duplicatesOf(entries).length > 0) return { error: refused(Error, method, 'duplicate parameter names') };
  const byName = new Map();
  const unknown = [];
  for (const entry of entries) {
    const tracked = m.shadows.has(entry.name);
    if (!entry.trainable) {
      if (tracked) return { error: refused(Error, method, `parameter '${entry.name}' is tracked but was passed with trainable: false`) };
      continue;
    }
    if (!tracked) {
      unknown.push(entry.name);
      continue;
    }
    if (entry.length !== m.length(entry.name)) {
      return { error: refused(Error, method, `parameter '${entry.name}' has ${entry.length} elements; its shadow has ${m.length(entry.name)}`) };
    }
    byName.set(entry.name, entry);
  }
  if (unknown.length > 0) return { error: refused(Error, method, `unknown trainable parameters ${quote(unknown)}`) };
  const missing = m.names.filter((name) => !byName.has(name));
  if (missing.length > 0) return { error: refused(Error, method, `missing tracked parameters ${quote(missing)}`) };
  return { tracked: m.names.map((name) => byName.get(name)) };
}

/** Ema#matchStored: { targets } or { error }. */
function matchStored(m, entries, method) {
  if (duplicatesOf(entries).length > 0) return { error: refused(Error, method, 'duplicate parameter names') };
  if (m.backup === null) return { error: refused(Error, method, 'nothing is stored; call store(params) first') };
  const unknown = [];
  const targets = [];
  for (const entry of entries) {
    const stored = m.backup.get(entry.name);
    if (stored === undefined) {
      unknown.push(entry.name);
      continue;
    }
    if (entry.usable && entry.length !== stored.length) {
      return { error: refused(Error, method, `parameter '${entry.name}' has ${entry.length} elements; ${stored.length} were stored`) };
    }
    targets.push(entry);
  }
  if (unknown.length > 0) return { error: refused(Error, method, `parameters ${quote(unknown)} were not stored`) };
  if (targets.length !== m.backup.size) {
    const given = new Set(entries.map((entry) => entry.name));
    return { error: refused(Error, method, `stored parameters ${quote([...m.backup.keys()].filter((n) => !given.has(n)))} are missing`) };
  }
  return { targets };
}

/** Restores the backup into the targets; best effort, as Ema#restoreInto. */
function restoreModel(world, m, targets, method) {
  const apply = () => {
    for (const entry of targets) if (entry.usable) writeModel(world, entry, m.backup.get(entry.name));
  };
  const failed = targets.filter((entry) => !entry.usable).length;
  if (failed === 0) return allowed(apply);
  return refused(Error, method, `could not write the stored weights back into ${failed} of ${targets.length} arrays`, apply);
}

/** The resident EMA's calls: they take no params and act on R's slots. */
function predictResident(world, m, method, items) {
  if (items !== undefined) {
    const part = method === 'withEma' ? 'this EMA is resident: call withEma(fn), without params' : 'this EMA is resident and takes no params';
    return refused(TypeError, method, part);
  }
  if (m.scope) return refused(Error, method, 'not allowed while withEma() is running');
  const held = heldLabel(world, [REGION]);
  if (held !== null) return heldBy(method, held);
  const entries = m.names.map((name) => ({ name, slot: slotOf(RESIDENT, name), usable: true }));
  switch (method) {
    case 'update':
      return allowed(() => m.update((name) => world.expected.get(slotOf(RESIDENT, name))), true);
    case 'copyTo':
      return allowed(() => entries.forEach((entry) => writeModel(world, entry, m.shadows.get(entry.name))));
    case 'store':
      return allowed(() => m.store(entries.map((entry) => [entry.name, valuesOf(world, entry)])));
    case 'restore':
      if (m.backup === null) return refused(Error, method, 'nothing is stored; call store() first');
      return restoreModel(world, m, entries, method);
    case 'withEma':
      return { scope: { entries, tracked: entries, targets: [REGION] } };
    default:
      throw new Error(method);
  }
}

/**
 * The model's prediction for EMA e's `method` on these items (undefined: no
 * params, as for R). For withEma, `scope` says what it stores and swaps in.
 */
function predictCore(world, e, method, items, form) {
  const m = world.models[e];
  if (e === RESIDENT && method !== 'createEma') return predictResident(world, m, method, items);
  // Params are read first; then the EMA's own scope is checked (reading runs
  // getters, which may have opened it).
  const resolved = resolveModel(items, form, method);
  if (resolved.error) return resolved.error;
  if (method !== 'createEma' && m.scope) return refused(Error, method, 'not allowed while withEma() is running');
  const { entries } = resolved;
  switch (method) {
    case 'update':
    case 'copyTo': {
      const match = matchTracked(m, entries, method);
      if (match.error) return match.error;
      const held = heldLabel(world, targetsOf(match.tracked));
      if (held !== null) return heldBy(method, held);
      if (method === 'update') {
        const byName = new Map(match.tracked.map((entry) => [entry.name, entry]));
        return allowed(() => m.update((name) => valuesOf(world, byName.get(name))), true);
      }
      return allowed(() => match.tracked.forEach((entry) => writeModel(world, entry, m.shadows.get(entry.name))));
    }
    case 'store': {
      if (duplicatesOf(entries).length > 0) return refused(Error, method, 'duplicate parameter names');
      const unusable = entries.find((entry) => !entry.usable);
      if (unusable) return refused(Error, method, `parameter '${unusable.name}' cannot be used`);
      const held = heldLabel(world, targetsOf(entries));
      if (held !== null) return heldBy(method, held);
      return allowed(() => m.store(entries.map((entry) => [entry.name, valuesOf(world, entry)])));
    }
    case 'restore': {
      const match = matchStored(m, entries, method);
      if (match.error) return match.error;
      const held = heldLabel(world, targetsOf(match.targets));
      if (held !== null) return heldBy(method, held);
      return restoreModel(world, m, match.targets, method);
    }
    case 'withEma': {
      const match = matchTracked(m, entries, method);
      if (match.error) return match.error;
      const held = heldLabel(world, targetsOf(entries));
      if (held !== null) return heldBy(method, held);
      return { scope: { entries, tracked: match.tracked, targets: targetsOf(entries) } };
    }
    case 'createEma': {
      if (duplicatesOf(entries).length > 0) return refused(Error, method, 'duplicate parameter names');
      const unusable = entries.find((entry) => !entry.usable);
      if (unusable) return refused(Error, method, `parameter '${unusable.name}' cannot be used`);
      const tracked = entries.filter((entry) => entry.trainable);
      const held = heldLabel(world, targetsOf(tracked));
      if (held !== null) return heldBy(method, held);
      return { created: tracked };
    }
    default:
      throw new Error(method);
  }
}

/** Throwaway arrays hold what the model says (detached ones stay detached). */
function checkThrowaways(items) {
  for (const item of items ?? []) {
    if (item.data === undefined) continue;
    if (item.kind === 'detached' || item.detachedNow) {
      assert.equal(lengthOf.call(item.data), 0, `throwaway '${item.name}' is detached`);
    } else if (item.kind === 'float64') {
      assert.deepEqual(Array.from(item.data), Array.from(Float64Array.from(item.model)), `throwaway '${item.name}'`);
    } else if (item.kind !== 'proxy') {
      assertSameBits(item.data, item.model, `throwaway '${item.name}' (${item.kind})`);
    }
  }
}

async function coreCall(world, e, method, items, form) {
  const label = `${CORE_EMAS[e].label}.${method}`;
  const expected = predictCore(world, e, method, items, form);
  const ema = world.emas[e];
  const outcome = await outcomeOf(() => (items === undefined ? ema[method]() : ema[method](paramsOf(world, items, form))));
  settle(outcome, expected, label);
  checkThrowaways(items);
}

/** withEma with an fn that only looks: it must see the shadows; everything is put back. */
async function coreWithEmaNow(world, e, items, form) {
  const m = world.models[e];
  const expected = predictCore(world, e, 'withEma', items, form);
  const seen = [];
  let ran = false;
  const fn = () => {
    ran = true;
    for (const entry of expected.scope?.tracked ?? []) seen.push([entry, copyOf(entry.item.data ?? realArray(world, entry.slot))]);
    return 'looked';
  };
  const ema = world.emas[e];
  const outcome = await outcomeOf(() => (items === undefined ? ema.withEma(fn) : ema.withEma(paramsOf(world, items, form), fn)));
  if (expected.scope === undefined) {
    settle(outcome, expected, `${CORE_EMAS[e].label}.withEma`);
    assert.equal(ran, false, 'fn of a refused withEma ran');
  } else {
    settle(outcome, allowed(), `${CORE_EMAS[e].label}.withEma`);
    assert.equal(outcome.value, 'looked');
    for (const [entry, values] of seen) assertSameBits(values, m.shadows.get(entry.name), `inside withEma: '${entry.name}'`);
    m.store(expected.scope.entries.map((entry) => [entry.name, valuesOf(world, entry)]));
  }
  checkThrowaways(items);
}

async function coreCreate(world, items, form) {
  const expected = predictCore(world, 0, 'createEma', items, form);
  const outcome = await outcomeOf(() => createEma(paramsOf(world, items, form), { decay: 0.5, simd: world.simd }));
  if (expected.created === undefined) {
    settle(outcome, expected, 'createEma');
  } else {
    settle(outcome, allowed(), 'createEma');
    const created = outcome.value;
    assert.deepEqual(created.names, expected.created.map((entry) => entry.name));
    assert.equal(created.numUpdates, 0);
    assert.equal(created.decay, Math.fround(0.5));
    for (const entry of expected.created) assertSameBits(created.shadow(entry.name), valuesOf(world, entry), `new EMA's shadow '${entry.name}'`);
    created.dispose();
  }
  checkThrowaways(items);
}

/**
 * A withEma() of EMA e whose fn waits for release(). The model takes it as
 * opened at once (store, then swap-in); scope.start() makes the real call.
 */
function startCoreScope(world, e, items, form) {
  const m = world.models[e];
  const expected = predictCore(world, e, 'withEma', items, form);
  const scope = gatedScope();
  scope.label = `${CORE_EMAS[e].label}.withEma`;
  scope.expected = expected;
  scope.start = () => {
    const ema = world.emas[e];
    scope.settled = outcomeOf(() => (items === undefined ? ema.withEma(scope.fn) : ema.withEma(paramsOf(world, items, form), scope.fn)));
  };
  if (expected.scope !== undefined) {
    Object.assign(scope, { e, items, ...expected.scope });
    world.scopes.push(scope);
    m.scope = scope;
    m.store(scope.entries.map((entry) => [entry.name, valuesOf(world, entry)]));
    for (const entry of scope.tracked) writeModel(world, entry, m.shadows.get(entry.name));
  }
  return scope;
}

/** Waits until a started scope's fn runs (or checks that it was refused). */
async function finishCoreScope(scope) {
  if (scope.expected.scope === undefined) {
    settle(await scope.settled, scope.expected, scope.label);
    assert.equal(scope.ran, false, 'fn of a refused withEma ran');
    return;
  }
  await awaitEntered(scope, scope.label);
}

/**
 * Re-entry: reading the last entry's data opens this EMA's own withEma over
 * the world arrays. The call itself must then be refused (its scope is open)
 * with nothing changed, and the scope it opened goes on like any other.
 */
async function hostileReentry(world, e, method, items, pick) {
  if (e === RESIDENT || items.length === 0) items.push(throwaway('zz', 1, pick));
  const inner = e === RESIDENT ? null : startCoreScope(world, e, worldItems(e, { alt: pick % 2 === 1, form: 'array' }), 'array');
  if (inner !== null) items.at(-1).onRead = inner.start;
  if (method === 'createEma') await coreCreate(world, items, 'array');
  else if (method === 'withEma') await coreWithEmaNow(world, e, items, 'array');
  else await coreCall(world, e, method, items, 'array');
  if (inner === null) return;
  assert.notEqual(inner.settled, undefined, 'the getter ran');
  await finishCoreScope(inner);
}

// A call another EMA makes right after withEma() is called, before its swap-in.
const EARLY_PROBE = [
  () => ({ e: 1, items: worldItems(1, { form: 'array' }) }),
  () => ({ e: 0, items: worldItems(0, { form: 'array' }) }),
  (alt) => (alt ? { e: RESIDENT, items: undefined } : null),
  () => ({ e: 2, items: worldItems(2, { alt: true, form: 'array' }) }),
];

const CORE_COMMANDS = {
  /** The user's optimizer writes new weights into some arrays (allowed at any time). */
  async step(world, { slots, seed, special }) {
    slots.forEach((slot, i) => {
      const values = weights(CORE_SLOTS[slot], seed + i, special);
      realArray(world, slot).set(values);
      world.expected.get(slot).set(values);
    });
  },

  async call(world, { ema: e, method, form, frozen, alt }) {
    if (e === RESIDENT) return coreCall(world, e, method, undefined);
    return coreCall(world, e, method, worldItems(e, { frozen, alt, form }), form);
  },

  /** A call on throwaway arrays with the EMA's names (or the stored ones), one thing wrong. */
  async hostile(world, { ema: e, method, mutation, pick, form, seed }) {
    const m = world.models[e];
    const base =
      method === 'restore' && m.backup !== null
        ? [...m.backup].map(([name, values]) => [name, values.length])
        : m.names.map((name) => [name, m.length(name)]);
    const items = base.map(([name, length], i) => throwaway(name, length, seed + i));
    if (mutation === 'openingGetter') return hostileReentry(world, e, method, items, pick);
    const used = mutate(items, mutation, pick, seed, form);
    if (method === 'createEma') return coreCreate(world, items, used);
    if (method === 'withEma') return coreWithEmaNow(world, e, items, used);
    return coreCall(world, e, method, items, used);
  },

  async create(world, { slots, frozen }) {
    const items = slots.map((slot) => ({ name: slot, slot, ...(slot === 'frozen' && frozen ? { trainable: false } : {}) }));
    return coreCreate(world, items, 'array');
  },

  /** Opens a withEma() whose fn waits for release(); the arrays must hold the shadows. */
  async open(world, { ema: e, form, frozen, alt, probe }) {
    const items = e === RESIDENT ? undefined : worldItems(e, { frozen, alt, form });
    const scope = startCoreScope(world, e, items, form);
    scope.start();
    // The arrays are held from the call on, before the swap-in.
    const early = probe && scope.e !== undefined ? EARLY_PROBE[e](alt) : null;
    if (early !== null) await coreCall(world, early.e, 'update', early.items, 'array');
    await finishCoreScope(scope);
  },

  /** Lets an open withEma() finish: fn returns, throws, or detaches one of the arrays. */
  async release(world, { ema: e, outcome, pick }) {
    const m = world.models[e];
    const scope = m.scope;
    if (scope === null) return;
    const candidates = scope.entries.filter((entry) => entry.slot !== undefined && !entry.slot.startsWith('R.'));
    const victim = outcome === 'detach' && candidates.length > 0 ? candidates[pick % candidates.length] : null;
    const thrown = new Error('evaluation failed');
    scope.gate.resolve(() => {
      if (outcome === 'throw') throw thrown;
      if (victim !== null) detach(realArray(world, victim.slot).buffer);
      return 'evaluated';
    });
    const result = await scope.settled;
    m.scope = null;
    world.scopes.splice(world.scopes.indexOf(scope), 1);
    const label = `${CORE_EMAS[e].label}.withEma`;
    const restore = () => {
      for (const entry of scope.entries) if (entry !== victim) writeModel(world, entry, m.backup.get(entry.name));
    };
    if (victim !== null) {
      const part = `could not write the stored weights back into 1 of ${scope.entries.length} arrays: '${victim.name}' (its ArrayBuffer was detached`;
      settle(result, refused(Error, 'withEma', part, restore), label);
      // The training weights are still stored: a fresh array of that name gets them.
      world.arrays.set(victim.slot, new Float32Array(CORE_SLOTS[victim.slot]));
      world.expected.get(victim.slot).fill(0);
      await coreCall(world, e, 'restore', scope.items, 'array');
    } else if (outcome === 'throw') {
      assert.equal(result.error, thrown, `${label}: rejects with fn's error`);
      restore();
    } else {
      settle(result, allowed(), label);
      assert.equal(result.value, 'evaluated', `${label}: returns what fn returned`);
      restore();
    }
  },

  async badFn(world, { ema: e }) {
    // Both are checked before the EMA's own scope.
    const expected = e === RESIDENT
      ? refused(TypeError, 'withEma', 'this EMA is resident: call withEma(fn), without params')
      : refused(TypeError, 'withEma', 'fn must be a function');
    const ema = world.emas[e];
    const params = e === RESIDENT ? 'not a function' : paramsOf(world, worldItems(e, { form: 'array' }), 'array');
    settle(await outcomeOf(() => (e === RESIDENT ? ema.withEma(params) : ema.withEma(params, 'not a function'))), expected, 'withEma');
  },

  ...COMMON_COMMANDS,
};

function checkCore(world) {
  world.models.forEach((m, e) => {
    const ema = world.emas[e];
    const { label } = CORE_EMAS[e];
    assert.equal(ema.numUpdates, m.numUpdates, `${label}.numUpdates`);
    assert.equal(ema.decay, m.decay, `${label}.decay`);
    for (const [name, shadow] of m.shadows) assertSameBits(ema.shadow(name), shadow, `${label} shadow '${name}'`);
    // What a restore would write, read into throwaway arrays (R's is checked by its restores).
    if (e !== RESIDENT && m.scope === null) checkBackup(ema, m, label);
  });
  for (const [slot, values] of world.expected) assertSameBits(realArray(world, slot), values, `array '${slot}'`);
}

async function closeCore(world) {
  for (const scope of world.scopes) scope.gate.resolve(() => undefined);
  await Promise.all(world.scopes.map((scope) => scope.settled));
  for (const ema of world.emas) ema.dispose();
}

const emaIndex = fc.nat(CORE_EMAS.length - 1);
const coreCommand = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('step'), slots: fc.subarray(SLOT_NAMES, { minLength: 1 }), seed: fc.nat(9999), special: fc.boolean() }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('call'), ema: emaIndex, method: fc.constantFrom('update', 'copyTo', 'store', 'restore'),
      form: fc.constantFrom(...FORMS), frozen: fc.boolean(), alt: fc.boolean(),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('hostile'), ema: emaIndex,
      method: fc.constantFrom('update', 'copyTo', 'store', 'restore', 'withEma', 'createEma'),
      mutation: fc.constantFrom(...MUTATIONS), pick: fc.nat(7), form: fc.constantFrom(...FORMS), seed: fc.nat(9999),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('open'), ema: emaIndex, form: fc.constantFrom(...FORMS), frozen: fc.boolean(), alt: fc.boolean(), probe: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release'), ema: emaIndex, outcome: fc.constantFrom('return', 'throw', 'detach'), pick: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('create'), slots: fc.subarray(SLOT_NAMES, { minLength: 1 }), frozen: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('badFn'), ema: emaIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dispose'), ema: emaIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset'), ema: emaIndex }) },
);

export const coreWorld = {
  title: 'core Ema (E0, E1, E2 over shared arrays, resident R)',
  make: makeCoreWorld,
  command: coreCommand,
  handlers: CORE_COMMANDS,
  check: checkCore,
  close: closeCore,
};
