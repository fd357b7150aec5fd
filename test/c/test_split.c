/*
 * test_split.c - one EMA step split into pieces, as the threads build (and
 * bench/threads.c) splits it, gives the very bits of the whole step.
 *
 * Every case (each recipe and rounding, the power recipe with 1 to 3
 * profiles, some with slots in copy, hold and keep mode, with copies and
 * skips among the steps) runs five contexts side by side on the same
 * parameters, step by step:
 *
 *   whole     ema_update_resident_at                        (the reference)
 *   ranges    ema_resident_step_begin_at, ema_resident_apply_range over
 *             random disjoint ranges in random order, ema_resident_step_end
 *   direct    ema_update_at with the caller's arrays
 *   windows   ema_step_begin_at, then windows of the test's own (each its
 *             own packed buffer and segment table, segments shuffled within
 *             a window, windows applied in shuffled order) through
 *             ema_step_apply_window
 *   mirror    ema_mirror_enable: the caller's arrays copied into the mirror,
 *             then the three resident calls over random ranges
 *
 * After every step each one's step info, counters, every profile's shadows
 * and the parameters (a Keras overwrite writes them) must equal its
 * reference's bit for bit: ranges and direct against whole, windows and
 * mirror against direct. Then the mirror on its own, and the refusals.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ema.h"
#include "ema_stream.h"
#include "test_util.h"

#define SLOTS 10
/* Empty slots, slots shorter than a SIMD vector, and one longer than the
 * staging window, so that windows and ranges cut through every kind. */
static const uint32_t LENGTHS[SLOTS] = {17, 0, 1, 1000, 3, 70001, 0, 64, 33, 2};
/* The slot modes of a case with `slot_modes` set: the long slot averages. */
static const uint32_t MODES[SLOTS] = {EMA_SLOT_AVERAGE, EMA_SLOT_COPY, EMA_SLOT_COPY, EMA_SLOT_COPY,
                                      EMA_SLOT_KEEP,    EMA_SLOT_AVERAGE, EMA_SLOT_HOLD, EMA_SLOT_HOLD,
                                      EMA_SLOT_AVERAGE, EMA_SLOT_KEEP};
#define STEPS 10
#define MAX_RANGES 8
#define MAX_TESTED_PROFILES 3
static const double SIGMA_RELS[MAX_TESTED_PROFILES] = {0.05, 0.10, 0.2};

/* A value in [-4, 4) with a few bits of mantissa noise. */
static float random_value(void) {
    return (float)(int32_t)(next_random() >> 8) * 0x1p-21f - 4.0f;
}

/* ------------------------------------------------------------------------
 * The cases
 * ---------------------------------------------------------------------- */

typedef struct split_case {
    const char* name;
    uint32_t recipe;
    int rounding;               /* an ema_rounding, or -1 for the recipe's own */
    uint32_t profiles;          /* the power recipe: how many widths (SIGMA_RELS) */
    int64_t overwrite_every;    /* Keras */
    int64_t update_after_step;  /* diffusers, timm, ema-pytorch; -1 for the default */
    int64_t update_every;       /* ema-pytorch; 0 for the default */
    int warmup;                 /* -1 for the default */
    int slot_modes;             /* 1: the slots take MODES */
    int step_numbers;           /* 1: the caller passes step numbers (timm's step, the power recipe's samples) */
} split_case;

static const split_case CASES[] = {
    {"LitEma", EMA_RECIPE_LITEMA, -1, 1, 0, -1, 0, -1, 0, 0},
    {"LitEma, slot modes", EMA_RECIPE_LITEMA, -1, 1, 0, -1, 0, -1, 1, 0},
    {"torch_ema", EMA_RECIPE_TORCH_EMA, -1, 1, 0, -1, 0, -1, 0, 0},
    {"timm lerp_, warmup, copies to step 2", EMA_RECIPE_TIMM, -1, 1, 0, 2, 0, 1, 0, 1},
    {"diffusers fused, copies to step 2", EMA_RECIPE_DIFFUSERS, EMA_ROUNDING_FUSED, 1, 0, 2, 0, 1, 0, 0},
    {"diffusers fused, slot modes", EMA_RECIPE_DIFFUSERS, EMA_ROUNDING_FUSED, 1, 0, 2, 0, 1, 1, 0},
    {"Keras, overwrite every 2", EMA_RECIPE_KERAS, -1, 1, 2, -1, 0, -1, 0, 0},
    {"Keras, overwrite every 2, slot modes", EMA_RECIPE_KERAS, -1, 1, 2, -1, 0, -1, 1, 0},
    {"ema-pytorch, copies, skips", EMA_RECIPE_EMA_PYTORCH, -1, 1, 0, 3, 2, -1, 0, 0},
    {"ema-pytorch, copies, skips, slot modes", EMA_RECIPE_EMA_PYTORCH, -1, 1, 0, 3, 2, -1, 1, 0},
    {"debiased", EMA_RECIPE_DEBIASED, -1, 1, 0, -1, 0, -1, 0, 0},
    {"power, 1 profile", EMA_RECIPE_POWER, -1, 1, 0, -1, 0, -1, 0, 1},
    {"power, 2 profiles", EMA_RECIPE_POWER, -1, 2, 0, -1, 0, -1, 0, 1},
    {"power, 2 profiles, slot modes", EMA_RECIPE_POWER, -1, 2, 0, -1, 0, -1, 1, 0},
    {"power, 3 profiles", EMA_RECIPE_POWER, -1, 3, 0, -1, 0, -1, 0, 1},
    {"power, 3 profiles, slot modes", EMA_RECIPE_POWER, -1, 3, 0, -1, 0, -1, 1, 1},
};

