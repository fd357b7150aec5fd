/*
 * posthoc.c - the reconstruction of EDM2's post-hoc EMA (Karras et al.
 * 2024, Section 3 and its appendix): which mix of snapshots of
 * power-function EMA profiles best stands for the profile of another width,
 * and the mix itself.
 *
 * A profile (gamma, t) weighs training time tau in [0, t] by
 * p(tau) = (gamma + 1) tau^gamma / t^(gamma + 1). Two profiles' inner product
 * has a closed form (ema_profile_inner_product); the coefficients x solve the
 * least-squares system A x = b, A_ij = <p_i, p_j> over the snapshots and
 * b_i = <p_i, p_target>, then are normalised to sum to 1.
 *
 * A is a Gram matrix: symmetric and positive semidefinite, often nearly
 * singular, and singular for duplicate snapshots. Its eigen-decomposition
 * A = V diag(lambda) V^T gives both the minimum-norm solution
 * x = sum over kept k of (v_k . b / lambda_k) v_k and the condition number
 * (A's singular values are its |lambda|). It is computed the textbook way
 * (Golub and Van Loan, Matrix Computations, 4th ed., 8.3): Householder
 * reflections reduce A to a tridiagonal T = Q^T A Q (4/3 n^3 flops, the
 * cost), then implicit QR steps with Wilkinson's shift rotate T to diagonal
 * (O(n^2) here). The eigenvectors are never formed: b is carried into the
 * eigenbasis through the same reflections and rotations, and the solution
 * back through them in reverse, so the rotations are recorded instead.
 * Everything is float64, in one fixed order of operations. Implemented from
 * the paper and the textbook; EDM2's code is not used.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ema_posthoc.h"
#include "f32-vweighted-sum.h"

double ema_profile_inner_product(double gamma_a, double t_a, double gamma_b, double t_b) {
    if (!(gamma_a >= 0.0 && gamma_b >= 0.0 && t_a > 0.0 && t_b > 0.0) || isinf(t_a) || isinf(t_b)) {
        return __builtin_nan("");
    }
    const double scale = (gamma_a + 1.0) * (gamma_b + 1.0) / ((gamma_a + gamma_b + 1.0) * fmax(t_a, t_b));
    /* (t_a / t_b)^(gamma_b) when t_a < t_b, else (t_a / t_b)^(-gamma_a): the
     * shorter profile's share of the longer one. */
    return t_a < t_b ? scale * pow(t_a / t_b, gamma_b) : scale * pow(t_a / t_b, -gamma_a);
}

/* Eigenvalues below this fraction of the largest (in magnitude) are treated
 * as zero: their directions are what the snapshots cannot tell apart. */
#define EMA_POSTHOC_RANK_TOLERANCE (1e-14)

/* QR steps allowed per eigenvalue before giving up. With Wilkinson's shift
 * the iteration converges globally, and cubically in the end: measured, 1.3
 * steps per eigenvalue on average; the limit only bounds the loop. */
#define EMA_POSTHOC_MAX_STEPS_PER_EIGENVALUE 64

/* ---- Householder tridiagonalisation --------------------------------------- */

/* A's lower triangle, packed by columns: column j holds A_ij for i = j ..
 * n-1, contiguous, and column j + 1 follows it. Each reflection works on a
 * trailing block [k+1, n) x [k+1, n), which is then one contiguous tail of
 * the array, streamed front to back. column(a, n, j)[i] is A_ij, i >= j. */
static double* column(double* a, size_t n, size_t j) {
    return a + j * (2 * n - j - 1) / 2;
}

