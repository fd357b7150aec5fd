/*
 * ema_status.h - status codes returned by the ema-wasm C core.
 *
 * The numbers are pinned: they cross the WebAssembly boundary and may be
 * logged, so a code never changes meaning and new codes are only appended.
 */
#ifndef EMA_STATUS_H
#define EMA_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ema_status {
    EMA_OK = 0,
    EMA_ERROR_NULL_ARGUMENT = 1,      /* a required pointer was NULL */
    EMA_ERROR_INVALID_DECAY = 2,      /* decay not in [0, 1], or NaN */
    EMA_ERROR_OUT_OF_MEMORY = 3,      /* an allocation failed; nothing changed */
    EMA_ERROR_SLOT_INDEX = 4,         /* a slot index past the last slot */
    EMA_ERROR_OUT_OF_RANGE = 5,       /* offset + count past the end of a slot */
    EMA_ERROR_LENGTH_MISMATCH = 6,    /* restore: count or lengths differ from the store */
    EMA_ERROR_NOTHING_STORED = 7,     /* restore before any store */
    EMA_ERROR_TOO_MANY_SLOTS = 8,     /* slot_count above EMA_MAX_SLOTS */
    EMA_ERROR_TOO_LARGE = 9,          /* sizes whose byte total would overflow */
    EMA_ERROR_NO_STEP = 10,           /* ema_step_apply before ema_step_begin */
    EMA_ERROR_SEGMENT_OVERFLOW = 11,  /* segments exceed the staging window or table */
    EMA_ERROR_COUNTER_OVERFLOW = 12,  /* num_updates would pass EMA_MAX_NUM_UPDATES */
    EMA_ERROR_INVALID_COUNTER = 13    /* num_updates below -1 */
} ema_status;

/* A short English description of `status`, never NULL (unknown codes get
 * "unknown status"). The string is static. */
const char* ema_status_string(ema_status status);

#ifdef __cplusplus
}
#endif

#endif /* EMA_STATUS_H */
