/*
 * f32-vlerp.h - the EMA update micro-kernels with PyTorch's `lerp_` rounding.
 *
 * Every kernel computes, for i in [0, n), with w = one_minus_decay:
 *     d = fl(param[i] - shadow[i])
 *     shadow[i] = |w| < 0.5 ? fma(w, d, shadow[i]) : fma(-(1 - w), d, param[i])
 * where fl() rounds to float32 and fma() rounds once (ties to even), which is
 * what `shadow.lerp_(param, w)` does on PyTorch's CPU vector path and scalar
 * tail (timm ModelEmaV3, ema-pytorch). The fused multiply-add is emulated
 * exactly (fma-exact.h). Kernels trust their arguments. `param` may equal
 * `shadow` (then d is 0: a finite shadow keeps its value, though -0 can
 * become +0, as in PyTorch; an infinite one becomes NaN).
 */
#ifndef EMA_KERNELS_F32_VLERP_H
#define EMA_KERNELS_F32_VLERP_H

#include <stddef.h>

#include "arch.h"
#include "fma-exact.h"

typedef void (*ema_f32_vlerp_ukernel_fn)(size_t n, const float* param, float* shadow,
                                         float one_minus_decay);

#define EMA_UKERNEL(arch, name, unroll)                                                \
    void name(size_t n, const float* param, float* shadow, float one_minus_decay);
#include "f32-vlerp.inc"
#undef EMA_UKERNEL

/* PyTorch's choice, made once per call: |w| < 0.5 adds to the shadow,
 * otherwise (NaN too) to the parameter, with the weight -(1 - w). */
static inline int ema_f32_vlerp_from_shadow(float one_minus_decay) {
    return one_minus_decay < 0.5f && one_minus_decay > -0.5f;
}

/* The weight of the parameter branch. PyTorch computes p - d * (1 - w),
 * so it is -(1 - w), not w - 1: the two differ only at w == 1, in the sign
 * of the zero (with d = -0 and p = -0, PyTorch gives +0: timm's decay-0
 * steps). For w in [0.5, 1], 1 - w is exact. */
static inline float ema_f32_vlerp_param_weight(float one_minus_decay) {
    return -(1.0f - one_minus_decay);
}

/* The fastest kernel this build has, as measured by bench/kernels.mjs
 * (npm run bench:kernels): in the SIMD128 build u8 was the fastest at every
 * size (AMD EPYC Zen 3 VM, Node 20; at 1M parameters 2.29 G el/s against
 * 2.09 for u16 and 1.87 for u4): u16 makes V8 spill, u4 pays the per-pass
 * test for fewer elements. */
#if EMA_ARCH_WASMSIMD
#define ema_f32_vlerp_ukernel_best ema_f32_vlerp_ukernel__wasmsimd_u8
#else
#define ema_f32_vlerp_ukernel_best ema_f32_vlerp_ukernel__scalar_u4
#endif

#endif /* EMA_KERNELS_F32_VLERP_H */