/* Reflection k (k = 0 .. n-3) is H_k = I - beta_k u u^T, u zero in rows
 * 0..k and u_{k+1..n-1} = (x_0 - alpha, x_1, ...) for x = A[k+1.., k]: it
 * maps x to (alpha, 0, ...), alpha = -sign(x_0) ||x|| (the sign that does
 * not cancel), with beta_k = 2 / (u . u) = 1 / (||x|| (||x|| + |x_0|)).
 *
 * The reflector of column k: offdiagonal[k] = alpha, beta[k], and u written
 * over the column's entries below the diagonal (column(k)[k+1..n-1]), where
 * it stays for carrying b through the reflections. A column whose norm is 0
 * (or underflows) needs no reflection: beta 0 (what is left below its first
 * entry is below 1e-154 of A's largest entry, which the scaling made about
 * 1, so dropping it is far within the solve's backward error). */
static void make_reflector(double* a, size_t n, size_t k, double* offdiagonal, double* beta) {
    double* x = column(a, n, k);
    double norm2 = 0.0;
    for (size_t i = k + 1; i < n; i++) {
        norm2 += x[i] * x[i];
    }
    const double x0 = x[k + 1];
    const double norm = sqrt(norm2);
    if (!(norm > 0.0)) {
        offdiagonal[k] = x0;
        beta[k] = 0.0;
        return;
    }
    const double alpha = x0 >= 0.0 ? -norm : norm;
    offdiagonal[k] = alpha;
    x[k + 1] = x0 - alpha;
    beta[k] = 1.0 / (norm * (norm + fabs(x0)));
}

/* The workspace of one solve, carved out of one allocation. */
typedef struct solver {
    size_t n;
    double* a;           /* A's lower triangle, packed by columns; then the reflectors */
    double* diagonal;    /* T's diagonal, then the eigenvalues (n) */
    double* offdiagonal; /* T's subdiagonal (n - 1) */
    double* beta;        /* the reflectors' beta (n) */
    double* p;           /* A u for the current reflector, then w (n) */
    double* p_next;      /* A u for the next (n) */
    double* vector;      /* b, carried through every transformation (n) */
    double* zeros;       /* n zeros: a reflection or product that is not there */
} solver;

/* Column j of the trailing block, entries [j, n): the reflection's update
 * A_ij <- A_ij - (u_i w_j + w_i u_j), then the updated column's share of the
 * next reflector's A v: next_av[i] += A_ij v_j for i > j, and the return
 * value, sum over i >= j of A_ij v_i (next_av[j]'s share from this column).
 * One pass over the column: it is read and written once per reflection.
 * The dot product keeps two partial sums (even and odd offsets from j + 1,
 * added at the end): a fixed order, half the latency chain, and a pair the
 * SIMD128 build (and SSE2) turns into f64x2 arithmetic. Not inlined: V8
 * optimises a WebAssembly function only for its later calls (there is no
 * on-stack replacement), so the loop that does nearly all the work must be
 * a function called often, not part of the one long call: measured at 1024
 * snapshots in the SIMD128 build, the reduction took 0.6 s with this loop
 * inlined, 0.2 s without (0.44 s in a process's first call). */
__attribute__((noinline)) static double reflect_column(double* c, size_t j, size_t n, const double* u,
                                                       const double* w, const double* v, double* next_av) {
    const double uj = u[j], wj = w[j], vj = v[j];
    const double diagonal = c[j] - (u[j] * wj + w[j] * uj);
    c[j] = diagonal;
    double dot0 = 0.0, dot1 = 0.0;
    size_t i = j + 1;
    for (; i + 2 <= n; i += 2) {
        const double r0 = c[i] - (u[i] * wj + w[i] * uj);
        const double r1 = c[i + 1] - (u[i + 1] * wj + w[i + 1] * uj);
        c[i] = r0;
        c[i + 1] = r1;
        dot0 += r0 * v[i];
        dot1 += r1 * v[i + 1];
        next_av[i] += r0 * vj;
        next_av[i + 1] += r1 * vj;
    }
    if (i < n) {
        const double r0 = c[i] - (u[i] * wj + w[i] * uj);
        c[i] = r0;
        dot0 += r0 * v[i];
        next_av[i] += r0 * vj;
    }
    return diagonal * vj + (dot0 + dot1);
}

