/*
 * test_schedule.c - the recipes: schedules as data (ema_schedule_defaults,
 * ema_schedule_check, ema_plan_step), the counters, slot modes, the
 * non-finite guard and the Keras overwrite, through the public C API.
 * The bit-for-bit replays of PyTorch runs are in test_recipes.c and the JS
 * tests; this file pins the rules each branch follows and every error path.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "ema.h"
#include "ema_stream.h"

static ema_schedule defaults(uint32_t recipe) {
    ema_schedule schedule;
    CHECK_STATUS(ema_schedule_defaults(&schedule, recipe), EMA_OK);
    return schedule;
}

static ema_step_info plan(const ema_schedule* schedule, int64_t counter, int initted, int64_t step) {
    ema_step_info info;
    memset(&info, 0xff, sizeof info);
    CHECK_STATUS(ema_plan_step(schedule, counter, initted, step, &info), EMA_OK);
    return info;
}

static void test_defaults(void) {
    const ema_schedule litema = defaults(EMA_RECIPE_LITEMA);
    CHECK(litema.decay == (double)0.9999f && litema.warmup == 1, "LitEma: float32 0.9999, warmup");
    CHECK(litema.rounding == EMA_ROUNDING_UNFUSED, "LitEma rounds unfused");
    const ema_schedule diffusers = defaults(EMA_RECIPE_DIFFUSERS);
    CHECK(diffusers.decay == 0.9999 && diffusers.min_decay == 0.0 && diffusers.update_after_step == 0 &&
              diffusers.warmup == 0 && diffusers.inv_gamma == 1.0 && diffusers.power == 2.0 / 3.0,
          "diffusers' EMAModel defaults");
    const ema_schedule pytorch = defaults(EMA_RECIPE_EMA_PYTORCH);
    CHECK(pytorch.update_after_step == 100 && pytorch.update_every == 10 &&
              pytorch.rounding == EMA_ROUNDING_LERP,
          "ema-pytorch defaults");
    const ema_schedule keras = defaults(EMA_RECIPE_KERAS);
    CHECK(keras.decay == 0.99 && keras.overwrite_every == 0 && keras.rounding == EMA_ROUNDING_TWO_PRODUCTS,
          "Keras defaults");
    const ema_schedule debiased = defaults(EMA_RECIPE_DEBIASED);
    CHECK(debiased.debias == 1, "debiased reads bias-corrected by default");
    ema_schedule out;
    CHECK_STATUS(ema_schedule_defaults(&out, EMA_RECIPE_LIMIT), EMA_ERROR_INVALID_SCHEDULE);
    CHECK_STATUS(ema_schedule_defaults(NULL, EMA_RECIPE_LITEMA), EMA_ERROR_NULL_ARGUMENT);
    for (uint32_t recipe = 0; recipe < EMA_RECIPE_LIMIT; recipe++) {
        const ema_schedule schedule = defaults(recipe);
        CHECK_STATUS(ema_schedule_check(&schedule), EMA_OK);
    }
}

static void test_check_refuses(void) {
    const ema_schedule base = defaults(EMA_RECIPE_DIFFUSERS);
    ema_schedule s;
#define REFUSED(mutation, expected)              \
    do {                                         \
        s = base;                                \
        mutation;                                \
        CHECK_STATUS(ema_schedule_check(&s), expected); \
    } while (0)
    REFUSED(s.decay = -0.1, EMA_ERROR_INVALID_DECAY);
    REFUSED(s.decay = 1.5, EMA_ERROR_INVALID_DECAY);
    REFUSED(s.decay = NAN, EMA_ERROR_INVALID_DECAY);
    REFUSED(s.min_decay = NAN, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.min_decay = 2.0, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.inv_gamma = 0.0, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.inv_gamma = INFINITY, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.power = -1.0, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.power = NAN, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.update_after_step = -1, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.update_after_step = EMA_MAX_COUNTER + 1, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.update_every = 0, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.overwrite_every = -2, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.recipe = EMA_RECIPE_LIMIT, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.rounding = EMA_ROUNDING_LIMIT, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.warmup = 2, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.nonfinite = EMA_NONFINITE_LIMIT, EMA_ERROR_INVALID_SCHEDULE);
    REFUSED(s.reserved = 1, EMA_ERROR_INVALID_SCHEDULE);
    /* LitEma's decay is a float32 buffer: a float64 that is not one is refused. */
    REFUSED((s.recipe = EMA_RECIPE_LITEMA, s.decay = 0.9999), EMA_ERROR_INVALID_SCHEDULE);
