/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-sensors.c: the sensor broker: requests, their queue and jobs, the
 * sensor worker's answers, the records and the SensorCertificateDue timer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/evidence.h"
#include "broker/sensor-pending.h"
#include "broker/sensor-record.h"
#include "broker/sensor-request.h"
#include "common/log.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "fleetidd/bus-errors.h"
#include "fleetidd/bus-names.h"
#include "fleetidd/manager-jobs.h"
#include "fleetidd/manager-sensors.h"
#include "fleetidd/manager.h"
#include "fleetidd/sensor-worker.h"
#include "renew/schedule.h"
#include "util/backoff.h"
#include "util/timestamp.h"

/* A 202 without Retry-After is asked again after this long. */
#define SENSOR_RETRY_DEFAULT_SEC 60
/* SensorCertificateDue signals sent in one timer callback at most (the rest follow at once). */
#define SENSOR_DUE_BATCH 256

typedef enum SensorJobState {
        SENSOR_JOB_QUEUED,     /* waits for the sensor worker */
        SENSOR_JOB_ENROLLING,  /* in the worker */
        SENSOR_JOB_WAITING_CA, /* the CA deferred it (202): asked again at retry_at */
        _SENSOR_JOB_STATE_MAX,
} SensorJobState;

typedef struct SensorJob SensorJob;

static void sensor_job_cancel(Manager *m, SensorJob *j, const char *why);
static int on_job_cancel(Job *job, void *userdata);

struct SensorJob {
        SensorJob *next, *prev; /* all jobs */
        SensorJob *queue_next;  /* the FIFO of queued jobs */
        Manager *m;
        uint64_t id; /* the worker's request id */
        char sensor_id[SENSOR_ID_MAX + 1];
        uid_t owner;
        SensorJobState state;
        unsigned failures; /* busy (503, 429) or unreachable answers in a row */
        bool persisted;    /* a file in SENSOR_PENDING_DIR */
        uint8_t *csr;
        size_t csr_len;
        char birth[SHA256_TEXT_SIZE]; /* the evidence's birth key, "" if none (sensor-record.h) */
        uint64_t retry_at;            /* WAITING_CA: unix seconds */
        sd_event_source *retry_timer;
        Job *job; /* its D-Bus job (manager-jobs.h); NULL once canceled through it */
};

/* One tracked sensor: its record, and whether SensorCertificateDue went out for it. */
typedef struct Tracked {
        SensorRecord rec;
        int64_t due; /* unix seconds, 0 if none (pending) */
        bool announced;
} Tracked;

struct SensorBroker {
        SensorPolicy policy;
        STACK_OF(X509) *mfg_cas; /* broker.sensor_manufacturer_ca, NULL if none */
        char unusable[DIAG_MAX]; /* why requests are refused, "" if they are not */
        SensorChallenges *challenges;
        StateStore *records; /* SENSOR_RECORDS_DIR */
        StateStore *pending; /* SENSOR_PENDING_DIR */
        Tracked *tracked;    /* sorted by id */
        unsigned n_tracked, cap_tracked;
        unsigned n_unreadable; /* record files that could not be read at the start: they count to the limit */
        sd_event_source *due_timer;
        SensorWorker *worker;
        bool identity_busy; /* the gateway's own enrollment or renewal runs */
        SensorJob *jobs;
        unsigned n_jobs;
        SensorJob *queue_head, *queue_tail;
        uint64_t next_id;
};

static const char *const job_state_names[_SENSOR_JOB_STATE_MAX] = {
        [SENSOR_JOB_QUEUED] = "queued",
        [SENSOR_JOB_ENROLLING] = "running",
        [SENSOR_JOB_WAITING_CA] = "waiting-ca",
};
/* Why Cancel() and ForgetSensor are refused while the request is in the worker. */
#define SENSOR_CANCEL_REFUSED                                                                            \
        "the sensor's CSR is with the EST server (POST /simpleenroll), which may issue its certificate " \
        "whatever fleetidd does; the job runs to its end (at most broker.request_timeout) and keeps "    \
        "what the CA answers"

static const JobState job_states[_SENSOR_JOB_STATE_MAX] = {
        [SENSOR_JOB_QUEUED] = JOB_QUEUED,
        [SENSOR_JOB_ENROLLING] = JOB_RUNNING,
        [SENSOR_JOB_WAITING_CA] = JOB_WAITING_CA,
};

/* The job's state (and RetryAfter, µs since the epoch) on the bus. */
static void job_publish_state(SensorJob *j) {
        /* A job is created queued; a deferred request queued again stays
         * waiting-ca (its RetryAfter has come) until it runs. */
        if (!j->job || j->state == SENSOR_JOB_QUEUED)
                return;
        job_refuse_cancel(j->job, j->state == SENSOR_JOB_ENROLLING ? SENSOR_CANCEL_REFUSED : NULL);
        if (j->state != SENSOR_JOB_WAITING_CA)
                job_set_retry_after(j->job, 0);
        (void) job_set_state(j->job, job_states[j->state]);
        if (j->state == SENSOR_JOB_WAITING_CA)
                job_set_retry_after(j->job, j->retry_at * 1000000ULL);
}

static uint64_t now_usec(Manager *m) {
        uint64_t t = 0;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &t);
        return t;
}

/* ---- the tracked sensors ---- */

static RenewPolicy sensor_renew_policy(const Manager *m) {
        return (RenewPolicy) {
                .share_percent = m->config->renew_share_percent,
                .jitter_percent = m->config->renew_jitter_percent,
                .retry_initial = m->config->retry_initial_sec,
                .retry_max = m->config->renew_retry_max_sec,
        };
}

/* The renewal point of an issued record, by the gateway's renew policy; the
 * jitter is drawn from the serial, so it is the same after a restart. */
static int64_t record_due(const Manager *m, const SensorRecord *rec) {
        RenewPolicy p = sensor_renew_policy(m);
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        if (rec->state != SENSOR_ISSUED || rec->not_after == 0)
                return 0;
        for (const char *s = rec->serial; *s; s++)
                h = (h ^ (uint8_t) *s) * 1099511628211ULL;
        return renew_due((time_t) rec->not_before, (time_t) rec->not_after, &p, h);
}

