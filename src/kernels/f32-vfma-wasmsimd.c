/*
 * f32-vfma-wasmsimd.c - every wasmsimd vfma kernel, from one body.
 *
 * f32_vfma_wasmsimd() is the template: `vectors` four-float vectors per
 * main-loop pass, instantiated with constants as in f32-vupdate-wasmsimd.c.
 * The fused multiply-add is exact without one (fma-exact-wasmsimd.h): each
 * pass is computed in float32 with a bracket that proves it right, and only
 * a pass the bracket cannot prove is computed again through float64.
 */
#include <assert.h>
#include <stddef.h>

#include <wasm_simd128.h>

#include "f32-vfma.h"
#include "fma-exact-wasmsimd.h"

#define MAX_VECTORS 4

/* `vectors` four-float vectors through float64 (steps 2 and 3), from memory:
 * for the rare pass that step 1 cannot settle. Not inlined, and reading its
 * inputs again, so that the common path keeps nothing for it. */
static __attribute__((noinline)) void f32_vfma_through_f64(size_t vectors, const float* param,
                                                           float* shadow, float one_minus_decay) {
    const v128_t vweight_f64 = wasm_f64x2_splat((double)one_minus_decay);
    for (; vectors != 0; vectors--) {
        const v128_t vs = wasm_v128_load(shadow);
        const v128_t vd = wasm_f32x4_sub(wasm_v128_load(param), vs);
        param += 4;
        wasm_v128_store(shadow, ema_f32x4_fma_through_f64(vweight_f64, vd, vs));
        shadow += 4;
    }
}

static inline __attribute__((always_inline)) void f32_vfma_wasmsimd(
    size_t vectors, size_t n, const float* param, float* shadow, float one_minus_decay) {
    assert(vectors >= 1 && vectors <= MAX_VECTORS);
    assert(n == 0 || (param != NULL && shadow != NULL));

    const v128_t vweight = wasm_f32x4_splat(one_minus_decay);
    const v128_t vmargin_scale = wasm_f32x4_splat(ema_f32_margin_scale(one_minus_decay));
    const size_t tile = 4 * vectors;
    /* The main loop has no call in it, so that V8 keeps the splatted
     * constants in registers: it stops at a pass that step 1 cannot settle,
     * and the outer loop redoes that pass through float64. */
    while (n >= tile) {
        for (; n >= tile; n -= tile) {
            v128_t vs[MAX_VECTORS], vp[MAX_VECTORS];
            for (size_t k = 0; k < vectors; k++) {
                vs[k] = wasm_v128_load(shadow + 4 * k);
            }
            for (size_t k = 0; k < vectors; k++) {
                vp[k] = wasm_v128_load(param + 4 * k);
            }

            v128_t vunsure = wasm_i32x4_const_splat(0);
            for (size_t k = 0; k < vectors; k++) {
                const v128_t vd = wasm_f32x4_sub(vp[k], vs[k]);
                vs[k] = ema_f32x4_fma_bracketed(vweight, vmargin_scale, vd, vs[k], &vunsure);
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
            f32_vfma_through_f64(vectors, param, shadow, one_minus_decay);
            param += tile;
            shadow += tile;
            n -= tile;
        }
    }
    for (; n >= 4; n -= 4) {
        const v128_t vs = wasm_v128_load(shadow);
        const v128_t vd = wasm_f32x4_sub(wasm_v128_load(param), vs);
        v128_t vunsure = wasm_i32x4_const_splat(0);
        const v128_t vresult = ema_f32x4_fma_bracketed(vweight, vmargin_scale, vd, vs, &vunsure);
        if (wasm_v128_any_true(vunsure)) {
            f32_vfma_through_f64(1, param, shadow, one_minus_decay);
        } else {
            wasm_v128_store(shadow, vresult);
        }
        param += 4;
        shadow += 4;
    }
    /* Tail of 1-3 elements in scalar: no load or store past the end. */
    for (; n != 0; n -= 1) {
        const float s = *shadow;
        *shadow++ = ema_fma_f32_exact(one_minus_decay, *param++ - s, s);
    }
}

void ema_f32_vfma_ukernel__wasmsimd_u4(size_t n, const float* param, float* shadow,
                                       float one_minus_decay) {
    f32_vfma_wasmsimd(1, n, param, shadow, one_minus_decay);
}

void ema_f32_vfma_ukernel__wasmsimd_u8(size_t n, const float* param, float* shadow,
                                       float one_minus_decay) {
    f32_vfma_wasmsimd(2, n, param, shadow, one_minus_decay);
}

void ema_f32_vfma_ukernel__wasmsimd_u16(size_t n, const float* param, float* shadow,
                                        float one_minus_decay) {
    f32_vfma_wasmsimd(4, n, param, shadow, one_minus_decay);
}
