/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/message-ids.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "util/backoff.h"
#include "enroll/enroll.h"
#include "fleetidd/manager.h"
#include "identity/tpm-watch.h"
#include "tpm/tpm-context.h"
#include "tpm/tpm-provider.h"
#include "util/timestamp.h"


static void format_delay(uint64_t s, char *buf, size_t size) {
        if (s < 120)
                snprintf(buf, size, "%llus", (unsigned long long) s);
        else if (s < 7200)
                snprintf(buf, size, "%llum", (unsigned long long) (s / 60));
        else
                snprintf(buf, size, "%lluh", (unsigned long long) (s / 3600));
}

static void log_enrolled(X509 *cert, const char *how) {
        _cleanup_free_ char *subject = NULL, *serial = NULL;
        time_t nb = 0, na = 0;
        char until[TIMESTAMP_MAX] = "?";

        (void) cert_subject_string(cert, &subject);
        (void) cert_serial_string(cert, &serial);
        if (cert_times(cert, &nb, &na) >= 0)
                timestamp_utc(na, until);
        log_struct(LOG_INFO, 0, FLEETID_MESSAGE_ENROLLED,
                   "%s operational certificate %s, serial %s, valid until %s", how, strempty(subject),
                   strempty(serial), until);
}

/* The dictionary-attack state at the start of an attempt (one GetCapability). */
static void read_lockout(TpmContext *tpm, AttemptFacts *f) {
        TpmLockoutInfo info;

        if (tpm_get_lockout_info(tpm, &info, NULL) < 0)
                return;
        f->tpm_lockout_known = true;
        f->tpm_lockout = info.in_lockout;
        if (!info.in_lockout)
                return;
        log_warning("the TPM is in dictionary-attack lockout (%u of %u failed authorizations; recovers one "
                    "every %us). fleetid's keys are not subject to it (noDA) and fleetid never spends the "
                    "counter, but a birth key from the plain TCG template (no noDA) is: enrolling with one fails "
                    "until the lockout ends; continuing",
                    info.counter, info.max_tries, info.recovery_sec);
}

/* Whether this TPM is the one the device enrolled with (identity/tpm-watch.h):
 * -EKEYREJECTED if it is another one (f->tpm_replaced); a cleared one is
 * reported (state tpm-cleared) and the enrollment goes on. */
static int watch_tpm(Manager *m, TpmContext *tpm, WorkerOutput *out, AttemptFacts *f, Diag *d) {
        char was[17], now[17];
        TpmWatch w;
        int r;

        r = tpm_watch_check(tpm, m->config, m->store, &w, d);
        if (r < 0)
                return r;
        if (w.record_broken)
                log_warning("the record of the TPM's fingerprint (%s in the state directory) could not be read; "
                            "replaced by this TPM's",
                            STATE_TPM_FINGERPRINT);
        switch (w.change) {
        case TPM_CHANGE_REPLACED:
                tpm_fingerprint_name_short(&w.was.ek, was);
                tpm_fingerprint_name_short(&w.now.ek, now);
                f->tpm_replaced = true;
                log_struct(LOG_CRIT, 0, FLEETID_MESSAGE_TPM_REPLACED,
                           "the TPM was replaced: its endorsement key is not the one the device enrolled with "
                           "(EK name %s..., was %s...); the birth certificate is not for this TPM, so fleetidd "
                           "does not enroll",
                           now, was);
                return diag_set(
                        d, -EKEYREJECTED,
                        "the TPM was replaced (its endorsement key changed): the birth identity does not "
                        "belong to it; not enrolling (provision the new TPM, then reset fleetid's state)");
        case TPM_CHANGE_CLEARED:
                tpm_fingerprint_name_short(&w.was.srk, was);
                tpm_fingerprint_name_short(&w.now.srk, now);
                (void) worker_send_state(out, DAEMON_STATE_TPM_CLEARED);
                log_struct(LOG_WARNING, 0, FLEETID_MESSAGE_TPM_CLEARED,
                           "the TPM was cleared (TPM2_Clear): its storage root key changed (SRK name %s..., was "
                           "%s...), its endorsement key did not; the operational key is gone, enrolling again "
                           "with the birth identity",
                           now, was);
                return 0;
        default:
                return 0;
        }
}

