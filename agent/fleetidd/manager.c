/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/password.h"
#include "fleetidd/manager.h"
#include "store/status-file.h"

int manager_new(Config *config, bool oneshot, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->oneshot = oneshot;
        m->state = _DAEMON_STATE_INVALID;
        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        r = hook_set_new(HOOK_MAX_RUNNING_DEFAULT, &m->hooks);
        if (r < 0)
                return r;
        m->config = config;
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        if (m->store && !m->oneshot)
                (void) state_store_remove(m->store, STATE_DAEMON_PID, NULL);
        sd_event_source_disable_unref(m->retry_timer);
        sd_event_source_disable_unref(m->renew_timer);
        sd_event_source_disable_unref(m->cacerts_timer);
        sd_event_source_disable_unref(m->severity_timer);
        sd_event_source_disable_unref(m->clock_change_source);
        sd_event_source_disable_unref(m->timesync_source);
        free(m->renew_serial);
        free(m->cert_subject);
        free(m->renew_deferred_spki);
        hook_set_free(m->hooks);
        sd_event_unref(m->event);
        state_store_free(m->store);
        state_store_free(m->runtime);
        config_free(m->config);
        free(m);
        return NULL;
}

int manager_prepare_attempt(Manager *m, TpmContext **ret_tpm, char **ret_password, Diag *d) {
        const Config *c = m->config;
        int r;

        if (ret_tpm) {
                r = tpm_context_new(c->tpm_tcti, ret_tpm, d);
                if (r < 0)
                        return r;
        }

        *ret_password = NULL;
        if (c->est_password_file)
                return password_read_file(c->est_password_file, ret_password, d);
        return 0;
}

/* For fleetidctl renew: which process to send SIGUSR1. */
static void record_pid(Manager *m) {
        char pid[32];
        Diag d = {};
        int n, r;

        n = snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
        r = state_store_save(m->store, STATE_DAEMON_PID, pid, (size_t) n, STATE_FILE_MODE, &d);
        if (r < 0)
                log_warning_errno(r, "cannot record the daemon's PID (fleetidctl renew will not find it): %s",
                                  diag_text(&d, r));
}

/* Temporary files a crash between writing and renaming left behind. */
static void manager_clean_temporaries(StateStore *store, const char *what) {
        unsigned removed = 0;
        Diag d = {};
        int r;

        r = state_store_remove_temporaries(store, &removed, &d);
        if (r < 0)
                log_warning_errno(r, "cannot remove stale temporary files from the %s: %s; they stay", what,
                                  diag_text(&d, r));
        if (removed > 0)
                log_info("removed %u stale temporary file%s left in the %s %s by an interrupted write",
                         removed, removed == 1 ? "" : "s", what, state_store_path(store));
}

int manager_blame_tpm(Manager *m, int r, Diag *d) {
        Diag probe = {};
        char failed[DIAG_MAX];

        if (r == -ENXIO || tpm_probe(m->config->tpm_tcti, &probe) != -ENXIO)
                return r;
        snprintf(failed, sizeof(failed), "%s", diag_text(d, r));
        return diag_set(d, -ENXIO, "%s (the attempt failed with: %s)", probe.text, failed);
}

int manager_start(Manager *m) {
        Diag d = {};
        int r;

        r = state_store_open(m->config->state_dir, &m->store, &d);
        if (r < 0)
                return log_error_errno(r, "cannot use the state directory: %s", diag_text(&d, r));

        /* A --oneshot run may happen beside the running daemon: the PID file and
         * the temporary files of writes in progress belong to that daemon. */
        if (!m->oneshot) {
                manager_clean_temporaries(m->store, "state directory");
                record_pid(m);
        }

        /* The status copy the operator sees even when the state directory cannot be written. */
        if (m->config->runtime_dir) {
                r = state_store_open(m->config->runtime_dir, &m->runtime, &d);
                if (r < 0)
                        log_warning_errno(r, "cannot use the runtime directory, so no status copy there: %s",
                                          diag_text(&d, r));
                else if (!m->oneshot)
                        manager_clean_temporaries(m->runtime, "runtime directory");
        }

        /* The last success outlives a restart ("already enrolled" is none). */
        StatusRecord previous = {};
        if (status_record_load(m->store, &previous, NULL) >= 0) {
                m->last_success = previous.last_success;
                status_record_done(&previous);
        }

        log_info("fleetidd %s starting: EST server %s%s%s, state in %s", FLEETID_VERSION, m->config->est_url,
                 m->config->est_label ? ", label " : "", strempty(m->config->est_label), m->config->state_dir);
        return manager_schedule_attempt(m, 0);
}
