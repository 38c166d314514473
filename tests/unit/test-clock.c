/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "util/clock.h"

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

/* A renewal replaces a valid identity: no slack, whatever est.max_clock_skew says. */
/* A stored certificate from the clock's future: the clock went back, unless
 * time synchronisation says otherwise. */
static void test_clock_behind_stored(void **state) {
        const time_t now = 1800000000;
        Diag d = {};

        assert_int_equal(clock_check_stored(now, 0, 300, false, &d), 0);               /* none stored */
        assert_int_equal(clock_check_stored(now, now - 3600, 300, false, &d), 0);      /* valid */
        assert_int_equal(clock_check_stored(now, now + 300, 300, false, &d), 0);       /* within the skew */
        assert_int_equal(clock_check_stored(now, now + 301, 300, false, &d), -ERANGE); /* beyond it */
        assert_non_null(strstr(d.text, "est.max_clock_skew = 300s"));
        assert_int_equal(clock_check_stored(now, now + 86400, 300, true, &d), 0); /* timesyncd vouches */
        assert_int_equal(clock_check_stored(now, now + 1, 0, false, &d), -ERANGE);
}

static void test_not_before_slack(void **state) {
        assert_int_equal(clock_not_before_slack(true, 300), CLOCK_RENEWAL_GRACE_SEC);
        assert_int_equal(clock_not_before_slack(true, 3), 3);
        assert_int_equal(clock_not_before_slack(true, 0), 0);
        assert_int_equal(clock_not_before_slack(false, 300), 300);
        assert_int_equal(clock_not_before_slack(false, 0), 0);
        assert_int_equal(clock_not_before_slack(false, -5), 0);
}

/* The server's Date only says "the local clock is behind" beyond the skew; it
 * is never a time to judge certificates at. */
static void test_behind_server(void **state) {
        time_t behind = 42;

        assert_false(clock_behind_server(BUILD, 0, 300, &behind));
        assert_false(clock_behind_server(BUILD, BUILD - 5000, 300, &behind));
        assert_false(clock_behind_server(BUILD, BUILD + 300, 300, &behind));
        assert_int_equal(behind, 42); /* untouched when not behind */
        assert_true(clock_behind_server(BUILD, BUILD + 301, 300, &behind));
        assert_int_equal(behind, 301);
        assert_true(clock_behind_server(BUILD, BUILD + 350 * 86400, 300, &behind));
        assert_int_equal(behind, 350 * 86400);
        assert_true(clock_behind_server(BUILD, BUILD + 1, 0, NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_clock_plausible),    cmocka_unit_test(test_clock_1970),
                cmocka_unit_test(test_clock_before_birth), cmocka_unit_test(test_not_before_slack),
                cmocka_unit_test(test_behind_server),      cmocka_unit_test(test_clock_behind_stored),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
