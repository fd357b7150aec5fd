#include <assert.h>
#include <stddef.h>

#include <wasm_simd128.h>

#include "f32-vupdate.h"

/* 8 vectors per pass. On cache-resident data, where the loop's own overhead
 * still shows, this measured 0-10% faster than u16 (bench/compare.mjs,
 * resident rows); once memory-bound the two are equal. */
void ema_f32_vupdate_ukernel__wasmsimd_u32(size_t n, const float* param, float* shadow,
                                           float one_minus_decay) {
    assert(n == 0 || (param != NULL && shadow != NULL));

    const v128_t vweight = wasm_f32x4_splat(one_minus_decay);
    for (; n >= 32; n -= 32) {
        const v128_t vs0 = wasm_v128_load(shadow);
        const v128_t vs1 = wasm_v128_load(shadow + 4);
        const v128_t vs2 = wasm_v128_load(shadow + 8);
        const v128_t vs3 = wasm_v128_load(shadow + 12);
        const v128_t vs4 = wasm_v128_load(shadow + 16);
        const v128_t vs5 = wasm_v128_load(shadow + 20);
        const v128_t vs6 = wasm_v128_load(shadow + 24);
        const v128_t vs7 = wasm_v128_load(shadow + 28);
        const v128_t vp0 = wasm_v128_load(param);
        const v128_t vp1 = wasm_v128_load(param + 4);
        const v128_t vp2 = wasm_v128_load(param + 8);
        const v128_t vp3 = wasm_v128_load(param + 12);
        const v128_t vp4 = wasm_v128_load(param + 16);
        const v128_t vp5 = wasm_v128_load(param + 20);
        const v128_t vp6 = wasm_v128_load(param + 24);
        const v128_t vp7 = wasm_v128_load(param + 28);
        param += 32;

        /* SIMD128 has no fused multiply-add: three float32 roundings, as in
         * the scalar kernel and in PyTorch. */
        const v128_t vw0 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs0, vp0));
        const v128_t vw1 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs1, vp1));
        const v128_t vw2 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs2, vp2));
        const v128_t vw3 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs3, vp3));
        const v128_t vw4 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs4, vp4));
        const v128_t vw5 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs5, vp5));
        const v128_t vw6 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs6, vp6));
        const v128_t vw7 = wasm_f32x4_mul(vweight, wasm_f32x4_sub(vs7, vp7));

        wasm_v128_store(shadow, wasm_f32x4_sub(vs0, vw0));
        wasm_v128_store(shadow + 4, wasm_f32x4_sub(vs1, vw1));
        wasm_v128_store(shadow + 8, wasm_f32x4_sub(vs2, vw2));
        wasm_v128_store(shadow + 12, wasm_f32x4_sub(vs3, vw3));
        wasm_v128_store(shadow + 16, wasm_f32x4_sub(vs4, vw4));
        wasm_v128_store(shadow + 20, wasm_f32x4_sub(vs5, vw5));
        wasm_v128_store(shadow + 24, wasm_f32x4_sub(vs6, vw6));
        wasm_v128_store(shadow + 28, wasm_f32x4_sub(vs7, vw7));
        shadow += 32;
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
