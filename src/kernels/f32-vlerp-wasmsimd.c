/*
 * f32-vlerp-wasmsimd.c - every wasmsimd vlerp kernel, from one body.
 *
 * f32_vlerp_wasmsimd() is the template: `vectors` four-float vectors per
 * main-loop pass, instantiated with constants as in f32-vupdate-wasmsimd.c.
 * The fused multiply-add is emulated exactly as ema_fma_f32_exact() does it
 * (f32-vlerp.h), two float64 lanes at a time: product and sum in float64,
 * TwoSum error, round to odd, then one rounding to float32.
 */
#include <assert.h>
#include <stddef.h>

#include <wasm_simd128.h>

#include "f32-vlerp.h"

#define MAX_VECTORS 4

/* Two lanes of fma(a, b, c) in float64, rounded to odd: `vproduct` is the
 * exact a * b, `vaddend` is c. Demoting the result to float32 rounds it once,
 * correctly. */
static inline __attribute__((always_inline)) v128_t f64x2_add_round_to_odd(v128_t vproduct,
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

/* Four lanes of fma(coefficient, vd, vc), `vcoefficient` splatted as float64. */
static inline __attribute__((always_inline)) v128_t f32x4_fma_exact(v128_t vcoefficient,
                                                                   v128_t vd, v128_t vc) {
    const v128_t vd_high = wasm_i32x4_shuffle(vd, vd, 2, 3, 2, 3);
    const v128_t vc_high = wasm_i32x4_shuffle(vc, vc, 2, 3, 2, 3);
    const v128_t vlow = f64x2_add_round_to_odd(
        wasm_f64x2_mul(vcoefficient, wasm_f64x2_promote_low_f32x4(vd)),
        wasm_f64x2_promote_low_f32x4(vc));
    const v128_t vhigh = f64x2_add_round_to_odd(
        wasm_f64x2_mul(vcoefficient, wasm_f64x2_promote_low_f32x4(vd_high)),
        wasm_f64x2_promote_low_f32x4(vc_high));
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(vlow),
                              wasm_f32x4_demote_f64x2_zero(vhigh), 0, 1, 4, 5);
}

static inline __attribute__((always_inline)) void f32_vlerp_wasmsimd(
    size_t vectors, size_t n, const float* param, float* shadow, float one_minus_decay) {
    assert(vectors >= 1 && vectors <= MAX_VECTORS);
    assert(n == 0 || (param != NULL && shadow != NULL));

    /* PyTorch's choice, once per call (see the scalar kernel). */
    const int from_shadow = one_minus_decay < 0.5f && one_minus_decay > -0.5f;
    const float coefficient = from_shadow ? one_minus_decay : one_minus_decay - 1.0f;
    const v128_t vcoefficient = wasm_f64x2_splat((double)coefficient);
    const v128_t vfrom_shadow = wasm_i32x4_splat(from_shadow ? -1 : 0);

    const size_t tile = 4 * vectors;
    for (; n >= tile; n -= tile) {
        v128_t vs[MAX_VECTORS], vp[MAX_VECTORS];
        for (size_t k = 0; k < vectors; k++) {
            vs[k] = wasm_v128_load(shadow + 4 * k);
        }
        for (size_t k = 0; k < vectors; k++) {
            vp[k] = wasm_v128_load(param + 4 * k);
        }
        param += tile;

        for (size_t k = 0; k < vectors; k++) {
            const v128_t vd = wasm_f32x4_sub(vp[k], vs[k]);
            const v128_t vc = wasm_v128_bitselect(vs[k], vp[k], vfrom_shadow);
            vs[k] = f32x4_fma_exact(vcoefficient, vd, vc);
        }

        for (size_t k = 0; k < vectors; k++) {
            wasm_v128_store(shadow + 4 * k, vs[k]);
        }
        shadow += tile;
    }
    for (; n >= 4; n -= 4) {
        const v128_t vs = wasm_v128_load(shadow);
        const v128_t vp = wasm_v128_load(param);
        param += 4;
        const v128_t vd = wasm_f32x4_sub(vp, vs);
        const v128_t vc = wasm_v128_bitselect(vs, vp, vfrom_shadow);
        wasm_v128_store(shadow, f32x4_fma_exact(vcoefficient, vd, vc));
        shadow += 4;
    }
    /* Tail of 1-3 elements in scalar: no load or store past the end. */
    for (; n != 0; n -= 1) {
        const float s = *shadow;
        const float p = *param++;
        *shadow++ = ema_fma_f32_exact(coefficient, p - s, from_shadow ? s : p);
    }
}

void ema_f32_vlerp_ukernel__wasmsimd_u8(size_t n, const float* param, float* shadow,
                                        float one_minus_decay) {
    f32_vlerp_wasmsimd(2, n, param, shadow, one_minus_decay);
}

void ema_f32_vlerp_ukernel__wasmsimd_u16(size_t n, const float* param, float* shadow,
                                         float one_minus_decay) {
    f32_vlerp_wasmsimd(4, n, param, shadow, one_minus_decay);
}
