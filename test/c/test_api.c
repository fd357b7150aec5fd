/*
 * test_api.c - the API of include/ema.h and include/ema_stream.h: every
 * function with bad input returns the documented status and leaves the
 * context exactly as it was; then the happy paths (create, update, streaming,
 * store/restore, counters), the version and the ABI values.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ema_posthoc.h"
#include "ema_stream.h"
#include "test_util.h"

/* The out-of-memory tests ask for petabytes; make ASan return NULL for them
 * instead of aborting, as plain malloc does. */
#if defined(__SANITIZE_ADDRESS__)
#define EMA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMA_TEST_ASAN 1
#endif
#endif
#ifdef EMA_TEST_ASAN
const char* __asan_default_options(void);
const char* __asan_default_options(void) {
    return "allocator_may_return_null=1";
}
#endif

static int is_aligned64(const void* pointer) {
    return pointer != NULL && ((uintptr_t)pointer & 63u) == 0;
}

/* A value in [-4, 4) with a few bits of mantissa noise. */
static float random_value(void) {
    return (float)(int32_t)(next_random() >> 8) * 0x1p-21f - 4.0f;
}

static void fill_random(float* values, size_t n) {
    for (size_t i = 0; i < n; i++) {
        values[i] = random_value();
    }
}

/* ------------------------------------------------------------------------
 * Snapshots: everything observable about a context, to prove a failed call
 * changed nothing.
 * ---------------------------------------------------------------------- */

typedef struct snapshot {
    uint32_t decay_bits;
    int32_t num_updates;
    uint32_t slot_count;
    uint32_t* slot_lengths;
    float** shadows;
    int32_t backup_count;
    uint32_t* backup_lengths;
    float** backups;
    size_t byte_length;
} snapshot;

static float* copy_floats(const float* source, uint32_t n) {
    float* copy = malloc((n ? n : 1) * sizeof(float));
    if (copy != NULL && n != 0) {
        memcpy(copy, source, (size_t)n * sizeof(float));
    }
    return copy;
}

static snapshot take_snapshot(ema_ctx* ctx) {
    snapshot s;
    memset(&s, 0, sizeof(s));
    s.decay_bits = f32_bits(ema_decay(ctx));
    s.num_updates = ema_num_updates(ctx);
    s.slot_count = ema_slot_count(ctx);
    s.slot_lengths = calloc(s.slot_count + 1, sizeof(uint32_t));
    s.shadows = calloc(s.slot_count + 1, sizeof(float*));
    for (uint32_t i = 0; i < s.slot_count; i++) {
        s.slot_lengths[i] = ema_slot_length(ctx, i);
        s.shadows[i] = copy_floats(ema_shadow(ctx, i), s.slot_lengths[i]);
    }
    s.backup_count = ema_backup_count(ctx);
    const uint32_t backups = s.backup_count > 0 ? (uint32_t)s.backup_count : 0;
    s.backup_lengths = calloc(backups + 1, sizeof(uint32_t));
    s.backups = calloc(backups + 1, sizeof(float*));
    for (uint32_t i = 0; i < backups; i++) {
        s.backup_lengths[i] = ema_backup_length(ctx, i);
        s.backups[i] = copy_floats(ema_backup(ctx, i), s.backup_lengths[i]);
    }
    s.byte_length = ema_byte_length(ctx);
    return s;
}

static void free_snapshot(snapshot* s) {
    for (uint32_t i = 0; i < s->slot_count; i++) {
        free(s->shadows[i]);
    }
    const uint32_t backups = s->backup_count > 0 ? (uint32_t)s->backup_count : 0;
    for (uint32_t i = 0; i < backups; i++) {
        free(s->backups[i]);
    }
    free(s->slot_lengths);
    free(s->shadows);
    free(s->backup_lengths);
    free(s->backups);
}