void manager_log_csrattrs(const CsrAttrsNote *n, const char *what) {
        if (n->why.error >= 0)
                return;
        log_warning("%s: the EST server's /csrattrs could not be used: %s; %s", what,
                    diag_text(&n->why, n->why.error),
                    n->bound_anyway
                            ? "the CSR is bound to the connection anyway (est.channel_binding = \"auto\")"
                            : "going on as if it asked for nothing");
}

/* One attempt, in the worker; returns 0 once the device holds a valid
 * operational certificate. */
static int attempt(Manager *m, WorkerOutput *out, EnrollResult *res, AttemptFacts *f, Diag *d) {
        _cleanup_(tpm_context_freep) TpmContext *tpm = NULL;
        _cleanup_(X509_freep) X509 *current = NULL;
        _cleanup_erase_ char *password = NULL;
        const Config *c = m->config;
        time_t now = time(NULL);
        int r;

        r = tpm_context_new(c->tpm_tcti, &tpm, d);
        if (r < 0)
                return r;
        read_lockout(tpm, f);

        r = enroll_check_current(c, tpm, m->store, now, &current, d);
        if (r < 0)
                return r;
        if (r > 0) {
                /* The operational key is at its handle and is the certificate's:
                 * the same TPM, not cleared. A device enrolled by a fleetid
                 * without the record gets it now, once. */
                if (!state_store_exists(m->store, STATE_TPM_FINGERPRINT)) {
                        TpmWatch w;
                        Diag wd = {};

                        if (tpm_watch_check(tpm, c, m->store, &w, &wd) < 0)
                                log_warning("cannot record the TPM's fingerprint: %s; tried again at the next "
                                            "start",
                                            diag_text(&wd, -EIO));
                }
                log_enrolled(current, "already enrolled:");
                return 0;
        }
        /* No usable operational identity: was the TPM cleared, or replaced? */
        {
                Diag why = *d; /* why there is no usable identity */

                r = watch_tpm(m, tpm, out, f, d);
                if (r < 0)
                        return r;
                *d = why;
        }
        /* Enrolled before, but that identity is expired or unusable: a new
         * enrollment is the fallback renew.fallback_to_birth may forbid. */
        if (!c->renew_fallback_to_birth && state_store_exists(m->store, STATE_OPERATIONAL_CERT)) {
                f->identity_unusable = true;
                return diag_prefix(d, -EKEYEXPIRED, "the operational identity is unusable");
        }
        log_info("enrolling: %s", diag_text(d, -ENOENT));
        diag_clear(d);

        f->preparing = true;
        r = manager_prepare_attempt(m, NULL, &password, d);
        if (r < 0)
                return r;
        f->preparing = false;

        (void) worker_send_state(out, DAEMON_STATE_ENROLLING);
        r = enroll_first(c, tpm, m->store, password, now, res, d);
        if (res->birth_recreated)
                log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_BIRTH_KEY_RECREATED,
                           "the birth key was gone from the TPM at 0x%08x and was made again from its template "
                           "(%s): its public key is the birth certificate's (certificate from the %s)",
                           c->birth_key_handle,
                           res->birth_template == BIRTH_TEMPLATE_TCG
                                   ? "the TCG IDevID template as it is, no noDA"
                                   : "fleetid's: the TCG IDevID template plus noDA",
                           strempty(res->birth_source));
        if (res->birth_refused)
                log_notice("the EST server refused the birth certificate in the TLS handshake (alert %s); "
                           "enrolling without a client certificate, with HTTP Basic as '%s' (RFC 7030 3.2.3)",
                           res->birth_refused, c->est_username);
        manager_log_csrattrs(&res->csrattrs, "enrollment");
        manager_log_key_choice(&res->key_choice);
        if (r < 0)
                return r;
        if (res->trust_bootstrapped)
                log_notice("trust anchor bootstrapped from /cacerts by its fingerprint %s",
                           c->est_bootstrap_fingerprint);
        log_info("EST CA: %u certificate(s) trusted after /cacerts; client authentication: %s; operational key %s "
                 "at TPM handle 0x%08x; CSR channel binding: %s",
                 res->ca_certs,
                 res->birth_refused ? "HTTP Basic, no client certificate" : "birth certificate (TLS)",
                 res->key_created ? "created" : "reused (pending from an earlier attempt)", res->key_handle,
                 channel_binding_type_to_string(res->binding));
        if (res->old_key_kept)
                log_warning("the expired operational identity's key could not be evicted from the TPM; the "
                            "next renewal will replace it");
        if (res->subject_changed)
                log_notice("the EST CA issued the certificate with another subject than the CSR asked for");
        log_enrolled(res->cert, "enrolled:");
        return 0;
}

