/*
 * test_lerp.c - every f32 vlerp micro-kernel (PyTorch's `lerp_` rounding,
 * src/kernels/f32-vlerp.inc) this build has, bit for bit.
 *
 * The reference:
 *   - natively: glibc's fmaf(), which is correctly rounded with or without
 *     hardware FMA; every kernel, the exact-fma helper on random bit
 *     patterns, freshly constructed ties, and the committed table below are
 *     compared with it;
 *   - in the WebAssembly builds (no trustworthy fmaf: Emscripten 3.1.6's is
 *     wrong on ties): the committed table test/c/lerp_cases.inc of inputs and
 *     expected bits, which this program wrote natively from fmaf
 *     (test_lerp --print-table > test/c/lerp_cases.inc), checked against every
 *     kernel including the scalar one; the random-size tests then use the
 *     scalar kernel, one element at a time, as the reference.
 * The table holds ties constructed on purpose (a * b + c exactly halfway
 * between two floats, and halfway to float64's precision so that rounding
 * through float64 alone would go wrong), subnormal ties, and every
 * combination of zeros, infinities and NaN.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "f32-vlerp.h"
#include "test_util.h"

typedef struct kernel_info {
    const char* name;
    ema_f32_vlerp_ukernel_fn fn;
    size_t tile;
} kernel_info;

#define KERNEL_ENTRY_IF_0(name, unroll)
#define KERNEL_ENTRY_IF_1(name, unroll) {#name, name, (unroll)},
#define KERNEL_ENTRY_PASTE(arch, name, unroll) KERNEL_ENTRY_IF_##arch(name, unroll)
#define KERNEL_ENTRY(arch, name, unroll) KERNEL_ENTRY_PASTE(arch, name, unroll)
#define EMA_UKERNEL(arch, name, unroll) KERNEL_ENTRY(arch, name, unroll)
static const kernel_info kKernels[] = {
#include "f32-vlerp.inc"
};
#undef EMA_UKERNEL
#define KERNEL_COUNT COUNT_OF(kKernels)

typedef struct lerp_case {
    uint32_t shadow, param, weight, expected; /* float32 bits */
} lerp_case;

static const lerp_case kTable[] = {
#include "lerp_cases.inc"
};

#define GUARD 19u
static const uint32_t kSentinelBits = 0x7fa5a5a5u;

static int same_f32(float a, float b) {
    return f32_bits(a) == f32_bits(b) || (isnan(a) && isnan(b));
}

#if defined(__EMSCRIPTEN__)
#define REFERENCE_NAME "the scalar kernel (checked against the table)"
static float reference(float shadow, float param, float weight) {
    float s = shadow;
    ema_f32_vlerp_ukernel__scalar_u4(1, &param, &s, weight);
    return s;
}
#else
#define REFERENCE_NAME "glibc fmaf"
/* PyTorch's lerp: d = fl(p - s); |w| < 0.5 ? fma(w, d, s) : fma(fl(w - 1), d, p). */
static __attribute__((noinline)) float reference(float shadow, float param, float weight) {
    volatile float difference = param - shadow;
    if (fabsf(weight) < 0.5f) {
        return fmaf(weight, difference, shadow);
    }
    volatile float coefficient = weight - 1.0f;
    return fmaf(coefficient, difference, param);
}
#endif

/* ---- Constructed ties (native only: they need fmaf for the expectation) ---- */
#if !defined(__EMSCRIPTEN__)

static float signed_random(float x) {
    return (next_random() & 1) ? -x : x;
}

static uint32_t random_in(uint32_t lo, uint32_t hi) { /* inclusive */
    return lo + next_random() % (hi - lo + 1);
}

static unsigned bit_length(uint32_t x) {
    unsigned n = 0;
    while (x != 0) {
        n++;
        x >>= 1;
    }
    return n;
}

/* Accepts a case whose inputs make d = fl(p - s) the intended d. */
static int accept(float s, float p, float w, float d, lerp_case* out) {
    volatile float check = p - s;
    if (!isfinite(s) || !isfinite(p) || !isfinite(w) || check != d ||
        f32_bits(check) != f32_bits(d)) {
        return 0;
    }
    out->shadow = f32_bits(s);
    out->param = f32_bits(p);
    out->weight = f32_bits(w);
    out->expected = f32_bits(reference(s, p, w));
    return 1;
}

