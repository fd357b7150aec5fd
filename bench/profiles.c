/*
 * bench/profiles.c - several power-function profiles in one EMA against
 * separate EMAs, in the C core built natively: the native rows of
 * bench/profiles.mjs, which builds this file with gcc (bench/lib/
 * profiles-native.mjs) and drives it as a child process over the line
 * protocol of bench/native.c, so that its timings interleave with the
 * WebAssembly ones round by round.
 *
 *   bench_profiles SPEC SEED SIGMA_REL,SIGMA_REL[,...]
 *
 * SPEC lists the tensor lengths (`length` or `length*count`, comma-separated)
 * and SEED is the xorshift32 seed of bench/lib/params.mjs, so the parameters
 * hold the very same float32 values as on the JS side. Each SIGMA_REL is one
 * profile of the power recipe (batch size 1). The contexts:
 *
 *   fused              one context of every profile (ema_create_profiles)
 *   separate           one context per profile
 *   single             one context of the first profile alone
 *   residentFused      fused, in resident mode (the parameters in the arena)
 *   residentSeparate   separate, each in resident mode (each its own copy)
 *
 * Commands, one per line on stdin; one JSON line answers each on stdout:
 *
 *   verify STEP,...   one step per item, `f` or `d`, optionally `:SAMPLES`:
 *                     every parameter drawn anew in [-1, 1) (`f`) or moved
 *                     by a draw times DRIFT (`d`), then one update of every
 *                     context (a resident one gets the new values written
 *                     into its parameters first) with SAMPLES samples (none:
 *                     the batch size). Answers the FNV-1a 64 hash of each
 *                     context's shadows per profile (slot by slot) and each
 *                     profile's last weight. Must come first: it draws from
 *                     the random sequence exactly as bench/profiles.mjs does.
 *   time PATH W R     W untimed then R timed updates of PATH (a context's
 *                     name above; separate ones update every context of the
 *                     group, all timed as one). One element of every
 *                     parameter changes before each update, outside timing,
 *                     as in bench/lib/params.mjs. Answers {"samples": [ms]}.
 *   quit
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ema.h"

#define BENCH_PROGRAM "bench_profiles"
#include "bench_util.h"

#define MAX_LINE 4096
/* How far a `d` step of verify moves a parameter at most: bench/profiles.mjs's DRIFT. */
#define DRIFT 0x1p-7f

/* A context group: what one path updates. */
typedef struct group {
    const char* name;
    ema_ctx* contexts[EMA_MAX_PROFILES];
    uint32_t context_count;
    int resident;
} group;

enum { FUSED, SEPARATE, SINGLE, RESIDENT_FUSED, RESIDENT_SEPARATE, GROUP_COUNT };

static group groups[GROUP_COUNT] = {
    [FUSED] = {"fused", {0}, 0, 0},
    [SEPARATE] = {"separate", {0}, 0, 0},
    [SINGLE] = {"single", {0}, 0, 0},
    [RESIDENT_FUSED] = {"residentFused", {0}, 0, 1},
    [RESIDENT_SEPARATE] = {"residentSeparate", {0}, 0, 1},
};

static float** views; /* scratch: one resident context's parameters */
static uint32_t profile_count;
static double sigma_rels[EMA_MAX_PROFILES];

/* bench/profiles.mjs's driftArrays(): a training step's small move. */
static void drift_random(void) {
    for (uint32_t t = 0; t < slot_count; t++) {
        for (uint32_t i = 0; i < lengths[t]; i++) {
            params[t][i] = params[t][i] + next_random() * DRIFT;
        }
    }
}

static void parse_sigma_rels(const char* list) {
    const char* p = list;
    while (*p != '\0') {
        char* end;
        const double value = strtod(p, &end);
        if (end == p || profile_count == EMA_MAX_PROFILES) die("bad SIGMA_REL list");
        sigma_rels[profile_count++] = value;
        p = end;
        if (*p == ',') p++;
        else if (*p != '\0') die("bad SIGMA_REL list");
    }
    if (profile_count == 0) die("no SIGMA_REL");
}

