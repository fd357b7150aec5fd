// Reads test/fixtures/recipes.txt, the runs of the EMA recipes (torch_ema,
// diffusers, timm, ema-pytorch, Keras, debiased, LitEma) that PyTorch
// computed. test/fixtures/generate_recipes.py documents the format and the
// exact rules of each recipe. Run directly (node test/js/recipe-fixture.js)
// to read the file and print what it holds.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { bitsToFloat, generated } from './fixture.js';

export const RECIPE_FIXTURE_PATH = new URL('../fixtures/recipes.txt', import.meta.url);

const DTYPES = ['f32', 'i32', 'i64'];
const KINDS = ['param', 'frozen', 'buffer'];
const ACTIONS = ['averaged', 'copied', 'skipped'];

/**
 * The whitespace-separated tokens of a fixture file (recipes.txt, and the
 * interop continuation file), with the readers both formats share. `file`
 * names the file in errors; `where` says where in it.
 */
export class FixtureTokens {
  constructor(text, file) {
    this.items = text.split(/\s+/).filter(Boolean);
    this.position = 0;
    this.file = file;
    this.where = 'the header';
  }
  fail(message) {
    throw new Error(`${this.file} (${this.where}): ${message}`);
  }
  get done() {
    return this.position >= this.items.length;
  }
  next() {
    if (this.done) this.fail('unexpected end of file');
    return this.items[this.position++];
  }
  expect(word) {
    const got = this.next();
    if (got !== word) this.fail(`expected '${word}', got '${got}'`);
  }
  int() {
    const token = this.next();
    if (!/^-?\d+$/.test(token)) this.fail(`expected an integer, got '${token}'`);
    return Number.parseInt(token, 10);
  }
  oneOf(choices, what) {
    const token = this.next();
    if (!choices.includes(token)) this.fail(`expected ${what} (${choices.join('|')}), got '${token}'`);
    return token;
  }
  json() {
    const token = this.next();
    try {
      return JSON.parse(token);
    } catch {
      return this.fail(`expected compact JSON, got '${token}'`);
    }
  }
  /** `digits` lowercase hex digits, as a string. */
  hex(digits) {
    const token = this.next();
    if (!new RegExp(`^[0-9a-f]{${digits}}$`).test(token)) this.fail(`expected ${digits} hex digits, got '${token}'`);
    return token;
  }
  hexWord() {
    return Number.parseInt(this.hex(8), 16);
  }
  flag() {
    return this.oneOf(['0', '1'], 'a flag') === '1';
  }
  /**
   * An <array> of an entry ({ name, dtype, length } with `length` elements):
   * Float32Array, Int32Array or BigInt64Array (two words an element, low
   * first); null for `-` when allowed.
   */
  array(entry, { allowNone = false } = {}) {
    const kind = this.next();
    if (kind === '-' && allowNone) return null;
    if (kind === 'g') {
      if (entry.dtype !== 'f32') this.fail(`'g' array for ${entry.dtype} entry ${entry.name}`);
      return generated(this.int(), entry.length);
    }
    if (kind !== 'x') this.fail(`expected an array for ${entry.name}, got '${kind}'`);
    const words = new Uint32Array(entry.dtype === 'i64' ? 2 * entry.length : entry.length);
    for (let i = 0; i < words.length; i++) words[i] = this.hexWord();
    if (entry.dtype === 'i64') return new BigInt64Array(words.buffer);
    return entry.dtype === 'f32' ? new Float32Array(words.buffer) : new Int32Array(words.buffer);
  }
}

// ---- comparing bits ------------------------------------------------------------

