/*
 * test_kernels.c - every unfused-rounding micro-kernel this build has, against
 * a scalar reference with each float32 operation rounded on its own, bit for
 * bit: f32-vupdate (LitEma's `s - w * (s - p)`, f32-vupdate.inc) and
 * f32-vkeras (Keras 3's `decay * s + w * p`, f32-vkeras.inc). Plain float
 * arithmetic is exact to the bit everywhere (-ffp-contract=off), so the same
 * reference serves natively and in WebAssembly. The fused-rounding kernels
 * have their own test, test_fused.c.
 *
 * Kernels come from the lists; entries whose arch flag is 0 here (the
 * wasmsimd kernels in a native or scalar build) are skipped at preprocessing
 * time, so they are never referenced. scripts/test-c.sh runs this natively
 * under ASan and UBSan, and compiled to WebAssembly (both builds) under Node.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "f32-vkeras.h"
#include "f32-vupdate.h"
#include "test_util.h"

/* A kernel of either family: `update` (vupdate) takes the weight
 * one_minus_decay alone, `keras` (vkeras) takes decay and one_minus_decay. */
typedef struct kernel_info {
    const char* name;
    size_t tile; /* elements per main-loop pass */
    ema_f32_vupdate_ukernel_fn update;
    ema_f32_vkeras_ukernel_fn keras;
} kernel_info;

/* The kernels of this build (IF_ARCH: the lines whose arch flag is 1). */
static const kernel_info kKernels[] = {
#define EMA_UKERNEL(arch, name, unroll) IF_ARCH(arch, {#name, (unroll), .update = name},)
#include "f32-vupdate.inc"
#undef EMA_UKERNEL
#define EMA_UKERNEL(arch, name, unroll) IF_ARCH(arch, {#name, (unroll), .keras = name},)
#include "f32-vkeras.inc"
#undef EMA_UKERNEL
};
#define KERNEL_COUNT COUNT_OF(kKernels)

/* What a zero-length call must leave in place: a signalling-NaN pattern. */
static const uint32_t kSentinelBits = 0x7fa5a5a5u;

/* A call's two weights: vupdate uses one_minus_decay alone; vkeras both, as
 * given (some pairs below do not sum to 1, which it must not notice). */
typedef struct weights {
    float decay, one_minus_decay;
} weights;

static const weights kWeights[] = {
    {1.0f, 0.0f},   {0.0f, 1.0f},           {0.5f, 0.5f},
    {0.9999f, 1.0f - 0.9999f},              {0.9999f, 1e-4f},
    {9.0f / 11.0f, 2.0f / 11.0f},           {0.999f, 1.0f - 0.999f},
    {0.75f, 0.25f}, {0.95f, 1.0f - 0.95f},  {0.75f, 0.5f},
};
#define WEIGHT_COUNT COUNT_OF(kWeights)

static void run(const kernel_info* kernel, size_t n, const float* param, float* shadow,
                weights w) {
    if (kernel->keras != NULL) {
        kernel->keras(n, param, shadow, w.decay, w.one_minus_decay);
    } else {
        kernel->update(n, param, shadow, w.one_minus_decay);
    }
}

/* The references, each operation rounded on its own. Not inlined: emcc
 * 3.1.6 (LLVM 14) with -msimd128 can vectorise an inlined copy and re-read
 * its volatile temporaries out of order (v128.load32_splat). */
static __attribute__((noinline)) float reference_update(float shadow, float param, float weight) {
    volatile float difference = shadow - param;
    volatile float scaled = weight * difference;
    volatile float result = shadow - scaled;
    return result;
}

static __attribute__((noinline)) float reference_keras(float shadow, float param, weights w) {
    volatile float kept = w.decay * shadow;
    volatile float added = w.one_minus_decay * param;
    volatile float result = kept + added;
    return result;
}

static float reference(const kernel_info* kernel, float shadow, float param, weights w) {
    return kernel->keras != NULL ? reference_keras(shadow, param, w)
                                 : reference_update(shadow, param, w.one_minus_decay);
}

/* Runs one kernel on n elements (shadow starting `misalign` floats past an
 * aligned block, param the shadow itself when `in_place`) and compares with
 * the reference. */
