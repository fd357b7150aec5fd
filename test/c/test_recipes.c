/*
 * test_recipes.c - replays test/fixtures/recipes.txt (every recipe's runs
 * computed by PyTorch, see test/fixtures/generate_recipes.py) through the C
 * API and compares every bit: the action, the counter, the float32 weight
 * applied, every shadow, and the model after a Keras overwrite.
 *
 * Each case runs on two contexts at once: "direct" (ema_update_at with
 * pointers) and "staged" (ema_step_begin_at, then the parameters packed into
 * the context's staging window at most 13 floats and 3 segments at a time and
 * applied with ema_step_apply_staged), so the streaming path the JS wrapper
 * drives is replayed too.
 *
 * The options of a case are JSON; this file maps them onto struct
 * ema_schedule and decides what each recipe keeps, as js/recipes.js does
 * (a second, independent reading of the same rules). A power case whose
 * sigmaRel or gamma is a list keeps one profile per width
 * (ema_create_profiles); each profile's weight and shadows are compared with
 * the run PyTorch made of it alone.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ema_stream.h"
#include "fixture.h"

#define DEFAULT_FIXTURE "test/fixtures/recipes.txt"
#define MAX_ENTRIES 64
#define MAX_NAMES 8
#define TINY_WINDOW 13
#define TINY_SEGMENTS 3

enum { KEEP_SKIP = -1 }; /* an entry the recipe does not keep */

typedef struct entry {
    const char* name;
    char kind;     /* 'p'aram, 'f'rozen, 'b'uffer */
    char dtype;    /* 'f' f32, 'i' i32, 'l' i64 */
    uint32_t elements;
    uint32_t words; /* 32-bit words: elements, or 2x for i64 */
    int mode;       /* ema_slot_mode, or KEEP_SKIP */
    int slot;
    float* values;
} entry;

/* ---- the options JSON: a flat object of numbers, booleans, null and string arrays ---- */

typedef struct options {
    const char* text;
} options;

/* Where `"key":` starts its value, or NULL. */
static const char* option_value(const options* o, const char* key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char* at = strstr(o->text, pattern);
    return at == NULL ? NULL : at + strlen(pattern);
}

static double option_number(const options* o, const char* key, double fallback) {
    const char* value = option_value(o, key);
    if (value == NULL || strncmp(value, "null", 4) == 0) {
        return fallback;
    }
    return strtod(value, NULL);
}

static int option_flag(const options* o, const char* key, int fallback) {
    const char* value = option_value(o, key);
    return value == NULL ? fallback : strncmp(value, "true", 4) == 0;
}

/* Whether `name` is one of the strings in the array under `key` (or, with
 * `prefix`, starts with one). */
static int option_lists(const options* o, const char* key, const char* name, int prefix) {
    const char* value = option_value(o, key);
    if (value == NULL || *value != '[') {
        return 0;
    }
    for (const char* at = value + 1; *at != ']' && *at != '\0';) {
        if (*at != '"') {
            at++;
            continue;
        }
        const char* end = strchr(at + 1, '"');
        if (end == NULL) {
            return 0;
        }
        const size_t length = (size_t)(end - at - 1);
        if (prefix ? strncmp(name, at + 1, length) == 0
                   : strlen(name) == length && strncmp(name, at + 1, length) == 0) {
            return 1;
        }
        at = end + 1;
    }
    return 0;
}

/* The numbers of the array under `key` ([a,b,...]) into out[0..capacity):
 * how many there are, 0 when `key` is absent or not an array. */
static uint32_t option_numbers(const options* o, const char* key, double* out, uint32_t capacity) {
    const char* value = option_value(o, key);
    if (value == NULL || *value != '[') {
        return 0;
    }
    uint32_t count = 0;
    for (const char* at = value + 1; *at != ']' && *at != '\0' && count < capacity;) {
        char* end = NULL;
        out[count++] = strtod(at, &end);
        if (end == at) {
            return 0;
        }
        at = *end == ',' ? end + 1 : end;
    }
    return count;
}

