/*
 * test_fused.c - every fused-rounding micro-kernel this build has, bit for
 * bit: f32-vlerp (PyTorch's `lerp_`, src/kernels/f32-vlerp.inc) and f32-vfma
 * (diffusers' foreach update, f32-vfma.inc), which both round a fused
 * multiply-add once without having one (src/kernels/fma-exact.h).
 *
 * The reference:
 *   - natively: glibc's fmaf(), which is correctly rounded with or without
 *     hardware FMA; every kernel, the exact-fma helpers on random bit
 *     patterns, freshly constructed ties, and the committed table below are
 *     compared with it;
 *   - in the WebAssembly builds (no trustworthy fmaf: Emscripten 3.1.6's is
 *     wrong on ties): the committed table test/c/fused_cases.inc of inputs
 *     and the expected bits of each operation, which this program wrote
 *     natively from fmaf (test_fused --print-table > test/c/fused_cases.inc),
 *     checked against every kernel including the scalar ones; the random-size
 *     tests then use each family's scalar kernel, one element at a time, as
 *     the reference.
 * The table holds ties constructed on purpose (a * b + c exactly halfway
 * between two floats, and halfway to float64's precision so that rounding
 * through float64 alone would go wrong) for both of lerp's branches and for
 * vfma with weights of 0.5 and more, subnormal ties, and every combination
 * of zeros, infinities, NaN, extremes and subnormals.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "f32-vfma.h"
#include "f32-vlerp.h"
#include "test_util.h"

/* The two operations; both kernel families have one signature. */
typedef enum fused_op { FUSED_LERP, FUSED_FMA } fused_op;
static const char* const kOpNames[] = {"lerp", "fma"};

typedef struct kernel_info {
    const char* name;
    fused_op op;
    ema_f32_vlerp_ukernel_fn fn;
    size_t tile;
} kernel_info;

/* The kernels of this build (IF_ARCH: the lines whose arch flag is 1). */
static const kernel_info kKernels[] = {
#define EMA_UKERNEL(arch, name, unroll) IF_ARCH(arch, {#name, FUSED_LERP, name, (unroll)},)
#include "f32-vlerp.inc"
#undef EMA_UKERNEL
#define EMA_UKERNEL(arch, name, unroll) IF_ARCH(arch, {#name, FUSED_FMA, name, (unroll)},)
#include "f32-vfma.inc"
#undef EMA_UKERNEL
};
#define KERNEL_COUNT COUNT_OF(kKernels)

/* One row of the table: inputs, then the expected result of each operation
 * (indexed by fused_op), as float32 bits. */
typedef struct fused_case {
    uint32_t shadow, param, weight;
    uint32_t expected[2];
} fused_case;

static const fused_case kTable[] = {
#include "fused_cases.inc"
};

#if defined(__EMSCRIPTEN__)
#define REFERENCE_NAME "each family's scalar kernel (checked against the table)"
static float reference(fused_op op, float shadow, float param, float weight) {
    float s = shadow;
    if (op == FUSED_LERP) {
        ema_f32_vlerp_ukernel__scalar_u4(1, &param, &s, weight);
    } else {
        ema_f32_vfma_ukernel__scalar_u4(1, &param, &s, weight);
    }
    return s;
}
#else
#define REFERENCE_NAME "glibc fmaf"
/* d = fl(p - s); lerp: |w| < 0.5 ? fma(w, d, s) : fma(-(1 - w), d, p) (PyTorch's
 * p - d * (1 - w): at w == 1 the zero's sign differs from fma(w - 1, d, p));
 * vfma: fma(w, d, s) for every w. */
