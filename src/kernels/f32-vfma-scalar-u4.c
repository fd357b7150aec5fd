#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "f32-vfma.h"

void ema_f32_vfma_ukernel__scalar_u4(size_t n, const float* param, float* shadow,
                                     float one_minus_decay) {
    assert(n == 0 || (param != NULL && shadow != NULL));

    const float weight = one_minus_decay;
    const float margin_scale = ema_f32_margin_scale(weight);
    for (; n >= 4; n -= 4) {
        const float s0 = shadow[0], s1 = shadow[1], s2 = shadow[2], s3 = shadow[3];
        const float p0 = param[0], p1 = param[1], p2 = param[2], p3 = param[3];
        param += 4;

        const float d0 = p0 - s0, d1 = p1 - s1, d2 = p2 - s2, d3 = p3 - s3;
        /* Step 1 for all four without a branch (a native compiler makes it
         * one vector), then one test; the inputs stay in locals for the
         * rare redo, since param may be shadow. */
        float r0, r1, r2, r3;
        const uint32_t unsure = ema_fma_f32_bracketed(weight, margin_scale, d0, s0, &r0) |
                                ema_fma_f32_bracketed(weight, margin_scale, d1, s1, &r1) |
                                ema_fma_f32_bracketed(weight, margin_scale, d2, s2, &r2) |
                                ema_fma_f32_bracketed(weight, margin_scale, d3, s3, &r3);
        shadow[0] = r0;
        shadow[1] = r1;
        shadow[2] = r2;
        shadow[3] = r3;
        if (unsure != 0) {
            shadow[0] = ema_fma_f32_through_f64(weight, d0, s0);
            shadow[1] = ema_fma_f32_through_f64(weight, d1, s1);
            shadow[2] = ema_fma_f32_through_f64(weight, d2, s2);
            shadow[3] = ema_fma_f32_through_f64(weight, d3, s3);
        }
        shadow += 4;
    }
    for (; n != 0; n -= 1) {
        const float s = *shadow;
        *shadow++ = ema_fma_f32_exact(weight, *param++ - s, s);
    }
}
