/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "common/log.h"
#include "fleetidd/manager.h"
#include "store/status-file.h"

/* The status file in the state directory; a failure is kept in m->write_error
 * for the runtime copy, the metrics and STATUS=, and logged when it starts,
 * changes or ends. */
static void save_status(Manager *m, const StatusRecord *rec) {
        Diag d = {};
        int r;

        r = status_record_save(m->store, rec, &d);
        if (r >= 0) {
                if (m->write_error[0])
                        log_notice("the state directory %s can be written again; the status file is current",
                                   state_store_path(m->store));
                m->write_error[0] = '\0';
                return;
        }
        if (strcmp(m->write_error, diag_text(&d, r)) != 0) {
                if (m->runtime)
                        log_error_errno(r,
                                        "cannot write the status file: %s; fleetidctl shows the copy in %s "
                                        "until this is fixed",
                                        diag_text(&d, r), state_store_path(m->runtime));
                else
                        log_error_errno(r,
                                        "cannot write the status file: %s; without a runtime directory "
                                        "(paths.runtime_dir), fleetidctl shows an outdated status until "
                                        "this is fixed",
                                        diag_text(&d, r));
        }
        snprintf(m->write_error, sizeof(m->write_error), "%s", diag_text(&d, r));
}

void manager_write_status(Manager *m) {
        const char *error = m->last_error;
        StatusRecord rec = {
                .state = (char *) daemon_state_to_string(m->state),
                .last_error = *error ? (char *) error : NULL,
                .updated = (uint64_t) time(NULL),
                .last_success = m->last_success,
                .next_attempt = m->next_attempt,
                .last_attempt = m->last_attempt,
                .renew_due = m->renew_due > 0 ? (uint64_t) m->renew_due : 0,
                .renew_requests = m->renew_requests,
                .renew_answered = m->renew_answered,
                .cacerts_checked = m->cacerts_checked,
                .cacerts_next = m->cacerts_timer ? m->cacerts_next : 0,
                .failures = m->failures,
                .est_url = m->config->est_url,
        };
        char status[2 * DIAG_MAX + 128];
        Diag d = {};
        int r;

        if (!rec.state)
                return; /* no state yet: nothing to say */
        if (m->store)
                save_status(m, &rec);
        if (m->runtime) {
                rec.write_error = m->write_error[0] ? m->write_error : NULL;
                r = status_record_save(m->runtime, &rec, &d);
                if (r < 0)
                        log_warning_errno(r, "cannot write the runtime copy of the status: %s",
                                          diag_text(&d, r));
        }
        snprintf(status, sizeof(status), "STATUS=%s%s%.*s%s%.*s", rec.state, *error ? ": " : "", 200, error,
                 m->write_error[0] ? "; cannot write the state directory: " : "", 200, m->write_error);
        (void) sd_notify(0, status);
        manager_report(m);
}

void manager_set_state(Manager *m, DaemonState state, const char *error) {
        if (state != m->state)
                log_info("state: %s -> %s", daemon_state_to_string(m->state) ?: "none",
                         daemon_state_to_string(state));
        m->state = state;
        snprintf(m->last_error, sizeof(m->last_error), "%s", error ? error : "");
        manager_write_status(m);
}

void manager_notify_ready(Manager *m, const char *status) {
        char buf[512];

        snprintf(buf, sizeof(buf), "READY=1\nSTATUS=%s", status);
        if (!m->ready_sent)
                (void) sd_notify(0, buf);
        m->ready_sent = true;
}
