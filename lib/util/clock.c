/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include <stdio.h>

#include "util/clock.h"
#include "util/timestamp.h"

int clock_check(time_t now, time_t build_epoch, time_t birth_not_before, Diag *d) {
        char a[TIMESTAMP_MAX], b[TIMESTAMP_MAX];

        if (now < build_epoch) {
                timestamp_utc(now, a);
                timestamp_utc(build_epoch, b);
                return diag_set(d, -ERANGE, "the clock says %s, before this fleetid was built (%s)", a, b);
        }
        if (birth_not_before > 0 && now < birth_not_before) {
                timestamp_utc(now, a);
                timestamp_utc(birth_not_before, b);
                return diag_set(d, -ERANGE,
                                "the clock says %s, before the birth certificate's notBefore (%s)", a, b);
        }
        return 0;
}

int clock_check_stored(time_t now, time_t stored_not_before, time_t max_skew, bool synchronized, Diag *d) {
        char a[TIMESTAMP_MAX], b[TIMESTAMP_MAX];

        if (synchronized || stored_not_before <= 0 || max_skew < 0 || stored_not_before - now <= max_skew)
                return 0;
        timestamp_utc(now, a);
        timestamp_utc(stored_not_before, b);
        return diag_set(
                d, -ERANGE,
                "the clock says %s, more than est.max_clock_skew = %llds before the notBefore of the "
                "operational certificate stored earlier (%s), and time synchronisation has not vouched for it",
                a, (long long) max_skew, b);
}

time_t clock_not_before_slack(bool renewal, time_t max_skew) {
        if (max_skew < 0)
                return 0;
        return renewal && max_skew > CLOCK_RENEWAL_GRACE_SEC ? CLOCK_RENEWAL_GRACE_SEC : max_skew;
}

bool clock_behind_server(time_t now, time_t server_date, time_t max_skew, time_t *ret_behind) {
        if (server_date <= 0 || server_date <= now || server_date - now <= max_skew)
                return false;
        if (ret_behind)
                *ret_behind = server_date - now;
        return true;
}
