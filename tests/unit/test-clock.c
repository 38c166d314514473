/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "renew/clock.h"

#define BUILD ((time_t) 1795000000) /* 2026-11-18 */

static void test_clock_plausible(void **state) {
        Diag d = {};

        assert_int_equal(clock_check(BUILD + 10, BUILD, 0, &d), 0);
        assert_int_equal(clock_check(BUILD + 10, BUILD, BUILD + 5, &d), 0);
}

static void test_clock_1970(void **state) {
        Diag d = {};

        assert_int_equal(clock_check(12, BUILD, 0, &d), -ERANGE);
        assert_non_null(strstr(d.text, "1970-01-01T00:00:12Z, before this fleetid was built (2026-11-18"));
}

static void test_clock_before_birth(void **state) {
        Diag d = {};

        assert_int_equal(clock_check(BUILD + 10, BUILD, BUILD + 86400, &d), -ERANGE);
        assert_non_null(strstr(d.text, "before the birth certificate's notBefore (2026-11-19"));
}

static void test_lower_bound(void **state) {
        assert_int_equal(clock_lower_bound(100, 0), 100);
        assert_int_equal(clock_lower_bound(100, 50), 100);
        assert_int_equal(clock_lower_bound(100, 5000), 5000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_clock_plausible),
                cmocka_unit_test(test_clock_1970),
                cmocka_unit_test(test_clock_before_birth),
                cmocka_unit_test(test_lower_bound),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