static int same_floats(const float* a, const float* b, uint32_t n) {
    return n == 0 || memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* 1 if the context still matches the snapshot, bit for bit. */
static int unchanged(ema_ctx* ctx, const snapshot* s) {
    snapshot now = take_snapshot(ctx);
    int same = now.decay_bits == s->decay_bits && now.num_updates == s->num_updates &&
               now.slot_count == s->slot_count && now.backup_count == s->backup_count &&
               now.byte_length == s->byte_length;
    for (uint32_t i = 0; same && i < s->slot_count; i++) {
        same = now.slot_lengths[i] == s->slot_lengths[i] &&
               same_floats(now.shadows[i], s->shadows[i], s->slot_lengths[i]);
    }
    const uint32_t backups = s->backup_count > 0 ? (uint32_t)s->backup_count : 0;
    for (uint32_t i = 0; same && i < backups; i++) {
        same = now.backup_lengths[i] == s->backup_lengths[i] &&
               same_floats(now.backups[i], s->backups[i], s->backup_lengths[i]);
    }
    free_snapshot(&now);
    return same;
}

/* CHECK_FAILS(ctx, call, status): `call` returns `status` and leaves ctx as it was. */
#define CHECK_FAILS(ctx, call, status)                                   \
    do {                                                                 \
        snapshot before_ = take_snapshot(ctx);                           \
        CHECK_STATUS(call, status);                                      \
        CHECK(unchanged(ctx, &before_), "%s changed the context", #call); \
        free_snapshot(&before_);                                         \
    } while (0)

/* A context with the given slot lengths, shadows filled with random values. */
static ema_ctx* make_ctx(float decay, int warmup, uint32_t count, const uint32_t* lengths) {
    ema_ctx* ctx = NULL;
    if (!CHECK_STATUS(ema_create(&ctx, decay, warmup, count, lengths), EMA_OK)) {
        return NULL;
    }
    for (uint32_t i = 0; i < count; i++) {
        fill_random(ema_shadow(ctx, i), lengths[i]);
    }
    return ctx;
}

/* ------------------------------------------------------------------------
 * Version, build and ABI values
 * ---------------------------------------------------------------------- */

static void test_version(void) {
    CHECK(ema_version_number() == EMA_VERSION_NUMBER, "ema_version_number() %u == %d",
          ema_version_number(), EMA_VERSION_NUMBER);
    CHECK(EMA_VERSION_NUMBER ==
              EMA_VERSION_MAJOR * 10000 + EMA_VERSION_MINOR * 100 + EMA_VERSION_PATCH,
          "EMA_VERSION_NUMBER is major*10000 + minor*100 + patch");
    char expected[32];
    snprintf(expected, sizeof(expected), "%d.%d.%d", EMA_VERSION_MAJOR, EMA_VERSION_MINOR,
             EMA_VERSION_PATCH);
    CHECK(strcmp(ema_version_string(), expected) == 0 &&
              strcmp(EMA_VERSION_STRING, expected) == 0,
          "ema_version_string() '%s' == EMA_VERSION_STRING '%s' == '%s'", ema_version_string(),
          EMA_VERSION_STRING, expected);
    CHECK(EMA_VERSION_MINOR < 100 && EMA_VERSION_PATCH < 100, "minor and patch fit two digits");
}

static void test_build(void) {
#if defined(__wasm_simd128__)
    const int simd = 1;
#else
    const int simd = 0;
#endif
    CHECK(ema_simd128() == simd, "ema_simd128() is %d in this build, got %d", simd, ema_simd128());
}

static void test_abi_values(void) {
    CHECK(ema_abi_value(EMA_ABI_STAGING_FLOATS) == EMA_STAGING_FLOATS, "staging floats");
    CHECK(ema_abi_value(EMA_ABI_SEGMENT_CAPACITY) == EMA_SEGMENT_CAPACITY, "segment capacity");
    CHECK(ema_abi_value(EMA_ABI_SEGMENT_WORDS) * sizeof(uint32_t) == sizeof(ema_segment),
          "segment words");
    CHECK(ema_abi_value(EMA_ABI_MAX_SLOTS) == EMA_MAX_SLOTS, "max slots");
    CHECK(ema_abi_value(EMA_ABI_ALIGNMENT) == 64, "alignment");
    CHECK(ema_abi_value(EMA_ABI_MAX_NUM_UPDATES) == (uint32_t)EMA_MAX_NUM_UPDATES,
          "max num_updates");
    CHECK(ema_abi_value(EMA_ABI_MAX_RANK) == 32, "max rank");
    CHECK(ema_abi_value(EMA_ABI_ST_MAX_HEADER_BYTES) == 100000000u, "max header bytes");
    CHECK(ema_abi_value(EMA_ABI_ST_DTYPE_LIMIT) == 16, "dtype limit");
    CHECK(ema_abi_value(EMA_ABI_REGION_BYTES_PER_ARRAY) == sizeof(uint32_t) + sizeof(size_t),
          "region bytes per array");
    CHECK(ema_abi_value(EMA_ABI_ST_TENSOR_BYTES) >= 32 * sizeof(uint64_t),
          "a tensor row holds its shape: %u bytes", ema_abi_value(EMA_ABI_ST_TENSOR_BYTES));
#if defined(__EMSCRIPTEN__)
    CHECK(ema_abi_value(EMA_ABI_INITIAL_MEMORY_BYTES) % 65536 == 0,
          "initial memory is whole pages: %u", ema_abi_value(EMA_ABI_INITIAL_MEMORY_BYTES));
#else
    CHECK(ema_abi_value(EMA_ABI_INITIAL_MEMORY_BYTES) == 0, "no initial memory natively");
#endif
    CHECK(ema_abi_value(EMA_ABI_SCHEDULE_BYTES) == sizeof(ema_schedule), "schedule bytes");
    CHECK(ema_abi_value(EMA_ABI_STEP_INFO_BYTES) == sizeof(ema_step_info), "step info bytes");
    CHECK(ema_abi_value(EMA_ABI_MAX_PROFILES) == EMA_MAX_PROFILES, "max profiles");
    CHECK(ema_abi_value(EMA_ABI_MAX_POSTHOC_SNAPSHOTS) == EMA_MAX_POSTHOC_SNAPSHOTS, "max post-hoc snapshots");
    CHECK(ema_abi_value(0) == 0 && ema_abi_value(EMA_ABI_MAX_POSTHOC_SNAPSHOTS + 1) == 0 &&
              ema_abi_value(UINT32_MAX) == 0,
          "unknown ids give 0");
}

/* ------------------------------------------------------------------------
 * Status strings and NULL contexts
 * ---------------------------------------------------------------------- */

static void test_status_strings(void) {
    const int last = EMA_ERROR_INVALID_ARGUMENT;
    for (int a = 0; a <= last; a++) {
        const char* sa = ema_status_string((ema_status)a);
        CHECK(sa != NULL && sa[0] != '\0', "status %d has a name", a);
        CHECK(sa != NULL && strcmp(sa, "unknown status") != 0, "status %d is known", a);
        for (int b = 0; b < a; b++) {
            const char* sb = ema_status_string((ema_status)b);
            CHECK(sa != NULL && sb != NULL && strcmp(sa, sb) != 0,
                  "statuses %d and %d have distinct names", a, b);
        }
    }
    CHECK(strcmp(ema_status_string(EMA_OK), "ok") == 0, "EMA_OK is \"ok\"");
    const int unknown[] = {last + 1, last + 2, 100, -1, INT32_MAX};
    for (size_t i = 0; i < COUNT_OF(unknown); i++) {
        const char* s = ema_status_string((ema_status)unknown[i]);
        CHECK(s != NULL && strcmp(s, "unknown status") == 0, "code %d is \"unknown status\"",
              unknown[i]);
    }
}

static void test_null_context(void) {
    float value = 1.0f;
    const float* params[1] = {&value};
    float* arrays[1] = {&value};
    const uint32_t lengths[1] = {1};
    const ema_segment segment = {0, 0, 1};
    float decay_used = 123.0f;

    ema_destroy(NULL);
    CHECK(isnan(ema_decay(NULL)), "ema_decay(NULL) is NaN");
    CHECK(ema_num_updates(NULL) == INT32_MIN, "ema_num_updates(NULL) is INT32_MIN");
    CHECK_STATUS(ema_set_num_updates(NULL, 0), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_reset_num_updates(NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK(ema_slot_count(NULL) == 0, "ema_slot_count(NULL)");
    CHECK(ema_slot_length(NULL, 0) == 0, "ema_slot_length(NULL)");
    CHECK(ema_shadow(NULL, 0) == NULL, "ema_shadow(NULL)");
    CHECK_STATUS(ema_shadow_set(NULL, 0, 0, &value, 1), EMA_ERROR_NULL_ARGUMENT);
    CHECK(ema_byte_length(NULL) == 0, "ema_byte_length(NULL)");
    CHECK_STATUS(ema_update(NULL, params, &decay_used), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_step_begin(NULL, &decay_used), EMA_ERROR_NULL_ARGUMENT);
    CHECK(decay_used == 123.0f, "decay_used untouched on failure");
    CHECK_STATUS(ema_step_apply(NULL, &segment, 1, &value), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_step_apply_staged(NULL, 1), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_step_apply_staged(NULL, 0), EMA_ERROR_NULL_ARGUMENT);
    CHECK(ema_staging(NULL) == NULL, "ema_staging(NULL)");
    CHECK(ema_segment_table(NULL) == NULL, "ema_segment_table(NULL)");
    CHECK_STATUS(ema_backup_prepare(NULL, 1, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_store(NULL, 1, params, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_restore(NULL, 1, arrays, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK(ema_backup_count(NULL) == -1, "ema_backup_count(NULL)");
    CHECK(ema_backup(NULL, 0) == NULL, "ema_backup(NULL)");
    CHECK(ema_backup_length(NULL, 0) == 0, "ema_backup_length(NULL)");
    ema_backup_clear(NULL);
    CHECK(value == 1.0f, "no NULL-context call touched caller memory");
}

/* ------------------------------------------------------------------------
 * ema_create
 * ---------------------------------------------------------------------- */

static void test_create_errors(void) {
    const uint32_t lengths[2] = {3, 4};
    ema_ctx* const sentinel = (ema_ctx*)&lengths; /* never dereferenced */
    ema_ctx* ctx = sentinel;

    CHECK_STATUS(ema_create(NULL, 0.5f, 1, 2, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_create(&ctx, 0.5f, 1, 2, NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK(ctx == sentinel, "*out untouched after NULL lengths");

    const float bad_decays[] = {-0.1f, 1.1f, NAN, -NAN, INFINITY, -INFINITY, -1e-45f,
                                1.00000012f};
    for (size_t i = 0; i < COUNT_OF(bad_decays); i++) {
        CHECK_STATUS(ema_create(&ctx, bad_decays[i], 1, 2, lengths), EMA_ERROR_INVALID_DECAY);
        CHECK(ctx == sentinel, "*out untouched after decay %a", (double)bad_decays[i]);
    }

    uint32_t* many = calloc((size_t)EMA_MAX_SLOTS + 1, sizeof(uint32_t));
    if (CHECK(many != NULL, "allocating %u lengths", EMA_MAX_SLOTS + 1)) {
        CHECK_STATUS(ema_create(&ctx, 0.5f, 1, EMA_MAX_SLOTS + 1, many),
                     EMA_ERROR_TOO_MANY_SLOTS);
        CHECK_STATUS(ema_create(&ctx, 0.5f, 1, UINT32_MAX, many), EMA_ERROR_TOO_MANY_SLOTS);
        CHECK(ctx == sentinel, "*out untouched after too many slots");

        /* Exactly EMA_MAX_SLOTS (all empty) is allowed. */
        ema_ctx* full = NULL;
        if (CHECK_STATUS(ema_create(&full, 0.5f, 1, EMA_MAX_SLOTS, many), EMA_OK)) {
            CHECK(ema_slot_count(full) == EMA_MAX_SLOTS, "EMA_MAX_SLOTS slots");
            CHECK(ema_slot_length(full, EMA_MAX_SLOTS - 1) == 0, "last slot is empty");
            ema_destroy(full);
        }

        /* Petabytes of shadow: out of memory (or too large), *out untouched.
         * (ASan prints a "failed to allocate" warning for these on purpose.) */
        printf("expecting allocation failures for petabyte requests\n");
        for (uint32_t i = 0; i < EMA_MAX_SLOTS; i++) {
            many[i] = UINT32_MAX;
        }
        const ema_status status = ema_create(&ctx, 0.5f, 1, EMA_MAX_SLOTS, many);
        CHECK(status == EMA_ERROR_OUT_OF_MEMORY || status == EMA_ERROR_TOO_LARGE,
              "huge create gives out of memory or too large, got %d (%s)", (int)status,
              ema_status_string(status));
        CHECK(ctx == sentinel, "*out untouched after a failed allocation");
        free(many);
    }
}

static void test_create(void) {
    const uint32_t lengths[4] = {5, 0, 70, 1};
    ema_ctx* ctx = NULL;

    CHECK_STATUS(ema_create(&ctx, 0.9999f, 1, 4, lengths), EMA_OK);
    CHECK(ctx != NULL, "context created");
    CHECK(f32_bits(ema_decay(ctx)) == f32_bits(0.9999f), "ema_decay returns the float %a",
          (double)ema_decay(ctx));
    CHECK(ema_num_updates(ctx) == 0, "warmup on: num_updates 0");
    CHECK(ema_slot_count(ctx) == 4, "slot count");
    int lengths_ok = 1, zero_ok = 1, aligned_ok = 1;
    for (uint32_t i = 0; i < 4; i++) {
        lengths_ok &= ema_slot_length(ctx, i) == lengths[i];
        aligned_ok &= is_aligned64(ema_shadow(ctx, i));
        for (uint32_t j = 0; j < lengths[i]; j++) {
            zero_ok &= f32_bits(ema_shadow(ctx, i)[j]) == 0;
        }
    }
    CHECK(lengths_ok, "slot lengths");
    CHECK(zero_ok, "shadows start at +0");
    CHECK(aligned_ok, "every shadow (even an empty one) is non-NULL and 64-byte aligned");
    CHECK(ema_shadow(ctx, 4) == NULL && ema_shadow(ctx, UINT32_MAX) == NULL,
          "ema_shadow of a bad index is NULL");
    CHECK(ema_slot_length(ctx, 4) == 0 && ema_slot_length(ctx, UINT32_MAX) == 0,
          "ema_slot_length of a bad index is 0");
    CHECK(is_aligned64(ema_staging(ctx)), "staging window is 64-byte aligned");
    CHECK(ema_segment_table(ctx) != NULL, "segment table present");
    CHECK(ema_backup_count(ctx) == -1, "no backup at creation");
    CHECK(ema_backup(ctx, 0) == NULL && ema_backup_length(ctx, 0) == 0, "no backup arrays");
    CHECK(ema_byte_length(ctx) >= (5 + 70 + 1) * sizeof(float) +
                                       EMA_STAGING_FLOATS * sizeof(float) +
                                       EMA_SEGMENT_CAPACITY * sizeof(ema_segment),
          "ema_byte_length counts shadows, staging and table: %zu", ema_byte_length(ctx));
    /* The staging window and segment table are fully usable. */
    memset(ema_staging(ctx), 0, EMA_STAGING_FLOATS * sizeof(float));
    memset(ema_segment_table(ctx), 0, EMA_SEGMENT_CAPACITY * sizeof(ema_segment));
    ema_destroy(ctx);

    const float good_decays[] = {0.0f, -0.0f, 1.0f, 0.5f, 1e-45f, 0.99999994f};
    const int warmups[] = {0, 1, 2, -1};
    for (size_t d = 0; d < COUNT_OF(good_decays); d++) {
        for (size_t w = 0; w < COUNT_OF(warmups); w++) {
            ctx = NULL;
            CHECK_STATUS(ema_create(&ctx, good_decays[d], warmups[w], 4, lengths), EMA_OK);
            CHECK(f32_bits(ema_decay(ctx)) == f32_bits(good_decays[d]), "decay %a kept",
                  (double)good_decays[d]);
            CHECK(ema_num_updates(ctx) == (warmups[w] ? 0 : -1),
                  "use_num_updates=%d gives num_updates %d", warmups[w], ema_num_updates(ctx));
            ema_destroy(ctx);
        }
    }

    /* No slots at all; lengths may then be NULL. */
    ctx = NULL;
    CHECK_STATUS(ema_create(&ctx, 0.5f, 0, 0, NULL), EMA_OK);
    CHECK(ema_slot_count(ctx) == 0 && ema_shadow(ctx, 0) == NULL, "empty context");
    float decay_used = 0.0f;
    CHECK_STATUS(ema_update(ctx, NULL, &decay_used), EMA_OK);
    CHECK(decay_used == 0.5f, "update of an empty context uses the decay");
    CHECK_STATUS(ema_step_begin(ctx, NULL), EMA_OK);
    CHECK_STATUS(ema_step_apply(ctx, NULL, 0, NULL), EMA_OK);
    ema_destroy(ctx);
}

/* ------------------------------------------------------------------------
 * Counter
 * ---------------------------------------------------------------------- */

static void test_counter(void) {
    const uint32_t lengths[2] = {9, 4};
    ema_ctx* ctx = make_ctx(0.9999f, 1, 2, lengths);
    if (ctx == NULL) {
        return;
    }
    float p0[9], p1[4];
    fill_random(p0, 9);
    fill_random(p1, 4);
    const float* params[2] = {p0, p1};
    float decay_used = 0.0f;

    CHECK_FAILS(ctx, ema_set_num_updates(ctx, -2), EMA_ERROR_INVALID_COUNTER);
    CHECK_FAILS(ctx, ema_set_num_updates(ctx, INT32_MIN), EMA_ERROR_INVALID_COUNTER);

    /* The highest counter that is accepted; the next step would overflow. */
    CHECK_STATUS(ema_set_num_updates(ctx, INT32_MAX - 10), EMA_OK);
    CHECK(ema_num_updates(ctx) == INT32_MAX - 10, "counter set to INT32_MAX-10");
    decay_used = 123.0f;
    CHECK_FAILS(ctx, ema_update(ctx, params, &decay_used), EMA_ERROR_COUNTER_OVERFLOW);
    CHECK_FAILS(ctx, ema_step_begin(ctx, &decay_used), EMA_ERROR_COUNTER_OVERFLOW);
    CHECK(decay_used == 123.0f, "decay_used untouched after overflow");
    CHECK(ema_num_updates(ctx) == INT32_MAX - 10, "num_updates unchanged after overflow");
    /* The implementation refuses counters above INT32_MAX-10 outright. */
    CHECK_FAILS(ctx, ema_set_num_updates(ctx, INT32_MAX), EMA_ERROR_COUNTER_OVERFLOW);
    CHECK_FAILS(ctx, ema_set_num_updates(ctx, INT32_MAX - 9), EMA_ERROR_COUNTER_OVERFLOW);

    /* One below the limit still takes exactly one step. */
    CHECK_STATUS(ema_set_num_updates(ctx, INT32_MAX - 11), EMA_OK);
    CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
    CHECK(ema_num_updates(ctx) == INT32_MAX - 10, "counter advanced to INT32_MAX-10");
    CHECK(decay_used == 0.9999f, "decay at a huge counter is the base decay");
    CHECK_FAILS(ctx, ema_update(ctx, params, NULL), EMA_ERROR_COUNTER_OVERFLOW);

    /* Warmup off: the counter stays at -1 and the base decay is used. */
    CHECK_STATUS(ema_set_num_updates(ctx, -1), EMA_OK);
    CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
    CHECK(ema_num_updates(ctx) == -1 && decay_used == 0.9999f,
          "warmup off: num %d decay %a", ema_num_updates(ctx), (double)decay_used);
    CHECK_STATUS(ema_step_begin(ctx, &decay_used), EMA_OK);
    CHECK(ema_num_updates(ctx) == -1 && decay_used == 0.9999f, "warmup off, streamed");

    /* reset_num_updates turns warmup on, from -1 to 0. */
    CHECK_STATUS(ema_reset_num_updates(ctx), EMA_OK);
    CHECK(ema_num_updates(ctx) == 0, "reset gives 0");
    CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
    CHECK(ema_num_updates(ctx) == 1 && f32_bits(decay_used) == f32_bits(2.0f / 11.0f),
          "first step after reset: num %d decay %a", ema_num_updates(ctx), (double)decay_used);
    CHECK_STATUS(ema_step_begin(ctx, &decay_used), EMA_OK);
    CHECK(ema_num_updates(ctx) == 2 && f32_bits(decay_used) == f32_bits(3.0f / 12.0f),
          "second step (streamed): num %d decay %a", ema_num_updates(ctx), (double)decay_used);
    CHECK_STATUS(ema_set_num_updates(ctx, 41), EMA_OK);
    CHECK_STATUS(ema_reset_num_updates(ctx), EMA_OK);
    CHECK(ema_num_updates(ctx) == 0, "reset from 41 gives 0");
    ema_destroy(ctx);

    /* A context created without warmup. */
    ctx = make_ctx(0.25f, 0, 2, lengths);
    if (ctx != NULL) {
        CHECK(ema_num_updates(ctx) == -1, "warmup off at creation");
        for (int step = 0; step < 3; step++) {
            CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
        }
        CHECK(ema_num_updates(ctx) == -1 && decay_used == 0.25f, "warmup stays off");
        CHECK_STATUS(ema_reset_num_updates(ctx), EMA_OK);
        CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
        CHECK(ema_num_updates(ctx) == 1 && f32_bits(decay_used) == f32_bits(2.0f / 11.0f),
              "after reset, warmup on: min(0.25, 2/11) = 2/11, got %a", (double)decay_used);
        CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
        CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
        CHECK(ema_num_updates(ctx) == 3 && decay_used == 0.25f,
              "min(0.25, 4/13) = 0.25, got %a", (double)decay_used);
        ema_destroy(ctx);
    }
}

static void test_warmup_decay(void) {
    CHECK(f32_bits(ema_warmup_decay(0.9999f, 1)) == f32_bits(2.0f / 11.0f),
          "warmup_decay(0.9999, 1) = 2/11: %a", (double)ema_warmup_decay(0.9999f, 1));
    CHECK(f32_bits(ema_warmup_decay(0.9999f, 2)) == f32_bits(0.25f), "warmup_decay(.., 2)");
    CHECK(ema_warmup_decay(0.0f, 1) == 0.0f, "decay 0 stays 0");
    CHECK(ema_warmup_decay(1.0f, 1) == 2.0f / 11.0f, "decay 1 is limited by warmup");
    CHECK(ema_warmup_decay(0.1f, 1) == 0.1f, "a small decay is below the ratio");

    /* (1+n)/(10+n) in float32 reaches 0.9999f first at n = 89949: the real
     * threshold for 0.9999 is 89990, but 0.9999f is 0.99989998... and the
     * quotient rounds up to it once it is within half an ulp. */
    int32_t first = -1;
    int monotonic = 1;
    float previous = 0.0f;
    for (int32_t n = 1; n <= 100000; n++) {
        const float d = ema_warmup_decay(0.9999f, n);
        monotonic &= d >= previous && d <= 0.9999f;
        previous = d;
        if (first < 0 && f32_bits(d) == f32_bits(0.9999f)) {
            first = n;
        }
    }
    CHECK(monotonic, "warmup decay rises monotonically up to the base decay");
    CHECK(first == 89949, "0.9999f is first reached at n = %d", first);
    CHECK(ema_warmup_decay(0.9999f, 89948) < 0.9999f, "n = 89948 is below 0.9999f");
    CHECK(ema_warmup_decay(0.9999f, 89989) == 0.9999f &&
              ema_warmup_decay(0.9999f, 89990) == 0.9999f,
          "n = 89989 and 89990 give 0.9999f");
    /* Extremes of the counter do not overflow (UBSan watches). */
    CHECK(ema_warmup_decay(0.9999f, INT32_MAX) == 0.9999f, "INT32_MAX");
    CHECK(ema_warmup_decay(1.0f, INT32_MAX) == 1.0f, "INT32_MAX with decay 1");
}

/* ------------------------------------------------------------------------
 * ema_shadow_set
 * ---------------------------------------------------------------------- */

static void test_shadow_set(void) {
    const uint32_t lengths[3] = {10, 0, 3};
    ema_ctx* ctx = make_ctx(0.5f, 1, 3, lengths);
    if (ctx == NULL) {
        return;
    }
    float src[10];
    fill_random(src, 10);

    CHECK_FAILS(ctx, ema_shadow_set(ctx, 0, 0, NULL, 1), EMA_ERROR_NULL_ARGUMENT);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 3, 0, src, 1), EMA_ERROR_SLOT_INDEX);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, UINT32_MAX, 0, src, 0), EMA_ERROR_SLOT_INDEX);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 0, 0, src, 11), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 0, 5, src, 6), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 0, 11, src, 0), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 0, UINT32_MAX, src, 2), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 0, 2, src, UINT32_MAX), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 1, 0, src, 1), EMA_ERROR_OUT_OF_RANGE);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 1, 1, src, 0), EMA_ERROR_OUT_OF_RANGE);

    /* Empty copies are fine, even with a NULL source. */
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 1, 0, NULL, 0), EMA_OK);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 0, 10, src, 0), EMA_OK);

    float before[10];
    memcpy(before, ema_shadow(ctx, 0), sizeof(before));
    CHECK_STATUS(ema_shadow_set(ctx, 0, 4, src, 6), EMA_OK);
    const float* shadow = ema_shadow(ctx, 0);
    CHECK(memcmp(shadow, before, 4 * sizeof(float)) == 0, "elements before offset kept");
    CHECK(memcmp(shadow + 4, src, 6 * sizeof(float)) == 0, "elements copied at offset");
    CHECK_STATUS(ema_shadow_set(ctx, 2, 0, src, 3), EMA_OK);
    CHECK(memcmp(ema_shadow(ctx, 2), src, 3 * sizeof(float)) == 0, "whole slot copied");
    /* Copying a shadow onto itself (overlap) is allowed. */
    CHECK_STATUS(ema_shadow_set(ctx, 0, 1, ema_shadow(ctx, 0), 9), EMA_OK);
    CHECK(memcmp(ema_shadow(ctx, 0) + 5, src, 5 * sizeof(float)) == 0, "overlapping copy");
    ema_destroy(ctx);
}

