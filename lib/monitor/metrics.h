/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * metrics.h: fleetid's state as a Prometheus textfile (text exposition format
 * 0.0.4), for node-exporter's textfile collector.
 *
 * fleetidd fills a MetricsSnapshot whenever its state changes and writes it
 * to monitoring.metrics_file. docs/monitoring.md lists the metrics.
 *
 *   fleetid_certificate_expiry_timestamp_seconds      notAfter (only with a certificate)
 *   fleetid_certificate_not_before_timestamp_seconds  notBefore (only with a certificate)
 *   fleetid_renewal_last_success_timestamp_seconds    omitted while 0 (never)
 *   fleetid_renewal_last_attempt_timestamp_seconds    omitted while 0 (never)
 *   fleetid_renewal_next_attempt_timestamp_seconds    omitted while 0 (none scheduled)
 *   fleetid_renewal_consecutive_failures
 *   fleetid_state{state="..."}                        1 for the current state, 0 for the others
 *   fleetid_severity                                  0 ok .. 4 critical (monitor/severity.h)
 *   fleetid_state_write_error                         1 while the state directory cannot be written
 *   fleetid_tpm_lockout                               1 while the TPM is in dictionary-attack lockout
 *                                                     (as last read), else 0
 *
 * A timestamp that is unknown is left out rather than written as 0, so that
 * "time() - metric" alerts do not fire on a device that simply never did it.
 */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "monitor/daemon-state.h"
#include "monitor/severity.h"
#include "util/diag.h"

typedef struct MetricsSnapshot {
        time_t cert_not_after;
        time_t cert_not_before;
        time_t last_success;
        time_t last_attempt;
        time_t next_attempt;
        unsigned consecutive_failures;
        DaemonState state; /* _DAEMON_STATE_INVALID = none yet */
        Severity severity;
        bool have_cert;         /* without one, the certificate times are left out */
        bool state_write_error; /* the last write to the state directory failed */
        bool tpm_lockout;       /* the TPM was in dictionary-attack lockout when last read */
} MetricsSnapshot;


/* The whole file, NUL-terminated. -EINVAL for a severity out of range. */
int metrics_format(const MetricsSnapshot *m, char **ret);

/* metrics_format() and write_file_atomic() to path, mode 0644. The Diag names
 * the path. */
int metrics_write(const char *path, const MetricsSnapshot *m, Diag *d);
