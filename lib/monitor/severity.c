/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stddef.h>
#include <syslog.h>

#include "monitor/severity.h"

/* True if at most pct percent of life is left; 128-bit so that no time_t overflows. */
static int left_at_most(__int128 left, __int128 life, unsigned pct) {
        return left * 100 <= life * pct;
}

Severity severity_for(time_t now, time_t not_before, time_t not_after, time_t renew_due,
                      unsigned warning_pct, unsigned error_pct, unsigned critical_pct) {
        __int128 life = (__int128) not_after - not_before, left = (__int128) not_after - now;

        if (life <= 0 || left <= 0)
                return SEVERITY_CRITICAL;
        if (left_at_most(left, life, critical_pct))
                return SEVERITY_CRITICAL;
        if (left_at_most(left, life, error_pct))
                return SEVERITY_ERROR;
        if (left_at_most(left, life, warning_pct))
                return SEVERITY_WARNING;
        if (now >= renew_due)
                return SEVERITY_NOTICE;
        return SEVERITY_OK;
}

static const char *const severity_names[_SEVERITY_MAX] = {
        [SEVERITY_OK] = "ok",       [SEVERITY_NOTICE] = "notice",     [SEVERITY_WARNING] = "warning",
        [SEVERITY_ERROR] = "error", [SEVERITY_CRITICAL] = "critical",
};

const char *severity_to_string(Severity s) {
        if ((unsigned) s >= _SEVERITY_MAX)
                return NULL;
        return severity_names[s];
}

int severity_to_syslog(Severity s) {
        static const int levels[_SEVERITY_MAX] = {
                [SEVERITY_OK] = LOG_INFO,   [SEVERITY_NOTICE] = LOG_NOTICE, [SEVERITY_WARNING] = LOG_WARNING,
                [SEVERITY_ERROR] = LOG_ERR, [SEVERITY_CRITICAL] = LOG_CRIT,
        };

        if ((unsigned) s >= _SEVERITY_MAX)
                return LOG_CRIT;
        return levels[s];
}
