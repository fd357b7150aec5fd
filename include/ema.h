/*
 * ema.h - exponential moving average of model weights, LitEma-exact in float32.
 *
 * The public API of the ema-wasm C core, and its manual. Two more headers sit
 * beside it:
 *   ema_safetensors.h  the safetensors header parser (public, stable);
 *   ema_stream.h       the streaming ABI the JavaScript wrapper drives
 *                      (internal and unstable: it may change in any release).
 * Status codes are in ema_status.h, which this header includes.
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
 * A native caller hands the parameters over as pointers (ema_update), or keeps
 * them in the arena itself (resident mode, ema_update_resident). A backup
 * region holds copies of arbitrary arrays for store/restore (LitEma's store()
 * and restore(), used to evaluate with EMA weights and then put the training
 * weights back).
 *
 * ===========================================================================
 *  Errors, ownership, memory
 * ===========================================================================
 * Every function that can fail returns an `ema_status`; EMA_OK is 0.
 * Functions check all their arguments before they change anything, so a call
 * that fails leaves the context exactly as it was. Nothing aborts on bad input.
 * ema_status_string() names a status.
 *
 * Memory handed in stays the caller's and is not kept after the call returns.
 * Memory reached through accessors (ema_shadow, ema_param, ema_backup) belongs
 * to the context: it lives until ema_destroy() or, for backups, the next
 * ema_backup_prepare() or ema_backup_clear(). The context allocates with
 * malloc/aligned_alloc in ema_create(), ema_resident_enable() and
 * ema_backup_prepare()/ema_store() only; no other call allocates.
 *
 * Alignment: every shadow slot, resident parameter and backup array starts on
 * a 64-byte boundary, and each slot is padded to a multiple of 64 bytes.
 *
 * Functions marked "Native only" are not exported by the WebAssembly modules
 * (see src/wasm_exports.txt); everything else is.
 */
#ifndef EMA_H
#define EMA_H

#include <stddef.h>
#include <stdint.h>

#include "ema_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===========================================================================
 *  Version
 * ======================================================================== */

/* The version of the C core, which is the npm package's version
 * (test/js/c-abi.test.js checks that they agree; CMakeLists.txt reads it
 * from here). */
#define EMA_VERSION_MAJOR 0
#define EMA_VERSION_MINOR 1
#define EMA_VERSION_PATCH 0
#define EMA_VERSION_NUMBER \
    (EMA_VERSION_MAJOR * 10000 + EMA_VERSION_MINOR * 100 + EMA_VERSION_PATCH)

#define EMA_QUOTE_(text) #text
#define EMA_EXPAND_AND_QUOTE_(text) EMA_QUOTE_(text)
#define EMA_VERSION_STRING \
    EMA_EXPAND_AND_QUOTE_(EMA_VERSION_MAJOR.EMA_VERSION_MINOR.EMA_VERSION_PATCH)

/* EMA_VERSION_NUMBER of the library linked in (which may differ from the
 * header a caller was compiled with). */
unsigned ema_version_number(void);

/* EMA_VERSION_STRING of the library linked in, e.g. "0.1.0". Static storage,
 * never NULL. */
const char* ema_version_string(void);

/* 1 when this build's update kernel uses WebAssembly SIMD128, else 0. A
 * loader handed a compiled module it did not choose asks the module itself. */
int ema_simd128(void);

/* ===========================================================================
 *  Limits
 * ======================================================================== */

/* Most slots one context can hold (and most arrays one backup can hold). */
#define EMA_MAX_SLOTS 1048576u
/* The update counter stops here, so that (10 + num_updates), which LitEma
 * computes in int32, cannot overflow. */
#define EMA_MAX_NUM_UPDATES (INT32_MAX - 10)

/* ===========================================================================
 *  Life cycle
 * ======================================================================== */

typedef struct ema_ctx ema_ctx;

/* Creates a context with `slot_count` shadow slots of the given lengths in
 * floats (lengths may be 0; `slot_lengths` may be NULL when `slot_count` is
 * 0). Shadows start at zero: fill them with ema_shadow() or ema_shadow_set()
 * before the first update, as LitEma copies the parameters. `decay` must be in
 * [0, 1] (NaN is refused). `use_num_updates` non-zero turns warmup on
 * (num_updates starts at 0), zero turns it off (num_updates = -1).
 * Returns EMA_OK and stores the new context in *out, which the caller frees
 * with ema_destroy(); or EMA_ERROR_NULL_ARGUMENT, EMA_ERROR_INVALID_DECAY,
 * EMA_ERROR_TOO_MANY_SLOTS (above EMA_MAX_SLOTS), EMA_ERROR_TOO_LARGE or
 * EMA_ERROR_OUT_OF_MEMORY, with *out untouched. `slot_lengths` is copied. */
ema_status ema_create(ema_ctx** out, float decay, int use_num_updates,
                      uint32_t slot_count, const uint32_t* slot_lengths);

/* Frees the context and everything it owns; pointers from its accessors die
 * with it. Accepts NULL. */
void ema_destroy(ema_ctx* ctx);

/* ===========================================================================
 *  State
 * ======================================================================== */

/* The base decay as stored (float32). Returns NaN for a NULL context. */
float ema_decay(const ema_ctx* ctx);

/* Sets the base decay (LitEma's state_dict carries it). Returns
 * EMA_ERROR_INVALID_DECAY outside [0, 1] or for NaN. */
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

/* Native only. Number of slots (0 for NULL), and one slot's length in floats
 * (0 for NULL or a bad index). */
uint32_t ema_slot_count(const ema_ctx* ctx);
uint32_t ema_slot_length(const ema_ctx* ctx, uint32_t slot);

