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
 * other width is a mix of the snapshots (Karras et al. 2024).
 * ema_posthoc_coefficients finds the mix; ema_posthoc_weighted_sum applies
 * it to float32 snapshots. */

/* Most snapshots one reconstruction takes. The solve is cubic in the count:
 * 4/3 count^3 flops, and about 16 count^2 bytes of memory while it runs (A,
 * and the rotations of the eigenvalue iteration; 17 MB at 1024). Measured
 * on a 2-core AMD EPYC VM (the best of several runs; the VM was shared),
 * natively (gcc -O2) and in Node 20: in Wasm the first call in a fresh
 * process / later calls, once V8 has optimised the code:
 *     snapshots        64           128         256         512         1024
 *     native           0.33 ms      1.4 ms      6.5 ms      32 ms       0.19 s
 *     Wasm SIMD128     1.1/0.34 ms  5.9/1.5 ms  17/7.5 ms   89/43 ms    0.32/0.24 s
 *     Wasm scalar      1.7/0.38 ms  7.2/1.8 ms  21/9.8 ms   113/59 ms   0.42/0.38 s */
#define EMA_MAX_POSTHOC_SNAPSHOTS 1024u

/* The inner product of the profiles (gamma_a, t_a) and
 * (gamma_b, t_b), p(tau) = (g + 1) tau^g / t^(g + 1) on [0, t]:
 * (ga + 1)(gb + 1) / ((ga + gb + 1) max(ta, tb)) * (ta / tb)^(ta < tb ? gb : -ga).
 * NaN unless both gammas are >= 0 and both times finite and > 0. */
double ema_profile_inner_product(double gamma_a, double t_a, double gamma_b, double t_b);

/* The coefficients of the snapshots (gammas[i], times[i]), i < count, whose
 * mix best stands for the profile (target_gamma, target_time): the
 * minimum-norm least-squares solution of A x = b (A_ij and b_i the inner
 * products above), from a float64 symmetric eigen-decomposition of A,
 * normalised to sum to 1, written to coefficients[0..count). *condition,
 * when not NULL, receives A's condition number on the directions kept: the
 * ratio of its largest eigenvalue to its smallest kept one, in magnitude
 * (eigenvalues below 1e-14 of the largest are dropped: duplicate
 * snapshots). The result
 * depends only on the arguments (one fixed order of operations), but is
 * only as accurate as A is conditioned: about condition * 2^-52 relative to
 * the largest coefficient. Allocates about 16 count^2 bytes while it runs.
 * EMA_ERROR_INVALID_ARGUMENT for count 0 or above EMA_MAX_POSTHOC_SNAPSHOTS,
 * a profile that is not valid, or a target the snapshots cannot express
 * (and, never seen, if the eigenvalue iteration does not converge);
 * EMA_ERROR_OUT_OF_MEMORY. Nothing is written unless EMA_OK. */
ema_status ema_posthoc_coefficients(uint32_t count, const double* gammas, const double* times,
                                    double target_gamma, double target_time, double* coefficients,
                                    double* condition);

/* How far the mix with `coefficients` is from the target profile: the
 * relative L2 distance ||p_target - sum_i c_i p_i|| / ||p_target|| over
 * training time, from the closed-form inner products. 0 is exact; a mix
 * that stands for the target well is a few thousandths off; a target the
 * snapshots cannot express (narrower than they can resolve, or at a time
 * after the last snapshot) is 0.1 to 10 off. NaN for invalid profiles or
 * count 0. Quadratic in count. */
double ema_posthoc_fit_error(uint32_t count, const double* gammas, const double* times,
                             double target_gamma, double target_time, const double* coefficients);

/* The snapshots mixed: for j < n,
 *     out[j] = (float)(sum over i = 0, 1, ..., count - 1 of coefficients[i] * (double)inputs[i * stride + j])
 * summed in float64 in that order from +0.0 (each product and each sum
 * rounded, no fused multiply-add), then rounded to float32 once (ties to
 * even): the same bits in every build. Snapshot i is the n floats at
 * inputs + i * stride. `out` must not overlap the inputs. Non-finite values
 * go through as IEEE arithmetic has them (a NaN's bits are unspecified).
 * EMA_ERROR_NULL_ARGUMENT for a NULL pointer when n > 0;
 * EMA_ERROR_INVALID_ARGUMENT for count 0 or stride < n; EMA_ERROR_TOO_LARGE
 * when the inputs' span, (count - 1) * stride + n floats, would not fit in
 * the address space. n == 0 writes nothing. */
ema_status ema_posthoc_weighted_sum(size_t n, uint32_t count, const float* inputs, size_t stride,
                                    const double* coefficients, float* out);

#ifdef __cplusplus
}
#endif

#endif /* EMA_POSTHOC_H */
