/*
 * arena.h - 64-byte aligned blocks for shadows, backups and the staging window.
 *
 * 64 bytes is a cache line on the machines we run on and a multiple of the
 * 16-byte SIMD128 vector, so kernels start every slot on a line boundary.
 */
#ifndef EMA_ARENA_H
#define EMA_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMA_ARENA_ALIGNMENT 64u

/* Adds the bytes of `floats` float32 values, rounded up to the alignment, to
 * *total. Returns false (and leaves *total alone) if the sum would overflow. */
bool ema_arena_add_floats(size_t* total, uint32_t floats);

/* An aligned block of at least `byte_size` bytes (a 0-byte request still
 * gives a distinct block), or NULL. */
float* ema_arena_alloc(size_t byte_size);

/* Frees a block from ema_arena_alloc. Accepts NULL. */
void ema_arena_free(float* block);

#endif /* EMA_ARENA_H */
