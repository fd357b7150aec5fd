/*
 * f32-vlerp-profiles.h - PyTorch's `lerp_` update of two EMAs of the same
 * parameter in one pass: the power-function profiles of one context
 * (post-hoc EMA keeps two, of different widths).
 *
 * Every kernel computes, for i in [0, n), what two f32-vlerp kernel calls
 * compute (f32-vlerp.h), bit for bit:
 *     shadow_a[i] <- lerp_(shadow_a[i], param[i], one_minus_decay_a)
 *     shadow_b[i] <- lerp_(shadow_b[i], param[i], one_minus_decay_b)
 * The fused multiply-add is exact in both (fma-exact.h), so which of its
 * steps settles an element does not change the bits. Each parameter vector is
 * loaded once for both shadows: with the shadows far past the caches the
 * update is bound by memory, and two separate calls read the parameter twice
 * (and, blocked so that the parameter stays in L1, break the streams the
 * prefetchers follow). Kernels trust their arguments: the three arrays must
 * not overlap (unlike f32-vlerp's, `param` may not be a shadow).
 */
#ifndef EMA_KERNELS_F32_VLERP_PROFILES_H
#define EMA_KERNELS_F32_VLERP_PROFILES_H

#include <stddef.h>

#include "arch.h"
#include "f32-vlerp.h"

typedef void (*ema_f32_vlerp_profiles_ukernel_fn)(size_t n, const float* param, float* shadow_a,
                                                  float* shadow_b, float one_minus_decay_a,
                                                  float one_minus_decay_b);

#define EMA_UKERNEL(arch, name, unroll)                                       \
    void name(size_t n, const float* param, float* shadow_a, float* shadow_b, \
              float one_minus_decay_a, float one_minus_decay_b);
#include "f32-vlerp-profiles.inc"
#undef EMA_UKERNEL

/* The fastest kernel this build has, measured through a context's update
 * (bench/profiles.mjs with a build that calls it; AMD EPYC Zen 3 VM, Node
 * 20): in the SIMD128 build u8 and u4 tie at 16M parameters (bound by
 * memory), and u8 is faster at 1M (resident update of two profiles 1.49 ms
 * against 1.75). */
#if EMA_ARCH_WASMSIMD
#define ema_f32_vlerp_profiles_ukernel_best ema_f32_vlerp_profiles_ukernel__wasmsimd_u8
#else
#define ema_f32_vlerp_profiles_ukernel_best ema_f32_vlerp_profiles_ukernel__scalar_u4
#endif

#endif /* EMA_KERNELS_F32_VLERP_PROFILES_H */
