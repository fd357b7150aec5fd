/*
 * ema.h - exponential moving average of model weights, LitEma-exact in float32.
 *
 * This is the one public header of the ema-wasm C core. It is also its manual.
 *
 * ===========================================================================
 *  Overview
 * ===========================================================================
 * An `ema_ctx` owns an arena of float32 "shadow" slots, one per trainable
 * parameter tensor, and keeps LitEma's state: the base decay (float32) and the
 * update counter (int32, -1 when warmup is off). One EMA step is
 *
 *     if (num_updates >= 0) {
 *         num_updates += 1;
 *         decay = min(decay, (float)(1 + num_updates) / (float)(10 + num_updates));
 *     }
 *     one_minus_decay = 1.0f - decay;
 *     shadow[i] = shadow[i] - one_minus_decay * (shadow[i] - param[i]);
 *
 * with every operation rounded to float32 separately (no fused multiply-add),
 * which is exactly what PyTorch computes for LitEma.forward().
 *
 * Parameters can reach the core in two ways:
 *   - directly, as pointers to float arrays (ema_update), for native callers;
 *   - streamed through the context's staging window: the caller packs pieces of
 *     one or more parameters into the window, describes them in the segment
 *     table, and applies them (ema_step_begin, then ema_step_apply once per
 *     filled window). A whole-model update then needs no second full-size copy
 *     of the model, and the window (EMA_STAGING_FLOATS floats) stays in L2.
 *     This is how the WebAssembly build is driven from JavaScript.
 *
 * A backup region holds copies of arbitrary arrays for store/restore (LitEma's
 * store() and restore(), used to evaluate with EMA weights and then put the
 * training weights back).
 *
 * ===========================================================================
 *  Errors and ownership
 * ===========================================================================
 * Every function that can fail returns an `ema_status`; EMA_OK is 0.
 * Functions check all their arguments before they change anything, so a call
 * that fails leaves the context exactly as it was. Nothing aborts on bad input.
 * ema_status_string() names a status. Memory handed in stays the caller's;
 * memory reached through accessors (ema_shadow, ema_staging, ...) belongs to
 * the context and lives until ema_destroy() or, for backups, the next
 * ema_backup_prepare().
 *
 * Alignment: every shadow slot, backup buffer and the staging window start on
 * a 64-byte boundary.
 */
#ifndef EMA_H
#define EMA_H

#include <stddef.h>
#include <stdint.h>

#include "ema_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Floats in the staging window: 64K floats = 256 KiB, which fits in L2. */
#define EMA_STAGING_FLOATS 65536u
/* Entries in the segment table that describes a filled staging window. */
#define EMA_SEGMENT_CAPACITY 4096u
/* Most slots one context can hold. */
#define EMA_MAX_SLOTS 1048576u
/* The update counter stops here, so that (10 + num_updates), which LitEma
 * computes in int32, cannot overflow. */
#define EMA_MAX_NUM_UPDATES (INT32_MAX - 10)

typedef struct ema_ctx ema_ctx;

/* One piece of one slot's parameter, packed into the staging window. */
typedef struct ema_segment {
    uint32_t slot;   /* which slot */
    uint32_t offset; /* first element of the slot covered by this piece */
    uint32_t count;  /* number of elements in this piece */
} ema_segment;

/* ===========================================================================
 *  Life cycle
 * ======================================================================== */

/* Creates a context with `slot_count` shadow slots of the given lengths
 * (lengths may be 0). Shadows start at zero: fill them with ema_shadow() or
 * ema_shadow_set() before the first update, as LitEma copies the parameters.
 * `decay` must be in [0, 1] (NaN is refused). `use_num_updates` non-zero turns
 * warmup on (num_updates starts at 0), zero turns it off (num_updates = -1).
 * On success *out receives the context; on failure *out is left untouched. */
ema_status ema_create(ema_ctx** out, float decay, int use_num_updates,
                      uint32_t slot_count, const uint32_t* slot_lengths);

/* Frees the context and everything it owns. Accepts NULL. */
void ema_destroy(ema_ctx* ctx);

/* ===========================================================================
 *  State
 * ======================================================================== */

/* The base decay as stored (float32). Returns NaN for a NULL context. */
float ema_decay(const ema_ctx* ctx);

/* Sets the base decay (LitEma's state_dict carries it); [0, 1], NaN refused. */
ema_status ema_set_decay(ema_ctx* ctx, float decay);

/* The update counter: -1 when warmup is off, else the number of updates since
 * creation or the last reset. Returns INT32_MIN for a NULL context. */
int32_t ema_num_updates(const ema_ctx* ctx);

/* Sets the update counter (LitEma's state_dict carries it). Values from -1 to
 * EMA_MAX_NUM_UPDATES are accepted (-1 turns warmup off); below -1 gives
 * EMA_ERROR_INVALID_COUNTER, above the maximum EMA_ERROR_COUNTER_OVERFLOW. */
ema_status ema_set_num_updates(ema_ctx* ctx, int32_t num_updates);

/* LitEma.reset_num_updates(): num_updates = 0. This turns warmup on even if it
 * was off, as upstream does. */
