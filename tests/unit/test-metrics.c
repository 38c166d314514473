/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Prometheus textfile: exact output, escaping, left-out unknowns, atomic replacement. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "monitor/metrics.h"
#include "util/fileio.h"

#define STATE_LINES(enrolled)                              \
        "fleetid_state{state=\"enrolling\"} 0\n"           \
        "fleetid_state{state=\"enrolled\"} " enrolled "\n" \
        "fleetid_state{state=\"renewing\"} 0\n"            \
        "fleetid_state{state=\"waiting-retry\"} 0\n"       \
        "fleetid_state{state=\"failed\"} 0\n"              \
        "fleetid_state{state=\"waiting-clock\"} 0\n"       \
        "fleetid_state{state=\"tpm-cleared\"} 0\n"         \
        "fleetid_state{state=\"tpm-replaced\"} 0\n"        \
        "fleetid_state{state=\"resetting\"} 0\n"           \
        "fleetid_state{state=\"birth-expired\"} 0\n"

#define STATE_HEADER                                                                               \
        "# HELP fleetid_state The state of fleetidd: 1 for the current state, 0 for the others.\n" \
        "# TYPE fleetid_state gauge\n"

#define FAILURES(n)                                                                                         \
        "# HELP fleetid_renewal_consecutive_failures Failed enrollment or renewal attempts since the last " \
        "success.\n"                                                                                        \
        "# TYPE fleetid_renewal_consecutive_failures gauge\n"                                               \
        "fleetid_renewal_consecutive_failures " n "\n"

#define SEVERITY(n)                                                                                           \
        "# HELP fleetid_severity How urgent the certificate's state is: 0 ok, 1 notice, 2 warning, 3 error, " \
        "4 critical.\n"                                                                                       \
        "# TYPE fleetid_severity gauge\n"                                                                     \
        "fleetid_severity " n "\n"

#define WRITE_ERROR(n)                                                                                     \
        "# HELP fleetid_state_write_error 1 while fleetidd cannot write its state directory (its last "    \
        "write there failed), else 0.\n"                                                                   \
        "# TYPE fleetid_state_write_error gauge\n"                                                         \
        "fleetid_state_write_error " n "\n"                                                                \
        "# HELP fleetid_tpm_lockout 1 while the TPM is in dictionary-attack lockout (as last read), else " \
        "0.\n"                                                                                             \
        "# TYPE fleetid_tpm_lockout gauge\n"                                                               \
        "fleetid_tpm_lockout 0\n"

static const MetricsSnapshot full = {
        .cert_not_after = 1831536000,
        .cert_not_before = 1800000000,
        .last_success = 1800000060,
        .last_attempt = 1800000050,
        .next_attempt = 1821128320,
        .consecutive_failures = 0,
        .state = DAEMON_STATE_ENROLLED,
        .severity = SEVERITY_OK,
        .have_cert = true,
};

static const char full_text[] =
        "# HELP fleetid_certificate_expiry_timestamp_seconds notAfter of the operational certificate, in "
        "seconds since the epoch.\n"
        "# TYPE fleetid_certificate_expiry_timestamp_seconds gauge\n"
        "fleetid_certificate_expiry_timestamp_seconds 1831536000\n"
        "# HELP fleetid_certificate_not_before_timestamp_seconds notBefore of the operational certificate, "
        "in seconds since the epoch.\n"
        "# TYPE fleetid_certificate_not_before_timestamp_seconds gauge\n"
        "fleetid_certificate_not_before_timestamp_seconds 1800000000\n"
        "# HELP fleetid_renewal_last_success_timestamp_seconds When the last enrollment or renewal "
        "succeeded, in seconds since the epoch.\n"
        "# TYPE fleetid_renewal_last_success_timestamp_seconds gauge\n"
        "fleetid_renewal_last_success_timestamp_seconds 1800000060\n"
        "# HELP fleetid_renewal_last_attempt_timestamp_seconds When the last enrollment or renewal was "
        "attempted, in seconds since the epoch.\n"
        "# TYPE fleetid_renewal_last_attempt_timestamp_seconds gauge\n"
        "fleetid_renewal_last_attempt_timestamp_seconds 1800000050\n"
        "# HELP fleetid_renewal_next_attempt_timestamp_seconds When the next enrollment or renewal attempt "
        "is scheduled, in seconds since the epoch.\n"
        "# TYPE fleetid_renewal_next_attempt_timestamp_seconds gauge\n"
        "fleetid_renewal_next_attempt_timestamp_seconds 1821128320\n" FAILURES("0")
                STATE_HEADER STATE_LINES("1") SEVERITY("0") WRITE_ERROR("0");

