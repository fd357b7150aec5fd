#include "check.h"
#include "test_util.h"

#include <stdarg.h>
#include <stdio.h>

static const char* g_program = "test";
static unsigned long g_passed;
static unsigned long g_failed;

void check_begin(const char* program) {
    g_program = program;
    /* Line buffering keeps the output in order if a sanitizer aborts the run. */
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int check_result(int ok, const char* file, int line, const char* expr, const char* fmt, ...) {
    if (ok) {
        g_passed++;
        return 1;
    }
    g_failed++;
    printf("%s:%d: FAILED: %s: ", file, line, expr);
    va_list args;
    va_start(args, fmt);
    vprintln(fmt, args);
    va_end(args);
    return 0;
}

int check_status(ema_status got, ema_status expected, const char* file, int line,
                 const char* expr) {
    return check_result(got == expected, file, line, expr, "got %d (%s), expected %d (%s)",
                        (int)got, ema_status_string(got), (int)expected,
                        ema_status_string(expected));
}

int check_end(void) {
    printf("%s: %lu passed, %lu failed\n", g_program, g_passed, g_failed);
    fflush(stdout);
    return g_failed == 0 && g_passed > 0 ? 0 : 1;
}

unsigned long check_passed(void) {
    return g_passed;
}

unsigned long check_failed(void) {
    return g_failed;
}
