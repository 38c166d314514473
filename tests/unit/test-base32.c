/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* base32, lowercase and unpadded: the RFC 4648 section 10 test vectors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/base32.h"

static void test_vectors(void **state) {
        /* RFC 4648: "MZXW6YTBOI======" for "foobar", ... (lowercased, '=' dropped) */
        static const struct {
                const char *in, *out;
        } v[] = {
                { "", "" },
                { "f", "my" },
                { "fo", "mzxq" },
                { "foo", "mzxw6" },
                { "foob", "mzxw6yq" },
                { "fooba", "mzxw6ytb" },
                { "foobar", "mzxw6ytboi" },
        };
        char out[32];

        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                size_t n = strlen(v[i].in);

                assert_int_equal(BASE32_LEN(n), strlen(v[i].out));
                assert_int_equal(base32_encode_lower((const uint8_t *) v[i].in, n, out, sizeof(out)), 0);
                assert_string_equal(out, v[i].out);
        }
}

static void test_all_bits(void **state) {
        uint8_t ff[32], zero[32] = { 0 };
        char out[BASE32_LEN(32) + 1];

        memset(ff, 0xff, sizeof(ff));
        assert_int_equal(BASE32_LEN(32), 52);
        assert_int_equal(base32_encode_lower(ff, sizeof(ff), out, sizeof(out)), 0);
        /* 256 bits: 51 characters of 5 ones, then 1 one and 4 zero bits */
        for (size_t i = 0; i < 51; i++)
                assert_int_equal(out[i], '7');
        assert_int_equal(out[51], 'q');
        assert_int_equal(out[52], '\0');
        assert_int_equal(base32_encode_lower(zero, sizeof(zero), out, sizeof(out)), 0);
        assert_int_equal(strspn(out, "a"), 52);
}

static void test_too_small(void **state) {
        char out[8] = "xxxxxxx";

        assert_int_equal(base32_encode_lower((const uint8_t *) "foobar", 6, out, 10), -ENOBUFS);
        assert_int_equal(base32_encode_lower((const uint8_t *) "foo", 3, out, 5), -ENOBUFS);
        assert_string_equal(out, "xxxxxxx");
        assert_int_equal(base32_encode_lower((const uint8_t *) "foo", 3, out, 6), 0);
        assert_string_equal(out, "mzxw6");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),
                cmocka_unit_test(test_all_bits),
                cmocka_unit_test(test_too_small),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
