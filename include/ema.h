/*
 * ema.h - exponential moving average of model weights, LitEma-exact in float32.
 *
 * The public API of the ema-wasm C core, and its manual. Two more headers sit
 * beside it:
 *   ema_safetensors.h  the safetensors header parser (public, stable);
 *   ema_posthoc.h      post-hoc EMA: reconstructing any profile width from snapshots;
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
 * which is exactly what PyTorch computes for LitEma.forward(). That is the
 * default recipe (ema_create); ema_create_scheduled() follows another
 * library's EMA instead: its schedule, rounding and counter (see Recipes).
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
 *  Recipes
 * ===========================================================================
 * A context follows one recipe: the EMA of one reference library, with its
 * decay schedule, its counter, its float32 rounding of the update and what it
 * does with frozen parameters and buffers. LitEma (the default, ema_create)
 * is described above; the others are:
 *
 *   EMA_RECIPE_TORCH_EMA    torch_ema's ExponentialMovingAverage: LitEma's
 *                           warmup and rounding, but the decay in float64.
 *   EMA_RECIPE_DIFFUSERS    diffusers' EMAModel.step(): optimization_step,
 *                           update_after_step, (1+s)/(10+s) or the
 *                           1-(1+s/inv_gamma)^-power warmup, min_decay.
 *   EMA_RECIPE_TIMM         timm's ModelEmaV3: the caller's step (or none:
 *                           the fixed decay), PyTorch lerp_ rounding.
 *   EMA_RECIPE_EMA_PYTORCH  lucidrains' ema-pytorch EMA: counts calls,
 *                           update_every, copies up to update_after_step, a
 *                           float32 warmup schedule, lerp_ rounding.
 *   EMA_RECIPE_KERAS        Keras 3 optimizers' use_ema: momentum 0 on the
 *                           first step, m*avg + (1-m)*var, overwrite of the
 *                           model every ema_overwrite_frequency steps.
 *   EMA_RECIPE_DEBIASED     a zero-initialised EMA with bias correction
 *                           (optax ema(debias=True)): read as ema / (1 - d^n).
 *   EMA_RECIPE_POWER        a power-function profile of EDM2's post-hoc EMA
 *                           (Karras et al. 2024): beta_t = (1 - dt/t)^(gamma+1),
 *                           t the samples seen, gamma given or from sigma_rel.
 *
 * The schedule is data (ema_schedule): the recipe, the rounding and every
 * option, checked at creation. Float64 schedules compute pow() here, inside
 * the library (in Wasm, musl's), never in JavaScript. Each step is planned
 * once (ema_step_info: the decay, the float32 weight the kernel applies, and
 * what the step does) and then applied to every slot. */

typedef enum ema_recipe {
    EMA_RECIPE_LITEMA = 0,
    EMA_RECIPE_TORCH_EMA = 1,
    EMA_RECIPE_DIFFUSERS = 2,
    EMA_RECIPE_TIMM = 3,
    EMA_RECIPE_EMA_PYTORCH = 4,
    EMA_RECIPE_KERAS = 5,
    EMA_RECIPE_DEBIASED = 6,
    EMA_RECIPE_POWER = 7,
    EMA_RECIPE_LIMIT = 8 /* one past the last */
} ema_recipe;

/* The float32 rounding of the update, with w = one_minus_decay. */
typedef enum ema_rounding {
    /* s - w * (s - p), three roundings: LitEma, torch_ema, diffusers. */
    EMA_ROUNDING_UNFUSED = 0,
    /* PyTorch's s.lerp_(p, w): fma(w, p - s, s) when |w| < 0.5, else
     * fma(w - 1, p - s, p): timm, ema-pytorch. */
    EMA_ROUNDING_LERP = 1,
    /* fma(w, p - s, s) for every w: diffusers with foreach=True. */
    EMA_ROUNDING_FUSED = 2,
    /* decay * s + w * p, each product and the sum rounded: Keras, optax. */
    EMA_ROUNDING_TWO_PRODUCTS = 3,
    EMA_ROUNDING_LIMIT = 4
} ema_rounding;

/* What an update does when a parameter holds NaN or an infinity. No
 * reference library checks; the check reads every parameter once more. */
