/*
 * safetensors.c - the header parser. It reads untrusted bytes: every length
 * is checked before use, every size is computed with overflow checks, and a
 * defect stops the parse with its own status and the byte offset where it was
 * found. Nothing is allocated that is not freed on every path.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "ema_safetensors.h"
#include "json_reader.h"

#define HEADER_LENGTH_BYTES 8u

typedef struct st_tensor {
    uint32_t name_offset; /* into file->strings */
    uint32_t name_length;
    int32_t dtype;
    uint32_t rank;
    uint64_t shape[EMA_ST_MAX_RANK];
    uint64_t begin; /* relative to the data section */
    uint64_t end;
    uint64_t entry_offset; /* where its key starts in the file, for errors */
} st_tensor;

typedef struct st_metadata {
    uint32_t key_offset, key_length;
    uint32_t value_offset, value_length;
} st_metadata;

struct ema_st_file {
    uint64_t data_start; /* 8 + N */
    uint32_t tensor_count, tensor_capacity;
    st_tensor* tensors;
    uint32_t metadata_count, metadata_capacity;
    st_metadata* metadata;
    bool has_metadata;
    uint8_t* strings; /* decoded names, keys and values, each NUL-terminated */
    size_t strings_used, strings_capacity;
};

/* ---- dtypes ------------------------------------------------------------- */

static const struct {
    const char* name;
    uint32_t size;
} DTYPES[] = {
    [EMA_ST_BOOL] = {"BOOL", 1},     [EMA_ST_U8] = {"U8", 1},
    [EMA_ST_I8] = {"I8", 1},         [EMA_ST_F8_E5M2] = {"F8_E5M2", 1},
    [EMA_ST_F8_E4M3] = {"F8_E4M3", 1}, [EMA_ST_I16] = {"I16", 2},
    [EMA_ST_U16] = {"U16", 2},       [EMA_ST_F16] = {"F16", 2},
    [EMA_ST_BF16] = {"BF16", 2},     [EMA_ST_I32] = {"I32", 4},
    [EMA_ST_U32] = {"U32", 4},       [EMA_ST_F32] = {"F32", 4},
    [EMA_ST_F64] = {"F64", 8},       [EMA_ST_I64] = {"I64", 8},
    [EMA_ST_U64] = {"U64", 8},
};
#define DTYPE_LIMIT ((int32_t)(sizeof(DTYPES) / sizeof(DTYPES[0])))
_Static_assert(DTYPE_LIMIT == EMA_ST_DTYPE_LIMIT, "every ema_st_dtype has a DTYPES row");

const char* ema_st_dtype_name(int32_t dtype) {
    return dtype >= EMA_ST_BOOL && dtype < DTYPE_LIMIT ? DTYPES[dtype].name : NULL;
}

uint32_t ema_st_dtype_size(int32_t dtype) {
    return dtype >= EMA_ST_BOOL && dtype < DTYPE_LIMIT ? DTYPES[dtype].size : 0;
}

static int32_t dtype_from_name(const uint8_t* name, size_t length) {
    for (int32_t dtype = EMA_ST_BOOL; dtype < DTYPE_LIMIT; dtype++) {
        if (strlen(DTYPES[dtype].name) == length && memcmp(DTYPES[dtype].name, name, length) == 0) {
            return dtype;
        }
    }
    return 0;
}

/* ---- parse state -------------------------------------------------------- */

typedef struct parser {
    json_reader json;
    ema_st_file* file;
    uint64_t data_size;
    uint64_t error_offset;
} parser;

/* Records the defect's offset in the file (the header starts at byte 8). */
static ema_status at_json(parser* p, ema_status status) {
    p->error_offset = HEADER_LENGTH_BYTES + json_offset(&p->json);
    return status;
}

static ema_status at_offset(parser* p, uint64_t offset, ema_status status) {
    p->error_offset = offset;
    return status;
}

static bool mul_overflows(uint64_t a, uint64_t b, uint64_t* product) {
    if (a != 0 && b > UINT64_MAX / a) {
        return true;
    }
    *product = a * b;
    return false;
}

