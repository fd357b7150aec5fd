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
#include "kernels/f32-vupdate.h"

typedef struct ema_region {
    float* base;       /* one 64-byte aligned allocation for all arrays */
    size_t byte_size;  /* bytes allocated at base */
    uint32_t count;    /* number of arrays */
    uint32_t* lengths; /* floats in each array */
    size_t* offsets;   /* float offset of each array from base */
} ema_region;

struct ema_ctx {
    float decay;
    int32_t num_updates;
    float step_weight; /* one_minus_decay of the step opened by ema_step_begin */
    bool step_open;

    ema_region shadows;
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

/* Allocates a region of `count` arrays; all or nothing. */
static ema_status region_alloc(ema_region* out, uint32_t count, const uint32_t* lengths) {
    ema_region region = {0};
    region.count = count;
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

    region.lengths = malloc((count ? count : 1) * sizeof(uint32_t));
    region.offsets = malloc((count ? count : 1) * sizeof(size_t));
    region.base = ema_arena_alloc(byte_size);
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

uint32_t ema_region_bytes_per_array(void) {
    return (uint32_t)(sizeof(((ema_region*)0)->lengths[0]) + sizeof(((ema_region*)0)->offsets[0]));
}

/* ------------------------------------------------------------------------ */

ema_status ema_create(ema_ctx** out, float decay, int use_num_updates, uint32_t slot_count,
                      const uint32_t* slot_lengths) {
    if (out == NULL || (slot_count != 0 && slot_lengths == NULL)) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!is_valid_decay(decay)) {
        return EMA_ERROR_INVALID_DECAY;
    }
    if (slot_count > EMA_MAX_SLOTS) {
        return EMA_ERROR_TOO_MANY_SLOTS;
    }

    ema_ctx* ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    ema_status status = region_alloc(&ctx->shadows, slot_count, slot_lengths);
    if (status != EMA_OK) {
        free(ctx);
        return status;
    }
    ctx->staging = ema_arena_alloc(EMA_STAGING_FLOATS * sizeof(float));
    ctx->segments = malloc(EMA_SEGMENT_CAPACITY * sizeof(ema_segment));
    if (ctx->staging == NULL || ctx->segments == NULL) {
        ema_destroy(ctx);
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    memset(ctx->shadows.base, 0, ctx->shadows.byte_size);

    ctx->decay = decay;
    ctx->num_updates = use_num_updates ? 0 : -1;
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
    free(ctx);
}

/* ------------------------------------------------------------------------ */

float ema_decay(const ema_ctx* ctx) {
    return ctx != NULL ? ctx->decay : __builtin_nanf("");
}

ema_status ema_set_decay(ema_ctx* ctx, float decay) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!is_valid_decay(decay)) {
        return EMA_ERROR_INVALID_DECAY;
    }
    ctx->decay = decay;
    return EMA_OK;
}

int32_t ema_num_updates(const ema_ctx* ctx) {
    return ctx != NULL ? ctx->num_updates : INT32_MIN;
}

ema_status ema_set_num_updates(ema_ctx* ctx, int32_t num_updates) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (num_updates < -1) {
        return EMA_ERROR_INVALID_COUNTER;
    }
    if (num_updates > EMA_MAX_NUM_UPDATES) {
        return EMA_ERROR_COUNTER_OVERFLOW;
    }
    ctx->num_updates = num_updates;
    return EMA_OK;
}

ema_status ema_reset_num_updates(ema_ctx* ctx) {
    return ema_set_num_updates(ctx, 0);
}

uint32_t ema_slot_count(const ema_ctx* ctx) {
    return ctx != NULL ? ctx->shadows.count : 0;
}

uint32_t ema_slot_length(const ema_ctx* ctx, uint32_t slot) {
    return ctx != NULL && slot < ctx->shadows.count ? ctx->shadows.lengths[slot] : 0;
}

float* ema_shadow(ema_ctx* ctx, uint32_t slot) {
    return ctx != NULL ? region_array(&ctx->shadows, slot) : NULL;
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
    const size_t resident = ctx->params != NULL ? 2 * ctx->shadows.byte_size : 0;
    return sizeof(*ctx) + metadata + ctx->shadows.byte_size + ctx->backup.byte_size + resident +
           EMA_STAGING_FLOATS * sizeof(float) + EMA_SEGMENT_CAPACITY * sizeof(ema_segment);
}

/* ------------------------------------------------------------------------ */

float ema_warmup_decay(float decay, int32_t num_updates) {
    /* torch: (1 + n) / (10 + n) on int32 tensors is a true division in float32. */
    const float ratio = (float)(1 + (int64_t)num_updates) / (float)(10 + (int64_t)num_updates);
    /* Python's min(decay, ratio) returns decay unless ratio is smaller. */
    return ratio < decay ? ratio : decay;
}