typedef enum ema_nonfinite {
    EMA_NONFINITE_ALLOW = 0, /* average them in, as every reference does */
    EMA_NONFINITE_SKIP = 1,  /* skip the whole step: counter and shadows unchanged */
    EMA_NONFINITE_ERROR = 2, /* refuse the step (EMA_ERROR_NONFINITE), nothing changed */
    EMA_NONFINITE_LIMIT = 3
} ema_nonfinite;

/* What one step does. */
typedef enum ema_action {
    EMA_ACTION_AVERAGE = 0,       /* the update formula on averaging slots; copy slots copy */
    EMA_ACTION_COPY = 1,          /* shadow <- parameter on every slot but EMA_SLOT_KEEP ones */
    EMA_ACTION_SKIP = 2,          /* nothing but the counter (ema-pytorch's update_every) */
    EMA_ACTION_SKIP_NONFINITE = 3 /* skipped: a parameter was not finite (nothing changed) */
} ema_action;

/* What a slot does in each step. */
typedef enum ema_slot_mode {
    EMA_SLOT_AVERAGE = 0, /* the update formula (a whole-model copy copies it) */
    EMA_SLOT_COPY = 1,    /* shadow <- parameter, bit for bit, in every step that does not skip
                           * (frozen parameters, integer buffers, ema-pytorch's no-EMA names) */
    EMA_SLOT_HOLD = 2,    /* only whole-model copies write it (ema-pytorch's ignored names) */
    EMA_SLOT_KEEP = 3,    /* never written by a step (ema-pytorch's integer buffers) */
    EMA_SLOT_MODE_LIMIT = 4
} ema_slot_mode;

/* ema_update_at()'s `step` when the caller has none (timm's step=None). */
#define EMA_NO_STEP INT64_MIN
/* Counters stop here (2^53 - 1), so that a JavaScript number holds them. */
#define EMA_MAX_COUNTER INT64_C(9007199254740991)

/* A recipe and all its options. Fields a recipe does not use must keep the
 * values ema_schedule_defaults() gives. The layout is pinned (src/schedule.c
 * asserts it): JavaScript writes it into linear memory. */
typedef struct ema_schedule {
    uint32_t recipe;    /* ema_recipe */
    uint32_t rounding;  /* ema_rounding */
    uint32_t warmup;    /* LitEma/torch_ema use_num_updates, diffusers use_ema_warmup, timm use_warmup */
    uint32_t debias;    /* EMA_RECIPE_DEBIASED: read the average bias-corrected */
    uint32_t nonfinite; /* ema_nonfinite */
    uint32_t reserved;  /* 0 */
    double decay;       /* decay, beta (ema-pytorch), ema_momentum (Keras); [0, 1] */
    double min_decay;   /* diffusers/timm min_decay, ema-pytorch min_value; [0, 1] */
    double inv_gamma;   /* diffusers inv_gamma, timm warmup_gamma, ema-pytorch inv_gamma; > 0 */
    double power;       /* diffusers power, timm warmup_power, ema-pytorch power, the power
                         * recipe's gamma; >= 0 */
    int64_t update_after_step; /* diffusers, timm, ema-pytorch; 0 to EMA_MAX_COUNTER */
    int64_t update_every;      /* ema-pytorch; 1 to EMA_MAX_COUNTER */
    int64_t overwrite_every;   /* Keras ema_overwrite_frequency; 0 = never */
    int64_t batch_size;        /* the power recipe: samples per step when a step gives none; >= 1 */
    double sigma_rel;          /* the power recipe: the profile's width; 0, or in
                                * [EMA_MIN_SIGMA_REL, EMA_MAX_SIGMA_REL], when it sets gamma (`power`) */
} ema_schedule;

/* The widest power-function profile, sqrt(1/12) (gamma 0). */
#define EMA_MAX_SIGMA_REL 0.28867513459481287
/* The narrowest profile a width may give: gamma about 1e6, an average over
 * the last millionth of training. Narrower ones are no EMA any more, and
 * their gamma would overflow the formulas that use it (ema_sigma_rel_of_gamma). */
#define EMA_MIN_SIGMA_REL 1e-6
/* The power recipe's largest gamma, the same floor given as an exponent
 * (the width of gamma 1e6 is just under EMA_MIN_SIGMA_REL). */
#define EMA_MAX_GAMMA 1e6

