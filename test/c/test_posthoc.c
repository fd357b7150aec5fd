/*
 * test_posthoc.c - the post-hoc EMA reconstruction (src/posthoc.c and the
 * f32-vweighted-sum kernels):
 *   - the profiles' inner product against its closed form and quadrature;
 *   - every f32-vweighted-sum kernel this build has against a plain C
 *     reference, bit for bit, over the lengths, strides, counts and special
 *     values that reach every path;
 *   - ema_posthoc_weighted_sum's and ema_posthoc_coefficients' refusals and
 *     edge cases;
 *   - test/fixtures/posthoc.txt (NumPy's reconstructions, written by
 *     test/fixtures/generate_posthoc.py, whose docstring has the format):
 *     the gammas to the bit, the coefficients and the condition number
 *     within tolerances derived from the condition number (see
 *     check_coefficients), and the weighted sums bit for bit.
 *
 * Usage: test_posthoc [fixture]  (default test/fixtures/posthoc.txt; "-"
 * reads stdin, which is how the WebAssembly builds get it).
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ema_posthoc.h"
#include "f32-vweighted-sum.h"
#include "fixture.h"
#include "test_util.h"

#define DEFAULT_FIXTURE "test/fixtures/posthoc.txt"

static double gamma_of(double sigma_rel) {
    double gamma = -1.0;
    CHECK_STATUS(ema_gamma_of_sigma_rel(sigma_rel, &gamma), EMA_OK);
    return gamma;
}

static uint64_t f64_bits(double value) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof(bits));
    return bits;
}

static double f64_from_bits(uint64_t bits) {
    double value;
    memcpy(&value, &bits, sizeof(value));
    return value;
}

/* ---- the inner product ------------------------------------------------------ */

static void test_inner_product(void) {
    const double g = 6.94, t = 1000.0;
    const double self = ema_profile_inner_product(g, t, g, t);
    CHECK(fabs(self - (g + 1) * (g + 1) / ((2 * g + 1) * t)) <= 1e-15 * self, "<p, p> = (g+1)^2 / ((2g+1) t)");
    const double ab = ema_profile_inner_product(2.0, 300.0, 7.0, 900.0);
    const double ba = ema_profile_inner_product(7.0, 900.0, 2.0, 300.0);
    CHECK(fabs(ab - ba) <= 1e-15 * ab, "symmetric: %.17g vs %.17g", ab, ba);
    /* By quadrature of p_a p_b over [0, 300], where p_a lives (midpoint rule
     * on a smooth integrand: its error is far below the tolerance). */
    double sum = 0.0;
    const int steps = 200000;
    for (int i = 0; i < steps; i++) {
        const double tau = (i + 0.5) * 300.0 / steps;
        const double pa = 3.0 * tau * tau / (300.0 * 300.0 * 300.0);
        const double pb = 8.0 * pow(tau, 7.0) / pow(900.0, 8.0);
        sum += pa * pb * 300.0 / steps;
    }
    CHECK(fabs(sum - ab) <= 1e-8 * ab, "closed form %.12g vs quadrature %.12g", ab, sum);
    CHECK(isnan(ema_profile_inner_product(-1.0, 1.0, 1.0, 1.0)), "gamma < 0: NaN");
    CHECK(isnan(ema_profile_inner_product(1.0, 0.0, 1.0, 1.0)), "t 0: NaN");
    CHECK(isnan(ema_profile_inner_product(1.0, INFINITY, 1.0, 1.0)), "t infinite: NaN");
}

/* ---- the f32-vweighted-sum kernels ------------------------------------------ */

typedef struct kernel_info {
    const char* name;
    size_t tile;
    ema_f32_vweighted_sum_ukernel_fn fn;
} kernel_info;

/* The entries of f32-vweighted-sum.inc whose arch flag is 1 in this build. */
static const kernel_info kKernels[] = {
#define EMA_UKERNEL(arch, name, unroll) IF_ARCH(arch, {#name, (unroll), name},)
#include "f32-vweighted-sum.inc"
#undef EMA_UKERNEL
};
#define KERNEL_COUNT COUNT_OF(kKernels)

/* The definition, one element: from +0.0, each product and sum rounded to
 * float64 (volatile: nothing fused, reordered or vectorised), then one
 * rounding to float32. Not inlined, as test_kernels.c's references. */
static __attribute__((noinline)) float reference_element(size_t count, const float* inputs, size_t stride,
                                                          const double* coefficients) {
    volatile double acc = 0.0;
    for (size_t i = 0; i < count; i++) {
        volatile double product = coefficients[i] * (double)inputs[i * stride];
        acc = acc + product;
    }
    volatile float rounded = (float)acc;
    return rounded;
}

