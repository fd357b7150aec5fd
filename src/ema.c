/*
 * ema.c - the context: shadow arena, LitEma's counter and decay, the streaming
 * update, and the backup region used by store/restore.
 *
 * Every public function checks all of its arguments first and only then
 * changes state, so a failed call leaves the context as it was.
 */
#include "ema.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "arena.h"
#include "ema_stream.h"
#include "kernels/f32-vfma.h"
#include "kernels/f32-vkeras.h"
#include "kernels/f32-vlerp-profiles.h"
#include "kernels/f32-vlerp.h"
#include "kernels/f32-vupdate.h"

float ema_debias_divisor(double decay, int64_t count); /* src/schedule.c */

typedef struct ema_region {
    float* base;       /* one 64-byte aligned allocation for all arrays, `copies` times */
    size_t byte_size;  /* bytes of one copy of the arrays */
    uint32_t copies;   /* copies of the layout at base, one after another (profiles) */
    uint32_t count;    /* number of arrays */
    uint32_t* lengths; /* floats in each array */
    size_t* offsets;   /* float offset of each array from base */
} ema_region;

struct ema_ctx {
    /* One schedule per profile; they differ only in the power recipe's
     * gamma (`power`) and sigma_rel. Profile 0's is the context's schedule. */
    ema_schedule schedules[EMA_MAX_PROFILES];
    uint32_t profile_count;
    int64_t counter; /* the recipe's counter (LitEma's num_updates), shared by the profiles */
    int64_t steps;   /* steps that averaged or copied: a training step count, whatever the counter counts */
    bool initted;    /* ema-pytorch's `initted`: an average has happened */
    ema_step_info profile_steps[EMA_MAX_PROFILES]; /* each profile's last step (the open one) */
    bool step_open;

    ema_region shadows; /* one copy of the slots' layout per profile */
    uint8_t* slot_modes;   /* ema_slot_mode of each slot */
    uint32_t copy_slots;   /* how many slots are not EMA_SLOT_AVERAGE */
    float* staging;       /* EMA_STAGING_FLOATS floats */
    ema_segment* segments; /* EMA_SEGMENT_CAPACITY entries */

    ema_region backup;
    bool has_backup;

    /* Resident mode: parameters and their backup, each in one block with
     * exactly the shadows' layout. */
    float* params;
    float* resident_backup;
    bool has_resident_backup;
};

/* ------------------------------------------------------------------------ */

static bool is_valid_decay(float decay) {
    return decay >= 0.0f && decay <= 1.0f; /* false for NaN */
}

static void region_free(ema_region* region) {
    ema_arena_free(region->base);
    free(region->lengths);
    free(region->offsets);
    memset(region, 0, sizeof(*region));
}

/* Allocates a region of `count` arrays, `copies` times over; all or nothing. */
static ema_status region_alloc(ema_region* out, uint32_t count, const uint32_t* lengths,
                               uint32_t copies) {
    ema_region region = {0};
    region.count = count;
    region.copies = copies;
    if (count != 0 && lengths == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }

    size_t byte_size = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (!ema_arena_add_floats(&byte_size, lengths[i])) {
            return EMA_ERROR_TOO_LARGE;
        }
    }
    if ((uint64_t)count * sizeof(size_t) > SIZE_MAX) {
        return EMA_ERROR_TOO_LARGE;
    }

    if (byte_size > SIZE_MAX / copies) {
        return EMA_ERROR_TOO_LARGE;
    }

    region.lengths = malloc((count ? count : 1) * sizeof(uint32_t));
    region.offsets = malloc((count ? count : 1) * sizeof(size_t));
    region.base = ema_arena_alloc(byte_size * copies);
    if (region.lengths == NULL || region.offsets == NULL || region.base == NULL) {
        region_free(&region);
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    region.byte_size = byte_size;

    size_t position = 0;
    for (uint32_t i = 0; i < count; i++) {
        region.lengths[i] = lengths[i];
        region.offsets[i] = position / sizeof(float);
        (void)ema_arena_add_floats(&position, lengths[i]);
    }
    *out = region;
    return EMA_OK;
}

static float* region_array(const ema_region* region, uint32_t index) {
    return index < region->count ? region->base + region->offsets[index] : NULL;
}

/* Floats from one copy of a region's layout to the next (a profile's
 * shadows to the next profile's), padding included. */
static size_t region_copy_floats(const ema_region* region) {
    return region->byte_size / sizeof(float);
}

/* Array `index` of copy `copy` (a profile's shadow); NULL when either is out of range. */
static float* region_copy_array(const ema_region* region, uint32_t copy, uint32_t index) {
    if (copy >= region->copies || index >= region->count) {
        return NULL;
    }
    return region->base + copy * region_copy_floats(region) + region->offsets[index];
}

uint32_t ema_region_bytes_per_array(void) {
    return (uint32_t)(sizeof(((ema_region*)0)->lengths[0]) + sizeof(((ema_region*)0)->offsets[0]));
}

/* ------------------------------------------------------------------------ */

ema_status ema_create(ema_ctx** out, float decay, int use_num_updates, uint32_t slot_count,
                      const uint32_t* slot_lengths) {
    ema_schedule schedule;
    (void)ema_schedule_defaults(&schedule, EMA_RECIPE_LITEMA);
    if (!is_valid_decay(decay)) {
        return out == NULL ? EMA_ERROR_NULL_ARGUMENT : EMA_ERROR_INVALID_DECAY;
    }
    schedule.decay = decay;
    schedule.warmup = use_num_updates ? 1u : 0u;
    return ema_create_scheduled(out, &schedule, slot_count, slot_lengths);
}