static void test_format_exact(void **state) {
        _cleanup_free_ char *text = NULL;

        assert_int_equal(metrics_format(&full, &text), 0);
        assert_string_equal(text, full_text);
}

static void test_format_unknowns_left_out(void **state) {
        /* a device that never enrolled: no certificate, nothing ever happened */
        MetricsSnapshot m = {
                .state = DAEMON_STATE_ENROLLING,
                .severity = SEVERITY_OK,
                .consecutive_failures = 3,
                /* ignored without a certificate */
                .cert_not_after = 1831536000,
                .cert_not_before = 1800000000,
        };
        _cleanup_free_ char *text = NULL;

        assert_int_equal(metrics_format(&m, &text), 0);
        assert_string_equal(text, FAILURES("3") STATE_HEADER
                            "fleetid_state{state=\"enrolling\"} 1\n"
                            "fleetid_state{state=\"enrolled\"} 0\n"
                            "fleetid_state{state=\"renewing\"} 0\n"
                            "fleetid_state{state=\"waiting-retry\"} 0\n"
                            "fleetid_state{state=\"failed\"} 0\n"
                            "fleetid_state{state=\"waiting-clock\"} 0\n"
                            "fleetid_state{state=\"tpm-cleared\"} 0\n"
                            "fleetid_state{state=\"tpm-replaced\"} 0\n"
                            "fleetid_state{state=\"resetting\"} 0\n"
                            "fleetid_state{state=\"birth-expired\"} 0\n" SEVERITY("0") WRITE_ERROR("0"));
        assert_null(strstr(text, "timestamp_seconds"));
}

/* A state directory that cannot be written: the one metric that says so. */
static void test_format_write_error(void **state) {
        MetricsSnapshot m = full;
        _cleanup_free_ char *text = NULL;

        m.state_write_error = true;
        assert_int_equal(metrics_format(&m, &text), 0);
        assert_non_null(strstr(text, SEVERITY("0") WRITE_ERROR("1")));
}

/* The TPM in dictionary-attack lockout: its own metric. */
static void test_format_tpm_lockout(void **state) {
        MetricsSnapshot m = full;
        _cleanup_free_ char *text = NULL;

        m.tpm_lockout = true;
        assert_int_equal(metrics_format(&m, &text), 0);
        assert_non_null(strstr(text, "\nfleetid_tpm_lockout 1\n"));
}

static void test_format_some_times(void **state) {
        MetricsSnapshot m = full;
        _cleanup_free_ char *text = NULL;

        m.last_success = 0;
        m.next_attempt = 0;
        m.severity = SEVERITY_CRITICAL;
        assert_int_equal(metrics_format(&m, &text), 0);
        assert_non_null(strstr(text, "\nfleetid_certificate_expiry_timestamp_seconds 1831536000\n"));
        assert_non_null(strstr(text, "\nfleetid_renewal_last_attempt_timestamp_seconds 1800000050\n"));
        assert_null(strstr(text, "fleetid_renewal_last_success"));
        assert_null(strstr(text, "fleetid_renewal_next_attempt"));
        assert_non_null(strstr(text, "\nfleetid_severity 4\n"));
        /* negative times (before 1970) are written as they are */
        m.last_attempt = -5;
        free(text);
        text = NULL;
        assert_int_equal(metrics_format(&m, &text), 0);
        assert_non_null(strstr(text, "\nfleetid_renewal_last_attempt_timestamp_seconds -5\n"));
}

static void test_format_no_state(void **state) {
        MetricsSnapshot m = full;
        _cleanup_free_ char *text = NULL;

        /* no state yet: every state listed, all 0 */
        m.state = _DAEMON_STATE_INVALID;
        assert_int_equal(metrics_format(&m, &text), 0);
        assert_non_null(strstr(text, STATE_HEADER STATE_LINES("0") "# HELP fleetid_severity "));
}

static void test_format_bad_severity(void **state) {
        MetricsSnapshot m = full;
        char *text = NULL;

        m.severity = _SEVERITY_MAX;
        assert_int_equal(metrics_format(&m, &text), -EINVAL);
        assert_null(text);
}

