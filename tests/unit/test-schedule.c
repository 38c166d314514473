/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Renewal scheduling on a fake clock: every time is handed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "renew/schedule.h"

#define DAY 86400
#define YEAR ((time_t) 365 * DAY)
#define T0 ((time_t) 1800000000)

static const RenewPolicy policy = {
        .share_percent = 67, .jitter_percent = 5, .retry_initial = 30, .retry_max = 4 * 3600
};

static uint64_t splitmix(uint64_t *s) {
        uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

static void test_due_window(void **state) {
        time_t lo = T0 + YEAR * 62 / 100, hi = T0 + YEAR * 72 / 100, min = hi, max = lo;
        uint64_t seed = 1;

        /* middle of the window for u = 0 */
        assert_int_equal(renew_due(T0, T0 + YEAR, &policy, 1ULL << 63), T0 + (time_t) YEAR * 67 / 100);
        for (int i = 0; i < 100000; i++) {
                time_t t = renew_due(T0, T0 + YEAR, &policy, splitmix(&seed));

                assert_true(t >= lo && t <= hi);
                if (t < min)
                        min = t;
                if (t > max)
                        max = t;
        }
        /* the draws cover the whole +-5 % window (to within a day) */
        assert_true(min - lo < DAY);
        assert_true(hi - max < DAY);
}

static void test_due_degenerate(void **state) {
        RenewPolicy none = policy;

        none.jitter_percent = 0;
        assert_int_equal(renew_due(T0, T0 + 300, &none, 12345), T0 + 201);
        /* inverted or empty validity: now */
        assert_int_equal(renew_due(T0, T0, &policy, 99), T0);
        assert_int_equal(renew_due(T0, T0 - 5, &policy, 99), T0);
        /* never at or after expiry, even with extreme parameters */
        RenewPolicy late = { .share_percent = 95, .jitter_percent = 20, .retry_initial = 1, .retry_max = 60 };
        assert_true(renew_due(T0, T0 + 10, &late, UINT64_MAX) < T0 + 10);
}

static void test_retry_ladder(void **state) {
        /* far from expiry: capped at retry_max */
        assert_int_equal(renew_retry_delay(20, T0, T0 + 100 * DAY, &policy, 0), 7200);
        assert_true(renew_retry_delay(20, T0, T0 + 100 * DAY, &policy, 7) <= 14400);
        /* 10 h left: at most 1 h */
        for (uint64_t r = 0; r < 5000; r += 17)
                assert_true(renew_retry_delay(20, T0, T0 + 10 * 3600, &policy, r * 0x9E3779B97F4A7C15ULL) <=
                            3600);
        /* 1 h left: at most 6 min */
        assert_true(renew_retry_delay(20, T0, T0 + 3600, &policy, 123456789) <= 360);
        /* 5 min left, and expired: the floor of a minute */
        assert_true(renew_retry_delay(20, T0, T0 + 300, &policy, 5) <= 60);
        assert_true(renew_retry_delay(20, T0, T0 + 300, &policy, 5) >= 30);
        assert_true(renew_retry_delay(3, T0, T0 - 10, &policy, 5) <= 60);
        /* far from expiry the first retry waits an eighth of the cap (15-30 min) */
        assert_true(renew_retry_delay(1, T0, T0 + 100 * DAY, &policy, 5) >= 900);
        assert_true(renew_retry_delay(1, T0, T0 + 100 * DAY, &policy, 5) <= 1800);
        /* near expiry it shrinks with the cap */
        assert_true(renew_retry_delay(1, T0, T0 + 3600, &policy, 5) <= 60);
}

static void test_retry_after(void **state) {
        const time_t now = 1800000000;

        /* The server's value, at least a second. */
        assert_int_equal(renew_retry_after_delay(120, now, now + 86400), 120);
        assert_int_equal(renew_retry_after_delay(0, now, now + 86400), 1);
        /* Never past the certificate's expiry: one second after notAfter, the
         * fallback to the birth identity takes over. */
        assert_int_equal(renew_retry_after_delay(7 * 86400, now, now + 3600), 3601);
        assert_int_equal(renew_retry_after_delay(3601, now, now + 3600), 3601);
        assert_int_equal(renew_retry_after_delay(3600, now, now + 3600), 3600);
        assert_int_equal(renew_retry_after_delay(60, now, now), 1);
        /* Expired while the request was under way: the fallback comes at once. */
        assert_int_equal(renew_retry_after_delay(60, now, now - 10), 1);
        assert_int_equal(renew_retry_after_delay(86400, now, now - 1), 1);
}

/* renew.min_interval: never two renewals closer than the floor. */
/* renew.min_interval: never two renewals closer than the floor. */
static void test_due_floored(void **state) {
        const time_t now = 1800000000;

        /* Due well after the floor: unchanged. */
        assert_int_equal(renew_due_floored(now + 86400, now, 300, now), now + 86400);
        /* A 2-second certificate renewed a second ago: held to the floor. */
        assert_int_equal(renew_due_floored(now + 1, now - 1, 300, now), now + 299);
        assert_int_equal(renew_due_floored(now - 10, now - 1, 300, now), now + 299);
        /* No renewal known yet, or no floor: unchanged. */
        assert_int_equal(renew_due_floored(now + 1, 0, 300, now), now + 1);
        assert_int_equal(renew_due_floored(now + 1, now, 0, now), now + 1);
        /* Exactly at the floor: unchanged. */
        assert_int_equal(renew_due_floored(now + 300, now, 300, now), now + 300);
        /* A last renewal in the future (damaged status, clock set back) holds
         * no longer than min_interval from now. */
        assert_int_equal(renew_due_floored(now + 1, now + 100 * 86400, 300, now), now + 300);
        /* No overflow: saturated. */
        assert_true(renew_due_floored(0, now, UINT64_MAX, now) == INT64_MAX);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_due_window),   cmocka_unit_test(test_due_degenerate),
                cmocka_unit_test(test_retry_ladder), cmocka_unit_test(test_retry_after),
                cmocka_unit_test(test_due_floored),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