ema_status ema_reset_num_updates(ema_ctx* ctx);

/* Number of slots, and one slot's length in floats (0 for a bad index). */
uint32_t ema_slot_count(const ema_ctx* ctx);
uint32_t ema_slot_length(const ema_ctx* ctx, uint32_t slot);

/* The slot's shadow (context-owned, 64-byte aligned), or NULL for a bad index.
 * Readable and writable until ema_destroy(). */
float* ema_shadow(ema_ctx* ctx, uint32_t slot);

/* Copies `count` floats from `src` into the slot's shadow at `offset`. */
ema_status ema_shadow_set(ema_ctx* ctx, uint32_t slot, uint32_t offset,
                          const float* src, uint32_t count);

/* Bytes the context holds: shadows, staging window, segment table, backups. */
size_t ema_byte_length(const ema_ctx* ctx);

/* ===========================================================================
 *  Update
 * ======================================================================== */

/* The decay that update number `num_updates` (already incremented, >= 1)
 * uses with base `decay`: min(decay, (1+n)/(10+n)) in float32. Pure. */
float ema_warmup_decay(float decay, int32_t num_updates);

/* 1 when this build's update kernel uses WebAssembly SIMD128, else 0. A
 * loader handed a compiled module it did not choose asks the module itself. */
int ema_simd128(void);

/* One whole EMA step with direct pointers: params[i] points at slot i's
 * parameter (ema_slot_length(ctx, i) floats). All pointers are checked before
 * anything changes. If `decay_used` is not NULL it receives the step's decay.
 * Fails with EMA_ERROR_COUNTER_OVERFLOW once num_updates is at
 * EMA_MAX_NUM_UPDATES. Closes any streaming step left open. */
ema_status ema_update(ema_ctx* ctx, const float* const* params, float* decay_used);

/* Streaming update, step 1: advances the counter and fixes the step's decay.
 * Then call ema_step_apply() as many times as needed to cover every slot once;
 * the step stays open until the next ema_step_begin() or ema_update().
 * (Applying a piece twice, or leaving one out, is the caller's mistake; the
 * core cannot tell a partial step from a deliberate one.) */
ema_status ema_step_begin(ema_ctx* ctx, float* decay_used);

/* Streaming update, step 2: applies the current step to `segment_count`
 * pieces whose parameter values lie packed, one after the other, at `packed`.
 * Every segment is checked (slot index, offset + count within the slot) before
 * any shadow changes; when `segments` or `packed` point into the context's
 * segment table or staging window, they must also end inside it
 * (EMA_ERROR_SEGMENT_OVERFLOW). Fails with EMA_ERROR_NO_STEP when no step is
 * open. */
ema_status ema_step_apply(ema_ctx* ctx, const ema_segment* segments,
                          uint32_t segment_count, const float* packed);

/* The staging window (EMA_STAGING_FLOATS floats) and the segment table
 * (EMA_SEGMENT_CAPACITY entries), context-owned, for callers that stream. */
float* ema_staging(ema_ctx* ctx);
ema_segment* ema_segment_table(ema_ctx* ctx);

/* ===========================================================================
 *  Resident parameters
 * ===========================================================================
 * For training loops that can keep their parameters in the arena: after
 * ema_resident_enable(), slot i's parameter lives at ema_param(ctx, i) (same
 * length as its shadow) and the caller trains it in place. The parameter
 * region has exactly the shadows' layout (padding included, always zero), so
 * ema_update_resident() is one kernel call over all slots with no copy-in.
 * A second region of the same layout backs ema_store_resident(); everything
 * is allocated here, once, so no later resident call allocates. */

/* Allocates the parameter and backup regions (zeroed). Calling it again does
 * nothing. On failure nothing changes. */
ema_status ema_resident_enable(ema_ctx* ctx);

/* Whether ema_resident_enable() succeeded. */
int ema_is_resident(const ema_ctx* ctx);

/* Slot i's resident parameter (64-byte aligned), or NULL when not resident or
 * for a bad index. */
float* ema_param(ema_ctx* ctx, uint32_t slot);

/* One whole EMA step from the resident parameters (EMA_ERROR_NOT_RESIDENT
 * before ema_resident_enable). Closes any streaming step left open. */
ema_status ema_update_resident(ema_ctx* ctx, float* decay_used);

/* Resident parameters <- shadows (LitEma.copy_to). */
ema_status ema_copy_to_resident(ema_ctx* ctx);

/* Resident backup <- resident parameters, and back (EMA_ERROR_NOTHING_STORED
 * when restoring before any resident store). The backup is kept. */
ema_status ema_store_resident(ema_ctx* ctx);
ema_status ema_restore_resident(ema_ctx* ctx);

/* ===========================================================================
 *  Store and restore
 * ======================================================================== */

/* Prepares a backup of `count` arrays of the given lengths and returns without
 * copying anything; the caller then fills ema_backup(ctx, i). When the count
 * and lengths equal the current backup's, its memory is reused (no
 * allocation); otherwise the previous backup is released only once the new
 * one is allocated, so on failure the old backup is still there. `count` may
 * be 0 (an empty but present backup). */
