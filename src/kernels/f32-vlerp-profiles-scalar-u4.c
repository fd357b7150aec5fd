/*
 * f32-vlerp-profiles-scalar-u4.c - the scalar vlerp-profiles kernel: the
 * scalar f32-vlerp kernel over a block of the parameter for one shadow, then
 * over the same block, from L1, for the other. Scalar code is bound by its
 * arithmetic, not by memory, so there is nothing to gain from one loop over
 * both shadows, and in Wasm such a loop ran 12-15% slower than this (more
 * values live than an engine's registers hold).
 */
#include <assert.h>

#include "f32-vlerp-profiles.h"

/* Elements of the parameter per block: 4 KiB, inside L1. */
#define BLOCK 1024u

void ema_f32_vlerp_profiles_ukernel__scalar_u4(size_t n, const float* param, float* shadow_a,
                                               float* shadow_b, float one_minus_decay_a,
                                               float one_minus_decay_b) {
    assert(n == 0 || (param != NULL && shadow_a != NULL && shadow_b != NULL));

    while (n != 0) {
        const size_t count = n < BLOCK ? n : BLOCK;
        ema_f32_vlerp_ukernel__scalar_u4(count, param, shadow_a, one_minus_decay_a);
        ema_f32_vlerp_ukernel__scalar_u4(count, param, shadow_b, one_minus_decay_b);
        param += count;
        shadow_a += count;
        shadow_b += count;
        n -= count;
    }
}
