/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-jobs.c: the jobs of org.fleetid.Agent1 (see manager-jobs.h).
 *
 * The objects are served through one fallback vtable under BUS_JOB_PREFIX:
 * its find function maps a path to the job (none: sd-bus answers
 * UnknownObject, but the access filter answers NoSuchJob first for a member
 * of the access table), and a node enumerator lists the jobs kept, for
 * introspection. Which caller may use a job is decided by the access filter
 * in manager-bus.c, before the vtable sees the call.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fleetidd/bus-errors.h"
#include "fleetidd/bus-names.h"
#include "fleetidd/manager-jobs.h"

typedef struct JobCert {
        uint8_t *der;
        size_t len;
} JobCert;

struct Job {
        Manager *manager;
        Job *prev, *next;
        uint32_t id;
        char *kind;
        char path[sizeof(BUS_JOB_PREFIX) + 16];
        JobState state;
        uint64_t retry_after; /* µs since the epoch, 0 = none */
        uid_t owner;
        JobCancelFn cancel;
        void *userdata;
        const char *cancel_refused; /* job_refuse_cancel(): why Cancel() is refused now, NULL if it is not */
        /* the result, once final */
        JobCert *certs; /* done */
        size_t n_certs;
        char *error_name, *error_message; /* failed, canceled */
        uint64_t finished;                /* CLOCK_MONOTONIC µs */
};

uint32_t job_id(const Job *j) {
        return j->id;
}

const char *job_kind(const Job *j) {
        return j->kind;
}

const char *job_path(const Job *j) {
        return j->path;
}

void job_refuse_cancel(Job *j, const char *why) {
        j->cancel_refused = why;
}

JobState job_state(const Job *j) {
        return j->state;
}

uid_t job_owner(const Job *j) {
        return j->owner;
}

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        for (size_t i = 0; i < j->n_certs; i++)
                free(j->certs[i].der);
        free(j->certs);
        free(j->kind);
        free(j->error_name);
        free(j->error_message);
        free(j);
        return NULL;
}

static void job_unlink(Job *j) {
        Manager *m = j->manager;

        if (j->prev)
                j->prev->next = j->next;
        else
                m->jobs.first = j->next;
        if (j->next)
                j->next->prev = j->prev;
        else
                m->jobs.last = j->prev;
        if (job_state_is_final(j->state))
                m->jobs.n_finished--;
        else
                m->jobs.n_live--;
        j->prev = j->next = NULL;
}

Job *job_find(Manager *m, uint32_t id) {
        for (Job *j = m->jobs.first; j; j = j->next)
                if (j->id == id)
                        return j;
        return NULL;
}

Job *manager_job_from_path(Manager *m, const char *path) {
        uint32_t id = job_path_parse(BUS_JOB_PREFIX, path);

        return id > 0 ? job_find(m, id) : NULL;
}

Job *manager_job_find_live(Manager *m, const char *kind) {
        for (Job *j = m->jobs.first; j; j = j->next)
                if (!job_state_is_final(j->state) && streq_ptr(j->kind, kind))
                        return j;
        return NULL;
}

static void emit_changed(Job *j, const char *property) {
        Manager *m = j->manager;
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed(m->bus, j->path, BUS_JOB_INTERFACE, property, NULL);
        if (r < 0)
                log_debug("D-Bus: cannot emit PropertiesChanged for %s: %s", j->path, strerror(-r));
}

static void emit_job_signal(Job *j, const char *member, const char *result) {
        Manager *m = j->manager;
        int r;

        if (!m->bus)
                return;
        if (result)
                r = sd_bus_emit_signal(m->bus, BUS_PATH, BUS_INTERFACE, member, "uoss", j->id, j->path,
                                       j->kind, result);
        else
                r = sd_bus_emit_signal(m->bus, BUS_PATH, BUS_INTERFACE, member, "uos", j->id, j->path,
                                       j->kind);
        if (r < 0)
                log_warning_errno(r, "D-Bus: cannot emit %s for job %" PRIu32 ": %m", member, j->id);
}

/* ---- keeping finished jobs ---- */

static void gc_arm(Manager *m);

