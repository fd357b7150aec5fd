#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t f32_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof(bits));
    return bits;
}

float f32_from_bits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof(value));
    return value;
}

/* Nonzero: xorshift32 stays at 0 once there. */
static uint32_t g_random_state = 0x9e3779b9u;

void seed_random(uint32_t seed) {
    g_random_state = seed != 0 ? seed : 0x9e3779b9u;
}

uint32_t next_random(void) {
    g_random_state ^= g_random_state << 13;
    g_random_state ^= g_random_state >> 17;
    g_random_state ^= g_random_state << 5;
    return g_random_state;
}

static const float kSpecial[] = {
    0.0f,  -0.0f, 1e-45f, -1e-45f, 1.17549435e-38f, 2.5e-39f, 1e-30f, -1e38f, 1e38f,
    1.0f,  -1.0f, 0.1f,   3.0e-8f, 65504.0f,        1e20f,    -7.5f,  0.5f,   -3.4028235e38f,
};

/* Mostly finite values across many magnitudes, some special ones; with
 * `allow_nonfinite` also infinities and NaN. */
float test_random_value(int allow_nonfinite) {
    const uint32_t pick = next_random() % 16;
    if (pick == 0) {
        return kSpecial[next_random() % COUNT_OF(kSpecial)];
    }
    if (pick == 1 && allow_nonfinite) {
        const uint32_t which = next_random() % 3;
        return which == 0 ? INFINITY : which == 1 ? -INFINITY : NAN;
    }
    if (pick == 2) {
        /* Any finite bit pattern. */
        uint32_t bits;
        do {
            bits = next_random();
        } while ((bits & 0x7f800000u) == 0x7f800000u);
        return f32_from_bits(bits);
    }
    /* A value in [-1, 1) scaled by 2^k, k in [-20, 20). */
    const float unit = (float)(int32_t)(next_random() >> 8) * 0x1p-23f - 1.0f;
    return ldexpf(unit, (int)(next_random() % 40) - 20);
}

static ema_status apply_window(ema_ctx* ctx, uint32_t used, stream_apply apply) {
    return apply == STREAM_STAGED
               ? ema_step_apply_staged(ctx, used)
               : ema_step_apply(ctx, ema_segment_table(ctx), used, ema_staging(ctx));
}

ema_status stream_step(ema_ctx* ctx, const float* const* params, uint32_t window,
                       uint32_t table_cap, uint32_t max_piece, stream_apply apply,
                       float* decay_used) {
    ema_status status = ema_step_begin(ctx, decay_used);
    if (status != EMA_OK) {
        return status;
    }
    float* staging = ema_staging(ctx);
    ema_segment* table = ema_segment_table(ctx);
    uint32_t fill = 0, used = 0;
    const uint32_t slots = ema_slot_count(ctx);
    for (uint32_t slot = 0; slot < slots; slot++) {
        const uint32_t length = ema_slot_length(ctx, slot);
        uint32_t offset = 0;
        do {
            uint32_t take = length - offset;
            if (take > window - fill) {
                take = window - fill;
            }
            if (max_piece != 0 && take > 1) {
                const uint32_t limit = 1 + next_random() % max_piece;
                take = take < limit ? take : limit;
            }
            /* An empty slot's parameter pointer may be NULL, which memcpy
             * must not get even for zero bytes. */
            if (take != 0) {
                memcpy(staging + fill, params[slot] + offset, (size_t)take * sizeof(float));
            }
            table[used++] = (ema_segment){slot, offset, take};
            fill += take;
            offset += take;
            if (fill == window || used == table_cap) {
                status = apply_window(ctx, used, apply);
                if (status != EMA_OK) {
                    return status;
                }
                fill = used = 0;
            }
        } while (offset < length);
    }
    return used != 0 ? apply_window(ctx, used, apply) : EMA_OK;
}

void vprintln(const char* fmt, va_list args) {
    vprintf(fmt, args);
    putchar('\n');
}

int same_f32(float a, float b) {
    return f32_bits(a) == f32_bits(b) || (isnan(a) && isnan(b));
}

#define KERNEL_CASE_GUARD 19u
static const uint32_t kSentinelBits = 0x7fa5a5a5u; /* a signalling-NaN pattern */

int kernel_case_open(kernel_case* c, size_t n, size_t misalign, int allow_nonfinite, int in_place) {
    memset(c, 0, sizeof *c);
    c->n = n;
    c->misalign = misalign;
    c->in_place = in_place;
    const size_t total = misalign + KERNEL_CASE_GUARD + n + KERNEL_CASE_GUARD;
    c->param_copy = calloc(n ? n : 1, sizeof(float));
    c->block = malloc(total * sizeof(float));
    c->expected = malloc((n ? n : 1) * sizeof(float));
    c->original = malloc((n ? n : 1) * sizeof(float));
    if (c->param_copy == NULL || c->block == NULL || c->expected == NULL || c->original == NULL) {
        CHECK(0, "out of memory for n=%zu", n);
        kernel_case_close(c);
        return 0;
    }
    for (size_t i = 0; i < total; i++) {
        c->block[i] = f32_from_bits(kSentinelBits);
    }
    c->shadow = c->block + misalign + KERNEL_CASE_GUARD;
    c->param = in_place ? c->shadow : c->param_copy;
    for (size_t i = 0; i < n; i++) {
        c->shadow[i] = test_random_value(allow_nonfinite);
        c->param_copy[i] = in_place ? c->shadow[i] : test_random_value(allow_nonfinite);
        c->original[i] = c->shadow[i];
    }
    return 1;
}

int kernel_case_check(const kernel_case* c, const char* label) {
    size_t bad = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!same_f32(c->shadow[i], c->expected[i]) && bad++ < 4) {
            printf("  %s: index %zu shadow %08x param %08x -> got %08x expected %08x\n", label, i,
                   f32_bits(c->original[i]), f32_bits(c->param_copy[i]), f32_bits(c->shadow[i]),
                   f32_bits(c->expected[i]));
        }
    }
    const int values_ok = CHECK(bad == 0, "%s: %zu elements differ", label, bad);
    int guards_ok = 1;
    for (size_t i = 0; i < c->misalign + KERNEL_CASE_GUARD; i++) {
        guards_ok &= f32_bits(c->block[i]) == kSentinelBits;
    }
    for (size_t i = 0; i < KERNEL_CASE_GUARD; i++) {
        guards_ok &= f32_bits(c->shadow[c->n + i]) == kSentinelBits;
    }
    return CHECK(guards_ok, "%s: wrote outside [0, n)", label) && values_ok;
}

void kernel_case_close(kernel_case* c) {
    free(c->param_copy);
    free(c->block);
    free(c->expected);
    free(c->original);
    memset(c, 0, sizeof *c);
}
