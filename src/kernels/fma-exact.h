/*
 * fma-exact.h - fma(a, b, c) for float32, rounded once to nearest-even,
 * without a hardware fused multiply-add. Neither Wasm nor SIMD128 has one,
 * Emscripten 3.1.6's fmaf() is wrong on ties, and relaxed SIMD's madd is not
 * deterministic, so the fused kernels (f32-vlerp, f32-vfma) use this; the
 * SIMD128 form, four lanes at a time, is fma-exact-wasmsimd.h.
 *
 * Three steps, each taken only when the one before cannot answer:
 *
 * 1. Float32 alone, by bracketing. The product p = fl(a * b) is within half
 *    an ulp of the exact a * b, so the exact product lies between
 *    fl(p - m) and fl(p + m) for any margin |m| >= ulp(p). The margin is
 *    fl(k * b) with its lowest bit set, k = |a| * 2^-22 (exact when
 *    |a| >= 2^-100; 2^-122 below), so |m| >= |a * b| * 2^-22 rounded, at
 *    least ulp(p) for a normal p, and at least 2^-149 (ulp(p)) for a tiny or
 *    zero one; k is the same for a whole call (ema_f32_margin_scale). Rounding
 *    c + x is monotonic in x, so when fl(c + fl(p + m)) and fl(c + fl(p - m))
 *    are equal, fl(c + a * b) is that same float. "Equal" is tested as a
 *    difference of exactly zero, which no NaN or infinity passes (an
 *    overflowed p gives inf - inf), and which a zero result cannot pass
 *    either: c + x is a multiple of 2^-149, so it rounds to 0 only when it
 *    is 0, which cannot hold at both ends. With an EMA's small weight,
 *    |a * b| is far below ulp(c) and this settles almost every element; it
 *    does not with a large weight (a product near c), with infinities or
 *    NaN, or when c and a * b are both zero.
 * 2. Float64: a * b is exact (24 + 24 bits of significand fit in 53), and
 *    sum = fl64(a * b + c) is one rounding away from the exact value x.
 *    Rounding sum to float32 gives fl32(x) unless sum lies exactly halfway
 *    between two float32 (rounding x to float64 can only change which float32
 *    is nearest by landing on such a midpoint, which float64 holds exactly).
 *    Above float32's subnormal range a midpoint ends its float64 significand
 *    with the bits 1 then 28 zeros; below it (|sum| < 2^-126, where float32
 *    has fewer bits) every sum goes on to step 3.
 * 3. Round to odd: TwoSum gives the exact error of sum, and stepping sum one
 *    float64 ulp towards the error when the error is nonzero and sum's last
 *    bit is even makes the final rounding to float32 correct, since 53 bits
 *    is more than 24 + 2. Infinities and NaN propagate through the float64
 *    operations as fmaf's do; their error is NaN, which `> 0 || < 0` ignores.
 *
 * Build with -ffp-contract=off (EMA_EXACT_FLAGS) so that no step is fused.
 */
#ifndef EMA_KERNELS_FMA_EXACT_H
#define EMA_KERNELS_FMA_EXACT_H

#include <stdint.h>
#include <string.h>

/* Step 1's margin, relative to the product: twice ulp(p) for a normal p. */
#define EMA_F32_MARGIN_SCALE 0x1p-22f
/* Step 2's float32 midpoint pattern in the low bits of a float64. */
#define EMA_F32_ROUND_BITS_MASK UINT64_C(0x1fffffff)
#define EMA_F32_MIDPOINT_BITS UINT64_C(0x10000000)
/* float32's smallest normal magnitude: below it, the midpoint bits move up. */
#define EMA_F32_MIN_NORMAL 0x1p-126

/* Step 3: fl64(product + addend) rounded to odd. */
static inline double ema_f64_add_round_to_odd(double product, double addend) {
    const double sum = product + addend;
    const double addend_part = sum - product;
    const double error = (product - (sum - addend_part)) + (addend - addend_part);
    uint64_t bits;
    memcpy(&bits, &sum, sizeof bits);
    if ((error > 0.0 || error < 0.0) && (bits & 1u) == 0) {
        uint64_t error_bits;
        memcpy(&error_bits, &error, sizeof error_bits);
        /* Same sign: away from zero (+1 in the bits); opposite: towards it. */
        bits += ((bits ^ error_bits) >> 63) != 0 ? UINT64_MAX : 1u;
    }
    double odd;
    memcpy(&odd, &bits, sizeof odd);
    return odd;
}

/* Steps 2 and 3: fma(a, b, c) through float64, always right. */
static inline float ema_fma_f32_through_f64(float a, float b, float c) {
    const double product = (double)a * (double)b;
    const double addend = (double)c;
    const double sum = product + addend;
    uint64_t bits;
    memcpy(&bits, &sum, sizeof bits);
    const int midpoint = (bits & EMA_F32_ROUND_BITS_MASK) == EMA_F32_MIDPOINT_BITS;
    const int tiny = sum < EMA_F32_MIN_NORMAL && sum > -EMA_F32_MIN_NORMAL;
    if (midpoint || tiny) {
        return (float)ema_f64_add_round_to_odd(product, addend);
    }
    return (float)sum;
}

/* x with its lowest significand bit set: |x| grows by at most one ulp, and
 * a zero becomes 2^-149 of the same sign. */
static inline float ema_f32_with_lowest_bit(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits |= 1u;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* Step 1's margin scale k for the coefficient a: |a| * 2^-22 (exact), or
 * 2^-122 when a is so small that this would lose bits (NaN gives 2^-122:
 * the product is NaN then anyway). */
static inline float ema_f32_margin_scale(float a) {
    const float magnitude = a < 0.0f ? -a : a;
    return magnitude >= 0x1p-100f ? magnitude * EMA_F32_MARGIN_SCALE : 0x1p-122f;
}

/* Step 1 with the margin scale of ema_f32_margin_scale(a) (a kernel computes
 * it once per call): the result in *result, settled when the returned bits
 * (of the difference of the two ends) are 0. Kernels OR the bits of several
 * elements and test them once. */
static inline uint32_t ema_fma_f32_bracketed(float a, float margin_scale, float b, float c,
                                             float* result) {
    const float product = a * b;
    const float margin = ema_f32_with_lowest_bit(margin_scale * b);
    const float above = c + (product + margin);
    const float below = c + (product - margin);
    const float difference = above - below;
    uint32_t unsure;
    memcpy(&unsure, &difference, sizeof unsure);
    *result = above;
    return unsure;
}

/* fma(a, b, c), rounded once: step 1, then steps 2 and 3 when it cannot tell. */
static inline float ema_fma_f32_exact(float a, float b, float c) {
    float result;
    if (ema_fma_f32_bracketed(a, ema_f32_margin_scale(a), b, c, &result) == 0) {
        return result;
    }
    return ema_fma_f32_through_f64(a, b, c);
}

#endif /* EMA_KERNELS_FMA_EXACT_H */
