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

/* The first second at which at most pct percent of life is left:
 * left <= floor(life * pct / 100), left = not_after - t. */
static __int128 threshold_time(time_t not_after, __int128 life, unsigned pct) {
        return (__int128) not_after - life * pct / 100;
}

time_t severity_next_rise(time_t now, time_t not_before, time_t not_after, time_t renew_due,
                          unsigned warning_pct, unsigned error_pct, unsigned critical_pct, Severity floor) {
        __int128 life = (__int128) not_after - not_before;
        Severity cur =
                severity_for(now, not_before, not_after, renew_due, warning_pct, error_pct, critical_pct);
        Severity above = cur > floor ? cur : floor;
        __int128 candidates[5], best = 0;
        size_t n = 0;

        if (above >= SEVERITY_CRITICAL || life <= 0)
                return 0;
        /* The severity only changes at these times, and never falls as time goes on. */
        candidates[n++] = renew_due;
        candidates[n++] = threshold_time(not_after, life, warning_pct);
        candidates[n++] = threshold_time(not_after, life, error_pct);
        candidates[n++] = threshold_time(not_after, life, critical_pct);
        candidates[n++] = not_after;
        for (size_t i = 0; i < n; i++) {
                __int128 t = candidates[i];

                if (t <= now || (best && t >= best))
                        continue;
                if (severity_for((time_t) t, not_before, not_after, renew_due, warning_pct, error_pct,
                                 critical_pct) > above)
                        best = t;
        }
        return (time_t) best;
}

Severity severity_for_lifetime(time_t not_before, time_t not_after, unsigned long long min_lifetime) {
        __int128 life = (__int128) not_after - not_before;

        if (life <= 0) /* severity_for() says critical already */
                return SEVERITY_OK;
        return life < (__int128) min_lifetime ? SEVERITY_WARNING : SEVERITY_OK;
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
