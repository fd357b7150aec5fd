/*
 * schedule.c - every recipe's decay schedule and counter, as data.
 *
 * ema_plan_step() turns a schedule and the counter before a step into what
 * the step does: the decay, the float32 weight the kernel applies, and the
 * action. Each branch follows its reference's arithmetic operation by
 * operation (../shared/REFERENCES.md): float64 where Python computes with
 * floats, float32 where the reference computes with float32 tensors. pow()
 * is the C library's (musl's inside Wasm): JavaScript's Math.pow rounds
 * differently, so a schedule is never computed there.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "ema.h"

/* JavaScript writes these structs into linear memory at these offsets
 * (js/boundary.js): they may not move. */
_Static_assert(offsetof(ema_schedule, recipe) == 0, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, nonfinite) == 16, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, decay) == 24, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, min_decay) == 32, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, inv_gamma) == 40, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, power) == 48, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, update_after_step) == 56, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, update_every) == 64, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, overwrite_every) == 72, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, batch_size) == 80, "ema_schedule layout");
_Static_assert(offsetof(ema_schedule, sigma_rel) == 88, "ema_schedule layout");
_Static_assert(sizeof(ema_schedule) == 96, "ema_schedule layout");
_Static_assert(offsetof(ema_step_info, decay) == 0, "ema_step_info layout");
_Static_assert(offsetof(ema_step_info, counter) == 8, "ema_step_info layout");
_Static_assert(offsetof(ema_step_info, weight) == 16, "ema_step_info layout");
_Static_assert(offsetof(ema_step_info, kernel_decay) == 20, "ema_step_info layout");
_Static_assert(offsetof(ema_step_info, action) == 24, "ema_step_info layout");
_Static_assert(offsetof(ema_step_info, overwrite) == 28, "ema_step_info layout");
_Static_assert(sizeof(ema_step_info) == 32, "ema_step_info layout");