static const uint32_t kSentinelBits = 0x7fa5a5a5u;
#define GUARD 8

static const double kSpecialCoefficients[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, 1e-310, -4.9e-324, 1e300, -1e300, 0x1p-60, 3.0e38, 0.1,
};

static double random_coefficient(int allow_nonfinite) {
    const uint32_t pick = next_random() % 8;
    if (pick == 0) {
        return kSpecialCoefficients[next_random() % COUNT_OF(kSpecialCoefficients)];
    }
    if (pick == 1 && allow_nonfinite) {
        const uint32_t which = next_random() % 3;
        return which == 0 ? INFINITY : which == 1 ? -INFINITY : NAN;
    }
    /* Coefficients of a reconstruction: both signs, magnitudes 2^-30 .. 2^4. */
    const double unit = (double)(int32_t)next_random() * 0x1p-31;
    return ldexp(unit, (int)(next_random() % 34) - 30);
}

/* One kernel on n elements of `count` rows `stride` apart. The inputs are
 * allocated to exactly (count - 1) * stride + n floats, so that ASan sees a
 * read past the last row; the floats between rows are a NaN that would
 * show in the results if read; `out` starts `misalign` floats into a block
 * of sentinels that must stay untouched. */
static void test_case(const kernel_info* kernel, size_t n, size_t count, size_t stride, size_t misalign,
                      int allow_nonfinite) {
    const size_t span = (count - 1) * stride + n;
    float* inputs = malloc((span == 0 ? 1 : span) * sizeof(float));
    double* coefficients = malloc(count * sizeof(double));
    float* block = malloc((n + misalign + 2 * GUARD) * sizeof(float));
    float* expected = malloc((n == 0 ? 1 : n) * sizeof(float));
    if (!CHECK(inputs != NULL && coefficients != NULL && block != NULL && expected != NULL, "out of memory")) {
        free(inputs), free(coefficients), free(block), free(expected);
        return;
    }
    for (size_t k = 0; k < span; k++) {
        inputs[k] = k % stride < n ? test_random_value(allow_nonfinite) : f32_from_bits(0x7fc0beefu);
    }
    for (size_t i = 0; i < count; i++) {
        coefficients[i] = random_coefficient(allow_nonfinite);
    }
    for (size_t k = 0; k < n + misalign + 2 * GUARD; k++) {
        block[k] = f32_from_bits(kSentinelBits);
    }
    float* out = block + GUARD + misalign;
    for (size_t j = 0; j < n; j++) {
        expected[j] = reference_element(count, inputs + j, stride, coefficients);
    }
    kernel->fn(n, count, inputs, stride, coefficients, out);

    size_t wrong = 0;
    for (size_t j = 0; j < n; j++) {
        if (!same_f32(out[j], expected[j]) && wrong++ < 4) {
            CHECK(0, "%s n=%zu count=%zu stride=%zu misalign=%zu: out[%zu] = %a (0x%08x), expected %a (0x%08x); "
                  "c0 %a x0 %a", kernel->name, n, count, stride, misalign, j, (double)out[j], f32_bits(out[j]),
                  (double)expected[j], f32_bits(expected[j]), coefficients[0], (double)inputs[j]);
        }
    }
    int guards = 1;
    for (size_t k = 0; k < GUARD + misalign; k++) {
        guards &= f32_bits(block[k]) == kSentinelBits;
    }
    for (size_t k = GUARD + misalign + n; k < n + misalign + 2 * GUARD; k++) {
        guards &= f32_bits(block[k]) == kSentinelBits;
    }
    CHECK(wrong == 0 && guards, "%s n=%zu count=%zu stride=%zu misalign=%zu: %zu wrong, guards %s", kernel->name,
          n, count, stride, misalign, wrong, guards ? "intact" : "overwritten");
    free(inputs), free(coefficients), free(block), free(expected);
}

static void test_kernels(void) {
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        const kernel_info* kernel = &kKernels[k];
        for (size_t n = 0; n <= 67; n++) {
            for (size_t count = 1; count <= 5; count++) {
                /* Rows back to back, and odd gaps between them. */
                const size_t strides[] = {n, n + 1, n + 3, 2 * n + 5};
                for (size_t s = 0; s < COUNT_OF(strides); s++) {
                    const size_t stride = strides[s] == 0 ? 1 : strides[s];
                    test_case(kernel, n, count, stride, (n + s) % 4, (n + count + s) % 3 == 0);
                }
            }
        }
        /* Many rows (a reconstruction's hundreds of snapshots). */
        test_case(kernel, 37, 300, 41, 1, 0);
        test_case(kernel, 4 * kernel->tile + 3, 64, 4 * kernel->tile + 3, 0, 1);
    }
}