#undef REFUSED
    CHECK_STATUS(ema_schedule_check(NULL), EMA_ERROR_NULL_ARGUMENT);
    ema_ctx* ctx = NULL;
    s = base;
    s.update_every = 0;
    CHECK_STATUS(ema_create_scheduled(&ctx, &s, 0, NULL), EMA_ERROR_INVALID_SCHEDULE);
    CHECK(ctx == NULL, "a refused schedule creates nothing");
}

static void test_litema_and_torch_ema(void) {
    ema_schedule litema = defaults(EMA_RECIPE_LITEMA);
    ema_step_info info = plan(&litema, 0, 0, EMA_NO_STEP);
    CHECK(info.counter == 1 && info.decay == (double)(2.0f / 11.0f), "LitEma: 2/11 in float32 at update 1");
    CHECK(info.weight == 1.0f - (float)info.decay, "LitEma: weight 1 - decay in float32");
    info = plan(&litema, -1, 0, EMA_NO_STEP);
    CHECK(info.counter == -1 && info.decay == (double)0.9999f, "LitEma without warmup: the base decay");
    ema_step_info unused;
    CHECK_STATUS(ema_plan_step(&litema, EMA_MAX_NUM_UPDATES, 0, EMA_NO_STEP, &unused),
                 EMA_ERROR_COUNTER_OVERFLOW);

    const ema_schedule torch_ema = defaults(EMA_RECIPE_TORCH_EMA);
    info = plan(&torch_ema, 0, 0, EMA_NO_STEP);
    CHECK(info.decay == 2.0 / 11.0, "torch_ema: 2/11 in float64");
    info = plan(&torch_ema, 1000000, 0, EMA_NO_STEP);
    CHECK(info.decay == 0.9999 && info.weight == (float)(1.0 - 0.9999),
          "torch_ema: float64 decay, weight rounded once (%.9g)", (double)info.weight);
    CHECK(info.weight != 1.0f - 0.9999f, "torch_ema's weight differs from LitEma's (the REFERENCES example)");
}

static void test_diffusers(void) {
    ema_schedule s = defaults(EMA_RECIPE_DIFFUSERS);
    s.update_after_step = 3;
    for (int64_t before = 0; before < 4; before++) {
        const ema_step_info info = plan(&s, before, 0, EMA_NO_STEP);
        CHECK(info.decay == 0.0 && info.weight == 1.0f && info.action == EMA_ACTION_AVERAGE,
              "diffusers step %lld: decay 0, the formula with weight 1 (not a copy)", (long long)before + 1);
    }
    ema_step_info info = plan(&s, 4, 0, EMA_NO_STEP);
    CHECK(info.counter == 5 && info.decay == 2.0 / 11.0, "diffusers: step = 5 - 3 - 1 = 1: 2/11");
    s.warmup = 1;
    s.inv_gamma = 2.0;
    s.power = 0.75;
    info = plan(&s, 10, 0, EMA_NO_STEP);
    CHECK(info.decay == 1.0 - pow(1.0 + 7.0 / 2.0, -0.75), "diffusers warmup: 1 - (1 + s/inv_gamma)^-power");
    s.min_decay = 0.5;
    info = plan(&s, 4, 0, EMA_NO_STEP);
    CHECK(info.decay == 0.5, "diffusers: clamped up to min_decay");
    s.min_decay = 0.0;
    s.decay = 0.1;
    info = plan(&s, 1000, 0, EMA_NO_STEP);
    CHECK(info.decay == 0.1, "diffusers: clamped down to decay");
}

