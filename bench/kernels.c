/*
 * kernels.c - the EMA update micro-kernels, timed one by one.
 *
 * Every kernel this build has, of each rounding of the update (the kernel
 * lists the tests use: f32-vupdate.inc, LitEma's unfused rounding;
 * f32-vlerp.inc, PyTorch's lerp_; f32-vfma.inc, diffusers' foreach update;
 * f32-vkeras.inc, Keras 3), runs on arrays sized for L1, L2, L3, and 1M and
 * 16M parameters. A trial repeats a kernel for about 20 ms; the kernels take
 * turns, trial after trial, and each keeps its best. Reported: elements per
 * second and bytes per second (12 bytes per element: shadow read, parameter
 * read, shadow written), so that the numbers read against memory bandwidth,
 * and whether the kernel is its family's `_best` in this build. Every kernel
 * is warmed up first (V8 compiles a Wasm function fully only once it runs).
 *
 * Output: one JSON object per line (bench/lib/kernels.mjs builds it for each
 * build, runs it and reads it):
 *   bench_kernels [--quick] [--best] [--sizes LABEL,...]
 *     --quick   fewer, shorter trials (a smoke test)
 *     --best    only each family's `_best` kernel
 *     --sizes   only these sizes (L1, L2, L3, 1M, 16M)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "f32-vfma.h"
#include "f32-vkeras.h"
#include "f32-vlerp.h"
#include "f32-vupdate.h"

/* LitEma's default decay; every family gets the same two float32 values. */
#define DECAY 0.9999f
#define ONE_MINUS_DECAY (1.0f - DECAY)

/* One kernel: `weighted` for the families that take one_minus_decay alone
 * (vupdate, vlerp, vfma: one signature), `keras` for vkeras. */
typedef struct kernel_info {
    const char* family;
    const char* name;
    ema_f32_vupdate_ukernel_fn weighted;
    ema_f32_vkeras_ukernel_fn keras;
} kernel_info;

/* The entries of the lists whose arch flag is 1 in this build (the trick of
 * test/c/test_kernels.c: the extra level lets `arch` expand first). */
#define KERNEL_ENTRY_IF_0(family, name, field)
#define KERNEL_ENTRY_IF_1(family, name, field) {family, #name, .field = name},
#define KERNEL_ENTRY_PASTE(arch, family, name, field) KERNEL_ENTRY_IF_##arch(family, name, field)
#define KERNEL_ENTRY(arch, family, name, field) KERNEL_ENTRY_PASTE(arch, family, name, field)
static const kernel_info kKernels[] = {
#define EMA_UKERNEL(arch, name, unroll) KERNEL_ENTRY(arch, "f32-vupdate", name, weighted)
#include "f32-vupdate.inc"
#undef EMA_UKERNEL
#define EMA_UKERNEL(arch, name, unroll) KERNEL_ENTRY(arch, "f32-vlerp", name, weighted)
#include "f32-vlerp.inc"
#undef EMA_UKERNEL
#define EMA_UKERNEL(arch, name, unroll) KERNEL_ENTRY(arch, "f32-vfma", name, weighted)
#include "f32-vfma.inc"
#undef EMA_UKERNEL
#define EMA_UKERNEL(arch, name, unroll) KERNEL_ENTRY(arch, "f32-vkeras", name, keras)
#include "f32-vkeras.inc"
#undef EMA_UKERNEL
};
#define KERNEL_COUNT (sizeof(kKernels) / sizeof(kKernels[0]))

static int is_best(const kernel_info* kernel) {
    return kernel->weighted == ema_f32_vupdate_ukernel_best ||
           kernel->weighted == ema_f32_vlerp_ukernel_best ||
           kernel->weighted == ema_f32_vfma_ukernel_best ||
           kernel->keras == ema_f32_vkeras_ukernel_best;
}

static const struct {
    const char* level;
    size_t elements;
} kSizes[] = {
    {"L1", 1024},      /* 8 KiB of shadow and parameter */
    {"L2", 16384},     /* 128 KiB */
    {"L3", 524288},    /* 4 MiB */
    {"1M", 1048576},   /* 8 MiB: the benchmark's 1M-parameter model */
    {"16M", 16777216}, /* 128 MiB: its 16M-parameter model, from memory */
};
#define SIZE_COUNT (sizeof(kSizes) / sizeof(kSizes[0]))

#define BYTES_PER_ELEMENT 12.0

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Values in [1, 2): differences are 0 or at least 2^-23, so neither they nor
 * the weighted step are ever subnormal, however many times a kernel runs. */
static void fill(float* values, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        values[i] = 1.0f + (float)(seed >> 9) * 0x1p-23f;
    }
}

