/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-crash.h: TEST ONLY crash points, for the integration tests that prove
 * a step is crash-safe without timing tricks: a process whose environment
 * variable `variable` names `step` SIGKILLs itself when it reaches that step,
 * as a power cut at that instant would stop it. Without the variable (any
 * production run) it does nothing.
 *
 * FLEETID_TEST_KEY_CRASH_AFTER=persisted: right after a new operational key
 * is made persistent in the TPM (identity/operational.h);
 * FLEETID_TEST_KEY_CRASH_AFTER=stored: right after a renewal stored its new
 * certificate, before the old key is evicted (renew/renew.c).
 */
#pragma once

#define TEST_CRASH_KEY_VARIABLE "FLEETID_TEST_KEY_CRASH_AFTER"

void test_crash_point(const char *variable, const char *step);