/* A checked schedule as the context keeps it: the power recipe's gamma
 * (`power`) derived from sigma_rel when that is given. */
static ema_schedule normalized(const ema_schedule* schedule) {
    ema_schedule result = *schedule;
    if (result.recipe == EMA_RECIPE_POWER && result.sigma_rel != 0.0) {
        (void)ema_gamma_of_sigma_rel(result.sigma_rel, &result.power); /* checked: in range */
    }
    return result;
}

/* The counter a fresh context of `schedule` starts from: LitEma's and
 * torch_ema's num_updates is -1 (None) without warmup. */
static int64_t initial_counter(const ema_schedule* schedule) {
    const bool counts_warmup =
        schedule->recipe == EMA_RECIPE_LITEMA || schedule->recipe == EMA_RECIPE_TORCH_EMA;
    return counts_warmup && !schedule->warmup ? -1 : 0;
}

ema_status ema_create_scheduled(ema_ctx** out, const ema_schedule* schedule, uint32_t slot_count,
                                const uint32_t* slot_lengths) {
    return ema_create_profiles(out, 1, schedule, slot_count, slot_lengths);
}

/* Whether two power schedules differ in nothing but the profile's width
 * (gamma and sigma_rel): what lets profiles share one counter and one plan. */
static bool same_but_width(const ema_schedule* a, const ema_schedule* b) {
    ema_schedule a_shared = *a;
    ema_schedule b_shared = *b;
    a_shared.power = b_shared.power = 0.0;
    a_shared.sigma_rel = b_shared.sigma_rel = 0.0;
    return memcmp(&a_shared, &b_shared, sizeof a_shared) == 0;
}

/* Checks schedules for `count` profiles: each valid; with several, each of
 * the power recipe and sharing all but the width with the first. */
static ema_status check_profiles(uint32_t count, const ema_schedule* schedules) {
    if (count == 0 || count > EMA_MAX_PROFILES) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    for (uint32_t k = 0; k < count; k++) {
        const ema_status valid = ema_schedule_check(&schedules[k]);
        if (valid != EMA_OK) {
            return valid;
        }
        if (count > 1 && (schedules[k].recipe != EMA_RECIPE_POWER ||
                          !same_but_width(&schedules[k], &schedules[0]))) {
            return EMA_ERROR_INVALID_SCHEDULE;
        }
    }
    return EMA_OK;
}

ema_status ema_create_profiles(ema_ctx** out, uint32_t profile_count, const ema_schedule* schedules,
                               uint32_t slot_count, const uint32_t* slot_lengths) {
    if (out == NULL || schedules == NULL || (slot_count != 0 && slot_lengths == NULL)) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    const ema_status valid = check_profiles(profile_count, schedules);
    if (valid != EMA_OK) {
        return valid;
    }
    if (slot_count > EMA_MAX_SLOTS) {
        return EMA_ERROR_TOO_MANY_SLOTS;
    }

    ema_ctx* ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    ema_status status = region_alloc(&ctx->shadows, slot_count, slot_lengths, profile_count);
    if (status != EMA_OK) {
        free(ctx);
        return status;
    }
    ctx->staging = ema_arena_alloc(EMA_STAGING_FLOATS * sizeof(float));
    ctx->segments = malloc(EMA_SEGMENT_CAPACITY * sizeof(ema_segment));
    ctx->slot_modes = calloc(slot_count ? slot_count : 1, 1); /* EMA_SLOT_AVERAGE */
    if (ctx->staging == NULL || ctx->segments == NULL || ctx->slot_modes == NULL) {
        ema_destroy(ctx);
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    memset(ctx->shadows.base, 0, ctx->shadows.byte_size * profile_count);

    ctx->profile_count = profile_count;
    for (uint32_t k = 0; k < profile_count; k++) {
        ctx->schedules[k] = normalized(&schedules[k]);
    }
    ctx->counter = initial_counter(&schedules[0]);
    *out = ctx;
    return EMA_OK;
}

void ema_destroy(ema_ctx* ctx) {
    if (ctx == NULL) {
        return;
    }
    region_free(&ctx->shadows);
    region_free(&ctx->backup);
    ema_arena_free(ctx->params);
    ema_arena_free(ctx->resident_backup);
    ema_arena_free(ctx->staging);
    free(ctx->segments);
    free(ctx->slot_modes);
    free(ctx);
}

/* ------------------------------------------------------------------------ */

float ema_decay(const ema_ctx* ctx) {
    return ctx != NULL ? (float)ctx->schedules[0].decay : __builtin_nanf("");
}

ema_status ema_set_decay(ema_ctx* ctx, float decay) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!is_valid_decay(decay)) {
        return EMA_ERROR_INVALID_DECAY;
    }
    for (uint32_t k = 0; k < ctx->profile_count; k++) {
        ctx->schedules[k].decay = decay;
    }
    return EMA_OK;
}

int32_t ema_num_updates(const ema_ctx* ctx) {
    if (ctx == NULL) {
        return INT32_MIN;
    }
    return ctx->counter <= INT32_MAX ? (int32_t)ctx->counter : INT32_MAX;
}

