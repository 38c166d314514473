/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-renew-job.c: Renew() over D-Bus as a job of kind "renew"
 * (docs/dbus-api.md, "Renew"): the job follows the renewal attempt that
 * starts after it was created, to its end.
 *
 *   - Renew() asks for a renewal now (as SIGUSR1 does) and returns the job;
 *     a Renew() while a renew job is not finished returns that same job (as
 *     systemd merges a job into one of the same kind), without another
 *     attempt.
 *   - queued until the attempt starts (another operation may be running, or
 *     the clock is awaited), running while it runs.
 *   - done with the new chain when the renewal succeeded; a 202 from the CA
 *     is no failure: waiting-ca, RetryAfter the time fleetidd asks again, and
 *     the job follows the next attempts until one succeeds or fails; failed
 *     with the error of the attempt's outcome otherwise.
 *   - Cancel: queued, the request is withdrawn; running, the worker is
 *     killed (the stored identity stays as it is, as when fleetidd stops);
 *     waiting-ca, fleetidd stops waiting for the deferred answer (it forgets
 *     the deferred request). Either way, a certificate not yet due for
 *     renewal goes back to its schedule; one that is due is retried as
 *     after a failed renewal.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "common/log.h"
#include "crypto/ossl-util.h"
#include "fleetidd/bus-errors.h"
#include "fleetidd/manager-jobs.h"
#include "store/state-certs.h"

#define RENEW_JOB_KIND "renew"

static int renew_job_cancel(Job *j, void *userdata) {
        Manager *m = userdata;
        int r;

        switch (job_state(j)) {
        case JOB_QUEUED:
                /* Not started: withdrawn (manager_renew_pending() has nothing left to answer). */
                m->renew_answered = m->renew_requests;
                break;
        case JOB_RUNNING:
                if (!m->worker || worker_kind(m->worker) != WORKER_RENEW)
                        return -ESRCH;
                r = worker_kill(m->worker);
                if (r < 0)
                        return r;
                /* renew_done() sees the killed worker's result and acts on the cancel */
                m->renew_canceled = true;
                break;
        case JOB_WAITING_CA:
                /* The next attempt sends a new request, on the schedule of a renewal that is due. */
                manager_renew_back_to_schedule(m);
                break;
        default:
                break;
        }
        log_notice("renewal job %u canceled in state %s", job_id(j), job_state_to_string(job_state(j)));
        m->renew_job = NULL;
        m->renew_job_attached = false;
        return 0;
}

int manager_renew_job_request(Manager *m, uid_t owner, Job **ret) {
        Job *j;
        int r;

        j = manager_job_find_live(m, RENEW_JOB_KIND);
        if (j) {
                log_info("Renew by uid %u joins renewal job %u (%s)", (unsigned) owner, job_id(j),
                         job_state_to_string(job_state(j)));
                *ret = j;
                return 0;
        }
        /* A factory reset wipes the certificate a renewal would replace, and
         * the job would wait, queued, for a renewal point that the new
         * identity's schedule sets weeks later. */
        if (m->reset)
                return -ESHUTDOWN;
        if (!manager_has_renewable(m))
                return -ENOENT;
        r = manager_job_new(m, RENEW_JOB_KIND, owner, renew_job_cancel, m, &j);
        if (r < 0)
                return r;
        m->renew_job = j;
        m->renew_job_attached = false;
        (void) manager_renew_now(m);
        *ret = j;
        return 0;
}

void manager_renew_job_attempt_started(Manager *m) {
        if (!m->renew_job || !m->worker || worker_kind(m->worker) != WORKER_RENEW)
                return;
        m->renew_job_attached = true;
        (void) job_set_state(m->renew_job, JOB_RUNNING);
}

/* The D-Bus error of a failed attempt, from its outcome. */
static const char *outcome_error(AttemptOutcome o) {
        switch (o) {
        case ATTEMPT_REJECTED:
                return BUS_ERROR_ENROLL_REJECTED;
        case ATTEMPT_TRANSIENT:
                return BUS_ERROR_SERVER_UNREACHABLE;
        case ATTEMPT_IDENTITY_UNUSABLE:
                return BUS_ERROR_NOT_ENROLLED;
        case ATTEMPT_TPM_UNAVAILABLE:
                return BUS_ERROR_TPM_UNAVAILABLE;
        default:
                return SD_BUS_ERROR_FAILED;
        }
}

static void finish_done(Manager *m, Job *j) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = NULL;
        Diag d = {};
        int r;

        r = state_certs_load(m->store, STATE_OPERATIONAL_CERT, &chain, &d);
        if (r < 0) {
                char message[DIAG_MAX + 64];

                snprintf(message, sizeof(message), "renewed, but the new chain cannot be read back: %s",
                         diag_text(&d, r));
                (void) job_finish_error(j, SD_BUS_ERROR_FAILED, message);
                return;
        }
        (void) job_finish_chain(j, chain);
}

void manager_renew_job_attempt_done(Manager *m, const WorkerResult *res, uint64_t retry_delay_sec) {
        Job *j = m->renew_job;
        char message[DIAG_MAX + 64];

        if (!j || !m->renew_job_attached)
                return; /* no job, or the attempt began before it: the next one is its own */
        if (res->error >= 0) {
                m->renew_job = NULL;
                finish_done(m, j);
                return;
        }
        if (res->hint.http_status == 202 && res->outcome == ATTEMPT_TRANSIENT && retry_delay_sec > 0) {
                /* The CA deferred the request: the job waits for the answer. */
                job_set_retry_after(j, ((uint64_t) time(NULL) + retry_delay_sec) * 1000000ULL);
                (void) job_set_state(j, JOB_WAITING_CA);
                return;
        }
        m->renew_job = NULL;
        m->renew_job_attached = false;
        snprintf(message, sizeof(message), "renewal failed: %s [%s]", diag_text(&res->diag, res->error),
                 attempt_outcome_to_string(res->outcome));
        (void) job_finish_error(j, outcome_error(res->outcome), message);
}

void manager_renew_job_abandon(Manager *m, const char *bus_error_name, const char *message) {
        Job *j = TAKE_PTR(m->renew_job);

        m->renew_job_attached = false;
        if (j)
                (void) job_finish_error(j, bus_error_name, message);
}
