/*
 * f32-vlerp.h - the EMA update micro-kernels with PyTorch's `lerp_` rounding.
 *
 * Every kernel computes, for i in [0, n), with w = one_minus_decay:
 *     d = fl(param[i] - shadow[i])
 *     shadow[i] = |w| < 0.5 ? fma(w, d, shadow[i]) : fma(fl(w - 1), d, param[i])
 * where fl() rounds to float32 and fma() rounds once (ties to even), which is
 * what `shadow.lerp_(param, w)` does on PyTorch's CPU vector path and scalar
 * tail. Neither Wasm nor SIMD128 has a fused multiply-add, and Emscripten
 * 3.1.6's fmaf() is wrong on ties, so the kernels emulate it exactly with
 * float64 (see ema_fma_f32_exact below). Kernels trust their arguments.
 * `param` may equal `shadow` (then d is 0: a finite shadow keeps its value,
 * though -0 can become +0, as in PyTorch; an infinite one becomes NaN).
 */
#ifndef EMA_KERNELS_F32_VLERP_H
#define EMA_KERNELS_F32_VLERP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "f32-vupdate.h" /* EMA_ARCH_SCALAR, EMA_ARCH_WASMSIMD */

typedef void (*ema_f32_vlerp_ukernel_fn)(size_t n, const float* param, float* shadow,
                                         float one_minus_decay);

#define EMA_UKERNEL(arch, name, unroll)                                                \
    void name(size_t n, const float* param, float* shadow, float one_minus_decay);
#include "f32-vlerp.inc"
#undef EMA_UKERNEL

/* fma(a, b, c) for float32 a, b, c, rounded once to nearest-even, without a
 * hardware fused multiply-add:
 *   - a * b is exact in float64 (24 + 24 bits of significand);
 *   - sum = a * b + c rounded to float64, and its exact error by TwoSum;
 *   - rounding sum to odd (when the error is nonzero and sum's last bit is
 *     even, step one float64 ulp towards the error) makes the final rounding
 *     to float32 correct: 53 bits is more than 24 + 2, so a float32 tie can
 *     only remain when the exact value is one, and subnormal float32 results
 *     lie far inside float64's normal range.
 * Infinities and NaN propagate through the float64 operations as fmaf's do;
 * their error is NaN, which the `> 0 || < 0` test ignores. Build with
 * -ffp-contract=off (EMA_EXACT_FLAGS) so no step is fused. */
static inline float ema_fma_f32_exact(float a, float b, float c) {
    const double product = (double)a * (double)b;
    const double addend = (double)c;
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
    return (float)odd;
}

#endif /* EMA_KERNELS_F32_VLERP_H */
