/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "common/log.h"
#include "fleetidd/manager.h"
#include "store/status-file.h"

void manager_write_status(Manager *m) {
        const char *error = m->last_error;
        StatusRecord rec = {
                .state = m->state,
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
        char status[DIAG_MAX + 64];
        Diag d = {};
        int r;

        if (!m->state)
                return;
        if (m->store) {
                r = status_record_save(m->store, &rec, &d);
                if (r < 0)
                        log_warning_errno(r, "cannot write the status file: %s", diag_text(&d, r));
        }
        snprintf(status, sizeof(status), "STATUS=%s%s%.*s", m->state, *error ? ": " : "", 200, error);
        (void) sd_notify(0, status);
        manager_report(m);
}

void manager_set_state(Manager *m, const char *state, const char *error) {
        m->state = (char *) state;
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
