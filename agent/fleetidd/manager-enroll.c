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
#include "fleetidd/manager.h"
#include "util/timestamp.h"


static void format_delay(uint64_t s, char *buf, size_t size) {
        if (s < 120)
                snprintf(buf, size, "%llus", (unsigned long long) s);
        else if (s < 7200)
                snprintf(buf, size, "%llum", (unsigned long long) (s / 60));
        else
                snprintf(buf, size, "%lluh", (unsigned long long) (s / 3600));
}

static void enroll_done(Manager *m, WorkerResult *res) {
        char delay_text[32];
        uint64_t delay;
        bool server_asked, capped;
        int r = res->error;

        if (r >= 0) {
                m->enrolling_anew = false;
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
        return manager_run_worker(m, WORKER_ENROLL, timer, enroll_done);
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
                return manager_run_worker(m, WORKER_ENROLL, s, NULL);
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