ema_status ema_set_num_updates(ema_ctx* ctx, int32_t num_updates) {
    return ema_set_counter(ctx, num_updates);
}

ema_status ema_reset_num_updates(ema_ctx* ctx) {
    return ema_set_counter(ctx, 0);
}

int64_t ema_counter(const ema_ctx* ctx) {
    return ctx != NULL ? ctx->counter : INT64_MIN;
}

ema_status ema_set_counter(ema_ctx* ctx, int64_t counter) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    const uint32_t recipe = ctx->schedules[0].recipe;
    const int64_t lowest = recipe == EMA_RECIPE_LITEMA || recipe == EMA_RECIPE_TORCH_EMA ? -1 : 0;
    const int64_t highest = recipe == EMA_RECIPE_LITEMA     ? EMA_MAX_NUM_UPDATES
                            : recipe == EMA_RECIPE_DEBIASED ? INT32_MAX
                                                            : EMA_MAX_COUNTER;
    if (counter < lowest) {
        return EMA_ERROR_INVALID_COUNTER;
    }
    if (counter > highest) {
        return EMA_ERROR_COUNTER_OVERFLOW;
    }
    ctx->counter = counter;
    return EMA_OK;
}

int64_t ema_steps(const ema_ctx* ctx) {
    return ctx != NULL ? ctx->steps : INT64_MIN;
}

ema_status ema_set_steps(ema_ctx* ctx, int64_t steps) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (steps < 0 || steps > EMA_MAX_COUNTER) {
        return steps < 0 ? EMA_ERROR_INVALID_COUNTER : EMA_ERROR_COUNTER_OVERFLOW;
    }
    ctx->steps = steps;
    return EMA_OK;
}

int ema_initted(const ema_ctx* ctx) {
    return ctx != NULL && ctx->initted;
}

ema_status ema_set_initted(ema_ctx* ctx, int initted) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    ctx->initted = initted != 0;
    return EMA_OK;
}

ema_status ema_get_schedule(const ema_ctx* ctx, ema_schedule* out) {
    return ema_get_profile_schedule(ctx, 0, out);
}

