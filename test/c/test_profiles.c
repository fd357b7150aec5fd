/*
 * test_profiles.c - several power-function profiles in one context.
 *
 * Profiles are independent EMAs that share a counter, so the reference for a
 * context of K profiles is K contexts of one profile each (whose bits the
 * PyTorch fixtures pin, test_recipes.c): every shadow must match bit for
 * bit, through ema_update_at, the staged path and resident mode, with slot
 * lengths around the fused loop's block, uneven sample counts, every slot
 * mode and the non-finite guard. Then the refusals.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ema.h"
#include "ema_stream.h"
#include "test_util.h"

#define MAX_TESTED_PROFILES 4
#define SLOTS 5

/* How many profiles the fixtures use: 2 (the fused pair kernel), 3 (a pair
 * and one alone), 4 (two pairs), each run in turn by main(). */
static int PROFILES = 3;
static const double SIGMA_RELS[MAX_TESTED_PROFILES] = {0.05, 0.10, 0.28867513459481287, 0.02};
/* Around the fused loop's 1024-element block, and below a SIMD vector. */
static const uint32_t LENGTHS[SLOTS] = {1, 1023, 2 * 1024 + 37, 0, 7};

static uint32_t rng_state = 12345u;

static float next_value(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((int32_t)(rng_state >> 8) - (1 << 23)) / (float)(1 << 20);
}

static ema_schedule power_schedule(double sigma_rel, int64_t batch_size) {
    ema_schedule schedule;
    (void)ema_schedule_defaults(&schedule, EMA_RECIPE_POWER);
    schedule.sigma_rel = sigma_rel;
    schedule.batch_size = batch_size;
    return schedule;
}

typedef struct fixture {
    ema_ctx* multi;
    ema_ctx* singles[MAX_TESTED_PROFILES];
    float* params[SLOTS];
} fixture;

static int fixture_open(fixture* f, int64_t batch_size, int resident) {
    memset(f, 0, sizeof *f);
    ema_schedule schedules[MAX_TESTED_PROFILES];
    for (int k = 0; k < PROFILES; k++) {
        schedules[k] = power_schedule(SIGMA_RELS[k], batch_size);
        if (!CHECK_STATUS(ema_create_scheduled(&f->singles[k], &schedules[k], SLOTS, LENGTHS), EMA_OK)) {
            return 0;
        }
    }
    if (!CHECK_STATUS(ema_create_profiles(&f->multi, PROFILES, schedules, SLOTS, LENGTHS), EMA_OK)) {
        return 0;
    }
    for (int i = 0; i < SLOTS; i++) {
        f->params[i] = calloc(LENGTHS[i] + 1, sizeof(float));
    }
    if (resident) {
        CHECK_STATUS(ema_resident_enable(f->multi), EMA_OK);
        for (int k = 0; k < PROFILES; k++) {
            CHECK_STATUS(ema_resident_enable(f->singles[k]), EMA_OK);
        }
    }
    return 1;
}

static void fixture_close(fixture* f) {
    ema_destroy(f->multi);
    for (int k = 0; k < PROFILES; k++) {
        ema_destroy(f->singles[k]);
    }
    for (int i = 0; i < SLOTS; i++) {
        free(f->params[i]);
    }
}

static void fill_params(fixture* f) {
    for (int i = 0; i < SLOTS; i++) {
        for (uint32_t j = 0; j < LENGTHS[i]; j++) {
            f->params[i][j] = next_value();
        }
    }
}

/* Every profile's shadows equal its single context's, bit for bit. */
static int same_shadows(fixture* f, const char* what, int step) {
    for (int k = 0; k < PROFILES; k++) {
        for (int i = 0; i < SLOTS; i++) {
            const float* got = ema_profile_shadow(f->multi, (uint32_t)k, (uint32_t)i);
            const float* want = ema_shadow(f->singles[k], (uint32_t)i);
            if (LENGTHS[i] != 0 && !CHECK(memcmp(got, want, LENGTHS[i] * sizeof(float)) == 0,
                                          "%s: step %d, profile %d, slot %d differs", what, step, k, i)) {
                return 0;
            }
        }
    }
    return 1;
}

static int same_steps(fixture* f, const ema_step_info* first, const char* what, int step) {
    for (int k = 0; k < PROFILES; k++) {
        ema_step_info got, want;
        CHECK_STATUS(ema_profile_step(f->multi, (uint32_t)k, &got), EMA_OK);
        CHECK_STATUS(ema_profile_step(f->singles[k], 0, &want), EMA_OK);
        if (!CHECK(memcmp(&got, &want, sizeof got) == 0, "%s: step %d, profile %d's step info", what, step, k)) {
            return 0;
        }
        if (k == 0 && !CHECK(memcmp(first, &want, sizeof want) == 0, "%s: the info is profile 0's", what)) {
            return 0;
        }
    }
    return CHECK(ema_counter(f->multi) == ema_counter(f->singles[0]), "%s: counter", what);
}

