/*
 * test_safetensors.c - the safetensors header parser (ema_st_parse and its
 * accessors). Files are built in memory: an 8-byte little-endian header
 * length, the JSON header, then zero bytes of data.
 *
 *   valid files      every accessor's values on empty, scalar, zero-size,
 *                    unsorted, all-dtype, escaped, non-ASCII, padded and
 *                    whitespace-laden headers, and a 5000-tensor header
 *   defects          each defect class gives its own status and the file
 *                    offset where it was found, leaves *out untouched and
 *                    leaks nothing (ASan's leak checker runs at exit)
 *
 * Every failing header is parsed twice: with the whole file and with only its
 * first 8 + N bytes. Both must agree, since the parser reads the header only.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "ema_safetensors.h"
#include "test_util.h"

#define LENGTH_BYTES 8u

/* ------------------------------------------------------------------------
 * Building files
 * ---------------------------------------------------------------------- */

typedef struct st_blob {
    uint8_t* bytes;
    size_t size;
} st_blob;

static void put_u64_le(uint8_t* out, uint64_t value) {
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(value >> (8 * i));
    }
}

/* 8-byte length, `header_length` bytes of header, `data_size` zero bytes. */
static st_blob make_file_n(const void* header, size_t header_length, uint64_t data_size) {
    st_blob blob;
    blob.size = LENGTH_BYTES + header_length + (size_t)data_size;
    blob.bytes = calloc(blob.size, 1);
    if (blob.bytes == NULL) {
        fprintf(stderr, "test_safetensors: out of memory\n");
        exit(2);
    }
    put_u64_le(blob.bytes, header_length);
    memcpy(blob.bytes + LENGTH_BYTES, header, header_length);
    return blob;
}

static st_blob make_file(const char* header, uint64_t data_size) {
    return make_file_n(header, strlen(header), data_size);
}

static void free_file(st_blob* blob) {
    free(blob->bytes);
    blob->bytes = NULL;
    blob->size = 0;
}

/* The file offset (8 + index) of the nth occurrence (1-based) of `marker` in
 * the header: where a test expects the parser to point. */
static uint64_t at_marker(int line, const char* header, const char* marker, int nth) {
    const char* from = header;
    const char* found = NULL;
    for (int i = 0; i < nth; i++) {
        found = strstr(from, marker);
        if (found == NULL) {
            break;
        }
        from = found + 1;
    }
    check_result(found != NULL, __FILE__, line, "marker", "marker \"%s\" (#%d) not in the header",
                 marker, nth);
    return found != NULL ? LENGTH_BYTES + (uint64_t)(found - header) : UINT64_MAX;
}

#define AT(header, marker) at_marker(__LINE__, (header), (marker), 1)
#define AT2(header, marker) at_marker(__LINE__, (header), (marker), 2)
/* Offset `k` into the data section of a file with this header. */
#define DATA(header, k) (LENGTH_BYTES + strlen(header) + (uint64_t)(k))

static char g_sentinel;
#define SENTINEL ((ema_st_file*)(void*)&g_sentinel)

/* ------------------------------------------------------------------------
 * Parsing helpers
 * ---------------------------------------------------------------------- */

/* Parses the header with `data_size` zero bytes; checks EMA_OK. */
static ema_st_file* parse_ok_at(int line, const char* header, size_t header_length,
                                uint64_t data_size) {
    st_blob blob = make_file_n(header, header_length, data_size);
    ema_st_file* file = NULL;
    uint64_t offset = 12345;
    const ema_status status = ema_st_parse(blob.bytes, blob.size, blob.size, &file, &offset);
    check_result(status == EMA_OK && file != NULL, __FILE__, line, "ema_st_parse",
                 "got %d (%s) at offset %llu for header %.120s", (int)status,
                 ema_status_string(status), (unsigned long long)offset, header);
    check_result(offset == 0, __FILE__, line, "error_offset", "error offset %llu on success",
                 (unsigned long long)offset);
    free_file(&blob);
    return status == EMA_OK ? file : NULL;
}

#define PARSE_OK(header, data_size) parse_ok_at(__LINE__, (header), strlen(header), (data_size))

/* Parses and expects `expected` at `expected_offset`, with *out untouched.
 * Then again with only the header's bytes given (same result), and with a
 * NULL error_offset (same status). */
static void expect_error_at(int line, const char* header, size_t header_length,
                            uint64_t data_size, ema_status expected, uint64_t expected_offset) {
    st_blob blob = make_file_n(header, header_length, data_size);
    ema_st_file* out = SENTINEL;
    uint64_t offset = UINT64_MAX;
    const ema_status first = ema_st_parse(blob.bytes, blob.size, blob.size, &out, &offset);
    ema_status status = first;
    check_result(status == expected, __FILE__, line, "status",
                 "got %d (%s) at %llu, expected %d (%s) for header %.160s", (int)status,
                 ema_status_string(status), (unsigned long long)offset, (int)expected,
                 ema_status_string(expected), header);
    check_result(offset == expected_offset, __FILE__, line, "error_offset",
                 "error offset %llu, expected %llu (%s) for header %.160s",
                 (unsigned long long)offset, (unsigned long long)expected_offset,
                 ema_status_string(expected), header);
    check_result(offset <= blob.size, __FILE__, line, "error_offset", "offset %llu past the file",
                 (unsigned long long)offset);
    check_result(out == SENTINEL, __FILE__, line, "*out", "*out changed by a failed parse");
    if (status == EMA_OK && out != SENTINEL) {
        ema_st_free(out);
    }

    /* The parser reads the header only: the first 8 + N bytes give the same. */
    out = SENTINEL;
    uint64_t offset2 = UINT64_MAX;
    const size_t header_end = LENGTH_BYTES + header_length;
    uint8_t* head = malloc(header_end);
    memcpy(head, blob.bytes, header_end);
    status = ema_st_parse(head, header_end, blob.size, &out, &offset2);
    check_result(status == first && offset2 == offset, __FILE__, line, "header-only parse",
                 "header-only parse gave %d at %llu, the full file %d at %llu", (int)status,
                 (unsigned long long)offset2, (int)first, (unsigned long long)offset);
    if (status == EMA_OK && out != SENTINEL) {
        ema_st_free(out);
    }
    out = SENTINEL;
    status = ema_st_parse(head, header_end, blob.size, &out, NULL);
    check_result(status == first && (status == EMA_OK || out == SENTINEL), __FILE__, line,
                 "NULL error_offset",
                 "with a NULL error_offset: %d", (int)status);
    if (status == EMA_OK && out != SENTINEL) {
        ema_st_free(out);
    }
    free(head);
    free_file(&blob);
}

#define EXPECT_ERROR(header, data_size, status, offset) \
    expect_error_at(__LINE__, (header), strlen(header), (data_size), (status), (offset))

/* Parses the raw bytes of a whole file (no helper-built length). */
static ema_status parse_raw(const uint8_t* bytes, size_t size, uint64_t file_size,
                            uint64_t* offset) {
    ema_st_file* out = SENTINEL;
    const ema_status status = ema_st_parse(bytes, size, file_size, &out, offset);
    CHECK(status == EMA_OK || out == SENTINEL, "*out untouched on failure (%d)", (int)status);
    if (status == EMA_OK) {
        ema_st_free(out);
    }
    return status;
}

/* ------------------------------------------------------------------------
 * Checking accessors
 * ---------------------------------------------------------------------- */

typedef struct tensor_spec {
    const char* name; /* decoded UTF-8 */
    int32_t dtype;
    uint32_t rank;
    uint64_t dims[EMA_ST_MAX_RANK];
    uint64_t begin, end;
} tensor_spec;