/* Decodes the string at the reader into file->strings; returns its offset. */
static ema_status read_owned_string(parser* p, uint32_t* offset, uint32_t* length, bool* has_nul) {
    ema_st_file* file = p->file;
    size_t capacity;
    ema_status status = json_string_capacity(&p->json, &capacity);
    if (status != EMA_OK) {
        return at_json(p, status);
    }
    /* The strings buffer is sized to the header, and decoded text is never
     * longer than its encoding: this cannot run out. Checked anyway. */
    if (capacity > file->strings_capacity - file->strings_used) {
        return at_json(p, EMA_ERROR_ST_JSON);
    }
    size_t decoded = 0;
    status = json_read_string(&p->json, file->strings + file->strings_used, &decoded, has_nul);
    if (status != EMA_OK) {
        return at_json(p, status);
    }
    *offset = (uint32_t)file->strings_used;
    *length = (uint32_t)decoded;
    file->strings_used += decoded + 1;
    return EMA_OK;
}

static bool grow(void** array, uint32_t* capacity, uint32_t count, size_t element_size) {
    if (count < *capacity) {
        return true;
    }
    const uint32_t next = *capacity == 0 ? 16 : *capacity * 2;
    if (next <= *capacity || (uint64_t)next * element_size > SIZE_MAX) {
        return false;
    }
    void* grown = realloc(*array, (size_t)next * element_size);
    if (grown == NULL) {
        return false;
    }
    *array = grown;
    *capacity = next;
    return true;
}

/* ---- the header's pieces ------------------------------------------------ */

static ema_status parse_metadata(parser* p, uint64_t entry_offset) {
    ema_st_file* file = p->file;
    if (file->has_metadata) {
        return at_offset(p, entry_offset, EMA_ERROR_ST_DUPLICATE_NAME);
    }
    file->has_metadata = true;
    if (!json_accept(&p->json, '{')) {
        return at_json(p, EMA_ERROR_ST_BAD_METADATA);
    }
    if (json_accept(&p->json, '}')) {
        return EMA_OK;
    }
    do {
        if (!grow((void**)&file->metadata, &file->metadata_capacity, file->metadata_count,
                  sizeof(st_metadata))) {
            return at_json(p, EMA_ERROR_OUT_OF_MEMORY);
        }
        st_metadata* entry = &file->metadata[file->metadata_count];
        ema_status status = read_owned_string(p, &entry->key_offset, &entry->key_length, NULL);
        if (status != EMA_OK) return status;
        if ((status = json_expect(&p->json, ':')) != EMA_OK) return at_json(p, status);
        json_skip_space(&p->json);
        if (p->json.at == p->json.end || *p->json.at != '"') {
            return at_json(p, EMA_ERROR_ST_BAD_METADATA);
        }
        status = read_owned_string(p, &entry->value_offset, &entry->value_length, NULL);
        if (status != EMA_OK) return status;
        file->metadata_count++;
    } while (json_accept(&p->json, ','));
    const ema_status status = json_expect(&p->json, '}');
    return status == EMA_OK ? EMA_OK : at_json(p, status);
}

static ema_status parse_dtype(parser* p, st_tensor* tensor) {
    const uint8_t* start = p->json.at;
    size_t capacity;
    ema_status status = json_string_capacity(&p->json, &capacity);
    if (status != EMA_OK) {
        /* A string the header cuts off is bad JSON; any other value a bad dtype. */
        const bool string = p->json.at != p->json.end && *p->json.at == '"';
        return at_json(p, string ? EMA_ERROR_ST_JSON : EMA_ERROR_ST_UNKNOWN_DTYPE);
    }
    /* Every dtype name is short ASCII, even spelled with \uXXXX escapes
     * (7 x 6 + 2 bytes): anything longer is unknown. */
    uint8_t name[48];
    if (capacity > sizeof(name)) {
        p->json.at = start;
        return at_json(p, EMA_ERROR_ST_UNKNOWN_DTYPE);
    }
    size_t length = 0;
    if ((status = json_read_string(&p->json, name, &length, NULL)) != EMA_OK) {
        return at_json(p, status);
    }
    tensor->dtype = dtype_from_name(name, length);
    if (tensor->dtype == 0) {
        p->json.at = start;
        return at_json(p, EMA_ERROR_ST_UNKNOWN_DTYPE);
    }
    return EMA_OK;
}

