/*
 * ema_stream.h - the streaming ABI between the C core and its JavaScript
 * wrapper.
 *
 *     INTERNAL AND UNSTABLE. Only js/ (through the WebAssembly exports) and the
 *     tests use this header. Names, numbers and semantics may change in any
 *     release, patch releases included. Native callers want ema.h.
 *
 * ===========================================================================
 *  Why streaming
 * ===========================================================================
 * JavaScript cannot hand the core pointers to its own arrays: every parameter
 * must be copied into linear memory first. Copying a whole model at once would
 * double its memory, so the wrapper streams instead: it opens a step
 * (ema_step_begin, which advances the counter and fixes the step's decay),
 * packs pieces of one or more parameters one after the other into the
 * context's staging window, describes them in the context's segment table,
 * and applies them (ema_step_apply_staged), once per filled window. The window
 * (EMA_STAGING_FLOATS floats, 256 KiB) stays in L2 between the copy and the
 * kernel. Applying a piece twice, or leaving one out, is the caller's mistake:
 * the core cannot tell a partial step from a deliberate one.
 *
 * ===========================================================================
 *  Shared constants
 * ===========================================================================
 * Every number that JS and C must agree on has one source, here or in ema.h,
 * ema_safetensors.h and ema_status.h, and is readable from the module with
 * ema_abi_value(). JS reads them when it instantiates a module rather than
 * copying them; test/js/c-abi.test.js checks every copy left in js/.
 */
#ifndef EMA_STREAM_H
#define EMA_STREAM_H

#include <stdint.h>

#include "ema.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Floats in the staging window: 64K floats = 256 KiB, which fits in L2. */
#define EMA_STAGING_FLOATS 65536u
/* Entries in the segment table that describes a filled staging window. */
#define EMA_SEGMENT_CAPACITY 4096u

/* One piece of one slot's parameter, packed into the staging window: three
 * uint32 words, no padding (EMA_ABI_SEGMENT_WORDS). */
typedef struct ema_segment {
    uint32_t slot;   /* which slot */
    uint32_t offset; /* first element of the slot covered by this piece */
    uint32_t count;  /* number of elements in this piece */
} ema_segment;

/* ===========================================================================
 *  Step
 * ======================================================================== */

/* Native only (JS uses ema_step_begin_at). Opens a LitEma-style streaming step: advances the counter and fixes the step's decay
 * (stored in *decay_used when not NULL). The step stays open until the next
 * ema_step_begin(), ema_update() or ema_update_resident(). Returns
 * EMA_ERROR_COUNTER_OVERFLOW once num_updates is at EMA_MAX_NUM_UPDATES (no
 * step is then open). */
ema_status ema_step_begin(ema_ctx* ctx, float* decay_used);

/* The same for any recipe: `step` is timm's step or EMA_NO_STEP, and `info`
 * (when not NULL) receives the plan. A step whose action is EMA_ACTION_SKIP
 * advances the counter and opens nothing: there is nothing to stream. The
 * non-finite check is the caller's (it sees the values before streaming). */
ema_status ema_step_begin_at(ema_ctx* ctx, int64_t step, ema_step_info* info);

/* Applies the open step to the first `segment_count` entries of the
 * context's segment table, whose values lie packed, one after the other, from
 * the start of its staging window. Every segment is checked before any shadow
 * changes: EMA_ERROR_SLOT_INDEX for a slot past the last, EMA_ERROR_OUT_OF_RANGE
 * when offset + count passes the slot's end, EMA_ERROR_SEGMENT_OVERFLOW when
 * `segment_count` exceeds EMA_SEGMENT_CAPACITY or the counts add up to more
 * than EMA_STAGING_FLOATS. EMA_ERROR_NO_STEP when no step is open. On success
 * the shadows are bit-identical to what ema_update() gives for the same
 * values. */
ema_status ema_step_apply_staged(ema_ctx* ctx, uint32_t segment_count);

/* Native only (not exported to Wasm). The same with segments and packed
 * values anywhere: in caller memory (whose extent the core cannot check), or
 * in the context's table and window, which they must then not overrun
 * (EMA_ERROR_SEGMENT_OVERFLOW). */