/* The index of id in the sorted table, or where it would go (*ret_found false). */
static unsigned tracked_find(const SensorBroker *b, const char *id, bool *ret_found) {
        unsigned lo = 0, hi = b->n_tracked;

        while (lo < hi) {
                unsigned mid = lo + (hi - lo) / 2;
                int c = strcmp(b->tracked[mid].rec.id, id);

                if (c == 0) {
                        *ret_found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = false;
        return lo;
}

static Tracked *tracked_get(SensorBroker *b, const char *id) {
        bool found;
        unsigned i = tracked_find(b, id, &found);

        return found ? &b->tracked[i] : NULL;
}

static int tracked_put(Manager *m, const SensorRecord *rec) {
        SensorBroker *b = m->sensors;
        bool found;
        unsigned i = tracked_find(b, rec->id, &found);

        if (!found) {
                if (b->n_tracked == b->cap_tracked) {
                        unsigned cap = b->cap_tracked ? b->cap_tracked * 2 : 64;
                        Tracked *t = reallocarray(b->tracked, cap, sizeof(Tracked));

                        if (!t)
                                return -ENOMEM;
                        b->tracked = t;
                        b->cap_tracked = cap;
                }
                memmove(&b->tracked[i + 1], &b->tracked[i], (b->n_tracked - i) * sizeof(Tracked));
                b->n_tracked++;
        }
        b->tracked[i] = (Tracked) { .rec = *rec, .due = record_due(m, rec) };
        return 0;
}

static void tracked_remove(SensorBroker *b, const char *id) {
        bool found;
        unsigned i = tracked_find(b, id, &found);

        if (!found)
                return;
        memmove(&b->tracked[i], &b->tracked[i + 1], (b->n_tracked - i - 1) * sizeof(Tracked));
        b->n_tracked--;
}

/* ---- SensorCertificateDue: one timer, at the earliest renewal point not announced ---- */

static int on_due(sd_event_source *s, uint64_t usec, void *userdata);

static void due_arm(Manager *m) {
        SensorBroker *b = m->sensors;
        int64_t next = 0;
        int r;

        for (unsigned i = 0; i < b->n_tracked; i++) {
                Tracked *t = &b->tracked[i];

                if (t->due > 0 && !t->announced && (next == 0 || t->due < next))
                        next = t->due;
        }
        if (next == 0) {
                if (b->due_timer)
                        (void) sd_event_source_set_enabled(b->due_timer, SD_EVENT_OFF);
                return;
        }
        uint64_t at = (uint64_t) next * 1000000ULL;
        if (!b->due_timer) {
                r = sd_event_add_time(m->event, &b->due_timer, CLOCK_REALTIME, at, 1000000ULL, on_due, m);
                if (r >= 0)
                        (void) sd_event_source_set_description(b->due_timer, "sensor-due");
        } else {
                r = sd_event_source_set_time(b->due_timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(b->due_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(
                        r, "cannot arm the SensorCertificateDue timer: %m; no sensor renewal is announced");
}

static int on_due(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        SensorBroker *b = m->sensors;
        int64_t now = (int64_t) time(NULL);
        Tracked *first = NULL;
        unsigned sent = 0;

        for (unsigned i = 0; i < b->n_tracked && sent < SENSOR_DUE_BATCH; i++) {
                Tracked *t = &b->tracked[i];
                int r;

                if (t->due == 0 || t->announced || t->due > now)
                        continue;
                t->announced = true;
                if (sent++ == 0)
                        first = t;
                log_debug("sensor '%s': its certificate (serial %s) is due for renewal, it expires at %" PRIu64,
                          t->rec.id, t->rec.serial, t->rec.not_after);
                if (!m->bus)
                        continue;
                r = sd_bus_emit_signal(m->bus, BUS_PATH, BUS_INTERFACE, "SensorCertificateDue", "st",
                                       t->rec.id, t->rec.not_after * 1000000ULL);
                if (r < 0)
                        log_debug("D-Bus: cannot emit SensorCertificateDue for '%s': %s", t->rec.id,
                                  strerror(-r));
        }
        if (sent == 1)
                log_info("sensor '%s': its certificate (serial %s) is due for renewal, it expires at %" PRIu64,
                         first->rec.id, first->rec.serial, first->rec.not_after);
        else if (sent > 1)
                log_info("%u sensor certificates are due for renewal (SensorCertificateDue), '%s' first",
                         sent, first->rec.id);
        due_arm(m);
        return 0;
}

/* ---- jobs ---- */

static SensorJob *job_find_sensor(SensorBroker *b, const char *sensor_id) {
        for (SensorJob *j = b->jobs; j; j = j->next)
                if (strcmp(j->sensor_id, sensor_id) == 0)
                        return j;
        return NULL;
}

static void queue_push(SensorBroker *b, SensorJob *j) {
        j->state = SENSOR_JOB_QUEUED;
        j->queue_next = NULL;
        if (b->queue_tail)
                b->queue_tail->queue_next = j;
        else
                b->queue_head = j;
        b->queue_tail = j;
}

/* First in line: a request the worker never read goes before the rest. */
static void queue_push_front(SensorBroker *b, SensorJob *j) {
        j->state = SENSOR_JOB_QUEUED;
        j->queue_next = b->queue_head;
        b->queue_head = j;
        if (!b->queue_tail)
                b->queue_tail = j;
}

static void queue_remove(SensorBroker *b, SensorJob *j) {
        SensorJob **p = &b->queue_head, *prev = NULL;

        for (; *p; prev = *p, p = &(*p)->queue_next)
                if (*p == j) {
                        *p = j->queue_next;
                        if (b->queue_tail == j)
                                b->queue_tail = prev;
                        j->queue_next = NULL;
                        return;
                }
}

static void pending_forget(SensorBroker *b, SensorJob *j) {
        Diag d = {};
        int r;

        if (!j->persisted || !b->pending)
                return;
        r = state_store_remove(b->pending, j->sensor_id, &d);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r,
                                  "sensor '%s': cannot remove its deferred request: %s; it is asked again "
                                  "after the next restart",
                                  j->sensor_id, diag_text(&d, r));
        j->persisted = false;
}

/* Unlinks and frees the job (its D-Bus object was finished by the caller). */
static void job_free(SensorBroker *b, SensorJob *j) {
        queue_remove(b, j);
        if (j->prev)
                j->prev->next = j->next;
        else
                b->jobs = j->next;
        if (j->next)
                j->next->prev = j->prev;
        b->n_jobs--;
        sd_event_source_disable_unref(j->retry_timer);
        free(j->csr);
        free(j);
}

/* The job ends: success with the chain, or the D-Bus error and its message. */
static void job_end(Manager *m, SensorJob *j, STACK_OF(X509) *chain, const char *error, const char *message) {
        SensorBroker *b = m->sensors;

        pending_forget(b, j);
        if (error)
                log_info("sensor '%s': request of uid %u failed: %s: %s", j->sensor_id, (unsigned) j->owner,
                         strrchr(error, '.') + 1, message);
        if (j->job) {
                int r = error ? job_finish_error(j->job, error, message) : job_finish_chain(j->job, chain);

                if (r < 0 && r != -EINVAL)
                        log_warning_errno(r, "sensor '%s': cannot hand the result to its job: %m",
                                          j->sensor_id);
        }
        job_free(b, j);
}

static SensorJob *job_new(Manager *m, const char *sensor_id, uid_t owner, uint8_t *csr, size_t csr_len) {
        SensorBroker *b = m->sensors;
        SensorJob *j = calloc(1, sizeof(SensorJob));

        if (!j)
                return NULL;
        j->m = m;
        j->id = ++b->next_id;
        snprintf(j->sensor_id, sizeof(j->sensor_id), "%s", sensor_id);
        j->owner = owner;
        j->csr = csr;
        j->csr_len = csr_len;
        j->next = b->jobs;
        if (b->jobs)
                b->jobs->prev = j;
        b->jobs = j;
        b->n_jobs++;
        return j;
}

/* The birth binding (sensor-record.h): a sensor keeps the birth key it was
 * first enrolled with, and one birth key vouches for one sensor_id, recorded
 * or in a request not finished. Else a sensor whose birth key is genuine (or
 * was taken out of one) could get certificates for other sensors' ids, and
 * replace their records. -EPERM with the Diag saying which. */
static int birth_binding_check(SensorBroker *b, const char *id, const char *birth, Diag *d) {
        Tracked *t = tracked_get(b, id);

        if (t && t->rec.birth[0] && strcmp(t->rec.birth, birth) != 0)
                return diag_set(
                        d, -EPERM,
                        "sensor '%s' was enrolled with the birth key %s, the evidence shows %s; a sensor "
                        "keeps the birth key it was first enrolled with (ForgetSensor to enroll it anew)",
                        id, t->rec.birth, birth);
        for (unsigned i = 0; i < b->n_tracked; i++)
                if (strcmp(b->tracked[i].rec.birth, birth) == 0 && strcmp(b->tracked[i].rec.id, id) != 0)
                        return diag_set(d, -EPERM,
                                        "the evidence's birth key (%s) vouches for sensor '%s' already; one "
                                        "birth key, one sensor_id",
                                        birth, b->tracked[i].rec.id);
        for (SensorJob *j = b->jobs; j; j = j->next)
                if (strcmp(j->birth, birth) == 0 && strcmp(j->sensor_id, id) != 0)
                        return diag_set(d, -EPERM,
                                        "the evidence's birth key (%s) vouches for sensor '%s' in a request not "
                                        "finished; one birth key, one sensor_id",
                                        birth, j->sensor_id);
        return 0;
}

/* ---- the sensor worker ---- */

static SensorJob *job_by_id(SensorBroker *b, uint64_t id) {
        for (SensorJob *j = b->jobs; j; j = j->next)
                if (j->id == id)
                        return j;
        return NULL;
}

/* broker.request_timeout; by default: each request makes one POST bounded by
 * est.timeout; the first of a worker also the TLS handshake (a TPM
 * signature), the identity and /cacerts. */
static uint64_t request_timeout_usec(const Config *c) {
        if (c->broker_request_timeout_sec > 0)
                return (uint64_t) c->broker_request_timeout_sec * 1000000ULL;
        return ((uint64_t) c->est_timeout_sec * 3 + 60) * 1000000ULL;
}

static void on_answer(void *userdata, SensorEnrollAnswer *a);
static void on_gone(void *userdata, uint64_t in_flight, const Diag *why);
static void answer_unavailable(Manager *m, SensorJob *j, const SensorEnrollAnswer *a);

void manager_sensors_kick(Manager *m) {
        SensorBroker *b = m->sensors;
        SensorJob *j;
        int r;

        if (!b || m->stopping)
                return;
        b->identity_busy = m->worker && (worker_kind(m->worker) == WORKER_ENROLL ||
                                         worker_kind(m->worker) == WORKER_RENEW);
        if (!b->queue_head || b->identity_busy)
                return;
        if (b->worker && !sensor_worker_usable(b->worker))
                return; /* retired or dying: its end brings us back here */
        if (!b->worker) {
                r = sensor_worker_start(m->event, m->config, request_timeout_usec(m->config), on_answer,
                                        on_gone, m, &b->worker);
                if (r < 0) {
                        SensorEnrollAnswer a = { .failure = SENSOR_FAILURE_LOCAL };

                        /* Every request waiting, as after no answer: asked again
                         * after a backoff, at most broker.retry_limit times (a
                         * fork that fails for the moment; a request the CA holds
                         * keeps its file). Nothing else would come back here. */
                        diag_set(&a.diag, r, "%s", strerror(-r));
                        while ((j = b->queue_head)) {
                                queue_remove(b, j);
                                answer_unavailable(m, j, &a);
                        }
                        return;
                }
        }
        if (sensor_worker_busy(b->worker))
                return;
        j = b->queue_head;
        r = sensor_worker_submit(b->worker, j->id, j->csr, j->csr_len);
        if (r < 0) {
                log_warning_errno(
                        r, "cannot hand sensor '%s''s request to the sensor worker: %m; starting another",
                        j->sensor_id);
                sensor_worker_retire(b->worker);
                return;
        }
        queue_remove(b, j);
        j->state = SENSOR_JOB_ENROLLING;
        job_publish_state(j);
}

void manager_sensors_identity_busy(Manager *m) {
        SensorBroker *b = m->sensors;

        if (!b)
                return;
        b->identity_busy = true;
        if (b->worker && sensor_worker_usable(b->worker)) {
                log_info("the gateway's own enrollment or renewal starts: the sensor worker ends after its request "
                         "in flight, and sensor requests wait for the identity in force after it");
                sensor_worker_retire(b->worker);
        }
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        SensorJob *j = userdata;
        Manager *m = j->m;

        j->retry_timer = sd_event_source_disable_unref(j->retry_timer);
        log_info("sensor '%s': sending the request to the EST server again", j->sensor_id);
        queue_push(m->sensors, j);
        job_publish_state(j);
        manager_sensors_kick(m);
        return 0;
}

/* WAITING_CA until retry_at (unix seconds). */
static int job_wait_ca(Manager *m, SensorJob *j, uint64_t retry_at) {
        uint64_t now = (uint64_t) time(NULL);
        int r;

        j->state = SENSOR_JOB_WAITING_CA;
        j->retry_at = retry_at;
        j->retry_timer = sd_event_source_disable_unref(j->retry_timer);
        r = sd_event_add_time_relative(m->event, &j->retry_timer, CLOCK_MONOTONIC,
                                       (retry_at > now ? retry_at - now : 0) * 1000000ULL, 1000000ULL,
                                       on_retry, j);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(j->retry_timer, "sensor-retry");
        job_publish_state(j);
        return 0;
}

static void answer_deferred(Manager *m, SensorJob *j, const SensorEnrollAnswer *a) {
        SensorBroker *b = m->sensors;
        uint64_t delay = a->retry_after_given ? a->retry_after_sec : SENSOR_RETRY_DEFAULT_SEC;
        SensorPending p = {
                .uid = j->owner,
                .retry_at = (uint64_t) time(NULL) + (delay ? delay : 1),
                .csr = j->csr,
                .csr_len = j->csr_len,
        };
        Diag d = {};
        int r;

        j->failures = 0; /* the server answered, and holds the request */
        snprintf(p.id, sizeof(p.id), "%s", j->sensor_id);
        memcpy(p.birth, j->birth, sizeof(p.birth));
        r = b->pending ? sensor_pending_save(b->pending, &p, &d) : diag_set(&d, -ENOENT, "no directory");
        if (r < 0)
                log_warning_errno(r,
                                  "sensor '%s': cannot keep the deferred request in the state directory: %s; it "
                                  "is asked again, %s",
                                  j->sensor_id, diag_text(&d, r),
                                  j->persisted ? "and after a restart by its earlier copy (same request)"
                                               : "but not after a restart");
        /* A copy saved before is the same request (only its retry time is
         * older): kept, it is removed when the job ends, as it must be. */
        if (r >= 0)
                j->persisted = true;
        log_info("sensor '%s': the CA deferred the request (HTTP 202); asking again in %" PRIu64 "s%s",
                 j->sensor_id, p.retry_at - (uint64_t) time(NULL),
                 a->retry_after_given ? " (Retry-After)" : "");
        r = job_wait_ca(m, j, p.retry_at);
        if (r < 0)
                job_end(m, j, NULL, BUS_ERROR_SERVER_UNREACHABLE,
                        "the CA deferred the request, and fleetidd cannot arm the timer to ask again");
}

/* 503/429 (the server is overloaded) or no answer at all (connection, TLS,
 * timeout): the request is asked again after a bounded backoff, the server's
 * Retry-After winning up to retry.max (as for the gateway's own enrollment),
 * at most broker.retry_limit times in a row; then the job fails. Such a
 * request is not kept over a restart: the CA holds nothing for it. */
static void answer_unavailable(Manager *m, SensorJob *j, const SensorEnrollAnswer *a) {
        const Config *c = m->config;
        const char *what = a->failure == SENSOR_FAILURE_LOCAL  ? "the sensor worker cannot start"
                           : a->failure == SENSOR_FAILURE_BUSY ? "the EST server is busy"
                           : a->http_status >= 500             ? "the EST server failed"
                                                               : "no answer from the EST server";
        char msg[DIAG_MAX + 256];
        bool capped = false;
        uint64_t delay;
        int r;

        j->failures++;
        if (j->failures > c->broker_retry_limit) {
                snprintf(msg, sizeof(msg), "%s: %s; given up after %u attempt%s (broker.retry_limit = %u)",
                         what, a->diag.text, j->failures, j->failures == 1 ? "" : "s", c->broker_retry_limit);
                job_end(m, j, NULL, BUS_ERROR_SERVER_UNREACHABLE, msg);
                return;
        }
        delay = backoff_next(j->failures, c->retry_initial_sec, c->retry_max_sec, a->retry_after_given,
                             a->retry_after_sec, manager_random(), &capped);
        log_info("sensor '%s': %s: %s; asking again in %" PRIu64 "s%s (retry %u of %u, broker.retry_limit)",
                 j->sensor_id, what, a->diag.text, delay,
                 !a->retry_after_given ? ""
                 : capped              ? " (its Retry-After cut to retry.max)"
                                       : " (Retry-After)",
                 j->failures, c->broker_retry_limit);
        r = job_wait_ca(m, j, (uint64_t) time(NULL) + delay);
        if (r < 0)
                job_end(m, j, NULL, BUS_ERROR_SERVER_UNREACHABLE,
                        "the EST server did not take the request, and fleetidd cannot arm the timer to ask "
                        "again");
}

static void answer_issued(Manager *m, SensorJob *j, SensorEnrollAnswer *a) {
        SensorBroker *b = m->sensors;
        X509 *leaf = sk_X509_value(a->chain, 0);
        SensorRecord rec;
        char msg[DIAG_MAX], until[TIMESTAMP_MAX];
        Diag d = {};
        int r;

        r = sensor_record_from_cert(j->sensor_id, leaf, &rec, &d);
        if (r >= 0) {
                /* The binding is the first enrollment's: a request that showed
                 * no evidence (none asked for then) changes nothing of it. */
                Tracked *t = tracked_get(b, j->sensor_id);

                memcpy(rec.birth, j->birth[0] || !t ? j->birth : t->rec.birth, sizeof(rec.birth));
        }
        if (r >= 0)
                r = b->records ? sensor_record_save(b->records, &rec, m->config->broker_max_sensors, &d)
                               : diag_set(&d, -ENOENT, "the sensor records' directory cannot be used");
        if (r >= 0)
                r = tracked_put(m, &rec);
        if (r < 0) {
                log_error_errno(r,
                                "sensor '%s': a certificate was issued but cannot be recorded: %s; the request "
                                "fails",
                                j->sensor_id, diag_text(&d, r));
                snprintf(msg, sizeof(msg), "the certificate was issued but cannot be recorded: %s",
                         diag_text(&d, r));
                job_end(m, j, NULL, r == -EDQUOT ? BUS_ERROR_POLICY_VIOLATION : SD_BUS_ERROR_FAILED, msg);
                return;
        }
        log_info("sensor '%s': certificate issued for uid %u, serial %s, valid until %s", j->sensor_id,
                 (unsigned) j->owner, rec.serial, timestamp_utc((time_t) rec.not_after, until));
        due_arm(m);
        job_end(m, j, a->chain, NULL, NULL);
}

static void on_answer(void *userdata, SensorEnrollAnswer *a) {
        Manager *m = userdata;
        SensorBroker *b = m->sensors;
        SensorJob *j = job_by_id(b, a->id);

        if (!j) /* cannot happen: a job in the worker is neither canceled nor forgotten */
                log_warning("the sensor worker answered request %" PRIu64 ", which no job waits for%s", a->id,
                            a->failure == SENSOR_FAILURE_NONE
                                    ? " (the CA issued a certificate that is not recorded)"
                                    : "");
        else
                switch (a->failure) {
                case SENSOR_FAILURE_NONE:
                        answer_issued(m, j, a);
                        break;
                case SENSOR_FAILURE_DEFERRED:
                        answer_deferred(m, j, a);
                        break;
                case SENSOR_FAILURE_REJECTED:
                        if (a->http_status == 401 || a->http_status == 403) {
                                char msg[DIAG_MAX + 160];

                                snprintf(msg, sizeof(msg),
                                         "%s (the EST server must accept the gateway's operational certificate "
                                         "as a registration authority, e.g. by its EKU id-kp-cmcRA)",
                                         a->diag.text);
                                job_end(m, j, NULL, BUS_ERROR_ENROLL_REJECTED, msg);
                        } else
                                job_end(m, j, NULL, BUS_ERROR_ENROLL_REJECTED, a->diag.text);
                        break;
                case SENSOR_FAILURE_NOT_ENROLLED:
                        job_end(m, j, NULL, BUS_ERROR_NOT_ENROLLED, a->diag.text);
                        break;
                case SENSOR_FAILURE_BUSY:
                case SENSOR_FAILURE_UNREACHABLE:
                        answer_unavailable(m, j, a);
                        break;
                case SENSOR_FAILURE_TPM:
                        job_end(m, j, NULL, BUS_ERROR_TPM_UNAVAILABLE, a->diag.text);
                        break;
                case SENSOR_FAILURE_LOCAL:
                        job_end(m, j, NULL, SD_BUS_ERROR_FAILED, a->diag.text);
                        break;
                default:
                        job_end(m, j, NULL, BUS_ERROR_SERVER_UNREACHABLE, a->diag.text);
                        break;
                }
        manager_sensors_kick(m);
}

static void on_gone(void *userdata, uint64_t in_flight, const Diag *why) {
        Manager *m = userdata;
        SensorBroker *b = m->sensors;
        SensorJob *j = in_flight ? job_by_id(b, in_flight) : NULL;

        log_debug("sensor worker ended: %s", why->text);
        b->worker = sensor_worker_free(b->worker);
        if (j && why->error == -EAGAIN) {
                log_info("sensor '%s': the sensor worker ended idle as its request arrived; the next one "
                         "makes it",
                         j->sensor_id);
                queue_push_front(b, j);
                if (j->job)
                        job_refuse_cancel(j->job, NULL); /* not with the EST server any more */
        } else if (j)
                job_end(m, j, NULL, BUS_ERROR_SERVER_UNREACHABLE, why->text);
        manager_sensors_kick(m);
}

/* ---- the methods ---- */

/* A sensor_id argument: InvalidArgs naming what is wrong (sd-bus strings hold no NUL). */
static int read_sensor_id(sd_bus_message *msg, const char **ret, sd_bus_error *error) {
        Diag d = {};
        int r;

        r = sd_bus_message_read(msg, "s", ret);
        if (r < 0)
                return r;
        r = sensor_id_check_string(*ret, &d);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "sensor_id: %s", diag_text(&d, r));
        return 0;
}

/* Whether the broker cannot serve a call now (error set). There is no
 * broker while a factory reset wipes the state (manager_sensors_reset()
 * until the wipe is done). */
static bool broker_refuses(SensorBroker *b, sd_bus_error *error) {
        if (!b) {
                sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                  "the sensor broker is not running: a factory reset is wiping the state; it "
                                  "starts again when the wipe is done");
                return true;
        }
        if (b->unusable[0] == '\0')
                return false;
        sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "the sensor broker is off: %s", b->unusable);
        return true;
}

static int reply_bytes(sd_bus_message *msg, const void *p, size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', p, n);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

/* The start of a call on a sensor: its id read and checked, the broker usable.
 * > 0 to go on; else the error is set (or r < 0). */
static int sensor_call_begin(SensorBroker *b, sd_bus_message *msg, const char **ret_id, sd_bus_error *error) {
        int r;

        r = read_sensor_id(msg, ret_id, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;
        if (broker_refuses(b, error))
                return -EIO;
        return 1;
}

int method_get_sensor_challenge(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        SensorBroker *b = m->sensors;
        uint8_t nonce[SENSOR_CHALLENGE_NONCE_SIZE];
        const char *id;
        Diag d = {};
        int r;

        r = sensor_call_begin(b, msg, &id, error);
        if (r <= 0)
                return r;
        r = sensor_challenges_issue(b->challenges, id, now_usec(m), nonce, &d);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY, "%s", diag_text(&d, r));
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "%s", diag_text(&d, r));
        r = reply_bytes(msg, nonce, sizeof(nonce));
        explicit_bzero(nonce, sizeof(nonce));
        return r;
}

static const char *verdict_error(SensorVerdict v) {
        switch (v) {
        case SENSOR_INVALID_ARGS:
                return SD_BUS_ERROR_INVALID_ARGS;
        case SENSOR_INVALID_CSR:
                return BUS_ERROR_INVALID_CSR;
        case SENSOR_POLICY_VIOLATION:
                return BUS_ERROR_POLICY_VIOLATION;
        case SENSOR_INVALID_EVIDENCE:
                return BUS_ERROR_INVALID_EVIDENCE;
        default:
                return SD_BUS_ERROR_FAILED;
        }
}

/* options a{sv}: none is defined yet, so any key is refused by name. */
static int read_options(sd_bus_message *msg, sd_bus_error *error) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(msg, 'e', "sv");
        if (r < 0)
                return r;
        if (r > 0) {
                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                return sd_bus_error_setf(
                        error, SD_BUS_ERROR_INVALID_ARGS,
                        "options: unknown option '%s' (RequestSensorCertificate knows none yet)", key);
        }
        return sd_bus_message_exit_container(msg);
}