static void check_tensor_at(int line, const ema_st_file* file, uint32_t index,
                            uint64_t data_start, const tensor_spec* t) {
    const char* name = ema_st_tensor_name(file, index);
    const uint32_t length = ema_st_tensor_name_length(file, index);
    check_result(name != NULL && length == strlen(t->name) && memcmp(name, t->name, length) == 0 &&
                     name[length] == '\0',
                 __FILE__, line, "name", "tensor %u: name \"%s\" (%u bytes), expected \"%s\"", index,
                 name != NULL ? name : "(null)", length, t->name);
    check_result(ema_st_tensor_dtype(file, index) == t->dtype, __FILE__, line, "dtype",
                 "tensor %u (%s): dtype %d, expected %d", index, t->name,
                 ema_st_tensor_dtype(file, index), t->dtype);
    check_result(ema_st_tensor_rank(file, index) == t->rank, __FILE__, line, "rank",
                 "tensor %u (%s): rank %u, expected %u", index, t->name,
                 ema_st_tensor_rank(file, index), t->rank);
    for (uint32_t d = 0; d < t->rank; d++) {
        check_result(ema_st_tensor_dim(file, index, d) == t->dims[d], __FILE__, line, "dim",
                     "tensor %u (%s): dim %u is %llu, expected %llu", index, t->name, d,
                     (unsigned long long)ema_st_tensor_dim(file, index, d),
                     (unsigned long long)t->dims[d]);
    }
    check_result(ema_st_tensor_dim(file, index, t->rank) == 0 &&
                     ema_st_tensor_dim(file, index, UINT32_MAX) == 0,
                 __FILE__, line, "dim", "tensor %u: dims past the rank are 0", index);
    check_result(ema_st_tensor_file_offset(file, index) == data_start + t->begin, __FILE__, line,
                 "file offset", "tensor %u (%s): offset %llu, expected %llu", index, t->name,
                 (unsigned long long)ema_st_tensor_file_offset(file, index),
                 (unsigned long long)(data_start + t->begin));
    check_result(ema_st_tensor_byte_length(file, index) == t->end - t->begin, __FILE__, line,
                 "byte length", "tensor %u (%s): %llu bytes, expected %llu", index, t->name,
                 (unsigned long long)ema_st_tensor_byte_length(file, index),
                 (unsigned long long)(t->end - t->begin));
}

#define CHECK_TENSOR(file, index, header, ...)                                         \
    do {                                                                               \
        const tensor_spec spec_ = __VA_ARGS__;                                         \
        check_tensor_at(__LINE__, (file), (index), LENGTH_BYTES + strlen(header), &spec_); \
    } while (0)

static void check_metadata_at(int line, const ema_st_file* file, uint32_t index, const char* key,
                              uint32_t key_length, const char* value, uint32_t value_length) {
    const char* k = ema_st_metadata_key(file, index);
    const char* v = ema_st_metadata_value(file, index);
    const uint32_t kl = ema_st_metadata_key_length(file, index);
    const uint32_t vl = ema_st_metadata_value_length(file, index);
    check_result(k != NULL && kl == key_length && memcmp(k, key, kl) == 0 && k[kl] == '\0',
                 __FILE__, line, "metadata key", "metadata %u: key \"%s\" (%u bytes), expected \"%s\" (%u)",
                 index, k != NULL ? k : "(null)", kl, key, key_length);
    check_result(v != NULL && vl == value_length && memcmp(v, value, vl) == 0 && v[vl] == '\0',
                 __FILE__, line, "metadata value",
                 "metadata %u: value \"%s\" (%u bytes), expected \"%s\" (%u)", index,
                 v != NULL ? v : "(null)", vl, value, value_length);
}

/* Lengths from sizeof so that values may hold NUL bytes. */
#define CHECK_METADATA(file, index, key, value) \
    check_metadata_at(__LINE__, (file), (index), key, sizeof(key) - 1, value, sizeof(value) - 1)

/* Every accessor returns 0 / NULL for indices past the end. */
static void check_out_of_range(int line, const ema_st_file* file) {
    const uint32_t tensors = ema_st_tensor_count(file);
    const uint32_t metadata = ema_st_metadata_count(file);
    const uint32_t bad_tensor[] = {tensors, tensors + 1, UINT32_MAX};
    for (size_t i = 0; i < COUNT_OF(bad_tensor); i++) {
        const uint32_t index = bad_tensor[i];
        check_result(ema_st_tensor_name(file, index) == NULL &&
                         ema_st_tensor_name_length(file, index) == 0 &&
                         ema_st_tensor_dtype(file, index) == 0 && ema_st_tensor_rank(file, index) == 0 &&
                         ema_st_tensor_dim(file, index, 0) == 0 &&
                         ema_st_tensor_file_offset(file, index) == 0 &&
                         ema_st_tensor_byte_length(file, index) == 0,
                     __FILE__, line, "tensor index", "tensor index %u (count %u) gives 0 / NULL",
                     index, tensors);
    }
    const uint32_t bad_metadata[] = {metadata, metadata + 1, UINT32_MAX};
    for (size_t i = 0; i < COUNT_OF(bad_metadata); i++) {
        const uint32_t index = bad_metadata[i];
        check_result(ema_st_metadata_key(file, index) == NULL &&
                         ema_st_metadata_key_length(file, index) == 0 &&
                         ema_st_metadata_value(file, index) == NULL &&
                         ema_st_metadata_value_length(file, index) == 0,
                     __FILE__, line, "metadata index", "metadata index %u (count %u) gives 0 / NULL",
                     index, metadata);
    }
}

#define CHECK_OUT_OF_RANGE(file) check_out_of_range(__LINE__, (file))

/* ------------------------------------------------------------------------
 * Valid files
 * ---------------------------------------------------------------------- */

