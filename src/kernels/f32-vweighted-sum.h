/*
 * f32-vweighted-sum.h - the post-hoc EMA's reconstruction micro-kernels: a
 * mix of float32 snapshots with float64 coefficients.
 *
 * Every kernel computes, for j in [0, n):
 *     acc = 0.0
 *     for i = 0, 1, ..., count - 1:  acc = acc + coefficients[i] * (double)inputs[i * stride + j]
 *     out[j] = (float)acc
 * in float64, the product and the sum each rounded (no fused multiply-add),
 * in that order of i, and rounded to float32 once at the end (ties to even).
 * The sum starts from +0.0, so a sum of zeros of either sign is +0. Row i of
 * the inputs starts at inputs + i * stride. Kernels trust their arguments:
 * count >= 1, stride >= n, and `out` overlaps no input.
 */
#ifndef EMA_KERNELS_F32_VWEIGHTED_SUM_H
#define EMA_KERNELS_F32_VWEIGHTED_SUM_H

#include <stddef.h>

#include "arch.h"

typedef void (*ema_f32_vweighted_sum_ukernel_fn)(size_t n, size_t count, const float* inputs,
                                                 size_t stride, const double* coefficients,
                                                 float* out);

#define EMA_UKERNEL(arch, name, unroll)                                                  \
    void name(size_t n, size_t count, const float* inputs, size_t stride,                \
              const double* coefficients, float* out);
#include "f32-vweighted-sum.inc"
#undef EMA_UKERNEL

/* The kernel this build uses. At a million elements every variant streams
 * (count + 1) x 4 bytes per element from memory and they run alike (2-core
 * AMD EPYC VM, Node 20, best of 3 runs, G elements/s for count 2 to 8: u8
 * 1.6 0.9 0.8 0.55 0.45 0.41 0.34, u16 1.4 0.9 0.8 0.53 0.40 0.32 0.28,
 * u4 1.0 0.73 0.62 0.47 0.33 0.31 0.24, the scalar build 0.88 to 0.21). In
 * L2 (n = 8192) u8 and u16 are within noise of each other and 30-50% ahead
 * of u4; u8 holds half as many accumulators. */
#if EMA_ARCH_WASMSIMD
#define ema_f32_vweighted_sum_ukernel_best ema_f32_vweighted_sum_ukernel__wasmsimd_u8
#else
#define ema_f32_vweighted_sum_ukernel_best ema_f32_vweighted_sum_ukernel__scalar_u4
#endif

#endif /* EMA_KERNELS_F32_VWEIGHTED_SUM_H */
