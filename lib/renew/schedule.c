/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "util/backoff.h"
#include "renew/schedule.h"

/* u in [-1, 1) as a fraction of 2^63, without floating point. */
static __int128 signed_fraction(uint64_t random) {
        return (__int128) (int64_t) (random ^ (1ULL << 63));
}

time_t renew_due(time_t not_before, time_t not_after, const RenewPolicy *p, uint64_t random) {
        __int128 life = (__int128) not_after - not_before, due;

        if (life <= 0)
                return not_before;
        due = (__int128) not_before + life * p->share_percent / 100;
        /* + u * jitter * L with u = signed_fraction / 2^63 */
        due += signed_fraction(random) * (life * p->jitter_percent / 100) / ((__int128) 1 << 63);
        if (due < not_before)
                due = not_before;
        if (due >= not_after)
                due = not_after - 1;
        return (time_t) due;
}

time_t renew_due_floored(time_t due, time_t last_renewal, uint64_t min_interval, time_t now) {
        __int128 floor;

        if (last_renewal > now)
                last_renewal = now;
        floor = (__int128) last_renewal + min_interval;
        if (last_renewal <= 0 || floor <= due)
                return due;
        return floor > INT64_MAX ? (time_t) INT64_MAX : (time_t) floor;
}

uint64_t renew_retry_period(time_t now, time_t not_after, const RenewPolicy *p) {
        uint64_t cap = p->retry_max;

        if (not_after > now) {
                uint64_t left = (uint64_t) (not_after - now);

                if (left / 10 < cap)
                        cap = left / 10;
        } else
                cap = RENEW_RETRY_FLOOR_SEC; /* expired: keep trying, at the floor */
        if (cap < RENEW_RETRY_FLOOR_SEC)
                cap = RENEW_RETRY_FLOOR_SEC;
        return cap;
}

/* A 64-bit finalizer (splitmix64's): the phase does not follow the due time,
 * which is drawn from the same value. */
static uint64_t mix64(uint64_t z) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

uint64_t renew_retry_delay(unsigned failures, time_t now, time_t not_after, const RenewPolicy *p,
                           uint64_t random) {
        uint64_t period = renew_retry_period(now, not_after, p), initial = p->retry_initial, phase, at;

        /* The first retry comes soon: a one-off failure costs little. It
         * waits an eighth of the period, but no more than a minute (the
         * devices that fell due in the last minute of an outage add to the
         * first minute of the recovery), nor less than retry_initial,
         * jittered. */
        if (failures <= 1) {
                uint64_t soon = period / 8 < RENEW_RETRY_FLOOR_SEC ? period / 8 : RENEW_RETRY_FLOOR_SEC;

                if (initial < soon)
                        initial = soon;
                if (initial > period)
                        initial = period;
                return backoff_delay(1, initial, period, random);
        }
        /* Every later one falls on this certificate's own grid: the times t
         * with t = phase (mod period), the phase drawn from `random`. Across a
         * fleet the phases are uniform, whenever and however the devices
         * started failing, so when the EST server returns after an outage
         * the backlog comes back at a flat rate, all of it within one period:
         * no peak at the moment of return, no long tail (a ladder that doubles
         * and jitters every step makes both; see the fleet-scale benchmark in
         * docs/benchmarks.md). */
        phase = mix64(random) % period;
        at = (uint64_t) (now >= 0 ? now : 0) % period;
        return phase > at ? phase - at : period - (at - phase);
}

uint64_t renew_retry_after_delay(uint64_t retry_after_sec, time_t now, time_t not_after) {
        uint64_t delay = retry_after_sec ? retry_after_sec : 1;

        /* Expired while the request was under way: the fallback, at once. */
        if (not_after < now)
                return 1;
        /* notAfter is the last valid second: one past it the certificate has expired. */
        if ((uint64_t) (not_after - now) + 1 < delay)
                delay = (uint64_t) (not_after - now) + 1;
        return delay;
}