/* Places the product a * d against the addend c on the branch asked for:
 * branch 0 (|w| < 0.5): w = a, s = c, p = s + d; branch 1: w = 1 + a, p = c,
 * s = p - d. Returns 0 when a rounding spoils the construction. */
static int place(int branch, float a, float d, float c, lerp_case* out) {
    if (branch == 0) {
        if (!(fabsf(a) < 0.5f)) {
            return 0;
        }
        volatile float p = c + d;
        return accept(c, p, a, d, out);
    }
    volatile float w = 1.0f + a;
    volatile float back = w - 1.0f;
    if (back != a || !(fabsf(w) >= 0.5f)) {
        return 0;
    }
    volatile float s = c - d;
    return accept(s, c, w, d, out);
}

/* A: c of any magnitude, a * d = half an ulp of c times (1 - 2^-2j): for
 * j >= 15 a * d + c rounds to a float64 that is exactly a float32 tie, on
 * the wrong side of it. Branch 0 only (see the note in make_cases). */
static int make_near_tie(lerp_case* out) {
    const int e = (int)random_in(0, 200) - 100;
    const float c = signed_random(ldexpf(1.0f + (float)(next_random() >> 9) * 0x1p-23f, e));
    const int j = (int)random_in(12, 23);
    const int r = (int)random_in(0, 3);
    const int eb = e - 23 + j + r;
    const int ea = e - 24 - eb;
    const float sign = (next_random() & 1) ? 1.0f : -1.0f;
    const float a = signed_random(ldexpf(1.0f + sign * ldexpf(1.0f, -j), ea));
    const float d = signed_random(ldexpf(1.0f - sign * ldexpf(1.0f, -j), eb));
    return place(0, a, d, c, out);
}

/* B: a * d an odd 25-bit integer times a power of two (an exact float32 tie)
 * and c far below float64's precision of it: rounding through float64 lands
 * on the tie and would round it to even whichever side c is on. */
static int make_tiny_addend_tie(int branch, lerp_case* out) {
    const uint32_t m = random_in(1, 2047) * 2 + 1;
    const uint32_t lo = ((1u << 24) + m - 1) / m, hi = ((1u << 25) - 1) / m;
    uint32_t dm = random_in(lo, hi) | 1u;
    if (dm > hi || dm >= (1u << 24)) {
        return 0;
    }
    const int q = (int)bit_length(m) + 1 + (int)random_in(0, 3);
    const int k = (int)random_in(0, 150) - 70;
    const float a = signed_random(ldexpf((float)m, -q));
    const float d = signed_random(ldexpf((float)dm, k));
    const int tie_exponent = 24 + k - q; /* |a * d| in [2^t, 2^(t+1)) */
    const int c_exponent = tie_exponent - 60 - (int)random_in(0, 5);
    const float c =
        signed_random(ldexpf(1.0f + (float)(next_random() >> 9) * 0x1p-23f, c_exponent));
    return place(branch, a, d, c, out);
}

/* C: c of any magnitude and a * d an odd multiple of half its ulp: an exact
 * tie, rounded to even. */
static int make_exact_tie(int branch, lerp_case* out) {
    const int e = (int)random_in(0, 200) - 100;
    const float c = signed_random(ldexpf(1.0f + (float)(next_random() >> 9) * 0x1p-23f, e));
    const uint32_t m = random_in(0, 2047) * 2 + 1;
    const int q = (int)bit_length(m) + 1 + (int)random_in(0, 3);
    const float a = signed_random(ldexpf((float)m, -q));
    const float d = signed_random(ldexpf(1.0f, e - 24 + q));
    return place(branch, a, d, c, out);
}

/* D: subnormal results: a * d an odd multiple of 2^-150, c a multiple of
 * 2^-149 (or zero). */