static void test_known_states(void **state) {
        /* One table, in the metrics file's order; every name maps back. */
        static const char *const expected[] = { "enrolling", "enrolled",      "renewing",    "waiting-retry",
                                                "failed",    "waiting-clock", "tpm-cleared", "tpm-replaced",
                                                "resetting", "birth-expired" };

        assert_int_equal(_DAEMON_STATE_MAX, ELEMENTSOF(expected));
        for (DaemonState i = 0; i < _DAEMON_STATE_MAX; i++) {
                assert_string_equal(daemon_state_to_string(i), expected[i]);
                assert_int_equal(daemon_state_from_string(expected[i]), i);
        }
        assert_null(daemon_state_to_string(_DAEMON_STATE_MAX));
        assert_null(daemon_state_to_string(_DAEMON_STATE_INVALID));
        assert_int_equal(daemon_state_from_string("unprovisioned"), _DAEMON_STATE_INVALID);
        assert_int_equal(daemon_state_from_string("Enrolled"), _DAEMON_STATE_INVALID);
        assert_int_equal(daemon_state_from_string(""), _DAEMON_STATE_INVALID);
        assert_int_equal(daemon_state_from_string(NULL), _DAEMON_STATE_INVALID);
}

/* Entries of dir besides "." and "..". */
static int count_entries(const char *dir) {
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, NULL);

        assert_true(n >= 2);
        for (int i = 0; i < n; i++)
                free(list[i]);
        free(list);
        return n - 2;
}

static void test_write_atomic(void **state) {
        char dir[] = "/tmp/test-metrics-XXXXXX", path[sizeof(dir) + 32], link[sizeof(dir) + 32];
        _cleanup_free_ char *first = NULL, *second = NULL, *read_back = NULL;
        MetricsSnapshot m = full;
        struct stat before, after;
        _cleanup_close_ int old_fd = -1;
        mode_t old_umask;
        Diag d = {};
        size_t len;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/fleetid.prom", dir);
        snprintf(link, sizeof(link), "%s/link.prom", dir);

        /* 0644 whatever the umask: node-exporter runs as another user */
        old_umask = umask(0077);
        assert_int_equal(metrics_write(path, &m, &d), 0);
        umask(old_umask);
        assert_int_equal(metrics_format(&m, &first), 0);
        assert_int_equal(read_file_bounded(path, 1 << 20, &read_back, &len), 0);
        assert_string_equal(read_back, first);
        assert_int_equal(stat(path, &before), 0);
        assert_int_equal(before.st_mode & 07777, 0644);

        /* a reader holding the old file keeps the whole old content */
        old_fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(old_fd >= 0);

        m.state = DAEMON_STATE_RENEWING;
        m.consecutive_failures = 2;
        m.severity = SEVERITY_WARNING;
        assert_int_equal(metrics_write(path, &m, &d), 0);
        assert_int_equal(metrics_format(&m, &second), 0);
        free(read_back);
        read_back = NULL;
        assert_int_equal(read_file_bounded(path, 1 << 20, &read_back, &len), 0);
        assert_string_equal(read_back, second);
        assert_int_equal(stat(path, &after), 0);
        assert_true(before.st_ino != after.st_ino); /* renamed over, not rewritten */
        assert_int_equal(after.st_mode & 07777, 0644);

        {
                char buf[8192];
                ssize_t n = pread(old_fd, buf, sizeof(buf) - 1, 0);

                assert_true(n >= 0);
                buf[n] = 0;
                assert_string_equal(buf, first);
        }
        assert_int_equal(count_entries(dir), 1); /* no temporary file left behind */

        /* a symlink at the path is refused, and the Diag names the path */
        assert_int_equal(symlink("fleetid.prom", link), 0);
        assert_int_equal(metrics_write(link, &m, &d), -ELOOP);
        assert_non_null(strstr(d.text, link));
        assert_non_null(strstr(d.text, "is a symlink"));

        assert_int_equal(unlink(link), 0);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

static void test_write_missing_dir(void **state) {
        Diag d = {};

        assert_int_equal(metrics_write("/nonexistent-fleetid-dir/fleetid.prom", &full, &d), -ENOENT);
        assert_non_null(strstr(d.text, "/nonexistent-fleetid-dir/fleetid.prom"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format_exact),       cmocka_unit_test(test_format_unknowns_left_out),
                cmocka_unit_test(test_format_some_times),  cmocka_unit_test(test_format_write_error),
                cmocka_unit_test(test_format_tpm_lockout), cmocka_unit_test(test_format_tpm_lockout),
                cmocka_unit_test(test_format_no_state),    cmocka_unit_test(test_format_bad_severity),
                cmocka_unit_test(test_known_states),       cmocka_unit_test(test_write_atomic),
                cmocka_unit_test(test_write_missing_dir),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
