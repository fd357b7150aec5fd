/*
 * bench/threads.c - one EMA step split across OpenMP threads, in the C core
 * built natively: the native baseline of the threads build (js/threads.js),
 * whose workers make the same two calls on shared Wasm memory.
 *
 *   bench_threads [--params 16M,64M] [--threads 1,2] [--repeats 20]
 *
 * For each parameter count: TENSORS equal float32 tensors holding
 * bench_util.h's values (the xorshift32 stream of bench/lib/params.mjs), a
 * LitEma of decay 0.9999 with warmup (the default schedule), and two ways of
 * sharing one update among the threads:
 *
 *   resident  ema_resident_step_begin_at; the parameter region's floats
 *             (ema_resident_floats) cut into one 64-float-aligned range per
 *             thread, each applied with ema_resident_apply_range under
 *             `omp parallel for schedule(static)`; ema_resident_step_end.
 *   copy-in   the parameters in TENSORS separately allocated arrays (the
 *             caller's); the step opened once (ema_step_begin_at), then
 *             whole windows of EMA_STAGING_FLOATS floats, cut as
 *             js/boundary.js packs the staging window (several small tensors
 *             share a window, a large one spans windows), shared out by
 *             `omp parallel for schedule(static)`: a thread copies its window
 *             into its own 64-byte aligned staging buffer and applies it with
 *             ema_step_apply_window and the window's segment table. The cuts
 *             never change, so the tables are planned once per model.
 *
 * Before anything is timed, both ways at every thread count above one (at
 * least 2) are checked against the one-call update at one thread
 * (ema_update_resident_at, ema_update_at) over VERIFY_STEPS steps of fresh
 * parameters: the shadows must be bit-identical, or the program exits with
 * status 1. Then, for each way and thread count, WARMUP untimed and
 * --repeats timed updates, one element of every tensor moved before each,
 * outside timing (bench/native.c's touch). One JSON line per row on stdout:
 *
 *   {"work":"resident","params":16777216,"threads":2,"medianMs":…,"minMs":…,"samples":20}
 *
 * Built by CMake (target bench_threads: -O3 -march=native, the core's
 * exactness flags, OpenMP); bench/lib/threads-native.mjs builds and runs it.
 */
#define _POSIX_C_SOURCE 200809L

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ema.h"
#include "ema_stream.h"

#define BENCH_PROGRAM "bench_threads"
#include "bench_util.h"

#define TENSORS 64u
#define DECAY 0.9999f
#define SEED "1"
#define WARMUP 3
#define VERIFY_STEPS 2
#define RANGE_ALIGN 64u /* floats: a range starts on a cache line of every region */
#define MAX_LIST 16

static const char* const USAGE =
    "usage: bench_threads [--params 16M,64M] [--threads 1,2] [--repeats 20]\n"
    "  --params LIST   parameter counts (K = 2^10, M = 2^20), each a multiple of 64,\n"
    "                  in 64 equal float32 tensors\n"
    "  --threads LIST  OpenMP thread counts (omp_set_num_threads)\n"
    "  --repeats N     timed updates per row, after 3 untimed ones\n"
    "One JSON line per row on stdout: work (resident, copy-in), params, threads,\n"
    "medianMs, minMs, samples. Exits 1 when a split step is not bit-identical to\n"
    "the one-call update. See bench/threads.c.\n";

/* ------------------------------------------------------------------------
 * The windows of the copy-in way
 * ---------------------------------------------------------------------- */

typedef struct window {
    uint32_t first; /* its segments: plan_segments[first, first + count) */
    uint32_t count;
} window;

static ema_segment* plan_segments;
static window* plan_windows;
static uint32_t window_count;
static float** stagings; /* one staging buffer per thread */

/* js/boundary.js's #stage: pieces packed one after the other, a window
 * closed when its floats or its table are full. */
