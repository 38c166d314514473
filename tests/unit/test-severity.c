/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The severity model on a fake clock: every time is handed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>
#include <cmocka.h>

#include "monitor/severity.h"

#define DAY 86400
#define T0 ((time_t) 1800000000)
/* 100 days: one percent of the lifetime is exactly one day */
#define LIFE ((time_t) 100 * DAY)
#define NOT_AFTER (T0 + LIFE)
#define DUE (T0 + 67 * DAY)

static Severity at(time_t now) {
        return severity_for(now, T0, NOT_AFTER, DUE, 20, 10, 3);
}

static void test_before_due(void **state) {
        assert_int_equal(at(T0), SEVERITY_OK);
        assert_int_equal(at(T0 + 1), SEVERITY_OK);
        assert_int_equal(at(DUE - 1), SEVERITY_OK);
        /* not valid yet (clock behind): no time is used up, nothing is due */
        assert_int_equal(at(T0 - 10 * DAY), SEVERITY_OK);
}

static void test_due_not_renewed(void **state) {
        assert_int_equal(at(DUE), SEVERITY_NOTICE);
        assert_int_equal(at(DUE + 5 * DAY), SEVERITY_NOTICE);
        /* 20 % + 1 s left: still only a notice */
        assert_int_equal(at(NOT_AFTER - 20 * DAY - 1), SEVERITY_NOTICE);
}

static void test_threshold_boundaries(void **state) {
        /* "at most N % left" includes N % exactly */
        assert_int_equal(at(NOT_AFTER - 20 * DAY), SEVERITY_WARNING);
        assert_int_equal(at(NOT_AFTER - 10 * DAY - 1), SEVERITY_WARNING);
        assert_int_equal(at(NOT_AFTER - 10 * DAY), SEVERITY_ERROR);
        assert_int_equal(at(NOT_AFTER - 3 * DAY - 1), SEVERITY_ERROR);
        assert_int_equal(at(NOT_AFTER - 3 * DAY), SEVERITY_CRITICAL);
        assert_int_equal(at(NOT_AFTER - 1), SEVERITY_CRITICAL);
}

static void test_expired(void **state) {
        /* notAfter is the last valid second, but nothing is left of the lifetime */
        assert_int_equal(at(NOT_AFTER), SEVERITY_CRITICAL);
        assert_int_equal(at(NOT_AFTER + 1), SEVERITY_CRITICAL);
        assert_int_equal(at(NOT_AFTER + 1000 * DAY), SEVERITY_CRITICAL);
        /* even with thresholds of 0 */
        assert_int_equal(severity_for(NOT_AFTER + 1, T0, NOT_AFTER, DUE, 0, 0, 0), SEVERITY_CRITICAL);
        assert_int_equal(severity_for(NOT_AFTER - 1, T0, NOT_AFTER, DUE, 0, 0, 0), SEVERITY_NOTICE);
}

static time_t next_rise(time_t now, Severity floor) {
        return severity_next_rise(now, T0, NOT_AFTER, DUE, 20, 10, 3, floor);
}

static void test_next_rise(void **state) {
        /* Each rise at the first second of the new severity, never earlier. */
        assert_int_equal(next_rise(T0, SEVERITY_OK), DUE);
        assert_int_equal(next_rise(DUE - 1, SEVERITY_OK), DUE);
        assert_int_equal(next_rise(DUE, SEVERITY_OK), NOT_AFTER - 20 * DAY);
        assert_int_equal(next_rise(NOT_AFTER - 20 * DAY, SEVERITY_OK), NOT_AFTER - 10 * DAY);
        assert_int_equal(next_rise(NOT_AFTER - 10 * DAY, SEVERITY_OK), NOT_AFTER - 3 * DAY);
        assert_int_equal(next_rise(NOT_AFTER - 3 * DAY - 1, SEVERITY_OK), NOT_AFTER - 3 * DAY);
        /* critical: nothing above it */
        assert_int_equal(next_rise(NOT_AFTER - 3 * DAY, SEVERITY_OK), 0);
        assert_int_equal(next_rise(NOT_AFTER + DAY, SEVERITY_OK), 0);
        /* the clock behind notBefore: the first rise is still the due time */
        assert_int_equal(next_rise(T0 - 10 * DAY, SEVERITY_OK), DUE);
        for (time_t now = T0; now < NOT_AFTER; now += DAY / 3) {
                time_t t = next_rise(now, SEVERITY_OK);

                if (at(now) == SEVERITY_CRITICAL) {
                        assert_int_equal(t, 0);
                        continue;
                }
                assert_true(t > now);
                assert_true(at(t) > at(now));
                assert_true(at(t - 1) == at(now));
        }
}