/* The case's schedules, one per profile, into out[]. */
static void schedules_of(const split_case* c, ema_schedule* out) {
    ema_schedule s;
    CHECK_STATUS(ema_schedule_defaults(&s, c->recipe), EMA_OK);
    if (c->rounding >= 0) {
        s.rounding = (uint32_t)c->rounding;
    }
    if (c->warmup >= 0) {
        s.warmup = (uint32_t)c->warmup;
    }
    if (c->update_after_step >= 0) {
        s.update_after_step = c->update_after_step;
    }
    if (c->update_every > 0) {
        s.update_every = c->update_every;
    }
    s.overwrite_every = c->overwrite_every;
    for (uint32_t k = 0; k < c->profiles; k++) {
        out[k] = s;
        if (c->recipe == EMA_RECIPE_POWER) {
            out[k].sigma_rel = SIGMA_RELS[k];
        }
    }
}

/* What the caller passes as `step`: timm's step number; for the power
 * recipe a sample count, uneven every third step. */
static int64_t step_of(const split_case* c, int step) {
    if (!c->step_numbers) {
        return EMA_NO_STEP;
    }
    if (c->recipe == EMA_RECIPE_TIMM) {
        return step;
    }
    return step % 3 == 2 ? 3 : EMA_NO_STEP;
}

/* ------------------------------------------------------------------------
 * The five ways of taking a step
 * ---------------------------------------------------------------------- */

enum { WHOLE, RANGES, DIRECT, WINDOWS, MIRROR, WAYS };
static const char* const WAY_NAMES[WAYS] = {"whole (ema_update_resident_at)", "resident ranges",
                                            "direct (ema_update_at)", "windows", "mirror ranges"};
/* What each way is compared with. */
static const int REFERENCE_OF[WAYS] = {WHOLE, WHOLE, WHOLE, DIRECT, DIRECT};

typedef struct way {
    ema_ctx* ctx;
    float* params[SLOTS]; /* what the step reads: the arena's (resident, mirror) or the caller's */
    float* arrays[SLOTS]; /* the caller's own arrays (direct, windows), exactly as long as the slot */
    ema_step_info info;
} way;

/* Cuts [0, floats) at random places (half of them inside a random slot, so
 * that small slots are cut too; some ranges empty) into 1 to MAX_RANGES
 * ranges, and applies them in random order. */
static ema_status apply_random_ranges(ema_ctx* ctx) {
    const size_t floats = ema_resident_floats(ctx);
    const float* base = ema_param(ctx, 0);
    const uint32_t ranges = 1 + next_random() % MAX_RANGES;
    size_t cuts[MAX_RANGES + 1];
    cuts[0] = 0;
    cuts[ranges] = floats;
    for (uint32_t r = 1; r < ranges; r++) {
        if (next_random() % 2 == 0) {
            cuts[r] = next_random() % (floats + 1);
        } else {
            const uint32_t slot = next_random() % SLOTS;
            cuts[r] = (size_t)(ema_param(ctx, slot) - base) + next_random() % (LENGTHS[slot] + 1);
        }
    }
    for (uint32_t r = 2; r < ranges; r++) { /* insertion sort of cuts[1..ranges) */
        const size_t cut = cuts[r];
        uint32_t at = r;
        for (; at > 1 && cuts[at - 1] > cut; at--) {
            cuts[at] = cuts[at - 1];
        }
        cuts[at] = cut;
    }
    uint32_t order[MAX_RANGES];
    for (uint32_t r = 0; r < ranges; r++) {
        order[r] = r;
    }
    for (uint32_t r = ranges; r > 1; r--) {
        const uint32_t pick = next_random() % r;
        const uint32_t swap = order[r - 1];
        order[r - 1] = order[pick];
        order[pick] = swap;
    }
    for (uint32_t r = 0; r < ranges; r++) {
        const ema_status status = ema_resident_apply_range(ctx, cuts[order[r]], cuts[order[r] + 1]);
        if (status != EMA_OK) {
            return status;
        }
    }
    return EMA_OK;
}

/* One window of the test's own: a segment table and the values it names,
 * packed in table order into a buffer exactly `floats` long. */
typedef struct window {
    ema_segment* segments;
    uint32_t count;
    float* packed;
    uint32_t floats;
} window;

typedef struct window_list {
    window* windows;
    uint32_t count, capacity;
} window_list;

static window* window_add(window_list* list, uint32_t segment_capacity) {
    if (list->count == list->capacity) {
        const uint32_t capacity = list->capacity ? 2 * list->capacity : 16;
        window* grown = realloc(list->windows, capacity * sizeof(window));
        if (grown == NULL) {
            return NULL;
        }
        list->windows = grown;
        list->capacity = capacity;
    }
    window* w = &list->windows[list->count++];
    memset(w, 0, sizeof *w);
    w->segments = malloc(segment_capacity * sizeof(ema_segment));
    return w;
}

static void window_list_free(window_list* list) {
    for (uint32_t i = 0; i < list->count; i++) {
        free(list->windows[i].segments);
        free(list->windows[i].packed);
    }
    free(list->windows);
    memset(list, 0, sizeof *list);
}