/* Uneven sample counts: a batch of `batch` with every fifth step short. */
static int64_t samples_of(int step, int64_t batch) {
    return step % 5 == 4 ? batch / 2 + 1 : EMA_NO_STEP;
}

static void test_direct(int64_t batch) {
    fixture f;
    if (!fixture_open(&f, batch, 0)) {
        fixture_close(&f);
        return;
    }
    CHECK(ema_profile_count(f.multi) == (uint32_t)PROFILES, "%d profiles", PROFILES);
    for (int step = 0; step < 60; step++) { /* past the first ~36 steps, where sigma_rel 0.05 takes lerp_'s other branch */
        fill_params(&f);
        const int64_t at = samples_of(step, batch);
        ema_step_info info;
        CHECK_STATUS(ema_update_at(f.multi, (const float* const*)f.params, at, &info), EMA_OK);
        for (int k = 0; k < PROFILES; k++) {
            CHECK_STATUS(ema_update_at(f.singles[k], (const float* const*)f.params, at, NULL), EMA_OK);
        }
        if (!same_shadows(&f, "direct", step) || !same_steps(&f, &info, "direct", step)) {
            break;
        }
    }
    CHECK(ema_steps(f.multi) == 60, "60 steps: %lld", (long long)ema_steps(f.multi));
    CHECK_STATUS(ema_set_steps(f.multi, -1), EMA_ERROR_INVALID_COUNTER);
    CHECK_STATUS(ema_set_steps(f.multi, EMA_MAX_COUNTER + 1), EMA_ERROR_COUNTER_OVERFLOW);
    CHECK_STATUS(ema_set_steps(f.multi, 5), EMA_OK);
    CHECK(ema_steps(f.multi) == 5, "steps set");
    fixture_close(&f);
}

/* The staged path, as js/ drives it: whole slots and pieces of them. */
static ema_status staged_update(ema_ctx* ctx, float* const* params, int64_t at) {
    ema_status status = ema_step_begin_at(ctx, at, NULL);
    if (status != EMA_OK) {
        return status;
    }
    float* window = ema_staging(ctx);
    ema_segment* table = ema_segment_table(ctx);
    const uint32_t piece = 300; /* cuts the long slots */
    for (uint32_t slot = 0; slot < SLOTS; slot++) {
        for (uint32_t offset = 0; offset < LENGTHS[slot]; offset += piece) {
            const uint32_t count = LENGTHS[slot] - offset < piece ? LENGTHS[slot] - offset : piece;
            memcpy(window, params[slot] + offset, count * sizeof(float));
            table[0] = (ema_segment){.slot = slot, .offset = offset, .count = count};
            status = ema_step_apply_staged(ctx, 1);
            if (status != EMA_OK) {
                return status;
            }
        }
    }
    return EMA_OK;
}

static void test_staged(void) {
    fixture f;
    if (!fixture_open(&f, 3, 0)) {
        fixture_close(&f);
        return;
    }
    for (int step = 0; step < 12; step++) {
        fill_params(&f);
        CHECK_STATUS(staged_update(f.multi, f.params, samples_of(step, 3)), EMA_OK);
        for (int k = 0; k < PROFILES; k++) {
            CHECK_STATUS(staged_update(f.singles[k], f.params, samples_of(step, 3)), EMA_OK);
        }
        if (!same_shadows(&f, "staged", step)) {
            break;
        }
    }
    fixture_close(&f);
}

static void test_resident(void) {
    fixture f;
    if (!fixture_open(&f, 1, 1)) {
        fixture_close(&f);
        return;
    }
    for (int step = 0; step < 10; step++) {
        for (int i = 0; i < SLOTS; i++) {
            for (uint32_t j = 0; j < LENGTHS[i]; j++) {
                const float value = next_value();
                ema_param(f.multi, (uint32_t)i)[j] = value;
                for (int k = 0; k < PROFILES; k++) {
                    ema_param(f.singles[k], (uint32_t)i)[j] = value;
                }
            }
        }
        CHECK_STATUS(ema_update_resident_at(f.multi, EMA_NO_STEP, NULL), EMA_OK);
        for (int k = 0; k < PROFILES; k++) {
            CHECK_STATUS(ema_update_resident_at(f.singles[k], EMA_NO_STEP, NULL), EMA_OK);
        }
        if (!same_shadows(&f, "resident", step)) {
            break;
        }
    }
    /* Each profile's shadows go into the parameters. */
    for (int k = 0; k < PROFILES; k++) {
        CHECK_STATUS(ema_copy_profile_to_resident(f.multi, (uint32_t)k), EMA_OK);
        CHECK_STATUS(ema_copy_to_resident(f.singles[k]), EMA_OK);
        for (int i = 0; i < SLOTS; i++) {
            CHECK(LENGTHS[i] == 0 || memcmp(ema_param(f.multi, (uint32_t)i), ema_param(f.singles[k], (uint32_t)i),
                                            LENGTHS[i] * sizeof(float)) == 0,
                  "copy_profile_to_resident: profile %d, slot %d", k, i);
        }
    }
    CHECK_STATUS(ema_copy_profile_to_resident(f.multi, PROFILES), EMA_ERROR_INVALID_ARGUMENT);
    fixture_close(&f);
}

