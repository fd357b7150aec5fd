/*
 * bench/native.c - the ema-wasm C core built natively (gcc -O3 -march=native
 * -ffp-contract=off), timed the way bench/compare.mjs times the WebAssembly
 * builds. It is driven by bench/compare.mjs as a child process over a tiny
 * line protocol, so that its timings interleave with the JS ones round by
 * round (a burst of load on the VM hits every variant alike).
 *
 *   bench_native SPEC SEED
 *
 * SPEC lists the tensor lengths as comma-separated `length` or `length*count`
 * items (e.g. `131072*8`); SEED is the xorshift32 seed compare.mjs uses, so
 * the parameters hold the very same float32 values as on the JS side.
 *
 * Commands, one per line on stdin; one JSON line answers each on stdout:
 *
 *   verify STEPS      STEPS rounds of "re-randomize every parameter, one
 *                     update" on two fresh-from-the-start contexts, one per
 *                     path below; answers the FNV-1a 64 hash of each path's
 *                     shadow bytes (all slots in order) and the decays used.
 *                     Must come first: it consumes the random sequence
 *                     exactly as compare.mjs does.
 *   time PATH W R     W untimed then R timed operations of PATH:
 *                       copyin  ema_step_begin, then memcpy every parameter
 *                               into the staging window in pieces of up to
 *                               64K floats (several small ones per window,
 *                               described in the segment table) and one
 *                               ema_step_apply per filled window: what
 *                               js/ema.js's update() does through Wasm;
 *                       direct  ema_update() with direct parameter pointers;
 *                       memcpy  memcpy of every parameter into a same-size
 *                               array (the bandwidth floor for 8 bytes/elem).
 *                     Before every operation one element of every parameter
 *                     changes (outside timing), as in compare.mjs.
 *                     Answers {"samples": [ms, ...]}.
 *   quit
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ema.h"
#include "ema_stream.h"

#define DECAY 0.9999f
#define MAX_LINE 256

static uint32_t slot_count;
static uint32_t* lengths;
static float** params;      /* the "training" parameters */
static float** copies;      /* memcpy destinations */
static ema_ctx* ctx_copyin; /* updated through the staging window */
static ema_ctx* ctx_direct; /* updated with ema_update */
static uint32_t rng_state;
static uint64_t iteration;
static volatile float sink;

static void die(const char* what) {
    fprintf(stderr, "bench_native: %s\n", what);
    exit(2);
}

static void check(ema_status status, const char* what) {
    if (status != EMA_OK) {
        fprintf(stderr, "bench_native: %s failed: %s (status %d)\n", what,
                ema_status_string(status), (int)status);
        exit(2);
    }
}

/* xorshift32 and the mapping to [-1, 1) of compare.mjs's makeRandom(). */
static float next_random(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return (float)((int32_t)(x >> 8) - 8388608) / 8388608.0f;
}

static void fill_random(void) {
    for (uint32_t t = 0; t < slot_count; t++) {
        for (uint32_t i = 0; i < lengths[t]; i++) {
            params[t][i] = next_random();
        }
    }
}

