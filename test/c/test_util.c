#include "test_util.h"

#include <math.h>
#include <stdio.h>
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