ema_status ema_step_apply(ema_ctx* ctx, const ema_segment* segments,
                          uint32_t segment_count, const float* packed);

/* Applies the open step to `segment_count` segments whose values lie
 * packed from `packed` (at most `packed_floats` of them), both anywhere in
 * linear memory: the threads build stages several windows at once, each
 * with its own table. Checked as ema_step_apply_staged() checks, with
 * `packed_floats` as the window's size. It reads the context and writes
 * only the shadow elements its segments name, so calls whose segments do
 * not overlap may run on several threads at the same time. */
ema_status ema_step_apply_window(const ema_ctx* ctx, const ema_segment* segments,
                                 uint32_t segment_count, const float* packed,
                                 uint32_t packed_floats);

/* The ema_action the next step would take (with timm's `step`, or
 * EMA_NO_STEP), without taking it; -1 for a NULL context or when the counter
 * cannot advance. The JS wrapper asks before a guarded step: a step that
 * skips reads no parameter, so it is not checked. */
int32_t ema_next_action(const ema_ctx* ctx, int64_t step);

/* 1 when the first `count` floats of the staging window are all finite, 0
 * when one is NaN or infinite, -1 for a NULL context or a count past the
 * window. The JS wrapper streams the averaged parameters through the window
 * once with this before a guarded step (options.nonFinite), so that the step
 * is refused before any shadow changes. */
int ema_staging_finite(const ema_ctx* ctx, uint32_t count);

/* The staging window (EMA_STAGING_FLOATS floats, 64-byte aligned) and the
 * segment table (EMA_SEGMENT_CAPACITY entries), context-owned, fixed for the
 * context's life (they never move); NULL for a NULL context. */
float* ema_staging(ema_ctx* ctx);
ema_segment* ema_segment_table(ema_ctx* ctx);

/* ===========================================================================
 *  ABI values
 * ======================================================================== */

/* What ema_abi_value() can be asked. The numbers are pinned like status
 * codes: a value never changes meaning and new ones are only appended. */
typedef enum ema_abi {
    EMA_ABI_STAGING_FLOATS = 1,         /* EMA_STAGING_FLOATS */
    EMA_ABI_SEGMENT_CAPACITY = 2,       /* EMA_SEGMENT_CAPACITY */
    EMA_ABI_SEGMENT_WORDS = 3,          /* uint32 words per ema_segment (3) */
    EMA_ABI_MAX_SLOTS = 4,              /* EMA_MAX_SLOTS */
    EMA_ABI_ALIGNMENT = 5,              /* bytes every arena block is aligned and padded to */
    EMA_ABI_MAX_RANK = 6,               /* EMA_ST_MAX_RANK */
    EMA_ABI_MAX_NUM_UPDATES = 7,        /* EMA_MAX_NUM_UPDATES */
    EMA_ABI_ST_MAX_HEADER_BYTES = 8,    /* EMA_ST_MAX_HEADER_BYTES */
    EMA_ABI_ST_DTYPE_LIMIT = 9,         /* one past the largest ema_st_dtype */
    EMA_ABI_REGION_BYTES_PER_ARRAY = 10, /* bookkeeping per array of a region: length + offset */
    EMA_ABI_ST_TENSOR_BYTES = 11,       /* parser memory per tensor entry (its table row) */
    EMA_ABI_INITIAL_MEMORY_BYTES = 12,  /* the module's initial memory (0 natively) */
    EMA_ABI_SCHEDULE_BYTES = 13,        /* sizeof(ema_schedule) (include/ema.h), which JS writes */
    EMA_ABI_STEP_INFO_BYTES = 14,       /* sizeof(ema_step_info), which JS reads */
    EMA_ABI_MAX_PROFILES = 15,          /* EMA_MAX_PROFILES */
    EMA_ABI_MAX_POSTHOC_SNAPSHOTS = 16  /* EMA_MAX_POSTHOC_SNAPSHOTS (include/ema_posthoc.h) */
} ema_abi;

/* The value `which` names, or 0 for an unknown id. Pure; exported so that JS
 * reads these once per module instead of keeping copies. */
uint32_t ema_abi_value(uint32_t which);

#ifdef __cplusplus
}
#endif

#endif /* EMA_STREAM_H */
