/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-jobs.h: the jobs of org.fleetid.Agent1: a long operation a caller
 * started (a Renew, a sensor certificate request, a factory reset) as an
 * object /org/fleetid/Agent1/job/N with the interface org.fleetid.Agent1.Job
 * (docs/dbus-api.md, "Jobs"), as systemd's jobs are.
 *
 * The module that runs the operation creates the job (manager_job_new()),
 * moves it through its states (job_set_state(), job_set_retry_after()) and
 * finishes it exactly once (job_finish_chain(), job_finish_error()). The core
 * here serves the objects, announces JobNew when a job is created and
 * JobRemoved when it finishes (exactly once per job), answers Cancel() and
 * GetResult(), and keeps a finished job for JOB_FINISHED_KEEP_USEC (at most
 * JOBS_FINISHED_MAX of them) so that a client that got JobRemoved can still
 * ask for the result. The access filter (manager-bus.c) lets a job's owner
 * and admins only at a job (access_check_job()).
 *
 * Ownership: a Job belongs to the core. The module may use its Job pointer
 * until it finishes the job, or until its JobCancelFn is called, whichever
 * comes first; after that it must forget the pointer (a finished job is freed
 * later, by the core).
 */
#pragma once

#include <openssl/x509.h>
#include <stdint.h>
#include <sys/types.h>

#include "fleetidd/manager.h"
#include "monitor/job-state.h"

/* Jobs not finished yet, at most: manager_job_new() refuses more (-EBUSY).
 * Plus broker.max_pending, the sensor requests (manager-sensors.c bounds
 * those itself), so that 1,000 of them at once fit. */
#define JOBS_LIVE_MAX 64u
/* Finished jobs kept for GetResult, at most (plus broker.max_pending, as
 * above: sensor jobs that end together keep their results); the one created
 * first goes first. */
#define JOBS_FINISHED_MAX 32u
/* How long a finished job is kept for GetResult. */
#define JOB_FINISHED_KEEP_USEC (60ULL * 1000000ULL)
/* Certificates in a job's result, at most (a chain). */
#define JOB_RESULT_CERTS_MAX 16u

/* Cancel() of a job that is not finished: stop the operation (kill its
 * worker, stop waiting). Called once; the module forgets the job then. It
 * may finish the job itself (job_finish_*(), e.g. with a result it already
 * had); if it does not, the core finishes it as canceled when it returns.
 * A negative return refuses the Cancel (the job goes on; the caller gets
 * org.freedesktop.DBus.Error.Failed with the errno's text). */
typedef int (*JobCancelFn)(Job *j, void *userdata);

/* A new job, queued, owned by `owner` (the caller: manager_bus_caller()).
 * kind: a short name ("renew", "sensor", "factory-reset"). cancel may be
 * NULL: Cancel() is then refused (org.freedesktop.DBus.Error.NotSupported).
 * Announces JobNew. -EBUSY if JOBS_LIVE_MAX jobs are not finished,
 * -ESHUTDOWN once fleetidd is stopping, -ENOMEM. */
int manager_job_new(Manager *m, const char *kind, uid_t owner, JobCancelFn cancel, void *userdata, Job **ret);

uint32_t job_id(const Job *j);
const char *job_kind(const Job *j);
/* "/org/fleetid/Agent1/job/N" */
const char *job_path(const Job *j);
JobState job_state(const Job *j);
uid_t job_owner(const Job *j);

/* queued, running or waiting-ca (a final state only through job_finish_*()).
 * Emits PropertiesChanged. -EINVAL for a transition job_state_transition_ok()
 * refuses (the job stays as it is). */
int job_set_state(Job *j, JobState s);
/* While why is not NULL, Cancel() is refused with org.fleetid.Agent1.Error.Busy
 * "job N (KIND) cannot be canceled now: WHY" and the JobCancelFn is not
 * called: for a step whose effect cannot be withdrawn (a request the CA may
 * already have acted on). why is kept by pointer: a string literal. */
void job_refuse_cancel(Job *j, const char *why);
/* When the operation is tried next (µs since the epoch, 0 = not known):
 * waiting-ca's Retry-After. Emits PropertiesChanged. */
void job_set_retry_after(Job *j, uint64_t usec);

/* Finishes the job as done, its result the certificates of chain (DER, in
 * the order given; the leaf first for a certificate chain; NULL or empty for
 * an operation with no certificate to return). The job is final even if
 * encoding fails: -ENOMEM/-EIO then, and the job is failed instead
 * (org.freedesktop.DBus.Error.Failed). -E2BIG beyond JOB_RESULT_CERTS_MAX
 * (failed as well). -EINVAL if the job was already finished (nothing changes). */
int job_finish_chain(Job *j, STACK_OF(X509) *chain);
/* Finishes the job as failed with a D-Bus error (bus-errors.h, or a standard
 * one) and its message (a person reads it: what failed and why), which
 * GetResult returns. BUS_ERROR_CANCELED makes the job canceled.
 * -EINVAL if the job was already finished. */
int job_finish_error(Job *j, const char *bus_error_name, const char *message);

/* The job with this id, live or finished and still kept; NULL if none. */
Job *job_find(Manager *m, uint32_t id);
/* The job at a D-Bus object path, NULL if none (or not a job path). */
Job *manager_job_from_path(Manager *m, const char *path);
/* The oldest job of `kind` that is not finished, NULL if none (to join it). */
Job *manager_job_find_live(Manager *m, const char *kind);

/* manager_bus_start(): serves the job objects on m->bus. */
int manager_jobs_bus_start(Manager *m);
/* The job objects' vtable (manager-bus.c checks its methods against the access table). */
const sd_bus_vtable *manager_jobs_vtable(void);
/* fleetidd stops (manager_stop(): the bus closes when the loop exits): every
 * job not finished ends as canceled with `why`, and JobRemoved goes out
 * while the bus is there. The modules' JobCancelFn are not called (their
 * operations are being stopped anyway); a Job they still point to stays
 * allocated until manager_jobs_stop(), and job_finish_*() on it is a
 * harmless -EINVAL. No new job is created after this (-ESHUTDOWN). */
void manager_jobs_cancel_all(Manager *m, const char *why);
/* manager_free(): the same, then every job is freed. */
void manager_jobs_stop(Manager *m);
