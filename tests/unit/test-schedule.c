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
        .share_percent = 67, .jitter_percent = 5, .retry_initial = 30, .retry_max = 2 * 3600
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

static void test_retry_period(void **state) {
        uint64_t seed = 3;

        /* far from expiry: retry_max; 10 h left: 1 h; 1 h left: 6 min */
        assert_int_equal(renew_retry_period(T0, T0 + 100 * DAY, &policy), 7200);
        assert_int_equal(renew_retry_period(T0, T0 + 10 * 3600, &policy), 3600);
        assert_int_equal(renew_retry_period(T0, T0 + 3600, &policy), 360);
        /* 5 min left, and expired: the floor of a minute */
        assert_int_equal(renew_retry_period(T0, T0 + 300, &policy), 60);
        assert_int_equal(renew_retry_period(T0, T0 - 10, &policy), 60);

        for (int i = 0; i < 10000; i++) {
                uint64_t r = splitmix(&seed);
                uint64_t first = renew_retry_delay(1, T0, T0 + 100 * DAY, &policy, r);
                time_t grid = T0 + (time_t) renew_retry_delay(2, T0, T0 + 100 * DAY, &policy, r);

                /* the first retry soon: within a minute, jittered */
                assert_true(first >= 30 && first <= 60);
                /* ... or an eighth of a short period, but no less than retry_initial */
                assert_true(renew_retry_delay(1, T0, T0 + 3 * 3600, &policy, r) >= 30);
                assert_true(renew_retry_delay(1, T0, T0 + 3 * 3600, &policy, r) <= 60);
                assert_true(renew_retry_delay(1, T0, T0 + 3600, &policy, r) >= 23);
                assert_true(renew_retry_delay(1, T0, T0 + 3600, &policy, r) <= 45);
                assert_true(renew_retry_delay(1, T0, T0 + 300, &policy, r) >= 15);
                assert_true(renew_retry_delay(1, T0, T0 + 300, &policy, r) <= 30);
                /* every later one on the certificate's own grid, at most a period away,
                 * whenever it is asked for and whatever the failure count */
                assert_true(grid > T0 && grid <= T0 + 7200);
                for (time_t now = T0 + 1; now < T0 + 4 * 7200; now += 997) {
                        time_t next = now + (time_t) renew_retry_delay(2 + (unsigned) (now % 50), now,
                                                                       T0 + 100 * DAY, &policy, r);

                        assert_true(next > now && next <= now + 7200);
                        assert_int_equal((next - grid) % 7200, 0);
                }
                /* near expiry the period, and so the wait, shrink */
                assert_true(renew_retry_delay(20, T0, T0 + 3600, &policy, r) <= 360);
                assert_true(renew_retry_delay(3, T0, T0 - 10, &policy, r) <= 60);
        }
}

/* A fleet failing through a 6-hour outage: devices fall due at uniformly
 * spread times during it and retry until an attempt falls after its end. The
 * backlog must come back within one period of the end, at a flat rate: no
 * tenth of the period may hold more than 1.15 times its share (a ladder that
 * doubles with jitter piles them up at the start: 1.86 times in the first
 * tenth, 1.51 in the second). */
static void test_retry_backlog_flat(void **state) {
        const time_t outage = 6 * 3600, period = 7200;
        const unsigned devices = 20000;
        unsigned bins[10] = {};
        uint64_t seed = 11;

        for (unsigned d = 0; d < devices; d++) {
                time_t due = T0 + (time_t) ((uint64_t) d * (uint64_t) outage / devices);
                time_t not_after = due + YEAR / 3, t = due;
                uint64_t random = splitmix(&seed); /* the certificate's own, as fleetidd passes it */

                for (unsigned failures = 1; t < T0 + outage; failures++)
                        t += (time_t) renew_retry_delay(failures, t, not_after, &policy, random);
                assert_true(t - (T0 + outage) < period);
                bins[(t - (T0 + outage)) * 10 / period]++;
        }
        for (int i = 0; i < 10; i++)
                assert_true(bins[i] * 10 <= devices * 115 / 100);
}

/* Never a herd traded for an expiry: a device failing from its due time on
 * tries, up to its certificate's last minute, at least once in every tenth of
 * the time left (and every minute at the end), so a server that comes back a
 * minute before the expiry is still found in time. */
static void test_retry_until_expiry(void **state) {
        const time_t not_before = T0, not_after = T0 + YEAR;
        time_t t = renew_due(not_before, not_after, &policy, 1ULL << 63), prev;
        uint64_t seed = 5;
        unsigned failures = 1, after = 0;

        while (after < 3) {
                prev = t;
                t += (time_t) renew_retry_delay(failures++, t, not_after, &policy, splitmix(&seed));
                if (prev < not_after) {
                        time_t left = not_after - prev;

                        assert_true(t - prev <= (left / 10 > 60 ? left / 10 : 60));
                        assert_true(t - prev <= 7200);
                } else {
                        /* expired: the fallback enrolls; still every minute */
                        assert_true(t - prev <= 60);
                        after++;
                }
        }
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
                cmocka_unit_test(test_due_window),         cmocka_unit_test(test_due_degenerate),
                cmocka_unit_test(test_retry_period),       cmocka_unit_test(test_retry_backlog_flat),
                cmocka_unit_test(test_retry_until_expiry), cmocka_unit_test(test_retry_after),
                cmocka_unit_test(test_due_floored),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
