/*
 * test_kernels.c - every f32 vupdate micro-kernel this build has, against a
 * scalar reference with each float32 operation rounded on its own, bit for bit.
 *
 * Kernels come from f32-vupdate.inc; entries whose arch flag is 0 here (the
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
#include "f32-vupdate.h"
#include "test_util.h"

typedef struct kernel_info {
    const char* name;
    ema_f32_vupdate_ukernel_fn fn;
    size_t tile; /* elements per main-loop pass */
} kernel_info;

/* EMA_UKERNEL(arch, name, unroll) -> a table entry when arch expands to 1,
 * nothing when it expands to 0. The extra level lets `arch` expand first. */
#define KERNEL_ENTRY_IF_0(name, unroll)
#define KERNEL_ENTRY_IF_1(name, unroll) {#name, name, (unroll)},
#define KERNEL_ENTRY_PASTE(arch, name, unroll) KERNEL_ENTRY_IF_##arch(name, unroll)
#define KERNEL_ENTRY(arch, name, unroll) KERNEL_ENTRY_PASTE(arch, name, unroll)
#define EMA_UKERNEL(arch, name, unroll) KERNEL_ENTRY(arch, name, unroll)
static const kernel_info kKernels[] = {
#include "f32-vupdate.inc"
};
#undef EMA_UKERNEL

#define KERNEL_COUNT COUNT_OF(kKernels)

/* Elements kept before and after the shadow to catch stray writes. */
#define GUARD 19u
static const uint32_t kSentinelBits = 0x7fa5a5a5u; /* a signalling-NaN pattern */

/* Equal bits, or both NaN (NaN payloads may legitimately differ by operand order). */
static int same_f32(float a, float b) {
    return f32_bits(a) == f32_bits(b) || (isnan(a) && isnan(b));
}

/* The reference: shadow - w * (shadow - param), each operation rounded. Not
 * inlined: emcc 3.1.6 (LLVM 14) with -msimd128 can vectorise an inlined copy
 * and re-read its volatile temporaries out of order (v128.load32_splat). */
static __attribute__((noinline)) float reference(float shadow, float param, float weight) {
    volatile float difference = shadow - param;
    volatile float scaled = weight * difference;
    volatile float result = shadow - scaled;
    return result;
}

static const float kWeights[] = {
    0.0f, 1.0f, 0.5f, 1.0f - 0.9999f, 2.0f / 11.0f, 1.0f - 0.999f, 0.25f, 1.0f - 0.95f,
};
#define WEIGHT_COUNT COUNT_OF(kWeights)

/* Runs one kernel on n elements (shadow starting `misalign` floats past an
 * aligned block) and compares with the reference. Returns 1 if all matched. */
static int test_case(const kernel_info* kernel, size_t n, float weight, size_t misalign,
                     int allow_nonfinite) {
    /* param has exactly n elements so that ASan catches reads past its end. */
    float* param = calloc(n ? n : 1, sizeof(float));
    const size_t total = misalign + GUARD + n + GUARD;
    float* block = malloc(total * sizeof(float));
    float* expected = malloc((n ? n : 1) * sizeof(float));
    float* original = malloc((n ? n : 1) * sizeof(float));
    if (param == NULL || block == NULL || expected == NULL || original == NULL) {
        CHECK(0, "out of memory for n=%zu", n);
        free(param), free(block), free(expected), free(original);
        return 0;
    }
    for (size_t i = 0; i < total; i++) {
        block[i] = f32_from_bits(kSentinelBits);
    }
    float* shadow = block + misalign + GUARD;
    for (size_t i = 0; i < n; i++) {
        shadow[i] = test_random_value(allow_nonfinite);
        param[i] = test_random_value(allow_nonfinite);
        original[i] = shadow[i];
        expected[i] = reference(shadow[i], param[i], weight);
    }

    kernel->fn(n, param, shadow, weight);

    int ok = 1;
    size_t reported = 0;
    for (size_t i = 0; i < n; i++) {
        if (!same_f32(shadow[i], expected[i])) {
            ok = 0;
            if (reported++ < 4) {
                printf("  %s n=%zu w=%a misalign=%zu: index %zu shadow %08x param %08x "
                       "-> got %08x expected %08x\n",
                       kernel->name, n, (double)weight, misalign, i, f32_bits(original[i]),
                       f32_bits(param[i]), f32_bits(shadow[i]), f32_bits(expected[i]));
            }
        }
    }
    CHECK(ok, "%s n=%zu weight=%a misalign=%zu: %zu elements differ", kernel->name, n,
          (double)weight, misalign, reported);

    int guards_ok = 1;
    for (size_t i = 0; i < misalign + GUARD; i++) {
        guards_ok &= f32_bits(block[i]) == kSentinelBits;
    }
    for (size_t i = 0; i < GUARD; i++) {
        guards_ok &= f32_bits(shadow[n + i]) == kSentinelBits;
    }
    CHECK(guards_ok, "%s n=%zu: wrote outside [0, n)", kernel->name, n);

    free(param);
    free(block);
    free(expected);
    free(original);
    return ok && guards_ok;
}

/* param == shadow: every element keeps its bits (finite inputs only; for
 * infinities s - s is NaN). */
