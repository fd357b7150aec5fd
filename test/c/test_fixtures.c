/*
 * test_fixtures.c - replays test/fixtures/litema.txt (LitEma runs computed by
 * PyTorch, see test/fixtures/generate.py) and compares every bit.
 *
 * Every case runs on several contexts at once, one per update path:
 *   direct         ema_update with pointers to the parameters
 *   streamed       ema_step_begin + ema_step_apply through the staging window
 *                  and segment table, filling whole windows
 *   streamed-tiny  the same with at most 13 floats and 3 segments per apply,
 *                  so that every parameter is cut across many applies
 *   staged         ema_step_begin + ema_step_apply_staged, whole windows
 *   staged-tiny    the same, 13 floats and 3 segments per apply
 *   alternating    direct and streamed on alternate update steps
 * so every path is covered on every case and must agree with PyTorch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ema_stream.h"
#include "fixture.h"
#include "test_util.h"

#define DEFAULT_FIXTURE "test/fixtures/litema.txt"
#define MODE_COUNT 6
#define MAX_REPORTED 5 /* mismatching elements printed per array */

enum {
    MODE_DIRECT,
    MODE_STREAMED,
    MODE_STREAMED_TINY,
    MODE_STAGED,
    MODE_STAGED_TINY,
    MODE_ALTERNATING
};
static const char* const kModeNames[MODE_COUNT] = {"direct", "streamed",    "streamed-tiny",
                                                   "staged", "staged-tiny", "alternating"};

typedef struct param_info {
    const char* name; /* points into the reader's text */
    int trainable;
    uint32_t length;
    float* values; /* the current parameter values */
} param_info;

static ema_status run_update(ema_ctx* ctx, int mode, uint32_t update_index, uint32_t case_index,
                             const float* const* params, float* decay_used) {
    if (mode == MODE_ALTERNATING) {
        mode = (update_index + case_index) % 2 == 0 ? MODE_DIRECT : MODE_STREAMED;
    }
    switch (mode) {
        case MODE_DIRECT:
            return ema_update(ctx, params, decay_used);
        case MODE_STREAMED:
            return stream_step(ctx, params, EMA_STAGING_FLOATS, EMA_SEGMENT_CAPACITY,
                               STREAM_WHOLE_PIECES, STREAM_POINTERS, decay_used);
        case MODE_STREAMED_TINY:
            return stream_step(ctx, params, 13, 3, STREAM_WHOLE_PIECES, STREAM_POINTERS,
                               decay_used);
        case MODE_STAGED:
            return stream_step(ctx, params, EMA_STAGING_FLOATS, EMA_SEGMENT_CAPACITY,
                               STREAM_WHOLE_PIECES, STREAM_STAGED, decay_used);
        default:
            return stream_step(ctx, params, 13, 3, STREAM_WHOLE_PIECES, STREAM_STAGED,
                               decay_used);
    }
}

/* Compares a shadow with the expected array; prints the first mismatches. */
static int compare_shadow(const char* case_id, uint32_t step, const char* mode,
                          const char* param_name, const float* got, const float* expected,
                          uint32_t length) {
    uint32_t mismatches = 0;
    for (uint32_t i = 0; i < length; i++) {
        const uint32_t g = f32_bits(got[i]), e = f32_bits(expected[i]);
        if (g != e) {
            if (mismatches < MAX_REPORTED) {
                printf("  case %s step %u [%s] param %s index %u: got %08x expected %08x\n",
                       case_id, step, mode, param_name, i, g, e);
            }
            mismatches++;
        }
    }
    return CHECK(mismatches == 0, "case %s step %u [%s] param %s: %u of %u elements differ",
                 case_id, step, mode, param_name, mismatches, length);
}

