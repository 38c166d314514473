/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf() */
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/status-text.h"
#include "util/macro.h"

void duration_text(int64_t sec, char *buf, size_t size) {
        static const struct {
                int64_t unit;
                const char *one, *many;
        } units[] = { { 86400, "day", "days" }, { 3600, "hour", "hours" }, { 60, "minute", "minutes" } };
        const char *one = "second", *many = "seconds";
        int64_t n = sec < 0 ? 0 : sec;

        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (sec >= units[i].unit) {
                        n = sec / units[i].unit;
                        one = units[i].one;
                        many = units[i].many;
                        break;
                }
        snprintf(buf, size, "%" PRIi64 " %s", n, n == 1 ? one : many);
}

/* "2026-12-05 10:00:00 UTC (in 2 days)", or "now" when t is not after now. */
static void when_text(uint64_t t, time_t now, char *buf, size_t size) {
        char rel[32], abs[32];
        time_t tt = (time_t) t;
        struct tm tm;

        if (t > INT64_MAX || !gmtime_r(&tt, &tm) ||
            strftime(abs, sizeof(abs), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
                snprintf(buf, size, "@%" PRIu64, t);
                return;
        }
        if (tt <= now) {
                snprintf(buf, size, "now");
                return;
        }
        duration_text((int64_t) (tt - now), rel, sizeof(rel));
        snprintf(buf, size, "%s (in %s)", abs, rel);
}

/* A copy of s cut to STATUS_TEXT_ERROR_MAX bytes, on one line; "" for NULL. */
static char *one_line(const char *s) {
        char *c = strndup(s ?: "", STATUS_TEXT_ERROR_MAX);

        for (char *p = c; p && *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return c;
}

int status_text_format(const StatusTextInput *in, time_t now, char **ret) {
        _cleanup_free_ char *error = NULL, *write_error = NULL;
        const char *state = daemon_state_to_string(in->state);
        char when[96] = "", next[160] = "", *s;
        const char *phrase = NULL;
        uint64_t t = 0;

        error = one_line(in->error);
        write_error = one_line(in->write_error);
        if (!error || !write_error)
                return -ENOMEM;

        switch (in->state) {
        case DAEMON_STATE_ENROLLED:
                phrase = "renewal due";
                t = in->next_attempt;
                break;
        case DAEMON_STATE_RENEWING:
                phrase = "the current certificate is valid until";
                t = in->cert_not_after;
                break;
        case DAEMON_STATE_WAITING_RETRY:
                phrase = "next attempt";
                t = in->next_attempt;
                break;
        case DAEMON_STATE_FAILED:
                phrase = "checked again";
                t = in->next_attempt;
                break;
        case DAEMON_STATE_WAITING_CLOCK:
                snprintf(next, sizeof(next), "continues when the system clock is set");
                break;
        case DAEMON_STATE_TPM_CLEARED:
                snprintf(next, sizeof(next), "enrolling again with the birth identity");
                break;
        case DAEMON_STATE_BIRTH_EXPIRED:
                phrase = "checked again when the clock is set, or";
                t = in->next_attempt;
                break;
        case DAEMON_STATE_TPM_REPLACED:
                phrase = "not enrolling; checked again";
                t = in->next_attempt;
                break;
        case DAEMON_STATE_ENROLLING:
        case DAEMON_STATE_RESETTING:
                break; /* the attempt is the event */
        default:
                state = "starting";
                snprintf(next, sizeof(next), "checking the stored identity");
                break;
        }
        if (phrase && t) {
                when_text(t, now, when, sizeof(when));
                snprintf(next, sizeof(next), "%s %s", phrase, when);
        }

        if (asprintf(&s, "%s%s%s%s%s%s%s", state, *error ? ": " : "", error, *next ? "; " : "", next,
                     *write_error ? "; cannot write the state directory: " : "", write_error) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
