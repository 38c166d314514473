/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-sign.h: one signature by a TPM key (TPM2_Sign), over a digest computed
 * in software, in the encoding OpenSSL and TLS expect.
 *
 * The digest is hashed outside the TPM: the TPM sees one TPM2_Sign per
 * signature (no hash sequence, no context duplication), which is what a kernel
 * resource manager's three object slots allow. The key must be an unrestricted
 * signing key (tpm-key.h); the null hashcheck ticket is then accepted.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_esys.h>

#include "util/diag.h"

typedef enum TpmSignScheme {
        TPM_SIGN_ECDSA,  /* DER ECDSA-Sig-Value (RFC 3279) */
        TPM_SIGN_RSASSA, /* PKCS #1 v1.5 */
        TPM_SIGN_RSAPSS, /* PSS, MGF1 with the same hash, salt as long as the digest */
} TpmSignScheme;

/* The TPM's hash algorithm for an OpenSSL digest name ("SHA256", "SHA2-384",
 * ...), TPM2_ALG_NULL if the TPM signs with no such hash here. */
TPMI_ALG_HASH tpm_sign_hash_from_name(const char *name);
/* The size of the hash's digest, 0 for an unknown algorithm. */
size_t tpm_sign_digest_size(TPMI_ALG_HASH hash);

/* Signs digest (tpm_sign_digest_size(hash) bytes) with the loaded key in one
 * TPM2_Sign and writes the encoded signature to sig (at most sig_size bytes).
 * Returns 0, or -errno with the reason in d: -EINVAL wrong digest size,
 * -ENOBUFS sig too small, the TPM's class of error (tpm-context.h) otherwise. */
int tpm_sign_digest(ESYS_CONTEXT *esys, ESYS_TR key, TpmSignScheme scheme, TPMI_ALG_HASH hash,
                    const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t *sig_len, size_t sig_size,
                    Diag *d);