/* A <- H_k A H_k for k = 0 .. n-3 (Golub and Van Loan 8.3.1): with
 * p = beta A u, w = p - (beta (p . u) / 2) u, then A <- A - u w^T - w u^T
 * on the trailing block. The pass that applies reflection k also forms A u
 * for reflection k + 1, whose u is column k + 1 after reflection k: that
 * column is updated first. A reflection that is not there (beta 0) and a
 * next reflector that is not there run as zero vectors: an update by
 * zeros leaves the bits as they are, a product with zeros goes unused, and
 * both happen only O(n^2) times. Fills the diagonal, the subdiagonal and
 * beta; the reflectors' u stay in A's columns. */
static void reduce_to_tridiagonal(solver* s) {
    const size_t n = s->n;
    double* a = s->a;
    double* p = s->p;
    double* p_next = s->p_next;
    const double* zeros = s->zeros;
    s->diagonal[0] = a[0];
    if (n == 1) {
        return;
    }
    if (n == 2) {
        s->offdiagonal[0] = column(a, n, 0)[1];
        s->diagonal[1] = column(a, n, 1)[1];
        return;
    }
    /* The first reflector's A u: a pass that reflects by zeros. */
    make_reflector(a, n, 0, s->offdiagonal, s->beta);
    for (size_t i = 1; i < n; i++) {
        p[i] = 0.0;
    }
    for (size_t j = 1; j < n; j++) {
        p[j] += reflect_column(column(a, n, j), j, n, zeros, zeros, column(a, n, 0), p);
    }

    for (size_t k = 0; k + 2 < n; k++) {
        const size_t first = k + 1; /* the trailing block is [first, n) */
        const double beta = s->beta[k];
        const double* u = beta != 0.0 ? column(a, n, k) : zeros;
        const double* w = zeros;
        if (beta != 0.0) {
            double pu = 0.0;
            for (size_t i = first; i < n; i++) {
                p[i] *= beta;
                pu += p[i] * u[i];
            }
            const double half = 0.5 * beta * pu;
            for (size_t i = first; i < n; i++) {
                p[i] = p[i] - half * u[i]; /* p becomes w */
            }
            w = p;
        }
        /* Column `first`, which the next reflector is made from. */
        for (size_t i = first; i < n; i++) {
            p_next[i] = 0.0;
        }
        (void)reflect_column(column(a, n, first), first, n, u, w, zeros, p_next);
        s->diagonal[first] = column(a, n, first)[first];
        const int has_next = first + 2 < n;
        if (has_next) {
            make_reflector(a, n, first, s->offdiagonal, s->beta);
        } else {
            s->offdiagonal[first] = column(a, n, first)[first + 1];
        }
        const double* v = has_next && s->beta[first] != 0.0 ? column(a, n, first) : zeros;
        for (size_t j = first + 1; j < n; j++) {
            p_next[j] += reflect_column(column(a, n, j), j, n, u, w, v, p_next);
        }
        double* swap = p;
        p = p_next;
        p_next = swap;
    }
    s->diagonal[n - 1] = column(a, n, n - 1)[n - 1];
}

/* vector <- H_k vector for every reflector, in order (Q^T vector), or in
 * reverse order (Q vector). */
static void apply_reflectors(const solver* s, int transpose) {
    const size_t n = s->n;
    double* vector = s->vector;
    for (size_t step = 0; step + 2 < n; step++) {
        const size_t k = transpose ? step : n - 3 - step;
        const double beta = s->beta[k];
        if (beta == 0.0) {
            continue;
        }
        const double* u = column(s->a, n, k);
        double dot = 0.0;
        for (size_t i = k + 1; i < n; i++) {
            dot += u[i] * vector[i];
        }
        const double scale = beta * dot;
        for (size_t i = k + 1; i < n; i++) {
            vector[i] = vector[i] - scale * u[i];
        }
    }
}

/* ---- implicit symmetric QR with Wilkinson's shift -------------------------- */

/* The rotations of the QR steps, in the order applied: each step on the
 * block [first, last] records last - first rotations (c, s) of the planes
 * (first, first + 1), ..., (last - 1, last). */