static void test_timm(void) {
    ema_schedule s = defaults(EMA_RECIPE_TIMM);
    ema_step_info info = plan(&s, 0, 0, EMA_NO_STEP);
    CHECK(info.decay == 0.9999, "timm without a step: the fixed decay");
    info = plan(&s, 0, 0, 1);
    CHECK(info.decay == 0.0 && info.weight == 1.0f, "timm step 1: max(0, 1 - 0 - 1) = 0: decay 0");
    info = plan(&s, 0, 0, 5);
    CHECK(info.decay == 0.9999, "timm without warmup past update_after_step: the fixed decay");
    s.warmup = 1;
    info = plan(&s, 0, 0, 9);
    CHECK(info.decay == 1.0 - pow(9.0, -2.0 / 3.0), "timm warmup at step 9 (s = 8)");
    info = plan(&s, 0, 0, INT64_MIN + 1);
    CHECK(info.decay == 0.0, "timm: a very negative step is step 0");
}

static void test_ema_pytorch(void) {
    ema_schedule s = defaults(EMA_RECIPE_EMA_PYTORCH);
    s.update_after_step = 20;
    s.update_every = 10;
    CHECK(plan(&s, 0, 0, EMA_NO_STEP).action == EMA_ACTION_COPY, "the first call copies");
    CHECK(plan(&s, 35, 0, EMA_NO_STEP).action == EMA_ACTION_COPY, "the first update copies whatever the step (initted false)");
    CHECK(plan(&s, 1, 1, EMA_NO_STEP).action == EMA_ACTION_SKIP, "call 2 is not on update_every");
    CHECK(plan(&s, 20, 1, EMA_NO_STEP).action == EMA_ACTION_COPY, "step 20 <= update_after_step copies");
    CHECK(plan(&s, 21, 1, EMA_NO_STEP).action == EMA_ACTION_SKIP, "step 21: not on update_every");
    ema_step_info info = plan(&s, 30, 1, EMA_NO_STEP);
    CHECK(info.action == EMA_ACTION_AVERAGE, "step 30 averages");
    CHECK(info.counter == 31, "counts calls");
    /* epoch = 31 - 20 - 1 = 10: 1 - (1 + 10)^(-2/3) in float32 operations. */
    const float expected = 1.0f - (float)pow((double)(1.0f + 10.0f / 1.0f), -2.0 / 3.0);
    CHECK(info.decay == (double)expected, "float32 schedule: %.9g vs %.9g", info.decay, (double)expected);
    CHECK(info.weight == (float)(1.0 - (double)expected), "weight 1 - decay");
    s.power = 0.5;
    CHECK(plan(&s, 30, 1, EMA_NO_STEP).decay == (double)(1.0f - 1.0f / sqrtf(11.0f)),
          "power 0.5: torch's rsqrt special case, two roundings");
    s.power = 2.0;
    CHECK(plan(&s, 30, 1, EMA_NO_STEP).decay == (double)(1.0f - 1.0f / (11.0f * 11.0f)),
          "power 2: torch's 1 / (b * b) special case");
    s.power = 2.0 / 3.0;
    s.decay = 1.0;
    CHECK(plan(&s, 30, 1, EMA_NO_STEP).action == EMA_ACTION_SKIP, "beta 1 (is_frozen): averages are skipped");
    s.decay = 0.9999;
    s.min_decay = 0.9;
    CHECK(plan(&s, 30, 1, EMA_NO_STEP).decay == (double)0.9f, "clamped to min_value in float32");
}

