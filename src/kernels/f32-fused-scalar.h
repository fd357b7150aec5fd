/*
 * f32-fused-scalar.h - the one body of the scalar kernels whose update is a
 * single fused multiply-add, fma(coefficient, p - s, c) with c = s
 * (`from_shadow`) or c = p: f32-vlerp (PyTorch lerp_) and f32-vfma
 * (diffusers foreach). Four elements are bracketed at once (fma-exact.h) and
 * redone through float64 only when the bracket cannot settle them. Included
 * by the two kernel files only.
 */
#ifndef EMA_KERNELS_F32_FUSED_SCALAR_H
#define EMA_KERNELS_F32_FUSED_SCALAR_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "fma-exact.h"

static inline __attribute__((always_inline)) void f32_fused_scalar(size_t n, const float* param, float* shadow, float coefficient,
                                    int from_shadow) {
    assert(n == 0 || (param != NULL && shadow != NULL));

    const float margin_scale = ema_f32_margin_scale(coefficient);
    for (; n >= 4; n -= 4) {
        const float s0 = shadow[0], s1 = shadow[1], s2 = shadow[2], s3 = shadow[3];
        const float p0 = param[0], p1 = param[1], p2 = param[2], p3 = param[3];
        param += 4;

        const float d0 = p0 - s0, d1 = p1 - s1, d2 = p2 - s2, d3 = p3 - s3;
        const float c0 = from_shadow ? s0 : p0, c1 = from_shadow ? s1 : p1;
        const float c2 = from_shadow ? s2 : p2, c3 = from_shadow ? s3 : p3;
        /* Step 1 for all four without a branch (a native compiler makes it
         * one vector), then one test; the inputs stay in locals for the
         * rare redo, since param may be shadow. */
        float r0, r1, r2, r3;
        const uint32_t unsure = ema_fma_f32_bracketed(coefficient, margin_scale, d0, c0, &r0) |
                                ema_fma_f32_bracketed(coefficient, margin_scale, d1, c1, &r1) |
                                ema_fma_f32_bracketed(coefficient, margin_scale, d2, c2, &r2) |
                                ema_fma_f32_bracketed(coefficient, margin_scale, d3, c3, &r3);
        shadow[0] = r0;
        shadow[1] = r1;
        shadow[2] = r2;
        shadow[3] = r3;
        if (unsure != 0) {
            shadow[0] = ema_fma_f32_through_f64(coefficient, d0, c0);
            shadow[1] = ema_fma_f32_through_f64(coefficient, d1, c1);
            shadow[2] = ema_fma_f32_through_f64(coefficient, d2, c2);
            shadow[3] = ema_fma_f32_through_f64(coefficient, d3, c3);
        }
        shadow += 4;
    }
    for (; n != 0; n -= 1) {
        const float s = *shadow;
        const float p = *param++;
        *shadow++ = ema_fma_f32_exact(coefficient, p - s, from_shadow ? s : p);
    }
}

#endif /* EMA_KERNELS_F32_FUSED_SCALAR_H */