/* Closes a window: shuffles its segments, then packs their values. */
static int window_pack(window* w, float* const* arrays) {
    for (uint32_t i = w->count; i > 1; i--) {
        const uint32_t pick = next_random() % i;
        const ema_segment swap = w->segments[i - 1];
        w->segments[i - 1] = w->segments[pick];
        w->segments[pick] = swap;
    }
    w->packed = malloc((w->floats ? w->floats : 1) * sizeof(float));
    if (w->packed == NULL) {
        return 0;
    }
    float* at = w->packed;
    for (uint32_t i = 0; i < w->count; i++) {
        const ema_segment s = w->segments[i];
        if (s.count != 0) {
            memcpy(at, arrays[s.slot] + s.offset, (size_t)s.count * sizeof(float));
        }
        at += s.count;
    }
    return 1;
}

/* Every slot cut into windows of random sizes (a few larger than the staging
 * window) and pieces of random lengths, empty slots as zero-count segments;
 * 0 when out of memory. */
static int make_windows(window_list* list, float* const* arrays) {
    const uint32_t max_piece = next_random() % 3 == 0 ? UINT32_MAX : 1 + next_random() % 3000;
    window* w = NULL;
    uint32_t room = 0;
    for (uint32_t slot = 0; slot < SLOTS; slot++) {
        uint32_t offset = 0;
        do {
            if (w == NULL) {
                room = next_random() % 8 == 0 ? EMA_STAGING_FLOATS + 5000 : 64 + next_random() % 5000;
                /* At most one segment per float, and one per empty slot. */
                w = window_add(list, room + SLOTS);
                if (w == NULL || w->segments == NULL) {
                    return 0;
                }
            }
            uint32_t take = LENGTHS[slot] - offset;
            take = take < room - w->floats ? take : room - w->floats;
            take = take < max_piece ? take : max_piece;
            w->segments[w->count++] = (ema_segment){slot, offset, take};
            w->floats += take;
            offset += take;
            if (w->floats == room) {
                if (!window_pack(w, arrays)) {
                    return 0;
                }
                w = NULL;
            }
        } while (offset < LENGTHS[slot]);
    }
    return w == NULL || window_pack(w, arrays);
}

/* Applies the windows in random order; the first status other than EMA_OK. */
static ema_status apply_windows_shuffled(const ema_ctx* ctx, window_list* list) {
    for (uint32_t i = list->count; i > 1; i--) {
        const uint32_t pick = next_random() % i;
        const window swap = list->windows[i - 1];
        list->windows[i - 1] = list->windows[pick];
        list->windows[pick] = swap;
    }
    for (uint32_t i = 0; i < list->count; i++) {
        const window* w = &list->windows[i];
        const ema_status status = ema_step_apply_window(ctx, w->segments, w->count, w->packed, w->floats);
        if (status != EMA_OK) {
            return status;
        }
    }
    return EMA_OK;
}

/* The caller's side of a Keras overwrite: its arrays take the averages. */
static void overwrite_arrays(way* w) {
    if (!w->info.overwrite) {
        return;
    }
    for (uint32_t i = 0; i < SLOTS; i++) {
        if (LENGTHS[i] != 0) {
            memcpy(w->arrays[i], ema_shadow(w->ctx, i), LENGTHS[i] * sizeof(float));
        }
    }
}

/* One step of way `which`; EMA_OK or the first failure. */
static ema_status take_step(way* w, int which, int64_t at) {
    ema_status status = EMA_OK;
    switch (which) {
        case WHOLE:
            return ema_update_resident_at(w->ctx, at, &w->info);
        case RANGES:
        case MIRROR:
            status = ema_resident_step_begin_at(w->ctx, at, &w->info);
            if (status == EMA_OK) {
                status = apply_random_ranges(w->ctx);
            }
            return status == EMA_OK ? ema_resident_step_end(w->ctx) : status;
        case DIRECT:
            status = ema_update_at(w->ctx, (const float* const*)w->arrays, at, &w->info);
            overwrite_arrays(w);
            return status;
        case WINDOWS: {
            status = ema_step_begin_at(w->ctx, at, &w->info);
            if (status != EMA_OK) {
                return status;
            }
            window_list list = {0};
            if (!CHECK(make_windows(&list, w->arrays), "out of memory for the windows")) {
                window_list_free(&list);
                return EMA_ERROR_OUT_OF_MEMORY;
            }
            if (w->info.action == EMA_ACTION_SKIP) {
                /* A skip opens no step: there is nothing to apply. */
                status = ema_step_apply_window(w->ctx, list.windows[0].segments, list.windows[0].count,
                                               list.windows[0].packed, list.windows[0].floats);
                status = status == EMA_ERROR_NO_STEP ? EMA_OK : EMA_ERROR_INVALID_ARGUMENT;
            } else {
                status = apply_windows_shuffled(w->ctx, &list);
            }
            window_list_free(&list);
            overwrite_arrays(w);
            return status;
        }
    }
    return EMA_ERROR_INVALID_ARGUMENT;
}