static void test_power(void) {
    ema_schedule s = defaults(EMA_RECIPE_POWER);
    CHECK(s.sigma_rel == 0.05 && s.batch_size == 1 && s.rounding == EMA_ROUNDING_LERP,
          "power: sigma_rel 0.05, batch 1, lerp_");
    CHECK(s.power > 16.97 && s.power < 16.98, "the default gamma is EDM2's 16.97 (%.17g)", s.power);
    s.batch_size = 32;
    ema_step_info info = plan(&s, 0, 0, EMA_NO_STEP);
    CHECK(info.decay == 0.0 && info.weight == 1.0f && info.counter == 32, "the first step copies (beta 0)");
    info = plan(&s, 32, 0, EMA_NO_STEP);
    CHECK(info.decay == pow(1.0 - 32.0 / 64.0, s.power + 1.0) && info.counter == 64,
          "beta = (1 - dt/t)^(gamma + 1), t the samples after the step");
    info = plan(&s, 64, 0, 7);
    CHECK(info.counter == 71 && info.decay == pow(1.0 - 7.0 / 71.0, s.power + 1.0),
          "a step's own sample count (a last partial batch)");
    ema_step_info unused;
    CHECK_STATUS(ema_plan_step(&s, 64, 0, 0, &unused), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_plan_step(&s, EMA_MAX_COUNTER - 3, 0, 7, &unused), EMA_ERROR_COUNTER_OVERFLOW);
    double gamma = -1.0;
    CHECK_STATUS(ema_gamma_of_sigma_rel(EMA_MAX_SIGMA_REL, &gamma), EMA_OK);
    CHECK(gamma == 0.0, "the widest profile is gamma 0");
    CHECK_STATUS(ema_gamma_of_sigma_rel(0.1, &gamma), EMA_OK);
    CHECK(fabs(ema_sigma_rel_of_gamma(gamma) - 0.1) <= 4 * 0x1p-52 * 0.1, "round trip of 0.1");
    CHECK_STATUS(ema_gamma_of_sigma_rel(0.0, &gamma), EMA_ERROR_INVALID_SCHEDULE);
    CHECK_STATUS(ema_gamma_of_sigma_rel(0.29, &gamma), EMA_ERROR_INVALID_SCHEDULE);
    CHECK_STATUS(ema_gamma_of_sigma_rel(NAN, &gamma), EMA_ERROR_INVALID_SCHEDULE);
    CHECK_STATUS(ema_gamma_of_sigma_rel(0.1, NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK(isnan(ema_sigma_rel_of_gamma(-0.5)), "gamma below 0: NaN");
    /* A context derives gamma from sigma_rel, and again when the schedule is replaced. */
    ema_schedule by_width = defaults(EMA_RECIPE_POWER);
    by_width.sigma_rel = 0.1;
    by_width.power = 123.0;
    const uint32_t length = 4;
    ema_ctx* ctx = NULL;
    CHECK_STATUS(ema_create_scheduled(&ctx, &by_width, 1, &length), EMA_OK);
    ema_schedule read;
    CHECK_STATUS(ema_get_schedule(ctx, &read), EMA_OK);
    CHECK(read.power == gamma, "gamma from sigma_rel, not the power field given");
    by_width.sigma_rel = 0.0;
    by_width.power = 2.5;
    CHECK_STATUS(ema_set_schedule(ctx, &by_width), EMA_OK);
    CHECK_STATUS(ema_get_schedule(ctx, &read), EMA_OK);
    CHECK(read.power == 2.5, "sigma_rel 0: gamma as given");
    by_width.batch_size = 0;
    CHECK_STATUS(ema_set_schedule(ctx, &by_width), EMA_ERROR_INVALID_SCHEDULE);
    ema_destroy(ctx);
}

static void test_keras_and_debiased(void) {
    ema_schedule s = defaults(EMA_RECIPE_KERAS);
    ema_step_info info = plan(&s, 0, 0, EMA_NO_STEP);
    CHECK(info.decay == 0.0 && info.kernel_decay == 0.0f && info.weight == 1.0f,
          "Keras: momentum 0 while iterations == 0");
    info = plan(&s, 1, 0, EMA_NO_STEP);
    CHECK(info.kernel_decay == 0.99f && info.weight == 1.0f - 0.99f, "Keras: m and 1 - m in float32");
    CHECK(info.overwrite == 0, "no overwrite without a frequency");
    s.overwrite_every = 3;
    CHECK(plan(&s, 1, 0, EMA_NO_STEP).overwrite == 0 && plan(&s, 2, 0, EMA_NO_STEP).overwrite == 1,
          "overwrite when (iterations + 1) %% 3 == 0");

    ema_schedule d = defaults(EMA_RECIPE_DEBIASED);
    d.decay = 0.9;
    info = plan(&d, 0, 0, EMA_NO_STEP);
    CHECK(info.kernel_decay == 0.9f && info.weight == (float)(1.0 - 0.9), "optax: fl(d) and fl(1 - d)");
    CHECK(plan(&d, INT32_MAX, 0, EMA_NO_STEP).counter == INT32_MAX, "the count saturates");
}

/* A context of `recipe` with three slots of lengths 4, 0 and 3. */
static ema_ctx* make(const ema_schedule* schedule) {
    const uint32_t lengths[] = {4, 0, 3};
    ema_ctx* ctx = NULL;
    CHECK_STATUS(ema_create_scheduled(&ctx, schedule, 3, lengths), EMA_OK);
    return ctx;
}

static void test_counters_and_modes(void) {
    ema_schedule s = defaults(EMA_RECIPE_TORCH_EMA);
    s.warmup = 0;
    ema_ctx* ctx = make(&s);
    CHECK(ema_counter(ctx) == -1, "torch_ema without warmup starts at -1 (None)");
    CHECK_STATUS(ema_set_counter(ctx, -2), EMA_ERROR_INVALID_COUNTER);
    CHECK_STATUS(ema_set_counter(ctx, EMA_MAX_COUNTER + 1), EMA_ERROR_COUNTER_OVERFLOW);
    CHECK(ema_counter(ctx) == -1, "refused counters change nothing");
    CHECK_STATUS(ema_set_counter(ctx, EMA_MAX_COUNTER), EMA_OK);
    const float p[4] = {1, 2, 3, 4};
    const float* params[3] = {p, NULL, p};
    ema_step_info info;
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, &info), EMA_ERROR_COUNTER_OVERFLOW);

    ema_schedule other = defaults(EMA_RECIPE_KERAS);
    CHECK_STATUS(ema_set_schedule(ctx, &other), EMA_ERROR_INVALID_ARGUMENT);
    ema_schedule same = s;
    same.decay = 0.5;
    CHECK_STATUS(ema_set_schedule(ctx, &same), EMA_OK);
    ema_schedule read;
    CHECK_STATUS(ema_get_schedule(ctx, &read), EMA_OK);
    CHECK(read.decay == 0.5, "ema_set_schedule replaced the options");

    CHECK_STATUS(ema_set_slot_mode(ctx, 3, EMA_SLOT_COPY), EMA_ERROR_SLOT_INDEX);
    CHECK_STATUS(ema_set_slot_mode(ctx, 0, 7), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_set_slot_mode(ctx, 2, EMA_SLOT_COPY), EMA_OK);
    CHECK(ema_get_slot_mode(ctx, 2) == EMA_SLOT_COPY && ema_get_slot_mode(ctx, 0) == EMA_SLOT_AVERAGE,
          "slot modes are per slot");
    CHECK_STATUS(ema_set_counter(ctx, 0), EMA_OK);
    CHECK_STATUS(ema_set_schedule(ctx, &s), EMA_OK);
    const float q[4] = {1.5f, -2.0f, 1e-3f, 7.0f};
    const float* qs[3] = {q, NULL, q};
    CHECK_STATUS(ema_update_at(ctx, qs, EMA_NO_STEP, &info), EMA_OK);
    const float* averaged = ema_shadow(ctx, 0);
    const float* copied = ema_shadow(ctx, 2);
    CHECK(memcmp(copied, q, 3 * sizeof(float)) == 0, "a copy slot takes the parameter bit for bit");
    const float w = (float)(1.0 - info.decay);
    CHECK(averaged[0] == 0.0f - w * (0.0f - 1.5f), "an average slot runs the formula");
    ema_destroy(ctx);
}

