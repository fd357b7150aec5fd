/*
 * f32-vkeras-wasmsimd.c - every wasmsimd vkeras kernel, from one body.
 *
 * f32_vkeras_wasmsimd() is the template: `vectors` four-float vectors per
 * main-loop pass, instantiated with constants as in f32-vupdate-wasmsimd.c.
 */
#include <assert.h>
#include <stddef.h>

#include <wasm_simd128.h>

#include "f32-vkeras.h"

#define MAX_VECTORS 8

static inline __attribute__((always_inline)) void f32_vkeras_wasmsimd(
    size_t vectors, size_t n, const float* param, float* shadow, float decay,
    float one_minus_decay) {
    assert(vectors >= 1 && vectors <= MAX_VECTORS);
    assert(n == 0 || (param != NULL && shadow != NULL));

    const size_t tile = 4 * vectors;
    const v128_t vdecay = wasm_f32x4_splat(decay);
    const v128_t vweight = wasm_f32x4_splat(one_minus_decay);
    for (; n >= tile; n -= tile) {
        v128_t vs[MAX_VECTORS], vp[MAX_VECTORS];
        for (size_t k = 0; k < vectors; k++) {
            vs[k] = wasm_v128_load(shadow + 4 * k);
        }
        for (size_t k = 0; k < vectors; k++) {
            vp[k] = wasm_v128_load(param + 4 * k);
        }
        param += tile;

        /* SIMD128 has no fused multiply-add: two products and a sum, each
         * rounded, as in the scalar kernel and in Keras. */
        for (size_t k = 0; k < vectors; k++) {
            vs[k] = wasm_f32x4_add(wasm_f32x4_mul(vdecay, vs[k]), wasm_f32x4_mul(vweight, vp[k]));
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
        wasm_v128_store(shadow, wasm_f32x4_add(wasm_f32x4_mul(vdecay, vs), wasm_f32x4_mul(vweight, vp)));
        shadow += 4;
    }
    /* Tail of 1-3 elements in scalar: no load or store past the end. */
    for (; n != 0; n -= 1) {
        const float kept = decay * *shadow;
        *shadow++ = kept + one_minus_decay * *param++;
    }
}

void ema_f32_vkeras_ukernel__wasmsimd_u8(size_t n, const float* param, float* shadow, float decay,
                                         float one_minus_decay) {
    f32_vkeras_wasmsimd(2, n, param, shadow, decay, one_minus_decay);
}

void ema_f32_vkeras_ukernel__wasmsimd_u16(size_t n, const float* param, float* shadow, float decay,
                                          float one_minus_decay) {
    f32_vkeras_wasmsimd(4, n, param, shadow, decay, one_minus_decay);
}

void ema_f32_vkeras_ukernel__wasmsimd_u32(size_t n, const float* param, float* shadow, float decay,
                                          float one_minus_decay) {
    f32_vkeras_wasmsimd(8, n, param, shadow, decay, one_minus_decay);
}