int method_request_sensor_certificate(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        SensorBroker *b = m->sensors;
        _cleanup_free_ uint8_t *csr_copy = NULL;
        const void *csr = NULL, *evidence = NULL;
        size_t csr_len = 0, evidence_len = 0;
        const char *path;
        SensorVerdict v;
        const char *id;
        SensorJob *j;
        char birth[SHA256_TEXT_SIZE] = "";
        Diag d = {};
        uid_t uid;
        int r;

        r = read_sensor_id(msg, &id, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;
        r = sd_bus_message_read_array(msg, 'y', &csr, &csr_len);
        if (r >= 0)
                r = sd_bus_message_read_array(msg, 'y', &evidence, &evidence_len);
        if (r < 0)
                return r;
        r = read_options(msg, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;
        if (broker_refuses(b, error))
                return -EIO;
        if (manager_identity_valid_until(m, time(NULL)) == 0)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_ENROLLED,
                                         "the gateway has no valid operational certificate to enroll sensor '%s' "
                                         "with; try again once it is enrolled (property Enrolled)",
                                         id);
        j = job_find_sensor(b, id);
        if (j)
                return sd_bus_error_setf(
                        error, BUS_ERROR_BUSY,
                        "sensor '%s' has a request in progress (%s); wait for its end or cancel it", id,
                        job_state_names[j->state]);
        if (b->n_jobs >= m->config->broker_max_pending)
                return sd_bus_error_setf(
                        error, BUS_ERROR_BUSY,
                        "%u sensor requests are pending, the limit (broker.max_pending); try again "
                        "when one has ended",
                        b->n_jobs);

        SensorChecks checks = {
                .policy = &b->policy,
                .manufacturer_cas = b->mfg_cas,
                .challenges = b->challenges,
                .now_usec = now_usec(m),
                .now = time(NULL),
        };
        SensorRequest req = {
                .sensor_id = id, .csr = csr, .csr_len = csr_len, .evidence = evidence, .evidence_len = evidence_len
        };
        v = sensor_request_check(&checks, &req, NULL, &d);
        if (v != SENSOR_ACCEPTED) {
                log_info("sensor '%s': request refused (%s): %s", id, sensor_verdict_to_string(v),
                         diag_text(&d, -EINVAL));
                return sd_bus_error_setf(error, verdict_error(v), "%s", diag_text(&d, -EINVAL));
        }
        /* Counted as sensor_record_save() counts: every record file, read or not. */
        if (!tracked_get(b, id) && b->n_tracked + b->n_unreadable >= m->config->broker_max_sensors)
                return sd_bus_error_setf(error, BUS_ERROR_POLICY_VIOLATION,
                                         "%u sensors are tracked, the limit (broker.max_sensors); forget one "
                                         "(ForgetSensor) before adding sensor '%s'",
                                         b->n_tracked + b->n_unreadable, id);
        if (b->mfg_cas && sk_X509_num(b->mfg_cas) > 0) {
                r = evidence_birth_fingerprint(evidence, evidence_len, birth, &d);
                if (r >= 0)
                        r = birth_binding_check(b, id, birth, &d);
                if (r < 0) {
                        log_info("sensor '%s': request refused (policy-violation): %s", id, diag_text(&d, r));
                        return sd_bus_error_setf(error, BUS_ERROR_POLICY_VIOLATION, "%s", diag_text(&d, r));
                }
        }
        r = manager_bus_caller(m, msg, &uid);
        if (r < 0)
                return r;
        csr_copy = malloc(csr_len);
        if (!csr_copy)
                return -ENOMEM;
        memcpy(csr_copy, csr, csr_len);
        j = job_new(m, id, uid, csr_copy, csr_len);
        if (!j)
                return -ENOMEM;
        TAKE_PTR(csr_copy);
        memcpy(j->birth, birth, sizeof(j->birth));
        r = manager_job_new(m, "sensor", uid, on_job_cancel, j, &j->job);
        if (r < 0) {
                job_free(b, j);
                if (r == -EBUSY)
                        return sd_bus_error_setf(
                                error, BUS_ERROR_BUSY,
                                "too many jobs are not finished; try again when one has ended");
                return r;
        }
        path = job_path(j->job);
        queue_push(b, j);
        log_info("sensor '%s': request of uid %u accepted as %s", id, (unsigned) uid, path);
        r = sd_bus_reply_method_return(msg, "o", path);
        manager_sensors_kick(m);
        return r;
}

static const char *sensor_state(SensorBroker *b, const char *id, const Tracked *t) {
        SensorJob *j = job_find_sensor(b, id);

        if (!j)
                return t ? sensor_state_to_string(t->rec.state) : "unknown";
        return t && t->rec.state == SENSOR_ISSUED ? "renewing" : "pending";
}

/* a(sssttt): id, state, serial, notBefore, notAfter, renewal point (µs since the epoch, 0 = none). */
int method_list_sensors(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        SensorBroker *b = m->sensors;
        int r;

        if (broker_refuses(b, error))
                return -EIO;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssttt)");
        for (unsigned i = 0; r >= 0 && i < b->n_tracked; i++) {
                Tracked *t = &b->tracked[i];

                r = sd_bus_message_append(reply, "(sssttt)", t->rec.id, sensor_state(b, t->rec.id, t),
                                          t->rec.serial, t->rec.not_before * 1000000ULL,
                                          t->rec.not_after * 1000000ULL,
                                          (uint64_t) (t->due > 0 ? t->due : 0) * 1000000ULL);
        }
        /* Sensors with a request and no record yet. */
        for (SensorJob *j = b->jobs; r >= 0 && j; j = j->next)
                if (!tracked_get(b, j->sensor_id))
                        r = sd_bus_message_append(reply, "(sssttt)", j->sensor_id, "pending", "",
                                                  UINT64_C(0), UINT64_C(0), UINT64_C(0));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int method_forget_sensor(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        SensorBroker *b = m->sensors;
        const char *id;
        SensorJob *j;
        Diag d = {};
        int r;

        r = sensor_call_begin(b, msg, &id, error);
        if (r <= 0)
                return r;
        j = job_find_sensor(b, id);
        if (!tracked_get(b, id) && !j && b->n_unreadable > 0 && b->records &&
            state_store_exists(b->records, id)) {
                /* A record that could not be read at the start: it counts to
                 * broker.max_sensors until it is forgotten. */
                r = sensor_record_remove(b->records, id, &d);
                if (r < 0 && r != -ENOENT)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                                 "cannot remove the unreadable record of sensor '%s': %s",
                                                 id, diag_text(&d, r));
                b->n_unreadable--;
                log_info("sensor '%s': its unreadable record is forgotten", id);
                return sd_bus_reply_method_return(msg, "");
        }
        if (!tracked_get(b, id) && !j)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_SENSOR, "no sensor '%s' is tracked", id);
        if (j && j->state == SENSOR_JOB_ENROLLING)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY,
                                         "sensor '%s' cannot be forgotten now: %s; forget it once %s has ended",
                                         id, SENSOR_CANCEL_REFUSED, j->job ? job_path(j->job) : "its job");
        if (tracked_get(b, id)) {
                r = sensor_record_remove(b->records, id, &d);
                if (r < 0 && r != -ENOENT)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                                 "cannot remove the record of sensor '%s': %s", id,
                                                 diag_text(&d, r));
                tracked_remove(b, id);
                due_arm(m);
        }
        if (j)
                sensor_job_cancel(m, j, "the sensor was forgotten (ForgetSensor)");
        log_info("sensor '%s': forgotten", id);
        return sd_bus_reply_method_return(msg, "");
}

