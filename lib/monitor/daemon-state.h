/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon-state.h: the states of fleetidd, one enum and one string table.
 *
 * The status record, the metrics file, fleetidctl and the hook all name the
 * state through this table, so that a new state is added in one place.
 *
 *   enrolling      an enrollment attempt is running (no usable identity yet)
 *   enrolled       the operational certificate is valid; renewal scheduled
 *   renewing       a renewal attempt is running (the current identity holds)
 *   waiting-retry  the last attempt failed; the next one is scheduled
 *   failed         the identity is unusable and fleetidd will not fix it by
 *                  itself (renew.fallback_to_birth = false), or the last
 *                  --oneshot attempt failed
 *   waiting-clock  the system clock cannot be trusted yet; waiting for it
 *   tpm-cleared    the TPM was cleared (TPM2_Clear: its storage root key
 *                  changed, its endorsement key did not): the operational
 *                  key is gone; the birth key is made again from its template
 *                  and the device enrolls anew (passed through on the way)
 *   tpm-replaced   the TPM is another one (its endorsement key changed): the
 *                  birth certificate is not for it; fleetidd never enrolls
 *                  with it and needs a person (checked again after retry.max)
 *   resetting      a factory reset is wiping the operational identity
 *                  (docs/factory-reset.md); enrolling with the new owner follows
 *   birth-expired  an enrollment needs the birth identity, and the birth
 *                  certificate has expired on the system clock: nothing is
 *                  sent; tried again after retry.max, or at once when the
 *                  clock is set (it may be the clock that is wrong)
 *
 * The order is the order of the metrics file's lines.
 */
#pragma once

typedef enum DaemonState {
        DAEMON_STATE_ENROLLING,
        DAEMON_STATE_ENROLLED,
        DAEMON_STATE_RENEWING,
        DAEMON_STATE_WAITING_RETRY,
        DAEMON_STATE_FAILED,
        DAEMON_STATE_WAITING_CLOCK,
        DAEMON_STATE_TPM_CLEARED,
        DAEMON_STATE_TPM_REPLACED,
        DAEMON_STATE_RESETTING,
        DAEMON_STATE_BIRTH_EXPIRED,
        _DAEMON_STATE_MAX,
        _DAEMON_STATE_INVALID = -1,
} DaemonState;

/* "enrolling", ...; NULL for a value outside the enum. */
const char *daemon_state_to_string(DaemonState s);

/* The state a string names, _DAEMON_STATE_INVALID for NULL or any other text. */
DaemonState daemon_state_from_string(const char *s);