ema_status ema_get_profile_schedule(const ema_ctx* ctx, uint32_t profile, ema_schedule* out) {
    if (ctx == NULL || out == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (profile >= ctx->profile_count) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    *out = ctx->schedules[profile];
    return EMA_OK;
}

ema_status ema_set_schedule(ema_ctx* ctx, const ema_schedule* schedule) {
    if (ctx == NULL || schedule == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    const ema_status valid = ema_schedule_check(schedule);
    if (valid != EMA_OK) {
        return valid;
    }
    if (schedule->recipe != ctx->schedules[0].recipe) {
        return EMA_ERROR_INVALID_ARGUMENT; /* the counter means another thing */
    }
    /* Every profile takes the shared fields; profile 0 the width too. */
    const ema_schedule first = normalized(schedule);
    for (uint32_t k = 1; k < ctx->profile_count; k++) {
        const double power = ctx->schedules[k].power, sigma_rel = ctx->schedules[k].sigma_rel;
        ctx->schedules[k] = first;
        ctx->schedules[k].power = power;
        ctx->schedules[k].sigma_rel = sigma_rel;
    }
    ctx->schedules[0] = first;
    return EMA_OK;
}

ema_status ema_set_profile_schedule(ema_ctx* ctx, uint32_t profile, const ema_schedule* schedule) {
    if (ctx == NULL || schedule == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (profile >= ctx->profile_count) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    const ema_status valid = ema_schedule_check(schedule);
    if (valid != EMA_OK) {
        return valid;
    }
    if (schedule->recipe != ctx->schedules[0].recipe) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    if (ctx->profile_count > 1 && !same_but_width(schedule, &ctx->schedules[profile])) {
        return EMA_ERROR_INVALID_SCHEDULE; /* only the width is a profile's own */
    }
    ctx->schedules[profile] = normalized(schedule);
    return EMA_OK;
}

uint32_t ema_profile_count(const ema_ctx* ctx) {
    return ctx != NULL ? ctx->profile_count : 0;
}

ema_status ema_profile_step(const ema_ctx* ctx, uint32_t profile, ema_step_info* out) {
    if (ctx == NULL || out == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (profile >= ctx->profile_count) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    *out = ctx->profile_steps[profile];
    return EMA_OK;
}

ema_status ema_set_slot_mode(ema_ctx* ctx, uint32_t slot, uint32_t mode) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (slot >= ctx->shadows.count) {
        return EMA_ERROR_SLOT_INDEX;
    }
    if (mode >= EMA_SLOT_MODE_LIMIT) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    /* copy_slots counts the slots that are not averaged: the resident fast path needs none. */
    ctx->copy_slots += (mode != EMA_SLOT_AVERAGE) - (ctx->slot_modes[slot] != EMA_SLOT_AVERAGE);
    ctx->slot_modes[slot] = (uint8_t)mode;
    return EMA_OK;
}

uint32_t ema_get_slot_mode(const ema_ctx* ctx, uint32_t slot) {
    return ctx != NULL && slot < ctx->shadows.count ? ctx->slot_modes[slot] : EMA_SLOT_AVERAGE;
}

float ema_read_divisor(const ema_ctx* ctx) {
    if (ctx == NULL) {
        return __builtin_nanf("");
    }
    const ema_schedule* schedule = &ctx->schedules[0];
    if (schedule->recipe != EMA_RECIPE_DEBIASED || !schedule->debias) {
        return 1.0f;
    }
    return ctx->counter > 0 ? ema_debias_divisor(schedule->decay, ctx->counter) : 0.0f;
}

uint32_t ema_slot_count(const ema_ctx* ctx) {
    return ctx != NULL ? ctx->shadows.count : 0;
}

uint32_t ema_slot_length(const ema_ctx* ctx, uint32_t slot) {
    return ctx != NULL && slot < ctx->shadows.count ? ctx->shadows.lengths[slot] : 0;
}

float* ema_shadow(ema_ctx* ctx, uint32_t slot) {
    return ema_profile_shadow(ctx, 0, slot);
}

float* ema_profile_shadow(ema_ctx* ctx, uint32_t profile, uint32_t slot) {
    return ctx != NULL ? region_copy_array(&ctx->shadows, profile, slot) : NULL;
}

ema_status ema_shadow_set(ema_ctx* ctx, uint32_t slot, uint32_t offset, const float* src,
                          uint32_t count) {
    if (ctx == NULL || (count != 0 && src == NULL)) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (slot >= ctx->shadows.count) {
        return EMA_ERROR_SLOT_INDEX;
    }
    const uint32_t length = ctx->shadows.lengths[slot];
    if (offset > length || count > length - offset) {
        return EMA_ERROR_OUT_OF_RANGE;
    }
    if (count != 0) {
        memmove(region_array(&ctx->shadows, slot) + offset, src, (size_t)count * sizeof(float));
    }
    return EMA_OK;
}

size_t ema_byte_length(const ema_ctx* ctx) {
    if (ctx == NULL) {
        return 0;
    }
    const size_t metadata = (size_t)(ctx->shadows.count + ctx->backup.count) *
                            (sizeof(uint32_t) + sizeof(size_t));
    const size_t resident = (ctx->params != NULL ? ctx->shadows.byte_size : 0) +
                            (ctx->resident_backup != NULL ? ctx->shadows.byte_size : 0);
    return sizeof(*ctx) + metadata + ctx->shadows.byte_size * ctx->profile_count +
           ctx->backup.byte_size + resident +
           EMA_STAGING_FLOATS * sizeof(float) + EMA_SEGMENT_CAPACITY * sizeof(ema_segment);
}

/* ------------------------------------------------------------------------ */

/* Profile `profile`'s step kernel over n elements: the schedule's rounding
 * with the step's weights. `param` may equal `shadow`. */
static void average_profile(const ema_ctx* ctx, uint32_t profile, size_t n, const float* param,
                            float* shadow) {
    const ema_step_info* step = &ctx->profile_steps[profile];
    switch ((ema_rounding)ctx->schedules[profile].rounding) {
        case EMA_ROUNDING_UNFUSED:
            ema_f32_vupdate_ukernel_best(n, param, shadow, step->weight);
            return;
        case EMA_ROUNDING_LERP:
            ema_f32_vlerp_ukernel_best(n, param, shadow, step->weight);
            return;
        case EMA_ROUNDING_FUSED:
            ema_f32_vfma_ukernel_best(n, param, shadow, step->weight);
            return;
        case EMA_ROUNDING_TWO_PRODUCTS:
            ema_f32_vkeras_ukernel_best(n, param, shadow, step->kernel_decay, step->weight);
            return;
        case EMA_ROUNDING_LIMIT:
            return; /* refused by ema_schedule_check */
    }
}

/* Profiles k and k + 1's step over n elements, their shadows `stride`
 * floats apart: one pass over the parameter when they round as lerp_ (the
 * power recipe; profiles share their rounding), else one after the other. */
static void average_pair(const ema_ctx* ctx, uint32_t k, size_t n, const float* param,
                         float* shadow, size_t stride) {
    if (ctx->schedules[k].rounding == EMA_ROUNDING_LERP) {
        ema_f32_vlerp_profiles_ukernel_best(n, param, shadow, shadow + stride,
                                            ctx->profile_steps[k].weight,
                                            ctx->profile_steps[k + 1].weight);
        return;
    }
    average_profile(ctx, k, n, param, shadow);
    average_profile(ctx, k + 1, n, param, shadow + stride);
}

/* Elements per block of the profiles' loop when there are more than two:
 * a block of the parameter (4 KiB) stays in the L1 cache while every pair
 * of profiles takes it, so the parameter is read from memory once. */
#define EMA_PROFILE_BLOCK 1024u

/* The step over n elements of every profile's shadow, from `first_shadow`
 * in profile 0's copy (the same place in each copy, `stride` floats apart).
 * Two profiles take one pass of the pair kernel, which streams both shadows
 * at once (bench/profiles.mjs: update(params) of two profiles 10-15% faster
 * than blocks of one profile at a time, at 1M and 16M parameters). */
static void average_into(const ema_ctx* ctx, size_t n, const float* param, float* first_shadow) {
    const size_t stride = region_copy_floats(&ctx->shadows);
    if (ctx->profile_count == 1) {
        average_profile(ctx, 0, n, param, first_shadow);
        return;
    }
    if (ctx->profile_count == 2) {
        average_pair(ctx, 0, n, param, first_shadow, stride);
        return;
    }
    for (size_t start = 0; start < n; start += EMA_PROFILE_BLOCK) {
        const size_t count = n - start < EMA_PROFILE_BLOCK ? n - start : EMA_PROFILE_BLOCK;
        uint32_t k = 0;
        for (; k + 1 < ctx->profile_count; k += 2) {
            average_pair(ctx, k, count, param + start, first_shadow + k * stride + start, stride);
        }
        if (k < ctx->profile_count) {
            average_profile(ctx, k, count, param + start, first_shadow + k * stride + start);
        }
    }
}

/* Applies the open step to n elements of one slot's shadows (from
 * `offset`), taking the parameter's values from `param`: what the step's
 * action and the slot's mode say, in every profile. */
static void apply_to_slot(const ema_ctx* ctx, uint32_t slot, uint32_t offset, size_t n,
                          const float* param) {
    const uint32_t mode = ctx->slot_modes[slot];
    if (n == 0 || mode == EMA_SLOT_KEEP) {
        return;
    }
    float* shadow = region_array(&ctx->shadows, slot) + offset;
    if (ctx->profile_steps[0].action == EMA_ACTION_COPY || mode == EMA_SLOT_COPY) {
        const size_t stride = region_copy_floats(&ctx->shadows);
        for (uint32_t k = 0; k < ctx->profile_count; k++) {
            memmove(shadow + k * stride, param, n * sizeof(float));
        }
    } else if (mode == EMA_SLOT_AVERAGE) {
        average_into(ctx, n, param, shadow);
    }
    /* EMA_SLOT_HOLD in a step that averages: untouched. */
}

static bool all_finite(const float* values, size_t n) {
    /* A float is NaN or infinite exactly when its exponent bits are all
     * ones. Or-ing a flag per element, with no early exit, is branch-free
     * and vectorises (the SIMD128 build checks four lanes at a time). */
    uint32_t any = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof bits);
        any |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    return any == 0;
}

int ema_staging_finite(const ema_ctx* ctx, uint32_t count) {
    if (ctx == NULL || count > EMA_STAGING_FLOATS) {
        return -1;
    }
    return all_finite(ctx->staging, count) ? 1 : 0;
}

/* Whether every averaged parameter is finite; `param_of(i)` gives slot i's. */
static bool averaged_params_finite(const ema_ctx* ctx, const float* const* params,
                                   const float* resident) {
    for (uint32_t i = 0; i < ctx->shadows.count; i++) {
        if (ctx->slot_modes[i] != EMA_SLOT_AVERAGE) {
            continue; /* not averaged: integer buffers are not even floats */
        }
        const float* param = params != NULL ? params[i] : resident + ctx->shadows.offsets[i];
        if (!all_finite(param, ctx->shadows.lengths[i])) {
            return false;
        }
    }
    return true;
}

/* Plans the next step of every profile into planned[0..profile_count);
 * changes nothing. The profiles share all but their width, so they agree on
 * the action and the counter; only the decay and weight differ. */
static ema_status plan_next(const ema_ctx* ctx, int64_t step, ema_step_info* planned) {
    for (uint32_t k = 0; k < ctx->profile_count; k++) {
        const ema_status status =
            ema_plan_step(&ctx->schedules[k], ctx->counter, ctx->initted, step, &planned[k]);
        if (status != EMA_OK) {
            return status;
        }
    }
    return EMA_OK;
}

/* Makes planned steps the open one: the counter advances. Cannot fail.
 * *info, when not NULL, receives profile 0's. */
static void commit_step(ema_ctx* ctx, const ema_step_info* planned, ema_step_info* info) {
    ctx->counter = planned[0].counter;
    if (planned[0].action != EMA_ACTION_SKIP && ctx->steps < EMA_MAX_COUNTER) {
        ctx->steps += 1;
    }
    if (planned[0].action == EMA_ACTION_COPY) {
        ctx->initted = true;
    }
    memcpy(ctx->profile_steps, planned, ctx->profile_count * sizeof *planned);
    ctx->step_open = planned[0].action != EMA_ACTION_SKIP;
    if (info != NULL) {
        *info = planned[0];
    }
}

static ema_status open_step(ema_ctx* ctx, int64_t step, ema_step_info* info) {
    ema_step_info planned[EMA_MAX_PROFILES];
    const ema_status status = plan_next(ctx, step, planned);
    if (status != EMA_OK) {
        return status;
    }
    commit_step(ctx, planned, info);
    return EMA_OK;
}

int32_t ema_next_action(const ema_ctx* ctx, int64_t step) {
    ema_step_info planned[EMA_MAX_PROFILES];
    if (ctx == NULL || plan_next(ctx, step, planned) != EMA_OK) {
        return -1;
    }
    return (int32_t)planned[0].action;
}

/* The non-finite check of a planned step, before it opens (a step that
 * skips reads nothing and is not checked): 0 to go on; 1 when refused, with
 * *status EMA_ERROR_NONFINITE, or EMA_OK and a skipped step in *info. */
static int refuse_nonfinite(const ema_ctx* ctx, const ema_step_info* planned,
                            const float* const* params, const float* resident,
                            ema_step_info* info, ema_status* status) {
    *status = EMA_OK;
    const uint32_t policy = ctx->schedules[0].nonfinite;
    if (policy == EMA_NONFINITE_ALLOW || planned->action == EMA_ACTION_SKIP ||
        averaged_params_finite(ctx, params, resident)) {
        return 0;
    }
    if (policy == EMA_NONFINITE_ERROR) {
        *status = EMA_ERROR_NONFINITE;
        return 1;
    }
    if (info != NULL) {
        memset(info, 0, sizeof *info);
        info->counter = ctx->counter;
        info->action = EMA_ACTION_SKIP_NONFINITE;
    }
    return 1;
}

ema_status ema_update_at(ema_ctx* ctx, const float* const* params, int64_t step,
                         ema_step_info* info) {
    if (ctx == NULL || (ctx->shadows.count != 0 && params == NULL)) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    for (uint32_t i = 0; i < ctx->shadows.count; i++) {
        if (params[i] == NULL && ctx->shadows.lengths[i] != 0) {
            return EMA_ERROR_NULL_ARGUMENT;
        }
    }
    ema_step_info planned[EMA_MAX_PROFILES];
    ema_status status = plan_next(ctx, step, planned);
    if (status != EMA_OK) {
        return status;
    }
    if (refuse_nonfinite(ctx, planned, params, NULL, info, &status)) {
        return status;
    }
    commit_step(ctx, planned, info);
    if (ctx->step_open) {
        for (uint32_t i = 0; i < ctx->shadows.count; i++) {
            apply_to_slot(ctx, i, 0, ctx->shadows.lengths[i], params[i]);
        }
    }
    /* A whole step is done: a stray ema_step_apply must not apply it again. */
    ctx->step_open = false;
    return EMA_OK;
}

ema_status ema_update(ema_ctx* ctx, const float* const* params, float* decay_used) {
    ema_step_info info;
    const ema_status status = ema_update_at(ctx, params, EMA_NO_STEP, &info);
    if (status == EMA_OK && decay_used != NULL) {
        *decay_used = (float)info.decay;
    }
    return status;
}

ema_status ema_step_begin_at(ema_ctx* ctx, int64_t step, ema_step_info* info) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    return open_step(ctx, step, info);
}

ema_status ema_step_begin(ema_ctx* ctx, float* decay_used) {
    ema_step_info info;
    const ema_status status = ema_step_begin_at(ctx, EMA_NO_STEP, &info);
    if (status == EMA_OK && decay_used != NULL) {
        *decay_used = (float)info.decay;
    }
    return status;
}

/* How many elements of `size` bytes fit from `pointer` to the end of the
 * context-owned block [base, base + capacity); UINT64_MAX when `pointer` lies
 * outside it (caller memory, whose extent the core cannot know). Compared as
 * integers: relational operators on unrelated pointers are undefined. */
static uint64_t elements_left_in(const void* base, uint32_t capacity, size_t size,
                                 const void* pointer) {
    const uintptr_t start = (uintptr_t)base;
    const uintptr_t end = start + (uintptr_t)capacity * size;
    const uintptr_t at = (uintptr_t)pointer;
    if (at < start || at >= end) {
        return UINT64_MAX;
    }
    return (end - at) / size;
}

/* Checks `segment_count` segments and the values they take from `packed`,
 * which may hold at most `packed_capacity` floats; then, and only then,
 * applies the open step to them. The caller has checked the pointers and that
 * a step is open. */
static ema_status apply_segments(const ema_ctx* ctx, const ema_segment* segments, uint32_t segment_count,
                                 const float* packed, uint64_t packed_capacity) {
    uint64_t packed_total = 0;
    for (uint32_t i = 0; i < segment_count; i++) {
        const ema_segment segment = segments[i];
        if (segment.slot >= ctx->shadows.count) {
            return EMA_ERROR_SLOT_INDEX;
        }
        const uint32_t length = ctx->shadows.lengths[segment.slot];
        if (segment.offset > length || segment.count > length - segment.offset) {
            return EMA_ERROR_OUT_OF_RANGE;
        }
        packed_total += segment.count;
    }
    if (packed_capacity < packed_total) {
        return EMA_ERROR_SEGMENT_OVERFLOW;
    }

    for (uint32_t i = 0; i < segment_count; i++) {
        const ema_segment segment = segments[i];
        apply_to_slot(ctx, segment.slot, segment.offset, segment.count, packed);
        packed += segment.count;
    }
    return EMA_OK;
}

ema_status ema_step_apply(ema_ctx* ctx, const ema_segment* segments, uint32_t segment_count,
                          const float* packed) {
    if (ctx == NULL || (segment_count != 0 && (segments == NULL || packed == NULL))) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!ctx->step_open) {
        return EMA_ERROR_NO_STEP;
    }
    if (elements_left_in(ctx->segments, EMA_SEGMENT_CAPACITY, sizeof(ema_segment), segments) <
        segment_count) {
        return EMA_ERROR_SEGMENT_OVERFLOW;
    }
    return apply_segments(ctx, segments, segment_count, packed,
                          elements_left_in(ctx->staging, EMA_STAGING_FLOATS, sizeof(float), packed));
}

