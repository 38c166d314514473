/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/log.h"
#include "common/message-ids.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "fleetidd/bus-errors.h"
#include "fleetidd/manager.h"
#include "store/state-certs.h"
#include "renew/schedule.h"
#include "util/timestamp.h"


uint64_t manager_random(void) {
        uint64_t v = 0;

        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
                v = (uint64_t) time(NULL) * 6364136223846793005ULL; /* jitter only, not a secret */
        return v;
}

static RenewPolicy manager_policy(const Manager *m) {
        return (RenewPolicy) {
                .share_percent = m->config->renew_share_percent,
                .jitter_percent = m->config->renew_jitter_percent,
                .retry_initial = m->config->retry_initial_sec,
                .retry_max = m->config->renew_retry_max_sec,
        };
}

/* Reads the current certificate's dates and serial from the state directory
 * (no TPM needed to schedule). Each certificate has its own jitter draw, taken
 * from its fingerprint: the same after a restart, so a gateway that reboots
 * often does not renew at the earliest of many draws, nor a fleet rebooted
 * together all at once. */
int manager_load_cert_dates(Manager *m, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *serial = NULL, *subject = NULL;
        time_t nb, na;
        int r;

        r = state_certs_load(m->store, STATE_OPERATIONAL_CERT, &certs, d);
        if (r < 0)
                return r;
        r = cert_times(sk_X509_value(certs, 0), &nb, &na);
        if (r < 0)
                return diag_set(d, r, "the operational certificate's dates are unreadable");
        (void) cert_serial_string(sk_X509_value(certs, 0), &serial);
        (void) cert_subject_string(sk_X509_value(certs, 0), &subject);
        free(m->cert_subject);
        m->cert_subject = TAKE_PTR(subject); /* NULL if unreadable: no stale subject */
        free(m->renew_serial);
        m->renew_serial = TAKE_PTR(serial);
        if (cert_digest_u64(sk_X509_value(certs, 0), &m->renew_random) < 0)
                m->renew_random = manager_random(); /* SHA-256 failed: a draw of our own */
        m->cert_not_before = nb;
        m->cert_not_after = na;
        return 0;
}

static int on_renew(sd_event_source *s, uint64_t usec, void *userdata);

/* At an absolute wall-clock time (the due time), or after a delay on
 * CLOCK_BOOTTIME (retries; suspend time counts). The delay counts from now, not
 * from the loop's wake-up (as sd_event_add_time_relative() would): the attempt
 * before it may have taken up to est.timeout. */
static int arm(Manager *m, clockid_t clock, uint64_t usec, uint64_t accuracy) {
        struct timespec ts;
        int r;

        m->renew_timer = sd_event_source_disable_unref(m->renew_timer);
        if (clock != CLOCK_REALTIME) {
                if (clock_gettime(clock, &ts) < 0)
                        return log_error_errno(errno, "cannot read the clock: %m");
                usec += (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
        }
        r = sd_event_add_time(m->event, &m->renew_timer, clock, usec, accuracy, on_renew, m);
        if (r < 0)
                return log_error_errno(r, "cannot schedule the renewal: %m");
        (void) sd_event_source_set_description(m->renew_timer, "renew");
        return 0;
}

static int arm_in(Manager *m, uint64_t delay_sec) {
        return arm(m, CLOCK_BOOTTIME, delay_sec * 1000000ULL, delay_sec > 60 ? 1000000ULL : 1000ULL);
}

int manager_schedule_renewal(Manager *m) {
        RenewPolicy p = manager_policy(m);
        time_t now = time(NULL), due, held;
        char when[TIMESTAMP_MAX];
        Diag d = {};
        int r;

        r = manager_load_cert_dates(m, &d);
        if (r < 0)
                return log_error_errno(r, "cannot schedule renewal: %s", diag_text(&d, r));
        due = renew_due((time_t) m->cert_not_before, (time_t) m->cert_not_after, &p, m->renew_random);
        m->renew_due = due;
        held = renew_due_floored(due, (time_t) m->last_success, m->config->renew_min_interval_sec, now);
        m->renew_failures = 0;
        m->next_attempt = (uint64_t) (due > now ? due : now);
        log_info("renewal due at %s (%u%% of the lifetime +- %u%% jitter)", timestamp_utc(due, when),
                 p.share_percent, p.jitter_percent);
        if (held != due) {
                /* The severity (manager_report) says the certificate is too short. */
                log_warning("the last renewal or enrollment was %llds ago; renewals are held to one per "
                            "renew.min_interval (%us): renewing at %s",
                            (long long) (now - (time_t) m->last_success), m->config->renew_min_interval_sec,
                            timestamp_utc(held, when));
                due = held;
                m->next_attempt = (uint64_t) (due > now ? due : now);
        }
        manager_set_state(m, DAEMON_STATE_ENROLLED, NULL);
        (void) manager_cacerts_start(m);

        /* CLOCK_REALTIME at an absolute time: right after suspend and after the wall
         * clock is set. The slack (1% of the wait, at most an hour) lets the kernel
         * coalesce wake-ups; nothing else wakes the daemon in between. */
        uint64_t wait = due > now ? (uint64_t) (due - now) : 0;
        uint64_t slack = wait / 100 > 3600 ? 3600 : wait / 100;
        return arm(m, CLOCK_REALTIME, (uint64_t) due * 1000000ULL, slack ? slack * 1000000ULL : 1000ULL);
}

/* The key of the request the CA deferred outlives the attempt, so it is kept
 * as DER: an EVP_PKEY belongs to the attempt's OpenSSL library context (and
 * to the worker's process). Takes the worker's copy; NULL forgets it. */
static void remember_deferred(Manager *m, WorkerResult *res) {
        free(m->renew_deferred_spki);
        m->renew_deferred_spki = NULL;
        m->renew_deferred_spki_len = 0;
        if (!res || !res->deferred_spki)
                return; /* none: the retry asks with a new key */
        m->renew_deferred_spki = TAKE_PTR(res->deferred_spki);
        m->renew_deferred_spki_len = res->deferred_spki_len;
        res->deferred_spki_len = 0;
}

void manager_renew_back_to_schedule(Manager *m) {
        remember_deferred(m, NULL);
        if (m->renew_due > time(NULL))
                (void) manager_schedule_renewal(m);
}

/* Whether the stored certificate is another than the one in force. Asked
 * only when a renewal's worker ended without its result (killed at its
 * timeout or by a Cancel, crashed, its message lost): then it stored it
 * (validated: nothing else writes operational.pem while it runs). */
static bool stored_certificate_replaced(Manager *m) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *serial = NULL;

        if (!m->renew_serial || state_certs_load(m->store, STATE_OPERATIONAL_CERT, &certs, NULL) < 0 ||
            cert_serial_string(sk_X509_value(certs, 0), &serial) < 0)
                return false;
        return strcmp(serial, m->renew_serial) != 0;
}