typedef struct rotation_log {
    double* rotations; /* c, s pairs */
    size_t used, capacity;
    uint32_t* steps;   /* first, last pairs */
    size_t step_count, step_capacity;
} rotation_log;

/* Makes room for `needed` elements, growing by half again (or to
 * `needed`): 0 when out of memory. */
static int grow(void** array, size_t* capacity, size_t needed, size_t element_size) {
    if (needed <= *capacity) {
        return 1;
    }
    const size_t wanted = needed > *capacity + *capacity / 2 ? needed : *capacity + *capacity / 2;
    void* grown = realloc(*array, wanted * element_size);
    if (grown == NULL) {
        return 0;
    }
    *array = grown;
    *capacity = wanted;
    return 1;
}

/* Whether the offdiagonal entry e between d0 and d1 is negligible: below
 * the rounding of its neighbours (Golub and Van Loan 8.3.5). */
static int negligible(double e, double d0, double d1) {
    return fabs(e) <= DBL_EPSILON * 0.5 * (fabs(d0) + fabs(d1));
}

/* One implicit QR step with Wilkinson's shift on the unreduced block
 * [first, last] of the tridiagonal (Golub and Van Loan 8.3.2): a rotation
 * from the shifted first column, then rotations chasing the bulge down.
 * The rotation R of plane (k, k+1), R = [c s; -s c], turns T into R T R^T;
 * `vector` is turned with it (R vector). Records the rotations; 0 when out
 * of memory. */
static int qr_step(double* d, double* e, double* vector, size_t first, size_t last, rotation_log* log) {
    if (!grow((void**)&log->rotations, &log->capacity, log->used + 2 * (last - first), sizeof(double)) ||
        !grow((void**)&log->steps, &log->step_capacity, 2 * log->step_count + 2, sizeof(uint32_t))) {
        return 0;
    }
    log->steps[2 * log->step_count] = (uint32_t)first;
    log->steps[2 * log->step_count + 1] = (uint32_t)last;
    log->step_count++;
    double* rotation = log->rotations + log->used;
    log->used += 2 * (last - first);

    /* The eigenvalue of the trailing 2 x 2 block nearer its last entry. */
    const double half_gap = 0.5 * (d[last - 1] - d[last]);
    const double coupling = e[last - 1];
    const double root = copysign(hypot(half_gap, coupling), half_gap >= 0.0 ? 1.0 : -1.0);
    const double shift = d[last] - coupling * (coupling / (half_gap + root));

    double x = d[first] - shift, z = e[first], bulge = 0.0;
    for (size_t k = first; k < last; k++) {
        if (k > first) {
            x = e[k - 1];
            z = bulge;
        }
        const double r = hypot(x, z);
        const double c = r > 0.0 ? x / r : 1.0;
        const double sn = r > 0.0 ? z / r : 0.0;
        if (k > first) {
            e[k - 1] = r;
        }
        const double dk = d[k], ek = e[k], dk1 = d[k + 1];
        /* R M R^T for M = [dk ek; ek dk1]: the rows of R M, then times R^T. */
        const double m00 = c * dk + sn * ek, m01 = c * ek + sn * dk1;
        const double m10 = c * ek - sn * dk, m11 = c * dk1 - sn * ek;
        d[k] = c * m00 + sn * m01;
        e[k] = c * m01 - sn * m00;
        d[k + 1] = c * m11 - sn * m10;
        if (k + 1 < last) {
            /* Row k+2 had (0, e[k+1]) in columns (k, k+1); R^T makes it the bulge. */
            bulge = sn * e[k + 1];
            e[k + 1] = c * e[k + 1];
        }
        const double v0 = vector[k], v1 = vector[k + 1];
        vector[k] = c * v0 + sn * v1;
        vector[k + 1] = c * v1 - sn * v0;
        rotation[2 * (k - first)] = c;
        rotation[2 * (k - first) + 1] = sn;
    }
    return 1;
}