/* The worker: the attempt and its result, nothing else. */
static void enroll_work(void *userdata, WorkerOutput *out) {
        Manager *m = userdata;
        EnrollResult res = {};
        WorkerResult wr = {};
        AttemptFacts f = {};
        Diag d = {};
        int r;

        r = attempt(m, out, &res, &f, &d);
        f.http_status = res.hint.http_status;
        if (res.birth_expired)
                f.preparing = true; /* nothing was sent */
        f.birth_da_protected = res.birth_read && res.birth_da_protected;
        manager_attempt_result(m, r, &f, &d, &wr);
        wr.hint = res.hint;
        wr.fetched = r >= 0 && res.cert;
        wr.trust_changes = res.trust_changes;
        wr.birth_read = res.birth_read;
        wr.birth_da_protected = res.birth_da_protected;
        wr.birth_expired = res.birth_expired;
        (void) worker_send_result(out, &wr);
        enroll_result_done(&res); /* frees the trust changes too */
}

static void enroll_done(Manager *m, WorkerResult *res) {
        char delay_text[32];
        uint64_t delay;
        bool server_asked, capped;
        int r = res->error;

        if (r >= 0) {
                (void) manager_reset_enrolled(m);
                m->failures = 0;
                if (res->fetched) /* not "already enrolled" */
                        m->last_success = (uint64_t) time(NULL);
                if (m->oneshot) {
                        manager_set_state(m, DAEMON_STATE_ENROLLED, NULL);
                        manager_announce_trust_changes(m, &res->trust_changes);
                        (void) sd_event_exit(m->event, 0);
                        return;
                }
                if (res->fetched)
                        (void) manager_cacerts_fetched(m);
                if (res->fetched)
                        manager_signer_reset(m);
                /* Writes the status "enrolled" once, with the renewal due time. */
                r = manager_schedule_renewal(m);
                if (r < 0) {
                        /* The next attempt finds the identity unusable and enrolls anew. */
                        manager_set_state(m, DAEMON_STATE_FAILED,
                                          "enrolled, but the stored certificate cannot be read back");
                        (void) manager_schedule_attempt(m, m->config->retry_max_sec);
                }
                if (res->fetched && r >= 0)
                        manager_bus_certificate_changed(m);
                /* After the reload, so the events describe the new certificate. */
                manager_announce_trust_changes(m, &res->trust_changes);
                manager_event(m, HOOK_EVENT_ENROLLED, NULL);
                return;
        }

        /* The trust store was updated even if the enrollment then failed. */
        manager_announce_trust_changes(m, &res->trust_changes);
        m->failures++;
        if (res->tpm_replaced && !m->oneshot) {
                m->next_attempt = (uint64_t) time(NULL) + m->config->retry_max_sec;
                manager_set_state(m, DAEMON_STATE_TPM_REPLACED, diag_text(&res->diag, r));
                manager_event(m, HOOK_EVENT_TPM_REPLACED, NULL);
                (void) manager_schedule_attempt(m, m->config->retry_max_sec);
                return;
        }
        if (res->birth_expired && !m->oneshot) {
                manager_birth_expired(m, r, &res->diag);
                return;
        }
        if (res->outcome == ATTEMPT_IDENTITY_UNUSABLE && !m->oneshot) {
                (void) manager_load_cert_dates(m, NULL); /* for the status, if it can be read */
                (void) manager_renewal_impossible(m, r, &res->diag);
                return;
        }
        delay = backoff_next(m->failures, m->config->retry_initial_sec, m->config->retry_max_sec,
                             res->hint.retry_after_given, res->hint.retry_after_sec, manager_random(),
                             &capped);
        server_asked = res->hint.retry_after_given && !capped;
        manager_log_retry_after(&res->hint, capped, "retry.max", m->config->retry_max_sec);
        format_delay(delay, delay_text, sizeof(delay_text));

        if (m->oneshot) {
                log_struct(LOG_ERR, r, FLEETID_MESSAGE_ENROLLMENT_FAILED,
                           "enrollment failed: %s [%s] (attempt %u); not retrying (--oneshot)",
                           diag_text(&res->diag, r), attempt_outcome_to_string(res->outcome), m->failures);
                m->exit_code = EXIT_TEMPFAIL;
                manager_set_state(m,
                                  res->tpm_replaced    ? DAEMON_STATE_TPM_REPLACED
                                  : res->birth_expired ? DAEMON_STATE_BIRTH_EXPIRED
                                                       : DAEMON_STATE_FAILED,
                                  diag_text(&res->diag, r));
                (void) sd_event_exit(m->event, EXIT_TEMPFAIL);
                return;
        }

        manager_reset_enroll_failed(m, diag_text(&res->diag, r));
        log_struct(LOG_ERR, r, FLEETID_MESSAGE_ENROLLMENT_FAILED,
                   "enrollment failed: %s [%s] (attempt %u); retrying in %s%s", diag_text(&res->diag, r),
                   attempt_outcome_to_string(res->outcome), m->failures, delay_text,
                   server_asked ? " as the server asked" : "");
        m->next_attempt = (uint64_t) time(NULL) + delay;
        manager_set_state(m, DAEMON_STATE_WAITING_RETRY, diag_text(&res->diag, r));
        manager_event(m, HOOK_EVENT_ENROLLMENT_FAILED, NULL);
        (void) manager_schedule_attempt(m, delay);
}

