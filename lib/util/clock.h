/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * clock.h: is the system clock believable?
 *
 * Gateways boot with clocks at 1970 or stale. Before a clock is trusted to
 * judge certificate validity, it must not be earlier than the time this
 * program was built, nor than the birth certificate's notBefore (the device
 * existed then). A clock that fails this is not used to declare certificates
 * invalid or to decide renewals; the daemon waits for time synchronisation.
 */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "util/diag.h"

/* 0 if plausible; -ERANGE with the reason in d otherwise. birth_not_before 0 = unknown. */
int clock_check(time_t now, time_t build_epoch, time_t birth_not_before, Diag *d);

/* The operational certificate fleetid stored was valid when it was stored: a
 * notBefore more than max_skew ahead of now says this clock went back (an RTC
 * that lost time at boot), not that the certificate is bad, unless time
 * synchronisation vouches for the clock. 0 if the clock may judge it; -ERANGE
 * with the reason in d otherwise. stored_not_before 0 = none stored. */
int clock_check_stored(time_t now, time_t stored_not_before, time_t max_skew, bool synchronized, Diag *d);

/* A renewal's certificate may be dated this far after the local clock (and
 * never more than max_skew): a CA dates it at its own second of issuance, which
 * a clock a fraction of a second behind sees as the next one. */
#define CLOCK_RENEWAL_GRACE_SEC 5

/* How far a newly issued certificate's notBefore may lie after the local
 * clock. At renewal CLOCK_RENEWAL_GRACE_SEC at most: the certificate replaces
 * a valid identity, so it must be valid by the local clock, but for the
 * granularity of certificate dates. At first enrollment, est.max_clock_skew:
 * a CA whose clock runs a little ahead, or a local clock a little behind that
 * time synchronisation is catching up, gives a certificate valid in moments. */
time_t clock_not_before_slack(bool renewal, time_t max_skew);

/* The EST server's Date (0 = none) is a witness, never a clock: it may say
 * that the local clock is behind, by how much (*ret_behind), when that is more
 * than max_skew. It never moves the time certificates are judged at. */
bool clock_behind_server(time_t now, time_t server_date, time_t max_skew, time_t *ret_behind);
