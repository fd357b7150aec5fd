// Reads test/fixtures/litema.txt, the LitEma runs that PyTorch computed
// (test/fixtures/generate.py documents the format).
import { readFileSync } from 'node:fs';

export const FIXTURE_PATH = new URL('../fixtures/litema.txt', import.meta.url);

/** Mirrors generated() in generate.py: exact float32 values from a hash. */
export function generated(seed, length) {
  const values = new Float32Array(length);
  const seedTerm = Number((BigInt(seed) * 2246822519n) & 0xffffffffn);
  for (let i = 0; i < length; i++) {
    let h = (Math.imul(i + 1, 2654435761 | 0) ^ seedTerm) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul(h, 2246822507 | 0) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    values[i] = (h >>> 8) * 2 ** -24 - 0.5;
  }
  return values;
}

export function bitsToFloat(hex) {
  return new Float32Array(Uint32Array.of(parseInt(hex, 16)).buffer)[0];
}

class Tokens {
  constructor(text) {
    this.items = text.split(/\s+/).filter(Boolean);
    this.position = 0;
  }
  next() {
    if (this.position >= this.items.length) throw new Error('fixture: unexpected end of file');
    return this.items[this.position++];
  }
  expect(word) {
    const got = this.next();
    if (got !== word) throw new Error(`fixture: expected '${word}', got '${got}'`);
  }
  int() {
    return Number.parseInt(this.next(), 10);
  }
  array(length) {
    const kind = this.next();
    if (kind === 'g') return generated(this.int(), length);
    if (kind !== 'x') throw new Error(`fixture: expected an array, got '${kind}'`);
    const bits = new Uint32Array(length);
    for (let i = 0; i < length; i++) bits[i] = parseInt(this.next(), 16);
    return new Float32Array(bits.buffer);
  }
}

/**
 * Returns [{ id, decayBits, warmup, params: [{ name, trainable, length, init }],
 * steps: [{ kind: 'update', values, decayBits, numUpdates, shadows|null } |
 * { kind: 'reset', numUpdates }] }].
 */
export function readFixtures(path = FIXTURE_PATH) {
  const tokens = new Tokens(readFileSync(path, 'utf8'));
  tokens.expect('emafixture');
  tokens.expect('1');
  const cases = [];
  while (tokens.position < tokens.items.length) {
    tokens.expect('case');
    const id = tokens.next();
    const decayBits = parseInt(tokens.next(), 16);
    const warmup = tokens.int() === 1;
    const paramCount = tokens.int();
    const stepCount = tokens.int();
    const params = [];
    for (let p = 0; p < paramCount; p++) {
      tokens.expect('param');
      params.push({ name: tokens.next(), trainable: tokens.int() === 1, length: tokens.int() });
    }
    tokens.expect('init');
    for (const param of params) param.init = tokens.array(param.length);
    const trainable = params.filter((param) => param.trainable);
    const steps = [];
    for (let s = 0; s < stepCount; s++) {
      tokens.expect('step');
      const kind = tokens.next();
      if (kind === 'reset') {
        tokens.expect('num');
        steps.push({ kind, numUpdates: tokens.int() });
        continue;
      }
      const values = params.map((param) => tokens.array(param.length));
      tokens.expect('decay');
      const stepDecayBits = parseInt(tokens.next(), 16);
      tokens.expect('num');
      const numUpdates = tokens.int();
      tokens.expect('shadows');
      const shadows = tokens.int() === 1 ? trainable.map((param) => tokens.array(param.length)) : null;
      steps.push({ kind, values, decayBits: stepDecayBits, numUpdates, shadows });
    }
    cases.push({ id, decayBits, warmup, params, steps });
  }
  return cases;
}

/** Index of the first element whose bits differ, or -1. */
export function firstBitDifference(actual, expected) {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

export function hex(value) {
  return new Uint32Array(Float32Array.of(value).buffer)[0].toString(16).padStart(8, '0');
}