static void test_nonfinite(void) {
    for (uint32_t guard = EMA_NONFINITE_SKIP; guard <= EMA_NONFINITE_ERROR; guard++) {
        ema_schedule s = defaults(EMA_RECIPE_DIFFUSERS);
        s.nonfinite = guard;
        ema_ctx* ctx = make(&s);
        CHECK_STATUS(ema_set_slot_mode(ctx, 2, EMA_SLOT_COPY), EMA_OK);
        float good[4] = {1, 2, 3, 4};
        float bad[4] = {1, 2, NAN, 4};
        float inf_bits[3];
        const uint32_t not_a_float = 0x7f800001u; /* an integer buffer's word that reads as NaN */
        memcpy(&inf_bits[0], &not_a_float, 4);
        inf_bits[1] = inf_bits[2] = 0;
        const float* with_copy_nan[3] = {good, NULL, inf_bits};
        ema_step_info info;
        CHECK_STATUS(ema_update_at(ctx, with_copy_nan, EMA_NO_STEP, &info), EMA_OK);
        CHECK(info.action == EMA_ACTION_AVERAGE, "copy slots are not checked (integer buffers)");
        const int64_t counter = ema_counter(ctx);
        float before[4];
        memcpy(before, ema_shadow(ctx, 0), sizeof before);
        const float* params[3] = {bad, NULL, good};
        const ema_status status = ema_update_at(ctx, params, EMA_NO_STEP, &info);
        if (guard == EMA_NONFINITE_SKIP) {
            CHECK_STATUS(status, EMA_OK);
            CHECK(info.action == EMA_ACTION_SKIP_NONFINITE, "skipped: reported");
        } else {
            CHECK_STATUS(status, EMA_ERROR_NONFINITE);
        }
        CHECK(ema_counter(ctx) == counter, "the counter did not move");
        CHECK(memcmp(before, ema_shadow(ctx, 0), sizeof before) == 0, "no shadow changed");
        bad[2] = INFINITY;
        CHECK(ema_update_at(ctx, params, EMA_NO_STEP, NULL) == status, "infinity too");
        bad[2] = -INFINITY;
        CHECK(ema_update_at(ctx, params, EMA_NO_STEP, NULL) == status, "and -infinity");
        CHECK_STATUS(ema_resident_enable(ctx), EMA_OK);
        ema_param(ctx, 0)[1] = NAN;
        CHECK(ema_update_resident_at(ctx, EMA_NO_STEP, &info) == status, "resident: the same guard");
        CHECK(ema_counter(ctx) == counter, "resident: the counter did not move");
        ema_destroy(ctx);
    }
}