static void renew_done(Manager *m, WorkerResult *res) {
        RenewPolicy p = manager_policy(m);
        char delay_text[32];
        uint64_t delay;
        int r = res->error;

        /* The stored certificate is the identity in force, whatever the
         * worker could still say: else a renewal done would be taken for a
         * failed one, its dates kept stale, and done again. */
        if (r < 0 && res->lost && stored_certificate_replaced(m)) {
                log_warning("the renewal failed after it stored the new certificate (%s); that certificate "
                            "is in force",
                            diag_text(&res->diag, r));
                m->renew_canceled = false;
                res->error = r = 0;
        }

        if (m->renew_canceled) {
                m->renew_canceled = false;
                if (r < 0 && res->outcome != ATTEMPT_IDENTITY_UNUSABLE && m->renew_due > time(NULL)) {
                        manager_announce_trust_changes(m, &res->trust_changes);
                        log_notice("the renewal was canceled; the current certificate stays in force, its "
                                   "renewal goes back to its schedule");
                        manager_renew_back_to_schedule(m);
                        return;
                }
        }

        if (r >= 0 || res->outcome == ATTEMPT_IDENTITY_UNUSABLE || res->outcome == ATTEMPT_REJECTED)
                /* The request the CA deferred is over: answered (issued, or
                 * refused: a 4xx is the CA's answer to it, and repeating a
                 * denied request would never send a new one), or no longer
                 * ours to repeat. */
                remember_deferred(m, NULL);
        else if (res->deferred_spki)
                remember_deferred(m, res);
        if (r >= 0) {
                m->renew_failures = 0;
                m->failures = 0;
                m->last_success = (uint64_t) time(NULL);
                (void) manager_cacerts_fetched(m);
                manager_signer_reset(m);
                r = manager_schedule_renewal(m);
                if (r < 0) {
                        /* The next attempt finds the identity unusable and enrolls anew. */
                        manager_set_state(m, DAEMON_STATE_FAILED,
                                          "renewed, but the stored certificate cannot be read back");
                        (void) arm_in(m, m->config->renew_retry_max_sec);
                }
                if (r >= 0)
                        manager_bus_certificate_changed(m);
                manager_event(m, HOOK_EVENT_RENEWED, NULL);
                manager_announce_trust_changes(m, &res->trust_changes);
                manager_renew_job_attempt_done(m, res, 0);
                return;
        }

        /* A /cacerts answer before the failure was stored: say what it changed. */
        manager_announce_trust_changes(m, &res->trust_changes);
        if (res->outcome == ATTEMPT_IDENTITY_UNUSABLE) {
                m->renew_failures++;
                m->failures = m->renew_failures;
                m->renew_timer = sd_event_source_disable_unref(m->renew_timer);
                manager_renew_job_attempt_done(m, res, 0);
                if (!m->config->renew_fallback_to_birth) {
                        (void) manager_renewal_impossible(m, r, &res->diag);
                        return;
                }
                m->enrolling_anew = true;
                log_struct(LOG_WARNING, r, FLEETID_MESSAGE_RENEWAL_FAILED,
                           "cannot renew: %s; enrolling again with the birth identity",
                           diag_text(&res->diag, r));
                manager_set_state(m, DAEMON_STATE_ENROLLING, diag_text(&res->diag, r));
                manager_event(m, HOOK_EVENT_RENEWAL_FAILED, NULL);
                (void) manager_schedule_attempt(m, 0);
                return;
        }

        m->renew_failures++;
        m->failures = m->renew_failures;
        delay = res->hint.retry_after_given
                        ? renew_retry_after_delay(res->hint.retry_after_sec, time(NULL),
                                                  (time_t) m->cert_not_after)
                        : renew_retry_delay(m->renew_failures, time(NULL), (time_t) m->cert_not_after, &p,
                                            m->renew_random); /* the grid's phase: this certificate's */
        /* Bounded by the certificate's expiry, not renew.retry_max: never "capped". */
        manager_log_retry_after(&res->hint, false, "renew.retry_max", 0);
        snprintf(delay_text, sizeof(delay_text), "%llus", (unsigned long long) delay);
        log_struct(LOG_ERR, r, FLEETID_MESSAGE_RENEWAL_FAILED,
                   "renewal failed: %s [%s] (attempt %u); the current certificate stays in force; retrying "
                   "in %s%s",
                   diag_text(&res->diag, r), attempt_outcome_to_string(res->outcome), m->renew_failures,
                   delay_text, res->hint.retry_after_given ? " as the server asked" : "");
        m->next_attempt = (uint64_t) time(NULL) + delay;
        manager_set_state(m, DAEMON_STATE_WAITING_RETRY, diag_text(&res->diag, r));
        manager_event(m, HOOK_EVENT_RENEWAL_FAILED, NULL);
        (void) arm_in(m, delay);
        manager_renew_job_attempt_done(m, res, delay);
}

