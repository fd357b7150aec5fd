#ifndef EMA_POSTHOC_H
#define EMA_POSTHOC_H

#include "ema.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ema_posthoc.h - post-hoc EMA (Karras et al. 2024, "Analyzing and Improving
 * the Training Dynamics of Diffusion Models", Section 3 and Appendix C.2):
 * src/posthoc.c.
 *
 * After training with snapshots of power-function profiles, the EMA of any
 * other width is a mix of the snapshots (Karras et al. 2024). These find the
 * mix; summing the snapshots with it is the caller's. */

/* Most snapshots one reconstruction takes. The solve is cubic in the count
 * and not yet fast: measured natively (gcc -O2, 2-core AMD EPYC VM) 0.01 s
 * at 64 snapshots, 0.17 s at 128, 2 s at 256. */
#define EMA_MAX_POSTHOC_SNAPSHOTS 1024u

/* Native only. The inner product of the profiles (gamma_a, t_a) and
 * (gamma_b, t_b), p(tau) = (g + 1) tau^g / t^(g + 1) on [0, t]:
 * (ga + 1)(gb + 1) / ((ga + gb + 1) max(ta, tb)) * (ta / tb)^(ta < tb ? gb : -ga).
 * NaN unless both gammas are >= 0 and both times finite and > 0. */
double ema_profile_inner_product(double gamma_a, double t_a, double gamma_b, double t_b);

/* Native only. The coefficients of the snapshots (gammas[i], times[i]), i <
 * count, whose mix best stands for the profile (target_gamma, target_time):
 * the minimum-norm least-squares solution of A x = b (A_ij and b_i the inner
 * products above), by a float64 singular value decomposition, normalised to
 * sum to 1, written to coefficients[0..count). *condition, when not NULL,
 * receives the ratio of A's largest singular value to its smallest kept one
 * (values below 1e-14 of the largest are dropped: duplicate snapshots).
 * EMA_ERROR_INVALID_ARGUMENT for count 0 or above EMA_MAX_POSTHOC_SNAPSHOTS,
 * a profile that is not valid, or a target the snapshots cannot express;
 * EMA_ERROR_OUT_OF_MEMORY. */
ema_status ema_posthoc_coefficients(uint32_t count, const double* gammas, const double* times,
                                    double target_gamma, double target_time, double* coefficients,
                                    double* condition);

#ifdef __cplusplus
}
#endif

#endif /* EMA_POSTHOC_H */
