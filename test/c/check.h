/*
 * check.h - a tiny assertion helper for the native C tests.
 *
 *     check_begin("test_api");
 *     CHECK(x == 1, "x is %d", x);          counts a pass or prints file:line
 *     CHECK_STATUS(ema_update(...), EMA_OK);
 *     return check_end();                   prints "test_api: N passed, M failed"
 *
 * A failed check does not stop the program; CHECK evaluates to 1 on success
 * and 0 on failure so a test can bail out of a loop early.
 */
#ifndef EMA_TEST_CHECK_H
#define EMA_TEST_CHECK_H

#include "ema_status.h"

#if defined(__GNUC__)
#define CHECK_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define CHECK_PRINTF(fmt_index, first_arg)
#endif

/* CHECK(condition, printf-style message, ...): the message is required. */
#define CHECK(cond, ...) check_result((cond) != 0, __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Compares two ema_status values and names both on failure. */
#define CHECK_STATUS(expr, expected) \
    check_status((expr), (expected), __FILE__, __LINE__, #expr)

void check_begin(const char* program);
int check_result(int ok, const char* file, int line, const char* expr, const char* fmt, ...)
    CHECK_PRINTF(5, 6);
int check_status(ema_status got, ema_status expected, const char* file, int line,
                 const char* expr);
/* Prints "<program>: N passed, M failed"; returns the exit code for main. */
int check_end(void);

unsigned long check_passed(void);
unsigned long check_failed(void);

#endif /* EMA_TEST_CHECK_H */
