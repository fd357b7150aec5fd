/*
 * f32-vfma-wasmsimd.c - every wasmsimd vfma kernel: fma(w, p - s, s) for
 * every w (diffusers' foreach update), the fused template
 * (f32-fused-wasmsimd.h) with the shadow as the addend.
 */
#include "f32-vfma.h"
#include "f32-fused-wasmsimd.h"

void ema_f32_vfma_ukernel__wasmsimd_u4(size_t n, const float* param, float* shadow,
                                       float one_minus_decay) {
    f32_fused_wasmsimd(1, 1, n, param, shadow, one_minus_decay);
}

void ema_f32_vfma_ukernel__wasmsimd_u8(size_t n, const float* param, float* shadow,
                                       float one_minus_decay) {
    f32_fused_wasmsimd(2, 1, n, param, shadow, one_minus_decay);
}

void ema_f32_vfma_ukernel__wasmsimd_u16(size_t n, const float* param, float* shadow,
                                        float one_minus_decay) {
    f32_fused_wasmsimd(4, 1, n, param, shadow, one_minus_decay);
}
