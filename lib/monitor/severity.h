/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * severity.h: how worried an operator should be about the operational
 * certificate, from its validity period and the renewal schedule.
 *
 * Pure arithmetic on times handed in (a fake clock in tests). Used by fleetidd
 * (journal priority, metrics, hook) and by "fleetidctl check" (Nagios exit
 * code), so both apply the same model; docs/monitoring.md describes it.
 *
 *   OK        renewal is not due yet
 *   NOTICE    renewal is due (now >= renew_due) and the certificate was not
 *             renewed yet: fleetidd is trying, nothing is urgent
 *   WARNING   at most warning_pct percent of the lifetime is left
 *   ERROR     at most error_pct percent is left
 *   CRITICAL  at most critical_pct percent is left, the certificate has
 *             expired, or its validity period is empty or inverted
 *
 * The lifetime is notAfter - notBefore; notAfter is the last valid second
 * (RFC 5280), so at now == notAfter no time is left.
 */
#pragma once

#include <time.h>

typedef enum Severity {
        SEVERITY_OK,
        SEVERITY_NOTICE,
        SEVERITY_WARNING,
        SEVERITY_ERROR,
        SEVERITY_CRITICAL,
        _SEVERITY_MAX,
} Severity;

/* The thresholds are checked from critical to warning, so a misordered set
 * (config_load() refuses one) still never gives less than the worst match.
 * A percentage of 0 only matches once no time is left. */
Severity severity_for(time_t now, time_t not_before, time_t not_after, time_t renew_due,
                      unsigned warning_pct, unsigned error_pct, unsigned critical_pct);

/* The first time after `now` at which the severity rises above both its value
 * at `now` and `floor`: fleetidd arms a timer for it, so a rise is announced
 * when it happens, not at the next attempt. 0 if there is none (critical
 * already, or floor is). Same arguments as severity_for(). */
time_t severity_next_rise(time_t now, time_t not_before, time_t not_after, time_t renew_due,
                          unsigned warning_pct, unsigned error_pct, unsigned critical_pct, Severity floor);

/* A certificate whose lifetime (notAfter - notBefore) is shorter than
 * min_lifetime seconds (renew.min_lifetime; 0 = no minimum) is a server
 * problem: renewals then come as often as renew.min_interval allows, and each
 * costs a TPM key. WARNING for such a certificate, else OK: the caller takes
 * the larger of this and severity_for(). */
Severity severity_for_lifetime(time_t not_before, time_t not_after, unsigned long long min_lifetime);

/* "ok", "notice", "warning", "error", "critical"; NULL for anything else. */
const char *severity_to_string(Severity s);

/* LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR, LOG_CRIT; LOG_CRIT for anything else. */
int severity_to_syslog(Severity s);
