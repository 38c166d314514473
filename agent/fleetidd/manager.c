/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/message-ids.h"
#include "fleetidd/manager-sensors.h"
#include "fleetidd/manager.h"
#include "fleetidd/manager-jobs.h"
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
        /* Only for tests/bench/loop-latency.sh: the blocking behaviour, measured beside the workers. */
        m->inline_workers = streq_ptr(getenv("FLEETIDD_INLINE_WORKERS"), "1");
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* A worker still running is killed and reaped before anything it reads goes. */
        m->worker = worker_free(m->worker);
        manager_signer_stop(m);
        manager_sensors_stop(m);
        manager_ping_stop(m);
        manager_jobs_stop(m); /* JobRemoved for the jobs not finished, while the bus is there */
        manager_bus_stop(m);
        if (!m->oneshot && (m->runtime ?: m->store))
                (void) state_store_remove(m->runtime ?: m->store, STATE_DAEMON_PID, NULL);
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
        reset_marker_done(&m->reset_marker);
        sd_event_unref(m->event);
        state_store_free(m->store);
        state_store_free(m->runtime);
        config_free(m->config);
        free(m);
        return NULL;
}

/* For fleetidctl renew: which process to send SIGUSR1. In the runtime
 * directory (gone when the daemon stops), else in the state directory. */
