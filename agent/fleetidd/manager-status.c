/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "common/log.h"
#include "fleetidd/manager.h"
#include "monitor/status-text.h"
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

/* The notAfter of the operational certificate the daemon holds in force, 0 if
 * none: after an enrollment or renewal, and while a renewal is attempted,
 * retried or waits for the clock; not while it enrolls (there is no identity
 * yet, or the one stored is unusable) nor when it failed. */
uint64_t manager_identity_valid_until(const Manager *m, time_t now) {
        bool in_force;

        switch (m->state) {
        case DAEMON_STATE_ENROLLED:
        case DAEMON_STATE_RENEWING:
                in_force = true;
                break;
        case DAEMON_STATE_WAITING_RETRY: /* a failed renewal re-arms the renewal timer */
                in_force = m->renew_timer != NULL;
                break;
        case DAEMON_STATE_WAITING_CLOCK:
                in_force = m->clock_waiting_for_renewal;
                break;
        default:
                in_force = false;
        }
        return in_force && m->cert_not_after > (int64_t) now ? (uint64_t) m->cert_not_after : 0;
}

/* STATUS= for systemctl status: the state and the next event (monitor/status-text.h). */
static void notify_status(const Manager *m, const char *extra) {
        StatusTextInput in = {
                .state = m->state,
                .error = m->last_error,
                .write_error = m->write_error,
                .next_attempt = m->next_attempt,
                .cert_not_after = m->cert_not_after > 0 ? (uint64_t) m->cert_not_after : 0,
        };
        _cleanup_free_ char *text = NULL;

        if (status_text_format(&in, time(NULL), &text) < 0)
                return; /* out of memory: systemd keeps the previous text */
        (void) sd_notifyf(0, "%sSTATUS=%s", strempty(extra), text);
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
                .valid_until = manager_identity_valid_until(m, time(NULL)),
                .tpm_lockout = m->tpm_lockout,
                .birth_key_da = m->birth_key_da,
        };
        Diag d = {};
        int r;

        if (!rec.state)
                return; /* no state yet: nothing to say */
        /* The runtime copy is the live record; the state directory's keeps what
         * must survive a reboot and is written when that changes (or always,
         * without a runtime directory). A failed write is tried again at the
         * next change. */
        if (m->store &&
            (!m->runtime || !m->persisted.known || m->persisted.last_success != rec.last_success ||
             m->persisted.renew_due != rec.renew_due || m->persisted.valid_until != rec.valid_until ||
             m->persisted.failing != (rec.failures > 0))) {
                save_status(m, &rec);
                m->persisted.known = !m->write_error[0];
                m->persisted.last_success = rec.last_success;
                m->persisted.renew_due = rec.renew_due;
                m->persisted.valid_until = rec.valid_until;
                m->persisted.failing = rec.failures > 0;
        }
        if (m->runtime) {
                rec.write_error = m->write_error[0] ? m->write_error : NULL;
                r = status_record_save(m->runtime, &rec, &d);
                if (r < 0)
                        log_warning_errno(r, "cannot write the runtime copy of the status: %s",
                                          diag_text(&d, r));
        }
        notify_status(m, NULL);
        manager_report(m);
        manager_bus_changed(m);
}

void manager_set_state(Manager *m, DaemonState state, const char *error) {
        if (state != m->state)
                log_info("state: %s -> %s", daemon_state_to_string(m->state) ?: "none",
                         daemon_state_to_string(state));
        m->state = state;
        snprintf(m->last_error, sizeof(m->last_error), "%s", error ? error : "");
        manager_write_status(m);
}

void manager_notify_ready(Manager *m) {
        if (m->ready_sent)
                return;
        notify_status(m, "READY=1\n");
        m->ready_sent = true;
}

/* Network requests in one enrollment or renewal attempt, at most (/cacerts,
 * /csrattrs and the one that opens a bound connection, the request and its
 * 401 answer, and the same again after the server refused the birth
 * certificate), each up to est.timeout; and the TPM's share (key creation,
 * signatures in the TLS handshakes), at most this long. */
int manager_watchdog_start(Manager *m) {
        uint64_t usec = 0;
        int r;

        /* sd-event sends WATCHDOG=1 from the loop itself, between a half and
         * three quarters of WATCHDOG_USEC after the last, when WATCHDOG_USEC
         * (and WATCHDOG_PID, if set) are in the environment for us. Attempts
         * run in workers (worker.c), so nothing slow holds the loop. */
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                return log_error_errno(r, "cannot set up the systemd watchdog: %m");
        if (r > 0 && sd_watchdog_enabled(false, &usec) > 0)
                log_debug("watchdog: WATCHDOG=1 from the event loop, timeout %llums",
                          (unsigned long long) (usec / 1000ULL));
        return 0;
}