static void test_next_rise_floor(void **state) {
        /* Above a floor of notice, the due time is no rise: the next is warning. */
        assert_int_equal(next_rise(T0, SEVERITY_NOTICE), NOT_AFTER - 20 * DAY);
        assert_int_equal(next_rise(T0, SEVERITY_ERROR), NOT_AFTER - 3 * DAY);
        assert_int_equal(next_rise(T0, SEVERITY_CRITICAL), 0);
        /* a threshold of 0 % is reached at expiry */
        assert_int_equal(severity_next_rise(T0, T0, NOT_AFTER, DUE, 20, 10, 0, SEVERITY_ERROR), NOT_AFTER);
        /* equal thresholds: one rise straight to the worst */
        assert_int_equal(severity_next_rise(T0, T0, NOT_AFTER, DUE, 10, 10, 10, SEVERITY_NOTICE),
                         NOT_AFTER - 10 * DAY);
        assert_int_equal(severity_for(NOT_AFTER - 10 * DAY, T0, NOT_AFTER, DUE, 10, 10, 10),
                         SEVERITY_CRITICAL);
        /* an empty lifetime is critical already */
        assert_int_equal(severity_next_rise(T0 - DAY, T0, T0, T0, 20, 10, 3, SEVERITY_OK), 0);
        /* lifetimes that do not divide evenly: still the first second of the rise */
        for (time_t life = 1; life < 400; life += 7) {
                time_t t = severity_next_rise(T0, T0, T0 + life, T0 + life, 20, 10, 3, SEVERITY_NOTICE);

                assert_true(t > T0);
                assert_true(severity_for(t, T0, T0 + life, T0 + life, 20, 10, 3) > SEVERITY_NOTICE);
                if (t - 1 > T0)
                        assert_true(severity_for(t - 1, T0, T0 + life, T0 + life, 20, 10, 3) <=
                                    SEVERITY_NOTICE);
        }
}

static void test_degenerate_lifetime(void **state) {
        /* zero lifetime */
        assert_int_equal(severity_for(T0 - DAY, T0, T0, T0, 20, 10, 3), SEVERITY_CRITICAL);
        assert_int_equal(severity_for(T0, T0, T0, T0, 20, 10, 3), SEVERITY_CRITICAL);
        /* inverted: never valid, whatever the time */
        assert_int_equal(severity_for(T0 - DAY, T0, T0 - 1, T0, 20, 10, 3), SEVERITY_CRITICAL);
        assert_int_equal(severity_for(T0 + DAY, T0 + 2 * DAY, T0, T0 + 2 * DAY, 20, 10, 3), SEVERITY_CRITICAL);
        /* one second of lifetime, not over yet: 100 % left */
        assert_int_equal(severity_for(T0, T0, T0 + 1, T0 + 1, 20, 10, 3), SEVERITY_OK);
}

static void test_extreme_times(void **state) {
        /* no overflow at the ends of a 64-bit time_t */
        time_t far = INT64_MAX - 1;

        assert_int_equal(severity_for(0, INT64_MIN + 1, far, far - 1, 20, 10, 3), SEVERITY_OK);
        assert_int_equal(severity_for(far - 1, INT64_MIN + 1, far, far - 1, 20, 10, 3), SEVERITY_CRITICAL);
        assert_int_equal(severity_for(INT64_MIN, INT64_MIN + 1, far, far - 1, 20, 10, 3), SEVERITY_OK);
}

static void test_misordered_thresholds(void **state) {
        /* error above warning: the worst match wins */
        assert_int_equal(severity_for(NOT_AFTER - 15 * DAY, T0, NOT_AFTER, DUE, 10, 20, 3), SEVERITY_ERROR);
        assert_int_equal(severity_for(NOT_AFTER - 15 * DAY, T0, NOT_AFTER, DUE, 10, 20, 30),
                         SEVERITY_CRITICAL);
}

static void test_names(void **state) {
        assert_string_equal(severity_to_string(SEVERITY_OK), "ok");
        assert_string_equal(severity_to_string(SEVERITY_NOTICE), "notice");
        assert_string_equal(severity_to_string(SEVERITY_WARNING), "warning");
        assert_string_equal(severity_to_string(SEVERITY_ERROR), "error");
        assert_string_equal(severity_to_string(SEVERITY_CRITICAL), "critical");
        assert_null(severity_to_string(_SEVERITY_MAX));
        assert_null(severity_to_string((Severity) -1));

        assert_int_equal(severity_to_syslog(SEVERITY_OK), LOG_INFO);
        assert_int_equal(severity_to_syslog(SEVERITY_NOTICE), LOG_NOTICE);
        assert_int_equal(severity_to_syslog(SEVERITY_WARNING), LOG_WARNING);
        assert_int_equal(severity_to_syslog(SEVERITY_ERROR), LOG_ERR);
        assert_int_equal(severity_to_syslog(SEVERITY_CRITICAL), LOG_CRIT);
        assert_int_equal(severity_to_syslog(_SEVERITY_MAX), LOG_CRIT);
}

/* renew.min_lifetime: a certificate shorter than it is at least a warning. */
static void test_short_lifetime(void **state) {
        const time_t t = 1800000000;

        assert_int_equal(severity_for_lifetime(t, t + 2, 3600), SEVERITY_WARNING);
        assert_int_equal(severity_for_lifetime(t, t + 3599, 3600), SEVERITY_WARNING);
        assert_int_equal(severity_for_lifetime(t, t + 3600, 3600), SEVERITY_OK);
        assert_int_equal(severity_for_lifetime(t, t + 2, 0), SEVERITY_OK);
        /* empty or inverted: severity_for() already says critical */
        assert_int_equal(severity_for_lifetime(t, t, 3600), SEVERITY_OK);
        assert_int_equal(severity_for_lifetime(t, t - 5, 3600), SEVERITY_OK);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_before_due),
                cmocka_unit_test(test_due_not_renewed),
                cmocka_unit_test(test_threshold_boundaries),
                cmocka_unit_test(test_expired),
                cmocka_unit_test(test_next_rise),
                cmocka_unit_test(test_next_rise_floor),
                cmocka_unit_test(test_degenerate_lifetime),
                cmocka_unit_test(test_extreme_times),
                cmocka_unit_test(test_misordered_thresholds),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_short_lifetime),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
