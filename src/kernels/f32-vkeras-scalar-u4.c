#include <assert.h>
#include <stddef.h>

#include "f32-vkeras.h"

void ema_f32_vkeras_ukernel__scalar_u4(size_t n, const float* param, float* shadow, float decay,
                                       float one_minus_decay) {
    assert(n == 0 || (param != NULL && shadow != NULL));

    for (; n >= 4; n -= 4) {
        const float s0 = shadow[0], s1 = shadow[1], s2 = shadow[2], s3 = shadow[3];
        const float p0 = param[0], p1 = param[1], p2 = param[2], p3 = param[3];
        param += 4;

        /* Two products and a sum, each rounded to float32: the build uses
         * -ffp-contract=off so the compiler cannot fuse them. */
        const float k0 = decay * s0, k1 = decay * s1, k2 = decay * s2, k3 = decay * s3;
        const float t0 = one_minus_decay * p0, t1 = one_minus_decay * p1;
        const float t2 = one_minus_decay * p2, t3 = one_minus_decay * p3;

        shadow[0] = k0 + t0;
        shadow[1] = k1 + t1;
        shadow[2] = k2 + t2;
        shadow[3] = k3 + t3;
        shadow += 4;
    }
    for (; n != 0; n -= 1) {
        const float kept = decay * *shadow;
        *shadow++ = kept + one_minus_decay * *param++;
    }
}