static void plan_windows_of_model(void) {
    uint32_t segment_capacity = 0;
    for (uint32_t t = 0; t < slot_count; t++) {
        segment_capacity += lengths[t] / EMA_STAGING_FLOATS + 2;
    }
    free(plan_segments);
    free(plan_windows);
    plan_segments = malloc((size_t)segment_capacity * sizeof(ema_segment));
    plan_windows = malloc((size_t)segment_capacity * sizeof(window));
    if (plan_segments == NULL || plan_windows == NULL) die("out of memory");
    window_count = 0;
    uint32_t segment_count = 0, staged = 0;
    window* open = NULL;
    for (uint32_t slot = 0; slot < slot_count; slot++) {
        for (uint32_t offset = 0; offset < lengths[slot];) {
            if (open == NULL) {
                open = &plan_windows[window_count++];
                *open = (window){segment_count, 0};
                staged = 0;
            }
            uint32_t count = lengths[slot] - offset;
            if (count > EMA_STAGING_FLOATS - staged) count = EMA_STAGING_FLOATS - staged;
            plan_segments[segment_count++] = (ema_segment){slot, offset, count};
            open->count++;
            staged += count;
            offset += count;
            if (staged == EMA_STAGING_FLOATS || open->count == EMA_SEGMENT_CAPACITY) open = NULL;
        }
    }
}

/* ------------------------------------------------------------------------
 * The updates
 * ---------------------------------------------------------------------- */

static float update_resident(ema_ctx* ctx) {
    ema_step_info info;
    check(ema_resident_step_begin_at(ctx, EMA_NO_STEP, &info), "ema_resident_step_begin_at");
    const size_t floats = ema_resident_floats(ctx);
    const int ranges = omp_get_max_threads();
    size_t range = (floats + (size_t)ranges - 1) / (size_t)ranges;
    range = (range + RANGE_ALIGN - 1) / RANGE_ALIGN * RANGE_ALIGN;
    int failed = 0;
#pragma omp parallel for schedule(static) reduction(|| : failed)
    for (int r = 0; r < ranges; r++) {
        const size_t begin = (size_t)r * range < floats ? (size_t)r * range : floats;
        const size_t end = floats - begin > range ? begin + range : floats;
        failed = failed || ema_resident_apply_range(ctx, begin, end) != EMA_OK;
    }
    if (failed) die("ema_resident_apply_range failed");
    check(ema_resident_step_end(ctx), "ema_resident_step_end");
    return (float)info.decay;
}

static float update_copyin(ema_ctx* ctx) {
    ema_step_info info;
    check(ema_step_begin_at(ctx, EMA_NO_STEP, &info), "ema_step_begin_at");
    int failed = 0;
#pragma omp parallel for schedule(static) reduction(|| : failed)
    for (uint32_t w = 0; w < window_count; w++) {
        float* staging = stagings[omp_get_thread_num()];
        const ema_segment* segments = plan_segments + plan_windows[w].first;
        float* at = staging;
        for (uint32_t s = 0; s < plan_windows[w].count; s++) {
            memcpy(at, params[segments[s].slot] + segments[s].offset, (size_t)segments[s].count * sizeof(float));
            at += segments[s].count;
        }
        failed = failed || ema_step_apply_window(ctx, segments, plan_windows[w].count, staging,
                                                 EMA_STAGING_FLOATS) != EMA_OK;
    }
    if (failed) die("ema_step_apply_window failed");
    return (float)info.decay;
}

/* ------------------------------------------------------------------------
 * Contexts and the check
 * ---------------------------------------------------------------------- */

/* A LitEma whose shadows start as the parameters (LitEma copies them);
 * resident ones get the parameters into their region. */
static ema_ctx* create_context(int resident) {
    ema_ctx* ctx = NULL;
    check(ema_create(&ctx, DECAY, 1, slot_count, lengths), "ema_create");
    if (resident) check(ema_resident_enable(ctx), "ema_resident_enable");
    for (uint32_t t = 0; t < slot_count; t++) {
        check(ema_shadow_set(ctx, t, 0, params[t], lengths[t]), "ema_shadow_set");
        if (resident) memcpy(ema_param(ctx, t), params[t], (size_t)lengths[t] * sizeof(float));
    }
    return ctx;
}