/* Values whose rounding the definition pins down: signed zeros (a sum
 * starts at +0), subnormal inputs and results, overflow to infinity,
 * cancellation, and non-finite inputs and coefficients. */
static void test_kernels_special(void) {
    /* Column j of two rows: inputs[j], inputs[8 + j]. */
    const float inputs[16] = {
        -0.0f, -0.0f, 1e-45f,  0x1p-126f, 3.4028235e38f, 1.0f,  INFINITY, 1.0f,
        -0.0f, 0.0f,  1e-45f,  0x1p-126f, 3.4028235e38f, 0x1p-30f, -INFINITY, NAN,
    };
    const double coefficients[2] = {0.5, 0.5};
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        float out[8];
        kKernels[k].fn(8, 2, inputs, 8, coefficients, out);
        /* 0.5 * -0 + 0.5 * -0 from +0.0 is +0; 0.5 * 1e-45 twice is 1e-45
         * exactly in float64; half the largest float twice is the largest
         * float; 0.5 + 2^-31 is exact in float64 and rounds to 0.5 in float32
         * (it is the float32 sums that would have lost it earlier); inf - inf
         * is NaN. */
        CHECK(f32_bits(out[0]) == 0x00000000u, "%s: -0 inputs sum to +0 (0x%08x)", kKernels[k].name, f32_bits(out[0]));
        CHECK(f32_bits(out[1]) == 0x00000000u, "%s: -0 and +0 sum to +0", kKernels[k].name);
        CHECK(f32_bits(out[2]) == 0x00000001u, "%s: the smallest subnormal survives (0x%08x)", kKernels[k].name,
              f32_bits(out[2]));
        CHECK(out[3] == 0x1p-126f, "%s: the smallest normal survives", kKernels[k].name);
        CHECK(out[4] == 3.4028235e38f, "%s: no overflow in float64 (%a)", kKernels[k].name, (double)out[4]);
        CHECK(out[5] == 0.5f, "%s: 0.5 + 2^-31 rounds once, to 0.5 (%a)", kKernels[k].name, (double)out[5]);
        CHECK(isnan(out[6]) && isnan(out[7]), "%s: inf - inf and NaN give NaN", kKernels[k].name);
        const double big[2] = {1e300, 1e300};
        kKernels[k].fn(8, 2, inputs, 8, big, out);
        CHECK(isinf(out[5]) && out[5] > 0.0f, "%s: a float64 sum past float32's range rounds to +inf (%a)",
              kKernels[k].name, (double)out[5]);
        const double cancel[2] = {1.0, -1.0};
        kKernels[k].fn(8, 2, inputs, 8, cancel, out);
        CHECK(out[5] == 1.0f && out[3] == 0.0f, "%s: 1 - 2^-30 rounds to 1 (%a), x - x is 0", kKernels[k].name,
              (double)out[5]);
        CHECK(f32_bits(out[0]) == 0x00000000u, "%s: -0 - -0 is +0", kKernels[k].name);
    }
}

/* ---- the API: refusals and edges ---------------------------------------- */

