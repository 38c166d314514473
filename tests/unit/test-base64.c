/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/base64.h"
#include "util/macro.h"

static void assert_decodes(const char *in, const char *expect) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t n = 0;

        assert_int_equal(base64_decode(in, strlen(in), &out, &n), 0);
        assert_int_equal(n, strlen(expect));
        assert_memory_equal(out, expect, n);
        assert_int_equal(out[n], 0); /* NUL-terminated */
}

static void assert_rejected(const char *in, size_t len) {
        uint8_t *out = (uint8_t *) "untouched";
        size_t n = 4242;

        assert_int_equal(base64_decode(in, len, &out, &n), -EBADMSG);
        assert_string_equal((char *) out, "untouched");
        assert_int_equal(n, 4242);
}

static void assert_encodes(const char *in, size_t width, const char *expect) {
        _cleanup_free_ char *out = NULL;

        assert_int_equal(base64_encode((const uint8_t *) in, strlen(in), width, &out), 0);
        assert_string_equal(out, expect);
}

/* RFC 4648 section 10. */
static void test_rfc4648_vectors(void **state) {
        static const char *const v[][2] = {
                { "", "" },
                { "f", "Zg==" },
                { "fo", "Zm8=" },
                { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" },
                { "fooba", "Zm9vYmE=" },
                { "foobar", "Zm9vYmFy" },
        };

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                assert_encodes(v[i][0], 0, v[i][1]);
                assert_decodes(v[i][1], v[i][0]);
        }
}

static void test_roundtrip(void **state) {
        static const size_t widths[] = { 0, 1, 4, 5, 64, 76 };
        uint8_t data[300];

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i * 37 + 11);

        for (size_t w = 0; w < ELEMENTSOF(widths); w++)
                for (size_t len = 0; len <= sizeof(data); len += (len < 20 ? 1 : 31)) {
                        _cleanup_free_ char *text = NULL;
                        _cleanup_free_ uint8_t *back = NULL;
                        size_t n = 0, tl;

                        assert_int_equal(base64_encode(data, len, widths[w], &text), 0);
                        tl = strlen(text);
                        if (tl > 0)
                                assert_true(text[tl - 1] != '\n');
                        if (widths[w] == 0)
                                assert_null(strchr(text, '\n'));
                        assert_int_equal(base64_decode(text, tl, &back, &n), 0);
                        assert_int_equal(n, len);
                        if (len > 0)
                                assert_memory_equal(back, data, len);
                }
}

static void test_encode_wrapping(void **state) {
        assert_encodes("foobar", 4, "Zm9v\nYmFy"); /* exact multiple: no trailing newline */
        assert_encodes("foobar", 3, "Zm9\nvYm\nFy");
        assert_encodes("foob", 5, "Zm9vY\ng==");
        assert_encodes("foobar", 8, "Zm9vYmFy");
        assert_encodes("foobar", 100, "Zm9vYmFy");
        assert_encodes("", 4, "");
}

static void test_whitespace_tolerated(void **state) {
        assert_decodes("Zm9v\r\nYmFy\r\n", "foobar");
        assert_decodes(" Zm9v\tYm Fy \n", "foobar");
        assert_decodes("\r\nZ\nm\n9\nv\nYg\n=\n=\n", "foob");
        assert_decodes("Zm8=\r\n\r\n", "fo");
        assert_decodes(" \t\r\n", "");
}

static void test_bad_characters(void **state) {
        assert_rejected("Zm9v!mFy", 8);
        assert_rejected("Zm9v-mFy", 8); /* base64url is not what EST uses */
        assert_rejected("Zm9v_mFy", 8);
        assert_rejected("Zm9v\vYmFy", 9); /* vertical tab is not whitespace here */
        assert_rejected("Zm9v\0YmFy", 9); /* NUL inside the given length */
        assert_rejected("Zm9vYmF\xc3\xa9", 9);
}

static void test_bad_padding(void **state) {
        assert_rejected("Zg=", 3);
        assert_rejected("Z===", 4);
        assert_rejected("====", 4);
        assert_rejected("Zg=a", 4);
        assert_rejected("Zg==Zg==", 8); /* padding in the middle */
        assert_rejected("=Zg=", 4);
        assert_rejected("Zm9v=", 5);
        assert_rejected("Zm9vYg===", 9);
        assert_rejected("Zh==", 4); /* non-canonical: unused bits set */
        assert_rejected("Zm9=", 4);
}

static void test_truncated(void **state) {
        assert_rejected("Zm9vYmF", 7);
        assert_rejected("Zm9vY", 5);
        assert_rejected("Z", 1);
        assert_rejected("Zm9v\nYm\n", 8); /* 6 significant characters */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_encode_wrapping), cmocka_unit_test(test_whitespace_tolerated),
                cmocka_unit_test(test_bad_characters),  cmocka_unit_test(test_bad_padding),
                cmocka_unit_test(test_truncated),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
