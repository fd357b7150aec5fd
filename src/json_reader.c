#include "json_reader.h"

/* Every read goes through these: the reader never looks at or past `end`. */
static bool has(const json_reader* reader, size_t count) {
    return (size_t)(reader->end - reader->at) >= count;
}

static ema_status fail(json_reader* reader, const uint8_t* where, ema_status status) {
    if (reader->error_at == NULL) {
        reader->error_at = where;
    }
    return status;
}

void json_init(json_reader* reader, const uint8_t* begin, size_t length) {
    reader->begin = begin;
    reader->end = begin + length;
    reader->at = begin;
    reader->error_at = NULL;
}

void json_skip_space(json_reader* reader) {
    while (has(reader, 1)) {
        const uint8_t c = *reader->at;
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        reader->at++;
    }
}

bool json_accept(json_reader* reader, uint8_t c) {
    json_skip_space(reader);
    if (has(reader, 1) && *reader->at == c) {
        reader->at++;
        return true;
    }
    return false;
}

ema_status json_expect(json_reader* reader, uint8_t c) {
    return json_accept(reader, c) ? EMA_OK : fail(reader, reader->at, EMA_ERROR_ST_JSON);
}

bool json_at_end(json_reader* reader) {
    json_skip_space(reader);
    return !has(reader, 1);
}

size_t json_offset(const json_reader* reader) {
    return (size_t)((reader->error_at != NULL ? reader->error_at : reader->at) - reader->begin);
}

/* ---- strings ------------------------------------------------------------ */

static int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u". */
static bool read_hex4(json_reader* reader, uint32_t* value) {
    if (!has(reader, 4)) {
        return false;
    }
    uint32_t result = 0;
    for (int i = 0; i < 4; i++) {
        const int digit = hex_value(reader->at[i]);
        if (digit < 0) {
            return false;
        }
        result = (result << 4) | (uint32_t)digit;
    }
    reader->at += 4;
    *value = result;
    return true;
}