ema_status ema_step_apply_staged(ema_ctx* ctx, uint32_t segment_count) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!ctx->step_open) {
        return EMA_ERROR_NO_STEP;
    }
    if (segment_count > EMA_SEGMENT_CAPACITY) {
        return EMA_ERROR_SEGMENT_OVERFLOW;
    }
    return apply_segments(ctx, ctx->segments, segment_count, ctx->staging, EMA_STAGING_FLOATS);
}

ema_status ema_step_apply_window(const ema_ctx* ctx, const ema_segment* segments,
                                 uint32_t segment_count, const float* packed,
                                 uint32_t packed_floats) {
    if (ctx == NULL || (segment_count != 0 && (segments == NULL || packed == NULL))) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!ctx->step_open) {
        return EMA_ERROR_NO_STEP;
    }
    return apply_segments(ctx, segments, segment_count, packed, packed_floats);
}

float* ema_staging(ema_ctx* ctx) {
    return ctx != NULL ? ctx->staging : NULL;
}

ema_segment* ema_segment_table(ema_ctx* ctx) {
    return ctx != NULL ? ctx->segments : NULL;
}

/* ------------------------------------------------------------------------ */

/* Allocates a zeroed block of the shadows' layout into *block unless there
 * is one. Zero padding keeps whole-region kernel calls exact: 0 - w*(0-0) = 0. */
