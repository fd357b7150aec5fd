/*
 * f32-vkeras.h - the EMA update micro-kernels with Keras 3's rounding (the
 * optimizers' use_ema; optax's `ema` keeps the same sum from zero).
 *
 * Every kernel computes, for i in [0, n):
 *     shadow[i] = fl(fl(decay * shadow[i]) + fl(one_minus_decay * param[i]))
 * four separately rounded float32 operations counting the two products and
 * the sum (Keras: `avg = m * avg + (1 - m) * var`). `decay` and
 * `one_minus_decay` are the caller's two float32 values, each used as given:
 * Keras rounds 1 - m to float32 itself, so neither is derived from the
 * other. Kernels trust their arguments. `param` may equal `shadow` (the
 * result is then fl(fl(decay * s) + fl(one_minus_decay * s)), which need not
 * be s).
 */
#ifndef EMA_KERNELS_F32_VKERAS_H
#define EMA_KERNELS_F32_VKERAS_H

#include <stddef.h>

#include "arch.h"

typedef void (*ema_f32_vkeras_ukernel_fn)(size_t n, const float* param, float* shadow,
                                          float decay, float one_minus_decay);

#define EMA_UKERNEL(arch, name, unroll)                                                \
    void name(size_t n, const float* param, float* shadow, float decay, float one_minus_decay);
#include "f32-vkeras.inc"
#undef EMA_UKERNEL

/* The fastest kernel this build has, as measured by bench/kernels.mjs
 * (npm run bench:kernels): in the SIMD128 build u32, as for f32-vupdate
 * (AMD EPYC Zen 3 VM, Node 20: +9% over u16 in L1, +7% in L2; from L3 and
 * memory all are within noise). */
#if EMA_ARCH_WASMSIMD
#define ema_f32_vkeras_ukernel_best ema_f32_vkeras_ukernel__wasmsimd_u32
#else
#define ema_f32_vkeras_ukernel_best ema_f32_vkeras_ukernel__scalar_u4
#endif

#endif /* EMA_KERNELS_F32_VKERAS_H */
