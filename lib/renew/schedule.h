/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * schedule.h: when to renew the operational certificate, and how soon to retry.
 *
 * Pure arithmetic on times handed in (a fake clock in tests, the fleet
 * simulation in tests/bench/), with the random draws handed in too.
 *
 * Renewal is due at  notBefore + share * L + u * jitter * L,  u uniform in
 * [-1, 1), L = notAfter - notBefore, so a fleet enrolled in one hour spreads
 * its renewals over 2 * jitter * L.
 *
 * Retries after a failed renewal (with no Retry-After) go by the retry
 * period: the smaller of `retry_max` and a tenth of the time left before
 * expiry, never less than a minute (the floor also once expired). The first
 * retry comes soon, after the larger of `retry_initial` and the smaller of an
 * eighth of the period and a minute, jittered; every later one falls on the
 * certificate's own grid, the times t = phase (mod period), the phase drawn
 * from the certificate's random value: at most a period apart. The nearer
 * the expiry, the more often fleetid tries, and it never stops trying.
 *
 *   time left      retry period (retry_max = 2 h)   first retry
 *   > 20 h         2 h                               30-60 s
 *   10 h           1 h                               30-60 s
 *   1 h            6 min                             23-45 s
 *   < 10 min       1 min                             15-30 s
 *
 * Why a grid rather than a doubling ladder: across a fleet the phases are
 * uniform, however the devices started failing, so when the EST server
 * returns after an outage the backlog comes back at a flat rate and is gone
 * within one period. A ladder that doubles and jitters every step piles the
 * devices up at the start of the recovery and leaves a tail as long as its
 * cap (docs/benchmarks.md, fleet-scale renewal).
 */
#pragma once

#include <stdint.h>
#include <time.h>

typedef struct RenewPolicy {
        unsigned share_percent;  /* 67 */
        unsigned jitter_percent; /* 5 */
        uint64_t retry_initial;  /* seconds, 30 */
        uint64_t retry_max;      /* seconds, 7200: the retry period far from expiry */
} RenewPolicy;

#define RENEW_RETRY_FLOOR_SEC 60

/* The renewal time for a certificate valid [not_before, not_after]; random is
 * a uniformly distributed 64-bit value. Always within [not_before, not_after). */
time_t renew_due(time_t not_before, time_t not_after, const RenewPolicy *p, uint64_t random);

/* The renewal time `due`, but no sooner than min_interval seconds after the
 * last successful enrollment or renewal (last_renewal, 0 = none known): a CA
 * that issues very short certificates must not drive a renewal storm, each
 * renewal creating and evicting a persistent TPM key (NV wear). Once held
 * back, the certificate may expire first; the fallback then enrolls again,
 * no sooner either. A last_renewal after `now` (the clock went back, or a
 * damaged status file) counts as `now`: the hold never exceeds min_interval. */
time_t renew_due_floored(time_t due, time_t last_renewal, uint64_t min_interval, time_t now);

/* The delay before retrying a renewal the server answered with Retry-After:
 * its value (at least a second), but no later than just after the certificate
 * expires: then /simplereenroll is over and the fallback to the birth identity
 * (/simpleenroll, another request) takes over; 1 if it has expired already. */
uint64_t renew_retry_after_delay(uint64_t retry_after_sec, time_t now, time_t not_after);

/* The retry period at time `now` for a certificate expiring at not_after. */
uint64_t renew_retry_period(time_t now, time_t not_after, const RenewPolicy *p);

/* The delay before retry number `failures` (>= 1) at time `now`. random is
 * the certificate's own uniformly distributed 64-bit value, the same at every
 * call (fleetidd passes the one it draws the due time from): it gives the
 * first retry's jitter and the grid's phase. */
uint64_t renew_retry_delay(unsigned failures, time_t now, time_t not_after, const RenewPolicy *p,
                           uint64_t random);
