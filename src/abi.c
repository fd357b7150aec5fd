/*
 * abi.c - what a build says about itself: its version, whether it uses
 * SIMD128, and the numbers JS must agree on (ema_abi_value).
 */
#include "abi.h"

#include "arena.h"
#include "ema.h"
#include "ema_posthoc.h"
#include "ema_safetensors.h"
#include "ema_stream.h"
#include "kernels/f32-vupdate.h"

/* The module's initial memory, from CMakeLists.txt's -sINITIAL_MEMORY; a
 * native build has none. */
#ifndef EMA_WASM_INITIAL_MEMORY_BYTES
#define EMA_WASM_INITIAL_MEMORY_BYTES 0u
#endif

_Static_assert(sizeof(ema_segment) == 3 * sizeof(uint32_t), "ema_segment is three uint32 words");

unsigned ema_version_number(void) {
    return EMA_VERSION_NUMBER;
}

const char* ema_version_string(void) {
    return EMA_VERSION_STRING;
}

int ema_simd128(void) {
    return EMA_ARCH_WASMSIMD;
}

uint32_t ema_abi_value(uint32_t which) {
    switch (which) {
        case EMA_ABI_STAGING_FLOATS: return EMA_STAGING_FLOATS;
        case EMA_ABI_SEGMENT_CAPACITY: return EMA_SEGMENT_CAPACITY;
        case EMA_ABI_SEGMENT_WORDS: return (uint32_t)(sizeof(ema_segment) / sizeof(uint32_t));
        case EMA_ABI_MAX_SLOTS: return EMA_MAX_SLOTS;
        case EMA_ABI_ALIGNMENT: return EMA_ARENA_ALIGNMENT;
        case EMA_ABI_MAX_RANK: return EMA_ST_MAX_RANK;
        case EMA_ABI_MAX_NUM_UPDATES: return (uint32_t)EMA_MAX_NUM_UPDATES;
        case EMA_ABI_ST_MAX_HEADER_BYTES: return EMA_ST_MAX_HEADER_BYTES;
        case EMA_ABI_ST_DTYPE_LIMIT: return EMA_ST_DTYPE_LIMIT;
        case EMA_ABI_REGION_BYTES_PER_ARRAY: return ema_region_bytes_per_array();
        case EMA_ABI_ST_TENSOR_BYTES: return ema_st_tensor_bytes();
        case EMA_ABI_INITIAL_MEMORY_BYTES: return EMA_WASM_INITIAL_MEMORY_BYTES;
        case EMA_ABI_SCHEDULE_BYTES: return (uint32_t)sizeof(ema_schedule);
        case EMA_ABI_STEP_INFO_BYTES: return (uint32_t)sizeof(ema_step_info);
        case EMA_ABI_MAX_PROFILES: return EMA_MAX_PROFILES;
        case EMA_ABI_MAX_POSTHOC_SNAPSHOTS: return EMA_MAX_POSTHOC_SNAPSHOTS;
    }
    return 0;
}