/* ------------------------------------------------------------------------
 * ema_update and the streaming path
 * ---------------------------------------------------------------------- */

static void test_update_errors(void) {
    const uint32_t lengths[4] = {7, 0, 5, 3};
    ema_ctx* ctx = make_ctx(0.9f, 1, 4, lengths);
    if (ctx == NULL) {
        return;
    }
    float p0[7], p2[5], p3[3];
    fill_random(p0, 7);
    fill_random(p2, 5);
    fill_random(p3, 3);
    float decay_used = 123.0f;

    CHECK_FAILS(ctx, ema_update(ctx, NULL, &decay_used), EMA_ERROR_NULL_ARGUMENT);
    /* A NULL parameter for the last, non-empty slot: nothing may have moved. */
    const float* missing_last[4] = {p0, NULL, p2, NULL};
    CHECK_FAILS(ctx, ema_update(ctx, missing_last, &decay_used), EMA_ERROR_NULL_ARGUMENT);
    const float* missing_first[4] = {NULL, NULL, p2, p3};
    CHECK_FAILS(ctx, ema_update(ctx, missing_first, &decay_used), EMA_ERROR_NULL_ARGUMENT);
    CHECK(decay_used == 123.0f, "decay_used untouched on failure");

    /* An empty slot may have a NULL parameter; decay_used may be NULL. */
    const float* params[4] = {p0, NULL, p2, p3};
    CHECK_STATUS(ema_update(ctx, params, NULL), EMA_OK);
    CHECK(ema_num_updates(ctx) == 1, "one update");
    ema_destroy(ctx);
}

