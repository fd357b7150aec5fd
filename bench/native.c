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

#include "ema.h"
#include "ema_stream.h"

#define BENCH_PROGRAM "bench_native"
#include "bench_util.h"

#define DECAY 0.9999f
#define MAX_LINE 256

static float** copies;      /* memcpy destinations */
static ema_ctx* ctx_copyin; /* updated through the staging window */
static ema_ctx* ctx_direct; /* updated with ema_update */

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
    uint64_t h = FNV1A64_OFFSET;
    for (uint32_t t = 0; t < slot_count; t++) h = fnv1a64(h, ema_shadow(ctx, t), lengths[t]);
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

/* compare.mjs's touchParams(): one element per tensor moves by 2^-10. */
static void touch_params(const void* path) {
    (void)path;
    touch_arrays(params);
    iteration++;
}

static float run_once(const void* path) {
    switch (*(const int*)path) {
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
    time_samples(touch_params, run_once, &path, warmup, reps);
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_native SPEC SEED   (commands on stdin; see bench/native.c)\n");
        return 2;
    }
    init_params(argv[1], argv[2]);
    copies = alloc_slot_pointers();
    for (uint32_t t = 0; t < slot_count; t++) copies[t] = alloc_floats(lengths[t]);
    ctx_copyin = create_context();
    ctx_direct = create_context();

    printf("{\"ready\":true,\"tensors\":%u,\"params\":%llu,\"staging\":%u}\n", slot_count,
           (unsigned long long)param_total(), (unsigned)EMA_STAGING_FLOATS);
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