static void test_case(const kernel_info* kernel, size_t n, weights w, size_t misalign,
                      int allow_nonfinite, int in_place) {
    kernel_case c;
    if (!kernel_case_open(&c, n, misalign, allow_nonfinite, in_place)) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        c.expected[i] = reference(kernel, c.shadow[i], c.param[i], w);
    }
    run(kernel, n, c.param, c.shadow, w);
    char label[160];
    snprintf(label, sizeof label, "%s n=%zu decay=%a w=%a misalign=%zu%s", kernel->name, n,
             (double)w.decay, (double)w.one_minus_decay, misalign, in_place ? " in place" : "");
    kernel_case_check(&c, label);
    /* vupdate in place keeps every finite shadow's bits (s - s is +0). */
    if (in_place && kernel->update != NULL && !allow_nonfinite) {
        CHECK(memcmp(c.shadow, c.original, n * sizeof(float)) == 0,
              "%s in place n=%zu changed a shadow", kernel->name, n);
    }
    kernel_case_close(&c);
}

static void test_zero_length(const kernel_info* kernel) {
    float shadow[4];
    float param[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    for (size_t i = 0; i < 4; i++) {
        shadow[i] = f32_from_bits(kSentinelBits);
    }
    const weights half = {0.5f, 0.5f};
    run(kernel, 0, param, shadow, half);
    int ok = 1;
    for (size_t i = 0; i < 4; i++) {
        ok &= f32_bits(shadow[i]) == kSentinelBits;
    }
    CHECK(ok, "%s n=0 changed the shadow", kernel->name);
    /* n == 0 must not touch its pointers at all. */
    run(kernel, 0, NULL, NULL, half);
    CHECK(1, "%s n=0 with NULL pointers", kernel->name);
}

/* Zeros of both signs, every combination, and subnormals. */
static void test_zeros_and_subnormals(const kernel_info* kernel) {
    static const float kShadow[8] = {0.0f, 0.0f, -0.0f, -0.0f, 1e-45f, -1e-45f, 2.5e-39f, -0.0f};
    static const float kParam[8] = {0.0f, -0.0f, 0.0f, -0.0f, -1e-45f, 3e-45f, -2.5e-39f, 1e-45f};
    for (size_t k = 0; k < WEIGHT_COUNT; k++) {
        float shadow[8], expected[8];
        for (size_t i = 0; i < 8; i++) {
            shadow[i] = kShadow[i];
            expected[i] = reference(kernel, kShadow[i], kParam[i], kWeights[k]);
        }
        run(kernel, 8, kParam, shadow, kWeights[k]);
        CHECK(memcmp(shadow, expected, sizeof shadow) == 0,
              "%s zeros and subnormals, decay=%a weight=%a", kernel->name,
              (double)kWeights[k].decay, (double)kWeights[k].one_minus_decay);
    }
}

/* A few exact expectations that do not depend on the reference. */
static void test_known_values_update(const kernel_info* kernel) {
    float shadow[5] = {1.0f, -2.0f, 0.0f, 100.0f, -0.0f};
    const float param[5] = {3.0f, 2.0f, 0.0f, 100.0f, -0.0f};
    kernel->update(5, param, shadow, 0.5f);
    const float expected[5] = {2.0f, 0.0f, 0.0f, 100.0f, -0.0f};
    CHECK(memcmp(shadow, expected, sizeof shadow) == 0, "%s known values with w=0.5",
          kernel->name);

    /* w = 1 copies the parameter (s - (s - p) is exact for these). */
    float shadow1[3] = {0.25f, -8.0f, 1024.0f};
    const float param1[3] = {0.75f, 4.0f, -1.0f};
    kernel->update(3, param1, shadow1, 1.0f);
    CHECK(shadow1[0] == 0.75f && shadow1[1] == 4.0f && shadow1[2] == -1.0f,
          "%s w=1 copies the parameter", kernel->name);

    /* The classic non-associativity case: no fused multiply-add allowed. */
    float shadow2[1] = {1.0f};
    const float param2[1] = {0x1p-24f};
    kernel->update(1, param2, shadow2, 1.0f - 0.9999f);
    CHECK(f32_bits(shadow2[0]) == f32_bits(reference_update(1.0f, 0x1p-24f, 1.0f - 0.9999f)),
          "%s rounding of 1 - w*(1 - 2^-24)", kernel->name);
}

static void test_known_values_keras(const kernel_info* kernel) {
    float shadow[5] = {1.0f, -2.0f, 0.0f, 100.0f, -0.0f};
    const float param[5] = {3.0f, 2.0f, 0.0f, 100.0f, -0.0f};
    kernel->keras(5, param, shadow, 0.5f, 0.5f);
    const float expected[5] = {2.0f, 0.0f, 0.0f, 100.0f, -0.0f};
    CHECK(memcmp(shadow, expected, sizeof shadow) == 0, "%s known values with 0.5, 0.5",
          kernel->name);

    /* Each weight as given: 0.75 * 4 + 0.5 * 2 = 4 (a kernel that derived
     * one weight from the other would give 3.5). */
    float shadow1[1] = {4.0f};
    const float param1[1] = {2.0f};
    kernel->keras(1, param1, shadow1, 0.75f, 0.5f);
    CHECK(shadow1[0] == 4.0f, "%s uses decay and one_minus_decay as given (got %a)",
          kernel->name, (double)shadow1[0]);

    /* decay 0, weight 1 copies the parameter; decay 1, weight 0 keeps. */
    float shadow2[3] = {0.25f, -8.0f, 1024.0f};
    const float param2[3] = {0.75f, 4.0f, -1.0f};
    kernel->keras(3, param2, shadow2, 0.0f, 1.0f);
    CHECK(memcmp(shadow2, param2, sizeof shadow2) == 0, "%s (0, 1) copies the parameter",
          kernel->name);
    kernel->keras(3, shadow2, shadow2, 1.0f, 0.0f);
    CHECK(memcmp(shadow2, param2, sizeof shadow2) == 0, "%s (1, 0) keeps the shadow",
          kernel->name);

    /* Keras' rounding, not LitEma's: here the two differ by an ulp. */
    float shadow3[1] = {1.0f};
    const float param3[1] = {0x1.02e61p0f};
    const weights w = {0.9999f, 1.0f - 0.9999f};
    kernel->keras(1, param3, shadow3, w.decay, w.one_minus_decay);
    CHECK(f32_bits(shadow3[0]) == f32_bits(reference_keras(1.0f, 0x1.02e61p0f, w)) &&
              f32_bits(shadow3[0]) != f32_bits(reference_update(1.0f, 0x1.02e61p0f,
                                                                w.one_minus_decay)),
          "%s rounds as Keras does, not as LitEma (got %a)", kernel->name, (double)shadow3[0]);
}

static void test_kernel(const kernel_info* kernel) {
    const size_t tile = kernel->tile;
    printf("%s (tile %zu)\n", kernel->name, tile);
    const unsigned long failed_before = check_failed();

    /* Sizes: 0 to 70 (below a tile, exactly one, up to two, several), then
     * multiples of the tile and large ones. */
    size_t sizes[96];
    size_t size_count = 0;
    for (size_t n = 0; n <= 70; n++) {
        sizes[size_count++] = n;
    }
    const size_t more[] = {3 * tile, 3 * tile + 1, 5 * tile - 1, 8 * tile, 8 * tile + 3,
                           1000,     1023,         4099,         65536 + 7};
    for (size_t i = 0; i < COUNT_OF(more); i++) {
        sizes[size_count++] = more[i];
    }

    for (size_t s = 0; s < size_count; s++) {
        for (size_t w = 0; w < WEIGHT_COUNT; w++) {
            const size_t n = sizes[s];
            test_case(kernel, n, kWeights[w], 0, 0, 0);
            test_case(kernel, n, kWeights[w], (n + w) % 4 + 1, 1, 0); /* off the 16-byte grid */
        }
    }
    for (size_t w = 0; w < WEIGHT_COUNT; w++) {
        test_case(kernel, 1, kWeights[w], 0, 0, 1);
        test_case(kernel, tile + 1, kWeights[w], 0, 0, 1);
        test_case(kernel, 4099, kWeights[w], 0, 0, 1);
        test_case(kernel, 4099, kWeights[w], 1, 1, 1);
    }
    test_zero_length(kernel);
    test_zeros_and_subnormals(kernel);
    if (kernel->keras != NULL) {
        test_known_values_keras(kernel);
    } else {
        test_known_values_update(kernel);
    }
    printf("%s: %s\n", kernel->name, check_failed() == failed_before ? "ok" : "FAILED");
}

int main(void) {
    check_begin("test_kernels");
    seed_random(0x12345678u);
    CHECK(KERNEL_COUNT >= 2, "no kernel available");
    CHECK(kKernels[0].update == ema_f32_vupdate_ukernel__scalar_u4,
          "the scalar vupdate kernel comes first");
    int update_best_listed = 0, keras_best_listed = 0;
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        update_best_listed |= kKernels[k].update == ema_f32_vupdate_ukernel_best;
        keras_best_listed |= kKernels[k].keras == ema_f32_vkeras_ukernel_best;
        test_kernel(&kKernels[k]);
    }
    CHECK(update_best_listed, "ema_f32_vupdate_ukernel_best is one of the tested kernels");
    CHECK(keras_best_listed, "ema_f32_vkeras_ukernel_best is one of the tested kernels");
    return check_end();
}
