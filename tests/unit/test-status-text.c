/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The STATUS= text of fleetidd for every state, on a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "monitor/status-text.h"
#include "util/macro.h"

/* 2026-12-03 06:00:00 UTC */
#define NOW ((time_t) 1796277600)

static void expect(const StatusTextInput *in, const char *text) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(status_text_format(in, NOW, &s), 0);
        assert_string_equal(s, text);
}

static void test_starting(void **state) {
        expect(&(StatusTextInput) { .state = _DAEMON_STATE_INVALID },
               "starting; checking the stored identity");
}

static void test_enrolled(void **state) {
        expect(&(StatusTextInput) { .state = DAEMON_STATE_ENROLLED,
                                    .next_attempt = NOW + 2 * 86400 + 4 * 3600 },
               "enrolled; renewal due 2026-12-05 10:00:00 UTC (in 2 days)");
        /* due already: the renewal runs now */
        expect(&(StatusTextInput) { .state = DAEMON_STATE_ENROLLED, .next_attempt = NOW },
               "enrolled; renewal due now");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_ENROLLED }, "enrolled");
}

static void test_waiting_retry(void **state) {
        expect(&(StatusTextInput) { .state = DAEMON_STATE_WAITING_RETRY,
                                    .error = "EST server unreachable",
                                    .next_attempt = NOW + 4 * 60 + 10 },
               "waiting-retry: EST server unreachable; next attempt 2026-12-03 06:04:10 UTC (in 4 minutes)");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_WAITING_RETRY, .error = "x", .next_attempt = NOW + 1 },
               "waiting-retry: x; next attempt 2026-12-03 06:00:01 UTC (in 1 second)");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_WAITING_RETRY,
                                    .error = "x",
                                    .next_attempt = NOW + 3600 },
               "waiting-retry: x; next attempt 2026-12-03 07:00:00 UTC (in 1 hour)");
}

static void test_other_states(void **state) {
        expect(&(StatusTextInput) { .state = DAEMON_STATE_ENROLLING }, "enrolling");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_ENROLLING, .error = "cannot renew: key gone" },
               "enrolling: cannot renew: key gone");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_RENEWING, .cert_not_after = NOW + 30 * 86400 },
               "renewing; the current certificate is valid until 2027-01-02 06:00:00 UTC (in 30 days)");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_FAILED,
                                    .error = "identity unusable",
                                    .next_attempt = NOW + 86400 },
               "failed: identity unusable; checked again 2026-12-04 06:00:00 UTC (in 1 day)");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_FAILED, .error = "enrollment failed" },
               "failed: enrollment failed");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_WAITING_CLOCK, .error = "the clock says 1970" },
               "waiting-clock: the clock says 1970; continues when the system clock is set");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_TPM_CLEARED, .error = "the TPM was cleared" },
               "tpm-cleared: the TPM was cleared; enrolling again with the birth identity");
        expect(&(StatusTextInput) { .state = DAEMON_STATE_TPM_REPLACED,
                                    .error = "another TPM",
                                    .next_attempt = NOW + 3600 },
               "tpm-replaced: another TPM; not enrolling; checked again 2026-12-03 07:00:00 UTC (in 1 hour)");
}

static void test_write_error_and_one_line(void **state) {
        char long_error[STATUS_TEXT_ERROR_MAX + 50];
        _cleanup_free_ char *s = NULL;

        expect(&(StatusTextInput) { .state = DAEMON_STATE_ENROLLED,
                                    .next_attempt = NOW + 120,
                                    .write_error = "No space left on device" },
               "enrolled; renewal due 2026-12-03 06:02:00 UTC (in 2 minutes); cannot write the state directory: "
               "No space left on device");
        /* STATUS= is one line: a server's text with a newline stays on it */
        expect(&(StatusTextInput) { .state = DAEMON_STATE_WAITING_RETRY, .error = "503:\nbusy\tnow" },
               "waiting-retry: 503: busy now");

        memset(long_error, 'e', sizeof(long_error) - 1);
        long_error[sizeof(long_error) - 1] = '\0';
        assert_int_equal(
                status_text_format(&(StatusTextInput) { .state = DAEMON_STATE_FAILED, .error = long_error },
                                   NOW, &s),
                0);
        assert_int_equal(strlen(s), strlen("failed: ") + STATUS_TEXT_ERROR_MAX);
}

static void test_duration_text(void **state) {
        char buf[32];

        duration_text(0, buf, sizeof(buf));
        assert_string_equal(buf, "0 seconds");
        duration_text(-5, buf, sizeof(buf));
        assert_string_equal(buf, "0 seconds");
        duration_text(59, buf, sizeof(buf));
        assert_string_equal(buf, "59 seconds");
        duration_text(60, buf, sizeof(buf));
        assert_string_equal(buf, "1 minute");
        duration_text(7199, buf, sizeof(buf));
        assert_string_equal(buf, "1 hour");
        duration_text(243 * 86400 + 5, buf, sizeof(buf));
        assert_string_equal(buf, "243 days");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_starting),
                cmocka_unit_test(test_enrolled),
                cmocka_unit_test(test_waiting_retry),
                cmocka_unit_test(test_other_states),
                cmocka_unit_test(test_write_error_and_one_line),
                cmocka_unit_test(test_duration_text),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