static ema_status layout_block_alloc(const ema_ctx* ctx, float** block) {
    if (*block != NULL) {
        return EMA_OK;
    }
    float* allocated = ema_arena_alloc(ctx->shadows.byte_size);
    if (allocated == NULL) {
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    memset(allocated, 0, ctx->shadows.byte_size);
    *block = allocated;
    return EMA_OK;
}

ema_status ema_resident_enable(ema_ctx* ctx) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params != NULL && ctx->resident_backup != NULL) {
        return EMA_OK;
    }
    const bool had_params = ctx->params != NULL;
    if (layout_block_alloc(ctx, &ctx->params) != EMA_OK ||
        layout_block_alloc(ctx, &ctx->resident_backup) != EMA_OK) {
        if (!had_params) {
            ema_arena_free(ctx->params);
            ctx->params = NULL;
        }
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    return EMA_OK;
}

ema_status ema_mirror_enable(ema_ctx* ctx) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    return layout_block_alloc(ctx, &ctx->params);
}

int ema_is_resident(const ema_ctx* ctx) {
    return ctx != NULL && ctx->resident_backup != NULL;
}

float* ema_param(ema_ctx* ctx, uint32_t slot) {
    if (ctx == NULL || ctx->params == NULL || slot >= ctx->shadows.count) {
        return NULL;
    }
    return ctx->params + ctx->shadows.offsets[slot];
}

