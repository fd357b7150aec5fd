/*
 * f32-vlerp-scalar-u4.c - the scalar vlerp kernel: PyTorch's lerp_ branch,
 * chosen once per call (f32-vlerp.h), over the fused body
 * (f32-fused-scalar.h).
 */
#include "f32-vlerp.h"
#include "f32-fused-scalar.h"

void ema_f32_vlerp_ukernel__scalar_u4(size_t n, const float* param, float* shadow,
                                      float one_minus_decay) {
    const int from_shadow = ema_f32_vlerp_from_shadow(one_minus_decay);
    f32_fused_scalar(n, param, shadow,
                     from_shadow ? one_minus_decay : ema_f32_vlerp_param_weight(one_minus_decay),
                     from_shadow);
}
