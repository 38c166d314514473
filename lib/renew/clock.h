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

#include <time.h>

#include "util/diag.h"

/* 0 if plausible; -ERANGE with the reason in d otherwise. birth_not_before 0 = unknown. */
int clock_check(time_t now, time_t build_epoch, time_t birth_not_before, Diag *d);

/* An EST server's Date as a lower bound: max(now, server_date). */
time_t clock_lower_bound(time_t now, time_t server_date);