/* The relative width of a power-function profile of exponent `gamma`:
 * sqrt((gamma + 1) / ((gamma + 2)^2 (gamma + 3))); NaN for gamma < 0 or NaN. */
double ema_sigma_rel_of_gamma(double gamma);

/* The exponent gamma >= 0 whose profile has width `sigma_rel`: the largest
 * real root of g^3 + 7g^2 + (16 - s^-2) g + (12 - s^-2), by Newton's method
 * from 1/s (it decreases to the root on this convex cubic), in plain float64
 * operations in a fixed order, so that any IEEE implementation of the same
 * steps gets the same bits. EMA_ERROR_INVALID_SCHEDULE unless EMA_MIN_SIGMA_REL
 * <= sigma_rel <= EMA_MAX_SIGMA_REL. */
ema_status ema_gamma_of_sigma_rel(double sigma_rel, double* gamma);

/* What a step did (or, from ema_plan_step, will do). Layout pinned. */
typedef struct ema_step_info {
    double decay;      /* the decay as the reference computes it (float32 recipes: that value) */
    int64_t counter;   /* the recipe's counter after the step */
    float weight;      /* the float32 one_minus_decay the kernel applies */
    float kernel_decay; /* EMA_ROUNDING_TWO_PRODUCTS: the float32 decay it applies */
    uint32_t action;   /* ema_action */
    uint32_t overwrite; /* Keras: 1 when the model's weights are to be overwritten by the averages */
} ema_step_info;

/* Fills `out` with `recipe`'s defaults: the reference's own defaults, its
 * rounding, EMA_NONFINITE_ALLOW. EMA_ERROR_INVALID_SCHEDULE for an unknown
 * recipe. */
ema_status ema_schedule_defaults(ema_schedule* out, uint32_t recipe);

/* Native only. EMA_OK when `schedule` is valid, else EMA_ERROR_INVALID_SCHEDULE (or
 * EMA_ERROR_INVALID_DECAY for a decay outside [0, 1]). */
ema_status ema_schedule_check(const ema_schedule* schedule);

/* Native only. Plans one step of `schedule` (the power recipe's gamma read
 * from `power`) from the counter (and
 * ema-pytorch's `initted`) before it; `step` is timm's step, or the power
 * recipe's samples in this step, or EMA_NO_STEP.
 * Pure. EMA_ERROR_COUNTER_OVERFLOW when the counter cannot advance. */
ema_status ema_plan_step(const ema_schedule* schedule, int64_t counter, int initted, int64_t step,
                         ema_step_info* out);

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
 *  Recipes: contexts
 * ======================================================================== */

/* Creates a context that follows `schedule` (checked with
 * ema_schedule_check; copied; the power recipe's gamma derived from
 * sigma_rel when that is not 0). Shadows start at zero, as in ema_create(). The
 * counter starts at 0, or -1 for LitEma and torch_ema without warmup. Every
 * slot starts in EMA_SLOT_AVERAGE mode. Errors as ema_create(), and
 * EMA_ERROR_INVALID_SCHEDULE. ema_create() is this with LitEma's schedule. */
ema_status ema_create_scheduled(ema_ctx** out, const ema_schedule* schedule,
                                uint32_t slot_count, const uint32_t* slot_lengths);

/* The context's schedule (a copy). */
ema_status ema_get_schedule(const ema_ctx* ctx, ema_schedule* out);

/* Replaces the schedule (a checkpoint carries the options); the recipe must
 * stay the same (EMA_ERROR_INVALID_ARGUMENT), because the counter means a
 * different thing in each. With several profiles, every profile takes the
 * shared fields and profile 0 the width (gamma, sigma_rel). */
ema_status ema_set_schedule(ema_ctx* ctx, const ema_schedule* schedule);

/* ===========================================================================
 *  Recipes: several profiles in one pass
 * ===========================================================================
 * A context may keep several power-function EMAs of the same parameters
 * (post-hoc EMA tracks two, of different widths): one counter, one shadow
 * per slot per profile, and one update that reads each parameter once and
 * updates every profile's shadow (in blocks that stay in the L1 cache).
 * Profile 0 is what the single-profile calls (ema_shadow, ema_copy_to_resident,
 * ema_get_schedule, the step info of ema_update_at) speak of. */

