/*
 * kernels.c - the f32 vupdate micro-kernels, timed one by one.
 *
 * Every kernel this build has (src/kernels/f32-vupdate.inc, the list the
 * tests use) runs on arrays sized for L1, L2, L3 and main memory. A trial
 * repeats a kernel for about 20 ms; the kernels take turns, trial after
 * trial, and each keeps its best. Reported: elements per second and bytes per
 * second (12 bytes per element: shadow read, parameter read, shadow written),
 * so that the numbers read against memory bandwidth.
 *
 * Output: one JSON object per line (bench/kernels.mjs builds it for each
 * build, runs it and prints the table):
 *   bench_kernels [--quick]
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "f32-vupdate.h"

typedef struct kernel_info {
    const char* name;
    ema_f32_vupdate_ukernel_fn fn;
} kernel_info;

/* The entries of f32-vupdate.inc whose arch flag is 1 in this build (the
 * trick of test/c/test_kernels.c: the extra level lets `arch` expand first). */
#define KERNEL_ENTRY_IF_0(name)
#define KERNEL_ENTRY_IF_1(name) {#name, name},
#define KERNEL_ENTRY_PASTE(arch, name) KERNEL_ENTRY_IF_##arch(name)
#define KERNEL_ENTRY(arch, name) KERNEL_ENTRY_PASTE(arch, name)
#define EMA_UKERNEL(arch, name, unroll) KERNEL_ENTRY(arch, name)
static const kernel_info kKernels[] = {
#include "f32-vupdate.inc"
};
#undef EMA_UKERNEL

static const struct {
    const char* level;
    size_t elements;
} kSizes[] = {
    {"L1", 1024},           /* 8 KiB of shadow and parameter */
    {"L2", 16384},          /* 128 KiB */
    {"L3", 524288},         /* 4 MiB */
    {"memory", 16777216},   /* 128 MiB */
};

#define BYTES_PER_ELEMENT 12.0

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Values in [1, 2): differences are 0 or at least 2^-23, so neither they nor
 * the weighted step are ever subnormal, however many times the kernel runs. */
static void fill(float* values, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        values[i] = 1.0f + (float)(seed >> 9) * 0x1p-23f;
    }
}

/* Repetitions of `kernel` on n elements that take about `seconds`. */
static size_t calibrate(const kernel_info* kernel, size_t n, const float* param, float* shadow,
                        float weight, double seconds) {
    size_t reps = 1;
    for (;;) {
        const double start = now_seconds();
        for (size_t r = 0; r < reps; r++) {
            kernel->fn(n, param, shadow, weight);
        }
        const double elapsed = now_seconds() - start;
        if (elapsed >= seconds) {
            return reps;
        }
        reps = elapsed > 0 ? (size_t)((double)reps * 1.2 * seconds / elapsed) + 1 : reps * 10;
    }
}

int main(int argc, char** argv) {
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    /* Many short trials, taken in turn by every kernel, so that a noisy
     * moment of the machine hits all kernels alike; the best trial counts. */
    const int trials = quick ? 5 : 25;
    const double trial_seconds = quick ? 0.01 : 0.02;
    const float weight = 1.0f - 0.9999f;

    const size_t kernel_count = sizeof(kKernels) / sizeof(kKernels[0]);
    const size_t largest = kSizes[sizeof(kSizes) / sizeof(kSizes[0]) - 1].elements;
    float* param = aligned_alloc(64, largest * sizeof(float));
    float* shadow = aligned_alloc(64, largest * sizeof(float));
    size_t reps[sizeof(kKernels) / sizeof(kKernels[0])];
    double best[sizeof(kKernels) / sizeof(kKernels[0])];
    if (param == NULL || shadow == NULL) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        return 1;
    }
    for (size_t s = 0; s < sizeof(kSizes) / sizeof(kSizes[0]); s++) {
        const size_t n = kSizes[s].elements;
        fill(param, n, 1);
        fill(shadow, n, 2);
        for (size_t k = 0; k < kernel_count; k++) {
            reps[k] = calibrate(&kKernels[k], n, param, shadow, weight, trial_seconds);
            best[k] = 1e30;
        }
        for (int trial = 0; trial < trials; trial++) {
            for (size_t k = 0; k < kernel_count; k++) {
                const double start = now_seconds();
                for (size_t r = 0; r < reps[k]; r++) {
                    kKernels[k].fn(n, param, shadow, weight);
                }
                const double per_call = (now_seconds() - start) / (double)reps[k];
                best[k] = per_call < best[k] ? per_call : best[k];
            }
        }
        for (size_t k = 0; k < kernel_count; k++) {
            const double elements_per_second = (double)n / best[k];
            printf("{\"kernel\":\"%s\",\"level\":\"%s\",\"elements\":%zu,\"seconds_per_call\":%.9g,"
                   "\"elements_per_second\":%.6g,\"gb_per_second\":%.4g}\n",
                   kKernels[k].name, kSizes[s].level, n, best[k], elements_per_second,
                   elements_per_second * BYTES_PER_ELEMENT * 1e-9);
        }
        fflush(stdout);
    }
    free(param);
    free(shadow);
    return 0;
}