static int make_subnormal_tie(int branch, lerp_case* out) {
    const uint32_t m = random_in(0, 127) * 2 + 1;
    const int q = (int)bit_length(m) + 1 + (int)random_in(0, 3);
    const uint32_t dm = (random_in(0, (1u << (23 - bit_length(m))) - 1) * 2 + 1);
    const float a = signed_random(ldexpf((float)m, -q));
    const float d = signed_random(ldexpf((float)dm, q - 150));
    const float c =
        (next_random() % 4 == 0) ? signed_random(0.0f)
                                 : signed_random(ldexpf((float)random_in(1, (1u << 23) - 1), -149));
    return place(branch, a, d, c, out);
}

static const float kSpecialValues[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN,
                                       1.0f, -1.0f, 3.4028235e38f, 1e-45f, -2.5e-39f};
static const float kSpecialWeights[] = {0.0f, 0.25f,  -0.25f, 0.5f,     0.75f,   1.0f,
                                        2.0f, -1.0f,  1e-45f, INFINITY, -INFINITY, NAN};

/* Every case of the table, from the fixed seed: returns the count. */
static size_t make_cases(lerp_case* out, size_t capacity) {
    size_t count = 0;
    seed_random(0x1e4f2a7bu);
    /* Note: on the w - 1 branch (|w| >= 0.5) the coefficient lies on a 2^-24
     * grid and d on the grid of p, so a * d + p is exact in float64 unless c
     * is tiny next to a * d: B covers that branch's double-rounding cases. */
    for (size_t made = 0; made < 300 && count < capacity;) {
        made += make_near_tie(&out[count]) ? (count++, 1u) : 0u;
    }
    for (int branch = 0; branch < 2; branch++) {
        for (size_t made = 0; made < 250 && count < capacity;) {
            made += make_tiny_addend_tie(branch, &out[count]) ? (count++, 1u) : 0u;
        }
        for (size_t made = 0; made < 150 && count < capacity;) {
            made += make_exact_tie(branch, &out[count]) ? (count++, 1u) : 0u;
        }
        for (size_t made = 0; made < 150 && count < capacity;) {
            made += make_subnormal_tie(branch, &out[count]) ? (count++, 1u) : 0u;
        }
    }
    for (size_t i = 0; i < COUNT_OF(kSpecialValues); i++) {
        for (size_t j = 0; j < COUNT_OF(kSpecialValues); j++) {
            for (size_t k = 0; k < COUNT_OF(kSpecialWeights) && count < capacity; k++) {
                const float s = kSpecialValues[i], p = kSpecialValues[j], w = kSpecialWeights[k];
                out[count].shadow = f32_bits(s);
                out[count].param = f32_bits(p);
                out[count].weight = f32_bits(w);
                out[count].expected = f32_bits(reference(s, p, w));
                count++;
            }
        }
    }
    return count;
}

#define MAX_CASES 4096

static int print_table(void) {
    static lerp_case cases[MAX_CASES];
    const size_t count = make_cases(cases, MAX_CASES);
    printf("/* Generated by test_lerp --print-table (native, glibc fmaf): shadow, param,\n"
           " * weight, expected result, as float32 bits. Do not edit. */\n");
    for (size_t i = 0; i < count; i++) {
        printf("{0x%08xu, 0x%08xu, 0x%08xu, 0x%08xu},\n", cases[i].shadow, cases[i].param,
               cases[i].weight, cases[i].expected);
    }
    return 0;
}

/* The committed table is what this program generates today, and the
 * generated ties are ties: the float64 path alone would get some wrong. */
static void test_table_is_current(void) {
    static lerp_case cases[MAX_CASES];
    const size_t count = make_cases(cases, MAX_CASES);
    CHECK(count == COUNT_OF(kTable), "table has %zu cases, the generator makes %zu",
          COUNT_OF(kTable), count);
    size_t differ = 0, double_rounding_wrong = 0;
    for (size_t i = 0; i < count && i < COUNT_OF(kTable); i++) {
        differ += memcmp(&cases[i], &kTable[i], sizeof cases[i]) != 0;
        const float s = f32_from_bits(cases[i].shadow), p = f32_from_bits(cases[i].param);
        const float w = f32_from_bits(cases[i].weight);
        const float d = p - s;
        const int small = fabsf(w) < 0.5f;
        const float a = small ? w : w - 1.0f;
        const float naive = (float)((double)a * (double)d + (double)(small ? s : p));
        double_rounding_wrong += !same_f32(naive, f32_from_bits(cases[i].expected));
    }
    CHECK(differ == 0, "%zu table rows differ from the generator: regenerate lerp_cases.inc",
          differ);
    printf("table: %zu cases, %zu where rounding through float64 alone is wrong\n", count,
           double_rounding_wrong);
    CHECK(double_rounding_wrong >= 100, "only %zu double-rounding cases", double_rounding_wrong);
}

