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
        case EMA_ERROR_ST_TRUNCATED: return "file too short: fewer than the 8 bytes of the header length";
        case EMA_ERROR_ST_HEADER_LENGTH: return "header length reaches past the end of the file or exceeds 100 MB";
        case EMA_ERROR_ST_HEADER_MISSING: return "the bytes given end before the header does";
        case EMA_ERROR_ST_JSON: return "header is not well-formed JSON";
        case EMA_ERROR_ST_NOT_UTF8: return "header holds invalid UTF-8";
        case EMA_ERROR_ST_NOT_OBJECT: return "expected a JSON object";
        case EMA_ERROR_ST_BAD_NAME: return "tensor name contains a NUL character";
        case EMA_ERROR_ST_DUPLICATE_NAME: return "duplicate tensor name";
        case EMA_ERROR_ST_BAD_FIELD: return "unknown or repeated field in a tensor entry";
        case EMA_ERROR_ST_MISSING_FIELD: return "tensor entry lacks dtype, shape or data_offsets";
        case EMA_ERROR_ST_UNKNOWN_DTYPE: return "unknown dtype";
        case EMA_ERROR_ST_BAD_INTEGER: return "expected a non-negative integer";
        case EMA_ERROR_ST_BAD_SHAPE: return "shape must be an array of at most 32 integers";
        case EMA_ERROR_ST_BAD_OFFSETS: return "data_offsets must be [begin, end] with begin <= end";
        case EMA_ERROR_ST_OVERFLOW: return "a number or size overflows 64 bits";
        case EMA_ERROR_ST_SIZE_MISMATCH: return "shape and dtype do not match the tensor's byte span";
        case EMA_ERROR_ST_OFFSET_RANGE: return "tensor data reaches past the end of the file";
        case EMA_ERROR_ST_OVERLAP: return "tensor data overlaps another tensor's";
        case EMA_ERROR_ST_GAP: return "bytes in the data section belong to no tensor";
        case EMA_ERROR_ST_BAD_METADATA: return "__metadata__ must be an object of string values";
        case EMA_ERROR_NOT_RESIDENT: return "the context has no resident parameters";
        case EMA_ERROR_INVALID_SCHEDULE: return "unknown recipe or rounding, or an option out of range";
        case EMA_ERROR_NONFINITE: return "a parameter holds NaN or an infinity";
        case EMA_ERROR_INVALID_ARGUMENT: return "argument out of range";
    }
    return "unknown status";
}