/* The slot's shadow (context-owned, 64-byte aligned, ema_slot_length()
 * floats), or NULL for a NULL context or a bad index. Readable and writable
 * until ema_destroy(). */
float* ema_shadow(ema_ctx* ctx, uint32_t slot);

/* Native only. Copies `count` floats from `src` into the slot's shadow at
 * `offset` (EMA_ERROR_SLOT_INDEX, EMA_ERROR_OUT_OF_RANGE when the range does
 * not fit; `src` may be NULL when `count` is 0). */
ema_status ema_shadow_set(ema_ctx* ctx, uint32_t slot, uint32_t offset,
                          const float* src, uint32_t count);

/* Bytes the context holds: shadows, staging window, segment table, backups,
 * resident regions and bookkeeping (0 for NULL). */
size_t ema_byte_length(const ema_ctx* ctx);

/* ===========================================================================
 *  Update
 * ======================================================================== */

/* Native only. The decay that update number `num_updates` (already
 * incremented, >= 1) uses with base `decay`: min(decay, (1+n)/(10+n)) in
 * float32. Pure. */
float ema_warmup_decay(float decay, int32_t num_updates);

/* Native only. One whole EMA step with direct pointers: params[i] points at
 * slot i's parameter (ema_slot_length(ctx, i) floats; NULL allowed for an
 * empty slot). All pointers are checked before anything changes. If
 * `decay_used` is not NULL it receives the step's decay. Returns
 * EMA_ERROR_NULL_ARGUMENT, or EMA_ERROR_COUNTER_OVERFLOW once num_updates is
 * at EMA_MAX_NUM_UPDATES. `param` may alias a shadow. */
ema_status ema_update(ema_ctx* ctx, const float* const* params, float* decay_used);

/* ===========================================================================
 *  Resident parameters
 * ===========================================================================
 * For training loops that can keep their parameters in the arena: after
 * ema_resident_enable(), slot i's parameter lives at ema_param(ctx, i) (same
 * length as its shadow) and the caller trains it in place. The parameter
 * region has exactly the shadows' layout (padding included, always zero), so
 * ema_update_resident() is one kernel call over all slots with no copy-in.
 * A second region of the same layout backs ema_store_resident(); everything
 * is allocated here, once, so no later resident call allocates. Resident calls
 * before ema_resident_enable() return EMA_ERROR_NOT_RESIDENT. */

/* Allocates the parameter and backup regions (zeroed; 3x the shadows' bytes
 * in all). Calling it again does nothing. On failure
 * (EMA_ERROR_OUT_OF_MEMORY) nothing changes. */
ema_status ema_resident_enable(ema_ctx* ctx);

/* Native only. 1 when ema_resident_enable() has succeeded, else 0. */
int ema_is_resident(const ema_ctx* ctx);

/* Slot i's resident parameter (context-owned, 64-byte aligned, writable until
 * ema_destroy()), or NULL when not resident or for a bad index. */
float* ema_param(ema_ctx* ctx, uint32_t slot);

/* One whole EMA step from the resident parameters; `decay_used` as in
 * ema_update(). */
ema_status ema_update_resident(ema_ctx* ctx, float* decay_used);

/* Resident parameters <- shadows (LitEma.copy_to). */
ema_status ema_copy_to_resident(ema_ctx* ctx);

/* Resident backup <- resident parameters, and back (EMA_ERROR_NOTHING_STORED
 * when restoring before any resident store). The backup is kept, so restore
 * can be repeated. */
ema_status ema_store_resident(ema_ctx* ctx);
ema_status ema_restore_resident(ema_ctx* ctx);

/* ===========================================================================
 *  Store and restore
 * ======================================================================== */

/* Prepares a backup of `count` arrays of the given lengths in floats and
 * returns without copying anything; the caller then fills ema_backup(ctx, i).
 * When the count and lengths equal the current backup's, its memory is reused
 * (no allocation, contents kept); otherwise the previous backup is released
 * only once the new one is allocated, so on failure the old backup is still
 * there. `count` may be 0 (an empty but present backup); above EMA_MAX_SLOTS
 * gives EMA_ERROR_TOO_MANY_SLOTS. `lengths` is copied. */
ema_status ema_backup_prepare(ema_ctx* ctx, uint32_t count, const uint32_t* lengths);

/* Native only. ema_backup_prepare() and copy `arrays` in (arrays[i] holds
 * lengths[i] floats; NULL allowed when that length is 0). */
ema_status ema_store(ema_ctx* ctx, uint32_t count, const float* const* arrays,
                     const uint32_t* lengths);

/* Native only. Copies the backup back out into `arrays`, whose count and
 * lengths must match the stored ones exactly (EMA_ERROR_LENGTH_MISMATCH). The
 * backup is kept, so restore can be repeated. EMA_ERROR_NOTHING_STORED when
 * no store happened. */
ema_status ema_restore(const ema_ctx* ctx, uint32_t count, float* const* arrays,
                       const uint32_t* lengths);

/* Native only. Number of stored arrays, or -1 when nothing is stored. */
int32_t ema_backup_count(const ema_ctx* ctx);

/* Stored array i (context-owned, 64-byte aligned, valid until the next
 * ema_backup_prepare() that changes the shape, ema_backup_clear() or
 * ema_destroy()), or NULL for a bad index. */
float* ema_backup(ema_ctx* ctx, uint32_t index);

/* Native only. Stored array i's length in floats; 0 for a bad index. */
uint32_t ema_backup_length(const ema_ctx* ctx, uint32_t index);

/* Native only. Frees the backup (ema_backup_count() becomes -1). Accepts
 * NULL. */
void ema_backup_clear(ema_ctx* ctx);

#ifdef __cplusplus
}
#endif

#endif /* EMA_H */