static int recipe_of(const char* name) {
    static const char* const kNames[EMA_RECIPE_LIMIT] = {"litema", "torch_ema", "diffusers", "timm",
                                                        "ema-pytorch", "keras", "debiased", "power"};
    for (int i = 0; i < EMA_RECIPE_LIMIT; i++) {
        if (strcmp(name, kNames[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static ema_schedule schedule_of(int recipe, const options* o) {
    ema_schedule s;
    CHECK_STATUS(ema_schedule_defaults(&s, (uint32_t)recipe), EMA_OK);
    switch (recipe) {
        case EMA_RECIPE_LITEMA:
            s.decay = (float)option_number(o, "decay", s.decay);
            s.warmup = (uint32_t)option_flag(o, "useNumUpdates", 1);
            break;
        case EMA_RECIPE_TORCH_EMA:
            s.decay = option_number(o, "decay", s.decay);
            s.warmup = (uint32_t)option_flag(o, "useNumUpdates", 1);
            break;
        case EMA_RECIPE_DIFFUSERS:
            s.decay = option_number(o, "decay", s.decay);
            s.min_decay = option_number(o, "minDecay", s.min_decay);
            s.update_after_step = (int64_t)option_number(o, "updateAfterStep", 0);
            s.warmup = (uint32_t)option_flag(o, "useEmaWarmup", 0);
            s.inv_gamma = option_number(o, "invGamma", s.inv_gamma);
            s.power = option_number(o, "power", s.power);
            if (option_flag(o, "foreach", 0)) {
                s.rounding = EMA_ROUNDING_FUSED;
            }
            break;
        case EMA_RECIPE_TIMM:
            s.decay = option_number(o, "decay", s.decay);
            s.min_decay = option_number(o, "minDecay", s.min_decay);
            s.update_after_step = (int64_t)option_number(o, "updateAfterStep", 0);
            s.warmup = (uint32_t)option_flag(o, "useWarmup", 0);
            s.inv_gamma = option_number(o, "warmupGamma", s.inv_gamma);
            s.power = option_number(o, "warmupPower", s.power);
            break;
        case EMA_RECIPE_EMA_PYTORCH:
            s.decay = option_number(o, "beta", s.decay);
            s.update_after_step = (int64_t)option_number(o, "updateAfterStep", 100);
            s.update_every = (int64_t)option_number(o, "updateEvery", 10);
            s.inv_gamma = option_number(o, "invGamma", s.inv_gamma);
            s.power = option_number(o, "power", s.power);
            s.min_decay = option_number(o, "minValue", s.min_decay);
            break;
        case EMA_RECIPE_KERAS:
            s.decay = option_number(o, "emaMomentum", s.decay);
            s.overwrite_every = (int64_t)option_number(o, "emaOverwriteFrequency", 0);
            break;
        case EMA_RECIPE_DEBIASED:
            s.decay = option_number(o, "decay", s.decay);
            s.debias = (uint32_t)option_flag(o, "debias", 1);
            break;
        case EMA_RECIPE_POWER:
            /* sigmaRel, or gamma (then sigma_rel 0), or neither: sigma_rel 0.05. */
            s.sigma_rel = option_number(o, "sigmaRel", option_value(o, "gamma") != NULL ? 0.0 : 0.05);
            s.power = option_number(o, "gamma", 0.0);
            s.batch_size = (int64_t)option_number(o, "batchSize", 1);
            break;
    }
    return s;
}

/* Each profile's schedule into schedules[]: one, or for a power case with a
 * list of widths one per width (sigmaRel: sigma_rel, from which the core
 * derives gamma; gamma: power, with sigma_rel 0), as js/recipes.js makes
 * them. Returns how many. */
static uint32_t schedules_of(int recipe, const options* o, ema_schedule* schedules) {
    const ema_schedule shared = schedule_of(recipe, o);
    double widths[EMA_MAX_PROFILES];
    const uint32_t by_sigma_rel = option_numbers(o, "sigmaRel", widths, EMA_MAX_PROFILES);
    const uint32_t count = by_sigma_rel != 0 ? by_sigma_rel : option_numbers(o, "gamma", widths, EMA_MAX_PROFILES);
    if (recipe != EMA_RECIPE_POWER || count == 0) {
        schedules[0] = shared;
        return 1;
    }
    for (uint32_t k = 0; k < count; k++) {
        schedules[k] = shared;
        schedules[k].sigma_rel = by_sigma_rel != 0 ? widths[k] : 0.0;
        schedules[k].power = by_sigma_rel != 0 ? 0.0 : widths[k];
    }
    return count;
}

/* What `recipe` does with an entry: an ema_slot_mode, or KEEP_SKIP. */
static int mode_of(int recipe, const options* o, const entry* e) {
    const int param = e->kind == 'p';
    const int buffer = e->kind == 'b';
    switch (recipe) {
        case EMA_RECIPE_LITEMA:
        case EMA_RECIPE_KERAS:
        case EMA_RECIPE_DEBIASED:
        case EMA_RECIPE_POWER:
            return param ? EMA_SLOT_AVERAGE : KEEP_SKIP;
        case EMA_RECIPE_TORCH_EMA:
            return buffer ? KEEP_SKIP : EMA_SLOT_AVERAGE;
        case EMA_RECIPE_DIFFUSERS:
            return buffer ? KEEP_SKIP : param ? EMA_SLOT_AVERAGE : EMA_SLOT_COPY;
        case EMA_RECIPE_TIMM:
            return e->dtype != 'f' || (buffer && option_flag(o, "excludeBuffers", 0)) ? EMA_SLOT_COPY
                                                                                   : EMA_SLOT_AVERAGE;
        case EMA_RECIPE_EMA_PYTORCH:
            if (e->dtype != 'f') {
                return EMA_SLOT_KEEP;
            }
            if (option_lists(o, "ignoreNames", e->name, 0) ||
                option_lists(o, "ignoreStartswithNames", e->name, 1)) {
                return EMA_SLOT_HOLD;
            }
            return option_lists(o, "paramOrBufferNamesNoEma", e->name, 0) ? EMA_SLOT_COPY
                                                                         : EMA_SLOT_AVERAGE;
    }
    return KEEP_SKIP;
}

/* ---- the staged path ---------------------------------------------------- */

/* One step through the staging window, TINY_WINDOW floats and TINY_SEGMENTS
 * segments at most per apply, so that entries are cut across applies. */
static ema_status staged_update(ema_ctx* ctx, const entry* entries, uint32_t count, int64_t step,
                                ema_step_info* info) {
    ema_status status = ema_step_begin_at(ctx, step, info);
    if (status != EMA_OK || info->action == EMA_ACTION_SKIP) {
        return status;
    }
    float* window = ema_staging(ctx);
    ema_segment* table = ema_segment_table(ctx);
    uint32_t staged = 0;
    uint32_t segments = 0;
    for (uint32_t i = 0; i < count; i++) {
        const entry* e = &entries[i];
        if (e->slot < 0) {
            continue;
        }
        for (uint32_t offset = 0; offset < e->words;) {
            uint32_t piece = TINY_WINDOW - staged;
            if (piece > e->words - offset) {
                piece = e->words - offset;
            }
            memcpy(window + staged, e->values + offset, piece * sizeof(float));
            table[segments].slot = (uint32_t)e->slot;
            table[segments].offset = offset;
            table[segments].count = piece;
            segments++;
            staged += piece;
            offset += piece;
            if (staged == TINY_WINDOW || segments == TINY_SEGMENTS) {
                status = ema_step_apply_staged(ctx, segments);
                if (status != EMA_OK) {
                    return status;
                }
                staged = segments = 0;
            }
        }
    }
    return segments > 0 ? ema_step_apply_staged(ctx, segments) : EMA_OK;
}

/* ---- replay ----------------------------------------------------------------- */

static int same_words(const float* a, const float* b, uint32_t words) {
    return words == 0 || memcmp(a, b, (size_t)words * sizeof(float)) == 0;
}

/* What the user reads of a slot in a profile: the shadow, divided for a
 * debiased EMA. */
static void read_shadow(ema_ctx* ctx, uint32_t profile, const entry* e, float* out) {
    const float* shadow = ema_profile_shadow(ctx, profile, (uint32_t)e->slot);
    const float divisor = ema_read_divisor(ctx);
    for (uint32_t i = 0; i < e->words; i++) {
        out[i] = e->dtype == 'f' && divisor != 1.0f ? shadow[i] / divisor : shadow[i];
    }
}

static int replay_case(fixture_reader* r, uint32_t case_index) {
    const char* id;
    const char* recipe_name;
    const char* options_text;
    uint32_t count;
    uint32_t calls;
    if (!fixture_read_word(r, &id) || !fixture_read_word(r, &recipe_name) ||
        !fixture_read_word(r, &options_text) || !fixture_read_u32(r, &count) ||
        !fixture_read_u32(r, &calls)) {
        return 0;
    }
    const int recipe = recipe_of(recipe_name);
    if (!CHECK(recipe >= 0 && count <= MAX_ENTRIES, "%s: recipe %s, %u entries", id, recipe_name, count)) {
        return 0;
    }
    const options o = {options_text};
    entry entries[MAX_ENTRIES];
    uint32_t lengths[MAX_ENTRIES];
    uint32_t slots = 0;
    for (uint32_t i = 0; i < count; i++) {
        entry* e = &entries[i];
        const char* kind;
        const char* dtype;
        if (!fixture_expect(r, "entry") || !fixture_read_word(r, &e->name) ||
            !fixture_read_word(r, &kind) || !fixture_read_word(r, &dtype) ||
            !fixture_read_u32(r, &e->elements)) {
            return 0;
        }
        e->kind = kind[0];
        e->dtype = strcmp(dtype, "f32") == 0 ? 'f' : strcmp(dtype, "i32") == 0 ? 'i' : 'l';
        e->words = e->dtype == 'l' ? 2 * e->elements : e->elements;
        e->values = calloc(e->words ? e->words : 1, sizeof(float));
        e->mode = mode_of(recipe, &o, e);
        e->slot = e->mode == KEEP_SKIP ? -1 : (int)slots;
        if (e->slot >= 0) {
            lengths[slots++] = e->words;
        }
    }
    if (!fixture_expect(r, "init")) {
        return 0;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (!fixture_read_array(r, entries[i].words, entries[i].values)) {
            return 0;
        }
    }
    ema_schedule schedules[EMA_MAX_PROFILES];
    const uint32_t profiles = schedules_of(recipe, &o, schedules);
    ema_ctx* contexts[2] = {NULL, NULL};
    const char* const paths[2] = {"direct", "staged"};
    for (int c = 0; c < 2; c++) {
        CHECK_STATUS(ema_create_profiles(&contexts[c], profiles, schedules, slots, lengths), EMA_OK);
        for (uint32_t i = 0; i < count; i++) {
            const entry* e = &entries[i];
            if (e->slot < 0) {
                continue;
            }
            CHECK_STATUS(ema_set_slot_mode(contexts[c], (uint32_t)e->slot, (uint32_t)e->mode), EMA_OK);
            /* Keras's averages and the debiased EMA start at zero. */
            if (recipe != EMA_RECIPE_KERAS && recipe != EMA_RECIPE_DEBIASED && e->words != 0) {
                for (uint32_t k = 0; k < profiles; k++) {
                    memcpy(ema_profile_shadow(contexts[c], k, (uint32_t)e->slot), e->values, e->words * sizeof(float));
                }
            }
        }
    }

    float* expected = NULL;
    float* read = NULL;
    size_t capacity = 0;
    int ok = 1;     /* every check passed */
    int parsed = 1; /* the file read as expected (a failed check must not stop the reading) */
    for (uint32_t call = 0; call < calls && parsed; call++) {
        const char* call_json;
        if (!fixture_expect(r, "call") || !fixture_read_word(r, &call_json)) {
            parsed = 0;
            break;
        }
        /* timm's step, or the power recipe's samples: the core's `step`. */
        const char* step_text = strstr(call_json, "\"step\":");
        const char* samples_text = strstr(call_json, "\"samples\":");
        const int64_t step = step_text != NULL      ? strtoll(step_text + 7, NULL, 10)
                             : samples_text != NULL ? strtoll(samples_text + 10, NULL, 10)
                                                    : EMA_NO_STEP;
        for (uint32_t i = 0; i < count; i++) {
            if (!fixture_read_array(r, entries[i].words, entries[i].values)) {
                parsed = 0;
            }
        }
        /* Several profiles: a decay and a weight each (profile 0 first). */
        const char* action;
        uint32_t weight_bits[EMA_MAX_PROFILES];
        const char* counter_text;
        const char* decay_hex;
        uint32_t has_shadows;
        if (!parsed || !fixture_expect(r, "result") || !fixture_read_word(r, &action) ||
            !fixture_expect(r, "decay")) {
            parsed = 0;
            break;
        }
        for (uint32_t k = 0; k < profiles; k++) {
            parsed &= fixture_read_word(r, &decay_hex);
        }
        parsed = parsed && fixture_expect(r, "weight");
        for (uint32_t k = 0; k < profiles && parsed; k++) {
            parsed &= fixture_read_hex32(r, &weight_bits[k]);
        }
        if (!parsed || !fixture_expect(r, "counter") || !fixture_read_word(r, &counter_text) ||
            !fixture_expect(r, "shadows") || !fixture_read_u32(r, &has_shadows)) {
            parsed = 0;
            break;
        }
        const long long counter = strtoll(counter_text, NULL, 10);
        const int expected_action = strcmp(action, "averaged") == 0 ? EMA_ACTION_AVERAGE
                                    : strcmp(action, "copied") == 0 ? EMA_ACTION_COPY
                                                                    : EMA_ACTION_SKIP;
        const float* params[MAX_ENTRIES];
        for (uint32_t i = 0; i < count; i++) {
            if (entries[i].slot >= 0) {
                params[entries[i].slot] = entries[i].values;
            }
        }
        ema_step_info infos[2];
        CHECK_STATUS(ema_update_at(contexts[0], params, step, &infos[0]), EMA_OK);
        CHECK_STATUS(staged_update(contexts[1], entries, count, step, &infos[1]), EMA_OK);
        for (int c = 0; c < 2; c++) {
            for (uint32_t k = 0; k < profiles; k++) {
                ema_step_info info = infos[c];
                if (k > 0) {
                    CHECK_STATUS(ema_profile_step(contexts[c], k, &info), EMA_OK);
                }
                uint32_t weight;
                memcpy(&weight, &info.weight, sizeof weight);
                ok &= CHECK((int)info.action == expected_action && info.counter == counter &&
                                (expected_action != EMA_ACTION_AVERAGE || weight == weight_bits[k]),
                            "%s call %u (%s, profile %u): action %u counter %lld weight %08x; PyTorch %s %lld %08x",
                            id, call + 1, paths[c], k, info.action, (long long)info.counter, weight, action,
                            counter, weight_bits[k]);
            }
        }
        /* With shadows: a set per profile, one array (or -) per entry in each. */
        for (uint32_t n = 0; n < count * profiles && has_shadows; n++) {
            const uint32_t profile = n / count;
            entry* e = &entries[n % count];
            if (e->words > capacity) {
                capacity = e->words;
                expected = realloc(expected, capacity * sizeof(float));
                read = realloc(read, capacity * sizeof(float));
            }
            int present = 0;
            if (!fixture_read_optional_array(r, e->words, expected, &present)) {
                parsed = 0;
                break;
            }
            if (!present) {
                ok &= CHECK(e->slot < 0, "%s: '%s' is kept, PyTorch keeps nothing", id, e->name);
                continue;
            }
            if (!CHECK(e->slot >= 0, "%s: '%s' is not kept, PyTorch keeps it", id, e->name)) {
                ok = 0;
                continue;
            }
            for (int c = 0; c < 2; c++) {
                read_shadow(contexts[c], profile, e, read);
                ok &= CHECK(same_words(read, expected, e->words), "%s call %u (%s): shadow of '%s' (profile %u)", id,
                            call + 1, paths[c], e->name, profile);
            }
        }
        uint32_t has_model;
        if (!parsed || !fixture_expect(r, "model") || !fixture_read_u32(r, &has_model)) {
            parsed = 0;
            break;
        }
        /* Keras: the caller writes the averages into the model (ema_update_at
         * only reports it), which the next call's values then replace. */
        for (uint32_t i = 0; i < count && has_model; i++) {
            entry* e = &entries[i];
            if (e->words > capacity) {
                capacity = e->words;
                expected = realloc(expected, capacity * sizeof(float));
                read = realloc(read, capacity * sizeof(float));
            }
            if (!fixture_read_array(r, e->words, expected)) {
                parsed = 0;
                break;
            }
            const float* model = e->values;
            if (infos[0].overwrite && e->slot >= 0) {
                read_shadow(contexts[0], 0, e, read);
                model = read;
            }
            ok &= CHECK(same_words(model, expected, e->words), "%s call %u: model '%s' after the step", id,
                        call + 1, e->name);
        }
    }
    for (int c = 0; c < 2; c++) {
        ema_destroy(contexts[c]);
    }
    for (uint32_t i = 0; i < count; i++) {
        free(entries[i].values);
    }
    free(expected);
    free(read);
    (void)case_index;
    return ok && parsed;
}

int main(int argc, char** argv) {
    check_begin("test_recipes");
    fixture_reader reader;
    if (fixture_open(&reader, argc > 1 ? argv[1] : DEFAULT_FIXTURE) != 0) {
        return 1;
    }
    uint32_t cases = 0;
    if (fixture_expect(&reader, "emarecipes") && fixture_expect(&reader, "1")) {
        const char* token;
        while ((token = fixture_token(&reader)) != NULL) {
            if (!CHECK(strcmp(token, "case") == 0, "expected 'case', got '%s'", token)) {
                break;
            }
            replay_case(&reader, cases++);
            if (reader.failed) {
                break;
            }
        }
    }
    CHECK(!reader.failed, "the fixture file parses");
    CHECK(cases >= 60, "%u cases replayed", cases);
    fixture_close(&reader);
    return check_end();
}
