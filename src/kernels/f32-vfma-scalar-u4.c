#include <assert.h>
#include <stddef.h>

#include "f32-vfma.h"

void ema_f32_vfma_ukernel__scalar_u4(size_t n, const float* param, float* shadow,
                                     float one_minus_decay) {
    assert(n == 0 || (param != NULL && shadow != NULL));

    const float weight = one_minus_decay;
    for (; n >= 4; n -= 4) {
        const float s0 = shadow[0], s1 = shadow[1], s2 = shadow[2], s3 = shadow[3];
        const float p0 = param[0], p1 = param[1], p2 = param[2], p3 = param[3];
        param += 4;

        const float d0 = p0 - s0, d1 = p1 - s1, d2 = p2 - s2, d3 = p3 - s3;

        shadow[0] = ema_fma_f32_exact(weight, d0, s0);
        shadow[1] = ema_fma_f32_exact(weight, d1, s1);
        shadow[2] = ema_fma_f32_exact(weight, d2, s2);
        shadow[3] = ema_fma_f32_exact(weight, d3, s3);
        shadow += 4;
    }
    for (; n != 0; n -= 1) {
        const float s = *shadow;
        *shadow++ = ema_fma_f32_exact(weight, *param++ - s, s);
    }
}