static ema_status parse_shape(parser* p, st_tensor* tensor) {
    if (!json_accept(&p->json, '[')) {
        return at_json(p, EMA_ERROR_ST_BAD_SHAPE);
    }
    tensor->rank = 0;
    if (json_accept(&p->json, ']')) {
        return EMA_OK; /* a scalar */
    }
    do {
        if (tensor->rank == EMA_ST_MAX_RANK) {
            return at_json(p, EMA_ERROR_ST_BAD_SHAPE);
        }
        const ema_status status = json_read_u64(&p->json, &tensor->shape[tensor->rank]);
        if (status != EMA_OK) {
            return at_json(p, status);
        }
        tensor->rank++;
    } while (json_accept(&p->json, ','));
    return json_accept(&p->json, ']') ? EMA_OK : at_json(p, EMA_ERROR_ST_BAD_SHAPE);
}

/* A number that is no unsigned integer (sign, fraction, exponent, leading
 * zero) is EMA_ERROR_ST_BAD_INTEGER, as in a shape; a missing or non-numeric
 * element is EMA_ERROR_ST_BAD_OFFSETS. */
static ema_status read_offset(parser* p, uint64_t* value) {
    json_skip_space(&p->json);
    const bool number = p->json.at != p->json.end &&
                        (*p->json.at == '-' || (*p->json.at >= '0' && *p->json.at <= '9'));
    const ema_status status = json_read_u64(&p->json, value);
    if (status == EMA_OK) return EMA_OK;
    return at_json(p, status == EMA_ERROR_ST_BAD_INTEGER && !number ? EMA_ERROR_ST_BAD_OFFSETS : status);
}

static ema_status parse_offsets(parser* p, st_tensor* tensor) {
    if (!json_accept(&p->json, '[')) {
        return at_json(p, EMA_ERROR_ST_BAD_OFFSETS);
    }
    const uint8_t* start = p->json.at;
    ema_status status = read_offset(p, &tensor->begin);
    if (status != EMA_OK) return status;
    if (!json_accept(&p->json, ',')) return at_json(p, EMA_ERROR_ST_BAD_OFFSETS);
    status = read_offset(p, &tensor->end);
    if (status != EMA_OK) return status;
    if (!json_accept(&p->json, ']')) return at_json(p, EMA_ERROR_ST_BAD_OFFSETS);
    if (tensor->begin > tensor->end) {
        p->json.at = start;
        return at_json(p, EMA_ERROR_ST_BAD_OFFSETS);
    }
    return EMA_OK;
}

/* The entry's own checks: byte span matches shape x dtype, and lies in the file. */
static ema_status check_tensor(parser* p, const st_tensor* tensor) {
    uint64_t bytes = ema_st_dtype_size(tensor->dtype);
    for (uint32_t d = 0; d < tensor->rank; d++) {
        if (mul_overflows(bytes, tensor->shape[d], &bytes)) {
            return at_offset(p, tensor->entry_offset, EMA_ERROR_ST_OVERFLOW);
        }
    }
    if (tensor->end > p->data_size) {
        return at_offset(p, tensor->entry_offset, EMA_ERROR_ST_OFFSET_RANGE);
    }
    if (tensor->end - tensor->begin != bytes) {
        return at_offset(p, tensor->entry_offset, EMA_ERROR_ST_SIZE_MISMATCH);
    }
    return EMA_OK;
}

enum { FIELD_DTYPE = 1, FIELD_SHAPE = 2, FIELD_OFFSETS = 4 };

