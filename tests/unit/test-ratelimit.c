/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-ratelimit.c: the token bucket per uid on a fake clock: the burst, the
 * refill, the retry time, a flood of 10,000 requests from one uid, and the
 * bound on memory with its eviction rule under a flood from many uids; and
 * fleetid.conf's access keys, whose bounds are the limiter's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "access/ratelimit.h"
#include "config/config.h"

#define SEC UINT64_C(1000000)
#define T0 (1000 * SEC) /* an arbitrary CLOCK_MONOTONIC start */

static void test_arguments(void **state) {
        RateLimit *rl = NULL;

        assert_int_equal(ratelimit_new(&rl, 0, 1, 16), -EINVAL);
        assert_int_equal(ratelimit_new(&rl, RATELIMIT_PER_MINUTE_MAX + 1, 1, 16), -EINVAL);
        assert_int_equal(ratelimit_new(&rl, 1, 0, 16), -EINVAL);
        assert_int_equal(ratelimit_new(&rl, 1, RATELIMIT_BURST_MAX + 1, 16), -EINVAL);
        assert_int_equal(ratelimit_new(&rl, 1, 1, RATELIMIT_UIDS_MIN - 1), -EINVAL);
        assert_int_equal(ratelimit_new(&rl, 1, 1, RATELIMIT_UIDS_MAX + 1), -EINVAL);
        assert_null(rl);
        assert_int_equal(
                ratelimit_new(&rl, RATELIMIT_PER_MINUTE_MAX, RATELIMIT_BURST_MAX, RATELIMIT_UIDS_MAX), 0);
        assert_true(ratelimit_take(rl, 1, 0, NULL));
        ratelimit_free(rl);
        assert_null(ratelimit_free(NULL));
}

static void test_burst_and_refill(void **state) {
        _cleanup_(ratelimit_freep) RateLimit *rl = NULL;
        uint64_t retry = 0;

        /* 60 a minute = one a second, bursts of 5 */
        assert_int_equal(ratelimit_new(&rl, 60, 5, 16), 0);
        for (int i = 0; i < 5; i++)
                assert_true(ratelimit_take(rl, 1000, T0, NULL));
        assert_false(ratelimit_take(rl, 1000, T0, &retry));
        assert_int_equal(retry, SEC);
        /* another uid has its own bucket */
        assert_true(ratelimit_take(rl, 1001, T0, NULL));
        /* 0.4 s later: 0.4 token, still nothing; the retry time shrinks */
        assert_false(ratelimit_take(rl, 1000, T0 + 400000, &retry));
        assert_int_equal(retry, 600000);
        /* at 1 s one token is back, and only one */
        assert_true(ratelimit_take(rl, 1000, T0 + SEC, NULL));
        assert_false(ratelimit_take(rl, 1000, T0 + SEC, NULL));
        /* a long pause refills to the burst, not beyond */
        for (int i = 0; i < 5; i++)
                assert_true(ratelimit_take(rl, 1000, T0 + 3600 * SEC, NULL));
        assert_false(ratelimit_take(rl, 1000, T0 + 3600 * SEC, NULL));
        /* a clock that goes back refills nothing */
        assert_false(ratelimit_take(rl, 1000, T0, &retry));
        assert_int_equal(retry, SEC);
        /* a pause long enough to overflow elapsed * rate still just fills the bucket */
        for (int i = 0; i < 5; i++)
                assert_true(ratelimit_take(rl, 1000, UINT64_MAX, NULL));
        assert_false(ratelimit_take(rl, 1000, UINT64_MAX, NULL));
}

static void test_slow_rate_rounding(void **state) {
        _cleanup_(ratelimit_freep) RateLimit *rl = NULL;
        uint64_t retry = 0;

        /* 7 a minute: a token every 8571428.57 µs; the retry time rounds up */
        assert_int_equal(ratelimit_new(&rl, 7, 1, 16), 0);
        assert_true(ratelimit_take(rl, 5, T0, NULL));
        assert_false(ratelimit_take(rl, 5, T0, &retry));
        assert_int_equal(retry, 8571429);
        assert_false(ratelimit_take(rl, 5, T0 + retry - 1, NULL));
        assert_true(ratelimit_take(rl, 5, T0 + retry, NULL));
}