static void test_weighted_sum_api(void) {
    const float inputs[6] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
    const double coefficients[2] = {0.25, 0.75};
    float out[3] = {-1.0f, -1.0f, -1.0f};
    CHECK_STATUS(ema_posthoc_weighted_sum(3, 2, inputs, 3, coefficients, out), EMA_OK);
    CHECK(out[0] == 3.25f && out[1] == 4.25f && out[2] == 5.25f, "0.25 a + 0.75 b: %g %g %g", (double)out[0],
          (double)out[1], (double)out[2]);
    /* Rows with a gap: stride 4 over n 2 reads 1, 2 and 5, 6. */
    CHECK_STATUS(ema_posthoc_weighted_sum(2, 2, inputs, 4, coefficients, out), EMA_OK);
    CHECK(out[0] == 4.0f && out[1] == 5.0f && out[2] == 5.25f, "a stride past n: %g %g, out[2] untouched",
          (double)out[0], (double)out[1]);

    float kept[3] = {7.0f, 7.0f, 7.0f};
    CHECK_STATUS(ema_posthoc_weighted_sum(3, 2, NULL, 3, coefficients, kept), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_posthoc_weighted_sum(3, 2, inputs, 3, NULL, kept), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_posthoc_weighted_sum(3, 2, inputs, 3, coefficients, NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_posthoc_weighted_sum(3, 0, inputs, 3, coefficients, kept), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_posthoc_weighted_sum(3, 2, inputs, 2, coefficients, kept), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_posthoc_weighted_sum(3, 0x80000000u, inputs, SIZE_MAX / 8, coefficients, kept),
                 EMA_ERROR_TOO_LARGE);
    CHECK_STATUS(ema_posthoc_weighted_sum(2, 2, inputs, SIZE_MAX / sizeof(float) - 1, coefficients, kept),
                 EMA_ERROR_TOO_LARGE);
    CHECK(kept[0] == 7.0f && kept[1] == 7.0f && kept[2] == 7.0f, "a refused call writes nothing");
    /* n 0: nothing to read or write, NULLs allowed; count 0 is still refused. */
    CHECK_STATUS(ema_posthoc_weighted_sum(0, 1, NULL, 0, NULL, NULL), EMA_OK);
    CHECK_STATUS(ema_posthoc_weighted_sum(0, 0, NULL, 0, NULL, NULL), EMA_ERROR_INVALID_ARGUMENT);
    /* One snapshot, coefficient 1: a copy, -0 becoming +0 (0.0 + -0.0). */
    const float single[3] = {-0.0f, 1e-45f, -3.5f};
    const double one = 1.0;
    CHECK_STATUS(ema_posthoc_weighted_sum(3, 1, single, 3, &one, out), EMA_OK);
    CHECK(f32_bits(out[0]) == 0u && f32_bits(out[1]) == 1u && out[2] == -3.5f, "coefficient 1 copies (but -0 is +0)");
}

static void test_coefficient_edges(void) {
    double x[4], condition = 0.0;
    /* One snapshot that is the target: coefficient 1. */
    const double g = gamma_of(0.1), t = 500.0;
    CHECK_STATUS(ema_posthoc_coefficients(1, &g, &t, g, t, x, &condition), EMA_OK);
    CHECK(x[0] == 1.0 && condition == 1.0, "one snapshot: x = 1 (%.17g), cond 1", x[0]);
    /* Two and three snapshots: the paths of the reduction without and with
     * a reflection. The target among the snapshots: that snapshot alone. */
    const double gammas[] = {gamma_of(0.05), gamma_of(0.10), gamma_of(0.05)};
    const double times[] = {1000.0, 1000.0, 2000.0};
    for (uint32_t count = 2; count <= 3; count++) {
        CHECK_STATUS(ema_posthoc_coefficients(count, gammas, times, gammas[1], times[1], x, &condition), EMA_OK);
        CHECK(fabs(x[0]) < 1e-9 && fabs(x[1] - 1.0) < 1e-9 && (count == 2 || fabs(x[2]) < 1e-9),
              "%u snapshots, a snapshot's own profile: %.3g %.3g", count, x[0], x[1]);
    }
    /* Duplicate snapshots: A is singular; the minimum-norm solution splits evenly. */
    const double dup_gammas[] = {g, g};
    const double dup_times[] = {t, t};
    CHECK_STATUS(ema_posthoc_coefficients(2, dup_gammas, dup_times, g, t, x, &condition), EMA_OK);
    CHECK(fabs(x[0] - 0.5) < 1e-12 && fabs(x[1] - 0.5) < 1e-12 && condition == condition,
          "duplicates share: %.17g %.17g", x[0], x[1]);
    /* The times' unit does not matter (A and b are scaled by powers of 2
     * before the reduction): seconds or 1e-300 of them. */
    const double big_times[] = {1e300, 1e300, 2e300}, small_times[] = {1e-300, 1e-300, 2e-300};
    double y[3], z[3];
    CHECK_STATUS(ema_posthoc_coefficients(3, gammas, times, gamma_of(0.07), 2000.0, x, NULL), EMA_OK);
    CHECK_STATUS(ema_posthoc_coefficients(3, gammas, big_times, gamma_of(0.07), 2e300, y, NULL), EMA_OK);
    CHECK_STATUS(ema_posthoc_coefficients(3, gammas, small_times, gamma_of(0.07), 2e-300, z, NULL), EMA_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(fabs(x[i] - y[i]) <= 1e-9 && fabs(x[i] - z[i]) <= 1e-9, "x[%d] %.17g at 1e300 %.17g at 1e-300 %.17g",
              i, x[i], y[i], z[i]);
    }
    /* Refusals, and nothing written. */
    memset(x, 0, sizeof x);
    CHECK_STATUS(ema_posthoc_coefficients(0, gammas, times, g, t, x, NULL), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_posthoc_coefficients(1, NULL, times, g, t, x, NULL), EMA_ERROR_NULL_ARGUMENT);
    const double bad_time = -1.0;
    CHECK_STATUS(ema_posthoc_coefficients(1, &g, &bad_time, g, t, x, NULL), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_posthoc_coefficients(1, &g, &t, -2.0, t, x, NULL), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_posthoc_coefficients(EMA_MAX_POSTHOC_SNAPSHOTS + 1, gammas, times, g, t, x, NULL),
                 EMA_ERROR_INVALID_ARGUMENT);
    /* A target the snapshots cannot express: b underflows to 0, the target
     * ending 1e306 times earlier than the snapshot ((1e-306)^6.94 is 0). */
    CHECK_STATUS(ema_posthoc_coefficients(1, &g, &t, g, t * 1e-306, x, NULL), EMA_ERROR_INVALID_ARGUMENT);
    CHECK(x[0] == 0.0, "a refused call writes nothing");
}

/* The largest count: it runs, the coefficients sum to 1, the condition
 * number is what REFERENCES.md leads one to expect (~5e8 at 512). */
static void test_largest(void) {
    const uint32_t n = EMA_MAX_POSTHOC_SNAPSHOTS;
    double* gammas = malloc(n * sizeof(double));
    double* times = malloc(n * sizeof(double));
    double* x = malloc(n * sizeof(double));
    if (!CHECK(gammas != NULL && times != NULL && x != NULL, "out of memory")) {
        free(gammas), free(times), free(x);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        gammas[i] = gamma_of(i % 2 == 0 ? 0.05 : 0.10);
        times[i] = 8.0 * (i / 2 + 1);
    }
    double condition = 0.0, sum = 0.0;
    CHECK_STATUS(ema_posthoc_coefficients(n, gammas, times, gamma_of(0.08), times[n - 1], x, &condition), EMA_OK);
    for (uint32_t i = 0; i < n; i++) {
        sum += x[i];
    }
    CHECK(fabs(sum - 1.0) < 1e-9 && condition > 1e9 && condition < 1e11, "%u snapshots: sum %.17g, condition %.4g",
          n, sum, condition);
    free(gammas), free(times), free(x);
}

/* ---- test/fixtures/posthoc.txt ---------------------------------------------- */

/* The file, line by line: records are lines of words separated by spaces;
 * `#` lines are comments. */
typedef struct lines {
    char* next;
    const char* path;
    size_t number; /* of the current line */
    char* words;   /* the rest of the current line */
    int failed;
} lines;

static int lines_fail(lines* l, const char* fmt, ...) CHECK_PRINTF(2, 3);
static int lines_fail(lines* l, const char* fmt, ...) {
    if (!l->failed) {
        l->failed = 1;
        printf("%s:%zu: ", l->path, l->number);
        va_list args;
        va_start(args, fmt);
        vprintln(fmt, args);
        va_end(args);
        check_result(0, __FILE__, __LINE__, "fixture", "%s parses", l->path);
    }
    return 0;
}

/* The next record's first word, or NULL at the end. */
static const char* next_record(lines* l) {
    while (!l->failed && l->next != NULL && *l->next != '\0') {
        char* line = l->next;
        char* end = strchr(line, '\n');
        if (end != NULL) {
            *end = '\0';
            l->next = end + 1;
        } else {
            l->next = NULL;
        }
        l->number++;
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        char* space = strchr(line, ' ');
        l->words = space != NULL ? (*space = '\0', space + 1) : line + strlen(line);
        return line;
    }
    return NULL;
}

static const char* next_word(lines* l) {
    if (l->failed) {
        return NULL;
    }
    if (*l->words == '\0') {
        lines_fail(l, "the line ends early");
        return NULL;
    }
    char* word = l->words;
    char* space = strchr(word, ' ');
    l->words = space != NULL ? (*space = '\0', space + 1) : word + strlen(word);
    return word;
}

/* The next record, which must be `expected`. */
static int expect_record(lines* l, const char* expected) {
    const char* record = next_record(l);
    if (l->failed) {
        return 0;
    }
    if (record == NULL) {
        return lines_fail(l, "expected '%s', found the end of the file", expected);
    }
    return strcmp(record, expected) == 0 || lines_fail(l, "expected '%s', found '%s'", expected, record);
}

static int expect_word(lines* l, const char* expected) {
    const char* word = next_word(l);
    return word != NULL && (strcmp(word, expected) == 0 || lines_fail(l, "expected '%s', found '%s'", expected, word));
}

static int end_of_line(lines* l) {
    return l->failed || *l->words == '\0' || lines_fail(l, "more words than expected: '%s'", l->words);
}

static int read_hex(lines* l, unsigned digits, uint64_t* bits) {
    const char* word = next_word(l);
    if (word == NULL) {
        return 0;
    }
    uint64_t value = 0;
    for (unsigned i = 0; i < digits; i++) {
        const char c = word[i];
        const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0) {
            return lines_fail(l, "bad %u-digit hex word '%s'", digits, word);
        }
        value = value << 4 | (uint64_t)digit;
    }
    if (word[digits] != '\0') {
        return lines_fail(l, "bad %u-digit hex word '%s'", digits, word);
    }
    *bits = value;
    return 1;
}