static void test_dtype_table(void) {
    static const struct {
        int32_t dtype;
        const char* name;
        uint32_t size;
    } expected[] = {
        {EMA_ST_BOOL, "BOOL", 1},       {EMA_ST_U8, "U8", 1},   {EMA_ST_I8, "I8", 1},
        {EMA_ST_F8_E5M2, "F8_E5M2", 1}, {EMA_ST_F8_E4M3, "F8_E4M3", 1},
        {EMA_ST_I16, "I16", 2},         {EMA_ST_U16, "U16", 2}, {EMA_ST_F16, "F16", 2},
        {EMA_ST_BF16, "BF16", 2},       {EMA_ST_I32, "I32", 4}, {EMA_ST_U32, "U32", 4},
        {EMA_ST_F32, "F32", 4},         {EMA_ST_F64, "F64", 8}, {EMA_ST_I64, "I64", 8},
        {EMA_ST_U64, "U64", 8},
    };
    CHECK(COUNT_OF(expected) == 15, "15 dtypes");
    for (size_t i = 0; i < COUNT_OF(expected); i++) {
        const char* name = ema_st_dtype_name(expected[i].dtype);
        CHECK(name != NULL && strcmp(name, expected[i].name) == 0, "dtype %d is %s",
              expected[i].dtype, expected[i].name);
        CHECK(ema_st_dtype_size(expected[i].dtype) == expected[i].size, "%s is %u bytes",
              expected[i].name, expected[i].size);
    }
    const int32_t bad[] = {0, 16, -1, 100, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        CHECK(ema_st_dtype_name(bad[i]) == NULL && ema_st_dtype_size(bad[i]) == 0,
              "dtype %d has no name and size 0", bad[i]);
    }

    /* One file holding every dtype, each a [3] tensor, in enum order. */
    char header[2048];
    size_t used = 0;
    uint64_t offset = 0;
    used += (size_t)snprintf(header + used, sizeof(header) - used, "{");
    for (size_t i = 0; i < COUNT_OF(expected); i++) {
        const uint64_t bytes = 3u * expected[i].size;
        used += (size_t)snprintf(header + used, sizeof(header) - used,
                                 "%s\"t_%s\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[%llu,%llu]}",
                                 i ? "," : "", expected[i].name, expected[i].name,
                                 (unsigned long long)offset, (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    snprintf(header + used, sizeof(header) - used, "}");
    ema_st_file* file = PARSE_OK(header, offset);
    if (file == NULL) {
        return;
    }
    CHECK(ema_st_tensor_count(file) == 15, "15 tensors, got %u", ema_st_tensor_count(file));
    uint64_t begin = 0;
    for (uint32_t i = 0; i < COUNT_OF(expected); i++) {
        char name[32];
        snprintf(name, sizeof(name), "t_%s", expected[i].name);
        tensor_spec spec = {name, expected[i].dtype, 1, {3}, begin, begin + 3u * expected[i].size};
        check_tensor_at(__LINE__, file, i, LENGTH_BYTES + strlen(header), &spec);
        begin += 3u * expected[i].size;
    }
    CHECK_OUT_OF_RANGE(file);
    ema_st_free(file);

    /* A dtype written with escapes is the same string. */
    const char* escaped = "{\"w\":{\"dtype\":\"\\u0046\\u0033\\u0032\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    file = PARSE_OK(escaped, 4);
    if (file != NULL) {
        CHECK(ema_st_tensor_dtype(file, 0) == EMA_ST_F32, "escaped \"F32\" is F32");
        ema_st_free(file);
    }
    /* The longest dtype name and the longest field name, every character
     * escaped: still the same strings. */
    const char* all_escaped =
        "{\"w\":{\"dtype\":\"\\u0046\\u0038\\u005f\\u0045\\u0035\\u004d\\u0032\",\"shape\":[1],"
        "\"\\u0064\\u0061\\u0074\\u0061\\u005f\\u006f\\u0066\\u0066\\u0073\\u0065\\u0074\\u0073\":[0,1]}}";
    file = PARSE_OK(all_escaped, 1);
    if (file != NULL) {
        CHECK_TENSOR(file, 0, all_escaped, {"w", EMA_ST_F8_E5M2, 1, {1}, 0, 1});
        ema_st_free(file);
    }
}

static void test_empty(void) {
    const char* headers[] = {"{}", "{}      ", "{  }  ", "{\n}\n\t\r", "{\"__metadata__\":{}}"};
    for (size_t i = 0; i < COUNT_OF(headers); i++) {
        ema_st_file* file = PARSE_OK(headers[i], 0);
        if (file == NULL) {
            continue;
        }
        CHECK(ema_st_tensor_count(file) == 0 && ema_st_metadata_count(file) == 0,
              "header %zu: no tensors, no metadata", i);
        CHECK_OUT_OF_RANGE(file);
        ema_st_free(file);
    }
    /* NULL is an empty file to every accessor, and free accepts it. */
    CHECK_OUT_OF_RANGE(NULL);
    CHECK(ema_st_tensor_count(NULL) == 0 && ema_st_metadata_count(NULL) == 0, "NULL file");
    ema_st_free(NULL);
}

static void test_one_tensor(void) {
    const char* h = "{\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
    ema_st_file* file = PARSE_OK(h, 24);
    if (file == NULL) {
        return;
    }
    CHECK(ema_st_tensor_count(file) == 1, "one tensor");
    CHECK(ema_st_metadata_count(file) == 0, "no metadata");
    CHECK_TENSOR(file, 0, h, {"weight", EMA_ST_F32, 2, {2, 3}, 0, 24});
    CHECK(ema_st_tensor_file_offset(file, 0) == 8 + strlen(h), "data right after the header");
    CHECK_OUT_OF_RANGE(file);
    ema_st_free(file);

    /* Only the header's bytes given, the file's size told: the same result. */
    st_blob blob = make_file(h, 24);
    const size_t header_end = LENGTH_BYTES + strlen(h);
    for (size_t size = header_end; size <= blob.size; size += 8) {
        uint8_t* prefix = malloc(size);
        memcpy(prefix, blob.bytes, size);
        file = NULL;
        CHECK_STATUS(ema_st_parse(prefix, size, blob.size, &file, NULL), EMA_OK);
        if (file != NULL) {
            CHECK_TENSOR(file, 0, h, {"weight", EMA_ST_F32, 2, {2, 3}, 0, 24});
            ema_st_free(file);
        }
        free(prefix);
    }
    free_file(&blob);
}

static void test_unsorted(void) {
    const char* h =
        "{\"c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
        "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[4,12]},"
        "\"d\":{\"dtype\":\"BF16\",\"shape\":[2,1,2],\"data_offsets\":[20,28]}}";
    ema_st_file* file = PARSE_OK(h, 28);
    if (file == NULL) {
        return;
    }
    CHECK(ema_st_tensor_count(file) == 4, "four tensors");
    /* Header order, not data order. */
    CHECK_TENSOR(file, 0, h, {"c", EMA_ST_F32, 1, {2}, 12, 20});
    CHECK_TENSOR(file, 1, h, {"a", EMA_ST_U8, 1, {4}, 0, 4});
    CHECK_TENSOR(file, 2, h, {"b", EMA_ST_I64, 1, {1}, 4, 12});
    CHECK_TENSOR(file, 3, h, {"d", EMA_ST_BF16, 3, {2, 1, 2}, 20, 28});
    CHECK_OUT_OF_RANGE(file);
    ema_st_free(file);
}

static void test_scalars_and_zero_size(void) {
    const char* h =
        "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
        "\"t\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[8,9]}}";
    ema_st_file* file = PARSE_OK(h, 9);
    if (file != NULL) {
        CHECK_TENSOR(file, 0, h, {"s", EMA_ST_F64, 0, {0}, 0, 8});
        CHECK_TENSOR(file, 1, h, {"t", EMA_ST_BOOL, 0, {0}, 8, 9});
        ema_st_free(file);
    }

    /* Zero-size tensors: two at 0 (one before a real tensor in span order),
     * one at the very end, one with a zero in the middle of its shape. */
    const char* z =
        "{\"z1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"z2\":{\"dtype\":\"I64\",\"shape\":[3,0,7],\"data_offsets\":[0,0]},"
        "\"z3\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[4,4]}}";
    file = PARSE_OK(z, 4);
    if (file != NULL) {
        CHECK(ema_st_tensor_count(file) == 4, "four tensors");
        CHECK_TENSOR(file, 0, z, {"z1", EMA_ST_F32, 1, {0}, 0, 0});
        CHECK_TENSOR(file, 1, z, {"w", EMA_ST_F32, 1, {1}, 0, 4});
        CHECK_TENSOR(file, 2, z, {"z2", EMA_ST_I64, 3, {3, 0, 7}, 0, 0});
        CHECK_TENSOR(file, 3, z, {"z3", EMA_ST_U8, 2, {0, 5}, 4, 4});
        ema_st_free(file);
    }

    /* Only zero-size tensors and no data at all. */
    const char* e =
        "{\"e\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,0]},"
        "\"f\":{\"dtype\":\"F16\",\"shape\":[0,0],\"data_offsets\":[0,0]}}";
    file = PARSE_OK(e, 0);
    if (file != NULL) {
        CHECK_TENSOR(file, 1, e, {"f", EMA_ST_F16, 2, {0, 0}, 0, 0});
        ema_st_free(file);
    }

    /* The largest value that fits, as a dim of an empty tensor. */
    const char* big =
        "{\"b\":{\"dtype\":\"U8\",\"shape\":[18446744073709551615,0],\"data_offsets\":[0,0]}}";
    file = PARSE_OK(big, 0);
    if (file != NULL) {
        CHECK(ema_st_tensor_dim(file, 0, 0) == UINT64_MAX, "UINT64_MAX as a dim");
        ema_st_free(file);
    }

    /* 32 dims is the limit. */
    char header[512];
    size_t used = (size_t)snprintf(header, sizeof(header), "{\"r\":{\"dtype\":\"U8\",\"shape\":[");
    for (int d = 0; d < 32; d++) {
        used += (size_t)snprintf(header + used, sizeof(header) - used, d ? ",%d" : "%d",
                                 d == 5 ? 2 : 1);
    }
    snprintf(header + used, sizeof(header) - used, "],\"data_offsets\":[0,2]}}");
    file = PARSE_OK(header, 2);
    if (file != NULL) {
        CHECK(ema_st_tensor_rank(file, 0) == 32, "rank 32");
        CHECK(ema_st_tensor_dim(file, 0, 5) == 2 && ema_st_tensor_dim(file, 0, 31) == 1 &&
                  ema_st_tensor_dim(file, 0, 32) == 0,
              "dims of a rank-32 tensor");
        ema_st_free(file);
    }
}

static void test_metadata(void) {
    const char* h =
        "{\"__metadata__\":{\"format\":\"pt\","
        "\"note\":\"line1\\nline2 \\\"quoted\\\" caf\\u00e9 \\ud83d\\ude00!\","
        "\"esc\":\"\\b\\f\\r\\t\\/\\\\\","
        "\"upper\":\"\\u00E9\\uD83D\\uDE00\",\"edges\":\"\\u007f\\u0080\\u07FF\\u0800\\u20ac\\uffff\\udbff\\udfff\","
        "\"nul\":\"a\\u0000b\","
        "\"\":\"empty key\","
        "\"k\\u00e9y\":\"\","
        "\"raw\":\"\xe6\x97\xa5\xe6\x9c\xac \xf4\x8f\xbf\xbf\"},"
        "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    ema_st_file* file = PARSE_OK(h, 1);
    if (file == NULL) {
        return;
    }
    CHECK(ema_st_tensor_count(file) == 1, "one tensor beside the metadata");
    CHECK_TENSOR(file, 0, h, {"w", EMA_ST_U8, 1, {1}, 0, 1});
    CHECK(ema_st_metadata_count(file) == 9, "9 metadata entries, got %u", ema_st_metadata_count(file));
    CHECK_METADATA(file, 0, "format", "pt");
    CHECK_METADATA(file, 1, "note", "line1\nline2 \"quoted\" caf\xc3\xa9 \xf0\x9f\x98\x80!");
    CHECK_METADATA(file, 2, "esc", "\b\f\r\t/\\");
    CHECK_METADATA(file, 3, "upper", "\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_METADATA(file, 4, "edges",
                   "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xe2\x82\xac\xef\xbf\xbf\xf4\x8f\xbf\xbf");
    CHECK_METADATA(file, 5, "nul", "a\0b");
    CHECK_METADATA(file, 6, "", "empty key");
    CHECK_METADATA(file, 7, "k\xc3\xa9y", "");
    CHECK_METADATA(file, 8, "raw", "\xe6\x97\xa5\xe6\x9c\xac \xf4\x8f\xbf\xbf");
    CHECK_OUT_OF_RANGE(file);
    ema_st_free(file);

    /* Metadata after the tensors, and between them. */
    const char* after =
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"__metadata__\":{\"k\":\"v\"},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}";
    file = PARSE_OK(after, 2);
    if (file != NULL) {
        CHECK(ema_st_tensor_count(file) == 2 && ema_st_metadata_count(file) == 1, "2 + 1 entries");
        CHECK_TENSOR(file, 0, after, {"a", EMA_ST_U8, 1, {1}, 0, 1});
        CHECK_TENSOR(file, 1, after, {"b", EMA_ST_U8, 1, {1}, 1, 2});
        CHECK_METADATA(file, 0, "k", "v");
        ema_st_free(file);
    }

    /* "__metadata__" spelled with an escape is still the metadata block. */
    const char* escaped = "{\"\\u005f_metadata__\":{\"x\":\"y\"}}";
    file = PARSE_OK(escaped, 0);
    if (file != NULL) {
        CHECK(ema_st_tensor_count(file) == 0 && ema_st_metadata_count(file) == 1, "escaped key");
        CHECK_METADATA(file, 0, "x", "y");
        ema_st_free(file);
    }
}

static void test_names(void) {
    const char* h =
        "{\"a\\tb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"caf\\u00e9\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
        "\"w\xc3\xa9ight\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]},"
        "\"\xe6\x97\xa5\xe6\x9c\xac\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]},"
        "\"\xf0\x9f\x98\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[4,5]},"
        "\"\\ud83d\\ude00x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[5,6]},"
        "\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[6,7]},"
        "\"sl\\/ash q\\\"uote back\\\\slash\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[7,8]},"
        "\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\x7f\":"
        "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[8,9]},"
        "\"dtype\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9,10]}}";
    ema_st_file* file = PARSE_OK(h, 10);
    if (file == NULL) {
        return;
    }
    CHECK(ema_st_tensor_count(file) == 10, "ten tensors, got %u", ema_st_tensor_count(file));
    CHECK_TENSOR(file, 0, h, {"a\tb", EMA_ST_U8, 1, {1}, 0, 1});
    CHECK_TENSOR(file, 1, h, {"caf\xc3\xa9", EMA_ST_U8, 1, {1}, 1, 2});
    CHECK_TENSOR(file, 2, h, {"w\xc3\xa9ight", EMA_ST_U8, 1, {1}, 2, 3});
    CHECK_TENSOR(file, 3, h, {"\xe6\x97\xa5\xe6\x9c\xac", EMA_ST_U8, 1, {1}, 3, 4});
    CHECK_TENSOR(file, 4, h, {"\xf0\x9f\x98\x80", EMA_ST_U8, 1, {1}, 4, 5});
    CHECK_TENSOR(file, 5, h, {"\xf0\x9f\x98\x80x", EMA_ST_U8, 1, {1}, 5, 6});
    CHECK_TENSOR(file, 6, h, {"", EMA_ST_U8, 1, {1}, 6, 7});
    CHECK_TENSOR(file, 7, h, {"sl/ash q\"uote back\\slash", EMA_ST_U8, 1, {1}, 7, 8});
    CHECK_TENSOR(file, 8, h,
                 {"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\x7f",
                  EMA_ST_U8, 1, {1}, 8, 9});
    CHECK_TENSOR(file, 9, h, {"dtype", EMA_ST_U8, 1, {1}, 9, 10});
    ema_st_free(file);
}

static void test_whitespace(void) {
    /* Whitespace everywhere JSON allows it, and as padding at the end. */
    const char* h =
        "{ \"a\" \t:\r\n{ \"dtype\" : \"F32\" , \"shape\" : [ 2 , 1 ] ,\n"
        "  \"data_offsets\" : [ 0 , 8 ] } ,\n \"__metadata__\" : { \"k\" : \"v\" } ,"
        " \"s\" : { \"shape\" : [ ] , \"data_offsets\" : [\t8\t,\t10\t] , \"dtype\" : \"I16\" } ,"
        " \"m\" : { \"data_offsets\" : [ 10 , 10 ] , \"dtype\" : \"U8\" , \"shape\" : [ 0 ] }\n}\n\t  ";
    ema_st_file* file = PARSE_OK(h, 10);
    if (file != NULL) {
        CHECK(ema_st_tensor_count(file) == 3 && ema_st_metadata_count(file) == 1, "3 + 1 entries");
        CHECK_TENSOR(file, 0, h, {"a", EMA_ST_F32, 2, {2, 1}, 0, 8});
        CHECK_TENSOR(file, 1, h, {"s", EMA_ST_I16, 0, {0}, 8, 10});
        CHECK_TENSOR(file, 2, h, {"m", EMA_ST_U8, 1, {0}, 10, 10});
        CHECK_METADATA(file, 0, "k", "v");
        ema_st_free(file);
    }

    /* The reference writer pads with spaces to a multiple of 8. */
    const char* padded = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}         ";
    file = PARSE_OK(padded, 4);
    if (file != NULL) {
        CHECK_TENSOR(file, 0, padded, {"a", EMA_ST_F32, 1, {1}, 0, 4});
        CHECK(ema_st_tensor_file_offset(file, 0) == 8 + strlen(padded), "data after the padding");
        ema_st_free(file);
    }
}

/* ------------------------------------------------------------------------
 * Defects
 * ---------------------------------------------------------------------- */

static void test_argument_errors(void) {
    st_blob blob = make_file("{}", 0);
    ema_st_file* out = SENTINEL;
    uint64_t offset = 99;
    CHECK_STATUS(ema_st_parse(blob.bytes, blob.size, blob.size, NULL, &offset),
                 EMA_ERROR_NULL_ARGUMENT);
    CHECK(offset == 0, "offset 0 for a NULL out");
    CHECK_STATUS(ema_st_parse(NULL, 10, 10, &out, &offset), EMA_ERROR_NULL_ARGUMENT);
    CHECK(out == SENTINEL, "*out untouched");
    CHECK_STATUS(ema_st_parse(blob.bytes, blob.size, blob.size - 1, &out, &offset),
                 EMA_ERROR_OUT_OF_RANGE);
    CHECK(out == SENTINEL, "*out untouched");
    /* No bytes at all: NULL is allowed with size 0. */
    CHECK_STATUS(ema_st_parse(NULL, 0, 0, &out, &offset), EMA_ERROR_ST_TRUNCATED);
    CHECK_STATUS(ema_st_parse(NULL, 0, 100, &out, &offset), EMA_ERROR_ST_HEADER_MISSING);
    CHECK(out == SENTINEL, "*out untouched");
    free_file(&blob);
}

static void test_length_errors(void) {
    uint8_t bytes[16];
    uint64_t offset = 99;
    memset(bytes, 0, sizeof(bytes));
    /* Fewer than 8 bytes in the file. */
    for (size_t size = 0; size < 8; size++) {
        offset = 99;
        CHECK_STATUS(parse_raw(bytes, size, size, &offset), EMA_ERROR_ST_TRUNCATED);
        CHECK(offset == 0, "truncated at offset 0 (size %zu)", size);
    }
    /* The file is long enough but fewer than 8 bytes were given. */
    CHECK_STATUS(parse_raw(bytes, 5, 1000, &offset), EMA_ERROR_ST_HEADER_MISSING);

    /* Header length past the end of the file. */
    st_blob blob = make_file("{}", 0);
    put_u64_le(blob.bytes, 3);
    CHECK_STATUS(parse_raw(blob.bytes, blob.size, blob.size, &offset), EMA_ERROR_ST_HEADER_LENGTH);
    CHECK(offset == 0, "the length field is at offset 0");
    put_u64_le(blob.bytes, UINT64_MAX);
    CHECK_STATUS(parse_raw(blob.bytes, blob.size, blob.size, &offset), EMA_ERROR_ST_HEADER_LENGTH);
    put_u64_le(blob.bytes, (uint64_t)1 << 63);
    CHECK_STATUS(parse_raw(blob.bytes, blob.size, blob.size, &offset), EMA_ERROR_ST_HEADER_LENGTH);
    /* A header length of 0 is in range but no JSON object. */
    put_u64_le(blob.bytes, 0);
    CHECK_STATUS(parse_raw(blob.bytes, blob.size, blob.size, &offset), EMA_ERROR_ST_NOT_OBJECT);
    free_file(&blob);

    /* Over 100 MB, even in a file that large: refused before any reading. */
    put_u64_le(bytes, (uint64_t)EMA_ST_MAX_HEADER_BYTES + 1);
    CHECK_STATUS(parse_raw(bytes, 8, (uint64_t)1 << 40, &offset), EMA_ERROR_ST_HEADER_LENGTH);
    CHECK(offset == 0, "the length field is at offset 0");
    /* Exactly 100 MB is allowed: the bytes given stop before it ends. */
    put_u64_le(bytes, EMA_ST_MAX_HEADER_BYTES);
    CHECK_STATUS(parse_raw(bytes, 16, (uint64_t)1 << 40, &offset), EMA_ERROR_ST_HEADER_MISSING);
    CHECK(offset == 0, "missing header at offset 0");

    /* Given fewer bytes than 8 + N of a large file: the header is missing. */
    const char* h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    blob = make_file(h, 4);
    const size_t header_end = LENGTH_BYTES + strlen(h);
    for (size_t size = 8; size < header_end; size += 7) {
        uint8_t* prefix = malloc(size);
        memcpy(prefix, blob.bytes, size);
        CHECK_STATUS(parse_raw(prefix, size, (uint64_t)1 << 40, &offset),
                     EMA_ERROR_ST_HEADER_MISSING);
        CHECK_STATUS(parse_raw(prefix, size, blob.size, &offset), EMA_ERROR_ST_HEADER_MISSING);
        free(prefix);
    }
    /* The header one byte longer than the file: a length error, not missing. */
    CHECK_STATUS(parse_raw(blob.bytes, header_end - 1, header_end - 1, &offset),
                 EMA_ERROR_ST_HEADER_LENGTH);
    free_file(&blob);
}

static void test_json_errors(void) {
    const char* h;
    /* Missing closing braces: found where the header ends. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_JSON, DATA(h, 0));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_JSON, DATA(h, 0));
    h = "{\"__metadata__\":{\"k\":\"v\"";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, DATA(h, 0));
    h = "{";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, DATA(h, 0));
    /* Trailing commas: the key that should follow is missing. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_JSON, AT(h, ",}") + 1);
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_JSON, AT(h, ",}") + 1);
    h = "{\"__metadata__\":{\"k\":\"v\",}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, ",}") + 1);
    /* Garbage after the object (only whitespace may pad the header). */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_JSON, AT(h, "x"));
    h = "{}{}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT2(h, "{"));
    {
        /* NUL bytes are no padding. */
        static const char nul_padded[] = "{}\0\0";
        expect_error_at(__LINE__, nul_padded, 4, 0, EMA_ERROR_ST_JSON, 10);
    }
    /* Unterminated strings: reported at their opening quote. */
    h = "{\"abc";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"abc"));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_JSON, AT(h, "\"b"));
    h = "{\"__metadata__\":{\"k\":\"v}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"v"));
    h = "{\"a\\\"}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"a"));
    h = "{\"a\\"; /* a backslash in the header's last byte */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"a"));
    h = "{\"a\":{\"dtype\":\"F3\\";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"F3"));
    /* Raw control characters in strings: at the character. */
    h = "{\"a\nb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_JSON, AT(h, "\n"));
    h = "{\"__metadata__\":{\"k\":\"tab\there\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\t"));
    h = "{\"a\x1f\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\x1f"));
    {
        static const char raw_nul[] = "{\"a\0\":{}}";
        expect_error_at(__LINE__, raw_nul, sizeof(raw_nul) - 1, 0, EMA_ERROR_ST_JSON, 8 + 3);
    }
    /* Bad escapes: at the backslash. */
    h = "{\"a\\qb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_JSON, AT(h, "\\q"));
    h = "{\"a\\u12G4\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\\u"));
    h = "{\"a\\u12\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\\u"));
    h = "{\"a\\u41\""; /* fewer than 4 bytes left for the hex digits */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\\u"));
    h = "{\"a\\x41\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\\x"));
    h = "{\"a\\U0041\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\\U"));
    h = "{\"a\\'\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\\'"));
    h = "{\"__metadata__\":{\"k\":\"\\ud83d\\u12\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\\ud83d"));
    /* Other syntax: missing colon, missing comma, non-string keys. */
    h = "{\"a\" {\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_JSON, AT(h, "{\"dtype"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]} "
        "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}";
    EXPECT_ERROR(h, 2, EMA_ERROR_ST_JSON, AT(h, "\"b\""));
    h = "{a:{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "a"));
    h = "{\"a\":{\"dtype\" \"U8\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"U8"));
    h = "{\"a\":{\"dtype\":\"U8\" \"shape\":[1]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"shape"));
    h = "{\"a\":{dtype:\"U8\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "dtype"));
    h = "{\"__metadata__\":{5:\"v\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "5"));
    h = "{\"__metadata__\":{\"k\" \"v\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"v"));
    h = "{\"__metadata__\":{\"k\":\"v\" \"k2\":\"v\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"k2"));
}