static ema_schedule power_schedule(double sigma_rel) {
    ema_schedule schedule;
    check(ema_schedule_defaults(&schedule, EMA_RECIPE_POWER), "ema_schedule_defaults");
    schedule.sigma_rel = sigma_rel;
    return schedule;
}

/* A context of `count` profiles from sigma_rels[first], its shadows (and
 * resident parameters) holding the parameters, as createEma() starts them. */
static ema_ctx* create_context(uint32_t first, uint32_t count, int resident) {
    ema_schedule schedules[EMA_MAX_PROFILES];
    for (uint32_t k = 0; k < count; k++) schedules[k] = power_schedule(sigma_rels[first + k]);
    ema_ctx* ctx = NULL;
    check(ema_create_profiles(&ctx, count, schedules, slot_count, lengths), "ema_create_profiles");
    for (uint32_t k = 0; k < count; k++) {
        for (uint32_t t = 0; t < slot_count; t++) {
            memcpy(ema_profile_shadow(ctx, k, t), params[t], (size_t)lengths[t] * sizeof(float));
        }
    }
    if (resident) {
        check(ema_resident_enable(ctx), "ema_resident_enable");
        for (uint32_t t = 0; t < slot_count; t++) {
            memcpy(ema_param(ctx, t), params[t], (size_t)lengths[t] * sizeof(float));
        }
    }
    return ctx;
}

static void create_groups(void) {
    for (int g = 0; g < GROUP_COUNT; g++) {
        group* group = &groups[g];
        if (g == FUSED || g == RESIDENT_FUSED) {
            group->contexts[group->context_count++] = create_context(0, profile_count, group->resident);
        } else if (g == SINGLE) {
            group->contexts[group->context_count++] = create_context(0, 1, 0);
        } else {
            for (uint32_t k = 0; k < profile_count; k++) {
                group->contexts[group->context_count++] = create_context(k, 1, group->resident);
            }
        }
    }
}

static float** resident_views(ema_ctx* ctx) {
    for (uint32_t t = 0; t < slot_count; t++) views[t] = ema_param(ctx, t);
    return views;
}

/* One update of a context with `step` (samples, or EMA_NO_STEP); returns its decay. */
static float update_context(ema_ctx* ctx, int resident, int64_t step) {
    ema_step_info info;
    if (resident) {
        check(ema_update_resident_at(ctx, step, &info), "ema_update_resident_at");
    } else {
        check(ema_update_at(ctx, (const float* const*)params, step, &info), "ema_update_at");
    }
    return (float)info.decay;
}

static float update_group(const group* group, int64_t step) {
    float decay = 0.0f;
    for (uint32_t c = 0; c < group->context_count; c++) {
        decay += update_context(group->contexts[c], group->resident, step);
    }
    return decay;
}

/* FNV-1a 64 over the bytes of one profile's shadows, slot by slot (little-endian). */
static uint64_t profile_hash(ema_ctx* ctx, uint32_t profile) {
    uint64_t h = FNV1A64_OFFSET;
    for (uint32_t t = 0; t < slot_count; t++) h = fnv1a64(h, ema_profile_shadow(ctx, profile, t), lengths[t]);
    return h;
}

