/*
 * f32-vweighted-sum-wasmsimd.c - every wasmsimd vweighted-sum kernel, from
 * one body.
 *
 * f32_vweighted_sum_wasmsimd() is the template: `vectors` four-float input
 * vectors per main-loop pass, each promoted to two f64x2 halves, so 2 x
 * `vectors` float64 accumulators stay in registers while the rows go by;
 * instantiated with constants as in f32-vkeras-wasmsimd.c.
 */
#include <assert.h>
#include <stddef.h>

#include <wasm_simd128.h>

#include "f32-vweighted-sum.h"

#define MAX_VECTORS 4

/* The upper two lanes of a f32x4, promoted. */
static inline v128_t promote_high(v128_t v) {
    return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3));
}

/* Two f64x2 rounded to float32 and joined: lo's lanes, then hi's. */
static inline v128_t demote_join(v128_t lo, v128_t hi) {
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

static inline __attribute__((always_inline)) void f32_vweighted_sum_wasmsimd(
    size_t vectors, size_t n, size_t count, const float* inputs, size_t stride,
    const double* coefficients, float* out) {
    assert(vectors >= 1 && vectors <= MAX_VECTORS);
    assert(count != 0 && stride >= n);
    assert(n == 0 || (inputs != NULL && coefficients != NULL && out != NULL));

    const size_t tile = 4 * vectors;
    for (; n >= tile; n -= tile) {
        v128_t lo[MAX_VECTORS], hi[MAX_VECTORS];
        for (size_t k = 0; k < vectors; k++) {
            lo[k] = wasm_f64x2_splat(0.0);
            hi[k] = wasm_f64x2_splat(0.0);
        }
        const float* row = inputs;
        for (size_t i = 0; i < count; i++) {
            const v128_t vc = wasm_v128_load64_splat(coefficients + i);
            v128_t vx[MAX_VECTORS];
            for (size_t k = 0; k < vectors; k++) {
                vx[k] = wasm_v128_load(row + 4 * k);
            }
            row += stride;

            /* SIMD128 has no fused multiply-add: a product and a sum, each
             * rounded, as in the scalar kernel. */
            for (size_t k = 0; k < vectors; k++) {
                lo[k] = wasm_f64x2_add(lo[k], wasm_f64x2_mul(vc, wasm_f64x2_promote_low_f32x4(vx[k])));
                hi[k] = wasm_f64x2_add(hi[k], wasm_f64x2_mul(vc, promote_high(vx[k])));
            }
        }
        inputs += tile;

        for (size_t k = 0; k < vectors; k++) {
            wasm_v128_store(out + 4 * k, demote_join(lo[k], hi[k]));
        }
        out += tile;
    }
    for (; n >= 4; n -= 4) {
        v128_t lo = wasm_f64x2_splat(0.0), hi = wasm_f64x2_splat(0.0);
        const float* row = inputs;
        for (size_t i = 0; i < count; i++) {
            const v128_t vc = wasm_v128_load64_splat(coefficients + i);
            const v128_t vx = wasm_v128_load(row);
            row += stride;
            lo = wasm_f64x2_add(lo, wasm_f64x2_mul(vc, wasm_f64x2_promote_low_f32x4(vx)));
            hi = wasm_f64x2_add(hi, wasm_f64x2_mul(vc, promote_high(vx)));
        }
        inputs += 4;
        wasm_v128_store(out, demote_join(lo, hi));
        out += 4;
    }
    /* Tail of 1-3 elements in scalar: no load or store past the end. */
    for (; n != 0; n -= 1) {
        double acc = 0.0;
        const float* row = inputs++;
        for (size_t i = 0; i < count; i++) {
            acc = acc + coefficients[i] * (double)*row;
            row += stride;
        }
        *out++ = (float)acc;
    }
}

void ema_f32_vweighted_sum_ukernel__wasmsimd_u4(size_t n, size_t count, const float* inputs,
                                                size_t stride, const double* coefficients,
                                                float* out) {
    f32_vweighted_sum_wasmsimd(1, n, count, inputs, stride, coefficients, out);
}

void ema_f32_vweighted_sum_ukernel__wasmsimd_u8(size_t n, size_t count, const float* inputs,
                                                size_t stride, const double* coefficients,
                                                float* out) {
    f32_vweighted_sum_wasmsimd(2, n, count, inputs, stride, coefficients, out);
}

void ema_f32_vweighted_sum_ukernel__wasmsimd_u16(size_t n, size_t count, const float* inputs,
                                                 size_t stride, const double* coefficients,
                                                 float* out) {
    f32_vweighted_sum_wasmsimd(4, n, count, inputs, stride, coefficients, out);
}