static int read_f64(lines* l, double* value) {
    uint64_t bits = 0;
    return read_hex(l, 16, &bits) && (*value = f64_from_bits(bits), 1);
}

static int read_f32s(lines* l, size_t count, float* values) {
    for (size_t i = 0; i < count; i++) {
        uint64_t bits = 0;
        if (!read_hex(l, 8, &bits)) {
            return 0;
        }
        values[i] = f32_from_bits((uint32_t)bits);
    }
    return 1;
}

static int read_size(lines* l, size_t max, size_t* value) {
    const char* word = next_word(l);
    if (word == NULL) {
        return 0;
    }
    char* end = NULL;
    const unsigned long long parsed = strtoull(word, &end, 10);
    if (end == word || *end != '\0' || word[0] == '-' || parsed > max) {
        return lines_fail(l, "bad count '%s'", word);
    }
    *value = (size_t)parsed;
    return 1;
}

/* A profile record: sigma_rel, gamma, time; gamma must be this library's
 * gamma of that sigma_rel, to the bit (the generator repeats the Newton
 * iteration of src/schedule.c). */
static int read_profile(lines* l, const char* record, const char* name, double* gamma, double* time) {
    double sigma_rel = 0.0;
    if (!expect_record(l, record) || !read_f64(l, &sigma_rel) || !read_f64(l, gamma) || !read_f64(l, time) ||
        !end_of_line(l)) {
        return 0;
    }
    double ours = -1.0;
    CHECK_STATUS(ema_gamma_of_sigma_rel(sigma_rel, &ours), EMA_OK);
    CHECK(f64_bits(ours) == f64_bits(*gamma), "%s: gamma of sigma_rel %.17g: %.17g, the generator's %.17g", name,
          sigma_rel, ours, *gamma);
    return 1;
}