/* Queued or waiting for the CA (in the worker, job_refuse_cancel() and
 * ForgetSensor refuse it). */
static void sensor_job_cancel(Manager *m, SensorJob *j, const char *why) {
        log_info("sensor '%s': request canceled (%s)", j->sensor_id, why);
        job_end(m, j, NULL, BUS_ERROR_CANCELED, why);
}

/* Cancel() of the job (manager-jobs.h), queued or waiting for the CA: the
 * core finishes it as canceled. */
static int on_job_cancel(Job *job, void *userdata) {
        SensorJob *j = userdata;
        Manager *m = j->m;

        if (j->state == SENSOR_JOB_ENROLLING) /* job_refuse_cancel() keeps Cancel() from coming here */
                return -EBUSY;
        log_info("sensor '%s': request canceled through %s", j->sensor_id, job_path(job));
        j->job = NULL;
        pending_forget(m->sensors, j);
        job_free(m->sensors, j);
        return 0;
}

/* ---- start and stop ---- */

static int open_store(Manager *m, const char *name, StateStore **ret) {
        _cleanup_free_ char *dir = NULL;
        Diag d = {};
        int r;

        if (asprintf(&dir, "%s/%s", m->config->state_dir, name) < 0)
                return -ENOMEM;
        r = state_store_open(dir, ret, &d);
        if (r < 0)
                snprintf(m->sensors->unusable, sizeof(m->sensors->unusable), "cannot use %s: %s", dir,
                         diag_text(&d, r));
        return r;
}