static int on_gc(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = 0;

        if (m->jobs.stopping)
                return 0;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        for (Job *j = m->jobs.first, *next; j; j = next) {
                next = j->next;
                if (job_state_is_final(j->state) && j->finished + JOB_FINISHED_KEEP_USEC <= now) {
                        log_debug("job %" PRIu32 " (%s) dropped: finished %llus ago", j->id, j->kind,
                                  (unsigned long long) ((now - j->finished) / 1000000ULL));
                        job_unlink(j);
                        job_free(j);
                }
        }
        gc_arm(m);
        return 0;
}

/* The timer for the oldest finished job, off if none. */
static void gc_arm(Manager *m) {
        uint64_t oldest = UINT64_MAX;
        int r;

        for (Job *j = m->jobs.first; j; j = j->next)
                if (job_state_is_final(j->state) && j->finished < oldest)
                        oldest = j->finished;
        if (oldest == UINT64_MAX) {
                if (m->jobs.gc)
                        (void) sd_event_source_set_enabled(m->jobs.gc, SD_EVENT_OFF);
                return;
        }
        if (!m->jobs.gc) {
                r = sd_event_add_time(m->event, &m->jobs.gc, CLOCK_MONOTONIC,
                                      oldest + JOB_FINISHED_KEEP_USEC, 1000000ULL, on_gc, m);
                if (r < 0) {
                        /* JOBS_FINISHED_MAX still bounds them */
                        log_warning_errno(r, "cannot arm the timer that drops finished jobs: %m");
                        return;
                }
                (void) sd_event_source_set_description(m->jobs.gc, "jobs-gc");
                return;
        }
        if (sd_event_source_set_time(m->jobs.gc, oldest + JOB_FINISHED_KEEP_USEC) < 0 ||
            sd_event_source_set_enabled(m->jobs.gc, SD_EVENT_ONESHOT) < 0)
                log_warning("cannot re-arm the timer that drops finished jobs");
}

/* Makes j final (its result set by the caller), announces it, and keeps at
 * most JOBS_FINISHED_MAX finished jobs besides j (which goes by the timer, or
 * when the next job finishes). */
static void job_finished(Job *j, JobState state) {
        Manager *m = j->manager;

        j->state = state;
        j->cancel = NULL;
        j->userdata = NULL;
        m->jobs.n_live--;
        m->jobs.n_finished++;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &j->finished);
        log_info("job %" PRIu32 " (%s, uid %u) %s%s%s", j->id, j->kind, (unsigned) j->owner,
                 job_state_to_string(state), j->error_message ? ": " : "", strempty(j->error_message));
        emit_changed(j, "State");
        emit_job_signal(j, "JobRemoved", job_state_to_string(state));
        if (m->jobs.stopping)
                return;
        /* Not j itself: its caller (a module, Cancel()) may still look at it. */
        while (m->jobs.n_finished > JOBS_FINISHED_MAX + m->config->broker_max_pending) {
                Job *old = m->jobs.first;

                while (old && (!job_state_is_final(old->state) || old == j))
                        old = old->next;
                if (!old)
                        break;
                job_unlink(old);
                job_free(old);
        }
        gc_arm(m);
}

/* ---- the module's side ---- */

int manager_job_new(Manager *m, const char *kind, uid_t owner, JobCancelFn cancel, void *userdata, Job **ret) {
        Job *j;

        if (m->jobs.stopping)
                return -ESHUTDOWN;
        if (m->jobs.n_live >= JOBS_LIVE_MAX + m->config->broker_max_pending)
                return -EBUSY;
        if (m->jobs.last_id == UINT32_MAX)
                return -EBUSY; /* 4 billion jobs in one run: ids are never reused */
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->kind = strdup(kind);
        if (!j->kind) {
                job_free(j);
                return -ENOMEM;
        }
        j->manager = m;
        j->id = ++m->jobs.last_id;
        (void) job_path_format(BUS_JOB_PREFIX, j->id, j->path, sizeof(j->path)); /* fits: sized for it */
        j->state = JOB_QUEUED;
        j->owner = owner;
        j->cancel = cancel;
        j->userdata = userdata;
        j->prev = m->jobs.last;
        if (m->jobs.last)
                m->jobs.last->next = j;
        else
                m->jobs.first = j;
        m->jobs.last = j;
        m->jobs.n_live++;
        log_info("job %" PRIu32 " (%s) created for uid %u", j->id, kind, (unsigned) owner);
        emit_job_signal(j, "JobNew", NULL);
        *ret = j;
        return 0;
}