/* Everything a step can change, bit for bit; 0 after the first difference. */
static int same_state(way* got, way* want, uint32_t profiles, const char* what, const char* label, int step) {
    if (!CHECK(memcmp(&got->info, &want->info, sizeof got->info) == 0, "%s, step %d: %s's step info differs",
               what, step, label)) {
        return 0;
    }
    for (uint32_t k = 0; k < profiles; k++) {
        ema_step_info a, b;
        CHECK_STATUS(ema_profile_step(got->ctx, k, &a), EMA_OK);
        CHECK_STATUS(ema_profile_step(want->ctx, k, &b), EMA_OK);
        if (!CHECK(memcmp(&a, &b, sizeof a) == 0, "%s, step %d: %s's profile %u step differs", what, step,
                   label, k)) {
            return 0;
        }
    }
    if (!CHECK(ema_counter(got->ctx) == ema_counter(want->ctx) && ema_steps(got->ctx) == ema_steps(want->ctx) &&
                   ema_initted(got->ctx) == ema_initted(want->ctx),
               "%s, step %d: %s's counters differ", what, step, label)) {
        return 0;
    }
    for (uint32_t k = 0; k < profiles; k++) {
        for (uint32_t i = 0; i < SLOTS; i++) {
            if (LENGTHS[i] != 0 &&
                !CHECK(memcmp(ema_profile_shadow(got->ctx, k, i), ema_profile_shadow(want->ctx, k, i),
                              LENGTHS[i] * sizeof(float)) == 0,
                       "%s, step %d: %s's profile %u shadow of slot %u differs", what, step, label, k, i)) {
                return 0;
            }
        }
    }
    for (uint32_t i = 0; i < SLOTS; i++) {
        if (LENGTHS[i] != 0 &&
            !CHECK(memcmp(got->params[i], want->params[i], LENGTHS[i] * sizeof(float)) == 0,
                   "%s, step %d: %s's parameter of slot %u differs", what, step, label, i)) {
            return 0;
        }
    }
    return 1;
}

static int open_way(way* w, int which, const split_case* c, const ema_schedule* schedules,
                    float* const* initial) {
    memset(w, 0, sizeof *w);
    if (!CHECK_STATUS(ema_create_profiles(&w->ctx, c->profiles, schedules, SLOTS, LENGTHS), EMA_OK)) {
        return 0;
    }
    if (which == WHOLE || which == RANGES) {
        CHECK_STATUS(ema_resident_enable(w->ctx), EMA_OK);
    } else if (which == MIRROR) {
        CHECK_STATUS(ema_mirror_enable(w->ctx), EMA_OK);
    }
    for (uint32_t i = 0; i < SLOTS; i++) {
        if (c->slot_modes) {
            CHECK_STATUS(ema_set_slot_mode(w->ctx, i, MODES[i]), EMA_OK);
        }
        for (uint32_t k = 0; k < c->profiles && LENGTHS[i] != 0; k++) {
            memcpy(ema_profile_shadow(w->ctx, k, i), initial[i], LENGTHS[i] * sizeof(float));
        }
        w->arrays[i] = malloc((LENGTHS[i] ? LENGTHS[i] : 1) * sizeof(float));
        w->params[i] = which == DIRECT || which == WINDOWS ? w->arrays[i] : ema_param(w->ctx, i);
        if (!CHECK(w->arrays[i] != NULL && w->params[i] != NULL, "%s: no parameter for slot %u", c->name, i)) {
            return 0;
        }
    }
    return 1;
}

static void close_way(way* w) {
    ema_destroy(w->ctx);
    for (uint32_t i = 0; i < SLOTS; i++) {
        free(w->arrays[i]);
    }
}

/* New parameters: averaged slots get values in [-4, 4); the others any bits
 * (integer buffers travel as raw words, and a copy keeps them). */
static void draw_params(const split_case* c, float* const* fresh) {
    for (uint32_t i = 0; i < SLOTS; i++) {
        const int averaged = !c->slot_modes || MODES[i] == EMA_SLOT_AVERAGE;
        for (uint32_t j = 0; j < LENGTHS[i]; j++) {
            fresh[i][j] = averaged ? random_value() : f32_from_bits(next_random());
        }
    }
}

static void test_case(const split_case* c) {
    ema_schedule schedules[MAX_TESTED_PROFILES];
    schedules_of(c, schedules);
    float* fresh[SLOTS];
    for (uint32_t i = 0; i < SLOTS; i++) {
        fresh[i] = malloc((LENGTHS[i] ? LENGTHS[i] : 1) * sizeof(float));
    }
    draw_params(c, fresh);
    way ways[WAYS];
    int opened = 0;
    for (; opened < WAYS; opened++) {
        if (!open_way(&ways[opened], opened, c, schedules, fresh)) {
            opened++;
            break;
        }
    }
    int copies = 0, averages = 0, skips = 0, overwrites = 0;
    for (int step = 0; opened == WAYS && step < STEPS; step++) {
        draw_params(c, fresh);
        int ok = 1;
        for (int which = 0; which < WAYS; which++) {
            for (uint32_t i = 0; i < SLOTS; i++) {
                if (LENGTHS[i] != 0) {
                    memcpy(ways[which].params[i], fresh[i], LENGTHS[i] * sizeof(float));
                }
            }
            ok &= CHECK(take_step(&ways[which], which, step_of(c, step)) == EMA_OK, "%s, step %d: %s failed",
                        c->name, step, WAY_NAMES[which]);
        }
        for (int which = 1; ok && which < WAYS; which++) {
            ok &= same_state(&ways[which], &ways[REFERENCE_OF[which]], c->profiles, c->name, WAY_NAMES[which], step);
        }
        if (!ok) {
            break;
        }
        const ema_step_info* info = &ways[WHOLE].info;
        /* diffusers and timm copy by averaging with weight 1, as they do. */
        copies += info->action == EMA_ACTION_COPY || (info->action == EMA_ACTION_AVERAGE && info->weight == 1.0f);
        averages += info->action == EMA_ACTION_AVERAGE && info->weight < 1.0f;
        skips += info->action == EMA_ACTION_SKIP;
        overwrites += (int)info->overwrite;
    }
    /* The cases reach what they are meant to: copies, skips, overwrites. */
    if (c->update_after_step > 0) {
        CHECK(copies > 0 && averages > 0, "%s: %d copies and %d averages", c->name, copies, averages);
    }
    if (c->recipe == EMA_RECIPE_EMA_PYTORCH) {
        CHECK(skips > 0, "%s: skips", c->name);
    }
    if (c->overwrite_every > 0) {
        CHECK(overwrites >= 2, "%s: %d overwrites", c->name, overwrites);
    }
    for (int which = 0; which < opened; which++) {
        close_way(&ways[which]);
    }
    for (uint32_t i = 0; i < SLOTS; i++) {
        free(fresh[i]);
    }
}