static void run(const kernel_info* kernel, size_t n, const float* param, float* shadow) {
    if (kernel->keras != NULL) {
        kernel->keras(n, param, shadow, DECAY, ONE_MINUS_DECAY);
    } else {
        kernel->weighted(n, param, shadow, ONE_MINUS_DECAY);
    }
}

/* Repetitions of `kernel` on n elements that take about `seconds`. */
static size_t calibrate(const kernel_info* kernel, size_t n, const float* param, float* shadow,
                        double seconds) {
    size_t reps = 1;
    for (;;) {
        const double start = now_seconds();
        for (size_t r = 0; r < reps; r++) {
            run(kernel, n, param, shadow);
        }
        const double elapsed = now_seconds() - start;
        if (elapsed >= seconds) {
            return reps;
        }
        reps = elapsed > 0 ? (size_t)((double)reps * 1.2 * seconds / elapsed) + 1 : reps * 10;
    }
}

/* Whether `label` is one of the comma-separated items of `list`. */
static int listed(const char* list, const char* label) {
    const size_t length = strlen(label);
    for (const char* item = list; *item != '\0';) {
        const char* end = strchr(item, ',');
        const size_t item_length = end != NULL ? (size_t)(end - item) : strlen(item);
        if (item_length == length && strncmp(item, label, length) == 0) {
            return 1;
        }
        item += item_length + (end != NULL);
    }
    return 0;
}

int main(int argc, char** argv) {
    int quick = 0, best_only = 0;
    const char* sizes = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--best") == 0) {
            best_only = 1;
        } else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            sizes = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_kernels [--quick] [--best] [--sizes LABEL,...]\n");
            return 2;
        }
    }
    /* Many short trials, taken in turn by every kernel, so that a noisy
     * moment of the machine hits all kernels alike; the best trial counts. */
    const int trials = quick ? 5 : 25;
    const double trial_seconds = quick ? 0.01 : 0.02;
    const double warm_up_seconds = quick ? 0.02 : 0.1;

    const kernel_info* chosen[KERNEL_COUNT];
    size_t kernel_count = 0;
    for (size_t k = 0; k < KERNEL_COUNT; k++) {
        if (!best_only || is_best(&kKernels[k])) {
            chosen[kernel_count++] = &kKernels[k];
        }
    }
    size_t largest = 0;
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        if ((sizes == NULL || listed(sizes, kSizes[s].level)) && kSizes[s].elements > largest) {
            largest = kSizes[s].elements;
        }
    }
    if (largest == 0) {
        fprintf(stderr, "bench_kernels: no size named in '%s' (L1, L2, L3, 1M, 16M)\n", sizes);
        return 2;
    }
    float* param = aligned_alloc(64, largest * sizeof(float));
    float* shadow = aligned_alloc(64, largest * sizeof(float));
    size_t reps[KERNEL_COUNT];
    double best[KERNEL_COUNT];
    if (param == NULL || shadow == NULL) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        return 1;
    }
    /* Every kernel runs for a while before anything is timed, so that a JIT
     * (V8 tiers Wasm functions up as they run) has compiled it fully. */
    fill(param, kSizes[0].elements, 1);
    fill(shadow, kSizes[0].elements, 2);
    for (size_t k = 0; k < kernel_count; k++) {
        calibrate(chosen[k], kSizes[0].elements, param, shadow, warm_up_seconds);
    }
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        if (sizes != NULL && !listed(sizes, kSizes[s].level)) {
            continue;
        }
        const size_t n = kSizes[s].elements;
        fill(param, n, 1);
        fill(shadow, n, 2);
        for (size_t k = 0; k < kernel_count; k++) {
            reps[k] = calibrate(chosen[k], n, param, shadow, trial_seconds);
            best[k] = 1e30;
        }
        for (int trial = 0; trial < trials; trial++) {
            for (size_t k = 0; k < kernel_count; k++) {
                const double start = now_seconds();
                for (size_t r = 0; r < reps[k]; r++) {
                    run(chosen[k], n, param, shadow);
                }
                const double per_call = (now_seconds() - start) / (double)reps[k];
                best[k] = per_call < best[k] ? per_call : best[k];
            }
        }
        for (size_t k = 0; k < kernel_count; k++) {
            const double elements_per_second = (double)n / best[k];
            printf("{\"family\":\"%s\",\"kernel\":\"%s\",\"best\":%s,\"level\":\"%s\","
                   "\"elements\":%zu,\"seconds_per_call\":%.9g,\"elements_per_second\":%.6g,"
                   "\"gb_per_second\":%.4g}\n",
                   chosen[k]->family, chosen[k]->name, is_best(chosen[k]) ? "true" : "false",
                   kSizes[s].level, n, best[k], elements_per_second,
                   elements_per_second * BYTES_PER_ELEMENT * 1e-9);
        }
        fflush(stdout);
    }
    free(param);
    free(shadow);
    return 0;
}