static size_t encode_utf8(uint32_t code_point, uint8_t* out) {
    if (code_point < 0x80) {
        out[0] = (uint8_t)code_point;
        return 1;
    }
    if (code_point < 0x800) {
        out[0] = (uint8_t)(0xC0 | (code_point >> 6));
        out[1] = (uint8_t)(0x80 | (code_point & 0x3F));
        return 2;
    }
    if (code_point < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (code_point >> 12));
        out[1] = (uint8_t)(0x80 | ((code_point >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (code_point & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (code_point >> 18));
    out[1] = (uint8_t)(0x80 | ((code_point >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((code_point >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (code_point & 0x3F));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at `at` (Unicode table 3-7), or 0. */
static size_t utf8_sequence_length(const uint8_t* at, size_t available) {
    const uint8_t lead = at[0];
    size_t length;
    uint8_t second_low = 0x80, second_high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) second_low = 0xA0;
        if (lead == 0xED) second_high = 0x9F; /* no UTF-16 surrogates */
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) second_low = 0x90;
        if (lead == 0xF4) second_high = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (available < length || at[1] < second_low || at[1] > second_high) {
        return 0;
    }
    for (size_t i = 2; i < length; i++) {
        if ((at[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return length;
}

/* Decodes one escape after the backslash into `code_point`. */
static ema_status read_escape(json_reader* reader, uint32_t* code_point) {
    const uint8_t* start = reader->at - 1;
    if (!has(reader, 1)) {
        return fail(reader, start, EMA_ERROR_ST_JSON);
    }
    const uint8_t c = *reader->at++;
    switch (c) {
        case '"': *code_point = '"'; return EMA_OK;
        case '\\': *code_point = '\\'; return EMA_OK;
        case '/': *code_point = '/'; return EMA_OK;
        case 'b': *code_point = '\b'; return EMA_OK;
        case 'f': *code_point = '\f'; return EMA_OK;
        case 'n': *code_point = '\n'; return EMA_OK;
        case 'r': *code_point = '\r'; return EMA_OK;
        case 't': *code_point = '\t'; return EMA_OK;
        case 'u': break;
        default: return fail(reader, start, EMA_ERROR_ST_JSON);
    }
    uint32_t unit;
    if (!read_hex4(reader, &unit)) {
        return fail(reader, start, EMA_ERROR_ST_JSON);
    }
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
        return fail(reader, start, EMA_ERROR_ST_NOT_UTF8); /* lone low surrogate */
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
        uint32_t low;
        if (!has(reader, 2) || reader->at[0] != '\\' || reader->at[1] != 'u') {
            return fail(reader, start, EMA_ERROR_ST_NOT_UTF8); /* lone high surrogate */
        }
        reader->at += 2;
        if (!read_hex4(reader, &low)) {
            return fail(reader, start, EMA_ERROR_ST_JSON);
        }
        if (low < 0xDC00 || low > 0xDFFF) {
            return fail(reader, start, EMA_ERROR_ST_NOT_UTF8);
        }
        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
    }
    *code_point = unit;
    return EMA_OK;
}

ema_status json_read_string(json_reader* reader, uint8_t* out, size_t* out_length,
                            bool* contains_nul) {
    json_skip_space(reader);
    if (!has(reader, 1) || *reader->at != '"') {
        return fail(reader, reader->at, EMA_ERROR_ST_JSON);
    }
    const uint8_t* open = reader->at++;
    size_t length = 0;
    bool nul = false;
    for (;;) {
        if (!has(reader, 1)) {
            return fail(reader, open, EMA_ERROR_ST_JSON); /* unterminated */
        }
        const uint8_t c = *reader->at;
        if (c == '"') {
            reader->at++;
            break;
        }
        if (c < 0x20) {
            return fail(reader, reader->at, EMA_ERROR_ST_JSON); /* raw control character */
        }
        if (c == '\\') {
            reader->at++;
            uint32_t code_point;
            const ema_status status = read_escape(reader, &code_point);
            if (status != EMA_OK) {
                return status;
            }
            nul = nul || code_point == 0;
            uint8_t encoded[4];
            const size_t n = encode_utf8(code_point, encoded);
            for (size_t i = 0; i < n; i++) {
                if (out != NULL) out[length] = encoded[i];
                length++;
            }
            continue;
        }
        size_t n = 1;
        if (c >= 0x80) {
            n = utf8_sequence_length(reader->at, (size_t)(reader->end - reader->at));
            if (n == 0) {
                return fail(reader, reader->at, EMA_ERROR_ST_NOT_UTF8);
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (out != NULL) out[length] = reader->at[i];
            length++;
        }
        reader->at += n;
    }
    if (out != NULL) {
        out[length] = 0;
    }
    if (out_length != NULL) *out_length = length;
    if (contains_nul != NULL) *contains_nul = nul;
    return EMA_OK;
}

ema_status json_string_capacity(json_reader* reader, size_t* capacity) {
    json_skip_space(reader);
    const uint8_t* start = reader->at;
    if (!has(reader, 1) || *start != '"') {
        return fail(reader, start, EMA_ERROR_ST_JSON);
    }
    /* Find the closing quote, stepping over escaped characters (a backslash
     * in the last byte must not step the pointer past `end`). */
    for (const uint8_t* p = start + 1; p < reader->end; p++) {
        if (*p == '\\') {
            if (reader->end - p < 2) break;
            p++;
            continue;
        }
        if (*p == '"') {
            *capacity = (size_t)(p - start) + 1;
            return EMA_OK;
        }
    }
    return fail(reader, start, EMA_ERROR_ST_JSON);
}

/* ---- numbers ------------------------------------------------------------ */

static bool is_digit(uint8_t c) {
    return c >= '0' && c <= '9';
}

ema_status json_read_u64(json_reader* reader, uint64_t* value) {
    json_skip_space(reader);
    const uint8_t* start = reader->at;
    if (!has(reader, 1) || !is_digit(*start)) {
        return fail(reader, start, EMA_ERROR_ST_BAD_INTEGER);
    }
    if (*start == '0' && has(reader, 2) && is_digit(start[1])) {
        return fail(reader, start, EMA_ERROR_ST_BAD_INTEGER); /* leading zero */
    }
    uint64_t result = 0;
    while (has(reader, 1) && is_digit(*reader->at)) {
        const uint64_t digit = (uint64_t)(*reader->at - '0');
        if (result > (UINT64_MAX - digit) / 10) {
            return fail(reader, start, EMA_ERROR_ST_OVERFLOW);
        }
        result = result * 10 + digit;
        reader->at++;
    }
    if (has(reader, 1) && (*reader->at == '.' || *reader->at == 'e' || *reader->at == 'E')) {
        return fail(reader, start, EMA_ERROR_ST_BAD_INTEGER);
    }
    *value = result;
    return EMA_OK;
}