/* ------------------------------------------------------------------------
 * The mirror
 * ---------------------------------------------------------------------- */

static void test_mirror(void) {
    ema_ctx* ctx = NULL;
    if (!CHECK_STATUS(ema_create(&ctx, 0.9f, 1, SLOTS, LENGTHS), EMA_OK)) {
        return;
    }
    const size_t before = ema_byte_length(ctx);
    const size_t layout_bytes = ema_resident_floats(ctx) * sizeof(float);
    CHECK(ema_param(ctx, 0) == NULL && !ema_is_resident(ctx), "no parameter region yet");
    CHECK_STATUS(ema_mirror_enable(ctx), EMA_OK);
    float* const mirror = ema_param(ctx, 0);
    CHECK(mirror != NULL && ((uintptr_t)mirror & 63u) == 0, "the mirror is 64-byte aligned");
    CHECK(!ema_is_resident(ctx), "a mirror alone is not resident");
    CHECK(ema_byte_length(ctx) == before + layout_bytes, "the mirror is one region: %zu bytes more",
          ema_byte_length(ctx) - before);
    CHECK_STATUS(ema_store_resident(ctx), EMA_ERROR_NOT_RESIDENT);
    CHECK_STATUS(ema_restore_resident(ctx), EMA_ERROR_NOT_RESIDENT);
    CHECK_STATUS(ema_mirror_enable(ctx), EMA_OK);
    CHECK(ema_param(ctx, 0) == mirror && ema_byte_length(ctx) == before + layout_bytes,
          "a second ema_mirror_enable does nothing");

    /* A step from the mirror is ema_update_at on the same values. */
    ema_ctx* direct = NULL;
    if (!CHECK_STATUS(ema_create(&direct, 0.9f, 1, SLOTS, LENGTHS), EMA_OK)) {
        ema_destroy(ctx);
        return;
    }
    const float* params[SLOTS];
    for (uint32_t i = 0; i < SLOTS; i++) {
        for (uint32_t j = 0; j < LENGTHS[i]; j++) {
            ema_param(ctx, i)[j] = random_value();
        }
        params[i] = ema_param(ctx, i);
    }
    ema_step_info a, b;
    CHECK_STATUS(ema_update_at(direct, params, EMA_NO_STEP, &a), EMA_OK);
    CHECK_STATUS(ema_resident_step_begin_at(ctx, EMA_NO_STEP, &b), EMA_OK);
    CHECK_STATUS(ema_resident_apply_range(ctx, 0, ema_resident_floats(ctx)), EMA_OK);
    CHECK_STATUS(ema_resident_step_end(ctx), EMA_OK);
    CHECK(memcmp(&a, &b, sizeof a) == 0, "mirror: the same step info");
    for (uint32_t i = 0; i < SLOTS; i++) {
        CHECK(LENGTHS[i] == 0 ||
                  memcmp(ema_shadow(ctx, i), ema_shadow(direct, i), LENGTHS[i] * sizeof(float)) == 0,
              "mirror: slot %u as ema_update_at", i);
    }

    /* Resident after all: the mirror becomes the parameters, as it was. */
    const float kept = ema_param(ctx, 5)[70000];
    CHECK_STATUS(ema_resident_enable(ctx), EMA_OK);
    CHECK(ema_is_resident(ctx) && ema_param(ctx, 0) == mirror && ema_param(ctx, 5)[70000] == kept,
          "ema_resident_enable keeps the mirror as the parameters");
    CHECK(ema_byte_length(ctx) == before + 2 * layout_bytes, "and adds the backup");
    CHECK_STATUS(ema_store_resident(ctx), EMA_OK);
    CHECK_STATUS(ema_restore_resident(ctx), EMA_OK);
    CHECK_STATUS(ema_mirror_enable(ctx), EMA_OK);
    CHECK(ema_is_resident(ctx) && ema_param(ctx, 0) == mirror && ema_byte_length(ctx) == before + 2 * layout_bytes,
          "ema_mirror_enable on a resident context does nothing");
    ema_destroy(direct);
    ema_destroy(ctx);
}

/* ------------------------------------------------------------------------
 * Refusals
 * ---------------------------------------------------------------------- */

/* Everything a step changes: shadows of every profile, the parameter region
 * (when there is one), the counters. */
typedef struct snapshot {
    float* shadows;
    float* params;
    size_t floats;
    uint32_t profiles;
    int64_t counter, steps;
    int initted;
} snapshot;

