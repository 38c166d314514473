/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * operational.h: the device's current operational identity (LDevID): the
 * certificate stored in the state directory and the TPM key it belongs to.
 *
 * Renewals alternate the key between operational.key_handle and
 * operational.spare_key_handle; which one is current is derived from the
 * stored certificate (whose public key matches), never kept separately.
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "crypto/certcheck.h"
#include "store/state-store.h"
#include "tpm/tpm-context.h"
#include "identity/operational-keys.h"

typedef struct OperationalIdentity {
        uint32_t key_handle;   /* the handle holding the certificate's key */
        uint32_t other_handle; /* the other one of the pair, free for the next key */
        X509 *cert;            /* the leaf */
        STACK_OF(X509) *chain; /* the certificates stored after the leaf */
        EVP_PKEY *public_key;  /* the TPM key's public part */
        time_t not_before, not_after;
} OperationalIdentity;

/* -ENOENT: no operational certificate stored; -ENOKEY: the stored certificate
 * belongs to neither TPM handle. Validity is NOT checked here. */
int operational_load(const Config *c, TpmContext *tpm, StateStore *store, OperationalIdentity **ret, Diag *d);

/* Whether operational_load() failing with r means there is no usable
 * operational identity (none stored, unreadable, its key gone), so the device
 * must enroll anew; false for trouble a retry may cure (the TPM busy or
 * unreachable, -EIO, -ENOMEM). Enrollment and renewal decide by this one rule,
 * so a renewal never hands over to an enrollment that finds nothing to do. */
bool operational_load_failed_for_good(int r);

/* Stores a validated chain (the operational certificate first) as the current
 * operational identity, atomically. */
int operational_save(StateStore *store, STACK_OF(X509) *chain, Diag *d);

OperationalIdentity *operational_identity_free(OperationalIdentity *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(OperationalIdentity *, operational_identity_free);

/* Makes a new operational key of alg at handle (replace: evicting what is
 * there, only once the new key is loaded), noted as above first. ret_pub
 * gets its public key. */
int operational_key_create(const Config *c, TpmContext *tpm, StateStore *store, KeyAlgorithm alg,
                           uint32_t handle, bool replace, EVP_PKEY **ret_pub, Diag *d);

/* Adds the key to the record (see above); reads the operational handles
 * through tpm only when the record is full. */
int operational_note_key(const Config *c, TpmContext *tpm, StateStore *store, EVP_PKEY *pub, Diag *d);