static ema_status parse_tensor(parser* p, st_tensor* tensor) {
    if (!json_accept(&p->json, '{')) {
        return at_json(p, EMA_ERROR_ST_NOT_OBJECT);
    }
    unsigned seen = 0;
    if (!json_accept(&p->json, '}')) {
        do {
            json_skip_space(&p->json);
            const uint8_t* field_start = p->json.at;
            uint8_t field[80]; /* "data_offsets" spelled with escapes: 12 x 6 + 2 */
            size_t capacity, length = 0;
            ema_status status = json_string_capacity(&p->json, &capacity);
            if (status != EMA_OK) return at_json(p, status);
            if (capacity > sizeof(field)) {
                p->json.at = field_start;
                return at_json(p, EMA_ERROR_ST_BAD_FIELD);
            }
            if ((status = json_read_string(&p->json, field, &length, NULL)) != EMA_OK) {
                return at_json(p, status);
            }
            unsigned which = 0;
            if (length == 5 && memcmp(field, "dtype", 5) == 0) which = FIELD_DTYPE;
            if (length == 5 && memcmp(field, "shape", 5) == 0) which = FIELD_SHAPE;
            if (length == 12 && memcmp(field, "data_offsets", 12) == 0) which = FIELD_OFFSETS;
            if (which == 0 || (seen & which) != 0) {
                p->json.at = field_start;
                return at_json(p, EMA_ERROR_ST_BAD_FIELD);
            }
            seen |= which;
            if ((status = json_expect(&p->json, ':')) != EMA_OK) return at_json(p, status);
            status = which == FIELD_DTYPE   ? parse_dtype(p, tensor)
                     : which == FIELD_SHAPE ? parse_shape(p, tensor)
                                            : parse_offsets(p, tensor);
            if (status != EMA_OK) return status;
        } while (json_accept(&p->json, ','));
        const ema_status status = json_expect(&p->json, '}');
        if (status != EMA_OK) return at_json(p, status);
    }
    if (seen != (FIELD_DTYPE | FIELD_SHAPE | FIELD_OFFSETS)) {
        return at_offset(p, tensor->entry_offset, EMA_ERROR_ST_MISSING_FIELD);
    }
    return check_tensor(p, tensor);
}

static ema_status parse_header(parser* p) {
    ema_st_file* file = p->file;
    /* The reference implementation requires '{' as the very first byte (no
     * leading whitespace), which also tells a safetensors file from others. */
    if (p->json.at == p->json.end || *p->json.at != '{') {
        return at_json(p, EMA_ERROR_ST_NOT_OBJECT);
    }
    p->json.at++;
    if (!json_accept(&p->json, '}')) {
        do {
            json_skip_space(&p->json);
            const uint64_t entry_offset = HEADER_LENGTH_BYTES + json_offset(&p->json);
            if (!grow((void**)&file->tensors, &file->tensor_capacity, file->tensor_count,
                      sizeof(st_tensor))) {
                return at_json(p, EMA_ERROR_OUT_OF_MEMORY);
            }
            st_tensor* tensor = &file->tensors[file->tensor_count];
            memset(tensor, 0, sizeof(*tensor));
            tensor->entry_offset = entry_offset;
            bool has_nul = false;
            ema_status status = read_owned_string(p, &tensor->name_offset, &tensor->name_length, &has_nul);
            if (status != EMA_OK) return status;
            if ((status = json_expect(&p->json, ':')) != EMA_OK) return at_json(p, status);

            const char* name = (const char*)file->strings + tensor->name_offset;
            if (tensor->name_length == 12 && memcmp(name, "__metadata__", 12) == 0) {
                /* Not a tensor: give its name's bytes back. */
                file->strings_used = tensor->name_offset;
                if ((status = parse_metadata(p, entry_offset)) != EMA_OK) return status;
                continue;
            }
            if (has_nul) {
                return at_offset(p, entry_offset, EMA_ERROR_ST_BAD_NAME);
            }
            if ((status = parse_tensor(p, tensor)) != EMA_OK) return status;
            file->tensor_count++;
        } while (json_accept(&p->json, ','));
        const ema_status status = json_expect(&p->json, '}');
        if (status != EMA_OK) return at_json(p, status);
    }
    /* The reference writer pads the header with spaces; nothing else may follow. */
    if (!json_at_end(&p->json)) {
        return at_json(p, EMA_ERROR_ST_JSON);
    }
    return EMA_OK;
}

/* ---- whole-file checks: unique names, exact tiling of the data ---------- */

typedef int (*tensor_order)(const ema_st_file* file, uint32_t a, uint32_t b);

static int by_name(const ema_st_file* file, uint32_t a, uint32_t b) {
    const st_tensor* x = &file->tensors[a];
    const st_tensor* y = &file->tensors[b];
    const uint32_t common = x->name_length < y->name_length ? x->name_length : y->name_length;
    const int order = memcmp(file->strings + x->name_offset, file->strings + y->name_offset, common);
    if (order != 0) return order;
    return (x->name_length > y->name_length) - (x->name_length < y->name_length);
}

