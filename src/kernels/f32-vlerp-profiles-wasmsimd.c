/*
 * f32-vlerp-profiles-wasmsimd.c - every wasmsimd vlerp-profiles kernel.
 *
 * When both weights take lerp_'s shadow branch (|w| < 0.5: every step of a
 * power profile but its first few dozen), both shadows are updated in one
 * pass, each parameter vector loaded once: the fused template of
 * f32-fused-wasmsimd.h for two shadows, instantiated with `vectors`
 * four-float vectors per main-loop pass. Otherwise (those first steps) each
 * shadow takes a block of the parameter in turn through the one-profile
 * kernel. The branches are not template arguments, as in f32-vlerp: four
 * instantiations cost 17 KiB of module for steps that hardly ever run, and
 * masks chosen at run time made the common pass as slow as two kernels.
 */
#include "f32-fused-wasmsimd.h"
#include "f32-vlerp-profiles.h"

/* Elements of the parameter per block when the shadows go one at a time. */
#define BLOCK 1024u

/* One pass of `vectors` vectors of both shadows through float64, from
 * memory: for the rare pass that step 1 cannot settle in either. Not inlined,
 * so that the main loop keeps nothing for it. */
static __attribute__((noinline)) void f32_vlerp_profiles_through_f64(
    size_t vectors, const float* param, float* shadow_a, float* shadow_b, float weight_a,
    float weight_b) {
    const v128_t vweight_a = wasm_f64x2_splat((double)weight_a);
    const v128_t vweight_b = wasm_f64x2_splat((double)weight_b);
    for (; vectors != 0; vectors--) {
        const v128_t vp = wasm_v128_load(param);
        const v128_t va = wasm_v128_load(shadow_a);
        const v128_t vb = wasm_v128_load(shadow_b);
        param += 4;
        wasm_v128_store(shadow_a, ema_f32x4_fma_through_f64(vweight_a, wasm_f32x4_sub(vp, va), va));
        wasm_v128_store(shadow_b, ema_f32x4_fma_through_f64(vweight_b, wasm_f32x4_sub(vp, vb), vb));
        shadow_a += 4;
        shadow_b += 4;
    }
}

/* Both shadows in lerp_'s shadow branch: fma(w, p - s, s) for each. */
static inline __attribute__((always_inline)) void f32_vlerp_profiles_wasmsimd(
    size_t vectors, size_t n, const float* param, float* shadow_a, float* shadow_b, float weight_a,
    float weight_b) {
    assert(vectors >= 1 && vectors <= EMA_FUSED_MAX_VECTORS);
    assert(n == 0 || (param != NULL && shadow_a != NULL && shadow_b != NULL));

    const v128_t vweight_a = wasm_f32x4_splat(weight_a);
    const v128_t vweight_b = wasm_f32x4_splat(weight_b);
    const v128_t vmargin_a = wasm_f32x4_splat(ema_f32_margin_scale(weight_a));
    const v128_t vmargin_b = wasm_f32x4_splat(ema_f32_margin_scale(weight_b));
    const size_t tile = 4 * vectors;
    /* As in f32_fused_wasmsimd: no call in the main loop; a pass that step 1
     * cannot settle stops it, and the outer loop redoes that pass. */
    while (n >= tile) {
        for (; n >= tile; n -= tile) {
            v128_t vp[EMA_FUSED_MAX_VECTORS], va[EMA_FUSED_MAX_VECTORS], vb[EMA_FUSED_MAX_VECTORS];
            for (size_t k = 0; k < vectors; k++) {
                vp[k] = wasm_v128_load(param + 4 * k);
            }
            for (size_t k = 0; k < vectors; k++) {
                va[k] = wasm_v128_load(shadow_a + 4 * k);
            }
            for (size_t k = 0; k < vectors; k++) {
                vb[k] = wasm_v128_load(shadow_b + 4 * k);
            }

            v128_t vunsure = wasm_i32x4_const_splat(0);
            for (size_t k = 0; k < vectors; k++) {
                va[k] = ema_f32x4_fma_bracketed(vweight_a, vmargin_a, wasm_f32x4_sub(vp[k], va[k]),
                                                va[k], &vunsure);
                vb[k] = ema_f32x4_fma_bracketed(vweight_b, vmargin_b, wasm_f32x4_sub(vp[k], vb[k]),
                                                vb[k], &vunsure);
            }
            if (wasm_v128_any_true(vunsure)) {
                break;
            }

            for (size_t k = 0; k < vectors; k++) {
                wasm_v128_store(shadow_a + 4 * k, va[k]);
            }
            for (size_t k = 0; k < vectors; k++) {
                wasm_v128_store(shadow_b + 4 * k, vb[k]);
            }
            param += tile;
            shadow_a += tile;
            shadow_b += tile;
        }
        if (n >= tile) {
            f32_vlerp_profiles_through_f64(vectors, param, shadow_a, shadow_b, weight_a, weight_b);
            param += tile;
            shadow_a += tile;
            shadow_b += tile;
            n -= tile;
        }
    }
    /* Fewer than `tile` left: each shadow through the one-profile body. */
    f32_fused_wasmsimd(1, 1, n, param, shadow_a, weight_a);
    f32_fused_wasmsimd(1, 1, n, param, shadow_b, weight_b);
}

/* Any other pair of branches: one shadow after the other, block by block. */
static void f32_vlerp_profiles_by_blocks(ema_f32_vlerp_ukernel_fn one_profile, size_t n,
                                         const float* param, float* shadow_a, float* shadow_b,
                                         float weight_a, float weight_b) {
    for (size_t done = 0; done < n; done += BLOCK) {
        const size_t count = n - done < BLOCK ? n - done : BLOCK;
        one_profile(count, param + done, shadow_a + done, weight_a);
        one_profile(count, param + done, shadow_b + done, weight_b);
    }
}

/* One kernel of the list: both profiles in one pass when each rounds from
 * its shadow, else each profile by blocks with the one-profile kernel of the
 * same unroll. */
static inline __attribute__((always_inline)) void f32_vlerp_profiles_kernel(
    size_t vectors, ema_f32_vlerp_ukernel_fn one_profile, size_t n, const float* param,
    float* shadow_a, float* shadow_b, float one_minus_decay_a, float one_minus_decay_b) {
    if (ema_f32_vlerp_from_shadow(one_minus_decay_a) &&
        ema_f32_vlerp_from_shadow(one_minus_decay_b)) {
        f32_vlerp_profiles_wasmsimd(vectors, n, param, shadow_a, shadow_b, one_minus_decay_a,
                                    one_minus_decay_b);
    } else {
        f32_vlerp_profiles_by_blocks(one_profile, n, param, shadow_a, shadow_b,
                                     one_minus_decay_a, one_minus_decay_b);
    }
}

void ema_f32_vlerp_profiles_ukernel__wasmsimd_u4(size_t n, const float* param, float* shadow_a,
                                                 float* shadow_b, float one_minus_decay_a,
                                                 float one_minus_decay_b) {
    f32_vlerp_profiles_kernel(1, ema_f32_vlerp_ukernel__wasmsimd_u4, n, param, shadow_a,
                              shadow_b, one_minus_decay_a, one_minus_decay_b);
}

void ema_f32_vlerp_profiles_ukernel__wasmsimd_u8(size_t n, const float* param, float* shadow_a,
                                                 float* shadow_b, float one_minus_decay_a,
                                                 float one_minus_decay_b) {
    f32_vlerp_profiles_kernel(2, ema_f32_vlerp_ukernel__wasmsimd_u8, n, param, shadow_a,
                              shadow_b, one_minus_decay_a, one_minus_decay_b);
}
