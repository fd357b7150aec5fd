#include <assert.h>
#include <stddef.h>

#include <wasm_simd128.h>

#include "f32-vupdate.h"

void ema_f32_vupdate_ukernel__wasmsimd_u16(size_t n, const float* param, float* shadow,
                                           float one_minus_decay) {
    assert(n == 0 || (param != NULL && shadow != NULL));

    const v128_t vweight = wasm_f32x4_splat(one_minus_decay);
    for (; n >= 16; n -= 16) {
        const v128_t vs0 = wasm_v128_load(shadow);
        const v128_t vs1 = wasm_v128_load(shadow + 4);
        const v128_t vs2 = wasm_v128_load(shadow + 8);
        const v128_t vs3 = wasm_v128_load(shadow + 12);
        const v128_t vp0 = wasm_v128_load(param);
        const v128_t vp1 = wasm_v128_load(param + 4);
        const v128_t vp2 = wasm_v128_load(param + 8);
        const v128_t vp3 = wasm_v128_load(param + 12);
        param += 16;

        /* SIMD128 has no fused multiply-add, so these are the same three
         * float32 roundings as the scalar kernel. */
        const v128_t vw0 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs0, vp0));
        const v128_t vw1 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs1, vp1));
        const v128_t vw2 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs2, vp2));
        const v128_t vw3 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs3, vp3));

        wasm_v128_store(shadow, wasm_f32x4_sub(vs0, vw0));
        wasm_v128_store(shadow + 4, wasm_f32x4_sub(vs1, vw1));
        wasm_v128_store(shadow + 8, wasm_f32x4_sub(vs2, vw2));
        wasm_v128_store(shadow + 12, wasm_f32x4_sub(vs3, vw3));
        shadow += 16;
    }
    for (; n >= 4; n -= 4) {
        const v128_t vs = wasm_v128_load(shadow);
        const v128_t vp = wasm_v128_load(param);
        param += 4;
        wasm_v128_store(shadow, wasm_f32x4_sub(vs, wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs, vp))));
        shadow += 4;
    }
    /* Tail of 1-3 elements in scalar: no load or store past the end. */
    for (; n != 0; n -= 1) {
        const float s = *shadow;
        const float d = s - *param++;
        *shadow++ = s - one_minus_decay * d;
    }
}
