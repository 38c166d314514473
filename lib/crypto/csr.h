/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * csr.h: PKCS#10 certification requests, signed by whatever key is handed in
 * (a TPM key through the fleetid-tpm provider in fleetid; a software key in tests).
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "util/diag.h"

typedef struct CsrRequest {
        const X509_NAME *subject;         /* copied into the request */
        EVP_PKEY *key;                    /* signs the request; its public part goes in */
        const char *digest;               /* "SHA256", "SHA384"; NULL = chosen from the key */
        const char *challenge_password;   /* RFC 2985 challengePassword, NULL = none */
        X509_EXTENSION *subject_alt_name; /* requested as is (re-enrollment keeps it), NULL = none */
} CsrRequest;

/* Builds and signs the request, returning its DER encoding. */
int csr_build_der(const CsrRequest *req, uint8_t **ret, size_t *ret_len, Diag *d);

/* Subject "CN=<cn>, serialNumber=<serial>" (either may be NULL, not both). */
int csr_subject_new(const char *cn, const char *serial, X509_NAME **ret, Diag *d);

/* The digest that matches the key's strength: SHA384 for P-384 and RSA >= 3072, else SHA256. */
const char *csr_default_digest(EVP_PKEY *key);
