/*
 * f32-vlerp-profiles-wasmsimd.c - every wasmsimd vlerp-profiles kernel: the
 * fused template of f32-fused-wasmsimd.h for two shadows at once, each
 * parameter vector loaded once. Instantiated with constants: `vectors`
 * four-float vectors per main-loop pass, and each profile's lerp_ branch
 * (`from_a`, `from_b`: the shadow is the addend), chosen once per call.
 */
#include "f32-vlerp-profiles.h"
#include "f32-fused-wasmsimd.h"

/* One pass of `vectors` vectors of both shadows through float64, from
 * memory: for the rare pass that step 1 cannot settle in either. Not inlined,
 * so that the main loop keeps nothing for it. */
static __attribute__((noinline)) void f32_vlerp_profiles_through_f64(
    size_t vectors, int from_a, int from_b, const float* param, float* shadow_a, float* shadow_b,
    float coefficient_a, float coefficient_b) {
    const v128_t vcoefficient_a = wasm_f64x2_splat((double)coefficient_a);
    const v128_t vcoefficient_b = wasm_f64x2_splat((double)coefficient_b);
    for (; vectors != 0; vectors--) {
        const v128_t vp = wasm_v128_load(param);
        const v128_t va = wasm_v128_load(shadow_a);
        const v128_t vb = wasm_v128_load(shadow_b);
        param += 4;
        wasm_v128_store(shadow_a, ema_f32x4_fma_through_f64(vcoefficient_a, wasm_f32x4_sub(vp, va),
                                                            from_a ? va : vp));
        wasm_v128_store(shadow_b, ema_f32x4_fma_through_f64(vcoefficient_b, wasm_f32x4_sub(vp, vb),
                                                            from_b ? vb : vp));
        shadow_a += 4;
        shadow_b += 4;
    }
}

static inline __attribute__((always_inline)) void f32_vlerp_profiles_wasmsimd(
    size_t vectors, int from_a, int from_b, size_t n, const float* param, float* shadow_a,
    float* shadow_b, float coefficient_a, float coefficient_b) {
    assert(vectors >= 1 && vectors <= EMA_FUSED_MAX_VECTORS);
    assert(n == 0 || (param != NULL && shadow_a != NULL && shadow_b != NULL));

    const v128_t vcoefficient_a = wasm_f32x4_splat(coefficient_a);
    const v128_t vcoefficient_b = wasm_f32x4_splat(coefficient_b);
    const v128_t vmargin_a = wasm_f32x4_splat(ema_f32_margin_scale(coefficient_a));
    const v128_t vmargin_b = wasm_f32x4_splat(ema_f32_margin_scale(coefficient_b));
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
                va[k] =
                    ema_f32x4_fma_bracketed(vcoefficient_a, vmargin_a, wasm_f32x4_sub(vp[k], va[k]),
                                            from_a ? va[k] : vp[k], &vunsure);
                vb[k] =
                    ema_f32x4_fma_bracketed(vcoefficient_b, vmargin_b, wasm_f32x4_sub(vp[k], vb[k]),
                                            from_b ? vb[k] : vp[k], &vunsure);
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
            f32_vlerp_profiles_through_f64(vectors, from_a, from_b, param, shadow_a, shadow_b,
                                           coefficient_a, coefficient_b);
            param += tile;
            shadow_a += tile;
            shadow_b += tile;
            n -= tile;
        }
    }
    /* Fewer than `tile` left: each shadow through the one-profile body. */
    f32_fused_wasmsimd(1, from_a, n, param, shadow_a, coefficient_a);
    f32_fused_wasmsimd(1, from_b, n, param, shadow_b, coefficient_b);
}

/* Each profile's lerp_ branch, chosen once per call (f32-vlerp.h): one
 * instantiation per combination. */
#define F32_VLERP_PROFILES_WASMSIMD(vectors, n, param, shadow_a, shadow_b, w_a, w_b)           \
    do {                                                                                       \
        const int from_a = ema_f32_vlerp_from_shadow(w_a);                                     \
        const int from_b = ema_f32_vlerp_from_shadow(w_b);                                     \
        const float c_a = from_a ? (w_a) : ema_f32_vlerp_param_weight(w_a);                    \
        const float c_b = from_b ? (w_b) : ema_f32_vlerp_param_weight(w_b);                    \
        if (from_a && from_b) {                                                                \
            f32_vlerp_profiles_wasmsimd((vectors), 1, 1, (n), (param), (shadow_a), (shadow_b), \
                                        c_a, c_b);                                             \
        } else if (from_a) {                                                                   \
            f32_vlerp_profiles_wasmsimd((vectors), 1, 0, (n), (param), (shadow_a), (shadow_b), \
                                        c_a, c_b);                                             \
        } else if (from_b) {                                                                   \
            f32_vlerp_profiles_wasmsimd((vectors), 0, 1, (n), (param), (shadow_a), (shadow_b), \
                                        c_a, c_b);                                             \
        } else {                                                                               \
            f32_vlerp_profiles_wasmsimd((vectors), 0, 0, (n), (param), (shadow_a), (shadow_b), \
                                        c_a, c_b);                                             \
        }                                                                                      \
    } while (0)

void ema_f32_vlerp_profiles_ukernel__wasmsimd_u4(size_t n, const float* param, float* shadow_a,
                                                 float* shadow_b, float one_minus_decay_a,
                                                 float one_minus_decay_b) {
    F32_VLERP_PROFILES_WASMSIMD(1, n, param, shadow_a, shadow_b, one_minus_decay_a,
                                one_minus_decay_b);
}

void ema_f32_vlerp_profiles_ukernel__wasmsimd_u8(size_t n, const float* param, float* shadow_a,
                                                 float* shadow_b, float one_minus_decay_a,
                                                 float one_minus_decay_b) {
    F32_VLERP_PROFILES_WASMSIMD(2, n, param, shadow_a, shadow_b, one_minus_decay_a,
                                one_minus_decay_b);
}
