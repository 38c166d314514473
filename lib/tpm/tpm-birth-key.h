/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-birth-key.h: the birth key (IDevID) as the TCG's "TPM 2.0 Keys for
 * Device Identity and Attestation" describes it: a primary key of the
 * endorsement hierarchy, made by TPM2_CreatePrimary from a fixed template
 * (the IDevID templates H-1, H-2, H-3 of that document, with noDA added:
 * fleetid's template), kept at a persistent handle.
 *
 * A primary key is derived from its hierarchy's primary seed and the template
 * alone. TPM2_Clear replaces the storage primary seed (every key under the
 * SRK is lost for good) and evicts the persistent objects of the storage and
 * endorsement hierarchies, but keeps the endorsement primary seed: the same
 * template then gives the same key, bit for bit, which is made persistent
 * again. docs/provisioning.md describes the templates and the handles.
 */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>

#include "config/config.h"
#include "tpm/tpm-context.h"

/* Which template: fleetid's (the TCG's plus noDA, what fleetid-provision
 * makes), or the TCG's as it is (no noDA: what another tool following the
 * TCG document makes; a TPM in dictionary-attack lockout refuses that key). */
typedef enum BirthTemplate {
        BIRTH_TEMPLATE_FLEETID,
        BIRTH_TEMPLATE_TCG,
        _BIRTH_TEMPLATE_MAX,
        _BIRTH_TEMPLATE_INVALID = -1,
} BirthTemplate;

/* "fleetid", "tcg"; NULL for a value outside the enum. */
const char *birth_template_to_string(BirthTemplate t);
BirthTemplate birth_template_from_string(const char *s);

/* The template for alg: H-1 (rsa-2048), H-2 (ecc-p256), H-3 with the signing
 * scheme left to each signature (ecc-p384; docs/provisioning.md says why),
 * with noDA for BIRTH_TEMPLATE_FLEETID. -EOPNOTSUPP for an algorithm the TCG
 * gives no IDevID template for (rsa-3072), -EINVAL for another `which`. */
int tpm_birth_key_template(KeyAlgorithm alg, BirthTemplate which, TPM2B_PUBLIC *ret);

/* Makes the birth key of alg from template `which` (TPM2_CreatePrimary in
 * the endorsement hierarchy) and makes it persistent at handle; -EEXIST if
 * the handle is taken, unless replace. ret_pub (may be NULL) gets the public
 * key. */
int tpm_birth_key_create(TpmContext *t, KeyAlgorithm alg, BirthTemplate which, uint32_t handle, bool replace,
                         EVP_PKEY **ret_pub, Diag *d);

/* After a TPM2_Clear: makes the birth key of alg again, from fleetid's
 * template, else from the TCG's, whichever gives `expect` (the birth
 * certificate's key), and makes it persistent at handle (which must be
 * free). -EKEYREJECTED if neither gives it (nothing is persisted: the
 * endorsement seed is not the one the certificate was made for, or the key
 * came from another template). ret_template (may be NULL): which one. */
int tpm_birth_key_recreate(TpmContext *t, KeyAlgorithm alg, uint32_t handle, EVP_PKEY *expect,
                           BirthTemplate *ret_template, Diag *d);

/* Which birth key template the key at handle was made from: 1 and *ret, or 0
 * if none (another key, e.g. an SRK child as fleetid made birth keys
 * before), -ENOENT if nothing is there. No TPM command if the key was read
 * through t already. */
int tpm_birth_key_template_of(TpmContext *t, uint32_t handle, BirthTemplate *ret, Diag *d);

/* Whether the key at handle was made from a birth key template, and so can be
 * made again after a TPM2_Clear: 1 yes, 0 no, -ENOENT if nothing is there. */
int tpm_birth_key_is_recreatable(TpmContext *t, uint32_t handle, Diag *d);