ema_status ema_backup_prepare(ema_ctx* ctx, uint32_t count, const uint32_t* lengths);

/* Convenience for native callers: ema_backup_prepare() and copy `arrays` in. */
ema_status ema_store(ema_ctx* ctx, uint32_t count, const float* const* arrays,
                     const uint32_t* lengths);

/* Copies the backup back out into `arrays`, whose count and lengths must match
 * the stored ones exactly. The backup is kept, so restore can be repeated.
 * EMA_ERROR_NOTHING_STORED when no store happened. */
ema_status ema_restore(const ema_ctx* ctx, uint32_t count, float* const* arrays,
                       const uint32_t* lengths);

/* Number of stored arrays, or -1 when nothing is stored. */
int32_t ema_backup_count(const ema_ctx* ctx);

/* Stored array i (context-owned) and its length; NULL / 0 for a bad index. */
float* ema_backup(ema_ctx* ctx, uint32_t index);
uint32_t ema_backup_length(const ema_ctx* ctx, uint32_t index);

/* Drops the backup (ema_backup_count() becomes -1). */
void ema_backup_clear(ema_ctx* ctx);

/* ===========================================================================
 *  safetensors
 * ===========================================================================
 * A parser of safetensors headers that trusts nothing. A file is
 *
 *     u64 little-endian N | N bytes of JSON header | data section
 *
 * where the header maps tensor names to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the data section) and may hold one
 * "__metadata__" object of string values. ema_st_parse() checks the header
 * length, the JSON (strict, UTF-8), every entry's fields, dtype and shape,
 * that shape x dtype size equals the byte span, that offsets lie in the file,
 * that the tensors tile the data section exactly (no overlap, no gap), that
 * names are unique, and that no size overflows. It reads the header only:
 * pass the first 8 + N bytes (or the whole file) and the file's total size.
 */

#define EMA_ST_MAX_HEADER_BYTES 100000000u /* as the reference implementation */
#define EMA_ST_MAX_RANK 32u

typedef enum ema_st_dtype {
    EMA_ST_BOOL = 1,
    EMA_ST_U8 = 2,
    EMA_ST_I8 = 3,
    EMA_ST_F8_E5M2 = 4,
    EMA_ST_F8_E4M3 = 5,
    EMA_ST_I16 = 6,
    EMA_ST_U16 = 7,
    EMA_ST_F16 = 8,
    EMA_ST_BF16 = 9,
    EMA_ST_I32 = 10,
    EMA_ST_U32 = 11,
    EMA_ST_F32 = 12,
    EMA_ST_F64 = 13,
    EMA_ST_I64 = 14,
    EMA_ST_U64 = 15
} ema_st_dtype;

typedef struct ema_st_file ema_st_file;

/* Parses the header in bytes[0 .. size) of a file of `file_size` bytes. On
 * success *out receives the parsed header (free it with ema_st_free). On
 * failure *out is untouched and, if `error_offset` is not NULL, it receives
 * the byte offset in the file where the defect was found. */
ema_status ema_st_parse(const uint8_t* bytes, size_t size, uint64_t file_size,
                        ema_st_file** out, uint64_t* error_offset);

/* Frees a parsed header. Accepts NULL. */
void ema_st_free(ema_st_file* file);

/* Tensors, in the order the header lists them. Accessors return 0 / NULL
 * for a bad index. Names are UTF-8, NUL-terminated, owned by `file`. */
uint32_t ema_st_tensor_count(const ema_st_file* file);
const char* ema_st_tensor_name(const ema_st_file* file, uint32_t index);
uint32_t ema_st_tensor_name_length(const ema_st_file* file, uint32_t index);
int32_t ema_st_tensor_dtype(const ema_st_file* file, uint32_t index);
uint32_t ema_st_tensor_rank(const ema_st_file* file, uint32_t index);
uint64_t ema_st_tensor_dim(const ema_st_file* file, uint32_t index, uint32_t dim);
/* Where the tensor's bytes start in the file (8 + N + begin), and how many. */
uint64_t ema_st_tensor_file_offset(const ema_st_file* file, uint32_t index);
uint64_t ema_st_tensor_byte_length(const ema_st_file* file, uint32_t index);

/* The "__metadata__" entries, in header order; keys and values are UTF-8,
 * NUL-terminated (they may hold U+0000: use the lengths). */
uint32_t ema_st_metadata_count(const ema_st_file* file);
const char* ema_st_metadata_key(const ema_st_file* file, uint32_t index);
uint32_t ema_st_metadata_key_length(const ema_st_file* file, uint32_t index);
const char* ema_st_metadata_value(const ema_st_file* file, uint32_t index);
uint32_t ema_st_metadata_value_length(const ema_st_file* file, uint32_t index);

/* A dtype's name as safetensors spells it ("F32"), or NULL; its size in bytes
 * per element, or 0. */
const char* ema_st_dtype_name(int32_t dtype);
uint32_t ema_st_dtype_size(int32_t dtype);

#ifdef __cplusplus
}
#endif

#endif /* EMA_H */
