/*
 * f32-vlerp-wasmsimd.c - every wasmsimd vlerp kernel: PyTorch's lerp_ branch,
 * chosen once per call (f32-vlerp.h), over the fused template
 * (f32-fused-wasmsimd.h).
 */
#include "f32-vlerp.h"
#include "f32-fused-wasmsimd.h"

/* PyTorch's branch, chosen once per call (f32-vlerp.h): one instantiation each. */
#define F32_VLERP_WASMSIMD(vectors, n, param, shadow, w)                                    \
    (ema_f32_vlerp_from_shadow(w)                                                           \
         ? f32_fused_wasmsimd((vectors), 1, (n), (param), (shadow), (w))                    \
         : f32_fused_wasmsimd((vectors), 0, (n), (param), (shadow), ema_f32_vlerp_param_weight(w)))

void ema_f32_vlerp_ukernel__wasmsimd_u4(size_t n, const float* param, float* shadow,
                                        float one_minus_decay) {
    F32_VLERP_WASMSIMD(1, n, param, shadow, one_minus_decay);
}

void ema_f32_vlerp_ukernel__wasmsimd_u8(size_t n, const float* param, float* shadow,
                                        float one_minus_decay) {
    F32_VLERP_WASMSIMD(2, n, param, shadow, one_minus_decay);
}

void ema_f32_vlerp_ukernel__wasmsimd_u16(size_t n, const float* param, float* shadow,
                                         float one_minus_decay) {
    F32_VLERP_WASMSIMD(4, n, param, shadow, one_minus_decay);
}