static snapshot take_snapshot(ema_ctx* ctx) {
    snapshot s = {0};
    s.floats = ema_resident_floats(ctx);
    s.profiles = ema_profile_count(ctx);
    s.shadows = malloc((s.floats * s.profiles + 1) * sizeof(float));
    if (s.shadows != NULL && s.floats != 0) {
        memcpy(s.shadows, ema_profile_shadow(ctx, 0, 0), s.floats * s.profiles * sizeof(float));
    }
    if (ema_param(ctx, 0) != NULL) {
        s.params = malloc((s.floats + 1) * sizeof(float));
        if (s.params != NULL) {
            memcpy(s.params, ema_param(ctx, 0), s.floats * sizeof(float));
        }
    }
    s.counter = ema_counter(ctx);
    s.steps = ema_steps(ctx);
    s.initted = ema_initted(ctx);
    return s;
}

static int unchanged(ema_ctx* ctx, snapshot* s) {
    const int same = s->shadows != NULL && ema_counter(ctx) == s->counter && ema_steps(ctx) == s->steps &&
                     ema_initted(ctx) == s->initted &&
                     memcmp(s->shadows, ema_profile_shadow(ctx, 0, 0), s->floats * s->profiles * sizeof(float)) == 0 &&
                     (ema_param(ctx, 0) == NULL ||
                      (s->params != NULL && memcmp(s->params, ema_param(ctx, 0), s->floats * sizeof(float)) == 0));
    free(s->shadows);
    free(s->params);
    return same;
}

/* CHECK_FAILS(ctx, call, status): `call` returns `status` and leaves ctx as it was. */
#define CHECK_FAILS(ctx, call, status)                                    \
    do {                                                                  \
        snapshot before_ = take_snapshot(ctx);                            \
        CHECK_STATUS(call, status);                                       \
        CHECK(unchanged(ctx, &before_), "%s changed the context", #call); \
    } while (0)

static void fill_slots(ema_ctx* ctx, float* (*array_of)(ema_ctx*, uint32_t), uint32_t count, const uint32_t* lengths) {
    for (uint32_t i = 0; i < count; i++) {
        float* values = array_of(ctx, i);
        for (uint32_t j = 0; j < lengths[i]; j++) {
            values[j] = random_value();
        }
    }
}

static void test_range_refusals(void) {
    CHECK_STATUS(ema_resident_step_begin_at(NULL, EMA_NO_STEP, NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_resident_apply_range(NULL, 0, 0), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_resident_step_end(NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_mirror_enable(NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK(ema_resident_floats(NULL) == 0, "no floats for NULL");

    const uint32_t lengths[4] = {17, 0, 1000, 3};
    ema_ctx* ctx = NULL;
    ema_ctx* whole = NULL;
    CHECK_STATUS(ema_create(&ctx, 0.9f, 1, 4, lengths), EMA_OK);
    CHECK_STATUS(ema_create(&whole, 0.9f, 1, 4, lengths), EMA_OK);
    if (ctx == NULL || whole == NULL) {
        ema_destroy(ctx);
        ema_destroy(whole);
        return;
    }
    fill_slots(ctx, ema_shadow, 4, lengths);
    const size_t floats = ema_resident_floats(ctx);
    CHECK(floats % 16 == 0 && floats >= 17 + 1000 + 3, "the layout: %zu floats, whole 64-byte blocks", floats);

    /* Not resident. */
    CHECK_FAILS(ctx, ema_resident_step_begin_at(ctx, EMA_NO_STEP, NULL), EMA_ERROR_NOT_RESIDENT);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, 0, floats), EMA_ERROR_NOT_RESIDENT);
    CHECK_FAILS(ctx, ema_resident_step_end(ctx), EMA_ERROR_NOT_RESIDENT);

    CHECK_STATUS(ema_resident_enable(ctx), EMA_OK);
    CHECK_STATUS(ema_resident_enable(whole), EMA_OK);
    for (uint32_t i = 0; i < 4; i++) {
        CHECK(ema_param(ctx, i) + lengths[i] <= ema_param(ctx, 0) + floats, "slot %u lies in the region", i);
        if (lengths[i] != 0) {
            memcpy(ema_shadow(whole, i), ema_shadow(ctx, i), lengths[i] * sizeof(float));
        }
    }
    fill_slots(ctx, ema_param, 4, lengths);
    for (uint32_t i = 0; i < 4; i++) {
        if (lengths[i] != 0) {
            memcpy(ema_param(whole, i), ema_param(ctx, i), lengths[i] * sizeof(float));
        }
    }

    /* Before any step a range does nothing (no step is open). */
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, 0, floats), EMA_OK);

    CHECK_STATUS(ema_resident_step_begin_at(ctx, EMA_NO_STEP, NULL), EMA_OK);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, 5, 4), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, floats, 0), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, 0, floats + 1), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, floats, floats + 1), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, floats + 1, floats + 1), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, 0, SIZE_MAX), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, SIZE_MAX, SIZE_MAX), EMA_ERROR_OUT_OF_RANGE);
    /* Empty ranges are fine and do nothing. */
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, 3, 3), EMA_OK);
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, floats, floats), EMA_OK);

    /* After the refusals the whole step still equals the one-call step. */
    CHECK_STATUS(ema_resident_apply_range(ctx, 500, floats), EMA_OK);
    CHECK_STATUS(ema_resident_apply_range(ctx, 0, 500), EMA_OK);
    CHECK_STATUS(ema_resident_step_end(ctx), EMA_OK);
    CHECK_STATUS(ema_update_resident_at(whole, EMA_NO_STEP, NULL), EMA_OK);
    for (uint32_t i = 0; i < 4; i++) {
        CHECK(lengths[i] == 0 || memcmp(ema_shadow(ctx, i), ema_shadow(whole, i), lengths[i] * sizeof(float)) == 0,
              "slot %u after the refused ranges equals ema_update_resident_at", i);
    }
    /* A closed step is not applied again, and closing it again does nothing. */
    CHECK_FAILS(ctx, ema_resident_apply_range(ctx, 0, floats), EMA_OK);
    CHECK_FAILS(ctx, ema_resident_step_end(ctx), EMA_OK);
    ema_destroy(whole);
    ema_destroy(ctx);
}