/* Most profiles one context keeps. */
#define EMA_MAX_PROFILES 16u

/* Creates a context with `profile_count` profiles: schedules[k] is profile
 * k's. Each is checked as by ema_create_scheduled(); with more than one,
 * each must be EMA_RECIPE_POWER and equal to schedules[0] in every field but
 * `power` and `sigma_rel` (EMA_ERROR_INVALID_SCHEDULE). profile_count 0 or
 * above EMA_MAX_PROFILES: EMA_ERROR_INVALID_ARGUMENT. Memory: one shadow
 * arena per profile. ema_create_scheduled() is this with one profile. */
ema_status ema_create_profiles(ema_ctx** out, uint32_t profile_count, const ema_schedule* schedules,
                               uint32_t slot_count, const uint32_t* slot_lengths);

/* How many profiles the context keeps (0 for NULL). */
uint32_t ema_profile_count(const ema_ctx* ctx);

/* Profile `profile`'s shadow of `slot`, as ema_shadow() (NULL when either
 * is out of range). */
float* ema_profile_shadow(ema_ctx* ctx, uint32_t profile, uint32_t slot);

/* A profile's schedule (a copy); EMA_ERROR_INVALID_ARGUMENT past the last. */
ema_status ema_get_profile_schedule(const ema_ctx* ctx, uint32_t profile, ema_schedule* out);

/* Replaces one profile's schedule; with several profiles only its width may
 * differ from the others' (EMA_ERROR_INVALID_SCHEDULE otherwise). */
ema_status ema_set_profile_schedule(ema_ctx* ctx, uint32_t profile, const ema_schedule* schedule);

/* What a profile's last step did (its decay and weight; the action and
 * counter are every profile's). Zeros before the first step. */
ema_status ema_profile_step(const ema_ctx* ctx, uint32_t profile, ema_step_info* out);

/* The recipe's counter: LitEma's and torch_ema's num_updates (-1 when
 * warmup is off), diffusers' optimization_step, ema-pytorch's step (calls),
 * Keras's iterations, the debiased EMA's count, timm's calls. INT64_MIN for
 * NULL. */
int64_t ema_counter(const ema_ctx* ctx);

/* Sets the counter: -1 (LitEma, torch_ema) or 0 up to EMA_MAX_NUM_UPDATES
 * (LitEma), INT32_MAX (debiased) or EMA_MAX_COUNTER; EMA_ERROR_INVALID_COUNTER
 * below, EMA_ERROR_COUNTER_OVERFLOW above. ema_set_num_updates() is this. */
ema_status ema_set_counter(ema_ctx* ctx, int64_t counter);

/* Steps that averaged or copied since creation (or ema_set_steps): the
 * training step, which the power recipe's counter (samples) is not when a
 * step brings more than one sample. It stops at EMA_MAX_COUNTER. INT64_MIN
 * for NULL. ema_set_steps: 0 to EMA_MAX_COUNTER (EMA_ERROR_INVALID_COUNTER
 * below, EMA_ERROR_COUNTER_OVERFLOW above). */
int64_t ema_steps(const ema_ctx* ctx);
ema_status ema_set_steps(ema_ctx* ctx, int64_t steps);

/* ema-pytorch's `initted` flag: 0 until its first update, which copies the
 * model whatever the counter says. Other recipes ignore it. */
int ema_initted(const ema_ctx* ctx);
ema_status ema_set_initted(ema_ctx* ctx, int initted);

/* A slot's ema_slot_mode (see the enum). Slots that are not averaged may
 * hold any bits: integer buffers travel as raw words. EMA_ERROR_SLOT_INDEX,
 * EMA_ERROR_INVALID_ARGUMENT for an unknown mode. */
ema_status ema_set_slot_mode(ema_ctx* ctx, uint32_t slot, uint32_t mode);

/* Native only. A slot's mode (EMA_SLOT_AVERAGE for NULL or a bad index). */
uint32_t ema_get_slot_mode(const ema_ctx* ctx, uint32_t slot);

/* What a shadow is divided by when read: for a debiased EMA,
 * 1 - decay^count computed in float64 and rounded once to float32 (0 before
 * its first update, when there is no average to read); 1 for every other
 * recipe. NaN for NULL. */
float ema_read_divisor(const ema_ctx* ctx);