/* A step that skips reads no parameter: the guard leaves it alone, and
 * ema_next_action says so beforehand. */
static void test_guard_skips_skipping_steps(void) {
    ema_schedule s = defaults(EMA_RECIPE_EMA_PYTORCH);
    s.update_after_step = 0;
    s.update_every = 2;
    s.nonfinite = EMA_NONFINITE_ERROR;
    ema_ctx* ctx = make(&s);
    float good[4] = {1, 2, 3, 4};
    float bad[4] = {1, NAN, 3, 4};
    const float* params[3] = {good, NULL, good};
    CHECK(ema_next_action(ctx, EMA_NO_STEP) == EMA_ACTION_COPY, "next: the first update copies");
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, NULL), EMA_OK);
    params[0] = bad;
    CHECK(ema_next_action(ctx, EMA_NO_STEP) == EMA_ACTION_SKIP, "next: call 2 skips");
    ema_step_info info;
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, &info), EMA_OK);
    CHECK(info.action == EMA_ACTION_SKIP && ema_counter(ctx) == 2, "a skipping step is not checked; the step counts");
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, &info), EMA_ERROR_NONFINITE);
    CHECK(ema_counter(ctx) == 2, "an averaging step is checked, and refused whole");
    CHECK(ema_next_action(NULL, EMA_NO_STEP) == -1, "NULL: -1");
    CHECK_STATUS(ema_set_counter(ctx, EMA_MAX_COUNTER), EMA_OK);
    CHECK(ema_next_action(ctx, EMA_NO_STEP) == -1, "a counter that cannot advance: -1");
    ema_destroy(ctx);
}

