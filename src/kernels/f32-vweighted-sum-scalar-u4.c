#include <assert.h>
#include <stddef.h>

#include "f32-vweighted-sum.h"

void ema_f32_vweighted_sum_ukernel__scalar_u4(size_t n, size_t count, const float* inputs,
                                              size_t stride, const double* coefficients,
                                              float* out) {
    assert(count != 0 && stride >= n);
    assert(n == 0 || (inputs != NULL && coefficients != NULL && out != NULL));

    for (; n >= 4; n -= 4) {
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
        const float* row = inputs;
        for (size_t i = 0; i < count; i++) {
            const double c = coefficients[i];
            const double x0 = (double)row[0], x1 = (double)row[1];
            const double x2 = (double)row[2], x3 = (double)row[3];
            row += stride;

            /* A product and a sum, each rounded: the build uses
             * -ffp-contract=off so the compiler cannot fuse them. */
            a0 = a0 + c * x0;
            a1 = a1 + c * x1;
            a2 = a2 + c * x2;
            a3 = a3 + c * x3;
        }
        inputs += 4;
        out[0] = (float)a0;
        out[1] = (float)a1;
        out[2] = (float)a2;
        out[3] = (float)a3;
        out += 4;
    }
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
