/*
 * fixture.h - reading test/fixtures/litema.txt (see test/fixtures/generate.py
 * for the format) and recomputing its generated arrays.
 */
#ifndef EMA_TEST_FIXTURE_H
#define EMA_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* generated(seed, length) of generate.py: exactly representable float32
 * values in [-0.5, 0.5) from an integer hash. */
void fixture_generated(uint64_t seed, uint32_t length, float* out);

/* A whitespace tokenizer over the whole file, read into memory. */
typedef struct fixture_reader {
    char* text;       /* the file, NUL-terminated; tokens are cut in place */
    char* cursor;     /* where the next token starts looking */
    const char* path;
    size_t line;      /* line of the last token, for messages */
    int pending_newline;
    const char* last; /* the last token returned, or NULL */
    int failed;       /* set by the first parse error; later reads all fail */
} fixture_reader;

/* Reads the file at `path` ("-" for stdin). 0 on success; on failure prints
 * why and returns -1. */
int fixture_open(fixture_reader* reader, const char* path);
void fixture_close(fixture_reader* reader);

/* The next token, or NULL at the end of the file (or after an error). */
const char* fixture_token(fixture_reader* reader);

/* Each returns 1 on success; on failure prints "path:line: ..." and returns 0
 * (and every later read fails too). */
int fixture_expect(fixture_reader* reader, const char* word);
int fixture_read_word(fixture_reader* reader, const char** word);
int fixture_read_u32(fixture_reader* reader, uint32_t* value);
int fixture_read_i32(fixture_reader* reader, int32_t* value);
int fixture_read_hex32(fixture_reader* reader, uint32_t* bits);
/* An <array> of `length` floats: `x` and hex words, or `g` and a seed. */
int fixture_read_array(fixture_reader* reader, uint32_t length, float* out);
/* The same, or `-` (recipes.txt: nothing kept), which sets *present to 0. */
int fixture_read_optional_array(fixture_reader* reader, uint32_t length, float* out, int* present);

#endif /* EMA_TEST_FIXTURE_H */