static int by_span(const ema_st_file* file, uint32_t a, uint32_t b) {
    const st_tensor* x = &file->tensors[a];
    const st_tensor* y = &file->tensors[b];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Heap sort of tensor indices: qsort() has no context argument in C11, and a
 * global would make the parser unsafe to call from two threads. */
static void sift_down(uint32_t* order, size_t root, size_t count, const ema_st_file* file,
                      tensor_order compare) {
    for (;;) {
        size_t largest = root;
        const size_t left = 2 * root + 1, right = left + 1;
        if (left < count && compare(file, order[left], order[largest]) > 0) largest = left;
        if (right < count && compare(file, order[right], order[largest]) > 0) largest = right;
        if (largest == root) return;
        const uint32_t swap = order[root];
        order[root] = order[largest];
        order[largest] = swap;
        root = largest;
    }
}

static void sort_tensors(uint32_t* order, size_t count, const ema_st_file* file, tensor_order compare) {
    for (size_t i = count / 2; i-- > 0;) {
        sift_down(order, i, count, file, compare);
    }
    for (size_t end = count; end-- > 1;) {
        const uint32_t swap = order[0];
        order[0] = order[end];
        order[end] = swap;
        sift_down(order, 0, end, file, compare);
    }
}

static ema_status check_layout(parser* p) {
    const ema_st_file* file = p->file;
    const uint32_t count = file->tensor_count;
    if (count == 0) {
        return p->data_size == 0 ? EMA_OK : at_offset(p, file->data_start, EMA_ERROR_ST_GAP);
    }
    uint32_t* order = malloc((size_t)count * sizeof(uint32_t));
    if (order == NULL) {
        return at_offset(p, 0, EMA_ERROR_OUT_OF_MEMORY);
    }
    for (uint32_t i = 0; i < count; i++) order[i] = i;
    ema_status status = EMA_OK;

    sort_tensors(order, count, file, by_name);
    for (uint32_t i = 1; i < count && status == EMA_OK; i++) {
        if (by_name(file, order[i - 1], order[i]) == 0) {
            const uint32_t later = order[i - 1] > order[i] ? order[i - 1] : order[i];
            status = at_offset(p, file->tensors[later].entry_offset, EMA_ERROR_ST_DUPLICATE_NAME);
        }
    }

    if (status == EMA_OK) {
        sort_tensors(order, count, file, by_span);
        uint64_t covered = 0;
        for (uint32_t i = 0; i < count && status == EMA_OK; i++) {
            const st_tensor* tensor = &file->tensors[order[i]];
            if (tensor->begin < covered) {
                status = at_offset(p, tensor->entry_offset, EMA_ERROR_ST_OVERLAP);
            } else if (tensor->begin > covered) {
                status = at_offset(p, file->data_start + covered, EMA_ERROR_ST_GAP);
            }
            covered = tensor->end;
        }
        if (status == EMA_OK && covered != p->data_size) {
            status = at_offset(p, file->data_start + covered, EMA_ERROR_ST_GAP);
        }
    }
    free(order);
    return status;
}

/* ---- public ------------------------------------------------------------- */

uint32_t ema_st_tensor_bytes(void) {
    return (uint32_t)sizeof(st_tensor);
}

void ema_st_free(ema_st_file* file) {
    if (file == NULL) {
        return;
    }
    free(file->tensors);
    free(file->metadata);
    free(file->strings);
    free(file);
}

ema_status ema_st_parse(const uint8_t* bytes, size_t size, uint64_t file_size,
                        ema_st_file** out, uint64_t* error_offset) {
    uint64_t unused_offset;
    if (error_offset == NULL) {
        error_offset = &unused_offset;
    }
    *error_offset = 0;
    if (out == NULL || (bytes == NULL && size != 0)) {
        return EMA_ERROR_NULL_ARGUMENT;
    }
    if (size > file_size) {
        return EMA_ERROR_OUT_OF_RANGE;
    }
    if (file_size < HEADER_LENGTH_BYTES || size < HEADER_LENGTH_BYTES) {
        return file_size < HEADER_LENGTH_BYTES ? EMA_ERROR_ST_TRUNCATED : EMA_ERROR_ST_HEADER_MISSING;
    }
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) {
        header_length = (header_length << 8) | bytes[i];
    }
    if (header_length > EMA_ST_MAX_HEADER_BYTES || header_length > file_size - HEADER_LENGTH_BYTES) {
        return EMA_ERROR_ST_HEADER_LENGTH;
    }
    if (header_length > size - HEADER_LENGTH_BYTES) {
        return EMA_ERROR_ST_HEADER_MISSING;
    }

    ema_st_file* file = calloc(1, sizeof(*file));
    if (file == NULL) {
        return EMA_ERROR_OUT_OF_MEMORY;
    }
    file->data_start = HEADER_LENGTH_BYTES + header_length;
    file->strings_capacity = (size_t)header_length + 1;
    file->strings = malloc(file->strings_capacity);
    if (file->strings == NULL) {
        ema_st_free(file);
        return EMA_ERROR_OUT_OF_MEMORY;
    }

    parser p = {.file = file, .data_size = file_size - file->data_start};
    json_init(&p.json, bytes + HEADER_LENGTH_BYTES, (size_t)header_length);
    ema_status status = parse_header(&p);
    if (status == EMA_OK) {
        status = check_layout(&p);
    }
    if (status != EMA_OK) {
        *error_offset = p.error_offset;
        ema_st_free(file);
        return status;
    }
    *out = file;
    return EMA_OK;
}