/* ===========================================================================
 *  Update
 * ======================================================================== */

/* Native only. The decay that LitEma's update number `num_updates` (already
 * incremented, >= 1) uses with base `decay`: min(decay, (1+n)/(10+n)) in
 * float32. Pure. */
float ema_warmup_decay(float decay, int32_t num_updates);

/* Native only. One whole EMA step with direct pointers: params[i] points at
 * slot i's parameter (ema_slot_length(ctx, i) floats; NULL allowed for an
 * empty slot). All pointers are checked before anything changes; with
 * EMA_NONFINITE_SKIP or _ERROR every averaged parameter of a step that does
 * not skip is checked for NaN and infinities first (a skip returns EMA_OK with action
 * EMA_ACTION_SKIP_NONFINITE; an error is EMA_ERROR_NONFINITE; either way
 * nothing changed). `step` is timm's step, or EMA_NO_STEP. `info`, when not
 * NULL, receives what the step did; with info->overwrite set (Keras), the
 * caller writes the shadows into its parameters. Returns
 * EMA_ERROR_NULL_ARGUMENT, or EMA_ERROR_COUNTER_OVERFLOW once the counter is
 * at its maximum. `param` may alias a shadow. */
ema_status ema_update_at(ema_ctx* ctx, const float* const* params, int64_t step,
                         ema_step_info* info);

/* Native only. ema_update_at() with EMA_NO_STEP, storing the step's decay
 * (as float32) in *decay_used when not NULL. */
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

/* Native only. 1 when ema_resident_enable() has succeeded (not
 * ema_mirror_enable() alone), else 0. */
int ema_is_resident(const ema_ctx* ctx);

/* Slot i's resident parameter (context-owned, 64-byte aligned, writable until
 * ema_destroy()), or NULL when not resident or for a bad index. */
float* ema_param(ema_ctx* ctx, uint32_t slot);

/* One whole EMA step from the resident parameters, as ema_update_at(); a
 * Keras overwrite writes the shadows into the resident parameters here. */
ema_status ema_update_resident_at(ema_ctx* ctx, int64_t step, ema_step_info* info);

/* Native only. ema_update_resident_at() with EMA_NO_STEP; `decay_used` as
 * in ema_update(). */
ema_status ema_update_resident(ema_ctx* ctx, float* decay_used);

/* The same step in three calls, so that several threads can share the
 * middle one (the JS threads build; bench/threads.c natively):
 * ema_resident_step_begin_at() plans the step, checks the parameters as
 * ema_update_resident_at() does and opens it; ema_resident_apply_range()
 * applies it to the floats [begin, end) of the parameter region (its
 * layout, padding included: ema_resident_floats() floats), and calls over
 * disjoint ranges may run at the same time, since each reads the context
 * and writes only its range of every profile's shadows; once every range
 * is applied, ema_resident_step_end() does a Keras overwrite and closes the
 * step. Applying a range twice, or leaving one out, is the caller's
 * mistake. EMA_ERROR_OUT_OF_RANGE when end passes the region or begin passes
 * end; on a skipped step the ranges do nothing. */
ema_status ema_resident_step_begin_at(ema_ctx* ctx, int64_t step, ema_step_info* info);
size_t ema_resident_floats(const ema_ctx* ctx);
ema_status ema_resident_apply_range(const ema_ctx* ctx, size_t begin, size_t end);
ema_status ema_resident_step_end(ema_ctx* ctx);

/* Allocates the parameter region alone (zeroed; no backup): a copy-in
 * EMA's mirror of the caller's parameters, which the JS threads build
 * copies the parameters into so that the step can finish in the workers
 * after update() returns. ema_param() then gives its slots and the three
 * calls above apply a step from it; the resident store and restore stay
 * EMA_ERROR_NOT_RESIDENT. Calling it again does nothing. */
ema_status ema_mirror_enable(ema_ctx* ctx);

/* Resident parameters <- shadows (LitEma.copy_to). */
ema_status ema_copy_to_resident(ema_ctx* ctx);

/* ema_copy_to_resident() from profile `profile`'s shadows
 * (EMA_ERROR_INVALID_ARGUMENT past the last profile). */
ema_status ema_copy_profile_to_resident(ema_ctx* ctx, uint32_t profile);

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
