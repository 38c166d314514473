/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <string.h>
#include <strings.h>

#include "tpm/tpm-context.h"
#include "tpm/tpm-sign.h"
#include "util/macro.h"

TPMI_ALG_HASH tpm_sign_hash_from_name(const char *name) {
        static const struct {
                const char *names[3];
                TPMI_ALG_HASH alg;
        } table[] = {
                { { "SHA256", "SHA2-256", "SHA-256" }, TPM2_ALG_SHA256 },
                { { "SHA384", "SHA2-384", "SHA-384" }, TPM2_ALG_SHA384 },
                { { "SHA512", "SHA2-512", "SHA-512" }, TPM2_ALG_SHA512 },
        };

        if (!name)
                return TPM2_ALG_NULL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                for (size_t j = 0; j < 3; j++)
                        if (strcasecmp(name, table[i].names[j]) == 0)
                                return table[i].alg;
        return TPM2_ALG_NULL;
}

size_t tpm_sign_digest_size(TPMI_ALG_HASH hash) {
        switch (hash) {
        case TPM2_ALG_SHA256:
                return 32;
        case TPM2_ALG_SHA384:
                return 48;
        case TPM2_ALG_SHA512:
                return 64;
        default:
                return 0;
        }
}

/* r and s as the DER ECDSA-Sig-Value TLS and X.509 carry. */
static int ecdsa_to_der(const TPMS_SIGNATURE_ECC *ecc, uint8_t *sig, size_t *sig_len, size_t sig_size,
                        Diag *d) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(ecc->signatureR.buffer, ecc->signatureR.size, NULL);
        BIGNUM *s = BN_bin2bn(ecc->signatureS.buffer, ecc->signatureS.size, NULL);
        unsigned char *p = sig;
        int len, ret = -ENOMEM;

        if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s))
                goto out;
        r = s = NULL; /* owned by es now */
        len = i2d_ECDSA_SIG(es, NULL);
        if (len <= 0) {
                ret = diag_set(d, -EIO, "cannot encode the TPM's ECDSA signature");
                goto out;
        }
        if ((size_t) len > sig_size) {
                ret = diag_set(d, -ENOBUFS, "the ECDSA signature (%d bytes) exceeds the %zu-byte buffer",
                               len, sig_size);
                goto out;
        }
        len = i2d_ECDSA_SIG(es, &p);
        *sig_len = (size_t) len;
        ret = 0;
out:
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return ret;
}

int tpm_sign_digest(ESYS_CONTEXT *esys, ESYS_TR key, TpmSignScheme scheme, TPMI_ALG_HASH hash,
                    const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t *sig_len, size_t sig_size,
                    Diag *d) {
        /* An unrestricted key signs an outside digest with the null ticket. */
        const TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL };
        TPMT_SIG_SCHEME s = {};
        TPM2B_DIGEST dg = {};
        TPMT_SIGNATURE *out = NULL;
        TSS2_RC rc;
        int r = 0;

        if (tpm_sign_digest_size(hash) == 0 || digest_len != tpm_sign_digest_size(hash))
                return diag_set(d, -EINVAL, "a %zu-byte digest does not fit hash algorithm 0x%x", digest_len,
                                hash);
        switch (scheme) {
        case TPM_SIGN_ECDSA:
                s.scheme = TPM2_ALG_ECDSA;
                s.details.ecdsa.hashAlg = hash;
                break;
        case TPM_SIGN_RSASSA:
                s.scheme = TPM2_ALG_RSASSA;
                s.details.rsassa.hashAlg = hash;
                break;
        case TPM_SIGN_RSAPSS:
                s.scheme = TPM2_ALG_RSAPSS;
                s.details.rsapss.hashAlg = hash;
                break;
        default:
                return diag_set(d, -EINVAL, "unknown signature scheme %d", (int) scheme);
        }
        dg.size = (UINT16) digest_len;
        memcpy(dg.buffer, digest, digest_len);

        rc = Esys_Sign(esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &dg, &s, &ticket, &out);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "TPM2_Sign failed");

        switch (scheme) {
        case TPM_SIGN_ECDSA:
                r = ecdsa_to_der(&out->signature.ecdsa, sig, sig_len, sig_size, d);
                break;
        case TPM_SIGN_RSASSA:
        case TPM_SIGN_RSAPSS: {
                /* rsassa and rsapss share one layout. */
                const TPM2B_PUBLIC_KEY_RSA *rs = &out->signature.rsassa.sig;

                if (rs->size > sig_size) {
                        r = diag_set(d, -ENOBUFS, "the RSA signature (%u bytes) exceeds the %zu-byte buffer",
                                     rs->size, sig_size);
                        break;
                }
                memcpy(sig, rs->buffer, rs->size);
                *sig_len = rs->size;
                break;
        }
        }
        Esys_Free(out);
        return r;
}