static const st_tensor* tensor_at(const ema_st_file* file, uint32_t index) {
    return file != NULL && index < file->tensor_count ? &file->tensors[index] : NULL;
}

uint32_t ema_st_tensor_count(const ema_st_file* file) {
    return file != NULL ? file->tensor_count : 0;
}

const char* ema_st_tensor_name(const ema_st_file* file, uint32_t index) {
    const st_tensor* tensor = tensor_at(file, index);
    return tensor != NULL ? (const char*)file->strings + tensor->name_offset : NULL;
}

uint32_t ema_st_tensor_name_length(const ema_st_file* file, uint32_t index) {
    const st_tensor* tensor = tensor_at(file, index);
    return tensor != NULL ? tensor->name_length : 0;
}

int32_t ema_st_tensor_dtype(const ema_st_file* file, uint32_t index) {
    const st_tensor* tensor = tensor_at(file, index);
    return tensor != NULL ? tensor->dtype : 0;
}

uint32_t ema_st_tensor_rank(const ema_st_file* file, uint32_t index) {
    const st_tensor* tensor = tensor_at(file, index);
    return tensor != NULL ? tensor->rank : 0;
}

uint64_t ema_st_tensor_dim(const ema_st_file* file, uint32_t index, uint32_t dim) {
    const st_tensor* tensor = tensor_at(file, index);
    return tensor != NULL && dim < tensor->rank ? tensor->shape[dim] : 0;
}

uint64_t ema_st_tensor_file_offset(const ema_st_file* file, uint32_t index) {
    const st_tensor* tensor = tensor_at(file, index);
    return tensor != NULL ? file->data_start + tensor->begin : 0;
}

uint64_t ema_st_tensor_byte_length(const ema_st_file* file, uint32_t index) {
    const st_tensor* tensor = tensor_at(file, index);
    return tensor != NULL ? tensor->end - tensor->begin : 0;
}

static const st_metadata* metadata_at(const ema_st_file* file, uint32_t index) {
    return file != NULL && index < file->metadata_count ? &file->metadata[index] : NULL;
}

uint32_t ema_st_metadata_count(const ema_st_file* file) {
    return file != NULL ? file->metadata_count : 0;
}

const char* ema_st_metadata_key(const ema_st_file* file, uint32_t index) {
    const st_metadata* entry = metadata_at(file, index);
    return entry != NULL ? (const char*)file->strings + entry->key_offset : NULL;
}

uint32_t ema_st_metadata_key_length(const ema_st_file* file, uint32_t index) {
    const st_metadata* entry = metadata_at(file, index);
    return entry != NULL ? entry->key_length : 0;
}

const char* ema_st_metadata_value(const ema_st_file* file, uint32_t index) {
    const st_metadata* entry = metadata_at(file, index);
    return entry != NULL ? (const char*)file->strings + entry->value_offset : NULL;
}

uint32_t ema_st_metadata_value_length(const ema_st_file* file, uint32_t index) {
    const st_metadata* entry = metadata_at(file, index);
    return entry != NULL ? entry->value_length : 0;
}
