/*
 * bench/bench_util.h - what the native benchmark programs bench/native.c and
 * bench/profiles.c share: their parameters (the tensor lengths of SPEC, the
 * float32 values of bench/lib/params.mjs's xorshift32 stream), errors that
 * end the program, and the timed loop of their `time` command.
 *
 * Each program is one translation unit that includes this header once, after
 * defining BENCH_PROGRAM (its name, for messages); the state below is that
 * program's.
 */
#ifndef EMA_BENCH_UTIL_H
#define EMA_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ema.h"

#ifndef BENCH_PROGRAM
#error "define BENCH_PROGRAM (the program's name) before including bench_util.h"
#endif

static uint32_t slot_count;
static uint32_t* lengths;
static float** params; /* the "training" parameters */
static uint32_t rng_state;
static uint64_t iteration; /* numbers the touches: touch_arrays() moves a different element each time */
static volatile float sink;

static void die(const char* what) {
    fprintf(stderr, BENCH_PROGRAM ": %s\n", what);
    exit(2);
}

static void check(ema_status status, const char* what) {
    if (status != EMA_OK) {
        fprintf(stderr, BENCH_PROGRAM ": %s failed: %s (status %d)\n", what,
                ema_status_string(status), (int)status);
        exit(2);
    }
}

/* xorshift32 and the mapping to [-1, 1) of params.mjs's makeRandom(). */
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

/* params.mjs's touchArrays(): one element per tensor moves by 2^-10 (the
 * caller advances `iteration`). */
static void touch_arrays(float* const* arrays) {
    for (uint32_t t = 0; t < slot_count; t++) {
        if (lengths[t] == 0) continue;
        const uint64_t index = (iteration * 7919u) % lengths[t];
        arrays[t][index] = arrays[t][index] + 1.0f / 1024.0f;
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* SPEC: comma-separated `length` or `length*count` items, into lengths. */
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

/* n zeroed floats, 64-byte aligned. */
static float* alloc_floats(uint32_t n) {
    const size_t bytes = (((size_t)n * sizeof(float)) + 63u) & ~(size_t)63u;
    float* block = aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (block == NULL) die("out of memory");
    memset(block, 0, bytes == 0 ? 64 : bytes);
    return block;
}

/* An array of one pointer per slot (at least one). */
static float** alloc_slot_pointers(void) {
    float** pointers = malloc((slot_count ? slot_count : 1) * sizeof(float*));
    if (pointers == NULL) die("out of memory");
    return pointers;
}

/* The SPEC and SEED arguments: lengths, then params allocated and drawn. */
static void init_params(const char* spec, const char* seed) {
    parse_spec(spec);
    rng_state = (uint32_t)strtoul(seed, NULL, 10);
    if (rng_state == 0) rng_state = 1;
    params = alloc_slot_pointers();
    for (uint32_t t = 0; t < slot_count; t++) params[t] = alloc_floats(lengths[t]);
    fill_random();
}

static uint64_t param_total(void) {
    uint64_t total = 0;
    for (uint32_t t = 0; t < slot_count; t++) total += lengths[t];
    return total;
}

/* FNV-1a 64 of hash `h` continued over the bytes of n floats (little-endian);
 * start from FNV1A64_OFFSET. */
#define FNV1A64_OFFSET 0xcbf29ce484222325ull
static uint64_t fnv1a64(uint64_t h, const float* values, uint32_t n) {
    const unsigned char* bytes = (const unsigned char*)values;
    const size_t size = (size_t)n * sizeof(float);
    for (size_t i = 0; i < size; i++) {
        h ^= bytes[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The `time` command's loop: `warmup` untimed then `reps` timed calls of
 * run(what), each after touch(what) outside timing; answers
 * {"samples": [ms, ...]} on stdout. */
static void time_samples(void (*touch)(const void*), float (*run)(const void*), const void* what,
                         int warmup, int reps) {
    for (int i = 0; i < warmup; i++) {
        touch(what);
        sink += run(what);
    }
    double* samples = calloc((size_t)reps + 1, sizeof(double));
    if (samples == NULL) die("out of memory");
    for (int i = 0; i < reps; i++) {
        touch(what);
        const double start = now_ms();
        sink += run(what);
        samples[i] = now_ms() - start;
    }
    printf("{\"samples\":[");
    for (int i = 0; i < reps; i++) printf("%s%.6f", i ? "," : "", samples[i]);
    printf("]}\n");
    fflush(stdout);
    free(samples);
}

#endif /* EMA_BENCH_UTIL_H */