static void test_update_math(void) {
    const uint32_t lengths[2] = {6, 33};
    ema_ctx* ctx = make_ctx(0.9999f, 1, 2, lengths);
    if (ctx == NULL) {
        return;
    }
    float p0[6], p1[33], s0[6], s1[33];
    memcpy(s0, ema_shadow(ctx, 0), sizeof(s0));
    memcpy(s1, ema_shadow(ctx, 1), sizeof(s1));
    int all_ok = 1;
    for (int step = 1; step <= 20; step++) {
        fill_random(p0, 6);
        fill_random(p1, 33);
        const float* params[2] = {p0, p1};
        float decay_used = 0.0f;
        CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
        /* LitEma by hand, every operation rounded on its own. */
        const float decay =
            fminf(0.9999f, (float)(1 + step) / (float)(10 + step));
        volatile float weight = 1.0f - decay;
        for (int i = 0; i < 6; i++) {
            volatile float d = s0[i] - p0[i];
            volatile float m = weight * d;
            s0[i] = s0[i] - m;
        }
        for (int i = 0; i < 33; i++) {
            volatile float d = s1[i] - p1[i];
            volatile float m = weight * d;
            s1[i] = s1[i] - m;
        }
        all_ok &= f32_bits(decay_used) == f32_bits(decay) && ema_num_updates(ctx) == step &&
                  memcmp(ema_shadow(ctx, 0), s0, sizeof(s0)) == 0 &&
                  memcmp(ema_shadow(ctx, 1), s1, sizeof(s1)) == 0;
    }
    CHECK(all_ok, "20 updates match LitEma computed by hand");
    ema_destroy(ctx);
}

