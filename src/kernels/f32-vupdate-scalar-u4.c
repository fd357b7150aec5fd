#include <assert.h>
#include <stddef.h>

#include "f32-vupdate.h"

void ema_f32_vupdate_ukernel__scalar_u4(size_t n, const float* param, float* shadow,
                                        float one_minus_decay) {
    assert(n == 0 || (param != NULL && shadow != NULL));

    const float weight = one_minus_decay;
    for (; n >= 4; n -= 4) {
        const float s0 = shadow[0], s1 = shadow[1], s2 = shadow[2], s3 = shadow[3];
        const float p0 = param[0], p1 = param[1], p2 = param[2], p3 = param[3];
        param += 4;

        /* Each line is sub, mul, sub with float32 rounding after each one: the
         * build uses -ffp-contract=off so the compiler cannot fuse them. */
        const float d0 = s0 - p0, d1 = s1 - p1, d2 = s2 - p2, d3 = s3 - p3;
        const float w0 = weight * d0, w1 = weight * d1, w2 = weight * d2, w3 = weight * d3;

        shadow[0] = s0 - w0;
        shadow[1] = s1 - w1;
        shadow[2] = s2 - w2;
        shadow[3] = s3 - w3;
        shadow += 4;
    }
    for (; n != 0; n -= 1) {
        const float s = *shadow;
        const float d = s - *param++;
        *shadow++ = s - weight * d;
    }
}
