/*
 * test_util.h - small helpers that more than one native C test needs: float
 * bit patterns, a seeded pseudo-random stream, a streamed EMA update step and
 * message printing. Kept here so that every test reads float bits, draws
 * random inputs and streams steps the same way.
 */
#ifndef EMA_TEST_UTIL_H
#define EMA_TEST_UTIL_H

#include <stdarg.h>
#include <stdint.h>

#include "check.h"
#include "ema_stream.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* IF_ARCH(arch, ...): the rest of the arguments when `arch` (the arch flag of
 * a kernel list's EMA_UKERNEL line) expands to 1, nothing when it expands to
 * 0; the extra level lets `arch` expand before it is pasted. A kernel table
 * ends each entry with the comma inside:
 *   #define EMA_UKERNEL(arch, name, unroll) IF_ARCH(arch, {#name, name, (unroll)},) */
#define IF_ARCH(arch, ...) IF_ARCH_PASTE(arch, __VA_ARGS__)
#define IF_ARCH_PASTE(arch, ...) IF_ARCH_##arch(__VA_ARGS__)
#define IF_ARCH_0(...)
#define IF_ARCH_1(...) __VA_ARGS__

/* The bit pattern of a float32 and back: tests compare results bit for bit,
 * since == would call -0.0 and 0.0 equal and NaN unequal to itself. */
uint32_t f32_bits(float value);
float f32_from_bits(uint32_t bits);

/* Equal bits, or both NaN (a NaN's sign and payload may differ between a
 * reference and a kernel). */
int same_f32(float a, float b);

/* xorshift32: deterministic test inputs, the same on every machine. One
 * stream per test program; seed it at the start of main (any nonzero seed),
 * so that a failing input can be reproduced. */
void seed_random(uint32_t seed);
uint32_t next_random(void);

/* A test input from next_random(): mostly finite values across many
 * magnitudes (2^-20 to 2^20), some special ones (zeros, subnormals, extremes)
 * and any finite bit pattern; with `allow_nonfinite` also infinities and NaN. */
float test_random_value(int allow_nonfinite);

/* How stream_step hands a filled window over. */
typedef enum stream_apply {
    STREAM_POINTERS, /* ema_step_apply(ctx, table, count, staging) */
    STREAM_STAGED    /* ema_step_apply_staged(ctx, count) */
} stream_apply;

/* One EMA step streamed through the context's staging window: ema_step_begin,
 * then every slot packed into the window, at most `window` floats and
 * `table_cap` segments per apply. Pieces are as long as fits, or with
 * `max_piece` > 0 drawn from next_random() between 1 and `max_piece`, so that
 * slots are cut at varied places. Empty slots get a zero-count segment.
 * Returns the first status other than EMA_OK, or EMA_OK. */
ema_status stream_step(ema_ctx* ctx, const float* const* params, uint32_t window,
                       uint32_t table_cap, uint32_t max_piece, stream_apply apply,
                       float* decay_used);
/* stream_step's max_piece for pieces as long as fits. */
#define STREAM_WHOLE_PIECES 0u

/* One kernel test case: n random inputs, the shadow inside a block of
 * sentinels (starting `misalign` floats in) so that writes outside [0, n)
 * show, and param allocated to exactly n floats so that ASan catches reads
 * past it (or the shadow itself, `in_place`). The test fills `expected`,
 * runs the kernel, then reports. */
typedef struct kernel_case {
    size_t n, misalign;
    int in_place;
    float* param;    /* what the kernel reads: the shadow itself when in_place */
    float* shadow;
    float* original; /* the shadow before the kernel ran */
    float* expected;
    float* block;    /* the shadow and its guards */
    float* param_copy; /* param's own allocation */
} kernel_case;

/* Allocates and fills a case; 0 (after a failed CHECK) when out of memory. */
int kernel_case_open(kernel_case* c, size_t n, size_t misalign, int allow_nonfinite, int in_place);

/* After the kernel ran: CHECKs every element against `expected` (printing
 * the first four that differ, with `label`) and that the guards are intact.
 * Returns 1 when both hold. */
int kernel_case_check(const kernel_case* c, const char* label);

void kernel_case_close(kernel_case* c);

/* vprintf and a newline: the end of every failure message the tests print. */
void vprintln(const char* fmt, va_list args) CHECK_PRINTF(1, 0);

#endif /* EMA_TEST_UTIL_H */