/* ema-pytorch steps until one skips; 1 when one did. */
static int begin_skipping_step(ema_ctx* ctx, int resident) {
    for (int tries = 0; tries < 20; tries++) {
        ema_step_info info;
        const ema_status status = resident ? ema_resident_step_begin_at(ctx, EMA_NO_STEP, &info)
                                           : ema_step_begin_at(ctx, EMA_NO_STEP, &info);
        if (status != EMA_OK) {
            return 0;
        }
        if (info.action == EMA_ACTION_SKIP) {
            return 1;
        }
        if (resident) {
            CHECK_STATUS(ema_resident_step_end(ctx), EMA_OK);
        }
    }
    return 0;
}

static void test_skipped_step(void) {
    ema_schedule s;
    CHECK_STATUS(ema_schedule_defaults(&s, EMA_RECIPE_EMA_PYTORCH), EMA_OK);
    s.update_after_step = 0;
    s.update_every = 3;
    const uint32_t lengths[2] = {5, 40};
    for (int resident = 0; resident <= 1; resident++) {
        ema_ctx* ctx = NULL;
        if (!CHECK_STATUS(ema_create_scheduled(&ctx, &s, 2, lengths), EMA_OK)) {
            return;
        }
        float packed[45];
        for (int i = 0; i < 45; i++) {
            packed[i] = random_value();
        }
        const ema_segment segments[2] = {{0, 0, 5}, {1, 0, 40}};
        if (resident) {
            CHECK_STATUS(ema_resident_enable(ctx), EMA_OK);
            fill_slots(ctx, ema_param, 2, lengths);
        }
        if (CHECK(begin_skipping_step(ctx, resident), "ema-pytorch: a skipping step")) {
            if (resident) {
                CHECK_FAILS(ctx, ema_resident_apply_range(ctx, 0, ema_resident_floats(ctx)), EMA_OK);
                CHECK_FAILS(ctx, ema_resident_step_end(ctx), EMA_OK);
            } else {
                CHECK_FAILS(ctx, ema_step_apply_window(ctx, segments, 2, packed, 45), EMA_ERROR_NO_STEP);
            }
        }
        ema_destroy(ctx);
    }
}