static void params_into_region(ema_ctx* ctx) {
    for (uint32_t t = 0; t < slot_count; t++) {
        memcpy(ema_param(ctx, t), params[t], (size_t)lengths[t] * sizeof(float));
    }
}

static int same_shadows(ema_ctx* a, ema_ctx* b) {
    for (uint32_t t = 0; t < slot_count; t++) {
        if (memcmp(ema_shadow(a, t), ema_shadow(b, t), (size_t)lengths[t] * sizeof(float)) != 0) return 0;
    }
    return 1;
}

/* VERIFY_STEPS steps of fresh parameters per thread count, split (on
 * `resident` and `copyin`) against one call at one thread (on fresh
 * contexts); exits 1 at the first difference. */
static void verify(ema_ctx* resident, ema_ctx* copyin, const int* thread_counts, int thread_list) {
    ema_ctx* resident_whole = create_context(1);
    ema_ctx* copyin_whole = create_context(0);
    int verified = 0;
    for (int i = 0; i <= thread_list; i++) {
        const int threads = i < thread_list ? thread_counts[i] : 2;
        if (threads < 2 || (i == thread_list && verified)) continue;
        for (int step = 0; step < VERIFY_STEPS; step++) {
            fill_random();
            params_into_region(resident);
            params_into_region(resident_whole);
            omp_set_num_threads(1);
            check(ema_update_resident_at(resident_whole, EMA_NO_STEP, NULL), "ema_update_resident_at");
            check(ema_update_at(copyin_whole, (const float* const*)params, EMA_NO_STEP, NULL), "ema_update_at");
            omp_set_num_threads(threads);
            sink += update_resident(resident) + update_copyin(copyin);
            const int resident_ok = same_shadows(resident, resident_whole);
            const int copyin_ok = same_shadows(copyin, copyin_whole);
            if (!resident_ok || !copyin_ok) {
                fprintf(stderr, BENCH_PROGRAM ": %llu params, %d threads, step %d: %s%s%s not bit-identical\n",
                        (unsigned long long)param_total(), threads, step, resident_ok ? "" : "resident",
                        !resident_ok && !copyin_ok ? " and " : "", copyin_ok ? "" : "copy-in");
                exit(1);
            }
        }
        verified = 1;
    }
    fprintf(stderr, BENCH_PROGRAM ": %llu params: resident and copy-in split across threads are bit-identical\n",
            (unsigned long long)param_total());
    ema_destroy(resident_whole);
    ema_destroy(copyin_whole);
}

/* ------------------------------------------------------------------------
 * Timing
 * ---------------------------------------------------------------------- */

typedef struct work {
    const char* name;
    ema_ctx* ctx;
    float (*update)(ema_ctx*);
    float** touched; /* the arrays a training step writes */
} work;

static int compare_doubles(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static void time_work(const work* w, int threads, int repeats) {
    omp_set_num_threads(threads);
    double* samples = malloc((size_t)repeats * sizeof(double));
    if (samples == NULL) die("out of memory");
    for (int i = 0; i < WARMUP + repeats; i++) {
        touch_arrays(w->touched);
        iteration++;
        const double start = now_ms();
        sink += w->update(w->ctx);
        if (i >= WARMUP) samples[i - WARMUP] = now_ms() - start;
    }
    qsort(samples, (size_t)repeats, sizeof(double), compare_doubles);
    const double median = repeats % 2 ? samples[repeats / 2] : (samples[repeats / 2 - 1] + samples[repeats / 2]) / 2;
    printf("{\"work\":\"%s\",\"params\":%llu,\"threads\":%d,\"medianMs\":%.3f,\"minMs\":%.3f,\"samples\":%d}\n",
           w->name, (unsigned long long)param_total(), threads, median, samples[0], repeats);
    fflush(stdout);
    free(samples);
}

static void free_model(void) {
    for (uint32_t t = 0; t < slot_count; t++) free(params[t]);
    free(params);
    free(lengths);
    params = NULL;
    lengths = NULL;
    slot_count = 0;
}

static void run_model(uint64_t total, const int* thread_counts, int thread_list, int repeats) {
    char spec[64];
    snprintf(spec, sizeof spec, "%llu*%u", (unsigned long long)(total / TENSORS), TENSORS);
    init_params(spec, SEED);
    plan_windows_of_model();
    ema_ctx* resident = create_context(1);
    ema_ctx* copyin = create_context(0);
    verify(resident, copyin, thread_counts, thread_list);

    float** views = alloc_slot_pointers();
    for (uint32_t t = 0; t < slot_count; t++) views[t] = ema_param(resident, t);
    const work works[2] = {
        {"resident", resident, update_resident, views},
        {"copy-in", copyin, update_copyin, params},
    };
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < thread_list; i++) time_work(&works[k], thread_counts[i], repeats);
    }
    free(views);
    ema_destroy(resident);
    ema_destroy(copyin);
    free_model();
}

