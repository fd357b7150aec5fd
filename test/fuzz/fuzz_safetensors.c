/*
 * fuzz_safetensors.c - libFuzzer harness for ema_st_parse (scripts/fuzz.sh).
 *
 * Each input is a whole file. It is parsed as such; on success every accessor
 * is walked and the header's promises are checked (names, dtypes, spans that
 * tile the data section exactly, no overflow). It is parsed again from a
 * copy holding only a prefix of the bytes, with the file size unchanged:
 *   - the first 8 + N bytes (the header): the result must be the same,
 *     status and error offset, since the parser reads the header only;
 *   - a shorter prefix, its length picked from the input's last byte: the
 *     header is then missing (EMA_ERROR_ST_HEADER_MISSING) unless the length
 *     field is itself bad.
 * The copies are allocated to their exact size, so that ASan catches any read
 * past the bytes given. A broken promise aborts, which libFuzzer reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ema_safetensors.h"

#define LENGTH_BYTES 8u

#define REQUIRE(cond)                                                                   \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_safetensors: %s:%d: broken: %s\n", __FILE__, __LINE__, \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

typedef struct span {
    uint64_t begin, end;
} span;

static int by_begin(const void* a, const void* b) {
    const span* x = a;
    const span* y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int is_st_status(ema_status status) {
    return status >= EMA_ERROR_ST_TRUNCATED && status <= EMA_ERROR_ST_BAD_METADATA;
}

/* Walks a parsed file and checks everything it promises. */
static void check_file(const ema_st_file* file, const uint8_t* data, size_t size) {
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = (header_length << 8) | data[i];
    REQUIRE(header_length <= EMA_ST_MAX_HEADER_BYTES && header_length <= size - LENGTH_BYTES);
    const uint64_t data_start = LENGTH_BYTES + header_length;
    const uint64_t data_size = size - data_start;

    const uint32_t count = ema_st_tensor_count(file);
    /* Every entry takes more than a dozen header bytes. */
    REQUIRE(count <= header_length / 8);
    span* spans = malloc((count ? count : 1) * sizeof(span));
    REQUIRE(spans != NULL);
    for (uint32_t i = 0; i < count; i++) {
        const char* name = ema_st_tensor_name(file, i);
        const uint32_t name_length = ema_st_tensor_name_length(file, i);
        REQUIRE(name != NULL);
        REQUIRE(name_length <= header_length);
        REQUIRE(strlen(name) == name_length); /* no U+0000 in a tensor name */
        REQUIRE(!(name_length == 12 && memcmp(name, "__metadata__", 12) == 0));

        const int32_t dtype = ema_st_tensor_dtype(file, i);
        const uint32_t dtype_size = ema_st_dtype_size(dtype);
        REQUIRE(ema_st_dtype_name(dtype) != NULL && dtype_size != 0);

        const uint32_t rank = ema_st_tensor_rank(file, i);
        REQUIRE(rank <= EMA_ST_MAX_RANK);
        uint64_t bytes = dtype_size;
        for (uint32_t d = 0; d < rank; d++) {
            REQUIRE(!__builtin_mul_overflow(bytes, ema_st_tensor_dim(file, i, d), &bytes));
        }
        REQUIRE(ema_st_tensor_dim(file, i, rank) == 0);

        const uint64_t offset = ema_st_tensor_file_offset(file, i);
        const uint64_t length = ema_st_tensor_byte_length(file, i);
        REQUIRE(length == bytes);
        REQUIRE(offset >= data_start && offset <= size);
        REQUIRE(length <= size - offset);
        spans[i].begin = offset - data_start;
        spans[i].end = offset - data_start + length;
    }
    /* Sorted by begin, the spans tile [0, data_size) exactly. */
    qsort(spans, count, sizeof(span), by_begin);
    uint64_t covered = 0;
    for (uint32_t i = 0; i < count; i++) {
        REQUIRE(spans[i].begin == covered);
        covered = spans[i].end;
    }
    REQUIRE(covered == data_size);
    free(spans);

    /* Names are unique (inputs are small: quadratic is fine). */
    for (uint32_t i = 0; i < count; i++) {
        for (uint32_t j = i + 1; j < count; j++) {
            REQUIRE(ema_st_tensor_name_length(file, i) != ema_st_tensor_name_length(file, j) ||
                    memcmp(ema_st_tensor_name(file, i), ema_st_tensor_name(file, j),
                           ema_st_tensor_name_length(file, i)) != 0);
        }
    }

    const uint32_t metadata = ema_st_metadata_count(file);
    REQUIRE(metadata <= header_length / 4);
    for (uint32_t i = 0; i < metadata; i++) {
        const char* key = ema_st_metadata_key(file, i);
        const char* value = ema_st_metadata_value(file, i);
        const uint32_t key_length = ema_st_metadata_key_length(file, i);
        const uint32_t value_length = ema_st_metadata_value_length(file, i);
        REQUIRE(key != NULL && value != NULL);
        REQUIRE(key_length <= header_length && value_length <= header_length);
        REQUIRE(strlen(key) <= key_length && key[key_length] == '\0');
        REQUIRE(strlen(value) <= value_length && value[value_length] == '\0');
    }

    /* Past the end: 0 / NULL. */
    REQUIRE(ema_st_tensor_name(file, count) == NULL && ema_st_tensor_name_length(file, count) == 0);
    REQUIRE(ema_st_tensor_dtype(file, count) == 0 && ema_st_tensor_rank(file, count) == 0);
    REQUIRE(ema_st_tensor_dim(file, count, 0) == 0 && ema_st_tensor_file_offset(file, count) == 0);
    REQUIRE(ema_st_tensor_byte_length(file, count) == 0);
    REQUIRE(ema_st_metadata_key(file, metadata) == NULL && ema_st_metadata_value(file, metadata) == NULL);
    REQUIRE(ema_st_metadata_key_length(file, metadata) == 0);
    REQUIRE(ema_st_metadata_value_length(file, metadata) == 0);
}

