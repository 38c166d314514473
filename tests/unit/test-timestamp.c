/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* timestamp_utc(): ISO 8601 in UTC, and "@SECONDS" for a year that does not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/timestamp.h"

static void test_known_times(void **state) {
        char buf[TIMESTAMP_MAX];

        assert_string_equal(timestamp_utc(0, buf), "1970-01-01T00:00:00Z");
        assert_string_equal(timestamp_utc(1796301898, buf), "2026-12-03T12:44:58Z");
        assert_string_equal(timestamp_utc(253402300799, buf), "9999-12-31T23:59:59Z"); /* 802.1AR's "no expiry" */
        assert_string_equal(timestamp_utc(-1, buf), "1969-12-31T23:59:59Z");
}

static void test_unshowable(void **state) {
        char buf[TIMESTAMP_MAX];

        /* gmtime_r() cannot give a year past INT_MAX: the seconds, marked. */
        assert_string_equal(timestamp_utc((time_t) INT64_MAX, buf), "@9223372036854775807");
        assert_string_equal(timestamp_utc((time_t) INT64_MIN, buf), "@-9223372036854775808");
        assert_true(strlen(buf) < TIMESTAMP_MAX);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_known_times),
                cmocka_unit_test(test_unshowable),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