static void test_step_apply_errors(void) {
    const uint32_t lengths[4] = {10, 70000, 0, 4};
    ema_ctx* ctx = make_ctx(0.5f, 1, 4, lengths);
    if (ctx == NULL) {
        return;
    }
    float packed[32];
    fill_random(packed, 32);
    const ema_segment one = {0, 0, 4};

    /* Before any step. */
    CHECK_FAILS(ctx, ema_step_apply(ctx, &one, 1, packed), EMA_ERROR_NO_STEP);
    CHECK_FAILS(ctx, ema_step_apply(ctx, NULL, 0, NULL), EMA_ERROR_NO_STEP);
    /* A failed ema_step_begin opens no step either. */
    CHECK_STATUS(ema_set_num_updates(ctx, INT32_MAX - 10), EMA_OK);
    CHECK_STATUS(ema_step_begin(ctx, NULL), EMA_ERROR_COUNTER_OVERFLOW);
    CHECK_FAILS(ctx, ema_step_apply(ctx, &one, 1, packed), EMA_ERROR_NO_STEP);
    CHECK_STATUS(ema_set_num_updates(ctx, 0), EMA_OK);

    float decay_used = 0.0f;
    CHECK_STATUS(ema_step_begin(ctx, &decay_used), EMA_OK);
    CHECK(f32_bits(decay_used) == f32_bits(2.0f / 11.0f), "first streamed step decay");

    CHECK_FAILS(ctx, ema_step_apply(ctx, NULL, 1, packed), EMA_ERROR_NULL_ARGUMENT);
    CHECK_FAILS(ctx, ema_step_apply(ctx, &one, 1, NULL), EMA_ERROR_NULL_ARGUMENT);

    /* A good first segment and a bad later one: no shadow may change. */
    const ema_segment bad_slot[3] = {{0, 0, 4}, {3, 0, 4}, {4, 0, 1}};
    CHECK_FAILS(ctx, ema_step_apply(ctx, bad_slot, 3, packed), EMA_ERROR_SLOT_INDEX);
    const ema_segment huge_slot[2] = {{0, 0, 4}, {UINT32_MAX, 0, 0}};
    CHECK_FAILS(ctx, ema_step_apply(ctx, huge_slot, 2, packed), EMA_ERROR_SLOT_INDEX);
    const ema_segment past_end[3] = {{0, 0, 4}, {3, 0, 4}, {0, 6, 5}};
    CHECK_FAILS(ctx, ema_step_apply(ctx, past_end, 3, packed), EMA_ERROR_OUT_OF_RANGE);
    const ema_segment offset_past[2] = {{3, 0, 2}, {0, 11, 0}};
    CHECK_FAILS(ctx, ema_step_apply(ctx, offset_past, 2, packed), EMA_ERROR_OUT_OF_RANGE);
    const ema_segment wraps[2] = {{3, 0, 2}, {0, 1, UINT32_MAX}};
    CHECK_FAILS(ctx, ema_step_apply(ctx, wraps, 2, packed), EMA_ERROR_OUT_OF_RANGE);
    const ema_segment wraps_offset[2] = {{3, 0, 2}, {0, UINT32_MAX, 2}};
    CHECK_FAILS(ctx, ema_step_apply(ctx, wraps_offset, 2, packed), EMA_ERROR_OUT_OF_RANGE);
    const ema_segment empty_slot[2] = {{3, 0, 2}, {2, 0, 1}};
    CHECK_FAILS(ctx, ema_step_apply(ctx, empty_slot, 2, packed), EMA_ERROR_OUT_OF_RANGE);

    /* Through the context's own window and table. */
    float* staging = ema_staging(ctx);
    ema_segment* table = ema_segment_table(ctx);
    fill_random(staging, EMA_STAGING_FLOATS);
    table[0] = (ema_segment){0, 0, 10};
    table[1] = (ema_segment){1, 0, EMA_STAGING_FLOATS - 10 + 1}; /* one float too many */
    CHECK_FAILS(ctx, ema_step_apply(ctx, table, 2, staging), EMA_ERROR_SEGMENT_OVERFLOW);
    table[1] = (ema_segment){1, 0, 70000};
    CHECK_FAILS(ctx, ema_step_apply(ctx, table, 2, staging), EMA_ERROR_SEGMENT_OVERFLOW);
    /* A bad segment is still reported as such when the window also overflows. */
    table[2] = (ema_segment){9, 0, 1};
    {
        snapshot before = take_snapshot(ctx);
        const ema_status status = ema_step_apply(ctx, table, 3, staging);
        CHECK(status == EMA_ERROR_SLOT_INDEX || status == EMA_ERROR_SEGMENT_OVERFLOW,
              "bad slot plus overflow: got %d", (int)status);
        CHECK(unchanged(ctx, &before), "bad slot plus overflow changed nothing");
        free_snapshot(&before);
    }
    /* More entries than the table has. */
    for (uint32_t i = 0; i < EMA_SEGMENT_CAPACITY; i++) {
        table[i] = (ema_segment){3, i % 4, 0};
    }
    CHECK_FAILS(ctx, ema_step_apply(ctx, table, EMA_SEGMENT_CAPACITY + 1, staging),
                EMA_ERROR_SEGMENT_OVERFLOW);
    CHECK_FAILS(ctx, ema_step_apply(ctx, table, UINT32_MAX, staging),
                EMA_ERROR_SEGMENT_OVERFLOW);

    /* Exactly a full window and a full table are fine. */
    CHECK_STATUS(ema_step_apply(ctx, table, EMA_SEGMENT_CAPACITY, staging), EMA_OK);
    table[0] = (ema_segment){1, 0, EMA_STAGING_FLOATS};
    CHECK_STATUS(ema_step_apply(ctx, table, 1, staging), EMA_OK);
    /* A pointer partway into the window or table must still end inside it. */
    table[0] = (ema_segment){1, 0, EMA_STAGING_FLOATS - 1};
    CHECK_FAILS(ctx, ema_step_apply(ctx, table, 1, staging + 2), EMA_ERROR_SEGMENT_OVERFLOW);
    CHECK_STATUS(ema_step_apply(ctx, table, 1, staging + 1), EMA_OK);
    CHECK_FAILS(ctx, ema_step_apply(ctx, table + 1, EMA_SEGMENT_CAPACITY, staging),
                EMA_ERROR_SEGMENT_OVERFLOW);
    /* A caller-owned segment array may be longer than the table. */
    ema_segment* mine = malloc(5000 * sizeof(ema_segment));
    float* values = malloc(5000 * sizeof(float));
    if (CHECK(mine != NULL && values != NULL, "allocating 5000 segments")) {
        for (uint32_t i = 0; i < 5000; i++) {
            mine[i] = (ema_segment){1, 60000 + i, 1};
            values[i] = (float)i;
        }
        CHECK_STATUS(ema_step_apply(ctx, mine, 5000, values), EMA_OK);
    }
    free(mine);
    free(values);
    /* Zero segments with NULL pointers is a no-op. */
    CHECK_FAILS(ctx, ema_step_apply(ctx, NULL, 0, NULL), EMA_OK);
    CHECK_FAILS(ctx, ema_step_apply(ctx, table, 0, staging), EMA_OK);
    ema_destroy(ctx);
}

/* shadow - weight * (shadow - param), each operation rounded on its own
 * (-ffp-contract=off). A function that is not inlined, rather than volatile
 * temporaries in a loop: emcc 3.1.6 (LLVM 14) with -msimd128 vectorises such
 * a loop and re-reads a volatile temporary out of order (v128.load32_splat). */
static __attribute__((noinline)) float litema_step(float shadow, float param, float weight) {
    return shadow - weight * (shadow - param);
}

/* ema_step_apply_staged: the same checks and statuses as ema_step_apply, on
 * the context's own segment table and staging window. */