static void command_verify(const char* list) {
    for (const char* p = list; *p != '\0';) {
        const char kind = *p++;
        long long samples = 0;
        if (*p == ':') {
            char* end;
            samples = strtoll(p + 1, &end, 10);
            p = end == p + 1 ? p : end;
        }
        if ((kind != 'f' && kind != 'd') || samples < 0 || (*p != ',' && *p != '\0')) {
            printf("{\"error\":\"bad verify list '%s'\"}\n", list);
            fflush(stdout);
            return;
        }
        if (kind == 'f') fill_random();
        else drift_random();
        for (int g = 0; g < GROUP_COUNT; g++) {
            for (uint32_t c = 0; c < groups[g].context_count && groups[g].resident; c++) {
                float** into = resident_views(groups[g].contexts[c]);
                for (uint32_t t = 0; t < slot_count; t++) {
                    memcpy(into[t], params[t], (size_t)lengths[t] * sizeof(float));
                }
            }
            (void)update_group(&groups[g], samples == 0 ? EMA_NO_STEP : (int64_t)samples);
        }
        if (*p == ',') p++;
    }
    printf("{\"hashes\":{");
    for (int g = 0; g < GROUP_COUNT; g++) {
        printf("%s\"%s\":[", g ? "," : "", groups[g].name);
        int first = 1;
        for (uint32_t c = 0; c < groups[g].context_count; c++) {
            ema_ctx* ctx = groups[g].contexts[c];
            for (uint32_t k = 0; k < ema_profile_count(ctx); k++) {
                printf("%s\"%016llx\"", first ? "" : ",", (unsigned long long)profile_hash(ctx, k));
                first = 0;
            }
        }
        printf("]");
    }
    printf("},\"weights\":[");
    for (uint32_t k = 0; k < profile_count; k++) {
        ema_step_info info;
        check(ema_profile_step(groups[FUSED].contexts[0], k, &info), "ema_profile_step");
        printf("%s%.9g", k ? "," : "", (double)info.weight);
    }
    printf("]}\n");
    fflush(stdout);
}

static void touch_group(const void* chosen) {
    const group* group = chosen;
    if (!group->resident) {
        touch_arrays(params);
    } else {
        for (uint32_t c = 0; c < group->context_count; c++) touch_arrays(resident_views(group->contexts[c]));
    }
    iteration++;
}

/* What `time` runs: one update of the group, with the batch size's samples. */
static float update_timed(const void* chosen) {
    return update_group(chosen, EMA_NO_STEP);
}

static void command_time(const char* path, int warmup, int reps) {
    const group* chosen = NULL;
    for (int g = 0; g < GROUP_COUNT; g++) {
        if (strcmp(path, groups[g].name) == 0) chosen = &groups[g];
    }
    if (chosen == NULL || warmup < 0 || reps < 0) {
        printf("{\"error\":\"bad time command for '%s'\"}\n", path);
        fflush(stdout);
        return;
    }
    time_samples(touch_group, update_timed, chosen, warmup, reps);
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr,
                "usage: bench_profiles SPEC SEED SIGMA_REL,SIGMA_REL   (commands on stdin; see "
                "bench/profiles.c)\n");
        return 2;
    }
    init_params(argv[1], argv[2]);
    parse_sigma_rels(argv[3]);
    views = alloc_slot_pointers();
    create_groups();

    printf("{\"ready\":true,\"tensors\":%u,\"params\":%llu,\"profiles\":%u}\n", slot_count,
           (unsigned long long)param_total(), profile_count);
    fflush(stdout);

    char line[MAX_LINE];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char verb[32], arg[MAX_LINE];
        int a = 0, b = 0;
        const int fields = sscanf(line, "%31s %4095s %d %d", verb, arg, &a, &b);
        if (fields >= 1 && strcmp(verb, "quit") == 0) break;
        if (fields == 2 && strcmp(verb, "verify") == 0) {
            command_verify(arg);
        } else if (fields == 4 && strcmp(verb, "time") == 0) {
            command_time(arg, a, b);
        } else {
            printf("{\"error\":\"bad command\"}\n");
            fflush(stdout);
        }
    }
    for (int g = 0; g < GROUP_COUNT; g++) {
        for (uint32_t c = 0; c < groups[g].context_count; c++) ema_destroy(groups[g].contexts[c]);
    }
    return sink == 12345.0f ? 1 : 0;
}
