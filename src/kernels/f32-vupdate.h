/*
 * f32-vupdate.h - the EMA update micro-kernels.
 *
 * Every kernel computes, for i in [0, n):
 *     shadow[i] = shadow[i] - one_minus_decay * (shadow[i] - param[i])
 * as three separately rounded float32 operations, the order PyTorch uses for
 * LitEma (`shadow.sub_(one_minus_decay * (shadow - param))`). Kernels trust
 * their arguments: checking happens in the API layer (src/ema.c).
 * `param` may equal `shadow` (the result is then the shadow unchanged).
 */
#ifndef EMA_KERNELS_F32_VUPDATE_H
#define EMA_KERNELS_F32_VUPDATE_H

#include <stddef.h>

#include "arch.h"

typedef void (*ema_f32_vupdate_ukernel_fn)(size_t n, const float* param, float* shadow,
                                           float one_minus_decay);

#define EMA_UKERNEL(arch, name, unroll)                                                \
    void name(size_t n, const float* param, float* shadow, float one_minus_decay);
#include "f32-vupdate.inc"
#undef EMA_UKERNEL

/* The fastest kernel this build has, as measured by bench/kernels.mjs
 * (npm run bench:kernels): in the SIMD128 build u32 was never slower than u16
 * or u8 on cache-resident data and usually faster (medians of six runs on an
 * AMD EPYC VM under Node 20: +12% over u16 in L1, +6% in L2, +5% in L3); from
 * memory all are equal. u8 and u16 stay in the list as the comparison. */
#if EMA_ARCH_WASMSIMD
#define ema_f32_vupdate_ukernel_best ema_f32_vupdate_ukernel__wasmsimd_u32
#else
#define ema_f32_vupdate_ukernel_best ema_f32_vupdate_ukernel__scalar_u4
#endif

#endif /* EMA_KERNELS_F32_VUPDATE_H */
