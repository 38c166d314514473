/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * reset-log.h: the journal records of a factory reset, one text for fleetidd
 * and fleetidctl (whichever ran the wipe): FLEETID_MESSAGE_FACTORY_RESET when
 * the wipe ends, FLEETID_MESSAGE_FACTORY_RESET_ENROLLED when the new owner's
 * certificate is stored.
 */
#pragma once

#include <stdbool.h>

#include "config/config.h"
#include "reset/reset.h"
#include "util/diag.h"

/* The wipe's outcome r (0, or the error in d): who asked, the old
 * certificate's serial and issuer, the handles evicted and any foreign
 * object, the new owner's EST URL and trust anchor, and what comes next. */
void reset_log_wiped(const ResetMarker *m, const Config *owner, const ResetReport *rep, int r, const Diag *d);

/* The reset ended with the new owner's certificate (serial, issuer). */
void reset_log_enrolled(const ResetMarker *m, const Config *owner, const char *serial, const char *issuer);

/* TEST ONLY: FLEETID_TEST_RESET_CRASH_AFTER=STEP kills the process running
 * the reset with SIGKILL right after STEP (marker, owner, keys, certificate,
 * trust, status, sensors, phase), and with in_worker its parent fleetidd
 * first: a power cut at that point. For tests/integration/test-factory-reset-crash.sh
 * only; never set it on a device. FLEETID_TEST_RESET_STOP_AFTER=STEP stops
 * fleetidd's reset worker (SIGSTOP) after STEP instead, for
 * test-factory-reset.sh to ask for another reset during the wipe. */
void reset_test_crash_hook(const char *step, bool in_worker);