static void load_records(Manager *m) {
        SensorBroker *b = m->sensors;
        _cleanup_free_ SensorRecord *recs = NULL;
        unsigned n = 0, corrupt = 0;
        Diag d = {};
        int r;

        r = sensor_records_load_all(b->records, SENSOR_RECORDS_LOAD_MAX, &recs, &n, &corrupt, &d);
        if (r < 0) {
                snprintf(b->unusable, sizeof(b->unusable), "the sensor records cannot be read: %s",
                         diag_text(&d, r));
                return;
        }
        if (corrupt > 0)
                log_warning("%u sensor record(s) in %s cannot be read and are left as they are (they count to "
                            "broker.max_sensors); the first: %s",
                            corrupt, state_store_path(b->records), diag_text(&d, -EBADMSG));
        b->n_unreadable = corrupt;
        if (n + corrupt > m->config->broker_max_sensors)
                log_warning("%u sensor record(s) in %s, more than broker.max_sensors (%u): all are kept, and no "
                            "new sensor is added until enough are forgotten",
                            n + corrupt, state_store_path(b->records), m->config->broker_max_sensors);
        b->tracked = calloc(n ? n : 1, sizeof(Tracked));
        if (!b->tracked) {
                snprintf(b->unusable, sizeof(b->unusable), "out of memory");
                return;
        }
        b->cap_tracked = n ? n : 1;
        for (unsigned i = 0; i < n; i++) /* sorted by id already */
                b->tracked[b->n_tracked++] = (Tracked) { .rec = recs[i], .due = record_due(m, &recs[i]) };
        log_info("sensor broker: %u sensor(s) tracked in %s", b->n_tracked, state_store_path(b->records));
}