static __attribute__((noinline)) float reference(fused_op op, float shadow, float param,
                                                 float weight) {
    volatile float difference = param - shadow;
    if (op == FUSED_FMA || fabsf(weight) < 0.5f) {
        return fmaf(weight, difference, shadow);
    }
    volatile float coefficient = -(1.0f - weight);
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

/* A row's inputs and both expectations. */
static fused_case make_row(float s, float p, float w) {
    fused_case row = {f32_bits(s), f32_bits(p), f32_bits(w), {0, 0}};
    row.expected[FUSED_LERP] = f32_bits(reference(FUSED_LERP, s, p, w));
    row.expected[FUSED_FMA] = f32_bits(reference(FUSED_FMA, s, p, w));
    return row;
}

/* Accepts a case whose inputs make d = fl(p - s) the intended d. */
static int accept(float s, float p, float w, float d, fused_case* out) {
    volatile float check = p - s;
    if (!isfinite(s) || !isfinite(p) || !isfinite(w) || check != d ||
        f32_bits(check) != f32_bits(d)) {
        return 0;
    }
    *out = make_row(s, p, w);
    return 1;
}

/* Where a constructed product a * d meets its addend c. */
typedef enum tie_branch {
    TIE_SMALL_WEIGHT, /* w = a, |w| < 0.5: s = c, p = s + d (lerp's first branch, and vfma) */
    TIE_LERP_LARGE,   /* w = 1 + a, |w| >= 0.5: p = c, s = p - d (lerp's second branch) */
    TIE_FMA_LARGE     /* w = a scaled to |w| >= 0.5, d scaled back: s = c, p = s + d (vfma) */
} tie_branch;
#define TIE_BRANCH_COUNT 3

/* Places the product a * d against the addend c on the branch asked for.
 * Returns 0 when a rounding spoils the construction. */
static int place(tie_branch branch, float a, float d, float c, fused_case* out) {
    if (branch == TIE_FMA_LARGE) {
        /* Powers of two keep the product; a ends in [0.5, 8). */
        for (int doublings = (int)random_in(0, 3); fabsf(a) < 0.5f || doublings-- > 0;) {
            a *= 2.0f;
            d *= 0.5f;
        }
    }
    if (branch != TIE_LERP_LARGE) {
        if (branch == TIE_SMALL_WEIGHT && !(fabsf(a) < 0.5f)) {
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
 * the wrong side of it. Small weights only (see make_cases). */
static int make_near_tie(tie_branch branch, fused_case* out) {
    const int e = (int)random_in(0, 200) - 100;
    const float c = signed_random(ldexpf(1.0f + (float)(next_random() >> 9) * 0x1p-23f, e));
    const int j = (int)random_in(12, 23);
    const int r = (int)random_in(0, 3);
    const int eb = e - 23 + j + r;
    const int ea = e - 24 - eb;
    const float sign = (next_random() & 1) ? 1.0f : -1.0f;
    const float a = signed_random(ldexpf(1.0f + sign * ldexpf(1.0f, -j), ea));
    const float d = signed_random(ldexpf(1.0f - sign * ldexpf(1.0f, -j), eb));
    return place(branch, a, d, c, out);
}

/* B: a * d an odd 25-bit integer times a power of two (an exact float32 tie)
 * and c far below float64's precision of it: rounding through float64 lands
 * on the tie and would round it to even whichever side c is on. */
static int make_tiny_addend_tie(tie_branch branch, fused_case* out) {
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
static int make_exact_tie(tie_branch branch, fused_case* out) {
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
static int make_subnormal_tie(tie_branch branch, fused_case* out) {
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
static size_t make_cases(fused_case* out, size_t capacity) {
    size_t count = 0;
    seed_random(0x1e4f2a7bu);
    for (int branch = 0; branch < TIE_BRANCH_COUNT; branch++) {
        /* With a weight of 0.5 or more, d = fl(p - s) lies on the grid of p
         * or s and the coefficient (lerp's w - 1, or w) has few bits below
         * it, so a * d + c is exact in float64 unless c is tiny next to
         * a * d: B covers those branches' double roundings, and A (a product
         * of half an ulp of c) cannot be made with such a d. */
        for (size_t made = 0; branch == TIE_SMALL_WEIGHT && made < 300 && count < capacity;) {
            made += make_near_tie((tie_branch)branch, &out[count]) ? (count++, 1u) : 0u;
        }
        for (size_t made = 0; made < 250 && count < capacity;) {
            made += make_tiny_addend_tie((tie_branch)branch, &out[count]) ? (count++, 1u) : 0u;
        }
        for (size_t made = 0; made < 150 && count < capacity;) {
            made += make_exact_tie((tie_branch)branch, &out[count]) ? (count++, 1u) : 0u;
        }
        for (size_t made = 0; made < 150 && count < capacity;) {
            made += make_subnormal_tie((tie_branch)branch, &out[count]) ? (count++, 1u) : 0u;
        }
    }
    for (size_t i = 0; i < COUNT_OF(kSpecialValues); i++) {
        for (size_t j = 0; j < COUNT_OF(kSpecialValues); j++) {
            for (size_t k = 0; k < COUNT_OF(kSpecialWeights) && count < capacity; k++) {
                out[count++] = make_row(kSpecialValues[i], kSpecialValues[j], kSpecialWeights[k]);
            }
        }
    }
    return count;
}

#define MAX_CASES 4096

static int print_table(void) {
    static fused_case cases[MAX_CASES];
    const size_t count = make_cases(cases, MAX_CASES);
    printf("/* Generated by test_fused --print-table (native, glibc fmaf): shadow, param,\n"
           " * weight, then the expected results of lerp and of vfma, as float32 bits.\n"
           " * Do not edit. */\n");
    for (size_t i = 0; i < count; i++) {
        printf("{0x%08xu, 0x%08xu, 0x%08xu, {0x%08xu, 0x%08xu}},\n", cases[i].shadow,
               cases[i].param, cases[i].weight, cases[i].expected[FUSED_LERP],
               cases[i].expected[FUSED_FMA]);
    }
    return 0;
}

/* fl(a * d + c) through float64 alone: what the ties defeat. */
static float through_float64_alone(fused_op op, float s, float p, float w) {
    const float d = p - s;
    const int small = op == FUSED_FMA || fabsf(w) < 0.5f;
    const float a = small ? w : -(1.0f - w);
    return (float)((double)a * (double)d + (double)(small ? s : p));
}

/* The committed table is what this program generates today, and the
 * generated ties are ties: the float64 path alone would get some wrong, for
 * each operation. */
static void test_table_is_current(void) {
    static fused_case cases[MAX_CASES];
    const size_t count = make_cases(cases, MAX_CASES);
    CHECK(count == COUNT_OF(kTable), "table has %zu cases, the generator makes %zu",
          COUNT_OF(kTable), count);
    size_t differ = 0, double_rounding_wrong[2] = {0, 0};
    for (size_t i = 0; i < count && i < COUNT_OF(kTable); i++) {
        /* Inputs to the bit; results as the kernels are compared (a NaN's
         * sign and payload depend on the fmaf, software or hardware). */
        int same = cases[i].shadow == kTable[i].shadow && cases[i].param == kTable[i].param &&
                   cases[i].weight == kTable[i].weight;
        for (int op = 0; op < 2; op++) {
            same &= same_f32(f32_from_bits(cases[i].expected[op]),
                             f32_from_bits(kTable[i].expected[op]));
        }
        differ += !same;
        const float s = f32_from_bits(cases[i].shadow), p = f32_from_bits(cases[i].param);
        const float w = f32_from_bits(cases[i].weight);
        for (int op = 0; op < 2; op++) {
            const float naive = through_float64_alone((fused_op)op, s, p, w);
            double_rounding_wrong[op] +=
                !same_f32(naive, f32_from_bits(cases[i].expected[op]));
        }
    }
    CHECK(differ == 0, "%zu table rows differ from the generator: regenerate fused_cases.inc",
          differ);
    printf("table: %zu cases; rounding through float64 alone is wrong in %zu (lerp), %zu (fma)\n",
           count, double_rounding_wrong[FUSED_LERP], double_rounding_wrong[FUSED_FMA]);
    for (int op = 0; op < 2; op++) {
        CHECK(double_rounding_wrong[op] >= 100, "only %zu double-rounding cases for %s",
              double_rounding_wrong[op], kOpNames[op]);
    }
}

/* The helpers against fmaf on random bit patterns of all kinds (every step
 * of ema_fma_f32_exact, and steps 2 and 3 alone), and on an EMA's inputs,
 * which step 1 answers. */
static void test_helpers_random(void) {
    size_t bad = 0, bad_f64 = 0;
    for (uint32_t i = 0; i < 2000000; i++) {
        float v[3];
        for (int k = 0; k < 3; k++) {
            const uint32_t bits = next_random();
            /* Half the time, nearby exponents so that the terms interact. */
            const uint32_t near = (bits & 0x807fffffu) | (f32_bits(v[0]) & 0x7f800000u);
            v[k] = f32_from_bits(k > 0 && (i & 1) ? near : bits);
        }
        if (i % 4 == 3) { /* an EMA step: small weight, d = fl(p - s), c = s */
            const float s = test_random_value(1), p = test_random_value(1);
            v[0] = ldexpf((float)(next_random() >> 8) * 0x1p-24f, -(int)(next_random() % 20));
            v[1] = p - s;
            v[2] = s;
        }
        const float want = fmaf(v[0], v[1], v[2]);
        const float got = ema_fma_f32_exact(v[0], v[1], v[2]);
        const float got_f64 = ema_fma_f32_through_f64(v[0], v[1], v[2]);
        if (!same_f32(got, want) && bad++ < 4) {
            printf("  fma(%a, %a, %a): got %a expected %a\n", (double)v[0], (double)v[1],
                   (double)v[2], (double)got, (double)want);
        }
        if (!same_f32(got_f64, want) && bad_f64++ < 4) {
            printf("  through f64: fma(%a, %a, %a): got %a expected %a\n", (double)v[0],
                   (double)v[1], (double)v[2], (double)got_f64, (double)want);
        }
    }
    CHECK(bad == 0, "ema_fma_f32_exact differs from fmaf in %zu of 2000000 random cases", bad);
    CHECK(bad_f64 == 0, "ema_fma_f32_through_f64 differs from fmaf in %zu of 2000000 random cases",
          bad_f64);
}
#endif /* !__EMSCRIPTEN__ */

/* Every table row through each kernel, filling 2 * tile + 3 elements so that
 * the main loop, the one-vector loop and the tail all see it. */
static void test_table(const kernel_info* kernel) {
    enum { MAX_N = 2 * 32 + 3 };
    const size_t n = 2 * kernel->tile + 3;
    size_t bad = 0;
    for (size_t i = 0; i < COUNT_OF(kTable); i++) {
        float shadow[MAX_N], param[MAX_N];
        const fused_case* row = &kTable[i];
        const uint32_t expected = row->expected[kernel->op];
        for (size_t k = 0; k < n; k++) {
            shadow[k] = f32_from_bits(row->shadow);
            param[k] = f32_from_bits(row->param);
        }
        kernel->fn(n, param, shadow, f32_from_bits(row->weight));
        for (size_t k = 0; k < n; k++) {
            if (!same_f32(shadow[k], f32_from_bits(expected))) {
                if (bad++ < 4) {
                    printf("  %s table row %zu index %zu: shadow %08x param %08x w %08x "
                           "-> got %08x expected %08x\n",
                           kernel->name, i, k, row->shadow, row->param, row->weight,
                           f32_bits(shadow[k]), expected);
                }
                break;
            }
        }
    }
    CHECK(bad == 0, "%s: %zu of %zu table rows wrong", kernel->name, bad, COUNT_OF(kTable));
}

/* The table's rows side by side, each element a different row, with each
 * row's weight in turn, so that a pass mixes lanes the float32 bracket
 * settles with lanes it cannot. */
static void test_table_mixed(const kernel_info* kernel) {
    enum { N = 67 };
    size_t bad = 0;
    for (size_t start = 0; start < COUNT_OF(kTable); start += N) {
        float shadow[N], param[N];
        const size_t n = COUNT_OF(kTable) - start < N ? COUNT_OF(kTable) - start : N;
        for (size_t pick = 0; pick < n; pick++) {
            const float weight = f32_from_bits(kTable[start + pick].weight);
            for (size_t k = 0; k < n; k++) {
                shadow[k] = f32_from_bits(kTable[start + k].shadow);
                param[k] = f32_from_bits(kTable[start + k].param);
            }
            kernel->fn(n, param, shadow, weight);
            for (size_t k = 0; k < n; k++) {
                const float want = reference(kernel->op, f32_from_bits(kTable[start + k].shadow),
                                             param[k], weight);
                if (!same_f32(shadow[k], want) && bad++ < 4) {
                    printf("  %s rows from %zu with w %08x: index %zu got %08x expected %08x\n",
                           kernel->name, start, f32_bits(weight), k, f32_bits(shadow[k]),
                           f32_bits(want));
                }
            }
        }
    }
    CHECK(bad == 0, "%s: %zu table rows wrong among other rows", kernel->name, bad);
}

static const float kWeights[] = {
    0.0f, 1.0f - 0.9999f, 1.0001659e-4f, 2.0f / 11.0f, 0.25f, 0.49999997f, 0.5f,
    0.75f, 1.0f, 1.5f, -0.3f, -0.75f, 3.0f, 1e-45f,
};

static void test_case(const kernel_info* kernel, size_t n, float weight, size_t misalign,
                      int allow_nonfinite, int in_place) {
    kernel_case c;
    if (!kernel_case_open(&c, n, misalign, allow_nonfinite, in_place)) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        c.expected[i] = reference(kernel->op, c.shadow[i], c.param[i], weight);
    }
    kernel->fn(n, c.param, c.shadow, weight);
    char label[160];
    snprintf(label, sizeof label, "%s n=%zu w=%a misalign=%zu%s", kernel->name, n, (double)weight,
             misalign, in_place ? " in place" : "");
    kernel_case_check(&c, label);
    kernel_case_close(&c);
}

/* Zeros of both signs: every combination, whatever the weight's sign. */
static void test_signed_zeros(const kernel_info* kernel) {
    static const float kZeroWeights[] = {0.25f, -0.25f, 0.75f, -0.75f, 0.0f, -0.0f};
    for (size_t w = 0; w < COUNT_OF(kZeroWeights); w++) {
        float shadow[4] = {0.0f, 0.0f, -0.0f, -0.0f};
        const float param[4] = {0.0f, -0.0f, 0.0f, -0.0f};
        float expected[4];
        for (size_t i = 0; i < 4; i++) {
            expected[i] = reference(kernel->op, shadow[i], param[i], kZeroWeights[w]);
        }
        kernel->fn(4, param, shadow, kZeroWeights[w]);
        CHECK(memcmp(shadow, expected, sizeof shadow) == 0,
              "%s zeros with w=%a: got %08x %08x %08x %08x", kernel->name,
              (double)kZeroWeights[w], f32_bits(shadow[0]), f32_bits(shadow[1]),
              f32_bits(shadow[2]), f32_bits(shadow[3]));
    }
}

static void test_kernel(const kernel_info* kernel) {
    printf("%s (%s, tile %zu)\n", kernel->name, kOpNames[kernel->op], kernel->tile);
    const unsigned long failed_before = check_failed();
    kernel->fn(0, NULL, NULL, 0.5f);
    test_table(kernel);
    test_table_mixed(kernel);
    test_signed_zeros(kernel);
    static const size_t kLarge[] = {1000, 1023, 4099, 65536 + 7};
    for (size_t w = 0; w < COUNT_OF(kWeights); w++) {
        for (size_t n = 0; n <= 70; n++) {
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
    /* Exact values, the same for both operations: w = 0.5 averages, w = 1
     * copies (d is exact here), w = 0 keeps. */
    float shadow[5] = {1.0f, -2.0f, 0.0f, 100.0f, 3.0f};
    const float param[5] = {3.0f, 2.0f, 0.0f, 100.0f, -5.0f};
    const float kept[5] = {1.0f, -2.0f, 0.0f, 100.0f, 3.0f};
    kernel->fn(5, param, shadow, 0.0f);
    CHECK(memcmp(shadow, kept, sizeof shadow) == 0, "%s w=0 keeps the shadow", kernel->name);
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
    check_begin("test_fused");
    printf("reference: %s\n", REFERENCE_NAME);
    /* The scalar kernels come first: in Wasm they are the reference. */
    CHECK(KERNEL_COUNT >= 2 && kKernels[0].fn == ema_f32_vlerp_ukernel__scalar_u4,
          "the scalar lerp kernel comes first");
    int best_listed[2] = {0, 0}, fma_scalar_first = 0;
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        best_listed[FUSED_LERP] |= kKernels[k].fn == ema_f32_vlerp_ukernel_best;
        best_listed[FUSED_FMA] |= kKernels[k].fn == ema_f32_vfma_ukernel_best;
        if (kKernels[k].op == FUSED_FMA && (k == 0 || kKernels[k - 1].op != FUSED_FMA)) {
            fma_scalar_first = kKernels[k].fn == ema_f32_vfma_ukernel__scalar_u4;
        }
    }
    CHECK(fma_scalar_first, "the scalar vfma kernel comes first among the vfma kernels");
    CHECK(best_listed[FUSED_LERP], "ema_f32_vlerp_ukernel_best is one of the tested kernels");
    CHECK(best_listed[FUSED_FMA], "ema_f32_vfma_ukernel_best is one of the tested kernels");
#if !defined(__EMSCRIPTEN__)
    test_table_is_current();
    seed_random(0x2468ace1u);
    test_helpers_random();
#endif
    seed_random(0x12345678u);
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        test_kernel(&kKernels[k]);
    }
    return check_end();
}