static void test_window_refusals(void) {
    const uint32_t lengths[4] = {10, 70000, 0, 4};
    ema_ctx* ctx = NULL;
    if (!CHECK_STATUS(ema_create(&ctx, 0.5f, 1, 4, lengths), EMA_OK)) {
        return;
    }
    fill_slots(ctx, ema_shadow, 4, lengths);
    float* packed = malloc(70010 * sizeof(float));
    ema_segment* many = malloc((EMA_SEGMENT_CAPACITY + 100) * sizeof(ema_segment));
    if (!CHECK(packed != NULL && many != NULL, "out of memory")) {
        free(packed);
        free(many);
        ema_destroy(ctx);
        return;
    }
    for (uint32_t i = 0; i < 70010; i++) {
        packed[i] = random_value();
    }
    const ema_segment one = {0, 0, 4};

    CHECK_STATUS(ema_step_apply_window(NULL, &one, 1, packed, 4), EMA_ERROR_NULL_ARGUMENT);
    /* No step open: before any, after a whole update, after a failed begin. */
    CHECK_FAILS(ctx, ema_step_apply_window(ctx, &one, 1, packed, 4), EMA_ERROR_NO_STEP);
    CHECK_FAILS(ctx, ema_step_apply_window(ctx, NULL, 0, NULL, 0), EMA_ERROR_NO_STEP);
    const float* params[4] = {packed, packed, NULL, packed};
    CHECK_STATUS(ema_step_begin_at(ctx, EMA_NO_STEP, NULL), EMA_OK);
    CHECK_STATUS(ema_update_at(ctx, params, EMA_NO_STEP, NULL), EMA_OK);
    CHECK_FAILS(ctx, ema_step_apply_window(ctx, &one, 1, packed, 4), EMA_ERROR_NO_STEP);
    const int64_t counter = ema_counter(ctx);
    CHECK_STATUS(ema_set_counter(ctx, EMA_MAX_NUM_UPDATES), EMA_OK);
    CHECK_STATUS(ema_step_begin_at(ctx, EMA_NO_STEP, NULL), EMA_ERROR_COUNTER_OVERFLOW);
    CHECK_FAILS(ctx, ema_step_apply_window(ctx, &one, 1, packed, 4), EMA_ERROR_NO_STEP);
    CHECK_STATUS(ema_set_counter(ctx, counter), EMA_OK);

    CHECK_STATUS(ema_step_begin_at(ctx, EMA_NO_STEP, NULL), EMA_OK);
    CHECK_FAILS(ctx, ema_step_apply_window(ctx, NULL, 1, packed, 4), EMA_ERROR_NULL_ARGUMENT);
    CHECK_FAILS(ctx, ema_step_apply_window(ctx, &one, 1, NULL, 4), EMA_ERROR_NULL_ARGUMENT);

    /* A good first segment and a bad later one: no shadow may change. */
    static const struct {
        ema_segment segments[3];
        uint32_t count;
        uint32_t packed_floats;
        ema_status status;
    } kBad[] = {
        {{{0, 0, 4}, {3, 0, 4}, {4, 0, 1}}, 3, 9, EMA_ERROR_SLOT_INDEX},
        {{{0, 0, 4}, {UINT32_MAX, 0, 0}}, 2, 4, EMA_ERROR_SLOT_INDEX},
        {{{0, 0, 4}, {3, 0, 4}, {0, 6, 5}}, 3, 13, EMA_ERROR_OUT_OF_RANGE},
        {{{3, 0, 2}, {0, 11, 0}}, 2, 2, EMA_ERROR_OUT_OF_RANGE},
        {{{3, 0, 2}, {0, 1, UINT32_MAX}}, 2, 70010, EMA_ERROR_OUT_OF_RANGE},
        {{{3, 0, 2}, {0, UINT32_MAX, 2}}, 2, 4, EMA_ERROR_OUT_OF_RANGE},
        {{{3, 0, 2}, {2, 0, 1}}, 2, 3, EMA_ERROR_OUT_OF_RANGE},
        /* The counts add up to one float more than the window holds. */
        {{{0, 0, 10}, {3, 0, 4}}, 2, 13, EMA_ERROR_SEGMENT_OVERFLOW},
        {{{0, 0, 1}}, 1, 0, EMA_ERROR_SEGMENT_OVERFLOW},
        {{{0, 0, 10}, {1, 0, 70000}}, 2, 70009, EMA_ERROR_SEGMENT_OVERFLOW},
        {{{1, 0, 70000}, {1, 0, 70000}, {1, 0, 70000}}, 3, 70010, EMA_ERROR_SEGMENT_OVERFLOW},
    };
    for (size_t b = 0; b < COUNT_OF(kBad); b++) {
        CHECK_FAILS(ctx, ema_step_apply_window(ctx, kBad[b].segments, kBad[b].count, packed, kBad[b].packed_floats),
                    kBad[b].status);
    }
    /* A bad slot is still reported as such, or as the overflow, with nothing changed. */
    {
        const ema_segment both[3] = {{0, 0, 10}, {1, 0, 70000}, {9, 0, 1}};
        snapshot before = take_snapshot(ctx);
        const ema_status status = ema_step_apply_window(ctx, both, 3, packed, 100);
        CHECK(status == EMA_ERROR_SLOT_INDEX || status == EMA_ERROR_SEGMENT_OVERFLOW,
              "window: bad slot plus overflow: got %d", (int)status);
        CHECK(unchanged(ctx, &before), "window: bad slot plus overflow changed nothing");
    }

    /* Zero segments are a no-op; a window exactly full is fine, and neither
     * the staging window's size nor the table's capacity bounds a window of
     * the caller's. */
    CHECK_FAILS(ctx, ema_step_apply_window(ctx, NULL, 0, NULL, 0), EMA_OK);
    const ema_segment exact[2] = {{0, 0, 10}, {3, 0, 4}};
    CHECK_STATUS(ema_step_apply_window(ctx, exact, 2, packed, 14), EMA_OK);
    const ema_segment large[2] = {{0, 0, 10}, {1, 0, 70000}};
    CHECK_STATUS(ema_step_apply_window(ctx, large, 2, packed, 70010), EMA_OK);
    for (uint32_t i = 0; i < EMA_SEGMENT_CAPACITY + 100; i++) {
        many[i] = (ema_segment){1, i, 1};
    }
    CHECK_STATUS(ema_step_apply_window(ctx, many, EMA_SEGMENT_CAPACITY + 100, packed, 70010), EMA_OK);

    /* The values come from `packed` in table order. */
    ema_ctx* whole = NULL;
    if (CHECK_STATUS(ema_create(&whole, 0.5f, 1, 4, lengths), EMA_OK)) {
        for (uint32_t i = 0; i < 4; i++) {
            CHECK_STATUS(ema_shadow_set(whole, i, 0, ema_shadow(ctx, i), lengths[i]), EMA_OK);
        }
        CHECK_STATUS(ema_set_counter(whole, ema_counter(ctx) - 1), EMA_OK);
        const float reversed[4] = {packed[3], packed[2], packed[1], packed[0]};
        const float* reversed_params[4] = {ema_shadow(ctx, 0), ema_shadow(ctx, 1), NULL, reversed};
        CHECK_STATUS(ema_update_at(whole, reversed_params, EMA_NO_STEP, NULL), EMA_OK);
        const ema_segment backwards[4] = {{3, 3, 1}, {3, 2, 1}, {3, 1, 1}, {3, 0, 1}};
        CHECK_STATUS(ema_step_apply_window(ctx, backwards, 4, packed, 4), EMA_OK);
        CHECK(memcmp(ema_shadow(ctx, 3), ema_shadow(whole, 3), 4 * sizeof(float)) == 0,
              "window: four one-float pieces in reverse");
        ema_destroy(whole);
    }
    free(packed);
    free(many);
    ema_destroy(ctx);
}

int main(void) {
    check_begin("test_split");
    seed_random(0x5eed5011u);
    for (size_t c = 0; c < COUNT_OF(CASES); c++) {
        test_case(&CASES[c]);
    }
    test_mirror();
    test_range_refusals();
    test_skipped_step();
    test_window_refusals();
    return check_end();
}