static void test_utf8_errors(void) {
    const char* h;
    /* Invalid bytes in a name: at the first bad byte. */
    h = "{\"a\xff\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xff"));
    h = "{\"a\xc0\x80\":{}}"; /* overlong NUL */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xc0"));
    h = "{\"a\xc1\xbf\":{}}"; /* overlong */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xc1"));
    h = "{\"a\xe0\x80\xaf\":{}}"; /* overlong 3-byte */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xe0"));
    h = "{\"a\xf0\x8f\xbf\xbf\":{}}"; /* overlong 4-byte */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xf0"));
    h = "{\"a\xe2\x82\":{}}"; /* truncated sequence */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xe2"));
    h = "{\"a\xc3\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xc3"));
    h = "{\"a\xed\xa0\x80\":{}}"; /* encoded surrogate U+D800 */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xed"));
    h = "{\"a\xed\xbf\xbf\":{}}"; /* encoded surrogate U+DFFF */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xed"));
    h = "{\"a\xf4\x90\x80\x80\":{}}"; /* U+110000 */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xf4"));
    h = "{\"a\xf5\x80\x80\x80\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xf5"));
    h = "{\"a\x80\":{}}"; /* lone continuation byte */
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\x80"));
    h = "{\"a\xe2\x28\xa1\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xe2"));
    /* Lone surrogate escapes: at the backslash. */
    h = "{\"a\\ud83d\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\\u"));
    h = "{\"a\\ude00b\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\\u"));
    h = "{\"a\\ud83d\\u0041\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\\u"));
    h = "{\"a\\ud83d\\ud83d\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\\u"));
    h = "{\"a\\ud83d\\n\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\\u"));
    /* In metadata keys and values, and in dtype values. */
    h = "{\"__metadata__\":{\"k\":\"v\xff\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xff"));
    h = "{\"__metadata__\":{\"k\xc0\xaf\":\"v\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xc0"));
    h = "{\"__metadata__\":{\"k\":\"\\udfff\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\\u"));
    h = "{\"a\":{\"dtype\":\"F3\xff\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xff"));
}