/* A flood of 10,000 requests from one uid within 10 s: the burst and the
 * refill pass, everything else is limited, and the table tracks one uid. */
static void test_flood_one_uid(void **state) {
        _cleanup_(ratelimit_freep) RateLimit *rl = NULL;
        unsigned allowed = 0, limited = 0;
        size_t memory;

        assert_int_equal(ratelimit_new(&rl, 60, 10, 256), 0);
        memory = ratelimit_memory(rl);
        for (unsigned i = 0; i < 10000; i++) {
                if (ratelimit_take(rl, 1000, T0 + (uint64_t) i * 1000, NULL))
                        allowed++;
                else
                        limited++;
        }
        /* 10 (burst) + 9 refilled over the 9.999 s the flood lasted */
        assert_int_equal(allowed, 19);
        assert_int_equal(limited, 10000 - 19);
        assert_int_equal(ratelimit_tracked(rl), 1);
        assert_int_equal(ratelimit_memory(rl), memory);
        /* a well-behaved uid is not hurt by the flood */
        assert_true(ratelimit_take(rl, 1001, T0 + 10 * SEC, NULL));
}

/* 10,000 uids calling once each: the table never holds more than its bound,
 * and a uid that is being limited is not forgotten in favour of the crowd. */
static void test_flood_many_uids(void **state) {
        _cleanup_(ratelimit_freep) RateLimit *rl = NULL;
        uint64_t now = T0;
        size_t memory;

        assert_int_equal(ratelimit_new(&rl, 60, 3, 16), 0);
        memory = ratelimit_memory(rl);
        /* uid 7 empties its bucket */
        for (int i = 0; i < 3; i++)
                assert_true(ratelimit_take(rl, 7, now, NULL));
        assert_false(ratelimit_take(rl, 7, now, NULL));
        for (uid_t uid = 100000; uid < 110000; uid++) {
                assert_true(ratelimit_take(rl, uid, now, NULL));
                assert_true(ratelimit_tracked(rl) <= 16);
        }
        assert_int_equal(ratelimit_tracked(rl), 16);
        assert_int_equal(ratelimit_memory(rl), memory);
        /* the crowd's buckets were fuller than uid 7's, so theirs went: 7 is still limited */
        assert_false(ratelimit_take(rl, 7, now, NULL));

        /* once uid 7's bucket is full again it is no different from a new one, and may go */
        now += 3600 * SEC;
        for (uid_t uid = 200000; uid < 200100; uid++)
                assert_true(ratelimit_take(rl, uid, now, NULL));
        assert_int_equal(ratelimit_tracked(rl), 16);
        for (int i = 0; i < 3; i++)
                assert_true(ratelimit_take(rl, 7, now, NULL));
        assert_false(ratelimit_take(rl, 7, now, NULL));
}

/* The newcomer takes the bucket of the uid with the most tokens left. */
static void test_eviction_order(void **state) {
        _cleanup_(ratelimit_freep) RateLimit *rl = NULL;
        uint64_t retry;

        assert_int_equal(ratelimit_new(&rl, 1, 4, 16), 0);
        /* 16 uids at the same instant: uid 5 spends one token, the others two or more */
        for (uid_t uid = 1; uid <= 16; uid++)
                for (uid_t i = 0; i < (uid == 5 ? 1 : 2 + uid % 3); i++)
                        assert_true(ratelimit_take(rl, uid, T0, NULL));
        assert_true(ratelimit_take(rl, 99, T0, NULL));
        assert_int_equal(ratelimit_tracked(rl), 16);
        /* uid 5 was forgotten: it starts again with a full bucket of four */
        for (int i = 0; i < 4; i++)
                assert_true(ratelimit_take(rl, 5, T0, NULL));
        assert_false(ratelimit_take(rl, 5, T0, &retry));
        assert_int_equal(retry, 60 * SEC);
        /* uid 6 (two spent, two left) was not */
        for (int i = 0; i < 2; i++)
                assert_true(ratelimit_take(rl, 6, T0, NULL));
        assert_false(ratelimit_take(rl, 6, T0, NULL));
}

/* ratelimit_take_counted(): the refusals since the last take that passed,
 * per uid; a bucket with refusals to report outlives fuller ones. */
