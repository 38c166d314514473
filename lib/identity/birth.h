/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * birth.h: the device's birth identity (IDevID, IEEE 802.1AR): a signing key
 * that lives in the TPM at a persistent handle, and the manufacturer-signed
 * certificate for it, kept in a TPM NV index or in a file.
 *
 * birth_identity_load() refuses a certificate whose public key is not the
 * TPM key's, and a key whose attributes would allow it to leave the TPM,
 * before anything uses them.
 *
 * After a TPM2_Clear (docs/provisioning.md): the key is gone from its
 * persistent handle and an NV index defined by the owner is deleted.
 * birth_identity_load_from() then makes the key again from fleetid's or the
 * TCG's IDevID template (tpm-birth-key.h) and keeps it only if it is the certificate's,
 * and takes the certificate from the state directory's copy (birth.pem) when
 * the NV index is gone.
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config/config.h"
#include "store/state-store.h"
#include "tpm/tpm-birth-key.h"
#include "tpm/tpm-context.h"

typedef struct BirthIdentity {
        uint32_t key_handle;
        EVP_PKEY *public_key;         /* read from the TPM */
        X509 *cert;                   /* the IDevID certificate */
        STACK_OF(X509) *chain;        /* other certificates from the file (may be empty) */
        const char *source;           /* "TPM NV index", "file" or "state directory copy" (static) */
        bool recreated;               /* the key was missing and was made again from its template: */
        BirthTemplate recreated_from; /* this one (tpm-birth-key.h) */
        bool da_protected;            /* the key lacks noDA: a TPM in dictionary-attack lockout refuses it */
} BirthIdentity;

/* The state directory's copy of the birth certificate is read up to this size. */
#define BIRTH_COPY_MAX (256 * 1024)

/* store: where the copy of the certificate is (NULL: none). recreate: make a
 * missing key again from its template (else -ENOENT, "not provisioned"). */
int birth_identity_load_from(TpmContext *t, const Config *c, StateStore *store, bool recreate,
                             BirthIdentity **ret, Diag *d);
/* birth_identity_load_from() without a copy and without making the key again. */
int birth_identity_load(TpmContext *t, const Config *c, BirthIdentity **ret, Diag *d);
BirthIdentity *birth_identity_free(BirthIdentity *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BirthIdentity *, birth_identity_free);