export function bytesOf(array) {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Fails unless both arrays are of one type and hold the same bytes (NaN payloads and zero signs included). */
export function assertSameBits(actual, expected, where) {
  assert.equal(actual.constructor.name, expected.constructor.name, `${where}: element type`);
  assert.equal(actual.length, expected.length, `${where}: length`);
  const a = bytesOf(actual);
  const b = bytesOf(expected);
  const width = expected.BYTES_PER_ELEMENT;
  for (let i = 0; i < b.length; i++) {
    if (a[i] !== b[i]) {
      const index = Math.floor(i / width);
      assert.fail(`${where}: element ${index} is ${actual[index]}, PyTorch has ${expected[index]}`);
    }
  }
}

export function f32Bits(value) {
  return new Uint32Array(Float32Array.of(value).buffer)[0];
}

/** ulps between two float64 values of the same sign. */
export function ulpsApart(a, b) {
  const view = new DataView(new ArrayBuffer(16));
  view.setFloat64(0, a);
  view.setFloat64(8, b);
  const difference = view.getBigInt64(0) - view.getBigInt64(8);
  return Number(difference < 0n ? -difference : difference);
}

/**
 * Recipes whose float64 schedule calls pow(): Python's is glibc's, ours
 * musl's (in Wasm), so their decay may differ by an ulp; the float32 weight
 * each applies is compared exactly.
 */
export const POW_SCHEDULES = new Set(['diffusers', 'timm']);

/** update()'s options for a fixture call: timm's step, the power recipe's samples, or none. */
export function callOptions(call) {
  return Object.keys(call.call).length === 0 ? undefined : call.call;
}

/**
 * Checks what update() returned against the fixture call: the action, the
 * counter and, when it averaged, the float32 weight's bits and the decay
 * (within an ulp where Python's pow and musl's may differ). With several
 * profiles, `result.profiles` lists each one's decay and weight (the top
 * level is profile 0's); with one, there is no such list.
 */
export function assertStepResult(result, call, recipe, where) {
  assert.equal(result.action, call.action, `${where}: action`);
  assert.equal(result.counter, call.counter, `${where}: counter`);
  // The interop continuation file's calls (recipe-interop.test.js) list no profiles: one.
  const several = (call.profiles?.length ?? 1) > 1;
  if (several) {
    assert.equal(result.profiles?.length, call.profiles.length, `${where}: update() lists every profile`);
  } else {
    assert.equal(result.profiles, undefined, `${where}: one profile, no list`);
  }
  if (call.action !== 'averaged') return;
  const steps = several ? result.profiles.map((profile, k) => [profile, call.profiles[k], ` (profile ${k})`]) : [[result, call, '']];
  assert.equal(result.weight, steps[0][0].weight, `${where}: the top-level weight is profile 0's`);
  assert.equal(result.decay, steps[0][0].decay, `${where}: the top-level decay is profile 0's`);
  for (const [got, expected, which] of steps) {
    assert.equal(f32Bits(got.weight), expected.weightBits, `${where}: the float32 weight applied${which}`);
    if (POW_SCHEDULES.has(recipe)) {
      assert.ok(ulpsApart(got.decay, expected.decay) <= 1, `${where}: decay ${got.decay}, PyTorch ${expected.decay}${which}`);
    } else {
      assert.equal(got.decay, expected.decay, `${where}: decay${which}`);
    }
  }
}

function float64FromBits(bits) {
  return new Float64Array(BigUint64Array.of(bits).buffer)[0];
}

/**
 * How many profiles a case's EMA keeps: the length of the power recipe's
 * sigmaRel or gamma list, else 1.
 */
export function profileCountOf(recipe, options) {
  const widths = options.sigmaRel ?? options.gamma;
  return recipe === 'power' && Array.isArray(widths) ? widths.length : 1;
}

/**
 * Returns [{ id, recipe, options, profileCount, entries: [{ name, kind, dtype,
 * length, init }], calls: [{ call, values, action, decay, decayBits,
 * weightBits, weight, counter, shadows, model, profiles }] }]. Arrays are
 * Float32Array (f32), Int32Array (i32) or BigInt64Array (i64); `shadows` is
 * null when the call has none written, else one array per entry or null where
 * the EMA keeps nothing; `model` is null or one array per entry. `decay` is
 * the float64 the reference used (`decayBits` its bits as a BigInt),
 * `weightBits` the float32 weight's bits, `weight` its value. `profiles`
 * holds { decay, decayBits, weightBits, weight, shadows } of each of the
 * case's `profileCount` profiles; the call's own are profile 0's.
 */
export function readRecipeFixtures(path = RECIPE_FIXTURE_PATH) {
  const tokens = new FixtureTokens(readFileSync(path, 'utf8'), 'recipes.txt');
  tokens.expect('emarecipes');
  tokens.expect('1');
  const cases = [];
  const ids = new Set();
  while (!tokens.done) {
    tokens.expect('case');
    const id = tokens.next();
    tokens.where = `case ${id}`;
    if (ids.has(id)) tokens.fail('duplicate case id');
    ids.add(id);
    const recipe = tokens.next();
    const options = tokens.json();
    const profileCount = profileCountOf(recipe, options);
    const entryCount = tokens.int();
    const callCount = tokens.int();

    const entries = [];
    for (let e = 0; e < entryCount; e++) {
      tokens.expect('entry');
      const name = tokens.next();
      const kind = tokens.oneOf(KINDS, 'a kind');
      const dtype = tokens.oneOf(DTYPES, 'a dtype');
      entries.push({ name, kind, dtype, length: tokens.int() });
    }
    tokens.expect('init');
    for (const entry of entries) entry.init = tokens.array(entry);

    const calls = [];
    for (let c = 0; c < callCount; c++) {
      tokens.where = `case ${id}, call ${c}`;
      tokens.expect('call');
      const call = tokens.json();
      const values = entries.map((entry) => tokens.array(entry));
      tokens.expect('result');
      const action = tokens.oneOf(ACTIONS, 'an action');
      // Several profiles: a decay and a weight each, then a set of shadows each.
      const profiles = Array.from({ length: profileCount }, () => ({}));
      tokens.expect('decay');
      for (const profile of profiles) {
        const decayHex = tokens.next();
        if (!/^[0-9a-f]{16}$/.test(decayHex)) tokens.fail(`expected 16 hex digits, got '${decayHex}'`);
        profile.decayBits = BigInt(`0x${decayHex}`);
        profile.decay = float64FromBits(profile.decayBits);
      }
      tokens.expect('weight');
      for (const profile of profiles) {
        const weightHex = tokens.next();
        if (!/^[0-9a-f]{8}$/.test(weightHex)) tokens.fail(`expected 8 hex digits, got '${weightHex}'`);
        profile.weightBits = Number.parseInt(weightHex, 16);
        profile.weight = bitsToFloat(weightHex);
      }
      tokens.expect('counter');
      const counter = tokens.int();
      tokens.expect('shadows');
      const written = tokens.flag();
      for (const profile of profiles) {
        profile.shadows = written ? entries.map((entry) => tokens.array(entry, { allowNone: true })) : null;
      }
      tokens.expect('model');
      const model = tokens.flag() ? entries.map((entry) => tokens.array(entry)) : null;
      const { decay, decayBits, weightBits, weight, shadows } = profiles[0];
      calls.push({ call, values, action, decay, decayBits, weightBits, weight, counter, shadows, model, profiles });
    }
    tokens.where = 'the header';
    cases.push({ id, recipe, options, profileCount, entries, calls });
  }
  return cases;
}

function summarize(cases) {
  const byRecipe = new Map();
  for (const { recipe, calls } of cases) {
    const counts = byRecipe.get(recipe) ?? { cases: 0, calls: 0 };
    counts.cases += 1;
    counts.calls += calls.length;
    byRecipe.set(recipe, counts);
  }
  const calls = cases.reduce((sum, { calls: list }) => sum + list.length, 0);
  const lines = [`${cases.length} cases, ${calls} calls`];
  for (const [recipe, counts] of byRecipe) lines.push(`  ${recipe}: ${counts.cases} cases, ${counts.calls} calls`);
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(summarize(readRecipeFixtures(process.argv[2] ?? RECIPE_FIXTURE_PATH)));
}