static void test_in_place(const kernel_info* kernel, size_t n, float weight) {
    float* shadow = malloc((n + GUARD) * sizeof(float));
    float* before = malloc((n ? n : 1) * sizeof(float));
    if (shadow == NULL || before == NULL) {
        CHECK(0, "out of memory for n=%zu", n);
        free(shadow), free(before);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        shadow[i] = test_random_value(0);
        before[i] = shadow[i];
    }
    for (size_t i = 0; i < GUARD; i++) {
        shadow[n + i] = f32_from_bits(kSentinelBits);
    }
    kernel->fn(n, shadow, shadow, weight);
    size_t first_bad = n;
    for (size_t i = 0; i < n && first_bad == n; i++) {
        if (f32_bits(shadow[i]) != f32_bits(before[i])) {
            first_bad = i;
        }
    }
    int guards_ok = 1;
    for (size_t i = 0; i < GUARD; i++) {
        guards_ok &= f32_bits(shadow[n + i]) == kSentinelBits;
    }
    CHECK(first_bad == n, "%s in place n=%zu w=%a: index %zu changed %08x -> %08x", kernel->name,
          n, (double)weight, first_bad, first_bad < n ? f32_bits(before[first_bad]) : 0u,
          first_bad < n ? f32_bits(shadow[first_bad]) : 0u);
    CHECK(guards_ok, "%s in place n=%zu: wrote past n", kernel->name, n);
    free(shadow);
    free(before);
}

static void test_zero_length(const kernel_info* kernel) {
    float shadow[4];
    float param[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    for (size_t i = 0; i < 4; i++) {
        shadow[i] = f32_from_bits(kSentinelBits);
    }
    kernel->fn(0, param, shadow, 0.5f);
    int ok = 1;
    for (size_t i = 0; i < 4; i++) {
        ok &= f32_bits(shadow[i]) == kSentinelBits;
    }
    CHECK(ok, "%s n=0 changed the shadow", kernel->name);
    /* n == 0 must not touch its pointers at all. */
    kernel->fn(0, NULL, NULL, 0.5f);
    CHECK(1, "%s n=0 with NULL pointers", kernel->name);
}

/* A few exact expectations that do not depend on the reference. */
static void test_known_values(const kernel_info* kernel) {
    float shadow[5] = {1.0f, -2.0f, 0.0f, 100.0f, -0.0f};
    const float param[5] = {3.0f, 2.0f, 0.0f, 100.0f, -0.0f};
    kernel->fn(5, param, shadow, 0.5f);
    const float expected[5] = {2.0f, 0.0f, 0.0f, 100.0f, -0.0f};
    int ok = 1;
    for (size_t i = 0; i < 5; i++) {
        ok &= f32_bits(shadow[i]) == f32_bits(expected[i]);
    }
    CHECK(ok, "%s known values with w=0.5", kernel->name);

    /* w = 1 copies the parameter (s - (s - p) is exact for these). */
    float shadow1[3] = {0.25f, -8.0f, 1024.0f};
    const float param1[3] = {0.75f, 4.0f, -1.0f};
    kernel->fn(3, param1, shadow1, 1.0f);
    CHECK(shadow1[0] == 0.75f && shadow1[1] == 4.0f && shadow1[2] == -1.0f,
          "%s w=1 copies the parameter", kernel->name);

    /* The classic non-associativity case: no fused multiply-add allowed. */
    float shadow2[1] = {1.0f};
    const float param2[1] = {0x1p-24f};
    kernel->fn(1, param2, shadow2, 1.0f - 0.9999f);
    CHECK(f32_bits(shadow2[0]) == f32_bits(reference(1.0f, 0x1p-24f, 1.0f - 0.9999f)),
          "%s rounding of 1 - w*(1 - 2^-24)", kernel->name);
}

static void test_kernel(const kernel_info* kernel) {
    const size_t tile = kernel->tile;
    printf("%s (tile %zu)\n", kernel->name, tile);
    const unsigned long failed_before = check_failed();

    /* Sizes: below a tile, exactly one, up to two, several tiles, and large. */
    size_t sizes[64];
    size_t size_count = 0;
    for (size_t n = 1; n <= 2 * tile && size_count < 48; n++) {
        sizes[size_count++] = n;
    }
    const size_t more[] = {3 * tile, 3 * tile + 1, 5 * tile - 1, 8 * tile, 8 * tile + 3,
                           1000,     1023,         4099,         65536 + 7};
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        sizes[size_count++] = more[i];
    }

    for (size_t s = 0; s < size_count; s++) {
        for (size_t w = 0; w < WEIGHT_COUNT; w++) {
            const size_t n = sizes[s];
            test_case(kernel, n, kWeights[w], 0, 0);
            test_case(kernel, n, kWeights[w], (n + w) % 4 + 1, 1); /* off the 16-byte grid */
        }
    }
    for (size_t w = 0; w < WEIGHT_COUNT; w++) {
        test_in_place(kernel, 1, kWeights[w]);
        test_in_place(kernel, tile + 1, kWeights[w]);
        test_in_place(kernel, 4099, kWeights[w]);
    }
    test_zero_length(kernel);
    test_known_values(kernel);
    printf("%s: %s\n", kernel->name, check_failed() == failed_before ? "ok" : "FAILED");
}

int main(void) {
    check_begin("test_kernels");
    seed_random(0x12345678u);
    CHECK(KERNEL_COUNT >= 1, "no kernel available natively");
    CHECK(kKernels[0].fn == ema_f32_vupdate_ukernel__scalar_u4, "the scalar kernel comes first");
    int best_listed = 0;
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        best_listed |= kKernels[k].fn == ema_f32_vupdate_ukernel_best;
        test_kernel(&kKernels[k]);
    }
    CHECK(best_listed, "ema_f32_vupdate_ukernel_best is one of the tested kernels");
    return check_end();
}
