/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "est/retry-after.h"

static void test_http_date_formats(void **state) {
        time_t t;

        /* RFC 9110 5.6.7's example, in all three formats: 784111777. */
        assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
        assert_int_equal(t, 784111777);
        assert_int_equal(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
        assert_int_equal(t, 784111777);
        assert_int_equal(http_date_parse("Sun Nov  6 08:49:37 1994", &t), 0);
        assert_int_equal(t, 784111777);
        assert_int_equal(http_date_parse("Thu, 01 Jan 2026 00:00:00 GMT", &t), 0);
        assert_int_equal(t, 1767225600);
}

static void test_http_date_rejects(void **state) {
        static const char *const bad[] = {
                "",
                "Sun, 06 Nov 1994 08:49:37 UTC",
                "Sun, 31 Feb 1994 08:49:37 GMT",
                "Sun, 06 Foo 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 24:49:37 GMT",
                "Sun, 6 Nov 1994 08:49:37 GMT",
                "Sun Nov  6 08:49:37 94",
                "tomorrow",
                "Sun, 06 Nov 1994 08:49:37 GMT trailing",
                "Sunday, 06-Nov-94 08:49:37",
        };
        time_t t = 42;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(http_date_parse(bad[i], &t), -EINVAL);
                assert_int_equal(t, 42);
        }
}

static void test_retry_after_seconds(void **state) {
        uint64_t s = 7;

        assert_int_equal(retry_after_parse("120", 1000, 86400, &s), 0);
        assert_int_equal(s, 120);
        assert_int_equal(retry_after_parse(" 0", 1000, 86400, &s), 0);
        assert_int_equal(s, 0);
        /* absurd values saturate, no overflow */
        assert_int_equal(retry_after_parse("99999999999999999999999", 1000, 86400, &s), 0);
        assert_int_equal(s, 86400);
        assert_int_equal(retry_after_parse("-5", 1000, 86400, &s), -EINVAL);
        assert_int_equal(retry_after_parse("12s", 1000, 86400, &s), -EINVAL);
        assert_int_equal(retry_after_parse(NULL, 1000, 86400, &s), -EINVAL);
}

static void test_retry_after_date(void **state) {
        uint64_t s;

        assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 90, 86400, &s), 0);
        assert_int_equal(s, 90);
        /* in the past: now */
        assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 90, 86400, &s), 0);
        assert_int_equal(s, 0);
        /* far future: clamped */
        assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 0, 3600, &s), 0);
        assert_int_equal(s, 3600);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http_date_formats),
                cmocka_unit_test(test_http_date_rejects),
                cmocka_unit_test(test_retry_after_seconds),
                cmocka_unit_test(test_retry_after_date),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