int job_set_state(Job *j, JobState s) {
        if (job_state_is_final(s) || !job_state_transition_ok(j->state, s))
                return -EINVAL;
        if (j->state == s)
                return 0;
        log_debug("job %" PRIu32 " (%s): %s -> %s", j->id, j->kind, job_state_to_string(j->state),
                  job_state_to_string(s));
        j->state = s;
        emit_changed(j, "State");
        return 0;
}

void job_set_retry_after(Job *j, uint64_t usec) {
        if (job_state_is_final(j->state) || j->retry_after == usec)
                return;
        j->retry_after = usec;
        emit_changed(j, "RetryAfter");
}

int job_finish_error(Job *j, const char *bus_error_name, const char *message) {
        bool canceled = streq_ptr(bus_error_name, BUS_ERROR_CANCELED);

        if (job_state_is_final(j->state))
                return -EINVAL;
        free(j->error_name);
        free(j->error_message);
        j->error_name = strdup(bus_error_name ?: SD_BUS_ERROR_FAILED);
        j->error_message = strdup(message ?: "");
        if (!j->error_name || !j->error_message) {
                /* GetResult answers Failed "out of memory" (reply_result()) */
                free(j->error_name);
                free(j->error_message);
                j->error_name = j->error_message = NULL;
        }
        job_finished(j, canceled ? JOB_CANCELED : JOB_FAILED);
        return 0;
}

int job_finish_chain(Job *j, STACK_OF(X509) *chain) {
        int n = chain ? sk_X509_num(chain) : 0;
        JobCert *certs = NULL;
        int r = 0;

        if (job_state_is_final(j->state))
                return -EINVAL;
        if (n > (int) JOB_RESULT_CERTS_MAX) {
                char message[128];

                snprintf(message, sizeof(message), "the result holds %d certificates, more than %u", n,
                         JOB_RESULT_CERTS_MAX);
                job_finish_error(j, SD_BUS_ERROR_FAILED, message);
                return -E2BIG;
        }
        if (n > 0) {
                certs = calloc((size_t) n, sizeof(*certs));
                if (!certs)
                        r = -ENOMEM;
        }
        for (int i = 0; r >= 0 && i < n; i++) {
                unsigned char *der = NULL;
                int len = i2d_X509(sk_X509_value(chain, i), &der);

                if (len <= 0) {
                        r = -EIO;
                        break;
                }
                certs[i].der = malloc((size_t) len);
                if (certs[i].der) {
                        memcpy(certs[i].der, der, (size_t) len);
                        certs[i].len = (size_t) len;
                } else
                        r = -ENOMEM;
                OPENSSL_free(der);
        }
        if (r < 0) {
                for (int i = 0; certs && i < n; i++)
                        free(certs[i].der);
                free(certs);
                job_finish_error(j, SD_BUS_ERROR_FAILED,
                                 r == -ENOMEM ? "out of memory for the result"
                                              : "the resulting certificate cannot be encoded (DER)");
                return r;
        }
        j->certs = certs;
        j->n_certs = (size_t) n;
        job_finished(j, JOB_DONE);
        return 0;
}

void manager_jobs_cancel_all(Manager *m, const char *why) {
        /* From here on no job is freed before manager_jobs_stop(): a module may
         * still hold the pointer of a job ended here. */
        m->jobs.stopping = true;
        for (Job *j = m->jobs.first; j; j = j->next)
                if (!job_state_is_final(j->state))
                        (void) job_finish_error(j, BUS_ERROR_CANCELED, why);
}

void manager_jobs_stop(Manager *m) {
        manager_jobs_cancel_all(m, "fleetidd is stopping; the operation did not finish");
        while (m->jobs.first) {
                Job *j = m->jobs.first;

                job_unlink(j);
                job_free(j);
        }
        m->jobs.gc = sd_event_source_disable_unref(m->jobs.gc);
}

/* ---- the objects ---- */

static int prop_id(sd_bus *bus, const char *path, const char *interface, const char *property,
                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;

        return sd_bus_message_append(reply, "u", j->id);
}

static int prop_kind(sd_bus *bus, const char *path, const char *interface, const char *property,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;

        return sd_bus_message_append(reply, "s", j->kind);
}

static int prop_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;

        return sd_bus_message_append(reply, "s", job_state_to_string(j->state));
}