ema_status ema_schedule_defaults(ema_schedule* out, uint32_t recipe) {
    if (out == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (recipe >= EMA_RECIPE_LIMIT) {
        return EMA_ERROR_INVALID_SCHEDULE;
    }
    ema_schedule schedule;
    memset(&schedule, 0, sizeof schedule);
    schedule.recipe = recipe;
    schedule.rounding = EMA_ROUNDING_UNFUSED;
    schedule.decay = 0.9999;
    schedule.inv_gamma = 1.0;
    schedule.power = 2.0 / 3.0;
    schedule.update_every = 1;
    schedule.batch_size = 1;
    switch ((ema_recipe)recipe) {
        case EMA_RECIPE_LITEMA:
            /* LitEma keeps its decay as a float32 buffer. */
            schedule.decay = (double)0.9999f;
            schedule.warmup = 1;
            break;
        case EMA_RECIPE_TORCH_EMA:
            schedule.warmup = 1;
            break;
        case EMA_RECIPE_DIFFUSERS:
            break;
        case EMA_RECIPE_TIMM:
            schedule.rounding = EMA_ROUNDING_LERP;
            break;
        case EMA_RECIPE_EMA_PYTORCH:
            schedule.rounding = EMA_ROUNDING_LERP;
            schedule.update_after_step = 100;
            schedule.update_every = 10;
            break;
        case EMA_RECIPE_KERAS:
            schedule.rounding = EMA_ROUNDING_TWO_PRODUCTS;
            schedule.decay = 0.99;
            break;
        case EMA_RECIPE_DEBIASED:
            schedule.rounding = EMA_ROUNDING_TWO_PRODUCTS;
            schedule.decay = 0.9999;
            schedule.debias = 1;
            break;
        case EMA_RECIPE_POWER:
            /* EDM2's narrower profile, sigma_rel 0.05; lerp_ as a PyTorch
             * implementation rounds it. */
            schedule.rounding = EMA_ROUNDING_LERP;
            schedule.sigma_rel = 0.05;
            (void)ema_gamma_of_sigma_rel(schedule.sigma_rel, &schedule.power);
            break;
        case EMA_RECIPE_LIMIT:
            break;
    }
    *out = schedule;
    return EMA_OK;
}

static int is_unit(double value) {
    return value >= 0.0 && value <= 1.0; /* false for NaN */
}

ema_status ema_schedule_check(const ema_schedule* schedule) {
    if (schedule == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!is_unit(schedule->decay)) {
        return EMA_ERROR_INVALID_DECAY;
    }
    const int valid =
        schedule->recipe < EMA_RECIPE_LIMIT && schedule->rounding < EMA_ROUNDING_LIMIT &&
        schedule->warmup <= 1 && schedule->debias <= 1 && schedule->nonfinite < EMA_NONFINITE_LIMIT &&
        schedule->reserved == 0 && is_unit(schedule->min_decay) &&
        schedule->inv_gamma > 0.0 && schedule->inv_gamma <= 1.0e300 && /* false for NaN */
        schedule->power >= 0.0 && schedule->power <= 1.0e300 &&
        (schedule->recipe != EMA_RECIPE_POWER || schedule->power <= EMA_MAX_GAMMA) &&
        schedule->update_after_step >= 0 && schedule->update_after_step <= EMA_MAX_COUNTER &&
        schedule->update_every >= 1 && schedule->update_every <= EMA_MAX_COUNTER &&
        schedule->overwrite_every >= 0 && schedule->overwrite_every <= EMA_MAX_COUNTER &&
        schedule->batch_size >= 1 && schedule->batch_size <= EMA_MAX_COUNTER &&
        (schedule->sigma_rel == 0.0 ||
         (schedule->sigma_rel >= EMA_MIN_SIGMA_REL && schedule->sigma_rel <= EMA_MAX_SIGMA_REL)) &&
        /* LitEma's decay is a float32 buffer. */
        (schedule->recipe != EMA_RECIPE_LITEMA || (double)(float)schedule->decay == schedule->decay);
    return valid ? EMA_OK : EMA_ERROR_INVALID_SCHEDULE;
}

double ema_sigma_rel_of_gamma(double gamma) {
    if (!(gamma >= 0.0)) {
        return __builtin_nan("");
    }
    return sqrt((gamma + 1.0) / ((gamma + 2.0) * (gamma + 2.0) * (gamma + 3.0)));
}

ema_status ema_gamma_of_sigma_rel(double sigma_rel, double* gamma) {
    if (gamma == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!(sigma_rel >= EMA_MIN_SIGMA_REL && sigma_rel <= EMA_MAX_SIGMA_REL)) {
        return EMA_ERROR_INVALID_SCHEDULE;
    }
    /* f(g) = (g + 2)^2 (g + 3) - (g + 1) / s^2 is convex for g > -7/3 and
     * positive at 1/s (the width there is below s), so Newton's method from
     * 1/s decreases monotonically to the largest root; it stops when a step
     * no longer decreases g, at the root to the last bit. The order of the
     * operations is fixed (test/fixtures/generate_recipes.py repeats it). */
    const double inv = 1.0 / (sigma_rel * sigma_rel);
    double g = 1.0 / sigma_rel;
    for (int i = 0; i < 200; i++) {
        const double f = ((g + 7.0) * g + (16.0 - inv)) * g + (12.0 - inv);
        const double slope = (3.0 * g + 14.0) * g + (16.0 - inv);
        const double next = g - f / slope;
        if (!(next < g)) {
            break;
        }
        g = next;
    }
    *gamma = g < 0.0 ? 0.0 : g;
    return EMA_OK;
}

/* LitEma: min(decay, (1 + n) / (10 + n)) on float32 tensors, n already
 * incremented. */
float ema_warmup_decay(float decay, int32_t num_updates) {
    /* torch: (1 + n) / (10 + n) on int32 tensors is a true division in float32. */
    const float ratio = (float)(1 + (int64_t)num_updates) / (float)(10 + (int64_t)num_updates);
    /* Python's min(decay, ratio) returns decay unless ratio is smaller. */
    return ratio < decay ? ratio : decay;
}

/* Python's min(a, b) and max(a, b): the first argument unless the second
 * is strictly smaller (larger). */
static double python_min(double a, double b) {
    return b < a ? b : a;
}

static double python_max(double a, double b) {
    return b > a ? b : a;
}

/* diffusers' and timm's clamp: max(min(decay, schedule decay), min_decay). */
static double clamped(double decay, const ema_schedule* schedule) {
    return python_max(python_min(decay, schedule->decay), schedule->min_decay);
}

/* Whether the recipe's counter can advance from `counter`: LitEma's int32
 * (10 + n) must not overflow, the others stay within 2^53 - 1; -1 (warmup
 * off) does not advance; the debiased count saturates. */
static int counter_can_advance(const ema_schedule* schedule, int64_t counter) {
    switch ((ema_recipe)schedule->recipe) {
        case EMA_RECIPE_LITEMA:
            return counter < EMA_MAX_NUM_UPDATES;
        case EMA_RECIPE_DEBIASED:
            return 1;
        default:
            return counter < EMA_MAX_COUNTER;
    }
}

/* diffusers' and timm's warmup, in float64 as Python computes it:
 * 1 - (1 + step / inv_gamma) ** -power. */
static double power_warmup(double step, double inv_gamma, double power) {
    return 1.0 - pow(1.0 + step / inv_gamma, -power);
}

/* ema-pytorch's get_current_decay(), on float32 tensors: the step tensor
 * (int64) minus update_after_step minus 1, clamped at 0. (a float, so the
 * result is float32), divided by inv_gamma, plus 1, to the power -power, 1
 * minus that, clamped to [min_value, beta]; 0 when the epoch is not
 * positive. torch's float32 pow computes in float64 and rounds once. */
static float ema_pytorch_decay(const ema_schedule* schedule, int64_t step_after) {
    const int64_t epoch_count = step_after - schedule->update_after_step - 1;
    if (epoch_count <= 0) {
        return 0.0f;
    }
    const float epoch = (float)epoch_count;
    const float base = 1.0f + epoch / (float)schedule->inv_gamma;
    float warmed;
    if (schedule->power == 0.5) {
        /* torch's pow special-cases exponent -0.5 as rsqrt: two roundings. */
        warmed = 1.0f / sqrtf(base);
    } else if (schedule->power == 2.0) {
        /* ... and -2 as 1 / (b * b). */
        warmed = 1.0f / (base * base);
    } else {
        warmed = (float)pow((double)base, -schedule->power);
    }
    const float value = 1.0f - warmed;
    /* clamp(min=min_value, max=beta): max first, then min, in float32. */
    const float low = (float)schedule->min_decay;
    const float high = (float)schedule->decay;
    const float clamped = value < low ? low : value;
    return clamped > high ? high : clamped;
}

ema_status ema_plan_step(const ema_schedule* schedule, int64_t counter, int initted, int64_t step,
                         ema_step_info* out) {
    if (schedule == NULL || out == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!counter_can_advance(schedule, counter)) {
        return EMA_ERROR_COUNTER_OVERFLOW;
    }
    ema_step_info info;
    memset(&info, 0, sizeof info);
    info.action = EMA_ACTION_AVERAGE;

    switch ((ema_recipe)schedule->recipe) {
        case EMA_RECIPE_LITEMA: {
            float decay = (float)schedule->decay;
            info.counter = counter;
            if (counter >= 0) {
                info.counter = counter + 1;
                decay = ema_warmup_decay(decay, (int32_t)info.counter);
            }
            info.decay = decay;
            info.weight = 1.0f - decay;
            break;
        }
        case EMA_RECIPE_TORCH_EMA: {
            double decay = schedule->decay;
            info.counter = counter;
            if (counter >= 0) {
                info.counter = counter + 1;
                const double n = (double)info.counter;
                decay = python_min(decay, (1.0 + n) / (10.0 + n));
            }
            info.decay = decay;
            info.weight = (float)(1.0 - decay);
            break;
        }
        case EMA_RECIPE_DIFFUSERS: {
            info.counter = counter + 1;
            const int64_t from_start = info.counter - schedule->update_after_step - 1;
            double decay = 0.0;
            if (from_start > 0) {
                const double s = (double)from_start;
                decay = clamped(schedule->warmup ? power_warmup(s, schedule->inv_gamma, schedule->power)
                                                 : (1.0 + s) / (10.0 + s),
                                schedule);
            }
            /* decay 0 still runs the formula (with weight 1), as diffusers does. */
            info.decay = decay;
            info.weight = (float)(1.0 - decay);
            break;
        }
        case EMA_RECIPE_TIMM: {
            info.counter = counter + 1; /* calls, for the caller's information only */
            double decay = schedule->decay;
            if (step != EMA_NO_STEP) {
                const int64_t from_start = step > INT64_MIN + schedule->update_after_step + 1
                                               ? step - schedule->update_after_step - 1
                                               : 0;
                if (from_start <= 0) {
                    decay = 0.0;
                } else if (schedule->warmup) {
                    decay = clamped(power_warmup((double)from_start, schedule->inv_gamma, schedule->power),
                                    schedule);
                }
            }
            info.decay = decay;
            info.weight = (float)(1.0 - decay);
            break;
        }
        case EMA_RECIPE_EMA_PYTORCH: {
            /* update(): step = self.step; self.step += 1; the first update
             * copies and sets initted; then update_every, update_after_step
             * (copies) and the average, which beta == 1 (is_frozen) skips. */
            info.counter = counter + 1;
            if (!initted || (counter % schedule->update_every == 0 &&
                             counter <= schedule->update_after_step)) {
                info.action = EMA_ACTION_COPY;
                info.weight = 1.0f;
                break;
            }
            if (counter % schedule->update_every != 0 || schedule->decay == 1.0) {
                info.action = EMA_ACTION_SKIP;
                break;
            }
            const float decay = ema_pytorch_decay(schedule, info.counter);
            info.decay = decay;
            info.weight = (float)(1.0 - (double)decay);
            break;
        }
        case EMA_RECIPE_KERAS: {
            /* momentum = cast(iterations != 0) * ema_momentum, in float32. */
            const float momentum = counter != 0 ? (float)schedule->decay : 0.0f;
            info.decay = momentum;
            info.kernel_decay = momentum;
            info.weight = 1.0f - momentum;
            info.overwrite = schedule->overwrite_every != 0 &&
                             (counter + 1) % schedule->overwrite_every == 0;
            info.counter = counter + 1;
            break;
        }
        case EMA_RECIPE_POWER: {
            /* t counts samples: this step's (timm's `step` argument carries
             * them when given), then beta = (1 - dt/t)^(gamma + 1) after the
             * step, in float64 as Python computes it; the first step has
             * beta 0 (a lerp with weight 1, which gives the parameter). */
            const int64_t samples = step != EMA_NO_STEP ? step : schedule->batch_size;
            if (samples < 1 || samples > EMA_MAX_COUNTER - counter) {
                return samples < 1 ? EMA_ERROR_INVALID_ARGUMENT : EMA_ERROR_COUNTER_OVERFLOW;
            }
            info.counter = counter + samples;
            const double beta =
                pow(1.0 - (double)samples / (double)info.counter, schedule->power + 1.0);
            info.decay = beta;
            info.weight = (float)(1.0 - beta);
            break;
        }
        case EMA_RECIPE_DEBIASED: {
            /* optax: (1 - decay) * x + decay * ema, with decay a Python float
             * that each product rounds to float32; the count saturates. */
            info.decay = schedule->decay;
            info.kernel_decay = (float)schedule->decay;
            info.weight = (float)(1.0 - schedule->decay);
            info.counter = counter < INT32_MAX ? counter + 1 : INT32_MAX;
            break;
        }
        default:
            return EMA_ERROR_INVALID_SCHEDULE;
    }
    *out = info;
    return EMA_OK;
}

float ema_debias_divisor(double decay, int64_t count) {
    /* 1 - decay ** count in float64 (pow), rounded once to float32. */
    return (float)(1.0 - pow(decay, (double)count));
}
