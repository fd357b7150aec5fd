/*
 * f32-vfma.h - the EMA update micro-kernels with one rounding of the step:
 * diffusers' EMAModel with foreach=True (`torch._foreach_sub_(s, s - p,
 * alpha=w)`, which is `fma(s - p, -w, s)`).
 *
 * Every kernel computes, for i in [0, n), with w = one_minus_decay:
 *     shadow[i] = fma(w, fl(param[i] - shadow[i]), shadow[i])
 * where fl() rounds to float32 and fma() rounds once (ties to even): the
 * f32-vlerp kernels' |w| < 0.5 branch, for every w. The fused multiply-add is
 * emulated exactly (fma-exact.h). Kernels trust their arguments. `param` may
 * equal `shadow` (a finite shadow keeps its value, though -0 can become +0;
 * an infinite one becomes NaN).
 */
#ifndef EMA_KERNELS_F32_VFMA_H
#define EMA_KERNELS_F32_VFMA_H

#include <stddef.h>

#include "arch.h"
#include "fma-exact.h"

typedef void (*ema_f32_vfma_ukernel_fn)(size_t n, const float* param, float* shadow,
                                        float one_minus_decay);

#define EMA_UKERNEL(arch, name, unroll)                                                \
    void name(size_t n, const float* param, float* shadow, float one_minus_decay);
#include "f32-vfma.inc"
#undef EMA_UKERNEL

/* The fastest kernel this build has, as measured by bench/kernels.mjs
 * (npm run bench:kernels): in the SIMD128 build u8 was the fastest at every
 * size (AMD EPYC Zen 3 VM, Node 20; at 1M parameters 2.42 G el/s against
 * 2.15 for u16 and 1.70 for u4), as for f32-vlerp. */
#if EMA_ARCH_WASMSIMD
#define ema_f32_vfma_ukernel_best ema_f32_vfma_ukernel__wasmsimd_u8
#else
#define ema_f32_vfma_ukernel_best ema_f32_vfma_ukernel__scalar_u4
#endif

#endif /* EMA_KERNELS_F32_VFMA_H */
