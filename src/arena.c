#include "arena.h"

#include <stdlib.h>

static size_t round_up(size_t bytes) {
    return (bytes + (EMA_ARENA_ALIGNMENT - 1)) & ~(size_t)(EMA_ARENA_ALIGNMENT - 1);
}

bool ema_arena_add_floats(size_t* total, uint32_t floats) {
    /* Do the sum in 64 bits: size_t is 32 bits in wasm32. */
    const uint64_t bytes = ((uint64_t)floats * sizeof(float) + (EMA_ARENA_ALIGNMENT - 1)) &
                           ~(uint64_t)(EMA_ARENA_ALIGNMENT - 1);
    const uint64_t sum = (uint64_t)*total + bytes;
    /* Keep a margin below SIZE_MAX so round_up() in the allocator cannot wrap. */
    if (sum > (uint64_t)(SIZE_MAX - EMA_ARENA_ALIGNMENT)) {
        return false;
    }
    *total = (size_t)sum;
    return true;
}

float* ema_arena_alloc(size_t byte_size) {
    /* C11 aligned_alloc wants a size that is a multiple of the alignment. */
    const size_t rounded = byte_size == 0 ? EMA_ARENA_ALIGNMENT : round_up(byte_size);
    if (rounded < byte_size) {
        return NULL;
    }
    return aligned_alloc(EMA_ARENA_ALIGNMENT, rounded);
}

void ema_arena_free(float* block) {
    free(block);
}
