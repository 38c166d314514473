/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "monitor/job-state.h"

static const char *const job_state_names[_JOB_STATE_MAX] = {
        [JOB_QUEUED] = "queued", [JOB_RUNNING] = "running", [JOB_WAITING_CA] = "waiting-ca",
        [JOB_DONE] = "done",     [JOB_FAILED] = "failed",   [JOB_CANCELED] = "canceled",
};

const char *job_state_to_string(JobState s) {
        if (s < 0 || s >= _JOB_STATE_MAX)
                return NULL;
        return job_state_names[s];
}

JobState job_state_from_string(const char *s) {
        if (!s)
                return _JOB_STATE_INVALID;
        for (JobState i = 0; i < _JOB_STATE_MAX; i++)
                if (strcmp(s, job_state_names[i]) == 0)
                        return i;
        return _JOB_STATE_INVALID;
}

bool job_state_is_final(JobState s) {
        return s == JOB_DONE || s == JOB_FAILED || s == JOB_CANCELED;
}

bool job_state_transition_ok(JobState from, JobState to) {
        if (from < 0 || from >= _JOB_STATE_MAX || to < 0 || to >= _JOB_STATE_MAX)
                return false;
        if (job_state_is_final(from))
                return false;
        return to != JOB_QUEUED || from == JOB_QUEUED;
}

int job_path_format(const char *prefix, uint32_t id, char *buf, size_t size) {
        int n;

        if (id == 0)
                return -EINVAL;
        n = snprintf(buf, size, "%s/%u", prefix, (unsigned) id);
        if (n < 0 || (size_t) n >= size)
                return -ENOBUFS;
        return 0;
}

uint32_t job_path_parse(const char *prefix, const char *path) {
        size_t len = strlen(prefix);
        uint64_t id = 0;
        const char *p;

        if (!path || strncmp(path, prefix, len) != 0 || path[len] != '/')
                return 0;
        p = path + len + 1;
        if (*p < '1' || *p > '9') /* empty, a sign, a leading zero, "0" */
                return 0;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                id = id * 10 + (uint64_t) (*p - '0');
                if (id > UINT32_MAX)
                        return 0;
        }
        return (uint32_t) id;
}