/* compare.mjs's touchParams(): one element per tensor moves by 2^-10. */
static void touch_params(void) {
    for (uint32_t t = 0; t < slot_count; t++) {
        if (lengths[t] == 0) continue;
        const uint64_t index = (iteration * 7919u) % lengths[t];
        params[t][index] = params[t][index] + 1.0f / 1024.0f;
    }
    iteration++;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void parse_spec(const char* spec) {
    uint32_t capacity = 64;
    lengths = malloc(capacity * sizeof(uint32_t));
    if (lengths == NULL) die("out of memory");
    const char* p = spec;
    while (*p != '\0') {
        char* end;
        const unsigned long length = strtoul(p, &end, 10);
        if (end == p || length > UINT32_MAX) die("bad SPEC");
        unsigned long count = 1;
        p = end;
        if (*p == '*') {
            count = strtoul(p + 1, &end, 10);
            if (end == p + 1) die("bad SPEC");
            p = end;
        }
        for (unsigned long k = 0; k < count; k++) {
            if (slot_count == capacity) {
                capacity *= 2;
                lengths = realloc(lengths, capacity * sizeof(uint32_t));
                if (lengths == NULL) die("out of memory");
            }
            lengths[slot_count++] = (uint32_t)length;
        }
        if (*p == ',') p++;
        else if (*p != '\0') die("bad SPEC");
    }
}

static float* alloc_floats(uint32_t n) {
    const size_t bytes = (((size_t)n * sizeof(float)) + 63u) & ~(size_t)63u;
    float* block = aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (block == NULL) die("out of memory");
    memset(block, 0, bytes == 0 ? 64 : bytes);
    return block;
}

static ema_ctx* create_context(void) {
    ema_ctx* ctx = NULL;
    check(ema_create(&ctx, DECAY, 1, slot_count, lengths), "ema_create");
    for (uint32_t t = 0; t < slot_count; t++) {
        check(ema_shadow_set(ctx, t, 0, params[t], lengths[t]), "ema_shadow_set");
    }
    return ctx;
}

/* One update as js/ema.js does it: pack, describe, apply per full window. */
static float update_copyin(ema_ctx* ctx) {
    float decay = 0.0f;
    check(ema_step_begin(ctx, &decay), "ema_step_begin");
    float* staging = ema_staging(ctx);
    ema_segment* segments = ema_segment_table(ctx);
    uint32_t staged = 0, segment_count = 0;
    for (uint32_t slot = 0; slot < slot_count; slot++) {
        const uint32_t length = lengths[slot];
        for (uint32_t offset = 0; offset < length;) {
            uint32_t count = length - offset;
            if (count > EMA_STAGING_FLOATS - staged) count = EMA_STAGING_FLOATS - staged;
            memcpy(staging + staged, params[slot] + offset, (size_t)count * sizeof(float));
            segments[segment_count].slot = slot;
            segments[segment_count].offset = offset;
            segments[segment_count].count = count;
            segment_count++;
            staged += count;
            offset += count;
            if (staged == EMA_STAGING_FLOATS || segment_count == EMA_SEGMENT_CAPACITY) {
                check(ema_step_apply(ctx, segments, segment_count, staging), "ema_step_apply");
                staged = 0;
                segment_count = 0;
            }
        }
    }
    if (segment_count > 0) {
        check(ema_step_apply(ctx, segments, segment_count, staging), "ema_step_apply");
    }
    return decay;
}

static float update_direct(ema_ctx* ctx) {
    float decay = 0.0f;
    check(ema_update(ctx, (const float* const*)params, &decay), "ema_update");
    return decay;
}

static float copy_all(void) {
    for (uint32_t t = 0; t < slot_count; t++) {
        memcpy(copies[t], params[t], (size_t)lengths[t] * sizeof(float));
    }
    return slot_count > 0 && lengths[0] > 0 ? copies[0][0] : 0.0f;
}

/* FNV-1a 64 over the bytes of every shadow, slot by slot (little-endian). */
static uint64_t shadow_hash(ema_ctx* ctx) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t t = 0; t < slot_count; t++) {
        const unsigned char* bytes = (const unsigned char*)ema_shadow(ctx, t);
        const size_t n = (size_t)lengths[t] * sizeof(float);
        for (size_t i = 0; i < n; i++) {
            h ^= bytes[i];
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static void print_decays(const float* decays, int steps) {
    printf("[");
    for (int s = 0; s < steps; s++) printf("%s%.9g", s ? "," : "", (double)decays[s]);
    printf("]");
}

static void command_verify(int steps) {
    float* decays_copyin = calloc((size_t)steps + 1, sizeof(float));
    float* decays_direct = calloc((size_t)steps + 1, sizeof(float));
    if (decays_copyin == NULL || decays_direct == NULL) die("out of memory");
    for (int s = 0; s < steps; s++) {
        fill_random();
        decays_copyin[s] = update_copyin(ctx_copyin);
        decays_direct[s] = update_direct(ctx_direct);
    }
    printf("{\"copyin\":\"%016llx\",\"direct\":\"%016llx\",\"decaysCopyin\":",
           (unsigned long long)shadow_hash(ctx_copyin), (unsigned long long)shadow_hash(ctx_direct));
    print_decays(decays_copyin, steps);
    printf(",\"decaysDirect\":");
    print_decays(decays_direct, steps);
    printf("}\n");
    fflush(stdout);
    free(decays_copyin);
    free(decays_direct);
}

static float run_once(int path) {
    switch (path) {
        case 0: return update_copyin(ctx_copyin);
        case 1: return update_direct(ctx_direct);
        default: return copy_all();
    }
}

static void command_time(const char* path_name, int warmup, int reps) {
    int path;
    if (strcmp(path_name, "copyin") == 0) path = 0;
    else if (strcmp(path_name, "direct") == 0) path = 1;
    else if (strcmp(path_name, "memcpy") == 0) path = 2;
    else {
        printf("{\"error\":\"unknown path '%s'\"}\n", path_name);
        fflush(stdout);
        return;
    }
    for (int i = 0; i < warmup; i++) {
        touch_params();
        sink += run_once(path);
    }
    double* samples = calloc((size_t)reps + 1, sizeof(double));
    if (samples == NULL) die("out of memory");
    for (int i = 0; i < reps; i++) {
        touch_params();
        const double start = now_ms();
        sink += run_once(path);
        samples[i] = now_ms() - start;
    }
    printf("{\"samples\":[");
    for (int i = 0; i < reps; i++) printf("%s%.6f", i ? "," : "", samples[i]);
    printf("]}\n");
    fflush(stdout);
    free(samples);
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_native SPEC SEED   (commands on stdin; see bench/native.c)\n");
        return 2;
    }
    parse_spec(argv[1]);
    rng_state = (uint32_t)strtoul(argv[2], NULL, 10);
    if (rng_state == 0) rng_state = 1;

    params = malloc((slot_count ? slot_count : 1) * sizeof(float*));
    copies = malloc((slot_count ? slot_count : 1) * sizeof(float*));
    if (params == NULL || copies == NULL) die("out of memory");
    for (uint32_t t = 0; t < slot_count; t++) {
        params[t] = alloc_floats(lengths[t]);
        copies[t] = alloc_floats(lengths[t]);
    }
    fill_random();
    ctx_copyin = create_context();
    ctx_direct = create_context();

    uint64_t total = 0;
    for (uint32_t t = 0; t < slot_count; t++) total += lengths[t];
    printf("{\"ready\":true,\"tensors\":%u,\"params\":%llu,\"staging\":%u}\n", slot_count,
           (unsigned long long)total, (unsigned)EMA_STAGING_FLOATS);
    fflush(stdout);

    char line[MAX_LINE];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char verb[32], arg[32];
        int a = 0, b = 0;
        const int fields = sscanf(line, "%31s %31s %d %d", verb, arg, &a, &b);
        if (fields >= 1 && strcmp(verb, "quit") == 0) break;
        if (fields >= 2 && strcmp(verb, "verify") == 0) {
            command_verify(atoi(arg));
        } else if (fields == 4 && strcmp(verb, "time") == 0) {
            command_time(arg, a, b);
        } else {
            printf("{\"error\":\"bad command\"}\n");
            fflush(stdout);
        }
    }
    ema_destroy(ctx_copyin);
    ema_destroy(ctx_direct);
    return sink == 12345.0f ? 1 : 0;
}