/* The helper on random bit patterns of all kinds against fmaf. */
static void test_helper_random(void) {
    size_t bad = 0;
    for (uint32_t i = 0; i < 2000000; i++) {
        float v[3];
        for (int k = 0; k < 3; k++) {
            const uint32_t bits = next_random();
            /* Half the time, nearby exponents so that the terms interact. */
            const uint32_t near = (bits & 0x807fffffu) | (f32_bits(v[0]) & 0x7f800000u);
            v[k] = f32_from_bits(k > 0 && (i & 1) ? near : bits);
        }
        const float got = ema_fma_f32_exact(v[0], v[1], v[2]);
        const float want = fmaf(v[0], v[1], v[2]);
        if (!same_f32(got, want) && bad++ < 4) {
            printf("  fma(%a, %a, %a): got %a expected %a\n", (double)v[0], (double)v[1],
                   (double)v[2], (double)got, (double)want);
        }
    }
    CHECK(bad == 0, "ema_fma_f32_exact differs from fmaf in %zu of 2000000 random cases", bad);
}
#endif /* !__EMSCRIPTEN__ */

/* Every table row through each kernel, filling 2 * tile + 3 elements so that
 * the main loop, the one-vector loop and the tail all see it. */
static void test_table(const kernel_info* kernel) {
    enum { MAX_N = 2 * 16 + 3 };
    const size_t n = 2 * kernel->tile + 3;
    size_t bad = 0;
    for (size_t i = 0; i < COUNT_OF(kTable); i++) {
        float shadow[MAX_N], param[MAX_N];
        const lerp_case* row = &kTable[i];
        for (size_t k = 0; k < n; k++) {
            shadow[k] = f32_from_bits(row->shadow);
            param[k] = f32_from_bits(row->param);
        }
        kernel->fn(n, param, shadow, f32_from_bits(row->weight));
        for (size_t k = 0; k < n; k++) {
            if (!same_f32(shadow[k], f32_from_bits(row->expected))) {
                if (bad++ < 4) {
                    printf("  %s table row %zu index %zu: shadow %08x param %08x w %08x "
                           "-> got %08x expected %08x\n",
                           kernel->name, i, k, row->shadow, row->param, row->weight,
                           f32_bits(shadow[k]), row->expected);
                }
                break;
            }
        }
    }
    CHECK(bad == 0, "%s: %zu of %zu table rows wrong", kernel->name, bad, COUNT_OF(kTable));
}

static const float kWeights[] = {
    0.0f, 1.0f - 0.9999f, 1.0001659e-4f, 2.0f / 11.0f, 0.25f, 0.49999997f, 0.5f,
    0.75f, 1.0f, 1.5f, -0.3f, -0.75f, 3.0f, 1e-45f,
};