static void test_counted(void **state) {
        _cleanup_(ratelimit_freep) RateLimit *rl = NULL;
        uint32_t refused = 99;

        assert_int_equal(ratelimit_new(&rl, 6, 2, 16), 0);
        assert_true(ratelimit_take_counted(rl, 7, T0, NULL, &refused));
        assert_int_equal(refused, 0);
        assert_true(ratelimit_take_counted(rl, 7, T0, NULL, &refused));
        for (int i = 0; i < 5; i++)
                assert_false(ratelimit_take_counted(rl, 7, T0, NULL, &refused));
        /* a crowd of newcomers an hour later: every bucket is full, uid 7's is kept for its count */
        for (uid_t uid = 1000; uid < 1100; uid++)
                assert_true(ratelimit_take(rl, uid, T0 + 3600 * SEC, NULL));
        assert_true(ratelimit_take_counted(rl, 7, T0 + 3600 * SEC, NULL, &refused));
        assert_int_equal(refused, 5);
        assert_true(ratelimit_take_counted(rl, 7, T0 + 3600 * SEC, NULL, &refused));
        assert_int_equal(refused, 0);
}

/* fleetid.conf's access keys: their defaults and their bounds are what
 * ratelimit_new() accepts, so no valid configuration fails at run time. */
static Config *load_access(const char *access, Diag *d) {
        char path[] = "/tmp/test-ratelimit-XXXXXX", text[512];
        Config *c = NULL;
        int fd, r;

        snprintf(text, sizeof(text), "est: { url = \"https://est.example.net\"; };\naccess: { %s };\n",
                 access);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(close(fd), 0);
        r = config_load(path, &c, d);
        assert_int_equal(unlink(path), 0);
        assert_true(r == 0 || c == NULL);
        return c;
}

/* Both limits fleetidd makes from c can be made. */
static void assert_limits_ok(Config *c) {
        RateLimit *rl = NULL;

        assert_int_equal(
                ratelimit_new(&rl, c->access_sign_per_minute, c->access_sign_burst, c->access_tracked_uids),
                0);
        rl = ratelimit_free(rl);
        assert_int_equal(ratelimit_new(&rl, c->access_sensor_per_minute, c->access_sensor_burst,
                                       c->access_tracked_uids),
                         0);
        ratelimit_free(rl);
        config_free(c);
}

static void test_config_bounds(void **state) {
        Config *c;
        Diag d = {};

        assert_int_equal(config_new_defaults(&c), 0);
        assert_string_equal(c->access_file, "/etc/fleetid/access.conf");
        assert_limits_ok(c);
        c = load_access("sign_per_minute = 60000; sign_burst = 10000; tracked_uids = 4096; "
                        "sensor_per_minute = 1; sensor_burst = 1; file = \"/srv/access.conf\";",
                        &d);
        assert_non_null(c);
        assert_string_equal(c->access_file, "/srv/access.conf");
        assert_limits_ok(c);
        c = load_access("sign_per_minute = 1; sign_burst = 1; tracked_uids = 16; "
                        "sensor_per_minute = 60000; sensor_burst = 10000;",
                        &d);
        assert_non_null(c);
        assert_limits_ok(c);

        assert_null(load_access("sign_per_minute = 60001;", &d));
        assert_non_null(strstr(d.text, ":2: access.sign_per_minute must be between 1 and 60000 (got 60001)"));
        assert_null(load_access("sensor_burst = 0;", &d));
        assert_non_null(strstr(d.text, ":2: access.sensor_burst must be between 1 and 10000 (got 0)"));
        assert_null(load_access("tracked_uids = 15;", &d));
        assert_non_null(strstr(d.text, ":2: access.tracked_uids must be between 16 and 4096 (got 15)"));
        assert_null(load_access("file = \"\";", &d));
        assert_non_null(strstr(d.text, ":2: access.file must not be empty"));
        assert_null(load_access("file = \"access.conf\";", &d));
        assert_non_null(strstr(d.text, ":2: access.file must be an absolute path"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_arguments),
                cmocka_unit_test(test_burst_and_refill),
                cmocka_unit_test(test_slow_rate_rounding),
                cmocka_unit_test(test_flood_one_uid),
                cmocka_unit_test(test_flood_many_uids),
                cmocka_unit_test(test_eviction_order),
                cmocka_unit_test(test_counted),
                cmocka_unit_test(test_config_bounds),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