static void test_step_apply_staged_errors(void) {
    const uint32_t lengths[4] = {10, 70000, 0, 4};
    ema_ctx* ctx = make_ctx(0.5f, 1, 4, lengths);
    if (ctx == NULL) {
        return;
    }
    float* staging = ema_staging(ctx);
    ema_segment* table = ema_segment_table(ctx);
    fill_random(staging, EMA_STAGING_FLOATS);
    table[0] = (ema_segment){0, 0, 4};

    /* Before any step. */
    CHECK_FAILS(ctx, ema_step_apply_staged(ctx, 1), EMA_ERROR_NO_STEP);
    CHECK_FAILS(ctx, ema_step_apply_staged(ctx, 0), EMA_ERROR_NO_STEP);
    /* A failed ema_step_begin opens no step either. */
    CHECK_STATUS(ema_set_num_updates(ctx, INT32_MAX - 10), EMA_OK);
    CHECK_STATUS(ema_step_begin(ctx, NULL), EMA_ERROR_COUNTER_OVERFLOW);
    CHECK_FAILS(ctx, ema_step_apply_staged(ctx, 1), EMA_ERROR_NO_STEP);
    CHECK_STATUS(ema_set_num_updates(ctx, 0), EMA_OK);
    CHECK_STATUS(ema_step_begin(ctx, NULL), EMA_OK);

    /* A good first segment and a bad later one: no shadow may change. */
    static const struct {
        ema_segment segments[3];
        uint32_t count;
        ema_status status;
    } kBad[] = {
        {{{0, 0, 4}, {3, 0, 4}, {4, 0, 1}}, 3, EMA_ERROR_SLOT_INDEX},
        {{{0, 0, 4}, {UINT32_MAX, 0, 0}}, 2, EMA_ERROR_SLOT_INDEX},
        {{{0, 0, 4}, {3, 0, 4}, {0, 6, 5}}, 3, EMA_ERROR_OUT_OF_RANGE},
        {{{3, 0, 2}, {0, 11, 0}}, 2, EMA_ERROR_OUT_OF_RANGE},
        {{{3, 0, 2}, {0, 1, UINT32_MAX}}, 2, EMA_ERROR_OUT_OF_RANGE},
        {{{3, 0, 2}, {0, UINT32_MAX, 2}}, 2, EMA_ERROR_OUT_OF_RANGE},
        {{{3, 0, 2}, {2, 0, 1}}, 2, EMA_ERROR_OUT_OF_RANGE},
        /* The window holds EMA_STAGING_FLOATS floats: one more overflows. */
        {{{0, 0, 10}, {1, 0, EMA_STAGING_FLOATS - 10 + 1}}, 2, EMA_ERROR_SEGMENT_OVERFLOW},
        {{{0, 0, 10}, {1, 0, 70000}}, 2, EMA_ERROR_SEGMENT_OVERFLOW},
    };
    for (size_t b = 0; b < COUNT_OF(kBad); b++) {
        memcpy(table, kBad[b].segments, sizeof(kBad[b].segments));
        CHECK_FAILS(ctx, ema_step_apply_staged(ctx, kBad[b].count), kBad[b].status);
    }
    /* A bad segment is still reported as such when the window also overflows. */
    table[0] = (ema_segment){0, 0, 10};
    table[1] = (ema_segment){1, 0, 70000};
    table[2] = (ema_segment){9, 0, 1};
    {
        snapshot before = take_snapshot(ctx);
        const ema_status status = ema_step_apply_staged(ctx, 3);
        CHECK(status == EMA_ERROR_SLOT_INDEX || status == EMA_ERROR_SEGMENT_OVERFLOW,
              "staged: bad slot plus overflow: got %d", (int)status);
        CHECK(unchanged(ctx, &before), "staged: bad slot plus overflow changed nothing");
        free_snapshot(&before);
    }
    /* More entries than the table has. */
    for (uint32_t i = 0; i < EMA_SEGMENT_CAPACITY; i++) {
        table[i] = (ema_segment){3, i % 4, 0};
    }
    CHECK_FAILS(ctx, ema_step_apply_staged(ctx, EMA_SEGMENT_CAPACITY + 1),
                EMA_ERROR_SEGMENT_OVERFLOW);
    CHECK_FAILS(ctx, ema_step_apply_staged(ctx, UINT32_MAX), EMA_ERROR_SEGMENT_OVERFLOW);

    /* Exactly a full table and a full window are fine; zero segments are a
     * no-op. */
    CHECK_STATUS(ema_step_apply_staged(ctx, EMA_SEGMENT_CAPACITY), EMA_OK);
    table[0] = (ema_segment){1, 0, EMA_STAGING_FLOATS};
    CHECK_STATUS(ema_step_apply_staged(ctx, 1), EMA_OK);
    CHECK_FAILS(ctx, ema_step_apply_staged(ctx, 0), EMA_OK);

    /* The values come from the start of the window, in table order. */
    float expected[4];
    const float weight = 1.0f - 2.0f / 11.0f;
    for (uint32_t i = 0; i < 4; i++) {
        expected[i] = litema_step(ema_shadow(ctx, 3)[i], staging[3 - i], weight);
    }
    for (uint32_t i = 0; i < 4; i++) {
        table[i] = (ema_segment){3, 3 - i, 1};
    }
    CHECK_STATUS(ema_step_apply_staged(ctx, 4), EMA_OK);
    CHECK(same_floats(ema_shadow(ctx, 3), expected, 4), "staged: four one-float pieces in reverse");
    ema_destroy(ctx);
}

/* ema_update is a whole step: a stray ema_step_apply after it must not apply
 * that step's weight a second time. */
static void test_update_closes_step(void) {
    const uint32_t lengths[1] = {3};
    ema_ctx* ctx = make_ctx(0.5f, 1, 1, lengths);
    if (ctx == NULL) {
        return;
    }
    const float param[3] = {1.0f, 2.0f, 3.0f};
    const float* params[1] = {param};
    const ema_segment whole = {0, 0, 3};
    CHECK_STATUS(ema_step_begin(ctx, NULL), EMA_OK);
    CHECK_STATUS(ema_step_apply(ctx, &whole, 1, param), EMA_OK);
    CHECK_STATUS(ema_update(ctx, params, NULL), EMA_OK);
    CHECK_FAILS(ctx, ema_step_apply(ctx, &whole, 1, param), EMA_ERROR_NO_STEP);
    ema_segment_table(ctx)[0] = whole;
    CHECK_FAILS(ctx, ema_step_apply_staged(ctx, 1), EMA_ERROR_NO_STEP);
    ema_destroy(ctx);
}

/* Resident parameters: one whole-region kernel call must equal ema_update
 * over the same values, and the resident store/copy/restore round trip. */