/* Parses bytes[0 .. given) of a file of `size` bytes from an exact-size copy. */
static ema_status parse_prefix(const uint8_t* data, size_t given, size_t size, uint64_t* offset) {
    uint8_t* copy = malloc(given ? given : 1);
    REQUIRE(copy != NULL);
    if (given) memcpy(copy, data, given);
    ema_st_file* out = NULL;
    const ema_status status = ema_st_parse(copy, given, size, &out, offset);
    REQUIRE((status == EMA_OK) == (out != NULL));
    ema_st_free(out);
    free(copy);
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    /* The whole file. */
    ema_st_file* file = NULL;
    uint64_t offset = UINT64_MAX;
    const ema_status status = ema_st_parse(data, size, size, &file, &offset);
    if (status == EMA_OK) {
        REQUIRE(file != NULL && offset == 0);
        check_file(file, data, size);
        ema_st_free(file);
    } else {
        REQUIRE(file == NULL); /* untouched */
        REQUIRE(is_st_status(status) || status == EMA_ERROR_OUT_OF_MEMORY);
        REQUIRE(offset <= size);
    }
    if (size < LENGTH_BYTES) {
        REQUIRE(status == EMA_ERROR_ST_TRUNCATED);
        return 0;
    }

    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = (header_length << 8) | data[i];
    const int length_ok = header_length <= EMA_ST_MAX_HEADER_BYTES &&
                          header_length <= size - LENGTH_BYTES;
    REQUIRE(length_ok || status == EMA_ERROR_ST_HEADER_LENGTH);
    if (!length_ok) {
        return 0;
    }

    /* The header's bytes alone: the same answer. */
    const size_t header_end = LENGTH_BYTES + (size_t)header_length;
    uint64_t header_offset = UINT64_MAX;
    const ema_status header_status = parse_prefix(data, header_end, size, &header_offset);
    REQUIRE(header_status == status);
    REQUIRE(header_offset == (status == EMA_OK ? 0 : offset));

    /* Fewer bytes than the header needs: missing, whatever it holds. */
    if (header_end > 0) {
        const size_t shorter = (size_t)((uint64_t)data[size - 1] * header_end / 256);
        if (shorter < header_end) {
            uint64_t short_offset = UINT64_MAX;
            REQUIRE(parse_prefix(data, shorter, size, &short_offset) == EMA_ERROR_ST_HEADER_MISSING);
        }
    }
    return 0;
}