ema_status ema_resident_step_begin_at(ema_ctx* ctx, int64_t step, ema_step_info* info) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params == NULL) {
        return EMA_ERROR_NOT_RESIDENT;
    }
    ema_step_info planned[EMA_MAX_PROFILES];
    ema_status status = plan_next(ctx, step, planned);
    if (status != EMA_OK) {
        return status;
    }
    if (refuse_nonfinite(ctx, planned, NULL, ctx->params, info, &status)) {
        return status;
    }
    commit_step(ctx, planned, info);
    return EMA_OK;
}

size_t ema_resident_floats(const ema_ctx* ctx) {
    return ctx != NULL ? region_copy_floats(&ctx->shadows) : 0;
}

/* The first slot whose floats reach past `at` (region offsets ascend), or
 * the slot count. */
static uint32_t first_slot_ending_after(const ema_ctx* ctx, size_t at) {
    uint32_t low = 0;
    uint32_t high = ctx->shadows.count;
    while (low < high) {
        const uint32_t middle = low + (high - low) / 2;
        if (ctx->shadows.offsets[middle] + ctx->shadows.lengths[middle] > at) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    return low;
}

ema_status ema_resident_apply_range(const ema_ctx* ctx, size_t begin, size_t end) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params == NULL) {
        return EMA_ERROR_NOT_RESIDENT;
    }
    if (begin > end || end > region_copy_floats(&ctx->shadows)) {
        return EMA_ERROR_OUT_OF_RANGE;
    }
    if (!ctx->step_open || begin == end) {
        return EMA_OK; /* a skipped step, or nothing here */
    }
    if (ctx->copy_slots == 0 && ctx->profile_steps[0].action == EMA_ACTION_AVERAGE) {
        /* One kernel call over the range: padding is zero in both
         * (0 - w*(0-0) = 0, and likewise for every rounding). */
        average_into(ctx, end - begin, ctx->params + begin, ctx->shadows.base + begin);
        return EMA_OK;
    }
    for (uint32_t i = first_slot_ending_after(ctx, begin); i < ctx->shadows.count; i++) {
        const size_t start = ctx->shadows.offsets[i];
        if (start >= end) {
            break;
        }
        const size_t from = start > begin ? start : begin;
        const size_t stop = start + ctx->shadows.lengths[i] < end ? start + ctx->shadows.lengths[i] : end;
        apply_to_slot(ctx, i, (uint32_t)(from - start), stop - from, ctx->params + from);
    }
    return EMA_OK;
}

ema_status ema_resident_step_end(ema_ctx* ctx) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params == NULL) {
        return EMA_ERROR_NOT_RESIDENT;
    }
    if (ctx->step_open && ctx->profile_steps[0].overwrite) {
        /* Keras: the model's variables take their averages. */
        memcpy(ctx->params, ctx->shadows.base, ctx->shadows.byte_size);
    }
    ctx->step_open = false;
    return EMA_OK;
}