static int enroll_run(Manager *m, sd_event_source *timer) {
        int r;

        m->next_attempt = 0;
        r = manager_clock_ready(m, false);
        if (r <= 0) {
                if (m->oneshot) {
                        log_error("not enrolling with an untrustworthy clock (--oneshot: not waiting)");
                        return sd_event_exit(m->event, EXIT_TEMPFAIL);
                }
                /* r < 0: cannot even watch the clock; look again later. */
                return r < 0 ? manager_schedule_attempt(m, m->config->retry_initial_sec) : 0;
        }
        m->last_attempt = (uint64_t) time(NULL);
        return manager_run_worker(m, WORKER_ENROLL, timer, enroll_work, enroll_done);
}

void manager_log_retry_after(const EstRetryHint *h, bool capped, const char *cap_name, uint64_t cap) {
        if (h->retry_after.invalid)
                log_warning("the EST server sent a Retry-After that is neither seconds nor an HTTP-date "
                            "(\"%s\"); ignored, the retry follows fleetid's own schedule",
                            h->retry_after.text);
        else if (capped)
                log_notice("the EST server asked to wait longer than %s (Retry-After: %s); waiting %llus, the "
                           "longest %s allows",
                           cap_name, h->retry_after.text, (unsigned long long) cap, cap_name);
}

static int on_attempt(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->worker) /* another operation runs: this attempt follows it */
                return manager_run_worker(m, WORKER_ENROLL, s, NULL, NULL);
        if (m->state == DAEMON_STATE_BIRTH_EXPIRED)
                log_info("the birth certificate had expired; retry.max has passed, trying again");
        return enroll_run(m, s);
}

int manager_schedule_attempt(Manager *m, uint64_t delay_sec) {
        struct timespec ts;
        uint64_t now_usec;
        int r;

        m->retry_timer = sd_event_source_disable_unref(m->retry_timer);
        /* CLOCK_BOOTTIME keeps counting across suspend, so a retry due during a
         * suspend happens right after resume. The delay counts from now, not from
         * the start of this event loop iteration (the base of
         * sd_event_add_time_relative()): an attempt can last up to est.timeout, and
         * a server's Retry-After counts from its answer. */
        if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
                return log_error_errno(errno, "cannot read CLOCK_BOOTTIME: %m");
        now_usec = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
        r = sd_event_add_time(m->event, &m->retry_timer, CLOCK_BOOTTIME, now_usec + delay_sec * 1000000ULL,
                              delay_sec > 60 ? 1000000ULL : 1000ULL, on_attempt, m);
        if (r < 0)
                return log_error_errno(r, "cannot schedule the next enrollment attempt: %m");
        (void) sd_event_source_set_description(m->retry_timer, "enroll-attempt");
        return 0;
}
