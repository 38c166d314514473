/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sensor ids and the single-use sensor challenges, with a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "broker/sensor-challenges.h"
#include "broker/sensor-id.h"

#define SEC 1000000ULL
#define T0 (1000 * SEC) /* the fake clock's start */

static void assert_diag(const Diag *d, int r, const char *why) {
        assert_int_equal(d->error, r);
        if (!strstr(d->text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d->text, why);
}

static void test_sensor_id(void **state) {
        char longest[SENSOR_ID_MAX + 1], too_long[SENSOR_ID_MAX + 2];
        Diag d = {};

        memset(longest, 'x', SENSOR_ID_MAX);
        longest[SENSOR_ID_MAX] = 0;
        memset(too_long, 'x', SENSOR_ID_MAX + 1);
        too_long[SENSOR_ID_MAX + 1] = 0;

        assert_int_equal(sensor_id_check_string("temp-01.hall_B", NULL), 0);
        assert_int_equal(sensor_id_check_string("a", NULL), 0);
        assert_int_equal(sensor_id_check_string("a.b", NULL), 0);
        assert_int_equal(sensor_id_check_string(longest, NULL), 0);
        assert_int_equal(sensor_id_check_string(too_long, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "the sensor id is 65 bytes; at most 64 are allowed");
        assert_int_equal(sensor_id_check_string("", &d), -EINVAL);
        assert_diag(&d, -EINVAL, "the sensor id is empty");
        assert_int_equal(sensor_id_check_string(NULL, &d), -EINVAL);
        assert_int_equal(sensor_id_check_string("a/b", &d), -EINVAL);
        assert_diag(&d, -EINVAL, "contains '/' at offset 1");
        assert_int_equal(sensor_id_check_string("a..b", &d), -EINVAL);
        assert_diag(&d, -EINVAL, "contains \"..\"");
        assert_int_equal(sensor_id_check_string("..", &d), -EINVAL);
        assert_int_equal(sensor_id_check_string(".hidden", &d), -EINVAL);
        assert_diag(&d, -EINVAL, "starts with '.'");
        assert_int_equal(sensor_id_check_string("-rf", &d), -EINVAL);
        assert_int_equal(sensor_id_check_string("a b", &d), -EINVAL);
        assert_diag(&d, -EINVAL, "the character 0x20 at offset 1");
        assert_int_equal(sensor_id_check_string("caf\xc3\xa9", &d), -EINVAL);
        assert_int_equal(sensor_id_check("ab\0cd", 5, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "contains a NUL byte at offset 2");
        assert_int_equal(sensor_id_check("abcd", 4, NULL), 0);
}

static void test_issue_consume(void **state) {
        _cleanup_(sensor_challenges_freep) SensorChallenges *t = NULL;
        uint8_t a[SENSOR_CHALLENGE_NONCE_SIZE], b[SENSOR_CHALLENGE_NONCE_SIZE];
        Diag d = {};

        assert_int_equal(sensor_challenges_new(4, 60 * SEC, &t), 0);
        assert_int_equal(sensor_challenges_issue(t, "s1", T0, a, &d), 0);
        assert_int_equal(sensor_challenges_issue(t, "s2", T0, b, &d), 0);
        assert_memory_not_equal(a, b, sizeof(a));
        assert_int_equal(sensor_challenges_count(t), 2);

        /* s2's nonce is not s1's */
        assert_int_equal(sensor_challenges_consume(t, "s1", b, sizeof(b), T0 + SEC, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "the nonce is not the one issued to sensor 's1'");
        /* ... and that attempt used s1's challenge up */
        assert_int_equal(sensor_challenges_consume(t, "s1", a, sizeof(a), T0 + SEC, &d), -ENOENT);
        assert_diag(&d, -ENOENT, "sensor 's1' has no outstanding challenge");

        assert_int_equal(sensor_challenges_consume(t, "s2", b, sizeof(b), T0 + SEC, &d), 0);
        assert_int_equal(sensor_challenges_count(t), 0);
        /* replay */
        assert_int_equal(sensor_challenges_consume(t, "s2", b, sizeof(b), T0 + 2 * SEC, &d), -ENOENT);
        /* a bad sensor id or a truncated nonce */
        assert_int_equal(sensor_challenges_issue(t, "../x", T0, a, &d), -EINVAL);
        assert_int_equal(sensor_challenges_issue(t, "s3", T0, a, &d), 0);
        assert_int_equal(sensor_challenges_consume(t, "s3", a, sizeof(a) - 1, T0, &d), -EKEYREJECTED);
}

static void test_expiry(void **state) {
        _cleanup_(sensor_challenges_freep) SensorChallenges *t = NULL;
        uint8_t a[SENSOR_CHALLENGE_NONCE_SIZE];
        Diag d = {};

        assert_int_equal(sensor_challenges_new(4, 60 * SEC, &t), 0);
        assert_int_equal(sensor_challenges_issue(t, "s1", T0, a, &d), 0);
        /* the last microsecond is valid, the lifetime's end is not */
        assert_int_equal(sensor_challenges_consume(t, "s1", a, sizeof(a), T0 + 60 * SEC - 1, &d), 0);
        assert_int_equal(sensor_challenges_issue(t, "s1", T0, a, &d), 0);
        assert_int_equal(sensor_challenges_consume(t, "s1", a, sizeof(a), T0 + 60 * SEC, &d), -ESTALE);
        assert_diag(&d, -ESTALE, "the challenge of sensor 's1' has expired");
        assert_int_equal(sensor_challenges_count(t), 0);

        assert_int_equal(sensor_challenges_issue(t, "s1", T0, a, &d), 0);
        assert_int_equal(sensor_challenges_issue(t, "s2", T0 + 30 * SEC, a, &d), 0);
        assert_int_equal(sensor_challenges_expire(t, T0 + 60 * SEC), 1);
        assert_int_equal(sensor_challenges_expire(t, T0 + 90 * SEC), 0);
}

/* A new challenge replaces the sensor's previous one: only the newest counts. */
static void test_reissue(void **state) {
        _cleanup_(sensor_challenges_freep) SensorChallenges *t = NULL;
        uint8_t a[SENSOR_CHALLENGE_NONCE_SIZE], b[SENSOR_CHALLENGE_NONCE_SIZE];
        Diag d = {};

        assert_int_equal(sensor_challenges_new(1, 60 * SEC, &t), 0);
        assert_int_equal(sensor_challenges_issue(t, "s1", T0, a, &d), 0);
        assert_int_equal(sensor_challenges_issue(t, "s1", T0 + 50 * SEC, b, &d), 0);
        assert_int_equal(sensor_challenges_count(t), 1);
        /* the reissue also restarted the lifetime */
        assert_int_equal(sensor_challenges_consume(t, "s1", b, sizeof(b), T0 + 100 * SEC, &d), 0);
        assert_int_equal(sensor_challenges_issue(t, "s1", T0, a, &d), 0);
        assert_int_equal(sensor_challenges_issue(t, "s1", T0, b, &d), 0);
        assert_int_equal(sensor_challenges_consume(t, "s1", a, sizeof(a), T0, &d), -EKEYREJECTED);
}

static void test_capacity(void **state) {
        _cleanup_(sensor_challenges_freep) SensorChallenges *t = NULL;
        uint8_t n[SENSOR_CHALLENGE_NONCE_SIZE], first[SENSOR_CHALLENGE_NONCE_SIZE];
        char id[16];
        Diag d = {};

        assert_int_equal(sensor_challenges_new(0, SEC, &t), -EINVAL);
        assert_int_equal(sensor_challenges_new(SENSOR_CHALLENGES_CAPACITY_MAX + 1, SEC, &t), -EINVAL);
        assert_int_equal(sensor_challenges_new(3, 0, &t), -EINVAL);
        assert_int_equal(sensor_challenges_new(3, 60 * SEC, &t), 0);
        assert_int_equal(sensor_challenges_issue(t, "s0", T0, first, &d), 0);
        for (int i = 1; i < 3; i++) {
                snprintf(id, sizeof(id), "s%d", i);
                assert_int_equal(sensor_challenges_issue(t, id, T0 + (uint64_t) i * 10 * SEC, n, &d), 0);
        }
        assert_int_equal(sensor_challenges_issue(t, "s3", T0 + 30 * SEC, n, &d), -EBUSY);
        assert_diag(&d, -EBUSY, "3 sensor challenges are outstanding, the limit (broker.max_challenges)");
        /* a sensor with a challenge may still get a new one */
        assert_int_equal(sensor_challenges_issue(t, "s1", T0 + 30 * SEC, n, &d), 0);
        assert_int_equal(sensor_challenges_count(t), 3);
        /* once s0's challenge expired, its slot is free again */
        assert_int_equal(sensor_challenges_issue(t, "s3", T0 + 60 * SEC, n, &d), 0);
        assert_int_equal(sensor_challenges_count(t), 3);
        assert_int_equal(sensor_challenges_consume(t, "s0", first, sizeof(first), T0 + 60 * SEC, &d), -ENOENT);

        /* a flood from many ids stays bounded */
        for (int i = 0; i < 10000; i++) {
                snprintf(id, sizeof(id), "f%d", i);
                (void) sensor_challenges_issue(t, id, T0 + 61 * SEC, n, NULL);
                assert_true(sensor_challenges_count(t) <= 3);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sensor_id), cmocka_unit_test(test_issue_consume),
                cmocka_unit_test(test_expiry),    cmocka_unit_test(test_reissue),
                cmocka_unit_test(test_capacity),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
