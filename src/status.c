#include "ema_status.h"

const char* ema_status_string(ema_status status) {
    switch (status) {
        case EMA_OK: return "ok";
        case EMA_ERROR_NULL_ARGUMENT: return "a required pointer was NULL";
        case EMA_ERROR_INVALID_DECAY: return "decay must be a number in [0, 1]";
        case EMA_ERROR_OUT_OF_MEMORY: return "out of memory";
        case EMA_ERROR_SLOT_INDEX: return "slot index out of range";
        case EMA_ERROR_OUT_OF_RANGE: return "offset and count reach past the end of the slot";
        case EMA_ERROR_LENGTH_MISMATCH: return "count or lengths differ from what was stored";
        case EMA_ERROR_NOTHING_STORED: return "restore called with nothing stored";
        case EMA_ERROR_TOO_MANY_SLOTS: return "too many slots";
        case EMA_ERROR_TOO_LARGE: return "total size too large for this address space";
        case EMA_ERROR_NO_STEP: return "no update step is open; call ema_step_begin first";
        case EMA_ERROR_SEGMENT_OVERFLOW: return "segments exceed the staging window or segment table";
        case EMA_ERROR_COUNTER_OVERFLOW: return "num_updates would overflow";
        case EMA_ERROR_INVALID_COUNTER: return "num_updates must be -1 or more";
    }
    return "unknown status";
}
