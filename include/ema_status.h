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
    EMA_ERROR_INVALID_COUNTER = 13,   /* num_updates below -1 */

    /* safetensors parsing (ema_st_parse): each names one kind of defect. */
    EMA_ERROR_ST_TRUNCATED = 14,      /* fewer than 8 bytes: no header length */
    EMA_ERROR_ST_HEADER_LENGTH = 15,  /* header length past the end of the file or too large */
    EMA_ERROR_ST_HEADER_MISSING = 16, /* the bytes given stop before the header ends */
    EMA_ERROR_ST_JSON = 17,           /* the header is not well-formed JSON */
    EMA_ERROR_ST_NOT_UTF8 = 18,       /* invalid UTF-8 (or a lone surrogate escape) in the header */
    EMA_ERROR_ST_NOT_OBJECT = 19,     /* the header, a tensor entry or the metadata is not an object */
    EMA_ERROR_ST_BAD_NAME = 20,       /* a tensor name holds U+0000 */
    EMA_ERROR_ST_DUPLICATE_NAME = 21, /* two tensors (or two metadata blocks) share a name */
    EMA_ERROR_ST_BAD_FIELD = 22,      /* a tensor entry has an unknown or repeated field */
    EMA_ERROR_ST_MISSING_FIELD = 23,  /* a tensor entry lacks dtype, shape or data_offsets */
    EMA_ERROR_ST_UNKNOWN_DTYPE = 24,  /* dtype is not a safetensors dtype */
    EMA_ERROR_ST_BAD_INTEGER = 25,    /* a shape or offset value is not an unsigned integer */
    EMA_ERROR_ST_BAD_SHAPE = 26,      /* shape is not an array of integers, or has too many dims */
    EMA_ERROR_ST_BAD_OFFSETS = 27,    /* data_offsets is not [begin, end] with begin <= end */
    EMA_ERROR_ST_OVERFLOW = 28,       /* a number or size does not fit in 64 bits */
    EMA_ERROR_ST_SIZE_MISMATCH = 29,  /* shape x dtype size differs from the byte span */
    EMA_ERROR_ST_OFFSET_RANGE = 30,   /* a tensor's data ends past the end of the file */
    EMA_ERROR_ST_OVERLAP = 31,        /* two tensors' bytes overlap */
    EMA_ERROR_ST_GAP = 32,            /* bytes between or after the tensors belong to none */
    EMA_ERROR_ST_BAD_METADATA = 33,   /* __metadata__ is not an object of string values */

    EMA_ERROR_NOT_RESIDENT = 34,      /* a resident call before ema_resident_enable */
    EMA_ERROR_INVALID_SCHEDULE = 35,  /* an unknown recipe or rounding, or an option out of range */
    EMA_ERROR_NONFINITE = 36,         /* a parameter holds NaN or an infinity (EMA_NONFINITE_ERROR) */
    EMA_ERROR_INVALID_ARGUMENT = 37   /* a value out of range: a slot mode, a counter for this recipe */
} ema_status;

/* A short English description of `status`, never NULL (unknown codes get
 * "unknown status"). The string is static. */
const char* ema_status_string(ema_status status);

#ifdef __cplusplus
}
#endif

#endif /* EMA_STATUS_H */