ema_status ema_update_resident_at(ema_ctx* ctx, int64_t step, ema_step_info* info) {
    const ema_status status = ema_resident_step_begin_at(ctx, step, info);
    if (status != EMA_OK) {
        return status;
    }
    ema_resident_apply_range(ctx, 0, region_copy_floats(&ctx->shadows));
    return ema_resident_step_end(ctx);
}

ema_status ema_update_resident(ema_ctx* ctx, float* decay_used) {
    ema_step_info info;
    const ema_status status = ema_update_resident_at(ctx, EMA_NO_STEP, &info);
    if (status == EMA_OK && decay_used != NULL) {
        *decay_used = (float)info.decay;
    }
    return status;
}

ema_status ema_copy_to_resident(ema_ctx* ctx) {
    return ema_copy_profile_to_resident(ctx, 0);
}

ema_status ema_copy_profile_to_resident(ema_ctx* ctx, uint32_t profile) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params == NULL) {
        return EMA_ERROR_NOT_RESIDENT;
    }
    if (profile >= ctx->profile_count) {
        return EMA_ERROR_INVALID_ARGUMENT;
    }
    memcpy(ctx->params, ctx->shadows.base + profile * region_copy_floats(&ctx->shadows),
           ctx->shadows.byte_size);
    return EMA_OK;
}

ema_status ema_store_resident(ema_ctx* ctx) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->resident_backup == NULL) {
        return EMA_ERROR_NOT_RESIDENT;
    }
    memcpy(ctx->resident_backup, ctx->params, ctx->shadows.byte_size);
    ctx->has_resident_backup = true;
    return EMA_OK;
}

ema_status ema_restore_resident(ema_ctx* ctx) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->resident_backup == NULL) {
        return EMA_ERROR_NOT_RESIDENT;
    }
    if (!ctx->has_resident_backup) {
        return EMA_ERROR_NOTHING_STORED;
    }
    memcpy(ctx->params, ctx->resident_backup, ctx->shadows.byte_size);
    return EMA_OK;
}

/* ------------------------------------------------------------------------ */

ema_status ema_backup_prepare(ema_ctx* ctx, uint32_t count, const uint32_t* lengths) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (count > EMA_MAX_SLOTS) {
        return EMA_ERROR_TOO_MANY_SLOTS;
    }
    if (count != 0 && lengths == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    /* The same shape as the current backup (every withEma after the first):
     * reuse it. Allocating a second region before freeing the first would
     * grow memory for nothing, and in Wasm growing memory is costly. */
    if (ctx->has_backup && ctx->backup.count == count &&
        (count == 0 || memcmp(ctx->backup.lengths, lengths, (size_t)count * sizeof(uint32_t)) == 0)) {
        return EMA_OK;
    }
    ema_region fresh;
    const ema_status status = region_alloc(&fresh, count, lengths, 1);
    if (status != EMA_OK) {
        return status;
    }
    region_free(&ctx->backup);
    ctx->backup = fresh;
    ctx->has_backup = true;
    return EMA_OK;
}

ema_status ema_store(ema_ctx* ctx, uint32_t count, const float* const* arrays,
                     const uint32_t* lengths) {
    if (ctx == NULL || (count != 0 && (arrays == NULL || lengths == NULL))) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (arrays[i] == NULL && lengths[i] != 0) {
            return EMA_ERROR_NULL_ARGUMENT;
        }
    }
    const ema_status status = ema_backup_prepare(ctx, count, lengths);
    if (status != EMA_OK) {
        return status;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (lengths[i] != 0) {
            memcpy(region_array(&ctx->backup, i), arrays[i], (size_t)lengths[i] * sizeof(float));
        }
    }
    return EMA_OK;
}

ema_status ema_restore(const ema_ctx* ctx, uint32_t count, float* const* arrays,
                       const uint32_t* lengths) {
    if (ctx == NULL || (count != 0 && (arrays == NULL || lengths == NULL))) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!ctx->has_backup) {
        return EMA_ERROR_NOTHING_STORED;
    }
    if (count != ctx->backup.count) {
        return EMA_ERROR_LENGTH_MISMATCH;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (lengths[i] != ctx->backup.lengths[i]) {
            return EMA_ERROR_LENGTH_MISMATCH;
        }
        if (arrays[i] == NULL && lengths[i] != 0) {
            return EMA_ERROR_NULL_ARGUMENT;
        }
    }
    for (uint32_t i = 0; i < count; i++) {
        if (lengths[i] != 0) {
            memcpy(arrays[i], region_array(&ctx->backup, i), (size_t)lengths[i] * sizeof(float));
        }
    }
    return EMA_OK;
}

int32_t ema_backup_count(const ema_ctx* ctx) {
    return ctx != NULL && ctx->has_backup ? (int32_t)ctx->backup.count : -1;
}

float* ema_backup(ema_ctx* ctx, uint32_t index) {
    return ctx != NULL ? region_array(&ctx->backup, index) : NULL;
}

uint32_t ema_backup_length(const ema_ctx* ctx, uint32_t index) {
    return ctx != NULL && index < ctx->backup.count ? ctx->backup.lengths[index] : 0;
}

void ema_backup_clear(ema_ctx* ctx) {
    if (ctx != NULL) {
        region_free(&ctx->backup);
        ctx->has_backup = false;
    }
}
