/*
 * fma-exact-wasmsimd.h - ema_fma_f32_exact() (fma-exact.h) on four float32
 * lanes with SIMD128, its steps split so that a kernel pays for the later
 * ones only when a lane needs them:
 *
 *   vresult = ema_f32x4_fma_bracketed(va, vk, vb, vc, &vunsure);   step 1
 *   ...
 *   if (wasm_v128_any_true(vunsure))                               steps 2, 3
 *       vresult = ema_f32x4_fma_through_f64(va_f64, vb, vc);
 *
 * A kernel ORs the `vunsure` lanes of a whole main-loop pass and tests them
 * once; with an EMA's weight a pass almost never needs the float64 steps,
 * and a pass that does is exact all the same. The kernels keep the float64
 * steps out of their main loop (a non-inlined function that reads the pass
 * again from memory), so that V8 keeps no vector alive for them. `va` is
 * the coefficient a splatted as float32, `vk` its margin scale
 * (ema_f32_margin_scale), `va_f64` a as float64: all the same for every
 * element of a call.
 */
#ifndef EMA_KERNELS_FMA_EXACT_WASMSIMD_H
#define EMA_KERNELS_FMA_EXACT_WASMSIMD_H

#include <wasm_simd128.h>

#include "fma-exact.h"

/* Step 1 on four lanes: fl(c + fl(p + m)), and ORed into *vunsure the lanes
 * where it may differ from fma(a, b, c): nonzero bits where
 * fl(c + fl(p + m)) - fl(c + fl(p - m)) is not exactly +0. */
static inline __attribute__((always_inline)) v128_t ema_f32x4_fma_bracketed(v128_t va, v128_t vk,
                                                                            v128_t vb, v128_t vc,
                                                                            v128_t* vunsure) {
    const v128_t vproduct = wasm_f32x4_mul(va, vb);
    const v128_t vmargin = wasm_v128_or(wasm_f32x4_mul(vk, vb), wasm_i32x4_const_splat(1));
    const v128_t vabove = wasm_f32x4_add(vc, wasm_f32x4_add(vproduct, vmargin));
    const v128_t vbelow = wasm_f32x4_add(vc, wasm_f32x4_sub(vproduct, vmargin));
    *vunsure = wasm_v128_or(*vunsure, wasm_f32x4_sub(vabove, vbelow));
    return vabove;
}

/* Float64 lanes of a * b (va splatted as float64) and of c, b and c the low
 * (`high` 0) or high two of four float32 lanes. */
static inline __attribute__((always_inline)) v128_t ema_f64x2_product(v128_t va, v128_t vb,
                                                                      int high) {
    const v128_t vhalf = high ? wasm_i64x2_shuffle(vb, vb, 1, 1) : vb;
    return wasm_f64x2_mul(va, wasm_f64x2_promote_low_f32x4(vhalf));
}

static inline __attribute__((always_inline)) v128_t ema_f64x2_addend(v128_t vc, int high) {
    const v128_t vhalf = high ? wasm_i64x2_shuffle(vc, vc, 1, 1) : vc;
    return wasm_f64x2_promote_low_f32x4(vhalf);
}

/* Four float32 lanes from two float64 pairs, each rounded once. */
static inline __attribute__((always_inline)) v128_t ema_f32x4_demote(v128_t vlow, v128_t vhigh) {
    return wasm_i64x2_shuffle(wasm_f32x4_demote_f64x2_zero(vlow),
                              wasm_f32x4_demote_f64x2_zero(vhigh), 0, 2);
}

/* Step 3 on two lanes: ema_f64_add_round_to_odd(). */
static inline __attribute__((always_inline)) v128_t ema_f64x2_add_round_to_odd(v128_t vproduct,
                                                                               v128_t vaddend) {
    const v128_t vone = wasm_i64x2_splat(1);
    const v128_t vsum = wasm_f64x2_add(vproduct, vaddend);
    const v128_t vaddend_part = wasm_f64x2_sub(vsum, vproduct);
    const v128_t verror =
        wasm_f64x2_add(wasm_f64x2_sub(vproduct, wasm_f64x2_sub(vsum, vaddend_part)),
                       wasm_f64x2_sub(vaddend, vaddend_part));
    /* Inexact (a NaN error, from infinities or NaN, compares false) and even. */
    const v128_t vadjust =
        wasm_v128_and(wasm_f64x2_gt(wasm_f64x2_abs(verror), wasm_f64x2_splat(0.0)),
                      wasm_i64x2_eq(wasm_v128_and(vsum, vone), wasm_i64x2_splat(0)));
    /* +1 when sum and error have the same sign, -1 otherwise. */
    const v128_t vstep = wasm_v128_or(wasm_i64x2_shr(wasm_v128_xor(vsum, verror), 63), vone);
    return wasm_i64x2_add(vsum, wasm_v128_and(vstep, vadjust));
}

/* Steps 2 and 3 on four lanes: fma(a, b, c), always right. */
static inline __attribute__((always_inline)) v128_t ema_f32x4_fma_through_f64(v128_t va_f64, v128_t vb,
                                                                  v128_t vc) {
    const v128_t vproduct_low = ema_f64x2_product(va_f64, vb, 0);
    const v128_t vproduct_high = ema_f64x2_product(va_f64, vb, 1);
    const v128_t vaddend_low = ema_f64x2_addend(vc, 0);
    const v128_t vaddend_high = ema_f64x2_addend(vc, 1);
    const v128_t vsum_low = wasm_f64x2_add(vproduct_low, vaddend_low);
    const v128_t vsum_high = wasm_f64x2_add(vproduct_high, vaddend_high);

    /* Step 2's test: the low 32 bits of each float64 hold the midpoint
     * pattern; a sum below float32's smallest normal rounds to at most that
     * normal in magnitude, so testing the float32 result catches every one. */
    const v128_t vresult = ema_f32x4_demote(vsum_low, vsum_high);
    const v128_t vlow_words = wasm_i32x4_shuffle(vsum_low, vsum_high, 0, 2, 4, 6);
    const v128_t vmidpoint = wasm_i32x4_eq(
        wasm_v128_and(vlow_words, wasm_i32x4_const_splat((int32_t)EMA_F32_ROUND_BITS_MASK)),
        wasm_i32x4_const_splat((int32_t)EMA_F32_MIDPOINT_BITS));
    const v128_t vtiny = wasm_f32x4_le(wasm_f32x4_abs(vresult),
                                       wasm_f32x4_const_splat((float)EMA_F32_MIN_NORMAL));
    if (!wasm_v128_any_true(wasm_v128_or(vmidpoint, vtiny))) {
        return vresult;
    }
    return ema_f32x4_demote(ema_f64x2_add_round_to_odd(vproduct_low, vaddend_low),
                            ema_f64x2_add_round_to_odd(vproduct_high, vaddend_high));
}

#endif /* EMA_KERNELS_FMA_EXACT_WASMSIMD_H */
