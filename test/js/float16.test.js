// js/float16.js: binary16 from and to float32, for float16 snapshots.
// Exhaustive where it can be: every binary16 bit pattern decoded (checked
// against the bits of an independent decoding) and rounded back; every
// midpoint between neighbouring halves, and the float32 on either side of it,
// rounded ties-to-even. Then the edges by name (overflow at 65520,
// subnormals, zeros, NaN) and 3,033 float32 values against the bits NumPy
// (and PyTorch, which agrees) rounds them to: test/fixtures/float16.txt,
// written by test/fixtures/generate_float16.py, so no Python is needed here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { float16Bits, float16Value, fromFloat16, toFloat16 } from '../../js/float16.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bitsOf(value) {
  f32[0] = value;
  return u32[0];
}

function valueOf(bits) {
  u32[0] = bits;
  return f32[0];
}

const hex = (value, digits) => `0x${value.toString(16).padStart(digits, '0')}`;

/** The float32 bits of binary16 `h`, by moving its fields (NaN: null). */
function widenBits(h) {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? (sign | 0x7f800000) >>> 0 : null;
  if (exponent === 0) {
    if (mantissa === 0) return sign >>> 0;
    // A subnormal half is mantissa * 2^-24: normalise it into float32's exponent.
    const top = 31 - Math.clz32(mantissa); // 0..9
    return (sign | ((top - 24 + 127) << 23) | ((mantissa << (23 - top)) & 0x7fffff)) >>> 0;
  }
  return (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
}

const isHalfNaN = (h) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

/** The next float32 above a positive float32 `value`, and the next below. */
const nextUp = (value) => valueOf(bitsOf(value) + 1);
const nextDown = (value) => valueOf(bitsOf(value) - 1);

describe('binary16 <-> float32', () => {
  test('every binary16 bit pattern decodes exactly and rounds back to itself (NaNs stay NaN)', () => {
    let nans = 0;
    for (let h = 0; h < 0x10000; h++) {
      const value = float16Value(h);
      const expected = widenBits(h);
      if (expected === null) {
        assert.ok(Number.isNaN(value), `${hex(h, 4)} decodes to NaN, got ${value}`);
        assert.ok(isHalfNaN(float16Bits(value)), `${hex(h, 4)}: NaN rounds to a NaN half, got ${hex(float16Bits(value), 4)}`);
        nans++;
        continue;
      }
      assert.equal(Math.fround(value), value, `${hex(h, 4)}: ${value} is a float32`);
      if (bitsOf(value) !== expected) {
        assert.fail(`${hex(h, 4)} decodes to ${value} (${hex(bitsOf(value), 8)}), expected ${hex(expected, 8)}`);
      }
      const back = float16Bits(value);
      if (back !== h) assert.fail(`${hex(h, 4)} -> ${value} -> ${hex(back, 4)}`);
    }
    assert.equal(nans, 2 * 1023);
  });

  test('the array forms agree with the scalar ones over every bit pattern', () => {
    const all = Uint16Array.from({ length: 0x10000 }, (_, h) => h);
    const widened = fromFloat16(all);
    assert.ok(widened instanceof Float32Array && widened.length === 0x10000);
    const narrowed = toFloat16(widened);
    assert.ok(narrowed instanceof Uint16Array);
    for (let h = 0; h < 0x10000; h++) {
      const expected = widenBits(h);
      if (expected === null) {
        assert.ok(Number.isNaN(widened[h]) && isHalfNaN(narrowed[h]), `${hex(h, 4)}`);
        continue;
      }
      if (bitsOf(widened[h]) !== expected || narrowed[h] !== h) {
        assert.fail(`${hex(h, 4)}: fromFloat16 ${widened[h]}, toFloat16 back ${hex(narrowed[h], 4)}`);
      }
    }
    // fromFloat16 into a given array, from an offset.
    const out = new Float32Array(5).fill(7);
    assert.equal(fromFloat16(Uint16Array.of(0x3c00, 0xc000), out, 2), out);
    assert.deepEqual(Array.from(out), [7, 7, 1, -2, 7]);
  });

  test('ties to even at every midpoint between neighbouring halves, nearest on either side', () => {
    let ties = 0;
    for (let h = 0; h <= 0x7bff; h++) {
      const low = float16Value(h);
      const high = h === 0x7bff ? 65536 : float16Value(h + 1); // past the largest half: 2^16, infinity
      const midpoint = (low + high) / 2;
      assert.equal(Math.fround(midpoint), midpoint, `the midpoint above ${hex(h, 4)} is a float32`);
      const even = h % 2 === 0 ? h : h + 1;
      for (const sign of [0, 0x8000]) {
        const signed = sign === 0 ? 1 : -1;
        const got = float16Bits(signed * midpoint);
        const below = float16Bits(signed * nextDown(midpoint));
        const above = float16Bits(signed * nextUp(midpoint));
        if (got !== (sign | even) || below !== (sign | h) || above !== (sign | (h + 1))) {
          assert.fail(
            `midpoint ${signed * midpoint} of ${hex(sign | h, 4)} and ${hex(sign | (h + 1), 4)}: ` +
              `got ${hex(got, 4)} (expected ${hex(sign | even, 4)}), just below ${hex(below, 4)}, just above ${hex(above, 4)}`,
          );
        }
        ties++;
      }
    }
    assert.equal(ties, 2 * 0x7c00);
  });

  test('overflow: 65520 and above round to infinity, just below 65520 to 65504', () => {
    assert.equal(float16Bits(65504), 0x7bff);
    assert.equal(float16Bits(nextDown(65520)), 0x7bff, '65519.998 is nearer 65504');
    assert.equal(float16Bits(65520), 0x7c00, 'the midpoint to 2^16 ties to even: infinity');
    assert.equal(float16Bits(-65520), 0xfc00);
    assert.equal(float16Bits(-nextDown(65520)), 0xfbff);
    for (const value of [65536, 1e5, 3.4028234663852886e38, Infinity]) {
      assert.equal(float16Bits(value), 0x7c00, `${value}`);
      assert.equal(float16Bits(-value), 0xfc00, `${-value}`);
    }
    assert.equal(float16Value(0x7c00), Infinity);
    assert.equal(float16Value(0xfc00), -Infinity);
  });

  test('subnormals and zeros: gradual underflow, ties to even down to zero, signs kept', () => {
    const unit = 2 ** -24; // the smallest subnormal half
    assert.equal(float16Bits(unit), 0x0001);
    assert.equal(float16Bits(-unit), 0x8001);
    assert.equal(float16Bits(unit / 2), 0x0000, '2^-25: the midpoint to 0 ties to even, 0');
    assert.equal(float16Bits(-unit / 2), 0x8000, '-2^-25: -0');
    assert.equal(float16Bits(nextUp(unit / 2)), 0x0001, 'just above 2^-25: 2^-24');
    assert.equal(float16Bits(nextDown(unit / 2)), 0x0000);
    assert.equal(float16Bits(1.5 * unit), 0x0002, '1.5 units: the tie goes to 2');
    assert.equal(float16Bits(2.5 * unit), 0x0002, '2.5 units: the tie goes to 2');
    assert.equal(float16Bits(1023 * unit), 0x03ff, 'the largest subnormal');
    assert.equal(float16Bits(1023.5 * unit), 0x0400, 'its midpoint to the smallest normal: even, 0x0400');
    assert.equal(float16Bits(2 ** -14), 0x0400, 'the smallest normal');
    assert.equal(float16Value(0x0001), unit);
    assert.equal(float16Value(0x03ff), 1023 * unit);
    for (const value of [2 ** -26, 2 ** -40, 1e-45, valueOf(0x007fffff), 2 ** -126]) {
      assert.equal(float16Bits(value), 0x0000, `${value} underflows to +0`);
      assert.equal(float16Bits(-value), 0x8000, `${-value} underflows to -0`);
    }
    assert.equal(float16Bits(0), 0x0000);
    assert.equal(float16Bits(-0), 0x8000);
    assert.ok(Object.is(float16Value(0x8000), -0));
    assert.ok(Object.is(float16Value(0x0000), 0));
  });

  test('NaN stays NaN (quiet), whatever its payload', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0x7fbfffff, 0x7fffffff, 0x7f802000]) {
      const h = float16Bits(valueOf(bits));
      assert.ok(isHalfNaN(h), `${hex(bits, 8)} -> ${hex(h, 4)}`);
    }
    assert.ok(isHalfNaN(float16Bits(NaN)));
    assert.ok(Number.isNaN(float16Value(0x7e00)) && Number.isNaN(float16Value(0x7c01)) && Number.isNaN(float16Value(0xfe00)));
  });

  test("3,033 float32 values round to NumPy's (and PyTorch's) binary16 bits", () => {
    const text = readFileSync(new URL('../fixtures/float16.txt', import.meta.url), 'utf8');
    const rows = text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => {
      const match = /^([0-9a-f]{8}) ([0-9a-f]{4})$/.exec(line);
      assert.ok(match, `float16.txt: bad line '${line}'`);
      return [Number.parseInt(match[1], 16), Number.parseInt(match[2], 16)];
    });
    assert.equal(rows.length, 3033);
    const inputs = Float32Array.from(rows, ([bits]) => valueOf(bits));
    const narrowed = toFloat16(inputs);
    let nans = 0;
    let subnormals = 0;
    let infinities = 0;
    rows.forEach(([bits, expected], i) => {
      const got = float16Bits(valueOf(bits));
      assert.equal(narrowed[i], got, `${hex(bits, 8)}: toFloat16 and float16Bits differ`);
      if (isHalfNaN(expected)) {
        // NaN payloads (and the sign of a NaN, which a JS number need not keep) are not compared.
        assert.ok(isHalfNaN(got), `${hex(bits, 8)} (NaN) -> ${hex(got, 4)}, not a NaN`);
        nans++;
        return;
      }
      if (got !== expected) assert.fail(`${hex(bits, 8)} (${valueOf(bits)}) -> ${hex(got, 4)}, NumPy ${hex(expected, 4)}`);
      if ((expected & 0x7c00) === 0 && (expected & 0x3ff) !== 0) subnormals++;
      if ((expected & 0x7fff) === 0x7c00) infinities++;
    });
    // What the table covers, so that a regenerated table cannot quietly lose it.
    assert.ok(nans >= 5 && subnormals >= 100 && infinities >= 100, `${nans} NaN, ${subnormals} subnormal, ${infinities} infinite`);
  });
});
