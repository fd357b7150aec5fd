// IEEE 754 binary16 from and to float32, for snapshots saved at half size.
// Node 20 has no Float16Array, so the conversion is done on the bits:
// float32 -> float16 rounds to nearest, ties to even (as PyTorch's .half()
// and numpy's astype(float16) do), with overflow to infinity, gradual
// underflow to subnormals, and NaN kept NaN; float16 -> float32 is exact.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits of `value` rounded to nearest, ties to even. */
export function float16Bits(value) {
  f32[0] = value;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 | (mantissa >>> 13) : 0); // inf, NaN (quiet)
  const unbiased = exponent - 127;
  if (unbiased > 15) return sign | 0x7c00; // past the largest finite half: infinity
  if (unbiased >= -14) {
    // Normal: 10 mantissa bits kept, 13 rounded away (ties to even). A carry
    // out of the mantissa bumps the exponent, up to infinity: still right.
    const half = ((unbiased + 15) << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    const roundUp = rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1);
    return sign | (half + (roundUp ? 1 : 0));
  }
  if (unbiased < -25) return sign; // below half the smallest subnormal: zero (ties too: even is 0)
  // Subnormal half: the 24-bit significand shifted right, rounded to nearest even.
  const significand = mantissa | 0x800000;
  const shift = -unbiased - 1; // 14..24: keeps (significand >> shift) as units of 2^-24
  const kept = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  const roundUp = rest > halfway || (rest === halfway && (kept & 1) === 1);
  return sign | (kept + (roundUp ? 1 : 0));
}

/** The float32 (exact) of binary16 bits. */
export function float16Value(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The largest finite binary16 value; finite values from 65520 up round to infinity. */
export const FLOAT16_MAX = 65504;

/**
 * A Uint16Array of the binary16 bits of every float32 in `values`. A finite
 * value past FLOAT16_MAX becomes infinity, as in PyTorch and NumPy, unless
 * `onOverflow(index, value)` is given: it is called for the first such value
 * (to throw; if it returns, the conversion goes on). The test costs one
 * rarely taken branch per element: the bits of an infinity or a NaN.
 */
export function toFloat16(values, onOverflow = undefined) {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const bits = float16Bits(values[i]);
    if ((bits & 0x7c00) === 0x7c00 && onOverflow !== undefined && Number.isFinite(values[i])) {
      onOverflow(i, values[i]);
      onOverflow = undefined;
    }
    out[i] = bits;
  }
  return out;
}

/** Every binary16 value as float32, made on first use (256 KiB): a lookup is ~7x faster than decoding. */
let table = null;

/** Float32 values of binary16 bits (a Uint16Array), written into `out` from `at`. */
export function fromFloat16(bits, out = new Float32Array(bits.length), at = 0) {
  if (table === null) {
    table = new Float32Array(65536);
    for (let b = 0; b < 65536; b++) table[b] = float16Value(b);
  }
  for (let i = 0; i < bits.length; i++) out[at + i] = table[bits[i]];
  return out;
}
