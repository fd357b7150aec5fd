/*
 * f32-vfma-scalar-u4.c - the scalar vfma kernel: fma(w, p - s, s) for every
 * w (diffusers' foreach update), the fused body (f32-fused-scalar.h) with
 * the shadow as the addend.
 */
#include "f32-vfma.h"
#include "f32-fused-scalar.h"

void ema_f32_vfma_ukernel__scalar_u4(size_t n, const float* param, float* shadow,
                                     float one_minus_decay) {
    f32_fused_scalar(n, param, shadow, one_minus_decay, 1);
}