static void test_structure_errors(void) {
    const char* h;
    /* The header, or an entry, is not an object. */
    h = "[]";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, AT(h, "["));
    /* Like the reference implementation: '{' must be the very first byte. */
    h = "  [{\"a\":1}]";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, (uint64_t)LENGTH_BYTES);
    h = " {}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, (uint64_t)LENGTH_BYTES);
    h = "\"a\"";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, AT(h, "\"a"));
    h = "null";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, AT(h, "null"));
    h = "   ";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, (uint64_t)LENGTH_BYTES);
    h = "";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, DATA(h, 0));
    h = "{\"a\":5}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, AT(h, "5"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"b\": [0,1]}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_NOT_OBJECT, AT(h, " [0,1]") + 1);
    h = "{\"a\":\"F32\"}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, AT(h, "\"F32"));
    h = "{\"a\":null}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_OBJECT, AT(h, "null"));

    /* A name holding U+0000: at the entry's key. */
    h = "{\"ok\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}";
    EXPECT_ERROR(h, 2, EMA_ERROR_ST_BAD_NAME, AT(h, "\"a\\u"));
    h = "{\"\\u0000\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_NAME, AT(h, "\"\\u"));
}

static void test_duplicate_errors(void) {
    const char* h;
    /* At the later entry's key. */
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}";
    EXPECT_ERROR(h, 2, EMA_ERROR_ST_DUPLICATE_NAME, AT2(h, "\"a\""));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
        "\"\\u0061\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}";
    EXPECT_ERROR(h, 3, EMA_ERROR_ST_DUPLICATE_NAME, AT(h, "\"\\u0061"));
    /* Earlier in the header, later in the data; raw vs escaped UTF-8. */
    h = "{\"caf\\u00e9\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
        "\"caf\xc3\xa9\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 2, EMA_ERROR_ST_DUPLICATE_NAME, AT(h, "\"caf\xc3"));
    /* Duplicate zero-size tensors at the same offset. */
    h = "{\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_DUPLICATE_NAME, AT2(h, "\"z\""));
    /* Two metadata blocks: at the second. */
    h = "{\"__metadata__\":{\"a\":\"b\"},\"__metadata__\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_DUPLICATE_NAME, AT2(h, "\"__metadata__\""));
    h = "{\"__metadata__\":{},\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"__metadata__\":5}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_DUPLICATE_NAME, AT2(h, "\"__metadata__\""));
}

