/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz.h: what every libFuzzer harness in tests/fuzz shares (header-only):
 * the entry point's prototype and a check that holds whatever the build type
 * (assert() would vanish under NDEBUG).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the parser that the input broke: abort, so libFuzzer saves
 * the input as a crash reproducer. */
#define FUZZ_CHECK(expr)                                                                         \
        do {                                                                                     \
                if (!(expr)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

/* data[0..size) as a NUL-terminated string (an embedded NUL ends it early, as
 * it would for a C caller). Aborts on allocation failure. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        FUZZ_CHECK(s);
        for (size_t i = 0; i < size; i++)
                s[i] = (char) data[i];
        s[size] = 0;
        return s;
}