static void record_pid(Manager *m) {
        char pid[32];
        Diag d = {};
        int n, r;

        n = snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
        r = state_store_save(m->runtime ?: m->store, STATE_DAEMON_PID, pid, (size_t) n, STATE_FILE_MODE, &d);
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

static sd_event_source *kind_timer(Manager *m, WorkerKind kind) {
        switch (kind) {
        case WORKER_ENROLL:
                return m->retry_timer;
        case WORKER_RENEW:
                return m->renew_timer;
        case WORKER_CACERTS:
                return m->cacerts_timer;
        default:
                return NULL;
        }
}

/* Timers that fired during the operation fire now, unless its result re-armed them. */
static void refire_deferred(Manager *m) {
        for (WorkerKind k = 0; k < _WORKER_KIND_MAX; k++) {
                sd_event_source *t = kind_timer(m, k);
                int enabled = SD_EVENT_OFF;

                if (!(m->deferred & (1u << k)))
                        continue;
                m->deferred &= ~(1u << k);
                if (!t || sd_event_source_get_enabled(t, &enabled) < 0 || enabled != SD_EVENT_OFF)
                        continue;
                log_debug("the %s deferred during the last operation runs now", worker_kind_to_string(k));
                if (sd_event_source_set_time_relative(t, 0) < 0 ||
                    sd_event_source_set_enabled(t, SD_EVENT_ONESHOT) < 0)
                        log_warning("cannot run the deferred %s; it waits for its next schedule",
                                    worker_kind_to_string(k));
        }
}

/* An attempt makes at most a handful of EST requests (/cacerts, /csrattrs,
 * the POST, again after a 401 or a refused birth certificate), each bounded
 * by est.timeout, plus TPM work: a worker still running after eight of them
 * and two minutes more is stuck (a hung TPM or resource manager). */
#define WORKER_REQUESTS_MAX 8
#define WORKER_TPM_SLACK_SEC 120

static uint64_t manager_worker_timeout_usec(const Config *c) {
        return ((uint64_t) c->est_timeout_sec * WORKER_REQUESTS_MAX + WORKER_TPM_SLACK_SEC) * 1000000ULL;
}

/* Whether SIGTERM or SIGINT has come and waits (blocked for the signalfd). */
static bool stop_signal_pending(void) {
        sigset_t pending;

        return sigpending(&pending) == 0 &&
               (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

static void on_worker_state(void *userdata, DaemonState s) {
        manager_set_state(userdata, s, NULL);
        if (s == DAEMON_STATE_TPM_CLEARED)
                manager_event(userdata, HOOK_EVENT_TPM_CLEARED, NULL);
}

/* The birth key as a worker read it: a key without noDA is said once per start. */
static void manager_birth_key_read(Manager *m, bool da_protected) {
        m->birth_key_da = da_protected; /* written with the state that done() sets */
        if (!da_protected || m->birth_da_warned)
                return;
        m->birth_da_warned = true;
        log_struct(LOG_WARNING, 0, FLEETID_MESSAGE_BIRTH_KEY_DA,
                   "the birth key at 0x%08x lacks noDA (made from the TCG IDevID template as it is, e.g. by "
                   "another provisioning tool): while the TPM is in dictionary-attack lockout it refuses that "
                   "key (TPM_RC_LOCKOUT), and the device cannot enroll, re-enroll after a factory reset or a "
                   "TPM clear, or fall back to its birth identity until the lockout ends. fleetid's own keys "
                   "are noDA. Remedy: provision the device again with fleetid-provision create-key (fleetid's "
                   "template, noDA) and a new birth certificate; until then keep the TPM out of lockout "
                   "(tpm2_dictionarylockout --clear-lockout ends one)",
                   m->config->birth_key_handle);
}

static void on_worker_done(void *userdata, WorkerKind kind, WorkerResult *r) {
        Manager *m = userdata;
        _cleanup_(worker_freep) Worker *w = TAKE_PTR(m->worker); /* r lives in it */
        ManagerDoneFn done = m->worker_done;

        m->worker_done = NULL;
        /* systemctl stop signals every process of the unit: a worker killed by
         * a signal while the daemon's own SIGTERM/SIGINT waits to be read is
         * part of the stop, not a failure to report. */
        if (!m->stopping && stop_signal_pending())
                m->stopping = true;
        if (m->stopping) {
                log_info("the %s worker has ended; exiting", worker_kind_to_string(kind));
                (void) sd_event_exit(m->event, m->oneshot ? EXIT_TEMPFAIL : 0);
                return;
        }
        if (r->tpm_lockout_known && r->tpm_lockout != m->tpm_lockout) {
                if (r->tpm_lockout)
                        log_warning(
                                "the TPM is in dictionary-attack lockout: keys without noDA (a birth key "
                                "from the TCG template as it is) cannot be used until it ends or is reset");
                else
                        log_info("the TPM is out of dictionary-attack lockout");
                m->tpm_lockout = r->tpm_lockout; /* written with the state that done() sets */
        }
        if (r->birth_read)
                manager_birth_key_read(m, r->birth_da_protected);
        if (m->reset_preempting) { /* stopped for a factory reset: its outcome is void */
                manager_reset_preempted(m, kind, r);
                /* Its timer fired already: should the reset not start after all
                 * (its marker gone), the operation runs again (refire_deferred());
                 * a reset that starts forgets it (manager_reset_start()). */
                m->deferred |= 1u << kind;
        } else
                done(m, r);
        manager_sensors_kick(m);
        if (m->worker) /* done() started the next operation already */
                return;
        /* SIGHUP during the operation: the reset comes first. */
        if (m->reset_pending && manager_reset_start(m) != 0)
                return;
        refire_deferred(m);
        (void) manager_renew_pending(m);
}

/* What the kind's worker needs besides the configuration; *ret NULL if nothing. */
static int worker_input(Manager *m, WorkerKind kind, char **ret, size_t *ret_len) {
        *ret = NULL;
        *ret_len = 0;
        if (kind == WORKER_RENEW && m->renew_deferred_spki) {
                *ret = malloc(m->renew_deferred_spki_len);
                if (!*ret)
                        return -ENOMEM;
                memcpy(*ret, m->renew_deferred_spki, m->renew_deferred_spki_len);
                *ret_len = m->renew_deferred_spki_len;
        }
        if (kind == WORKER_RESET && m->reset)
                return reset_marker_format(m->reset, ret, ret_len);
        return 0;
}

int manager_run_worker(Manager *m, WorkerKind kind, sd_event_source *timer, ManagerDoneFn done) {
        _cleanup_free_ char *input = NULL;
        size_t input_len = 0;
        int r;

        if (m->worker) {
                log_debug("the %s is due while the %s runs; it follows", worker_kind_to_string(kind),
                          worker_kind_to_string(worker_kind(m->worker)));
                if (timer)
                        m->deferred |= 1u << kind;
                return 0;
        }
        m->worker_done = done;
        r = worker_input(m, kind, &input, &input_len);
        if (r >= 0)
                r = worker_start(m->event, kind, m->config, input, input_len,
                                 manager_worker_timeout_usec(m->config), m->inline_workers, on_worker_state,
                                 on_worker_done, m, &m->worker);
        if (r >= 0 && (kind == WORKER_ENROLL || kind == WORKER_RENEW))
                manager_sensors_identity_busy(m);
        if (r < 0) {
                WorkerResult res = { .error = r, .outcome = ATTEMPT_TRANSIENT };

                m->worker_done = NULL;
                /* The same path as a failed attempt: retried on the kind's schedule. */
                diag_set(&res.diag, r, "cannot start the %s worker: %s", worker_kind_to_string(kind),
                         strerror(-r));
                done(m, &res);
        }
        return 0;
}

int manager_stop(Manager *m) {
        int r;

        if (m->stopping)
                return 0;
        m->stopping = true;
        manager_signer_stop(m);
        /* JobRemoved while the bus is there: it closes when the loop exits. */
        manager_jobs_cancel_all(m, "fleetidd is stopping; the operation did not finish");
        if (!m->worker)
                return sd_event_exit(m->event, m->oneshot ? EXIT_TEMPFAIL : 0);
        log_info("stopping: ending the %s in flight (the stored identity stays as it is)",
                 worker_kind_to_string(worker_kind(m->worker)));
        r = worker_kill(m->worker);
        if (r < 0) {
                log_warning_errno(r, "cannot stop the %s worker: %m; killing it",
                                  worker_kind_to_string(worker_kind(m->worker)));
                m->worker = worker_free(m->worker);
                return sd_event_exit(m->event, m->oneshot ? EXIT_TEMPFAIL : 0);
        }
        return 0;
}

int manager_start(Manager *m) {
        Diag d = {};
        int r;

        r = state_store_open(m->config->state_dir, &m->store, &d);
        if (r < 0)
                return log_error_errno(r, "cannot use the state directory: %s", diag_text(&d, r));

        /* A --oneshot run may happen beside the running daemon: the PID file and
         * the temporary files of writes in progress belong to that daemon. */
        if (!m->oneshot)
                manager_clean_temporaries(m->store, "state directory");

        /* The live status record and the PID (the state directory keeps what
         * must survive a reboot). */
        if (m->config->runtime_dir) {
                r = state_store_open(m->config->runtime_dir, &m->runtime, &d);
                if (r < 0)
                        log_warning_errno(r,
                                          "cannot use the runtime directory, so the status and the PID go to the "
                                          "state directory: %s",
                                          diag_text(&d, r));
                else if (!m->oneshot)
                        manager_clean_temporaries(m->runtime, "runtime directory");
        }
        if (!m->oneshot)
                record_pid(m);

        /* The last success outlives a restart ("already enrolled" is none). */
        StatusRecord previous = {};
        if (status_record_load(m->store, &previous, NULL) >= 0) {
                m->last_success = previous.last_success;
                /* What the file holds now: it is rewritten when this changes. */
                m->persisted.known = true;
                m->persisted.last_success = previous.last_success;
                m->persisted.renew_due = previous.renew_due;
                m->persisted.valid_until = previous.valid_until;
                m->persisted.failing = previous.failures > 0;
                status_record_done(&previous);
        }

        manager_trust_generation_load(m);
        (void) manager_ping_start(m);
        log_info("fleetidd %s starting: EST server %s%s%s, state in %s", FLEETID_VERSION, m->config->est_url,
                 m->config->est_label ? ", label " : "", strempty(m->config->est_label), m->config->state_dir);
        /* An unfinished factory reset comes before anything else. */
        r = manager_reset_start(m);
        if (r != 0)
                return 0;
        return manager_schedule_attempt(m, 0);
}