/* Diagonalises the tridiagonal (d, e) of order n, turning `vector` along:
 * EMA_OK, EMA_ERROR_OUT_OF_MEMORY, or EMA_ERROR_INVALID_ARGUMENT out of
 * steps (never seen). */
static ema_status diagonalise(size_t n, double* d, double* e, double* vector, rotation_log* log) {
    size_t last = n - 1;
    size_t steps_left = (size_t)EMA_POSTHOC_MAX_STEPS_PER_EIGENVALUE * n;
    while (last > 0) {
        if (negligible(e[last - 1], d[last - 1], d[last])) {
            e[last - 1] = 0.0;
            last--;
            continue;
        }
        size_t first = last - 1;
        while (first > 0 && !negligible(e[first - 1], d[first - 1], d[first])) {
            first--;
        }
        if (first > 0) {
            e[first - 1] = 0.0;
        }
        if (steps_left-- == 0) {
            return EMA_ERROR_INVALID_ARGUMENT;
        }
        if (!qr_step(d, e, vector, first, last, log)) {
            return EMA_ERROR_OUT_OF_MEMORY;
        }
    }
    return EMA_OK;
}

/* vector <- R_1^T ... R_N^T vector: back from the eigenbasis. */
static void unrotate(const rotation_log* log, double* vector) {
    size_t used = log->used;
    for (size_t step = log->step_count; step-- > 0;) {
        const size_t first = log->steps[2 * step], last = log->steps[2 * step + 1];
        used -= 2 * (last - first);
        const double* rotation = log->rotations + used;
        for (size_t k = last; k-- > first;) {
            const double c = rotation[2 * (k - first)], sn = rotation[2 * (k - first) + 1];
            const double v0 = vector[k], v1 = vector[k + 1];
            vector[k] = c * v0 - sn * v1;
            vector[k + 1] = sn * v0 + c * v1;
        }
    }
}

/* 2^-e for largest in [2^(e-1), 2^e): a power of two, so that scaling by
 * it is exact and brings the largest into [0.5, 1). 1 for 0. */
static double power_of_two_scale(double largest) {
    int exponent = 0;
    (void)frexp(largest, &exponent);
    return largest > 0.0 ? ldexp(1.0, -exponent) : 1.0;
}

