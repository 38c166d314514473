/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-watch.h: whether the TPM is still the one the device's identity was
 * made in, and whether it was cleared since, against a record in the state
 * directory (STATE_TPM_FINGERPRINT, tpm/tpm-fingerprint.h).
 *
 * Asked where fleetidd must enroll (no usable operational identity): at a
 * start without one, and after a failure that left none. A device whose
 * operational key is still at its handle and matches its certificate was not
 * cleared (TPM2_Clear evicts that key) and is in the same TPM (the key cannot
 * leave it): that start costs no TPM command here.
 */
#pragma once

#include <stdbool.h>

#include "config/config.h"
#include "store/state-store.h"
#include "tpm/tpm-fingerprint.h"

typedef struct TpmWatch {
        TpmChange change;   /* against the record; TPM_CHANGE_NONE also when there was none */
        bool had_record;    /* a record was there (and readable) */
        bool record_broken; /* a record was there but could not be read: replaced by the TPM's now */
        TpmFingerprint was; /* with had_record */
        TpmFingerprint now;
} TpmWatch;

/* Reads the TPM's fingerprint and compares it with the record. The record is
 * written when there was none (or a broken one), and after a clear (the old
 * storage root key is gone for good); after a replacement it is kept, so
 * that every later check finds the replacement again until a person acts
 * (provisions the new TPM and removes the record, or resets the device). */
int tpm_watch_check(TpmContext *t, const Config *c, StateStore *store, TpmWatch *ret, Diag *d);