/* The requests the CA deferred before the restart: each a new job (a new
 * path), waiting for its retry time. */
static void load_pending(Manager *m) {
        SensorBroker *b = m->sensors;
        char **names = NULL;
        unsigned n = 0;
        Diag d = {};
        int r;

        r = state_store_list(b->pending, m->config->broker_max_pending, &names, &n, &d);
        if (r < 0) {
                log_warning_errno(
                        r, "the deferred sensor requests cannot be listed: %s; they are not asked again",
                        diag_text(&d, r));
                return;
        }
        for (unsigned i = 0; i < n; i++) {
                SensorPending p = {};
                SensorJob *j;
                Diag one = {};

                r = sensor_pending_load(b->pending, names[i], &p, &one);
                if (r >= 0)
                        r = sensor_csr_check(&b->policy, p.id, p.csr, p.csr_len, NULL, &one);
                if (r < 0) {
                        log_warning_errno(
                                r, "deferred sensor request %s/%s is not asked again: %s; it is left as it is",
                                state_store_path(b->pending), names[i], diag_text(&one, r));
                        sensor_pending_done(&p);
                        continue;
                }
                j = job_new(m, p.id, p.uid, p.csr, p.csr_len);
                if (!j) {
                        sensor_pending_done(&p);
                        break;
                }
                p.csr = NULL;
                memcpy(j->birth, p.birth, sizeof(j->birth));
                j->persisted = true;
                r = manager_job_new(m, "sensor", p.uid, on_job_cancel, j, &j->job);
                if (r >= 0)
                        r = job_wait_ca(m, j, p.retry_at);
                if (r < 0) {
                        log_warning_errno(r,
                                          "sensor '%s': cannot resume the deferred request: %m; it stays for the "
                                          "next start",
                                          j->sensor_id);
                        j->persisted = false; /* the file stays for the next start */
                        if (j->job)
                                (void) job_finish_error(j->job, SD_BUS_ERROR_FAILED, "cannot be resumed");
                        job_free(b, j);
                        continue;
                }
                log_info("sensor '%s': the request the CA deferred is resumed as %s (uid %u), asked again at %" PRIu64,
                         j->sensor_id, job_path(j->job), (unsigned) j->owner, j->retry_at);
        }
        state_store_names_free(names, n);
}

