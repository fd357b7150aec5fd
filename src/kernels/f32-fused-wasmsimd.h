/*
 * f32-fused-wasmsimd.h - the one body of every wasmsimd kernel whose update
 * is a single fused multiply-add, fma(coefficient, p - s, c):
 *   f32-vlerp  PyTorch lerp_: c = s with w when |w| < 0.5, else c = p with -(1 - w);
 *   f32-vfma   diffusers foreach: c = s with w, always.
 * f32_fused_wasmsimd() is the template, instantiated with constants
 * (`vectors` four-float vectors per main-loop pass; `from_shadow`: c = s) as
 * in f32-vupdate-wasmsimd.c. The fused multiply-add is exact without one
 * (fma-exact-wasmsimd.h): each pass is computed in float32 with a bracket
 * that proves it right, and only a pass the bracket cannot prove is computed
 * again through float64. Included by the two kernel files only.
 */
#ifndef EMA_KERNELS_F32_FUSED_WASMSIMD_H
#define EMA_KERNELS_F32_FUSED_WASMSIMD_H

#include <assert.h>
#include <stddef.h>

#include <wasm_simd128.h>

#include "fma-exact-wasmsimd.h"

#define EMA_FUSED_MAX_VECTORS 4

/* `vectors` four-float vectors through float64 (steps 2 and 3), from memory:
 * for the rare pass that step 1 cannot settle. Not inlined, and reading its
 * inputs again, so that the common path keeps nothing for it. */
static __attribute__((noinline)) void f32_fused_through_f64(size_t vectors, int from_shadow,
                                                            const float* param, float* shadow,
                                                            float coefficient) {
    const v128_t vcoefficient_f64 = wasm_f64x2_splat((double)coefficient);
    for (; vectors != 0; vectors--) {
        const v128_t vs = wasm_v128_load(shadow);
        const v128_t vp = wasm_v128_load(param);
        param += 4;
        const v128_t vd = wasm_f32x4_sub(vp, vs);
        wasm_v128_store(shadow, ema_f32x4_fma_through_f64(vcoefficient_f64, vd,
                                                          from_shadow ? vs : vp));
        shadow += 4;
    }
}

static inline __attribute__((always_inline)) void f32_fused_wasmsimd(
    size_t vectors, int from_shadow, size_t n, const float* param, float* shadow,
    float coefficient) {
    assert(vectors >= 1 && vectors <= EMA_FUSED_MAX_VECTORS);
    assert(n == 0 || (param != NULL && shadow != NULL));

    const v128_t vcoefficient = wasm_f32x4_splat(coefficient);
    const v128_t vmargin_scale = wasm_f32x4_splat(ema_f32_margin_scale(coefficient));
    const size_t tile = 4 * vectors;
    /* The main loop has no call in it, so that V8 keeps the splatted
     * constants in registers: it stops at a pass that step 1 cannot settle,
     * and the outer loop redoes that pass through float64. */
    while (n >= tile) {
        for (; n >= tile; n -= tile) {
            v128_t vs[EMA_FUSED_MAX_VECTORS], vp[EMA_FUSED_MAX_VECTORS];
            for (size_t k = 0; k < vectors; k++) {
                vs[k] = wasm_v128_load(shadow + 4 * k);
            }
            for (size_t k = 0; k < vectors; k++) {
                vp[k] = wasm_v128_load(param + 4 * k);
            }

            v128_t vunsure = wasm_i32x4_const_splat(0);
            for (size_t k = 0; k < vectors; k++) {
                const v128_t vd = wasm_f32x4_sub(vp[k], vs[k]);
                vs[k] = ema_f32x4_fma_bracketed(vcoefficient, vmargin_scale, vd,
                                                from_shadow ? vs[k] : vp[k], &vunsure);
            }
            if (wasm_v128_any_true(vunsure)) {
                break;
            }

            for (size_t k = 0; k < vectors; k++) {
                wasm_v128_store(shadow + 4 * k, vs[k]);
            }
            param += tile;
            shadow += tile;
        }
        if (n >= tile) {
            f32_fused_through_f64(vectors, from_shadow, param, shadow, coefficient);
            param += tile;
            shadow += tile;
            n -= tile;
        }
    }
    for (; n >= 4; n -= 4) {
        const v128_t vs = wasm_v128_load(shadow);
        const v128_t vp = wasm_v128_load(param);
        const v128_t vd = wasm_f32x4_sub(vp, vs);
        v128_t vunsure = wasm_i32x4_const_splat(0);
        const v128_t vresult = ema_f32x4_fma_bracketed(vcoefficient, vmargin_scale, vd,
                                                       from_shadow ? vs : vp, &vunsure);
        if (wasm_v128_any_true(vunsure)) {
            f32_fused_through_f64(1, from_shadow, param, shadow, coefficient);
        } else {
            wasm_v128_store(shadow, vresult);
        }
        param += 4;
        shadow += 4;
    }
    /* Tail of 1-3 elements in scalar: no load or store past the end. */
    for (; n != 0; n -= 1) {
        const float s = *shadow;
        const float p = *param++;
        *shadow++ = ema_fma_f32_exact(coefficient, p - s, from_shadow ? s : p);
    }
}

#endif /* EMA_KERNELS_F32_FUSED_WASMSIMD_H */