static void test_resident(void) {
    const uint32_t lengths[5] = {1, 17, 0, 70001, 4};
    ema_ctx* resident = make_ctx(0.9f, 1, 5, lengths);
    ema_ctx* direct = make_ctx(0.9f, 1, 5, lengths);
    if (resident == NULL || direct == NULL) {
        ema_destroy(resident);
        ema_destroy(direct);
        return;
    }
    CHECK(!ema_is_resident(resident) && ema_param(resident, 0) == NULL, "not resident yet");
    CHECK_FAILS(resident, ema_update_resident(resident, NULL), EMA_ERROR_NOT_RESIDENT);
    CHECK_FAILS(resident, ema_copy_to_resident(resident), EMA_ERROR_NOT_RESIDENT);
    CHECK_FAILS(resident, ema_store_resident(resident), EMA_ERROR_NOT_RESIDENT);
    CHECK_FAILS(resident, ema_restore_resident(resident), EMA_ERROR_NOT_RESIDENT);
    CHECK_STATUS(ema_update_resident(NULL, NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(ema_resident_enable(resident), EMA_OK);
    CHECK_STATUS(ema_resident_enable(resident), EMA_OK);
    CHECK(ema_is_resident(resident), "resident after enable");
    CHECK(ema_param(resident, 5) == NULL, "bad slot gives NULL");
    for (uint32_t i = 0; i < 5; i++) {
        memcpy(ema_shadow(direct, i), ema_shadow(resident, i), lengths[i] * sizeof(float));
        CHECK(((uintptr_t)ema_param(resident, i) & 63u) == 0, "param %u is 64-byte aligned", i);
    }
    CHECK_FAILS(resident, ema_restore_resident(resident), EMA_ERROR_NOTHING_STORED);

    for (int step = 0; step < 4; step++) {
        const float* params[5];
        for (uint32_t i = 0; i < 5; i++) {
            fill_random(ema_param(resident, i), lengths[i]);
            params[i] = ema_param(resident, i);
        }
        float decay_resident = 0.0f, decay_direct = 0.0f;
        CHECK_STATUS(ema_update_resident(resident, &decay_resident), EMA_OK);
        CHECK_STATUS(ema_update(direct, params, &decay_direct), EMA_OK);
        CHECK(f32_bits(decay_resident) == f32_bits(decay_direct), "same decay at step %d", step);
    }
    for (uint32_t i = 0; i < 5; i++) {
        CHECK(memcmp(ema_shadow(resident, i), ema_shadow(direct, i), lengths[i] * sizeof(float)) == 0,
              "resident and direct shadows of slot %u are identical", i);
    }

    float* trained = malloc(70001 * sizeof(float));
    if (trained != NULL) {
        memcpy(trained, ema_param(resident, 3), 70001 * sizeof(float));
        CHECK_STATUS(ema_store_resident(resident), EMA_OK);
        CHECK_STATUS(ema_copy_to_resident(resident), EMA_OK);
        CHECK(memcmp(ema_param(resident, 3), ema_shadow(resident, 3), 70001 * sizeof(float)) == 0,
              "copy_to puts the shadow in the parameter");
        CHECK_STATUS(ema_restore_resident(resident), EMA_OK);
        CHECK(memcmp(ema_param(resident, 3), trained, 70001 * sizeof(float)) == 0,
              "restore puts the trained values back");
        free(trained);
    }
    CHECK(ema_byte_length(resident) > ema_byte_length(direct), "resident regions are counted");
    ema_destroy(resident);
    ema_destroy(direct);
}

static void test_update_vs_stream(void) {
    const uint32_t lengths[] = {0, 1, 5, 70001, 65536, 3, 100003, 17, 0, 65535};
    const uint32_t count = COUNT_OF(lengths);
    const struct {
        uint32_t window, table_cap, max_piece;
    } plans[] = {
        {EMA_STAGING_FLOATS, EMA_SEGMENT_CAPACITY, 0}, /* whole windows */
        {EMA_STAGING_FLOATS, EMA_SEGMENT_CAPACITY, 7}, /* fills the table first */
        {1000, 3, 0},
        {13, 5, 4},
        {EMA_STAGING_FLOATS, 1, 0}, /* one segment per apply */
    };
    float* params[COUNT_OF(lengths)];
    for (uint32_t i = 0; i < count; i++) {
        params[i] = malloc((lengths[i] ? lengths[i] : 1) * sizeof(float));
    }

    static const stream_apply kApplies[] = {STREAM_POINTERS, STREAM_STAGED};
    static const char* const kApplyNames[] = {"ema_step_apply", "ema_step_apply_staged"};
    for (size_t p = 0; p < COUNT_OF(plans); p++) {
        for (size_t a = 0; a < COUNT_OF(kApplies); a++) {
            ema_ctx* direct = make_ctx(0.999f, 1, count, lengths);
            ema_ctx* streamed = NULL;
            CHECK_STATUS(ema_create(&streamed, 0.999f, 1, count, lengths), EMA_OK);
            if (direct == NULL || streamed == NULL) {
                ema_destroy(direct);
                ema_destroy(streamed);
                continue;
            }
            for (uint32_t i = 0; i < count; i++) {
                CHECK_STATUS(ema_shadow_set(streamed, i, 0, ema_shadow(direct, i), lengths[i]),
                             EMA_OK);
            }
            int same = 1;
            const int steps = p == 0 ? 4 : 2;
            for (int step = 0; step < steps; step++) {
                for (uint32_t i = 0; i < count; i++) {
                    fill_random(params[i], lengths[i]);
                }
                float decay_direct = 0.0f, decay_streamed = 1.0f;
                CHECK_STATUS(ema_update(direct, (const float* const*)params, &decay_direct),
                             EMA_OK);
                CHECK_STATUS(stream_step(streamed, (const float* const*)params, plans[p].window,
                                         plans[p].table_cap, plans[p].max_piece, kApplies[a],
                                         &decay_streamed),
                             EMA_OK);
                same &= f32_bits(decay_direct) == f32_bits(decay_streamed) &&
                        ema_num_updates(direct) == ema_num_updates(streamed);
                for (uint32_t i = 0; i < count; i++) {
                    same &=
                        same_floats(ema_shadow(direct, i), ema_shadow(streamed, i), lengths[i]);
                }
            }
            CHECK(same, "plan %zu (window %u, table %u, pieces %u) through %s == ema_update", p,
                  plans[p].window, plans[p].table_cap, plans[p].max_piece, kApplyNames[a]);
            ema_destroy(direct);
            ema_destroy(streamed);
        }
    }
    for (uint32_t i = 0; i < count; i++) {
        free(params[i]);
    }
}

/* Packed values from caller memory (not the staging window), segments out of
 * order, a slot split in two applies. */
static void test_stream_own_buffers(void) {
    const uint32_t lengths[2] = {8, 3};
    ema_ctx* a = make_ctx(0.75f, 0, 2, lengths);
    ema_ctx* b = NULL;
    CHECK_STATUS(ema_create(&b, 0.75f, 0, 2, lengths), EMA_OK);
    if (a == NULL || b == NULL) {
        ema_destroy(a);
        ema_destroy(b);
        return;
    }
    for (uint32_t i = 0; i < 2; i++) {
        CHECK_STATUS(ema_shadow_set(b, i, 0, ema_shadow(a, i), lengths[i]), EMA_OK);
    }
    float p0[8], p1[3];
    fill_random(p0, 8);
    fill_random(p1, 3);
    const float* params[2] = {p0, p1};
    CHECK_STATUS(ema_update(a, params, NULL), EMA_OK);

    CHECK_STATUS(ema_step_begin(b, NULL), EMA_OK);
    const float packed1[6] = {p1[1], p1[2], p0[5], p0[6], p0[7], p0[0]};
    const ema_segment segs1[3] = {{1, 1, 2}, {0, 5, 3}, {0, 0, 1}};
    CHECK_STATUS(ema_step_apply(b, segs1, 3, packed1), EMA_OK);
    const float packed2[5] = {p0[1], p0[2], p0[3], p0[4], p1[0]};
    const ema_segment segs2[3] = {{0, 1, 4}, {1, 3, 0}, {1, 0, 1}};
    CHECK_STATUS(ema_step_apply(b, segs2, 3, packed2), EMA_OK);
    CHECK(same_floats(ema_shadow(a, 0), ema_shadow(b, 0), 8) &&
              same_floats(ema_shadow(a, 1), ema_shadow(b, 1), 3),
          "out-of-order segments from caller memory == ema_update");
    ema_destroy(a);
    ema_destroy(b);
}

/* ------------------------------------------------------------------------
 * Store and restore
 * ---------------------------------------------------------------------- */

static void test_store_restore(void) {
    const uint32_t slot_lengths[1] = {4};
    ema_ctx* ctx = make_ctx(0.5f, 1, 1, slot_lengths);
    if (ctx == NULL) {
        return;
    }
    float a[5], b[1], c[17];
    fill_random(a, 5);
    fill_random(c, 17);
    float a0[5], c0[17];
    memcpy(a0, a, sizeof(a));
    memcpy(c0, c, sizeof(c));
    const uint32_t lengths[3] = {5, 0, 17};
    float* arrays[3] = {a, b, c};
    const float* const_arrays[3] = {a, NULL, c}; /* empty array may be NULL */

    /* Restore before any store. */
    CHECK_FAILS(ctx, ema_restore(ctx, 3, arrays, lengths), EMA_ERROR_NOTHING_STORED);
    CHECK_FAILS(ctx, ema_restore(ctx, 0, NULL, NULL), EMA_ERROR_NOTHING_STORED);
    CHECK(memcmp(a, a0, sizeof(a)) == 0, "arrays untouched");

    /* Bad stores leave no backup behind. */
    CHECK_FAILS(ctx, ema_store(ctx, 3, NULL, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK_FAILS(ctx, ema_store(ctx, 3, const_arrays, NULL), EMA_ERROR_NULL_ARGUMENT);
    const float* missing[3] = {a, NULL, NULL};
    CHECK_FAILS(ctx, ema_store(ctx, 3, missing, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK_FAILS(ctx, ema_backup_prepare(ctx, 2, NULL), EMA_ERROR_NULL_ARGUMENT);
    CHECK_FAILS(ctx, ema_backup_prepare(ctx, EMA_MAX_SLOTS + 1, lengths),
                EMA_ERROR_TOO_MANY_SLOTS);
    CHECK(ema_backup_count(ctx) == -1, "still nothing stored");

    /* Round trip. */
    const size_t bytes_before = ema_byte_length(ctx);
    CHECK_STATUS(ema_store(ctx, 3, const_arrays, lengths), EMA_OK);
    CHECK(ema_backup_count(ctx) == 3, "three arrays stored");
    CHECK(ema_byte_length(ctx) >= bytes_before + (5 + 17) * sizeof(float),
          "byte length grew by the backup: %zu -> %zu", bytes_before, ema_byte_length(ctx));
    int backups_ok = 1;
    for (uint32_t i = 0; i < 3; i++) {
        backups_ok &= ema_backup_length(ctx, i) == lengths[i] && is_aligned64(ema_backup(ctx, i));
    }
    CHECK(backups_ok, "backup lengths and 64-byte alignment");
    CHECK(ema_backup(ctx, 3) == NULL && ema_backup_length(ctx, 3) == 0, "bad backup index");
    CHECK(memcmp(ema_backup(ctx, 0), a, sizeof(a)) == 0 &&
              memcmp(ema_backup(ctx, 2), c, sizeof(c)) == 0,
          "backup holds copies");

    fill_random(a, 5);
    fill_random(c, 17);
    float a1[5], c1[17];
    memcpy(a1, a, sizeof(a));
    memcpy(c1, c, sizeof(c));

    /* Wrong count or lengths: arrays untouched. */
    CHECK_FAILS(ctx, ema_restore(ctx, 2, arrays, lengths), EMA_ERROR_LENGTH_MISMATCH);
    CHECK_FAILS(ctx, ema_restore(ctx, 0, NULL, NULL), EMA_ERROR_LENGTH_MISMATCH);
    float* four[4] = {a, b, c, c};
    const uint32_t four_lengths[4] = {5, 0, 17, 17};
    CHECK_FAILS(ctx, ema_restore(ctx, 4, four, four_lengths), EMA_ERROR_LENGTH_MISMATCH);
    const uint32_t wrong_last[3] = {5, 0, 16};
    CHECK_FAILS(ctx, ema_restore(ctx, 3, arrays, wrong_last), EMA_ERROR_LENGTH_MISMATCH);
    const uint32_t wrong_middle[3] = {5, 1, 17};
    CHECK_FAILS(ctx, ema_restore(ctx, 3, arrays, wrong_middle), EMA_ERROR_LENGTH_MISMATCH);
    CHECK_FAILS(ctx, ema_restore(ctx, 3, NULL, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK_FAILS(ctx, ema_restore(ctx, 3, arrays, NULL), EMA_ERROR_NULL_ARGUMENT);
    float* missing_out[3] = {a, b, NULL};
    CHECK_FAILS(ctx, ema_restore(ctx, 3, missing_out, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK(memcmp(a, a1, sizeof(a)) == 0 && memcmp(c, c1, sizeof(c)) == 0,
          "failed restores left the arrays alone");

    float* null_empty[3] = {a, NULL, c};
    CHECK_FAILS(ctx, ema_restore(ctx, 3, null_empty, lengths), EMA_OK);
    CHECK(memcmp(a, a0, sizeof(a)) == 0 && memcmp(c, c0, sizeof(c)) == 0, "restored");
    fill_random(a, 5);
    CHECK_STATUS(ema_restore(ctx, 3, arrays, lengths), EMA_OK);
    CHECK(memcmp(a, a0, sizeof(a)) == 0, "restore can be repeated");

    /* A failed store keeps the previous backup. */
    CHECK_FAILS(ctx, ema_store(ctx, 3, missing, lengths), EMA_ERROR_NULL_ARGUMENT);
    CHECK_FAILS(ctx, ema_backup_prepare(ctx, 1, NULL), EMA_ERROR_NULL_ARGUMENT);
    uint32_t* huge = malloc((size_t)EMA_MAX_SLOTS * sizeof(uint32_t));
    if (CHECK(huge != NULL, "allocating lengths")) {
        for (uint32_t i = 0; i < EMA_MAX_SLOTS; i++) {
            huge[i] = UINT32_MAX;
        }
        snapshot before = take_snapshot(ctx);
        const ema_status status = ema_backup_prepare(ctx, EMA_MAX_SLOTS, huge);
        CHECK(status == EMA_ERROR_OUT_OF_MEMORY || status == EMA_ERROR_TOO_LARGE,
              "petabyte backup: got %d (%s)", (int)status, ema_status_string(status));
        CHECK(unchanged(ctx, &before), "failed backup_prepare kept the old backup");
        free_snapshot(&before);
        free(huge);
    }

    /* A second store replaces the first. */
    float d[2] = {7.0f, -7.0f};
    const float* second[1] = {d};
    const uint32_t second_lengths[1] = {2};
    CHECK_STATUS(ema_store(ctx, 1, second, second_lengths), EMA_OK);
    CHECK(ema_backup_count(ctx) == 1 && ema_backup_length(ctx, 0) == 2,
          "second store replaced the first");
    CHECK_FAILS(ctx, ema_restore(ctx, 3, arrays, lengths), EMA_ERROR_LENGTH_MISMATCH);
    float out[2] = {0.0f, 0.0f};
    float* outs[1] = {out};
    CHECK_STATUS(ema_restore(ctx, 1, outs, second_lengths), EMA_OK);
    CHECK(out[0] == 7.0f && out[1] == -7.0f, "second backup restored");

    /* A store of the same shape reuses the backup's memory (no allocation). */
    float* const reused = ema_backup(ctx, 0);
    const size_t bytes_with_backup = ema_byte_length(ctx);
    float e[2] = {1.5f, 2.5f};
    const float* third[1] = {e};
    CHECK_STATUS(ema_store(ctx, 1, third, second_lengths), EMA_OK);
    CHECK(ema_backup(ctx, 0) == reused && ema_byte_length(ctx) == bytes_with_backup,
          "same-shape store reused the backup");
    CHECK_STATUS(ema_restore(ctx, 1, outs, second_lengths), EMA_OK);
    CHECK(out[0] == 1.5f && out[1] == 2.5f, "reused backup holds the new values");

    /* Clear: nothing stored again, byte length back to where it was. */
    ema_backup_clear(ctx);
    CHECK(ema_backup_count(ctx) == -1, "cleared");
    CHECK(ema_backup(ctx, 0) == NULL, "no backup array after clear");
    CHECK_FAILS(ctx, ema_restore(ctx, 1, outs, second_lengths), EMA_ERROR_NOTHING_STORED);
    CHECK(ema_byte_length(ctx) == bytes_before, "byte length back to %zu", bytes_before);
    ema_backup_clear(ctx); /* twice is fine */

    /* count 0: present but empty. */
    CHECK_STATUS(ema_store(ctx, 0, NULL, NULL), EMA_OK);
    CHECK(ema_backup_count(ctx) == 0, "empty backup has count 0");
    CHECK_FAILS(ctx, ema_restore(ctx, 0, NULL, NULL), EMA_OK);
    CHECK_FAILS(ctx, ema_restore(ctx, 1, outs, second_lengths), EMA_ERROR_LENGTH_MISMATCH);
    ema_backup_clear(ctx);
    CHECK_STATUS(ema_backup_prepare(ctx, 0, NULL), EMA_OK);
    CHECK(ema_backup_count(ctx) == 0, "empty backup via prepare");

    /* Only zero-length arrays. */
    const uint32_t zeros[2] = {0, 0};
    const float* nothing[2] = {NULL, NULL};
    CHECK_STATUS(ema_store(ctx, 2, nothing, zeros), EMA_OK);
    CHECK(ema_backup_count(ctx) == 2 && ema_backup_length(ctx, 1) == 0, "two empty arrays");
    float* nothing_out[2] = {NULL, NULL};
    CHECK_STATUS(ema_restore(ctx, 2, nothing_out, zeros), EMA_OK);

    /* Prepare, fill through ema_backup, restore. */
    const uint32_t prep_lengths[2] = {3, 100};
    CHECK_STATUS(ema_backup_prepare(ctx, 2, prep_lengths), EMA_OK);
    CHECK(ema_backup_count(ctx) == 2 && is_aligned64(ema_backup(ctx, 0)) &&
              is_aligned64(ema_backup(ctx, 1)),
          "prepared backup");
    float big[100], small[3];
    fill_random(big, 100);
    fill_random(small, 3);
    memcpy(ema_backup(ctx, 0), small, sizeof(small));
    memcpy(ema_backup(ctx, 1), big, sizeof(big));
    float small_out[3], big_out[100];
    float* prep_out[2] = {small_out, big_out};
    CHECK_STATUS(ema_restore(ctx, 2, prep_out, prep_lengths), EMA_OK);
    CHECK(memcmp(small_out, small, sizeof(small)) == 0 && memcmp(big_out, big, sizeof(big)) == 0,
          "prepared backup restored");

    /* The backup is independent of the shadows and of updates. */
    const float* shadow_as_param[1] = {ema_shadow(ctx, 0)};
    CHECK_STATUS(ema_update(ctx, shadow_as_param, NULL), EMA_OK);
    CHECK(ema_backup_count(ctx) == 2, "update keeps the backup");
    ema_destroy(ctx); /* destroy with a backup present (ASan checks the frees) */
}

/* ------------------------------------------------------------------------
 * Zero-length slots
 * ---------------------------------------------------------------------- */

static void test_zero_length_slots(void) {
    const uint32_t lengths[3] = {0, 0, 0};
    ema_ctx* ctx = NULL;
    CHECK_STATUS(ema_create(&ctx, 0.9f, 1, 3, lengths), EMA_OK);
    if (ctx == NULL) {
        return;
    }
    CHECK(ema_slot_count(ctx) == 3 && ema_slot_length(ctx, 2) == 0, "three empty slots");
    const float* params[3] = {NULL, NULL, NULL};
    float decay_used = 0.0f;
    CHECK_STATUS(ema_update(ctx, params, &decay_used), EMA_OK);
    CHECK(ema_num_updates(ctx) == 1 && f32_bits(decay_used) == f32_bits(2.0f / 11.0f),
          "update of empty slots advances the counter");
    CHECK_STATUS(ema_shadow_set(ctx, 1, 0, NULL, 0), EMA_OK);
    CHECK_FAILS(ctx, ema_shadow_set(ctx, 1, 1, NULL, 0), EMA_ERROR_OUT_OF_RANGE);
    CHECK_STATUS(ema_step_begin(ctx, NULL), EMA_OK);
    const ema_segment segs[3] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}};
    const float dummy = 0.0f;
    CHECK_STATUS(ema_step_apply(ctx, segs, 3, &dummy), EMA_OK);
    CHECK_STATUS(ema_step_apply(ctx, segs, 3, ema_staging(ctx)), EMA_OK);
    CHECK_FAILS(ctx, ema_step_apply(ctx, segs, 3, NULL), EMA_ERROR_NULL_ARGUMENT);
    memcpy(ema_segment_table(ctx), segs, sizeof(segs));
    CHECK_STATUS(ema_step_apply_staged(ctx, 3), EMA_OK);
    ema_destroy(ctx);
}

int main(void) {
    check_begin("test_api");
    seed_random(0x9e3779b9u);
    test_version();
    test_build();
    test_abi_values();
    test_status_strings();
    test_null_context();
    test_create_errors();
    test_create();
    test_counter();
    test_warmup_decay();
    test_shadow_set();
    test_update_errors();
    test_update_math();
    test_step_apply_errors();
    test_step_apply_staged_errors();
    test_update_closes_step();
    test_resident();
    test_update_vs_stream();
    test_stream_own_buffers();
    test_store_restore();
    test_zero_length_slots();
    return check_end();
}
