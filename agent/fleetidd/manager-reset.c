/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-reset.c: the factory reset as one more operation of fleetidd's
 * state machine (docs/factory-reset.md).
 *
 * A reset marker in the state directory (lib/reset/reset-marker.h) is the
 * request. fleetidd finds it at its start, before anything else, or on
 * SIGHUP (fleetidctl factory-reset, which also installed the new owner's
 * drop-in). The wipe runs in a worker (the TPM evictions, the files), the
 * same lib/reset steps fleetidctl runs when fleetidd is not there; then, in
 * the marker's "enroll" phase, the ordinary first enrollment runs with the
 * new owner's configuration, and the marker goes once its certificate is
 * stored (manager_reset_enrolled()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/reset-log.h"
#include "crypto/ossl-util.h"
#include "fleetidd/bus-errors.h"
#include "fleetidd/manager-jobs.h"
#include "fleetidd/manager.h"
#include "fleetidd/manager-sensors.h"
#include "store/state-certs.h"

/* Forgets the old identity's facts the daemon holds in memory. */
static void forget_identity(Manager *m) {
        m->retry_timer = sd_event_source_disable_unref(m->retry_timer);
        m->renew_timer = sd_event_source_disable_unref(m->renew_timer);
        m->cacerts_timer = sd_event_source_disable_unref(m->cacerts_timer);
        m->deferred = 0;
        m->failures = 0;
        m->renew_failures = 0;
        m->last_success = 0;
        m->next_attempt = 0;
        m->renew_due = 0;
        m->cacerts_checked = m->cacerts_next = 0;
        m->cert_not_before = m->cert_not_after = 0;
        m->enrolling_anew = false;
        m->renew_answered = m->renew_requests; /* a renewal asked for before is void */
        free(m->renew_serial);
        m->renew_serial = NULL;
        free(m->cert_subject);
        m->cert_subject = NULL;
        free(m->renew_deferred_spki);
        m->renew_deferred_spki = NULL;
        m->renew_deferred_spki_len = 0;
        /* A Cancel of the old identity's renewal is void with it: else the
         * new identity's first failed renewal would be taken for a cancel. */
        m->renew_canceled = false;
        /* Nothing of the old identity waits for the clock any more. */
        manager_clock_wait_cancel(m);
        m->persisted.known = false;
}

static void reset_job_finish_error(Manager *m, const char *why);

static void reset_failed(Manager *m, int r, const char *why) {
        char text[DIAG_MAX + 32];

        snprintf(text, sizeof(text), "factory reset: %s", why);
        log_error_errno(r, "%s", text);
        manager_set_state(m, DAEMON_STATE_FAILED, text);
        reset_job_finish_error(m, text);
        if (m->oneshot) {
                m->exit_code = EXIT_TEMPFAIL;
                (void) sd_event_exit(m->event, EXIT_TEMPFAIL);
        }
}

/* The wipe is done: enroll with the new owner, if it is in place. */
static void reset_enroll(Manager *m) {
        Diag d = {};

        if (!reset_owner_in_place(m->config, m->reset, &d)) {
                char why[DIAG_MAX + 128];

                snprintf(why, sizeof(why),
                         "%s; not enrolling (the old owner is not used again): run fleetidctl factory-reset again",
                         d.text);
                reset_failed(m, -ESTALE, why);
                return;
        }
        log_info("factory reset: enrolling with the new owner %s", m->config->est_url);
        (void) manager_schedule_attempt(m, 0);
}

static int on_reset_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        /* The marker gone meanwhile (finished by fleetidctl): the ordinary start. */
        if (manager_reset_start(m) == 0)
                (void) manager_schedule_attempt(m, 0);
        return 0;
}

static void reset_done(Manager *m, WorkerResult *res) {
        ResetMarker next = {};
        Diag d = {};
        int r;

        forget_identity(m);
        /* The old operational key is gone: SignChallenge waits for the new one. */
        manager_signer_reset(m);
        /* The sensor broker anew, on the wiped records (manager_sensors_reset()). */
        if (!m->oneshot && !m->sensors && manager_sensors_start(m) < 0)
                log_error("sensor broker: cannot start it again after the factory reset; the sensor methods "
                          "are refused until fleetidd restarts");
        if (res->error < 0) {
                reset_failed(m, res->error, diag_text(&res->diag, res->error));
                /* A foreign object waits for a person; the TPM or a full disk may come back. */
                if (res->error != -EBUSY && !m->oneshot &&
                    sd_event_add_time_relative(m->event, &m->retry_timer, CLOCK_BOOTTIME,
                                               m->config->retry_initial_sec * 1000000ULL, 1000000ULL,
                                               on_reset_retry, m) < 0)
                        log_error("cannot schedule the factory reset again; it runs when fleetidd restarts");
                return;
        }
        r = reset_marker_load(m->store, &next, &d);
        if (r == -ENOENT) {
                log_notice("factory reset done; not enrolling (--no-enroll): fleetidd stops, and enrolls with "
                           "the owner configuration in place when it starts again");
                m->reset = NULL;
                reset_marker_done(&m->reset_marker);
                if (m->reset_job) {
                        (void) job_finish_chain(m->reset_job, NULL);
                        m->reset_job = NULL;
                }
                (void) sd_event_exit(m->event, 0);
                return;
        }
        if (r < 0) {
                reset_failed(m, r, diag_text(&d, r));
                return;
        }
        if (!reset_marker_same_asking(&next, m->reset)) {
                /* Asked for again while the wipe ran (the worker left that
                 * marker as it was): the newer request runs now, from its phase. */
                log_notice("factory reset asked for again by uid %u while the wipe ran: it runs now",
                           (unsigned) next.uid);
                reset_marker_done(&next);
                (void) manager_reset_start(m);
                return;
        }
        reset_marker_done(&m->reset_marker);
        m->reset_marker = next;
        m->reset = &m->reset_marker;
        reset_enroll(m);
}