/* Reads and runs one case after its `case` token. Returns 0 on a parse error. */
static int run_case(fixture_reader* reader, uint32_t case_index) {
    const char* case_id = NULL;
    uint32_t decay_bits = 0, warmup = 0, param_count = 0, step_count = 0;
    if (!fixture_read_word(reader, &case_id) || !fixture_read_hex32(reader, &decay_bits) ||
        !fixture_read_u32(reader, &warmup) || !fixture_read_u32(reader, &param_count) ||
        !fixture_read_u32(reader, &step_count)) {
        return 0;
    }
    const unsigned long passed_before = check_passed(), failed_before = check_failed();

    param_info* params = calloc(param_count + 1, sizeof(param_info));
    uint32_t* slot_lengths = calloc(param_count + 1, sizeof(uint32_t));
    uint32_t* slot_param = calloc(param_count + 1, sizeof(uint32_t)); /* slot -> param */
    const float** slot_values = calloc(param_count + 1, sizeof(float*));
    float** expected = calloc(param_count + 1, sizeof(float*));
    ema_ctx* ctx[MODE_COUNT] = {NULL};
    int ok = params != NULL && slot_lengths != NULL && slot_param != NULL &&
             slot_values != NULL && expected != NULL;
    uint32_t slot_count = 0;

    for (uint32_t p = 0; ok && p < param_count; p++) {
        uint32_t trainable = 0;
        ok = fixture_expect(reader, "param") && fixture_read_word(reader, &params[p].name) &&
             fixture_read_u32(reader, &trainable) && fixture_read_u32(reader, &params[p].length);
        if (!ok) {
            break;
        }
        params[p].trainable = trainable != 0;
        params[p].values = malloc(((size_t)params[p].length + 1) * sizeof(float));
        ok = params[p].values != NULL;
        if (ok && params[p].trainable) {
            expected[slot_count] = malloc(((size_t)params[p].length + 1) * sizeof(float));
            ok = expected[slot_count] != NULL;
            slot_lengths[slot_count] = params[p].length;
            slot_param[slot_count] = p;
            slot_values[slot_count] = params[p].values;
            slot_count++;
        }
    }

    /* Contexts over the trainable parameters only, in order. */
    const float decay = f32_from_bits(decay_bits);
    for (int m = 0; ok && m < MODE_COUNT; m++) {
        ok = CHECK_STATUS(ema_create(&ctx[m], decay, (int)warmup, slot_count, slot_lengths),
                          EMA_OK);
    }
    if (ok) {
        CHECK(ema_num_updates(ctx[0]) == (warmup ? 0 : -1) &&
                  f32_bits(ema_decay(ctx[0])) == decay_bits,
              "case %s: initial state", case_id);
    }

    /* init: one array per parameter; shadows copy the trainable ones. */
    ok = ok && fixture_expect(reader, "init");
    for (uint32_t p = 0; ok && p < param_count; p++) {
        ok = fixture_read_array(reader, params[p].length, params[p].values);
    }
    for (uint32_t s = 0; ok && s < slot_count; s++) {
        for (int m = 0; m < MODE_COUNT; m++) {
            CHECK_STATUS(ema_shadow_set(ctx[m], s, 0, slot_values[s], slot_lengths[s]), EMA_OK);
        }
    }

    uint32_t update_index = 0;
    for (uint32_t step = 0; ok && step < step_count; step++) {
        const char* kind = NULL;
        ok = fixture_expect(reader, "step") && fixture_read_word(reader, &kind);
        if (!ok) {
            break;
        }
        if (strcmp(kind, "reset") == 0) {
            int32_t num = 0;
            ok = fixture_expect(reader, "num") && fixture_read_i32(reader, &num);
            for (int m = 0; ok && m < MODE_COUNT; m++) {
                CHECK_STATUS(ema_reset_num_updates(ctx[m]), EMA_OK);
                CHECK(ema_num_updates(ctx[m]) == num, "case %s step %u [%s]: reset gives %d, got %d",
                      case_id, step, kModeNames[m], num, ema_num_updates(ctx[m]));
            }
            continue;
        }
        if (strcmp(kind, "update") != 0) {
            printf("%s:%zu: unknown step '%s'\n", reader->path, reader->line, kind);
            ok = 0;
            break;
        }
        for (uint32_t p = 0; ok && p < param_count; p++) {
            ok = fixture_read_array(reader, params[p].length, params[p].values);
        }
        uint32_t want_decay_bits = 0, has_shadows = 0;
        int32_t want_num = 0;
        ok = ok && fixture_expect(reader, "decay") && fixture_read_hex32(reader, &want_decay_bits) &&
             fixture_expect(reader, "num") && fixture_read_i32(reader, &want_num) &&
             fixture_expect(reader, "shadows") && fixture_read_u32(reader, &has_shadows);
        for (uint32_t s = 0; ok && has_shadows && s < slot_count; s++) {
            ok = fixture_read_array(reader, slot_lengths[s], expected[s]);
        }
        if (!ok) {
            break;
        }

        for (int m = 0; m < MODE_COUNT; m++) {
            float decay_used = f32_from_bits(0x7fc0dead);
            if (!CHECK_STATUS(run_update(ctx[m], m, update_index, case_index, slot_values,
                                         &decay_used),
                              EMA_OK)) {
                continue;
            }
            CHECK(f32_bits(decay_used) == want_decay_bits,
                  "case %s step %u [%s]: decay got %08x expected %08x", case_id, step,
                  kModeNames[m], f32_bits(decay_used), want_decay_bits);
            CHECK(ema_num_updates(ctx[m]) == want_num,
                  "case %s step %u [%s]: num_updates got %d expected %d", case_id, step,
                  kModeNames[m], ema_num_updates(ctx[m]), want_num);
            for (uint32_t s = 0; has_shadows && s < slot_count; s++) {
                compare_shadow(case_id, step, kModeNames[m], params[slot_param[s]].name,
                               ema_shadow(ctx[m], s), expected[s], slot_lengths[s]);
            }
        }
        update_index++;
    }

    if (ok) {
        printf("case %-36s %2u params %2u steps: %lu passed, %lu failed\n", case_id, param_count,
               step_count, check_passed() - passed_before, check_failed() - failed_before);
    }
    for (int m = 0; m < MODE_COUNT; m++) {
        ema_destroy(ctx[m]);
    }
    for (uint32_t p = 0; params != NULL && p < param_count; p++) {
        free(params[p].values);
    }
    for (uint32_t s = 0; expected != NULL && s < slot_count; s++) {
        free(expected[s]);
    }
    free(params);
    free(slot_lengths);
    free(slot_param);
    free(slot_values);
    free(expected);
    return ok;
}