static int prop_retry_after(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;

        return sd_bus_message_append(reply, "t", j->retry_after);
}

static int prop_owner(sd_bus *bus, const char *path, const char *interface, const char *property,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) j->owner);
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        Manager *m = j->manager;
        uid_t uid = (uid_t) -1;
        JobCancelFn cancel = j->cancel;
        int r;

        if (job_state_is_final(j->state)) /* nothing to stop; GetResult says how it ended */
                return sd_bus_reply_method_return(msg, NULL);
        if (!cancel)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                         "job %" PRIu32 " (%s) cannot be canceled", j->id, j->kind);
        if (j->cancel_refused)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY,
                                         "job %" PRIu32 " (%s) cannot be canceled now: %s", j->id, j->kind,
                                         j->cancel_refused);
        /* The access filter recorded the caller it let through; a call it
         * did not is refused here too, not canceled by a uid nobody checked. */
        if (manager_bus_caller(m, msg, &uid) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Cancel of job %" PRIu32 ": the caller was not checked", j->id);
        r = cancel(j, j->userdata);
        if (r < 0) {
                log_warning_errno(r, "job %" PRIu32 " (%s): Cancel by uid %u failed: %m", j->id, j->kind,
                                  (unsigned) uid);
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                         "job %" PRIu32 " cannot be canceled: %s", j->id, strerror(-r));
        }
        if (!job_state_is_final(j->state)) {
                char message[96];

                snprintf(message, sizeof(message), "canceled by uid %u", (unsigned) uid);
                (void) job_finish_error(j, BUS_ERROR_CANCELED, message);
        }
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_get_result(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Job *j = userdata;
        int r;

        if (!job_state_is_final(j->state))
                return sd_bus_error_setf(error, BUS_ERROR_BUSY,
                                         "job %" PRIu32 " is %s; its result comes with JobRemoved", j->id,
                                         job_state_to_string(j->state));
        if (j->state != JOB_DONE) {
                if (!j->error_name)
                        return sd_bus_error_set(error, SD_BUS_ERROR_NO_MEMORY, "out of memory for the error");
                return sd_bus_error_set(error, j->error_name, j->error_message);
        }
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "ay");
        for (size_t i = 0; r >= 0 && i < j->n_certs; i++)
                r = sd_bus_message_append_array(reply, 'y', j->certs[i].der, j->certs[i].len);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

#define JOB_PROP(name, sig, get) \
        SD_BUS_PROPERTY(name, sig, get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION)

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "u", prop_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Kind", "s", prop_kind, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        JOB_PROP("State", "s", prop_state),
        JOB_PROP("RetryAfter", "t", prop_retry_after),
        SD_BUS_PROPERTY("OwnerUid", "u", prop_owner, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetResult", SD_BUS_NO_ARGS, SD_BUS_RESULT("aay", certificates),
                                method_get_result, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                           void **found, sd_bus_error *error) {
        Job *j = manager_job_from_path(userdata, path);

        if (!j)
                return 0;
        *found = j;
        return 1;
}

/* Every job kept, for introspection. Their ids are no secret: JobNew and
 * JobRemoved are broadcast. */
static int job_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                         sd_bus_error *error) {
        Manager *m = userdata;
        size_t n = 0, i = 0;
        char **nodes;

        for (Job *j = m->jobs.first; j; j = j->next)
                n++;
        nodes = calloc(n + 1, sizeof(char *));
        if (!nodes)
                return -ENOMEM;
        for (Job *j = m->jobs.first; j; j = j->next) {
                nodes[i] = strdup(j->path);
                if (!nodes[i]) {
                        while (i > 0)
                                free(nodes[--i]);
                        free(nodes);
                        return -ENOMEM;
                }
                i++;
        }
        *ret_nodes = nodes;
        return 0;
}

int manager_jobs_bus_start(Manager *m) {
        int r;

        /* Floating slots: they go with the connection. */
        r = sd_bus_add_fallback_vtable(m->bus, NULL, BUS_JOB_PREFIX, BUS_JOB_INTERFACE, job_vtable,
                                       job_object_find, m);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(m->bus, NULL, BUS_JOB_PREFIX, job_enumerate, m);
        return r;
}

const sd_bus_vtable *manager_jobs_vtable(void) {
        return job_vtable;
}