/* How far the coefficients may be from NumPy's. Let y be the exact
 * unnormalised solution, s its sum and x = y / s. Both sides compute
 * y + d with ||d||_2 <= cond * e * ||y||_2: each solve is backward stable
 * (Householder tridiagonalisation and QR steps here, the SVD of LAPACK's
 * gelsd there; a backward error e ||A||, bounded by O(n) u in theory, a
 * small multiple of u in practice), each side computes A's entries with its
 * own pow (an ulp or two per entry; A is entrywise positive, so that too is
 * a perturbation of norm an ulp or two of ||A||), and the condition number
 * turns a relative perturbation of A or b into a relative error in y.
 * Normalising, (y + d) / (s + sum d) - x = (d - x sum d) / s to first
 * order. |sum d| can reach sqrt(n) ||d||_2 only if the errors line up with
 * (1, ..., 1); rounding errors do not, and |sum d| ~ ||d||_2, so each
 * coefficient moves by about cond * e * ||x||_2 * (1 + ||x||_inf), and the
 * two sides differ by at most twice that. With e = 2u the bound below is
 * 4 u cond ||x||_2 (1 + ||x||_inf). Measured, the two differ by at most
 * 0.34 u cond ||x||_2 (the worst ratio to the bound is printed at the end:
 * 0.042), and a change of 1e-9 in one coefficient of a case with condition
 * number 6e3 is caught.
 *
 * The condition number: Weyl's theorem moves each eigenvalue by at most
 * e ||A||, so the smallest kept one by a relative e cond and the largest by
 * e; the ratio moves by at most 2 e (cond + 1) relative on the two sides
 * together: 4 u (cond + 1) (measured: up to 1/45 of it). */
#define POSTHOC_BACKWARD_ERROR (2.0 * 0x1p-53)

/* The largest error / tolerance seen, for the coefficients and the condition number. */
static double g_worst_ratio = 0.0, g_worst_condition_ratio = 0.0;

