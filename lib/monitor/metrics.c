/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "monitor/metrics.h"
#include "util/fileio.h"

/* World-readable: node-exporter runs as its own user and must read the file.
 * Nothing in it is secret (times, counters and the state name). */
#define METRICS_FILE_MODE 0644

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose)

static void metric_header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A gauge with one unlabelled sample; a timestamp of 0 means unknown and is left out. */
static void gauge(FILE *f, const char *name, const char *help, int64_t value) {
        metric_header(f, name, "gauge", help);
        fprintf(f, "%s %" PRIi64 "\n", name, value);
}

static void timestamp(FILE *f, const char *name, const char *help, time_t t) {
        if (t != 0)
                gauge(f, name, help, (int64_t) t);
}

/* A label value as the format wants it: backslash, double quote and line feed escaped. */
static void label_value(FILE *f, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                default:
                        fputc(*s, f);
                }
}

static void state_sample(FILE *f, const char *state, int value) {
        fputs("fleetid_state{state=\"", f);
        label_value(f, state);
        fprintf(f, "\"} %d\n", value);
}

int metrics_format(const MetricsSnapshot *m, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;

        if ((unsigned) m->severity >= _SEVERITY_MAX)
                return -EINVAL;

        {
                _cleanup_(fclosep) FILE *f = open_memstream(&buf, &size);
                if (!f)
                        return -ENOMEM;

                if (m->have_cert) {
                        gauge(f, "fleetid_certificate_expiry_timestamp_seconds",
                              "notAfter of the operational certificate, in seconds since the epoch.",
                              (int64_t) m->cert_not_after);
                        gauge(f, "fleetid_certificate_not_before_timestamp_seconds",
                              "notBefore of the operational certificate, in seconds since the epoch.",
                              (int64_t) m->cert_not_before);
                }
                timestamp(f, "fleetid_renewal_last_success_timestamp_seconds",
                          "When the last enrollment or renewal succeeded, in seconds since the epoch.",
                          m->last_success);
                timestamp(f, "fleetid_renewal_last_attempt_timestamp_seconds",
                          "When the last enrollment or renewal was attempted, in seconds since the epoch.",
                          m->last_attempt);
                timestamp(f, "fleetid_renewal_next_attempt_timestamp_seconds",
                          "When the next enrollment or renewal attempt is scheduled, in seconds since the epoch.",
                          m->next_attempt);
                gauge(f, "fleetid_renewal_consecutive_failures",
                      "Failed enrollment or renewal attempts since the last success.",
                      (int64_t) m->consecutive_failures);

                metric_header(f, "fleetid_state", "gauge",
                              "The state of fleetidd: 1 for the current state, 0 for the others.");
                /* Every state of the table, in its order (monitor/daemon-state.h). */
                for (DaemonState i = 0; i < _DAEMON_STATE_MAX; i++)
                        state_sample(f, daemon_state_to_string(i), m->state == i);

                gauge(f, "fleetid_severity",
                      "How urgent the certificate's state is: 0 ok, 1 notice, 2 warning, 3 error, 4 critical.",
                      (int64_t) m->severity);
                gauge(f, "fleetid_state_write_error",
                      "1 while fleetidd cannot write its state directory (its last write there failed), else 0.",
                      m->state_write_error ? 1 : 0);
                gauge(f, "fleetid_tpm_lockout",
                      "1 while the TPM is in dictionary-attack lockout (as last read), else 0.",
                      m->tpm_lockout ? 1 : 0);

                if (fflush(f) != 0 || ferror(f))
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(buf);
        return 0;
}

int metrics_write(const char *path, const MetricsSnapshot *m, Diag *d) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = metrics_format(m, &text);
        if (r < 0)
                return diag_set(d, r, "cannot format the metrics for %s", path);

        /* node-exporter reads only "*.prom" files; the temporary file is never
         * one (O_TMPFILE, or ".#name.XXXXXX"), so it never sees a partial file. */
        r = write_file_atomic(path, text, strlen(text), METRICS_FILE_MODE);
        if (r == -ELOOP)
                return diag_set(d, r,
                                "cannot write the metrics file %s: it is a symlink, which is never followed",
                                path);
        if (r < 0)
                return diag_set(d, r, "cannot write the metrics file %s: %s", path, strerror(-r));
        return 0;
}