static int renew_run(Manager *m, sd_event_source *timer) {
        int r;

        /* The outcome written next answers every request received until now. */
        m->renew_answered = m->renew_requests;
        r = manager_clock_ready(m, true);
        if (r < 0) /* cannot even watch the clock: look again later */
                return arm_in(m, m->config->retry_initial_sec);
        if (r == 0)
                return 0;
        manager_set_state(m, DAEMON_STATE_RENEWING, NULL);
        m->last_attempt = (uint64_t) time(NULL);
        r = manager_run_worker(m, WORKER_RENEW, timer, renew_done);
        manager_renew_job_attempt_started(m);
        return r;
}

static int on_renew(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->worker) /* another operation runs: this renewal follows it */
                return manager_run_worker(m, WORKER_RENEW, s, NULL);
        return renew_run(m, s);
}

int manager_renewal_impossible(Manager *m, int error, const Diag *d) {
        log_struct(LOG_CRIT, error, FLEETID_MESSAGE_RENEWAL_FAILED,
                   "renewal impossible: %s; renew.fallback_to_birth is off, so this device does not enroll "
                   "again with its birth identity and needs a person; checking again in %us",
                   diag_text(d, error), m->config->renew_retry_max_sec);
        m->next_attempt = (uint64_t) time(NULL) + m->config->renew_retry_max_sec;
        manager_set_state(m, DAEMON_STATE_FAILED, diag_text(d, error));
        manager_event(m, HOOK_EVENT_RENEWAL_FAILED, NULL);
        return manager_schedule_attempt(m, m->config->renew_retry_max_sec);
}

int manager_renew_now(Manager *m) {
        m->renew_requests++;
        return manager_renew_pending(m);
}

/* A certificate a renewal can replace: one was loaded, and no renewal has
 * found it unusable since (then the device enrolls again, on the
 * enrollment's own backoff, which a renewal asked for must not skip). */
bool manager_has_renewable(const Manager *m) {
        return m->cert_not_after != 0 && !m->enrolling_anew;
}

int manager_renew_pending(Manager *m) {
        if (m->renew_answered == m->renew_requests)
                return 0;
        if (m->worker)
                /* Answered once the operation in flight is over (its result
                 * may be the certificate to renew): on_worker_done() comes back here. */
                return 0;
        if (!manager_has_renewable(m)) {
                char error[sizeof(m->last_error)];

                /* Answered at once: the status says what is going on instead. */
                snprintf(error, sizeof(error), "%s", m->last_error);
                m->renew_answered = m->renew_requests;
                manager_set_state(m, m->state >= 0 ? m->state : DAEMON_STATE_ENROLLING, error);
                log_notice("renewal requested, but %s; enrollment is already being attempted, on its own "
                           "schedule",
                           m->enrolling_anew ? "the operational certificate is unusable"
                                             : "there is no operational certificate yet");
                manager_renew_job_abandon(m, BUS_ERROR_NOT_ENROLLED,
                                          "there is no usable operational certificate to renew; enrollment is "
                                          "being attempted");
                return 0;
        }
        log_notice("renewal requested now");
        return arm_in(m, 0);
}