int manager_reset_start(Manager *m) {
        Diag d = {};
        int r;

        m->reset_pending = false;
        reset_marker_done(&m->reset_marker);
        m->reset = NULL;
        r = reset_marker_load(m->store, &m->reset_marker, &d);
        if (r == -ENOENT)
                return 0;
        /* The reset replaces whatever attempt was scheduled, or was stopped
         * for it (on_worker_done() marks a preempted operation deferred). */
        m->retry_timer = sd_event_source_disable_unref(m->retry_timer);
        m->deferred = 0;
        if (r < 0) {
                reset_failed(m, r, diag_text(&d, r));
                return r;
        }
        m->reset = &m->reset_marker;
        log_notice("factory reset asked by uid %u (%s phase): %s", (unsigned) m->reset->uid,
                   reset_phase_to_string(m->reset->phase),
                   m->reset->phase == RESET_PHASE_WIPE ? "wiping the operational identity first"
                                                       : "the wipe is done; enrolling with the new owner");
        if (m->reset_job && job_state(m->reset_job) == JOB_QUEUED)
                (void) job_set_state(m->reset_job, JOB_RUNNING);
        if (m->reset->phase == RESET_PHASE_ENROLL) {
                reset_enroll(m);
                return 1;
        }
        /* A renewal asked for over D-Bus has nothing left to renew. */
        manager_renew_job_abandon(m, BUS_ERROR_NOT_ENROLLED,
                                  "a factory reset wipes the operational identity; there is nothing to renew");
        manager_sensors_reset(m, "a factory reset wipes the sensor records and requests");
        manager_set_state(m, DAEMON_STATE_RESETTING, NULL);
        return manager_run_worker(m, WORKER_RESET, NULL, reset_done) < 0 ? -EIO : 1;
}

/* A reset asked for while another operation runs: that operation is the old
 * owner's and its outcome void (an answer from the old owner's server must
 * not be stored, nor waited for), so its worker is stopped; the reset starts
 * when it is reaped (on_worker_done(): manager_reset_preempted()). A key it
 * made and noted is fleetid's for the reset (identity/operational.h). */
static void preempt(Manager *m) {
        const char *what = worker_kind_to_string(worker_kind(m->worker));
        int r;

        m->reset_pending = true;
        if (m->reset_preempting)
                return;
        r = worker_kill(m->worker);
        if (r < 0) {
                log_warning_errno(r,
                                  "factory reset asked for while the %s runs; it cannot be stopped (%m), the "
                                  "reset follows it",
                                  what);
                return;
        }
        m->reset_preempting = true;
        log_notice("factory reset asked for while the %s runs: stopping it (its outcome belongs to the old "
                   "owner); the reset follows",
                   what);
}

void manager_reset_preempted(Manager *m, WorkerKind kind, const WorkerResult *res) {
        m->reset_preempting = false;
        m->renew_canceled = false; /* its renew_done() does not run */
        log_info("the %s stopped for the factory reset%s", worker_kind_to_string(kind),
                 res->error >= 0 ? " had ended already; what it stored is wiped with the rest" : "");
        if (kind == WORKER_RENEW)
                manager_renew_job_abandon(m, BUS_ERROR_CANCELED,
                                          "a factory reset was asked for while this renewal ran; the "
                                          "renewal was stopped and the old owner's identity is wiped");
}

void manager_reset_request(Manager *m) {
        _cleanup_(config_freep) Config *fresh = NULL;
        Diag d = {};
        int r;

        if (!state_store_exists(m->store, RESET_MARKER)) {
                log_notice("SIGHUP: no factory reset was asked for (no %s/%s); nothing to do",
                           state_store_path(m->store), RESET_MARKER);
                return;
        }
        /* The new owner fleetidctl installed: its keys, nothing else of the file. */
        r = config_load(m->config->path, &fresh, &d);
        if (r < 0)
                log_error_errno(r,
                                "factory reset: the configuration with the new owner does not load: %s; "
                                "wiping, but not enrolling",
                                diag_text(&d, r));
        else
                config_take_owner(m->config, fresh);
        if (m->worker && worker_kind(m->worker) != WORKER_RESET) {
                preempt(m);
                return;
        }
        if (!m->worker)
                (void) manager_reset_start(m);
}

