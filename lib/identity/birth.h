/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * birth.h: the device's birth identity (IDevID, IEEE 802.1AR): a signing key
 * that lives in the TPM at a persistent handle, and the manufacturer-signed
 * certificate for it, kept in a TPM NV index or in a file.
 *
 * birth_identity_load() refuses a certificate whose public key is not the
 * TPM key's, and a key whose attributes would allow it to leave the TPM,
 * before anything uses them.
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config/config.h"
#include "tpm/tpm-context.h"

typedef struct BirthIdentity {
        uint32_t key_handle;
        EVP_PKEY *public_key;  /* read from the TPM */
        X509 *cert;            /* the IDevID certificate */
        STACK_OF(X509) *chain; /* other certificates from the file (may be empty) */
        const char *source;    /* "TPM NV index" or "file" (static) */
} BirthIdentity;

int birth_identity_load(TpmContext *t, const Config *c, BirthIdentity **ret, Diag *d);
BirthIdentity *birth_identity_free(BirthIdentity *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BirthIdentity *, birth_identity_free);
