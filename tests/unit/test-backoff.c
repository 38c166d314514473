/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/backoff.h"

static void test_doubles_then_caps(void **state) {
        /* random = UINT64_MAX-ish picks the top of the window: exactly base. */
        uint64_t top[] = { 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600 };

        for (unsigned f = 1; f <= 10; f++) {
                uint64_t base = top[f - 1];

                assert_int_equal(backoff_delay(f, 30, 3600, base / 2), base);
                /* random = 0 picks the bottom: base - base/2 */
                assert_int_equal(backoff_delay(f, 30, 3600, 0), base - base / 2);
        }
}

static void test_window_bounds(void **state) {
        for (uint64_t rnd = 0; rnd < 100000; rnd += 7919) {
                uint64_t v = backoff_delay(4, 30, 3600, rnd * 2654435761u);

                assert_true(v >= 120 && v <= 240);
        }
        /* huge failure counts do not overflow */
        assert_true(backoff_delay(4000000000u, 30, 3600, 12345) <= 3600);
        assert_true(backoff_delay(4000000000u, 30, 3600, 12345) >= 1800);
}

static void test_degenerate_inputs(void **state) {
        assert_int_equal(backoff_delay(1, 0, 0, 0), 1);
        assert_int_equal(backoff_delay(1, 1, 1, 99), 1);
        assert_true(backoff_delay(3, 100, 10, 5) <= 100);
}

static void test_retry_after_wins(void **state) {
        bool capped = true;

        assert_int_equal(backoff_next(5, 30, 3600, true, 7, 0, &capped), 7);
        assert_false(capped);
        assert_int_equal(backoff_next(5, 30, 3600, true, 0, 0, NULL), 1);
        assert_int_equal(backoff_next(1, 30, 3600, false, 7, 0, NULL), 15);
        assert_int_equal(backoff_next(1, 30, 3600, true, 3600, 0, &capped), 3600);
        assert_false(capped);
}

/* retry.max is the longest wait, whatever the server asks. */
static void test_retry_after_capped(void **state) {
        bool capped = false;

        assert_int_equal(backoff_next(1, 30, 3600, true, 3601, 0, &capped), 3600);
        assert_true(capped);
        capped = false;
        assert_int_equal(backoff_next(1, 30, 3600, true, 7 * 24 * 3600, 0, &capped), 3600);
        assert_true(capped);
        assert_int_equal(backoff_next(1, 1, 5, true, UINT64_MAX, 0, NULL), 5);
        /* the backoff itself never reports a cap */
        assert_int_equal(backoff_next(9, 30, 60, false, 0, 0, &capped), 30);
        assert_false(capped);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_doubles_then_caps),  cmocka_unit_test(test_window_bounds),
                cmocka_unit_test(test_degenerate_inputs),  cmocka_unit_test(test_retry_after_wins),
                cmocka_unit_test(test_retry_after_capped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