static void check_coefficients(const char* name, uint32_t count, const double* x, const double* expected,
                               double condition, double expected_condition) {
    double norm2 = 0.0, norm_inf = 0.0, norm1 = 0.0, sum = 0.0;
    for (uint32_t i = 0; i < count; i++) {
        norm2 += expected[i] * expected[i];
        norm_inf = fmax(norm_inf, fabs(expected[i]));
        norm1 += fabs(x[i]);
        sum += x[i];
    }
    norm2 = sqrt(norm2);
    const double tolerance = 2.0 * POSTHOC_BACKWARD_ERROR * expected_condition * norm2 * (1.0 + norm_inf);
    size_t wrong = 0;
    for (uint32_t i = 0; i < count; i++) {
        const double error = fabs(x[i] - expected[i]);
        g_worst_ratio = fmax(g_worst_ratio, error / tolerance);
        if (!(error <= tolerance) && wrong++ < 4) {
            CHECK(0, "%s: x[%u] = %.17g, NumPy %.17g: %.3g apart, tolerance %.3g (cond %.4g)", name, i, x[i],
                  expected[i], error, tolerance, expected_condition);
        }
    }
    CHECK(wrong == 0, "%s: %zu of %u coefficients within %.3g of NumPy's", name, wrong, count, tolerance);
    /* The normalisation: n divisions and the sum's n roundings. */
    CHECK(fabs(sum - 1.0) <= 2.0 * (count + 1) * 0x1p-53 * norm1, "%s: the coefficients sum to 1 (%.17g)", name,
          sum);
    const double condition_tolerance = 2.0 * POSTHOC_BACKWARD_ERROR * (expected_condition + 1.0);
    const double condition_error = fabs(condition - expected_condition) / expected_condition;
    g_worst_condition_ratio = fmax(g_worst_condition_ratio, condition_error / condition_tolerance);
    CHECK(condition_error <= condition_tolerance,
          "%s: condition number %.17g, NumPy %.17g (relative tolerance %.3g)", name, condition, expected_condition,
          condition_tolerance);
}

/* A `sum` record: the API and every kernel against NumPy's float32 bits. */
static void check_sum(lines* l, const char* name, uint32_t count, const double* coefficients) {
    size_t n = 0, stride = 0;
    if (!read_size(l, 1u << 20, &n) || !read_size(l, 1u << 20, &stride)) {
        return;
    }
    const size_t span = (size_t)count * stride;
    float* inputs = malloc((span == 0 ? 1 : span) * sizeof(float));
    float* expected = malloc((n == 0 ? 1 : n) * sizeof(float));
    float* out = malloc((n == 0 ? 1 : n) * sizeof(float));
    if (!CHECK(inputs != NULL && expected != NULL && out != NULL, "out of memory")) {
        free(inputs), free(expected), free(out);
        return;
    }
    if (read_f32s(l, span, inputs) && expect_word(l, "expect") && read_f32s(l, n, expected) && end_of_line(l)) {
        for (size_t k = 0; k <= KERNEL_COUNT; k++) {
            const char* who = k < KERNEL_COUNT ? kKernels[k].name : "ema_posthoc_weighted_sum";
            for (size_t j = 0; j < n; j++) {
                out[j] = f32_from_bits(kSentinelBits);
            }
            if (k < KERNEL_COUNT) {
                if (n != 0) {
                    kKernels[k].fn(n, count, inputs, stride, coefficients, out);
                }
            } else {
                CHECK_STATUS(ema_posthoc_weighted_sum(n, count, inputs, stride, coefficients, out), EMA_OK);
            }
            size_t wrong = 0;
            for (size_t j = 0; j < n; j++) {
                if (!same_f32(out[j], expected[j]) && wrong++ < 4) {
                    CHECK(0, "%s: %s n=%zu stride=%zu: out[%zu] = 0x%08x, NumPy 0x%08x", name, who, n, stride, j,
                          f32_bits(out[j]), f32_bits(expected[j]));
                }
            }
            CHECK(wrong == 0, "%s: %s n=%zu: %zu of %zu differ from NumPy", name, who, n, wrong, n);
        }
    }
    free(inputs), free(expected), free(out);
}

/* One case: its snapshots and target, NumPy's answer, then the sums. */
static int replay_case(lines* l) {
    const char* name = next_word(l);
    size_t count = 0;
    if (name == NULL || !read_size(l, EMA_MAX_POSTHOC_SNAPSHOTS, &count) || !end_of_line(l) || count == 0) {
        return count == 0 ? lines_fail(l, "a case needs snapshots") : 0;
    }
    double* gammas = malloc(count * sizeof(double));
    double* times = malloc(count * sizeof(double));
    double* expected = malloc(count * sizeof(double));
    double* x = malloc(count * sizeof(double));
    if (!CHECK(gammas != NULL && times != NULL && expected != NULL && x != NULL, "out of memory")) {
        free(gammas), free(times), free(expected), free(x);
        return 0;
    }
    double target_gamma = 0.0, target_time = 0.0, expected_condition = 0.0;
    int ok = read_profile(l, "target", name, &target_gamma, &target_time);
    for (size_t i = 0; ok && i < count; i++) {
        ok = read_profile(l, "snapshot", name, &gammas[i], &times[i]);
    }
    ok = ok && expect_record(l, "coefficients");
    for (size_t i = 0; ok && i < count; i++) {
        ok = read_f64(l, &expected[i]);
    }
    ok = ok && end_of_line(l) && expect_record(l, "condition") && read_f64(l, &expected_condition) &&
         end_of_line(l);
    if (ok) {
        double condition = 0.0;
        CHECK_STATUS(ema_posthoc_coefficients((uint32_t)count, gammas, times, target_gamma, target_time, x,
                                              &condition),
                     EMA_OK);
        check_coefficients(name, (uint32_t)count, x, expected, condition, expected_condition);
        const char* record;
        while ((record = next_record(l)) != NULL && strcmp(record, "sum") == 0) {
            check_sum(l, name, (uint32_t)count, expected);
        }
        ok = !l->failed && (record != NULL && strcmp(record, "end") == 0 && end_of_line(l)
                                ? 1
                                : lines_fail(l, "expected 'sum' or 'end', found '%s'", record ? record : "the end"));
    }
    free(gammas), free(times), free(expected), free(x);
    return ok;
}

