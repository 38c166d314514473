/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * job-state.h: the states of a job of org.fleetid.Agent1 (a Renew, a sensor
 * request, a factory reset: docs/dbus-api.md, "Jobs"), one enum and one
 * string table, the transitions allowed, the result a finished job reports
 * in JobRemoved, and the object path of a job.
 *
 *   queued      created, not started yet (another operation runs)
 *   running     the operation runs
 *   waiting-ca  the CA deferred the request (HTTP 202): the job waits for
 *               the deferred request to be answered (RetryAfter says when
 *               it is asked next)
 *   done        finished, with a result (GetResult)
 *   failed      finished with an error (GetResult returns it)
 *   canceled    finished by Cancel() (GetResult returns Canceled)
 *
 * done, failed and canceled are final: a job never leaves them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum JobState {
        JOB_QUEUED,
        JOB_RUNNING,
        JOB_WAITING_CA,
        JOB_DONE,
        JOB_FAILED,
        JOB_CANCELED,
        _JOB_STATE_MAX,
        _JOB_STATE_INVALID = -1,
} JobState;

/* "queued", "running", ...; NULL for a value outside the enum. */
const char *job_state_to_string(JobState s);
/* The state a string names, _JOB_STATE_INVALID for NULL or any other text. */
JobState job_state_from_string(const char *s);

/* done, failed, canceled. */
bool job_state_is_final(JobState s);
/* Whether a job in `from` may go to `to`: never out of a final state, never
 * back to queued, never to an invalid state. A state "to itself" is allowed
 * (nothing changes) unless final. */
bool job_state_transition_ok(JobState from, JobState to);

/* The object path of job `id` under `prefix` (".../job"): prefix/id, in
 * decimal. -EINVAL for id 0, -ENOBUFS if it does not fit in size bytes. */
int job_path_format(const char *prefix, uint32_t id, char *buf, size_t size);
/* The id of the job path `path` under `prefix`: 0 if path is not
 * prefix/N with N decimal, 1..UINT32_MAX, without leading zeros or sign. */
uint32_t job_path_parse(const char *prefix, const char *path);
