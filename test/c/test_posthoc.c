/*
 * test_posthoc.c - the post-hoc EMA reconstruction (src/posthoc.c): the
 * profiles' inner product, the coefficients against numpy's
 * np.linalg.lstsq on the same system (the script that computed them is in
 * the comment below), within a tolerance derived from the condition number,
 * the edge cases and refusals, and the largest count.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ema_posthoc.h"

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

static double gamma_of(double sigma_rel) {
    double gamma = -1.0;
    CHECK_STATUS(ema_gamma_of_sigma_rel(sigma_rel, &gamma), EMA_OK);
    return gamma;
}

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

/* EDM2's setup: profiles sigma_rel 0.05 and 0.10, snapshots at t = 1000 ...
 * 8000 (16 in all, alternating), target sigma_rel 0.07 at t = 8000. numpy's
 * answer (x = lstsq(A, b)[0]; x /= x.sum()), condition number 535.29:
 *
 *   g1, g2 = gamma_of(0.05), gamma_of(0.10)   # the fixed Newton iteration
 *   snaps = [(g, t * 1000.0) for t in range(1, 9) for g in (g1, g2)]
 *   A = [[ip(a, b) for b in snaps] for a in snaps]; b = [ip(a, target) for a in snaps]
 */
static const double kNumpyCoefficients[] = {
    3.8922757519890035e-12, -9.56128314966501e-11, 1.7380077587586893e-08,
    -1.1822569160756104e-07, 2.22398245729886e-06, -9.141160436767402e-06,
    6.608857533548856e-05, -0.00021443138302108637, 0.0008865974514008443,
    -0.0025444840586683125, 0.0072521780242083824, -0.019405441994358685,
    0.04239791331066357, -0.10864094698057092, 0.3870821304001592,
    0.6931274147701655,
};

static void test_coefficients_match_numpy(void) {
    double gammas[16], times[16], x[16];
    for (int t = 1; t <= 8; t++) {
        gammas[2 * (t - 1)] = gamma_of(0.05);
        gammas[2 * (t - 1) + 1] = gamma_of(0.10);
        times[2 * (t - 1)] = times[2 * (t - 1) + 1] = t * 1000.0;
    }
    double condition = 0.0;
    CHECK_STATUS(ema_posthoc_coefficients(16, gammas, times, gamma_of(0.07), 8000.0, x, &condition), EMA_OK);
    CHECK(fabs(condition - 535.29) < 0.5, "condition number %.6g (numpy: 535.29)", condition);
    /* Both solves are backward stable: they may differ by about cond * eps
     * in each coefficient (REFERENCES.md); 64x that leaves room for the two
     * algorithms' different constants. */
    const double tolerance = 64.0 * condition * 0x1p-52;
    double sum = 0.0;
    for (size_t i = 0; i < COUNT_OF(kNumpyCoefficients); i++) {
        CHECK(fabs(x[i] - kNumpyCoefficients[i]) <= tolerance, "x[%zu] = %.17g, numpy %.17g (tolerance %.3g)", i,
              x[i], kNumpyCoefficients[i], tolerance);
        sum += x[i];
    }
    CHECK(fabs(sum - 1.0) <= 16 * 0x1p-52, "the coefficients sum to 1 (%.17g)", sum);
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

int main(void) {
    check_begin("test_posthoc");
    test_inner_product();
    test_coefficients_match_numpy();
    test_coefficient_edges();
    test_largest();
    return check_end();
}