static void test_resident_overwrite_and_copy_and_average(void) {
    ema_schedule s = defaults(EMA_RECIPE_KERAS);
    s.overwrite_every = 2;
    ema_ctx* ctx = make(&s);
    CHECK_STATUS(ema_resident_enable(ctx), EMA_OK);
    float* p0 = ema_param(ctx, 0);
    for (int i = 0; i < 4; i++) p0[i] = (float)i;
    ema_step_info info;
    CHECK_STATUS(ema_update_resident_at(ctx, EMA_NO_STEP, &info), EMA_OK);
    CHECK(info.overwrite == 0 && memcmp(ema_shadow(ctx, 0), p0, 4 * sizeof(float)) == 0,
          "first step: momentum 0 gives the variables");
    for (int i = 0; i < 4; i++) p0[i] = 10.0f;
    CHECK_STATUS(ema_update_resident_at(ctx, EMA_NO_STEP, &info), EMA_OK);
    CHECK(info.overwrite == 1, "second step overwrites");
    CHECK(memcmp(ema_shadow(ctx, 0), p0, 4 * sizeof(float)) == 0 && p0[1] != 10.0f,
          "the resident parameters took the averages");
    ema_destroy(ctx);

    ema_schedule e = defaults(EMA_RECIPE_EMA_PYTORCH);
    e.update_after_step = 0;
    e.update_every = 1;
    ctx = make(&e);
    CHECK_STATUS(ema_set_slot_mode(ctx, 2, EMA_SLOT_HOLD), EMA_OK);
    const float first[4] = {1, 2, 3, 4};
    const float later[4] = {-1, 5, 6, 7};
    const float* params[3] = {first, NULL, first};
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, &info), EMA_OK);
    CHECK(info.action == EMA_ACTION_COPY && ema_initted(ctx), "call 1 copies and sets initted");
    CHECK(memcmp(ema_shadow(ctx, 2), first, 3 * sizeof(float)) == 0, "a whole-model copy writes a held slot");
    params[0] = later;
    params[2] = later;
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, &info), EMA_OK);
    CHECK(info.action == EMA_ACTION_AVERAGE, "call 2 averages");
    CHECK(memcmp(ema_shadow(ctx, 2), first, 3 * sizeof(float)) == 0, "an average leaves a held slot alone");
    CHECK(ema_shadow(ctx, 0)[1] != 2.0f && ema_shadow(ctx, 0)[1] != 5.0f, "and averages the others");
    CHECK_STATUS(ema_set_slot_mode(ctx, 2, EMA_SLOT_KEEP), EMA_OK);
    CHECK_STATUS(ema_set_initted(ctx, 0), EMA_OK);
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, &info), EMA_OK);
    CHECK(info.action == EMA_ACTION_COPY && memcmp(ema_shadow(ctx, 2), first, 3 * sizeof(float)) == 0,
          "not even a whole-model copy writes a kept slot");
    ema_destroy(ctx);
}

static void test_read_divisor(void) {
    ema_schedule s = defaults(EMA_RECIPE_DEBIASED);
    s.decay = 0.5;
    ema_ctx* ctx = make(&s);
    CHECK(ema_read_divisor(ctx) == 0.0f, "no average before the first update");
    CHECK_STATUS(ema_set_counter(ctx, 3), EMA_OK);
    CHECK(ema_read_divisor(ctx) == 0.875f, "1 - 0.5^3");
    CHECK_STATUS(ema_set_counter(ctx, (int64_t)INT32_MAX + 1), EMA_ERROR_COUNTER_OVERFLOW);
    s.debias = 0;
    CHECK_STATUS(ema_set_schedule(ctx, &s), EMA_OK);
    CHECK(ema_read_divisor(ctx) == 1.0f, "debias off: read as is");
    ema_destroy(ctx);
    ema_schedule litema = defaults(EMA_RECIPE_LITEMA);
    ctx = make(&litema);
    CHECK(ema_read_divisor(ctx) == 1.0f, "other recipes: 1");
    ema_destroy(ctx);
    CHECK(isnan(ema_read_divisor(NULL)), "NULL: NaN");
}

int main(void) {
    check_begin("test_schedule");
    test_defaults();
    test_check_refuses();
    test_litema_and_torch_ema();
    test_diffusers();
    test_timm();
    test_ema_pytorch();
    test_keras_and_debiased();
    test_power();
    test_counters_and_modes();
    test_nonfinite();
    test_guard_skips_skipping_steps();
    test_resident_overwrite_and_copy_and_average();
    test_read_divisor();
    return check_end();
}