/* ------------------------------------------------------------------------
 * Arguments
 * ---------------------------------------------------------------------- */

static void usage_error(const char* what) {
    fprintf(stderr, BENCH_PROGRAM ": %s\n%s", what, USAGE);
    exit(2);
}

/* A comma-separated list of counts, each with an optional K or M suffix
 * (binary) when `suffixes`; 0 < count <= limit. Returns how many. */
static int parse_list(const char* text, uint64_t* out, int suffixes, uint64_t limit, const char* what) {
    int count = 0;
    for (const char* p = text; *p != '\0';) {
        char* end;
        uint64_t value = strtoull(p, &end, 10);
        if (end == p || count == MAX_LIST) usage_error(what);
        if (suffixes && (*end == 'K' || *end == 'k')) value <<= 10, end++;
        else if (suffixes && (*end == 'M' || *end == 'm')) value <<= 20, end++;
        if (value == 0 || value > limit || (*end != ',' && *end != '\0')) usage_error(what);
        out[count++] = value;
        p = *end == ',' ? end + 1 : end;
    }
    if (count == 0) usage_error(what);
    return count;
}

int main(int argc, char** argv) {
    const char* params_arg = "16M,64M";
    const char* threads_arg = "1,2";
    const char* repeats_arg = "20";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        const char** target = strcmp(argv[i], "--params") == 0    ? &params_arg
                              : strcmp(argv[i], "--threads") == 0 ? &threads_arg
                              : strcmp(argv[i], "--repeats") == 0 ? &repeats_arg
                                                                  : NULL;
        if (target == NULL || i + 1 == argc) usage_error("bad arguments");
        *target = argv[++i];
    }
    uint64_t totals[MAX_LIST], threads[MAX_LIST], repeats;
    const int total_list = parse_list(params_arg, totals, 1, (uint64_t)TENSORS * UINT32_MAX, "bad --params");
    const int thread_list = parse_list(threads_arg, threads, 0, 1024, "bad --threads");
    parse_list(repeats_arg, &repeats, 0, 100000, "bad --repeats");
    int thread_counts[MAX_LIST];
    int most_threads = 2;
    for (int i = 0; i < thread_list; i++) {
        thread_counts[i] = (int)threads[i];
        if (thread_counts[i] > most_threads) most_threads = thread_counts[i];
    }
    for (int i = 0; i < total_list; i++) {
        if (totals[i] % TENSORS != 0) usage_error("bad --params: each must be a multiple of 64");
    }

    stagings = malloc((size_t)most_threads * sizeof(float*));
    if (stagings == NULL) die("out of memory");
    for (int t = 0; t < most_threads; t++) stagings[t] = alloc_floats(EMA_STAGING_FLOATS);
    for (int i = 0; i < total_list; i++) run_model(totals[i], thread_counts, thread_list, (int)repeats);
    for (int t = 0; t < most_threads; t++) free(stagings[t]);
    free(stagings);
    free(plan_segments);
    free(plan_windows);
    return sink == 12345.0f ? 3 : 0;
}
