/*
 * The CHECK macro of the C tests: counts passed and failed checks and prints each failure.
 * Each test program defines `passed` and `failed` and prints "c: N passed, N failed" at the end.
 */
#ifndef STLOAD_TEST_CHECK_H
#define STLOAD_TEST_CHECK_H

#include <stdio.h>

extern int passed, failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            passed++;                                                               \
        } else {                                                                    \
            failed++;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#endif
