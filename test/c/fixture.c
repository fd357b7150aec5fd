#include "fixture.h"
#include "test_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fixture_generated(uint64_t seed, uint32_t length, float* out) {
    /* generate.py does these products in uint64 and masks to 32 bits; the low
     * 32 bits of a product depend only on the low 32 bits of its factors. */
    const uint32_t seed_hash = (uint32_t)(seed * UINT64_C(2246822519));
    for (uint32_t i = 0; i < length; i++) {
        uint32_t h = (uint32_t)(((uint64_t)i + 1) * UINT64_C(2654435761)) ^ seed_hash;
        h ^= h >> 15;
        h = (uint32_t)((uint64_t)h * UINT64_C(2246822507));
        h ^= h >> 13;
        /* top24 is exact in float32, the product by 2^-24 too, and so is the
         * difference: every multiple of 2^-24 in [-0.5, 0.5) is a float32. */
        out[i] = (float)(h >> 8) * 0x1p-24f - 0.5f;
    }
}

static int fail(fixture_reader* reader, const char* fmt, ...) CHECK_PRINTF(2, 3);
static int fail(fixture_reader* reader, const char* fmt, ...) {
    if (!reader->failed) {
        reader->failed = 1;
        printf("%s:%zu: ", reader->path, reader->line);
        va_list args;
        va_start(args, fmt);
        vprintln(fmt, args);
        va_end(args);
    }
    return 0;
}

int fixture_open(fixture_reader* reader, const char* path) {
    memset(reader, 0, sizeof(*reader));
    reader->path = path;
    reader->line = 1;
    /* "-" is stdin: a standalone WebAssembly build cannot open files, so
     * test/c/run-wasm.mjs hands it the fixture that way. */
    const int is_stdin = strcmp(path, "-") == 0;
    FILE* file = is_stdin ? stdin : fopen(path, "rb");
    if (file == NULL) {
        printf("%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    size_t capacity = 1 << 20, size = 0;
    char* text = malloc(capacity + 1);
    while (text != NULL) {
        size += fread(text + size, 1, capacity - size, file);
        if (size < capacity) {
            break;
        }
        capacity *= 2;
        char* grown = realloc(text, capacity + 1);
        if (grown == NULL) {
            free(text);
        }
        text = grown;
    }
    const int read_error = ferror(file);
    if (!is_stdin) {
        fclose(file);
    }
    if (text == NULL || read_error) {
        printf("%s: cannot read\n", path);
        free(text);
        return -1;
    }
    text[size] = '\0';
    reader->text = text;
    reader->cursor = text;
    return 0;
}

void fixture_close(fixture_reader* reader) {
    free(reader->text);
    memset(reader, 0, sizeof(*reader));
}

static int is_space(char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

const char* fixture_token(fixture_reader* reader) {
    if (reader->failed || reader->cursor == NULL) {
        return NULL;
    }
    /* The separator cut off after the previous token may have been a newline. */
    reader->line += (size_t)reader->pending_newline;
    reader->pending_newline = 0;
    char* p = reader->cursor;
    while (is_space(*p)) {
        reader->line += *p == '\n';
        p++;
    }
    if (*p == '\0') {
        reader->cursor = p;
        reader->last = NULL;
        return NULL;
    }
    char* token = p;
    while (*p != '\0' && !is_space(*p)) {
        p++;
    }
    if (*p != '\0') {
        reader->pending_newline = *p == '\n';
        *p++ = '\0';
    }
    reader->cursor = p;
    reader->last = token;
    return token;
}

int fixture_read_word(fixture_reader* reader, const char** word) {
    const char* token = fixture_token(reader);
    if (token == NULL) {
        return fail(reader, "unexpected end of file");
    }
    *word = token;
    return 1;
}

int fixture_expect(fixture_reader* reader, const char* word) {
    const char* token = NULL;
    if (!fixture_read_word(reader, &token)) {
        return 0;
    }
    if (strcmp(token, word) != 0) {
        return fail(reader, "expected '%s', found '%s'", word, token);
    }
    return 1;
}

static int read_integer(fixture_reader* reader, int base, long long min, long long max,
                        long long* value) {
    const char* token = NULL;
    if (!fixture_read_word(reader, &token)) {
        return 0;
    }
    char* end = NULL;
    errno = 0;
    const long long parsed = strtoll(token, &end, base);
    if (errno != 0 || end == token || *end != '\0' || parsed < min || parsed > max) {
        return fail(reader, "bad number '%s'", token);
    }
    *value = parsed;
    return 1;
}

int fixture_read_u32(fixture_reader* reader, uint32_t* value) {
    long long parsed = 0;
    if (!read_integer(reader, 10, 0, UINT32_MAX, &parsed)) {
        return 0;
    }
    *value = (uint32_t)parsed;
    return 1;
}

int fixture_read_i32(fixture_reader* reader, int32_t* value) {
    long long parsed = 0;
    if (!read_integer(reader, 10, INT32_MIN, INT32_MAX, &parsed)) {
        return 0;
    }
    *value = (int32_t)parsed;
    return 1;
}

int fixture_read_hex32(fixture_reader* reader, uint32_t* bits) {
    const char* token = NULL;
    if (!fixture_read_word(reader, &token)) {
        return 0;
    }
    if (strlen(token) != 8) {
        return fail(reader, "bad f32 hex word '%s'", token);
    }
    uint32_t value = 0;
    for (int i = 0; i < 8; i++) {
        const char c = token[i];
        const uint32_t digit = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
                               : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                               : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10)
                                                      : 16u;
        if (digit == 16u) {
            return fail(reader, "bad f32 hex word '%s'", token);
        }
        value = value << 4 | digit;
    }
    *bits = value;
    return 1;
}

int fixture_read_array(fixture_reader* reader, uint32_t length, float* out) {
    int present = 0;
    if (!fixture_read_optional_array(reader, length, out, &present)) {
        return 0;
    }
    return present ? 1 : fail(reader, "expected an array ('x' or 'g'), found '-'");
}

int fixture_read_optional_array(fixture_reader* reader, uint32_t length, float* out, int* present) {
    const char* kind = NULL;
    if (!fixture_read_word(reader, &kind)) {
        return 0;
    }
    *present = strcmp(kind, "-") != 0;
    if (!*present) {
        return 1;
    }
    if (strcmp(kind, "x") == 0) {
        for (uint32_t i = 0; i < length; i++) {
            uint32_t bits = 0;
            if (!fixture_read_hex32(reader, &bits)) {
                return 0;
            }
            memcpy(&out[i], &bits, sizeof(bits));
        }
        return 1;
    }
    if (strcmp(kind, "g") == 0) {
        const char* token = NULL;
        if (!fixture_read_word(reader, &token)) {
            return 0;
        }
        char* end = NULL;
        errno = 0;
        const unsigned long long seed = strtoull(token, &end, 10);
        if (errno != 0 || end == token || *end != '\0' || token[0] == '-') {
            return fail(reader, "bad seed '%s'", token);
        }
        fixture_generated((uint64_t)seed, length, out);
        return 1;
    }
    return fail(reader, "expected an array ('x' or 'g'), found '%s'", kind);
}