/* Advances the counter and returns the decay of the new step. Call only after
 * checking that the counter can advance. */
static float advance_step(ema_ctx* ctx) {
    float decay = ctx->decay;
    if (ctx->num_updates >= 0) {
        ctx->num_updates += 1;
        decay = ema_warmup_decay(ctx->decay, ctx->num_updates);
    }
    ctx->step_weight = 1.0f - decay;
    ctx->step_open = true;
    return decay;
}

static bool counter_can_advance(const ema_ctx* ctx) {
    return ctx->num_updates < EMA_MAX_NUM_UPDATES;
}

ema_status ema_update(ema_ctx* ctx, const float* const* params, float* decay_used) {
    if (ctx == NULL || (ctx->shadows.count != 0 && params == NULL)) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    for (uint32_t i = 0; i < ctx->shadows.count; i++) {
        if (params[i] == NULL && ctx->shadows.lengths[i] != 0) {
            return EMA_ERROR_NULL_ARGUMENT;
        }
    }
    if (!counter_can_advance(ctx)) {
        return EMA_ERROR_COUNTER_OVERFLOW;
    }

    const float decay = advance_step(ctx);
    for (uint32_t i = 0; i < ctx->shadows.count; i++) {
        ema_f32_vupdate_ukernel_best(ctx->shadows.lengths[i], params[i],
                                     region_array(&ctx->shadows, i), ctx->step_weight);
    }
    /* A whole step is done: a stray ema_step_apply must not apply it again. */
    ctx->step_open = false;
    if (decay_used != NULL) {
        *decay_used = decay;
    }
    return EMA_OK;
}

ema_status ema_step_begin(ema_ctx* ctx, float* decay_used) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (!counter_can_advance(ctx)) {
        return EMA_ERROR_COUNTER_OVERFLOW;
    }
    const float decay = advance_step(ctx);
    if (decay_used != NULL) {
        *decay_used = decay;
    }
    return EMA_OK;
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
static ema_status apply_segments(ema_ctx* ctx, const ema_segment* segments, uint32_t segment_count,
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
        float* shadow = region_array(&ctx->shadows, segment.slot) + segment.offset;
        ema_f32_vupdate_ukernel_best(segment.count, packed, shadow, ctx->step_weight);
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

float* ema_staging(ema_ctx* ctx) {
    return ctx != NULL ? ctx->staging : NULL;
}

ema_segment* ema_segment_table(ema_ctx* ctx) {
    return ctx != NULL ? ctx->segments : NULL;
}

/* ------------------------------------------------------------------------ */

ema_status ema_resident_enable(ema_ctx* ctx) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params != NULL) {
        return EMA_OK;
    }
    float* params = ema_arena_alloc(ctx->shadows.byte_size);
    float* backup = ema_arena_alloc(ctx->shadows.byte_size);
    if (params == NULL || backup == NULL) {
        ema_arena_free(params);
        ema_arena_free(backup);
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    /* Zero padding keeps the whole-region kernel call exact: 0 - w*(0-0) = 0. */
    memset(params, 0, ctx->shadows.byte_size);
    memset(backup, 0, ctx->shadows.byte_size);
    ctx->params = params;
    ctx->resident_backup = backup;
    return EMA_OK;
}

int ema_is_resident(const ema_ctx* ctx) {
    return ctx != NULL && ctx->params != NULL;
}

float* ema_param(ema_ctx* ctx, uint32_t slot) {
    if (ctx == NULL || ctx->params == NULL || slot >= ctx->shadows.count) {
        return NULL;
    }
    return ctx->params + ctx->shadows.offsets[slot];
}

ema_status ema_update_resident(ema_ctx* ctx, float* decay_used) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params == NULL) {
        return EMA_ERROR_NOT_RESIDENT;
    }
    if (!counter_can_advance(ctx)) {
        return EMA_ERROR_COUNTER_OVERFLOW;
    }
    const float decay = advance_step(ctx);
    ema_f32_vupdate_ukernel_best(ctx->shadows.byte_size / sizeof(float), ctx->params,
                                 ctx->shadows.base, ctx->step_weight);
    ctx->step_open = false;
    if (decay_used != NULL) {
        *decay_used = decay;
    }
    return EMA_OK;
}

ema_status ema_copy_to_resident(ema_ctx* ctx) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params == NULL) {
        return EMA_ERROR_NOT_RESIDENT;
    }
    memcpy(ctx->params, ctx->shadows.base, ctx->shadows.byte_size);
    return EMA_OK;
}

ema_status ema_store_resident(ema_ctx* ctx) {
    if (ctx == NULL) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (ctx->params == NULL) {
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
    if (ctx->params == NULL) {
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
    const ema_status status = region_alloc(&fresh, count, lengths);
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