static void test_field_errors(void) {
    const char* h;
    /* Unknown or repeated field: at its key. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_BAD_FIELD, AT(h, "\"extra"));
    h = "{\"a\":{\"Dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_BAD_FIELD, AT(h, "\"Dtype"));
    h = "{\"a\":{\"dtype\":\"F32\",\"a_much_longer_field_name\":1}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_FIELD, AT(h, "\"a_much"));
    h = "{\"a\":{\"dtype\":\"F32\",\"data_offsets_data_offsets_data_offsets_data_offsets_data_offsets_"
        "data_offsets_data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_FIELD, AT(h, "\"data_offsets_"));
    /* A field name that is bad JSON or bad UTF-8 says so. */
    h = "{\"a\":{\"dty\xffpe\":\"F32\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_NOT_UTF8, AT(h, "\xff"));
    h = "{\"a\":{\"dtype\\q\":\"F32\"}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\\q"));
    h = "{\"a\":{\"\":1}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_FIELD, AT(h, "\"\":"));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"dtype\":\"F32\",\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_BAD_FIELD, AT2(h, "\"dtype"));
    h = "{\"a\":{\"shape\":[1],\"dtype\":\"F32\",\"data_offsets\":[0,4],\"shape\":[1]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_BAD_FIELD, AT2(h, "\"shape"));
    h = "{\"a\":{\"data_offsets\":[0,4],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_BAD_FIELD, AT2(h, "\"data_offsets"));
    h = "{\"a\":{\"dtype\":\"F32\",\"sh\\u0061pe\":[1],\"shape\":[1]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_FIELD, AT(h, "\"shape"));

    /* Missing fields: at the entry's key. */
    h = "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_MISSING_FIELD, AT(h, "\"a\""));
    h = "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_MISSING_FIELD, AT(h, "\"a\""));
    h = "{\"z\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}";
    EXPECT_ERROR(h, 5, EMA_ERROR_ST_MISSING_FIELD, AT(h, "\"a\""));
    h = "{\"a\":{}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_MISSING_FIELD, AT(h, "\"a\""));
    h = "{\"a\": { } }";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_MISSING_FIELD, AT(h, "\"a\""));
}

static void test_dtype_errors(void) {
    const char* h;
    /* At the dtype's value. */
    h = "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"F33"));
    h = "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"f32"));
    h = "{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "7"));
    h = "{\"a\":{\"dtype\":\"F32F32F32F32F32F32F32F32F32F32F32F32\",\"shape\":[1],"
        "\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"F32F32"));
    h = "{\"a\":{\"dtype\":\"F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32"
        "F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32F32\",\"shape\":[1],"
        "\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"F32F32"));
    h = "{\"a\":{\"dtype\":\"\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"\","));
    h = "{\"a\":{\"dtype\":\"F32 \",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"F32 "));
    h = "{\"a\":{\"dtype\":\"F32\\u0000\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"F32"));
    h = "{\"a\":{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "null"));
    h = "{\"a\":{\"dtype\":[\"F32\"],\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "[\"F32"));
    h = "{\"a\":{\"dtype\":\"F8_E4M3FN\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"F8_"));
    /* A dtype string cut off by the end of the header is a JSON defect. */
    h = "{\"a\":{\"dtype\":\"F32";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_JSON, AT(h, "\"F32"));
}

