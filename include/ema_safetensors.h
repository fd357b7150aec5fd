/*
 * ema_safetensors.h - a parser of safetensors headers that trusts nothing.
 *
 * A safetensors file is
 *
 *     u64 little-endian N | N bytes of JSON header | data section
 *
 * where the header maps tensor names to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the data section) and may hold one
 * "__metadata__" object of string values. ema_st_parse() checks the header
 * length, the JSON (strict, UTF-8), every entry's fields, dtype and shape,
 * that shape x dtype size equals the byte span, that offsets lie in the file,
 * that the tensors tile the data section exactly (no overlap, no gap), that
 * names are unique, and that no size overflows. It reads the header only:
 * pass the first 8 + N bytes (or the whole file) and the file's total size.
 * The tensors' data is never read; ema_st_tensor_file_offset() and
 * ema_st_tensor_byte_length() say where it is.
 *
 * Errors are ema_status values (ema_status.h), EMA_ERROR_ST_* for defects of
 * the file, each naming one kind of defect. The parser is independent of the
 * EMA context: it needs no ema_ctx.
 */
#ifndef EMA_SAFETENSORS_H
#define EMA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ema_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest header accepted, in bytes, as the reference implementation. */
#define EMA_ST_MAX_HEADER_BYTES 100000000u
/* Most dimensions a tensor's shape may have. */
#define EMA_ST_MAX_RANK 32u

/* The dtypes safetensors defines. The numbers are this library's (pinned; new
 * ones only appended), not the format's: the format spells dtypes by name. */
typedef enum ema_st_dtype {
    EMA_ST_BOOL = 1,
    EMA_ST_U8 = 2,
    EMA_ST_I8 = 3,
    EMA_ST_F8_E5M2 = 4,
    EMA_ST_F8_E4M3 = 5,
    EMA_ST_I16 = 6,
    EMA_ST_U16 = 7,
    EMA_ST_F16 = 8,
    EMA_ST_BF16 = 9,
    EMA_ST_I32 = 10,
    EMA_ST_U32 = 11,
    EMA_ST_F32 = 12,
    EMA_ST_F64 = 13,
    EMA_ST_I64 = 14,
    EMA_ST_U64 = 15
} ema_st_dtype;

/* One past the largest ema_st_dtype. */
#define EMA_ST_DTYPE_LIMIT 16

/* A parsed header: opaque, allocated by ema_st_parse(), freed by
 * ema_st_free(). */
typedef struct ema_st_file ema_st_file;

/* ===========================================================================
 *  Parsing
 * ======================================================================== */

/* Parses the header in bytes[0 .. size) of a file of `file_size` bytes
 * (`size` may be less than `file_size`: the data section need not be there).
 * Returns EMA_OK and stores the parsed header in *out, which the caller frees
 * with ema_st_free(); `bytes` is not kept (names are copied). On failure
 * returns the status naming the defect (EMA_ERROR_ST_*; or
 * EMA_ERROR_NULL_ARGUMENT, EMA_ERROR_OUT_OF_RANGE when `size` exceeds
 * `file_size`, EMA_ERROR_OUT_OF_MEMORY), leaves *out untouched and, if
 * `error_offset` is not NULL, stores the byte offset in the file where the
 * defect was found (0 when it is no particular byte). Allocates the header's
 * size plus, per tensor, up to twice EMA_ABI_ST_TENSOR_BYTES (ema_stream.h;
 * the table grows by doubling). */
ema_status ema_st_parse(const uint8_t* bytes, size_t size, uint64_t file_size,
                        ema_st_file** out, uint64_t* error_offset);

/* Native only (the JS wrapper drops the parser's whole instance instead).
 * Frees a parsed header and every string it owns. Accepts NULL. */
void ema_st_free(ema_st_file* file);

/* ===========================================================================
 *  Tensors
 * ===========================================================================
 * In the order the header lists them. Each accessor returns 0 (NULL for
 * pointers) for a NULL file or a bad index. Strings are UTF-8, NUL-terminated,
 * owned by `file` and valid until ema_st_free(). */

/* Number of tensors. */
uint32_t ema_st_tensor_count(const ema_st_file* file);

/* Tensor `index`'s name (never holds U+0000) and its length in bytes. */
const char* ema_st_tensor_name(const ema_st_file* file, uint32_t index);
uint32_t ema_st_tensor_name_length(const ema_st_file* file, uint32_t index);

/* Tensor `index`'s dtype, an ema_st_dtype. */
int32_t ema_st_tensor_dtype(const ema_st_file* file, uint32_t index);

/* Tensor `index`'s rank (0 to EMA_ST_MAX_RANK) and its dimension `dim`
 * (0 for a dimension past the rank). */
uint32_t ema_st_tensor_rank(const ema_st_file* file, uint32_t index);
uint64_t ema_st_tensor_dim(const ema_st_file* file, uint32_t index, uint32_t dim);

/* Where tensor `index`'s bytes start in the file (8 + N + begin), and how
 * many there are (end - begin). */
uint64_t ema_st_tensor_file_offset(const ema_st_file* file, uint32_t index);
uint64_t ema_st_tensor_byte_length(const ema_st_file* file, uint32_t index);

/* ===========================================================================
 *  Metadata
 * ===========================================================================
 * The "__metadata__" entries, in header order; 0 entries when the header has
 * none. Keys and values are UTF-8, NUL-terminated, owned by `file`; they may
 * hold U+0000, so use the lengths (in bytes). NULL / 0 for a bad index. */

uint32_t ema_st_metadata_count(const ema_st_file* file);
const char* ema_st_metadata_key(const ema_st_file* file, uint32_t index);
uint32_t ema_st_metadata_key_length(const ema_st_file* file, uint32_t index);
const char* ema_st_metadata_value(const ema_st_file* file, uint32_t index);
uint32_t ema_st_metadata_value_length(const ema_st_file* file, uint32_t index);

/* ===========================================================================
 *  Dtypes
 * ======================================================================== */

/* A dtype's name as safetensors spells it ("F32"; static storage), or NULL
 * for a number that is no ema_st_dtype. */
const char* ema_st_dtype_name(int32_t dtype);

/* Native only. A dtype's size in bytes per element, or 0 for a number that is
 * no ema_st_dtype. */
uint32_t ema_st_dtype_size(int32_t dtype);

#ifdef __cplusplus
}
#endif

#endif /* EMA_SAFETENSORS_H */
