/*
 * test_vlerp_profiles.c - every vlerp-profiles micro-kernel this build has
 * (two shadows of one parameter in one pass, src/kernels/f32-vlerp-profiles.inc),
 * bit for bit against two calls of the scalar f32-vlerp kernel, which
 * test_fused.c checks against fmaf natively and against its committed table
 * in WebAssembly.
 *
 * Sizes hit every path: 0 to three tiles and more (the main loop, the pass
 * redone through float64, the one-vector loop, the scalar tail), around the
 * context's 1024-element profile block, with misaligned shadows in guarded
 * blocks (a write outside [0, n) shows) and the parameter allocated to
 * exactly n floats (ASan sees a read past it). Weights cover both of
 * lerp_'s branches in every combination, 0, 1, 0.5, NaN, and an EMA's small
 * weights; values include zeros, subnormals, extremes, infinities and NaN.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "f32-vlerp-profiles.h"
#include "f32-vlerp.h"
#include "test_util.h"

typedef struct kernel_info {
    const char* name;
    ema_f32_vlerp_profiles_ukernel_fn fn;
    size_t tile;
} kernel_info;

/* The kernels of this build (IF_ARCH: the lines whose arch flag is 1). */
static const kernel_info kKernels[] = {
#define EMA_UKERNEL(arch, name, unroll) IF_ARCH(arch, {#name, name, (unroll)},)
#include "f32-vlerp-profiles.inc"
#undef EMA_UKERNEL
};
#define KERNEL_COUNT COUNT_OF(kKernels)

/* (a, b) weight pairs: each branch of lerp_ for either shadow, the edges,
 * a subnormal weight, and the power recipe's mid-training weights
 * (sigma_rel 0.05 and 0.10). */
static const float kWeights[][2] = {
    /* Both in the shadow branch (the one-pass path of the SIMD kernels). */
    {1.8e-3f, 7.9e-4f},
    {0.49999997f, 0.3f},
    {0.0625f, 0.0625f},
    {1e-40f, 0.2f},
    {0.0f, 0.0f},
    /* Either in the parameter branch, or both. */
    {0.25f, 0.75f},
    {0.75f, 0.25f},
    {0.9f, 0.6f},
    {0.5f, 0.49999997f},
    {0.0f, 1.0f},
    {1.0f, 0.0f},
    {NAN, 0.1f},
    {1e-30f, 0.999f},
};

static const size_t kLongSizes[] = {1023, 1024, 1025, 2 * 1024 + 37};

/* One case: both shadows against two scalar f32-vlerp calls. */
static int run_case(const kernel_info* kernel, size_t n, size_t misalign, int allow_nonfinite,
                    float weight_a, float weight_b) {
    kernel_case a, b;
    if (!kernel_case_open(&a, n, misalign, allow_nonfinite, 0)) {
        return 0;
    }
    if (!kernel_case_open(&b, n, (misalign + 1) % 4, allow_nonfinite, 0)) {
        kernel_case_close(&a);
        return 0;
    }
    /* One parameter for both: b reports a's values in its messages. */
    memcpy(b.param_copy, a.param_copy, n * sizeof(float));
    memcpy(a.expected, a.original, n * sizeof(float));
    memcpy(b.expected, b.original, n * sizeof(float));
    ema_f32_vlerp_ukernel__scalar_u4(n, a.param, a.expected, weight_a);
    ema_f32_vlerp_ukernel__scalar_u4(n, a.param, b.expected, weight_b);
    kernel->fn(n, a.param, a.shadow, b.shadow, weight_a, weight_b);

    char label[160];
    snprintf(label, sizeof label, "%s n=%zu misalign=%zu weights %g, %g: shadow a", kernel->name, n,
             misalign, (double)weight_a, (double)weight_b);
    const int a_ok = kernel_case_check(&a, label);
    label[strlen(label) - 1] = 'b';
    const int b_ok = kernel_case_check(&b, label);
    kernel_case_close(&a);
    kernel_case_close(&b);
    return a_ok && b_ok;
}

static void test_kernel(const kernel_info* kernel) {
    const unsigned long failed_before = check_failed();
    for (size_t w = 0; w < COUNT_OF(kWeights); w++) {
        for (size_t n = 0; n <= 3 * kernel->tile + 3; n++) {
            for (size_t misalign = 0; misalign < 4; misalign++) {
                if (!run_case(kernel, n, misalign, (n + misalign) % 2, kWeights[w][0],
                              kWeights[w][1])) {
                    return;
                }
            }
        }
        for (size_t i = 0; i < COUNT_OF(kLongSizes); i++) {
            if (!run_case(kernel, kLongSizes[i], i % 4, 1, kWeights[w][0], kWeights[w][1]) ||
                !run_case(kernel, kLongSizes[i], 0, 0, kWeights[w][0], kWeights[w][1])) {
                return;
            }
        }
    }
    /* Random weights in [0, 1]: either branch, any combination. */
    for (int trial = 0; trial < 200; trial++) {
        const float weight_a = (float)(next_random() >> 8) * 0x1p-24f;
        const float weight_b = (float)(next_random() >> 8) * 0x1p-24f;
        const size_t n = 1 + next_random() % 300;
        if (!run_case(kernel, n, next_random() % 4, trial % 3 == 0, weight_a, weight_b)) {
            return;
        }
    }
    CHECK(check_failed() == failed_before, "%s: every case", kernel->name);
}

int main(void) {
    check_begin("test_vlerp_profiles");
    int best_listed = 0;
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        best_listed |= kKernels[k].fn == ema_f32_vlerp_profiles_ukernel_best;
    }
    CHECK(best_listed, "ema_f32_vlerp_profiles_ukernel_best is one of the tested kernels");
    seed_random(0x13579bdfu);
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        test_kernel(&kKernels[k]);
    }
    return check_end();
}
