/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-fingerprint.h: which TPM this is, and whether it was cleared, from the
 * names of two keys that its primary seeds determine:
 *
 *   srk  the storage root key at tpm.srk_handle (the TCG SRK template): its
 *        name changes when TPM2_Clear replaces the storage primary seed;
 *   ek   the endorsement key of the TCG EK Credential Profile's template L-2
 *        (ECC NIST P-256), made by TPM2_CreatePrimary and flushed again: its
 *        name changes only with the endorsement primary seed, that is with
 *        another TPM (or a TPM2_ChangeEPS, which fleetid treats the same).
 *
 * A name is nameAlg || H(public area): it says the key is the same without
 * holding anything secret. The record is text, "srk=HEX\nek=HEX\n".
 */
#pragma once

#include <stddef.h>

#include "tpm/tpm-context.h"

typedef struct TpmFingerprint {
        TPM2B_NAME srk;
        TPM2B_NAME ek;
} TpmFingerprint;

typedef enum TpmChange {
        TPM_CHANGE_NONE,     /* the same TPM, not cleared */
        TPM_CHANGE_CLEARED,  /* the same endorsement seed, another storage seed: TPM2_Clear */
        TPM_CHANGE_REPLACED, /* another endorsement seed: another TPM */
} TpmChange;

/* The fingerprint of the TPM now: one TPM2_ReadPublic of the SRK (none if it
 * was opened through t already), one TPM2_CreatePrimary and one
 * TPM2_FlushContext for the EK. Without an SRK at srk_handle, the name one
 * made now would have (a transient one, flushed again): nothing is left in
 * the TPM. */
int tpm_fingerprint_read(TpmContext *t, uint32_t srk_handle, TpmFingerprint *ret, Diag *d);

/* What changed from `was` to `now`. */
TpmChange tpm_fingerprint_compare(const TpmFingerprint *was, const TpmFingerprint *now);

/* The record's text (malloc()ed), and back: -EBADMSG with the reason in d for
 * anything but the two lines of lowercase hex names, each at most a TPM2B_NAME. */
int tpm_fingerprint_format(const TpmFingerprint *f, char **ret);
int tpm_fingerprint_parse(const char *text, size_t len, TpmFingerprint *ret, Diag *d);

/* A short form of a name for a log line: the first 8 bytes of the hash, hex. */
void tpm_fingerprint_name_short(const TPM2B_NAME *n, char buf[static 17]);