static void test_integer_errors(void) {
    const char* h;
    /* Numbers that are not unsigned integers, in a shape: at the number. */
    static const char* const bad_numbers[] = {"-1", "-0", "1.5", "1.0", "01", "00", "1e3", "1E3",
                                              "2e0", "0.0"};
    for (size_t i = 0; i < COUNT_OF(bad_numbers); i++) {
        char header[256];
        snprintf(header, sizeof(header),
                 "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,%s],\"data_offsets\":[0,1]}}", bad_numbers[i]);
        EXPECT_ERROR(header, 1, EMA_ERROR_ST_BAD_INTEGER, AT(header, "[1,") + 3);
        /* ... and as either offset (BAD_INTEGER, not BAD_OFFSETS: the pair is
         * there, its value is no unsigned integer). */
        snprintf(header, sizeof(header),
                 "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%s,1]}}", bad_numbers[i]);
        EXPECT_ERROR(header, 1, EMA_ERROR_ST_BAD_INTEGER, AT(header, "offsets\":[") + 10);
        snprintf(header, sizeof(header),
                 "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0, %s]}}", bad_numbers[i]);
        EXPECT_ERROR(header, 1, EMA_ERROR_ST_BAD_INTEGER, AT(header, "[0, ") + 4);
    }
    /* A string where a dim should be is no unsigned integer either. */
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_INTEGER, AT(h, "\"1\""));
}

static void test_shape_errors(void) {
    const char* h;
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_SHAPE, AT(h, "1,"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":\"[1]\",\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_SHAPE, AT(h, "\"[1]"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":{},\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_SHAPE, AT(h, "{},"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":null,\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_SHAPE, AT(h, "null"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1 1],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_SHAPE, AT(h, " 1]") + 1);
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_SHAPE, DATA(h, 0));
    /* 33 dims: at the 33rd. */
    char header[512];
    size_t used = (size_t)snprintf(header, sizeof(header), "{\"r\":{\"dtype\":\"U8\",\"shape\":[");
    for (int d = 0; d < 33; d++) {
        used += (size_t)snprintf(header + used, sizeof(header) - used, d ? ",%d" : "%d",
                                 d == 32 ? 7 : 1);
    }
    snprintf(header + used, sizeof(header) - used, "],\"data_offsets\":[0,7]}}");
    EXPECT_ERROR(header, 7, EMA_ERROR_ST_BAD_SHAPE, AT(header, "7]"));
}

static void test_offsets_errors(void) {
    const char* h;
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_OFFSETS, AT(h, "]}"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_OFFSETS, AT(h, "]}"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_OFFSETS, AT(h, ",2"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":5}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_OFFSETS, AT(h, "5"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":{\"begin\":0,\"end\":1}}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_OFFSETS, AT(h, "{\"begin"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[\"0\",\"1\"]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_OFFSETS, AT(h, "\"0\""));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,null]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_OFFSETS, AT(h, "null"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0 1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_BAD_OFFSETS, AT(h, " 1]") + 1);
    /* begin > end: at begin. */
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}";
    EXPECT_ERROR(h, 8, EMA_ERROR_ST_BAD_OFFSETS, AT(h, "8,4"));
}

static void test_overflow_errors(void) {
    const char* h;
    /* A number past UINT64_MAX: at the number. */
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_OVERFLOW, AT(h, "1844"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_OVERFLOW, AT(h, "9999"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_OVERFLOW, AT(h, "1844"));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551620,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_OVERFLOW, AT(h, "1844"));
    /* Products past 64 bits: at the entry's key. A later zero dim does not
     * help: the product is computed left to right, as the reference does. */
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_OVERFLOW, AT(h, "\"a\""));
    h = "{\"ok\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[1,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_OVERFLOW, AT(h, "\"b\""));
    h = "{\"a\":{\"dtype\":\"U64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_OVERFLOW, AT(h, "\"a\""));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_OVERFLOW, AT(h, "\"a\""));
    /* (2^61 - 1) x 8 bytes = 2^64 - 8 fits: the span is merely wrong. */
    h = "{\"a\":{\"dtype\":\"U64\",\"shape\":[2305843009213693951],\"data_offsets\":[0,0]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_SIZE_MISMATCH, AT(h, "\"a\""));
}

static void test_span_errors(void) {
    const char* h;
    /* shape x dtype size differs from end - begin: at the entry's key. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
    EXPECT_ERROR(h, 8, EMA_ERROR_ST_SIZE_MISMATCH, AT(h, "\"a\""));
    h = "{\"ok\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,13]}}";
    EXPECT_ERROR(h, 13, EMA_ERROR_ST_SIZE_MISMATCH, AT(h, "\"b\""));
    h = "{\"a\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_SIZE_MISMATCH, AT(h, "\"a\""));
    h = "{\"a\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,2]}}";
    EXPECT_ERROR(h, 2, EMA_ERROR_ST_SIZE_MISMATCH, AT(h, "\"a\""));

    /* The tensor's end past the data section: at the entry's key. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_OFFSET_RANGE, AT(h, "\"a\""));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]}}";
    EXPECT_ERROR(h, 8, EMA_ERROR_ST_OFFSET_RANGE, AT(h, "\"a\""));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
        "\"data_offsets\":[18446744073709551615,18446744073709551615]}}";
    EXPECT_ERROR(h, 8, EMA_ERROR_ST_OFFSET_RANGE, AT(h, "\"a\""));
    h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_OFFSET_RANGE, AT(h, "\"a\""));

    /* Overlaps: at the entry that starts inside another. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    EXPECT_ERROR(h, 12, EMA_ERROR_ST_OVERLAP, AT(h, "\"b\""));
    h = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    EXPECT_ERROR(h, 12, EMA_ERROR_ST_OVERLAP, AT(h, "\"b\""));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}";
    EXPECT_ERROR(h, 8, EMA_ERROR_ST_OVERLAP, AT(h, "\"z\""));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
        "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}";
    EXPECT_ERROR(h, 16, EMA_ERROR_ST_OVERLAP, AT(h, "\"b\""));
    {
        /* The same span twice: either entry may be named. */
        h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        st_blob blob = make_file(h, 4);
        uint64_t offset = 0;
        CHECK_STATUS(parse_raw(blob.bytes, blob.size, blob.size, &offset), EMA_ERROR_ST_OVERLAP);
        CHECK(offset == AT(h, "\"a\"") || offset == AT(h, "\"b\""), "at one of the two entries");
        free_file(&blob);
    }

    /* Gaps: at the first byte no tensor holds. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    EXPECT_ERROR(h, 12, EMA_ERROR_ST_GAP, DATA(h, 4));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    EXPECT_ERROR(h, 8, EMA_ERROR_ST_GAP, DATA(h, 0));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 5, EMA_ERROR_ST_GAP, DATA(h, 4));
    h = "{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}";
    EXPECT_ERROR(h, 3, EMA_ERROR_ST_GAP, DATA(h, 0));
    h = "{}";
    EXPECT_ERROR(h, 1, EMA_ERROR_ST_GAP, DATA(h, 0));
    h = "{\"__metadata__\":{\"k\":\"v\"}}    ";
    EXPECT_ERROR(h, 16, EMA_ERROR_ST_GAP, DATA(h, 0));
    /* A zero-size tensor does not bridge a gap. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[6,6]},"
        "\"b\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[6,10]}}";
    EXPECT_ERROR(h, 10, EMA_ERROR_ST_GAP, DATA(h, 4));
    /* ... nor may it sit inside another tensor. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[6,6]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    EXPECT_ERROR(h, 8, EMA_ERROR_ST_OVERLAP, AT(h, "\"z\""));
}

static void test_metadata_errors(void) {
    const char* h;
    /* At the offending value. */
    h = "{\"__metadata__\":5}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "5"));
    h = "{\"__metadata__\":[\"k\",\"v\"]}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "["));
    h = "{\"__metadata__\":\"format\"}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "\"format"));
    h = "{\"__metadata__\":null}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "null"));
    h = "{\"__metadata__\":{\"k\":5}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "5"));
    h = "{\"__metadata__\":{\"a\":\"b\",\"k\":true}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "true"));
    h = "{\"__metadata__\":{\"k\":{\"nested\":\"v\"}}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "{\"nested"));
    h = "{\"__metadata__\":{\"k\":[\"v\"]}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "[\"v"));
    h = "{\"__metadata__\":{\"k\":null}}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, AT(h, "null"));
    h = "{\"__metadata__\":{\"k\":";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_BAD_METADATA, DATA(h, 0));
    /* A "tensor" called __metadata__ is the metadata block, and malformed. */
    h = "{\"__metadata__\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_BAD_METADATA, AT(h, "[1]"));
}