bool manager_reset_enrolled(Manager *m) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *serial = NULL, *issuer = NULL;
        Diag d = {};
        int r;

        if (!m->reset || m->reset->phase != RESET_PHASE_ENROLL)
                return false;
        {
                /* A reset asked for again meanwhile (SIGHUP pending, another
                 * owner): its marker stays, and it runs next. */
                ResetMarker now = {};
                bool same = reset_marker_load(m->store, &now, NULL) >= 0 &&
                            reset_marker_same_request(&now, m->reset);

                reset_marker_done(&now);
                if (!same) {
                        log_notice("factory reset: enrolled, but another reset was asked for meanwhile; it "
                                   "comes next");
                        reset_marker_done(&m->reset_marker);
                        m->reset = NULL;
                        return false;
                }
        }
        if (state_certs_load(m->store, STATE_OPERATIONAL_CERT, &certs, NULL) >= 0) {
                (void) cert_serial_string(sk_X509_value(certs, 0), &serial);
                (void) cert_issuer_string(sk_X509_value(certs, 0), &issuer);
        }
        r = state_store_remove(m->store, RESET_MARKER, &d);
        if (r < 0)
                log_warning_errno(r,
                                  "factory reset: enrolled, but the marker cannot be removed: %s; the next "
                                  "start finds the new identity and removes it",
                                  diag_text(&d, r));
        reset_log_enrolled(m->reset, m->config, serial, issuer);
        if (m->reset_job) {
                (void) job_finish_chain(m->reset_job, certs);
                m->reset_job = NULL;
        }
        reset_marker_done(&m->reset_marker);
        m->reset = NULL;
        return true;
}

/* ---- FactoryReset() as a job ---- */

#define RESET_JOB_KIND "factory-reset"

static void reset_job_finish_error(Manager *m, const char *why) {
        if (!m->reset_job)
                return;
        (void) job_finish_error(m->reset_job, SD_BUS_ERROR_FAILED, why);
        m->reset_job = NULL;
}

void manager_reset_enroll_failed(Manager *m, const char *why) {
        char text[DIAG_MAX + 96];

        if (!m->reset_job)
                return;
        snprintf(text, sizeof(text),
                 "factory reset: wiped, but enrolling with the new owner failed: %s; fleetidd "
                 "retries",
                 why);
        reset_job_finish_error(m, text);
}

int manager_reset_job_request(Manager *m, uid_t owner, bool enroll, Job **ret, Diag *d) {
        _cleanup_(config_freep) Config *fresh = NULL;
        ResetMarker marker = {};
        Job *j;
        int r;

        j = manager_job_find_live(m, RESET_JOB_KIND);
        if (j) {
                *ret = j;
                return 0;
        }
        /* The owner as the drop-in directory holds it: fleetidd cannot write /etc. */
        r = config_load(m->config->path, &fresh, d);
        if (r < 0)
                return diag_prefix(d, r, "the configuration does not load, nothing was changed");
        if (fresh->n_dropins > 1)
                return diag_set(
                        d, -ENOTUNIQ,
                        "the drop-in directory %s holds %zu owner files; a reset over D-Bus takes the owner "
                        "installed there, one file at most (fleetidctl factory-reset --owner FILE installs "
                        "one); nothing was changed",
                        fresh->dropin_dir, fresh->n_dropins);
        r = manager_job_new(m, RESET_JOB_KIND, owner, NULL, NULL, &j);
        if (r < 0)
                return diag_set(d, r, "cannot create the job: %s", strerror(-r));
        r = reset_begin(m->store, owner, time(NULL), enroll,
                        fresh->n_dropins ? fresh->dropins[0].hash : NULL, &marker, d);
        reset_marker_done(&marker);
        if (r < 0) {
                (void) job_finish_error(j, SD_BUS_ERROR_FAILED, diag_text(d, r));
                return diag_prefix(d, r, "cannot record the factory reset");
        }
        config_take_owner(m->config, fresh);
        /* The reset asked for before is replaced by this one: its job ends here. */
        reset_job_finish_error(m, "a newer FactoryReset() replaced this one; its job follows the reset");
        m->reset_job = j;
        log_notice("factory reset asked by uid %u over D-Bus: job %u", (unsigned) owner, job_id(j));
        if (m->worker && worker_kind(m->worker) != WORKER_RESET)
                preempt(m);
        else if (!m->worker)
                (void) manager_reset_start(m);
        *ret = j;
        return 0;
}