/* Slot modes hold in every profile: copy, hold and keep. */
static void test_slot_modes(void) {
    fixture f;
    if (!fixture_open(&f, 2, 0)) {
        fixture_close(&f);
        return;
    }
    const uint32_t modes[SLOTS] = {EMA_SLOT_COPY, EMA_SLOT_AVERAGE, EMA_SLOT_HOLD, EMA_SLOT_AVERAGE, EMA_SLOT_KEEP};
    for (uint32_t i = 0; i < SLOTS; i++) {
        CHECK_STATUS(ema_set_slot_mode(f.multi, i, modes[i]), EMA_OK);
        for (int k = 0; k < PROFILES; k++) {
            CHECK_STATUS(ema_set_slot_mode(f.singles[k], i, modes[i]), EMA_OK);
        }
    }
    for (int step = 0; step < 6; step++) {
        fill_params(&f);
        CHECK_STATUS(ema_update_at(f.multi, (const float* const*)f.params, EMA_NO_STEP, NULL), EMA_OK);
        for (int k = 0; k < PROFILES; k++) {
            CHECK_STATUS(ema_update_at(f.singles[k], (const float* const*)f.params, EMA_NO_STEP, NULL), EMA_OK);
        }
        if (!same_shadows(&f, "slot modes", step)) {
            break;
        }
    }
    fixture_close(&f);
}

/* A refused step leaves every profile as it was. */
static void test_nonfinite(void) {
    ema_schedule schedules[2] = {power_schedule(0.05, 1), power_schedule(0.1, 1)};
    schedules[0].nonfinite = schedules[1].nonfinite = EMA_NONFINITE_ERROR;
    const uint32_t length = 9;
    ema_ctx* ctx = NULL;
    if (!CHECK_STATUS(ema_create_profiles(&ctx, 2, schedules, 1, &length), EMA_OK)) {
        return;
    }
    float param[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float* params[1] = {param};
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, NULL), EMA_OK);
    float before[2][9];
    memcpy(before[0], ema_profile_shadow(ctx, 0, 0), sizeof before[0]);
    memcpy(before[1], ema_profile_shadow(ctx, 1, 0), sizeof before[1]);
    param[8] = INFINITY;
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, NULL), EMA_ERROR_NONFINITE);
    CHECK(memcmp(before[0], ema_profile_shadow(ctx, 0, 0), sizeof before[0]) == 0, "profile 0 unchanged");
    CHECK(memcmp(before[1], ema_profile_shadow(ctx, 1, 0), sizeof before[1]) == 0, "profile 1 unchanged");
    CHECK(ema_counter(ctx) == 1, "counter unchanged: %lld", (long long)ema_counter(ctx));
    CHECK(ema_steps(ctx) == 1, "steps unchanged: %lld", (long long)ema_steps(ctx));
    ema_destroy(ctx);
}

