/*
 * posthoc.c - the reconstruction of EDM2's post-hoc EMA (Karras et al.
 * 2024, Section 3 and its appendix): which mix of snapshots of
 * power-function EMA profiles best stands for the profile of another width.
 *
 * A profile (gamma, t) weighs training time tau in [0, t] by
 * p(tau) = (gamma + 1) tau^gamma / t^(gamma + 1). Two profiles' inner product
 * has a closed form (ema_profile_inner_product); the coefficients x solve the
 * least-squares system A x = b, A_ij = <p_i, p_j> over the snapshots and
 * b_i = <p_i, p_target>, then are normalised to sum to 1. A is symmetric and
 * often nearly singular (duplicate snapshots make it singular), so it is
 * solved by its singular value decomposition (one-sided Jacobi), giving the
 * minimum-norm solution and the condition number in one go. Everything is
 * float64. Implemented from the paper; EDM2's code is not used.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ema_posthoc.h"

double ema_profile_inner_product(double gamma_a, double t_a, double gamma_b, double t_b) {
    if (!(gamma_a >= 0.0 && gamma_b >= 0.0 && t_a > 0.0 && t_b > 0.0) || isinf(t_a) || isinf(t_b)) {
        return __builtin_nan("");
    }
    const double scale = (gamma_a + 1.0) * (gamma_b + 1.0) / ((gamma_a + gamma_b + 1.0) * fmax(t_a, t_b));
    /* (t_a / t_b)^(gamma_b) when t_a < t_b, else (t_a / t_b)^(-gamma_a): the
     * shorter profile's share of the longer one. */
    return t_a < t_b ? scale * pow(t_a / t_b, gamma_b) : scale * pow(t_a / t_b, -gamma_a);
}

/* Singular values below this fraction of the largest are treated as zero:
 * their directions are what the snapshots cannot tell apart. */
#define EMA_POSTHOC_RANK_TOLERANCE (1e-14)
#define EMA_POSTHOC_MAX_SWEEPS 60

/* One-sided Jacobi SVD of the n x n matrix u (row-major, overwritten): on
 * return u's columns are U * diag(s) (not normalised), v (n x n) holds V, and
 * s the singular values (the columns' norms). */
static void jacobi_svd(uint32_t n, double* u, double* v, double* s) {
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++) {
            v[i * n + j] = i == j ? 1.0 : 0.0;
        }
    }
    for (int sweep = 0; sweep < EMA_POSTHOC_MAX_SWEEPS; sweep++) {
        int rotated = 0;
        for (uint32_t p = 0; p + 1 < n; p++) {
            for (uint32_t q = p + 1; q < n; q++) {
                double alpha = 0.0, beta = 0.0, gamma = 0.0;
                for (uint32_t k = 0; k < n; k++) {
                    const double up = u[k * n + p], uq = u[k * n + q];
                    alpha += up * up;
                    beta += uq * uq;
                    gamma += up * uq;
                }
                if (gamma == 0.0 || fabs(gamma) <= 1e-15 * sqrt(alpha * beta)) {
                    continue;
                }
                rotated = 1;
                const double zeta = (beta - alpha) / (2.0 * gamma);
                const double t = copysign(1.0, zeta) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                const double c = 1.0 / sqrt(1.0 + t * t);
                const double sn = c * t;
                for (uint32_t k = 0; k < n; k++) {
                    const double up = u[k * n + p], uq = u[k * n + q];
                    u[k * n + p] = c * up - sn * uq;
                    u[k * n + q] = sn * up + c * uq;
                    const double vp = v[k * n + p], vq = v[k * n + q];
                    v[k * n + p] = c * vp - sn * vq;
                    v[k * n + q] = sn * vp + c * vq;
                }
            }
        }
        if (!rotated) {
            break;
        }
    }
    for (uint32_t j = 0; j < n; j++) {
        double norm = 0.0;
        for (uint32_t k = 0; k < n; k++) {
            norm += u[k * n + j] * u[k * n + j];
        }
        s[j] = sqrt(norm);
    }
}

ema_status ema_posthoc_coefficients(uint32_t count, const double* gammas, const double* times,
                                    double target_gamma, double target_time, double* coefficients,
                                    double* condition) {
    if (count != 0 && (gammas == NULL || times == NULL || coefficients == NULL)) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (count == 0 || count > EMA_MAX_POSTHOC_SNAPSHOTS) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    if (isnan(ema_profile_inner_product(target_gamma, target_time, target_gamma, target_time))) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (isnan(ema_profile_inner_product(gammas[i], times[i], gammas[i], times[i]))) {
            return EMA_ERROR_INVALID_ARGUMENT;
        }
    }
    const size_t n = count;
    double* work = malloc((2 * n * n + 3 * n) * sizeof(double));
    if (work == NULL) {
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    double* u = work;
    double* v = u + n * n;
    double* s = v + n * n;
    double* b = s + n;
    double* x = b + n;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            u[i * n + j] = ema_profile_inner_product(gammas[i], times[i], gammas[j], times[j]);
        }
        b[i] = ema_profile_inner_product(gammas[i], times[i], target_gamma, target_time);
    }
    jacobi_svd(count, u, v, s);

    /* x = V diag(1/s) U^T b over the singular values above the tolerance;
     * u's columns are U_j * s_j, so U_j^T b / s_j = (u_j . b) / s_j^2. */
    double largest = 0.0, smallest = INFINITY;
    for (size_t j = 0; j < n; j++) {
        largest = fmax(largest, s[j]);
    }
    memset(x, 0, n * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        if (!(s[j] > EMA_POSTHOC_RANK_TOLERANCE * largest)) {
            continue;
        }
        smallest = fmin(smallest, s[j]);
        double dot = 0.0;
        for (size_t k = 0; k < n; k++) {
            dot += u[k * n + j] * b[k];
        }
        const double weight = dot / (s[j] * s[j]);
        for (size_t k = 0; k < n; k++) {
            x[k] += v[k * n + j] * weight;
        }
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
    }
    if (!(fabs(sum) > 0.0) || !isfinite(sum)) {
        free(work);
        return EMA_ERROR_INVALID_ARGUMENT; /* nothing of the target lies in the snapshots' span */
    }
    for (size_t i = 0; i < n; i++) {
        coefficients[i] = x[i] / sum;
    }
    if (condition != NULL) {
        *condition = largest / smallest;
    }
    free(work);
    return EMA_OK;
}
