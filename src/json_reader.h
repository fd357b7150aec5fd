/*
 * json_reader.h - a strict, allocation-free JSON reader over untrusted bytes.
 *
 * Just enough JSON for a safetensors header: punctuation, strings (with every
 * escape, surrogate pairs, and UTF-8 validation) and unsigned integers; the
 * header's schema admits no other value, so there is nothing to skip. It never reads outside [begin, end) and reports
 * the byte offset of the first defect.
 */
#ifndef EMA_JSON_READER_H
#define EMA_JSON_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ema_status.h"

typedef struct json_reader {
    const uint8_t* begin;
    const uint8_t* end;
    const uint8_t* at;
    const uint8_t* error_at; /* where the first defect was found */
} json_reader;

void json_init(json_reader* reader, const uint8_t* begin, size_t length);

/* Skips JSON whitespace (space, tab, CR, LF). */
void json_skip_space(json_reader* reader);

/* After whitespace, consumes `c` if it is next. */
bool json_accept(json_reader* reader, uint8_t c);

/* After whitespace, requires `c`: EMA_ERROR_ST_JSON when it is not there. */
ema_status json_expect(json_reader* reader, uint8_t c);

/* True when only whitespace is left. */
bool json_at_end(json_reader* reader);

/* Reads a string. Its decoded UTF-8 goes to out[0 .. *out_length) followed by
 * a NUL, when `out` is not NULL (it must then hold the encoded length + 1
 * bytes: decoding never lengthens a string). `*contains_nul` tells whether the
 * decoded text holds U+0000. Statuses: EMA_ERROR_ST_JSON for syntax,
 * EMA_ERROR_ST_NOT_UTF8 for bytes or escapes that are not valid UTF-8. */
ema_status json_read_string(json_reader* reader, uint8_t* out, size_t* out_length,
                            bool* contains_nul);

/* The number of bytes a string starting at the reader would need (its
 * encoded length + 1); the reader does not move. EMA_ERROR_ST_JSON if no
 * terminated string starts here. */
ema_status json_string_capacity(json_reader* reader, size_t* capacity);

/* Reads an unsigned decimal integer that fits in 64 bits. Signs, fractions,
 * exponents and leading zeros are EMA_ERROR_ST_BAD_INTEGER; a value past
 * UINT64_MAX is EMA_ERROR_ST_OVERFLOW. */
ema_status json_read_u64(json_reader* reader, uint64_t* value);

/* Offset of the reader (or of its first defect) from `begin`. */
size_t json_offset(const json_reader* reader);

#endif /* EMA_JSON_READER_H */