int manager_sensors_start(Manager *m) {
        SensorBroker *b;
        Diag d = {};
        int r;

        b = m->sensors = calloc(1, sizeof(SensorBroker));
        if (!b)
                return -ENOMEM;
        sensor_policy_from_config(m->config, &b->policy);
        r = sensor_challenges_new(m->config->broker_max_challenges,
                                  (uint64_t) m->config->broker_challenge_lifetime_sec * 1000000ULL,
                                  &b->challenges);
        if (r < 0) {
                /* The methods refuse from here on (broker_refuses()), never
                 * reaching for the table. */
                snprintf(b->unusable, sizeof(b->unusable), "cannot allocate its challenge table: %s",
                         strerror(-r));
                return r;
        }
        if (m->config->broker_sensor_manufacturer_ca) {
                r = certs_load_pem_file(m->config->broker_sensor_manufacturer_ca, &b->mfg_cas, &d);
                if (r < 0 || sk_X509_num(b->mfg_cas) == 0)
                        snprintf(b->unusable, sizeof(b->unusable),
                                 "broker.sensor_manufacturer_ca %s cannot be used: %s; fix it and restart fleetidd",
                                 m->config->broker_sensor_manufacturer_ca,
                                 r < 0 ? diag_text(&d, r) : "it holds no certificate");
        }
        if (b->unusable[0] == '\0' && open_store(m, SENSOR_RECORDS_DIR, &b->records) >= 0 &&
            open_store(m, SENSOR_PENDING_DIR, &b->pending) >= 0) {
                load_records(m);
                if (b->unusable[0] == '\0')
                        load_pending(m);
        }
        if (b->unusable[0] != '\0') {
                log_error("sensor broker: %s; the sensor methods are refused", b->unusable);
                return 0;
        }
        due_arm(m);
        return 0;
}

void manager_sensors_reset(Manager *m, const char *why) {
        SensorBroker *b = m->sensors;

        if (!b)
                return;
        for (SensorJob *j = b->jobs; j; j = j->next)
                if (j->job) {
                        log_info("sensor '%s': request canceled (%s)", j->sensor_id, why);
                        (void) job_finish_error(j->job, BUS_ERROR_CANCELED, why);
                        j->job = NULL;
                }
        manager_sensors_stop(m);
}

void manager_sensors_stop(Manager *m) {
        SensorBroker *b = m->sensors;

        if (!b)
                return;
        b->worker = sensor_worker_free(b->worker);
        while (b->jobs) {
                SensorJob *j = b->jobs;

                /* The jobs core ends the job as canceled (fleetidd is stopping). */
                job_free(b, j);
        }
        sd_event_source_disable_unref(b->due_timer);
        free(b->tracked);
        sensor_challenges_free(b->challenges);
        OSSL_STACK_OF_X509_free(b->mfg_cas);
        state_store_free(b->records);
        state_store_free(b->pending);
        free(b);
        m->sensors = NULL;
}