static void test_refusals(void) {
    const uint32_t length = 4;
    ema_ctx* ctx = (ema_ctx*)&length; /* must stay untouched on failure */
    ema_schedule schedules[EMA_MAX_PROFILES + 1];
    for (uint32_t k = 0; k <= EMA_MAX_PROFILES; k++) {
        schedules[k] = power_schedule(0.05 + 0.01 * k, 1);
    }
    CHECK_STATUS(ema_create_profiles(&ctx, 0, schedules, 1, &length), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_create_profiles(&ctx, EMA_MAX_PROFILES + 1, schedules, 1, &length),
                 EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_create_profiles(NULL, 2, schedules, 1, &length), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_create_profiles(&ctx, 2, NULL, 1, &length), EMA_ERROR_NULL_ARGUMENT);

    ema_schedule mixed[2] = {power_schedule(0.05, 1), power_schedule(0.1, 2)};
    CHECK_STATUS(ema_create_profiles(&ctx, 2, mixed, 1, &length), EMA_ERROR_INVALID_SCHEDULE);
    (void)ema_schedule_defaults(&mixed[1], EMA_RECIPE_LITEMA);
    CHECK_STATUS(ema_create_profiles(&ctx, 2, mixed, 1, &length), EMA_ERROR_INVALID_SCHEDULE);
    ema_schedule two_litemas[2];
    (void)ema_schedule_defaults(&two_litemas[0], EMA_RECIPE_LITEMA);
    two_litemas[1] = two_litemas[0];
    CHECK_STATUS(ema_create_profiles(&ctx, 2, two_litemas, 1, &length), EMA_ERROR_INVALID_SCHEDULE);
    mixed[1] = power_schedule(0.4, 1); /* no valid gamma */
    CHECK_STATUS(ema_create_profiles(&ctx, 2, mixed, 1, &length), EMA_ERROR_INVALID_SCHEDULE);
    mixed[1] = power_schedule(EMA_MIN_SIGMA_REL * 0.5, 1); /* below the floor */
    CHECK_STATUS(ema_create_profiles(&ctx, 2, mixed, 1, &length), EMA_ERROR_INVALID_SCHEDULE);
    mixed[1] = power_schedule(0.0, 1);
    mixed[1].power = EMA_MAX_GAMMA * 1.5; /* the same floor, as gamma */
    CHECK_STATUS(ema_create_profiles(&ctx, 2, mixed, 1, &length), EMA_ERROR_INVALID_SCHEDULE);
    mixed[1].power = EMA_MAX_GAMMA;
    mixed[1].sigma_rel = 0.0;
    CHECK_STATUS(ema_schedule_check(&mixed[1]), EMA_OK);
    CHECK(ctx == (ema_ctx*)&length, "no context on failure");

    /* The most profiles; a one-profile context of any recipe. */
    CHECK_STATUS(ema_create_profiles(&ctx, EMA_MAX_PROFILES, schedules, 1, &length), EMA_OK);
    CHECK(ema_profile_shadow(ctx, EMA_MAX_PROFILES - 1, 0) != NULL, "the last profile's shadow");
    CHECK(ema_profile_shadow(ctx, EMA_MAX_PROFILES, 0) == NULL, "no shadow past the last profile");
    CHECK(ema_profile_shadow(ctx, 0, 1) == NULL, "no shadow past the last slot");

    /* Shared fields go to every profile; a profile's own call changes its width only. */
    ema_schedule shared = power_schedule(0.2, 7);
    CHECK_STATUS(ema_set_schedule(ctx, &shared), EMA_OK);
    ema_schedule got;
    CHECK_STATUS(ema_get_profile_schedule(ctx, 3, &got), EMA_OK);
    CHECK(got.batch_size == 7 && got.sigma_rel == schedules[3].sigma_rel, "shared field set, width kept");
    CHECK_STATUS(ema_get_schedule(ctx, &got), EMA_OK);
    CHECK(got.sigma_rel == 0.2, "profile 0 takes the width");
    ema_schedule own = power_schedule(0.15, 7);
    CHECK_STATUS(ema_set_profile_schedule(ctx, 5, &own), EMA_OK);
    CHECK_STATUS(ema_get_profile_schedule(ctx, 5, &got), EMA_OK);
    double gamma = 0.0;
    CHECK_STATUS(ema_gamma_of_sigma_rel(0.15, &gamma), EMA_OK);
    CHECK(got.sigma_rel == 0.15 && got.power == gamma, "profile 5's width and gamma");
    own.batch_size = 8;
    CHECK_STATUS(ema_set_profile_schedule(ctx, 5, &own), EMA_ERROR_INVALID_SCHEDULE);
    CHECK_STATUS(ema_set_profile_schedule(ctx, EMA_MAX_PROFILES, &own), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_get_profile_schedule(ctx, EMA_MAX_PROFILES, &got), EMA_ERROR_INVALID_ARGUMENT);
    ema_step_info info;
    CHECK_STATUS(ema_profile_step(ctx, EMA_MAX_PROFILES, &info), EMA_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(ema_profile_step(ctx, 0, NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK(ema_profile_count(NULL) == 0, "no profiles for NULL");
    ema_destroy(ctx);
}

int main(void) {
    check_begin("test_profiles");
    for (PROFILES = 2; PROFILES <= MAX_TESTED_PROFILES; PROFILES++) {
        test_direct(1);
        test_direct(4);
        test_staged();
        test_resident();
        test_slot_modes();
    }
    test_nonfinite();
    test_refusals();
    return check_end();
}