static void test_case(const kernel_info* kernel, size_t n, float weight, size_t misalign,
                      int allow_nonfinite, int in_place) {
    float* param = calloc(n ? n : 1, sizeof(float));
    const size_t total = misalign + GUARD + n + GUARD;
    float* block = malloc(total * sizeof(float));
    float* expected = malloc((n ? n : 1) * sizeof(float));
    float* original = malloc((n ? n : 1) * sizeof(float));
    if (param == NULL || block == NULL || expected == NULL || original == NULL) {
        CHECK(0, "out of memory for n=%zu", n);
        free(param), free(block), free(expected), free(original);
        return;
    }
    for (size_t i = 0; i < total; i++) {
        block[i] = f32_from_bits(kSentinelBits);
    }
    float* shadow = block + misalign + GUARD;
    for (size_t i = 0; i < n; i++) {
        shadow[i] = test_random_value(allow_nonfinite);
        param[i] = in_place ? shadow[i] : test_random_value(allow_nonfinite);
        original[i] = shadow[i];
        expected[i] = reference(shadow[i], param[i], weight);
    }

    kernel->fn(n, in_place ? shadow : param, shadow, weight);

    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!same_f32(shadow[i], expected[i]) && bad++ < 4) {
            printf("  %s n=%zu w=%a misalign=%zu%s: index %zu shadow %08x param %08x "
                   "-> got %08x expected %08x\n",
                   kernel->name, n, (double)weight, misalign, in_place ? " in place" : "", i,
                   f32_bits(original[i]), f32_bits(param[i]), f32_bits(shadow[i]),
                   f32_bits(expected[i]));
        }
    }
    CHECK(bad == 0, "%s n=%zu weight=%a misalign=%zu in_place=%d: %zu elements differ",
          kernel->name, n, (double)weight, misalign, in_place, bad);
    int guards_ok = 1;
    for (size_t i = 0; i < misalign + GUARD; i++) {
        guards_ok &= f32_bits(block[i]) == kSentinelBits;
    }
    for (size_t i = 0; i < GUARD; i++) {
        guards_ok &= f32_bits(shadow[n + i]) == kSentinelBits;
    }
    CHECK(guards_ok, "%s n=%zu: wrote outside [0, n)", kernel->name, n);
    free(param), free(block), free(expected), free(original);
}

static void test_kernel(const kernel_info* kernel) {
    printf("%s (tile %zu)\n", kernel->name, kernel->tile);
    const unsigned long failed_before = check_failed();
    kernel->fn(0, NULL, NULL, 0.5f);
    test_table(kernel);
    static const size_t kLarge[] = {1000, 1023, 4099, 65536 + 7};
    for (size_t w = 0; w < COUNT_OF(kWeights); w++) {
        for (size_t n = 0; n <= 40; n++) {
            test_case(kernel, n, kWeights[w], 0, 0, 0);
            test_case(kernel, n, kWeights[w], (n + w) % 4 + 1, 1, 0);
        }
        for (size_t i = 0; i < COUNT_OF(kLarge); i++) {
            test_case(kernel, kLarge[i], kWeights[w], w % 4, 1, 0);
        }
        test_case(kernel, 1, kWeights[w], 0, 0, 1);
        test_case(kernel, kernel->tile + 1, kWeights[w], 0, 0, 1);
        test_case(kernel, 4099, kWeights[w], 0, 1, 1);
    }
    /* Exact values: w = 0.5 averages, w = 1 copies, w = 0 keeps. */
    float shadow[5] = {1.0f, -2.0f, 0.0f, 100.0f, 3.0f};
    const float param[5] = {3.0f, 2.0f, 0.0f, 100.0f, -5.0f};
    kernel->fn(5, param, shadow, 0.5f);
    CHECK(shadow[0] == 2.0f && shadow[1] == 0.0f && shadow[2] == 0.0f && shadow[3] == 100.0f &&
              shadow[4] == -1.0f,
          "%s known values with w=0.5", kernel->name);
    kernel->fn(5, param, shadow, 1.0f);
    CHECK(memcmp(shadow, param, sizeof shadow) == 0, "%s w=1 copies the parameter", kernel->name);
    printf("%s: %s\n", kernel->name, check_failed() == failed_before ? "ok" : "FAILED");
}

int main(int argc, char** argv) {
#if !defined(__EMSCRIPTEN__)
    if (argc == 2 && strcmp(argv[1], "--print-table") == 0) {
        return print_table();
    }
#endif
    (void)argc, (void)argv;
    check_begin("test_lerp");
    printf("reference: %s\n", REFERENCE_NAME);
    CHECK(KERNEL_COUNT >= 1 && kKernels[0].fn == ema_f32_vlerp_ukernel__scalar_u4,
          "the scalar kernel comes first");
#if !defined(__EMSCRIPTEN__)
    test_table_is_current();
    seed_random(0x2468ace1u);
    test_helper_random();
#endif
    seed_random(0x12345678u);
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        test_kernel(&kKernels[k]);
    }
    return check_end();
}