/* generated() against values computed from generate.py's formula in Python. */
static void test_generated(void) {
    static const struct {
        uint64_t seed;
        uint32_t index;
        uint32_t bits;
    } known[] = {
        {12002, 0, 0x3d708050u}, {12002, 1, 0x3ed04058u}, {12002, 2, 0xbee517eau},
        {12002, 3, 0x3eec1a3eu}, {12002, 69999, 0xbed1c16eu}, {0, 0, 0x3ee5037cu},
        {0, 1, 0x3eff93c0u},     {0, 2, 0x3e9e223au},      {7, 0, 0xbda79f68u},
    };
    float* values = malloc(70000 * sizeof(float));
    if (!CHECK(values != NULL, "allocating 70000 floats")) {
        return;
    }
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        fixture_generated(known[k].seed, known[k].index + 1, values);
        CHECK(f32_bits(values[known[k].index]) == known[k].bits,
              "generated(%llu)[%u] got %08x expected %08x", (unsigned long long)known[k].seed,
              known[k].index, f32_bits(values[known[k].index]), known[k].bits);
    }
    fixture_generated(12001, 70000, values);
    int in_range = 1;
    for (uint32_t i = 0; i < 70000; i++) {
        in_range &= values[i] >= -0.5f && values[i] < 0.5f;
    }
    CHECK(in_range, "generated values lie in [-0.5, 0.5)");
    free(values);
}

int main(int argc, char** argv) {
    check_begin("test_fixtures");
    test_generated();

    const char* path = argc > 1 ? argv[1] : DEFAULT_FIXTURE;
    fixture_reader reader;
    if (!CHECK(fixture_open(&reader, path) == 0, "open %s (run from the repository root)",
               path)) {
        return check_end();
    }
    uint32_t version = 0;
    CHECK(fixture_expect(&reader, "emafixture") && fixture_read_u32(&reader, &version) &&
              version == 1,
          "%s: header 'emafixture 1'", path);

    uint32_t cases = 0;
    for (const char* token = fixture_token(&reader); token != NULL && !reader.failed;
         token = fixture_token(&reader)) {
        if (strcmp(token, "end") == 0) {
            continue; /* the format allows a closing `end` */
        }
        if (!CHECK(strcmp(token, "case") == 0, "%s:%zu: expected 'case', found '%s'", path,
                   reader.line, token)) {
            break;
        }
        if (!run_case(&reader, cases)) {
            break;
        }
        cases++;
    }
    CHECK(!reader.failed, "%s parsed to the end", path);
    CHECK(cases >= 1, "%s holds cases (%u)", path, cases);
    printf("%u cases x %d update paths\n", cases, MODE_COUNT);
    fixture_close(&reader);
    return check_end();
}
