/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-base64: base64_decode() on any bytes (EST bodies arrive base64 with line
 * breaks anywhere). What decodes must re-encode to the same text once the
 * whitespace is dropped (the decoder refuses non-canonical input), and any
 * bytes must survive base64_encode() + base64_decode() at any line width.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/base64.h"

static void check_decode(const uint8_t *data, size_t size) {
        _cleanup_free_ uint8_t *out = NULL;
        _cleanup_free_ char *again = NULL, *squeezed = NULL;
        size_t out_len = 0, n = 0;

        if (base64_decode((const char *) data, size, &out, &out_len) < 0)
                return;
        FUZZ_CHECK(out[out_len] == 0);

        /* The input without its whitespace is the canonical encoding. */
        squeezed = malloc(size + 1);
        FUZZ_CHECK(squeezed);
        for (size_t i = 0; i < size; i++)
                if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n')
                        squeezed[n++] = (char) data[i];
        squeezed[n] = 0;
        FUZZ_CHECK(base64_encode(out, out_len, 0, &again) == 0);
        FUZZ_CHECK(strcmp(again, squeezed) == 0);
}

static void check_round_trip(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ uint8_t *back = NULL;
        size_t width, back_len = 0;

        if (size == 0)
                return;
        /* The first byte picks the line width (0 = one line). */
        width = data[0] % 80;
        data++, size--;
        FUZZ_CHECK(base64_encode(data, size, width, &text) == 0);
        FUZZ_CHECK(strlen(text) == 0 || text[strlen(text) - 1] != '\n');
        FUZZ_CHECK(base64_decode(text, strlen(text), &back, &back_len) == 0);
        FUZZ_CHECK(back_len == size);
        FUZZ_CHECK(size == 0 || memcmp(back, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        check_decode(data, size);
        check_round_trip(data, size);
        return 0;
}