/* The first defect in the header wins, wherever the others are. */
static void test_first_defect_wins(void) {
    const char* h;
    h = "{\"a\":{\"dtype\":\"F33\",\"shape\":[-1],\"data_offsets\":[4,0]},\"b\xff\":5}";
    EXPECT_ERROR(h, 0, EMA_ERROR_ST_UNKNOWN_DTYPE, AT(h, "\"F33"));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"x\":1}}";
    EXPECT_ERROR(h, 4, EMA_ERROR_ST_SIZE_MISMATCH, AT(h, "\"a\""));
    /* Layout checks (duplicates, overlaps, gaps) run after the whole header. */
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"c\":{}}";
    EXPECT_ERROR(h, 12, EMA_ERROR_ST_MISSING_FIELD, AT(h, "\"c\""));
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_ERROR(h, 12, EMA_ERROR_ST_DUPLICATE_NAME, AT2(h, "\"a\""));
}

/* ------------------------------------------------------------------------
 * A large header
 * ---------------------------------------------------------------------- */

#define LARGE_COUNT 5000u

typedef struct large_tensor {
    int32_t dtype;
    uint64_t dims[2];
    uint64_t begin, end;
} large_tensor;

/* Appends to a growing buffer. */
typedef struct text {
    char* chars;
    size_t used, capacity;
} text;

static void append(text* t, const char* fmt, ...) CHECK_PRINTF(2, 3);
static void append(text* t, const char* fmt, ...) {
    for (;;) {
        va_list args;
        va_start(args, fmt);
        const int n = vsnprintf(t->chars + t->used, t->capacity - t->used, fmt, args);
        va_end(args);
        if (n >= 0 && (size_t)n < t->capacity - t->used) {
            t->used += (size_t)n;
            return;
        }
        t->capacity = t->capacity * 2 + (size_t)(n > 0 ? n : 64);
        t->chars = realloc(t->chars, t->capacity);
        if (t->chars == NULL) {
            fprintf(stderr, "test_safetensors: out of memory\n");
            exit(2);
        }
    }
}

/* Tensor i in data order; the header lists them in the order `perm`. With
 * `defect` 1 tensor perm[4000] is renamed to perm[10]'s name; with 2 the
 * last tensor in data order is dropped from the header. */
static void build_large(text* t, const large_tensor* tensors, const uint32_t* perm, int defect) {
    t->used = 0;
    append(t, "{\"__metadata__\":{\"format\":\"pt\",\"count\":\"%u\"}", LARGE_COUNT);
    for (uint32_t j = 0; j < LARGE_COUNT; j++) {
        const uint32_t i = perm[j];
        if (defect == 2 && i == LARGE_COUNT - 1) {
            continue;
        }
        const large_tensor* x = &tensors[i];
        const uint32_t name_index = defect == 1 && j == 4000 ? perm[10] : i;
        append(t, ",\"model.layers.%u.weight\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],"
                  "\"data_offsets\":[%llu,%llu]}",
               name_index, ema_st_dtype_name(x->dtype), (unsigned long long)x->dims[0],
               (unsigned long long)x->dims[1], (unsigned long long)x->begin,
               (unsigned long long)x->end);
    }
    append(t, "}   ");
}

static void test_large_header(void) {
    large_tensor* tensors = calloc(LARGE_COUNT, sizeof(large_tensor));
    uint32_t* perm = calloc(LARGE_COUNT, sizeof(uint32_t));
    uint64_t offset = 0;
    for (uint32_t i = 0; i < LARGE_COUNT; i++) {
        large_tensor* x = &tensors[i];
        x->dtype = (int32_t)(1 + i % 15);
        x->dims[0] = 1 + i % 7;
        x->dims[1] = i % 11; /* some are empty */
        x->begin = offset;
        x->end = offset + ema_st_dtype_size(x->dtype) * x->dims[0] * x->dims[1];
        offset = x->end;
        perm[i] = i;
    }
    const uint64_t data_size = offset;
    for (uint32_t i = LARGE_COUNT - 1; i > 0; i--) {
        const uint32_t j = next_random() % (i + 1);
        const uint32_t swap = perm[i];
        perm[i] = perm[j];
        perm[j] = swap;
    }

    text t = {NULL, 0, 0};
    build_large(&t, tensors, perm, 0);
    const clock_t start = clock();
    ema_st_file* file = parse_ok_at(__LINE__, t.chars, t.used, data_size);
    const double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    printf("test_safetensors: %u tensors, %zu-byte header, %llu data bytes parsed in %.1f ms\n",
           LARGE_COUNT, t.used, (unsigned long long)data_size, seconds * 1e3);
    /* Generous for a sanitized debug build: the parse is O(n log n). */
    CHECK(seconds < 2.0, "a 5000-tensor header parses in %.3f s", seconds);
    if (file != NULL) {
        CHECK(ema_st_tensor_count(file) == LARGE_COUNT, "%u tensors", ema_st_tensor_count(file));
        CHECK(ema_st_metadata_count(file) == 2, "two metadata entries");
        CHECK_METADATA(file, 1, "count", "5000");
        const uint64_t data_start = LENGTH_BYTES + t.used;
        unsigned long bad = 0;
        for (uint32_t j = 0; j < LARGE_COUNT; j++) {
            const large_tensor* x = &tensors[perm[j]];
            char name[64];
            snprintf(name, sizeof(name), "model.layers.%u.weight", perm[j]);
            const char* got = ema_st_tensor_name(file, j);
            if (got == NULL || strcmp(got, name) != 0 ||
                ema_st_tensor_name_length(file, j) != strlen(name) ||
                ema_st_tensor_dtype(file, j) != x->dtype || ema_st_tensor_rank(file, j) != 2 ||
                ema_st_tensor_dim(file, j, 0) != x->dims[0] ||
                ema_st_tensor_dim(file, j, 1) != x->dims[1] ||
                ema_st_tensor_file_offset(file, j) != data_start + x->begin ||
                ema_st_tensor_byte_length(file, j) != x->end - x->begin) {
                bad++;
            }
        }
        CHECK(bad == 0, "%lu of %u tensors read back wrong", bad, LARGE_COUNT);
        CHECK_OUT_OF_RANGE(file);
        ema_st_free(file);
    }

    /* A duplicate name deep in the header: found at the later entry. */
    build_large(&t, tensors, perm, 1);
    {
        char key[64];
        snprintf(key, sizeof(key), "\"model.layers.%u.weight\"", perm[10]);
        t.chars[t.used] = '\0';
        expect_error_at(__LINE__, t.chars, t.used, data_size, EMA_ERROR_ST_DUPLICATE_NAME,
                        at_marker(__LINE__, t.chars, key, 2));
    }
    /* The last tensor missing: the data it held is a gap. */
    build_large(&t, tensors, perm, 2);
    expect_error_at(__LINE__, t.chars, t.used, data_size, EMA_ERROR_ST_GAP,
                    LENGTH_BYTES + t.used + tensors[LARGE_COUNT - 1].begin);
    free(t.chars);
    free(perm);
    free(tensors);
}

int main(void) {
    check_begin("test_safetensors");
    seed_random(0x2545f491u);
    test_dtype_table();
    test_empty();
    test_one_tensor();
    test_unsorted();
    test_scalars_and_zero_size();
    test_metadata();
    test_names();
    test_whitespace();
    test_argument_errors();
    test_length_errors();
    test_json_errors();
    test_utf8_errors();
    test_structure_errors();
    test_duplicate_errors();
    test_field_errors();
    test_dtype_errors();
    test_integer_errors();
    test_shape_errors();
    test_offsets_errors();
    test_overflow_errors();
    test_span_errors();
    test_metadata_errors();
    test_first_defect_wins();
    test_large_header();
    return check_end();
}