double ema_posthoc_fit_error(uint32_t count, const double* gammas, const double* times,
                             double target_gamma, double target_time, const double* coefficients) {
    if (count == 0 || gammas == NULL || times == NULL || coefficients == NULL) {
        return __builtin_nan("");
    }
    /* ||t - m||^2 = <t,t> - 2 sum_i c_i <p_i,t> + sum_ij c_i c_j <p_i,p_j>:
     * the square's cancellation leaves about 1e-8 of absolute accuracy in
     * the relative distance, plenty to tell a fit from a miss. */
    const double target = ema_profile_inner_product(target_gamma, target_time, target_gamma, target_time);
    double cross = 0.0, mix = 0.0;
    for (uint32_t i = 0; i < count; i++) {
        cross += coefficients[i] * ema_profile_inner_product(gammas[i], times[i], target_gamma, target_time);
        double row = 0.0;
        for (uint32_t j = 0; j < count; j++) {
            row += coefficients[j] * ema_profile_inner_product(gammas[i], times[i], gammas[j], times[j]);
        }
        mix += coefficients[i] * row;
    }
    const double squared = target - 2.0 * cross + mix;
    return sqrt(squared > 0.0 ? squared : 0.0) / sqrt(target);
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
    const size_t packed = n * (n + 1) / 2;
    double* work = malloc((packed + 7 * n) * sizeof(double));
    if (work == NULL) {
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    solver s = {.n = n, .a = work};
    s.diagonal = s.a + packed;
    s.offdiagonal = s.diagonal + n;
    s.beta = s.offdiagonal + n;
    s.p = s.beta + n;
    s.p_next = s.p + n;
    s.vector = s.p_next + n;
    s.zeros = s.vector + n;
    memset(s.zeros, 0, n * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        double* c = column(s.a, n, j);
        for (size_t i = j; i < n; i++) {
            c[i] = ema_profile_inner_product(gammas[i], times[i], gammas[j], times[j]);
        }
        s.vector[j] = ema_profile_inner_product(gammas[j], times[j], target_gamma, target_time);
    }
    /* Exact scalings by powers of two keep every square and product of the
     * reduction in range whatever the times' unit; neither changes the
     * normalised solution or the condition number. The diagonal holds A's
     * largest entry (Cauchy-Schwarz). */
    double largest_entry = 0.0;
    for (size_t j = 0; j < n; j++) {
        largest_entry = fmax(largest_entry, column(s.a, n, j)[j]);
    }
    const double scale_a = power_of_two_scale(largest_entry);
    double largest_b = 0.0;
    for (size_t i = 0; i < n; i++) {
        largest_b = fmax(largest_b, fabs(s.vector[i]));
    }
    const double scale_b = power_of_two_scale(largest_b);
    for (size_t i = 0; i < packed; i++) {
        s.a[i] *= scale_a;
    }
    for (size_t i = 0; i < n; i++) {
        s.vector[i] *= scale_b;
    }

    reduce_to_tridiagonal(&s);
    apply_reflectors(&s, 1);
    /* About 0.65 n^2 rotations in all (1.3 QR steps per eigenvalue over
     * blocks n, n-1, ...: 629,200 at 1024 snapshots, EDM2's schedule): room
     * for 3/4 n^2 at once spares the copies of growing there. */
    rotation_log log = {0};
    if (!grow((void**)&log.rotations, &log.capacity, 2 * (3 * n * n / 4 + 64), sizeof(double)) ||
        !grow((void**)&log.steps, &log.step_capacity, 2 * (2 * n + 64), sizeof(uint32_t))) {
        free(log.rotations);
        free(work);
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    ema_status status = diagonalise(n, s.diagonal, s.offdiagonal, s.vector, &log);
    if (status == EMA_OK) {
        /* In the eigenbasis: divide by each kept eigenvalue, drop the rest. */
        double largest = 0.0, smallest = INFINITY;
        for (size_t k = 0; k < n; k++) {
            largest = fmax(largest, fabs(s.diagonal[k]));
        }
        for (size_t k = 0; k < n; k++) {
            const double magnitude = fabs(s.diagonal[k]);
            if (magnitude > EMA_POSTHOC_RANK_TOLERANCE * largest) {
                smallest = fmin(smallest, magnitude);
                s.vector[k] = s.vector[k] / s.diagonal[k];
            } else {
                s.vector[k] = 0.0;
            }
        }
        unrotate(&log, s.vector);
        apply_reflectors(&s, 0);
        double sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            sum += s.vector[i];
        }
        if (!(fabs(sum) > 0.0) || !isfinite(sum)) {
            status = EMA_ERROR_INVALID_ARGUMENT; /* nothing of the target lies in the snapshots' span */
        } else {
            for (size_t i = 0; i < n; i++) {
                coefficients[i] = s.vector[i] / sum;
            }
            if (condition != NULL) {
                *condition = largest / smallest;
            }
        }
    }
    free(log.rotations);
    free(log.steps);
    free(work);
    return status;
}

ema_status ema_posthoc_weighted_sum(size_t n, uint32_t count, const float* inputs, size_t stride,
                                    const double* coefficients, float* out) {
    if (n != 0 && (inputs == NULL || coefficients == NULL || out == NULL)) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (count == 0 || stride < n) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    if (n == 0) {
        return EMA_OK;
    }
    /* The inputs span (count - 1) * stride + n floats; a span past the
     * address space is no buffer anyone has. */
    if ((size_t)(count - 1) > (SIZE_MAX / sizeof(float) - n) / stride) {
        return EMA_ERROR_TOO_LARGE;
    }
    ema_f32_vweighted_sum_ukernel_best(n, count, inputs, stride, coefficients, out);
    return EMA_OK;
}