/* The fit error: 0 for a target that is a snapshot, small for EDM2's
 * setup at a width between its profiles, large for a time after the last
 * snapshot or a width far narrower than the snapshots resolve. */
static void test_fit_error(void) {
    enum { SNAPSHOTS = 32 };
    double gammas[SNAPSHOTS], times[SNAPSHOTS], x[SNAPSHOTS];
    for (int i = 0; i < SNAPSHOTS; i++) {
        gammas[i] = gamma_of(i % 2 == 0 ? 0.05 : 0.10);
        times[i] = 8.0 * (i / 2 + 1);
    }
    const double last = times[SNAPSHOTS - 1];
    double condition;
    CHECK_STATUS(ema_posthoc_coefficients(SNAPSHOTS, gammas, times, gammas[SNAPSHOTS - 1], last, x, &condition), EMA_OK);
    const double exact = ema_posthoc_fit_error(SNAPSHOTS, gammas, times, gammas[SNAPSHOTS - 1], last, x);
    CHECK(exact < 1e-6, "a snapshot's own profile: %g", exact);
    CHECK_STATUS(ema_posthoc_coefficients(SNAPSHOTS, gammas, times, gamma_of(0.07), last, x, &condition), EMA_OK);
    const double between = ema_posthoc_fit_error(SNAPSHOTS, gammas, times, gamma_of(0.07), last, x);
    CHECK(between > 0.0 && between < 0.02, "sigma_rel 0.07 at the end: %g", between);
    CHECK_STATUS(ema_posthoc_coefficients(SNAPSHOTS, gammas, times, gamma_of(0.07), 2.0 * last, x, &condition), EMA_OK);
    const double after = ema_posthoc_fit_error(SNAPSHOTS, gammas, times, gamma_of(0.07), 2.0 * last, x);
    CHECK(after > 0.3, "twice the last snapshot's time: %g", after);
    CHECK_STATUS(ema_posthoc_coefficients(SNAPSHOTS, gammas, times, gamma_of(0.001), last, x, &condition), EMA_OK);
    const double narrow = ema_posthoc_fit_error(SNAPSHOTS, gammas, times, gamma_of(0.001), last, x);
    CHECK(narrow > 0.3, "sigma_rel 0.001 from snapshots 8 apart: %g", narrow);
    CHECK(isnan(ema_posthoc_fit_error(0, gammas, times, 1.0, 1.0, x)), "no snapshots: NaN");
    CHECK(isnan(ema_posthoc_fit_error(SNAPSHOTS, gammas, times, -1.0, 1.0, x)), "invalid target: NaN");
}

int main(int argc, char** argv) {
    check_begin("test_posthoc");
    seed_random(0x5eed0c0fu);
    test_inner_product();
    test_kernels();
    test_kernels_special();
    test_weighted_sum_api();
    test_coefficient_edges();
    test_largest();
    test_fit_error();

    fixture_reader reader;
    if (fixture_open(&reader, argc > 1 ? argv[1] : DEFAULT_FIXTURE) != 0) {
        CHECK(0, "the fixture opens");
        return check_end();
    }
    lines l = {.next = reader.text, .path = reader.path};
    unsigned cases = 0;
    const char* record = next_record(&l);
    if (record != NULL && strcmp(record, "emaposthoc") == 0 && expect_word(&l, "1") && end_of_line(&l)) {
        while ((record = next_record(&l)) != NULL) {
            if (strcmp(record, "case") != 0) {
                lines_fail(&l, "expected 'case', found '%s'", record);
                break;
            }
            if (!replay_case(&l)) {
                break;
            }
            cases++;
        }
    } else {
        lines_fail(&l, "not an emaposthoc 1 file");
    }
    CHECK(!l.failed && cases >= 20, "%u fixture cases replayed", cases);
    printf("test_posthoc: against NumPy, the worst error / tolerance %.3g (coefficients), %.3g (condition number)\n",
           g_worst_ratio, g_worst_condition_ratio);
    fixture_close(&reader);
    return check_end();
}
