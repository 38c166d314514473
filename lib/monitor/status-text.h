/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * status-text.h: the one line fleetidd sends to systemd as STATUS= (shown by
 * "systemctl status fleetidd"): the state from monitor/daemon-state.h, the
 * error that put it there, and the next event with its time, e.g.
 *
 *   enrolled; renewal due 2026-12-05 10:00:00 UTC (in 2 days)
 *   waiting-retry: EST server unreachable; next attempt 2026-12-03 06:45:10 UTC (in 4 minutes)
 *
 * Pure: every time is handed in.
 */
#pragma once

#include <stdint.h>
#include <time.h>

#include "monitor/daemon-state.h"

/* The error texts are cut to this many bytes each: STATUS= is one line. */
#define STATUS_TEXT_ERROR_MAX 200

typedef struct StatusTextInput {
        DaemonState state;       /* _DAEMON_STATE_INVALID: starting, no attempt yet */
        const char *error;       /* why the state was entered, NULL or "" if no error */
        const char *write_error; /* why the state directory cannot be written, NULL or "" */
        uint64_t next_attempt;   /* unix seconds of the next enrollment/renewal attempt, 0 = none */
        uint64_t cert_not_after; /* the operational certificate in force, 0 = none */
} StatusTextInput;

/* "243 days", "5 hours", "1 minute", "0 seconds": the largest whole unit of
 * sec (negative counts as 0). */
void duration_text(int64_t sec, char *buf, size_t size);

/* The STATUS= text (without "STATUS="), one line: control characters in the
 * errors become ' '. -ENOMEM, or 0 and a string in *ret to free(). */
int status_text_format(const StatusTextInput *in, time_t now, char **ret);
