/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * challenge.c: the domain-separated challenge digest, its signature by any
 * EVP_PKEY and its verification in software.
 */
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "crypto/challenge.h"
#include "crypto/ossl-util.h"

int challenge_check_nonce(size_t nonce_len, Diag *d) {
        if (nonce_len < CHALLENGE_NONCE_MIN || nonce_len > CHALLENGE_NONCE_MAX)
                return diag_set(d, -EINVAL, "the nonce is %zu bytes; it must be %d to %d bytes", nonce_len,
                                CHALLENGE_NONCE_MIN, CHALLENGE_NONCE_MAX);
        return 0;
}

int challenge_check_purpose(const char *purpose, Diag *d) {
        size_t n;

        if (!purpose || !*purpose)
                return diag_set(d, -EINVAL,
                                "the purpose is empty; it must be 1 to %d characters from [a-z0-9._-]",
                                CHALLENGE_PURPOSE_MAX);
        n = strnlen(purpose, CHALLENGE_PURPOSE_MAX + 1);
        if (n > CHALLENGE_PURPOSE_MAX)
                return diag_set(d, -EINVAL, "the purpose is longer than %d characters", CHALLENGE_PURPOSE_MAX);
        for (size_t i = 0; i < n; i++) {
                char c = purpose[i];

                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                        return diag_set(d, -EINVAL,
                                        "the purpose has the character 0x%02x at offset %zu; only [a-z0-9._-] "
                                        "are allowed",
                                        (unsigned) (unsigned char) c, i);
        }
        return 0;
}

int challenge_digest(const uint8_t *nonce, size_t nonce_len, const char *purpose,
                     uint8_t ret[CHALLENGE_DIGEST_SIZE], Diag *d) {
        static const uint8_t zero = 0;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        uint8_t out[CHALLENGE_DIGEST_SIZE];
        unsigned out_len = 0;
        int r;

        r = challenge_check_nonce(nonce_len, d);
        if (r < 0)
                return r;
        r = challenge_check_purpose(purpose, d);
        if (r < 0)
                return r;

        md = EVP_MD_CTX_new();
        if (!md)
                return diag_set(d, -ENOMEM, "out of memory");
        if (EVP_DigestInit_ex2(md, EVP_sha256(), NULL) <= 0 ||
            EVP_DigestUpdate(md, CHALLENGE_DOMAIN, strlen(CHALLENGE_DOMAIN)) <= 0 ||
            EVP_DigestUpdate(md, &zero, 1) <= 0 || EVP_DigestUpdate(md, purpose, strlen(purpose)) <= 0 ||
            EVP_DigestUpdate(md, &zero, 1) <= 0 || EVP_DigestUpdate(md, nonce, nonce_len) <= 0 ||
            EVP_DigestFinal_ex(md, out, &out_len) <= 0 || out_len != sizeof(out))
                return diag_set_ssl(d, -EIO, "cannot compute the challenge digest");
        memcpy(ret, out, sizeof(out));
        return 0;
}

/* The algorithm for a key and the padding wished for; NULL if none fits. */
static const char *alg_for_key(EVP_PKEY *key, bool rsa_pss) {
        if (EVP_PKEY_is_a(key, "EC"))
                return rsa_pss ? NULL : CHALLENGE_ALG_ECDSA;
        if (EVP_PKEY_is_a(key, "RSA"))
                return rsa_pss ? CHALLENGE_ALG_RSA_PSS : CHALLENGE_ALG_RSA_PKCS1;
        return NULL;
}

/* SHA-256 as the signature's digest and, for RSA, the padding of alg. */
static int setup_ctx(EVP_PKEY_CTX *ctx, const char *alg) {
        if (EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0)
                return -EIO;
        if (streq_ptr(alg, CHALLENGE_ALG_RSA_PKCS1))
                return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 ? 0 : -EIO;
        if (streq_ptr(alg, CHALLENGE_ALG_RSA_PSS))
                return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
                                       EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0 &&
                                       EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, CHALLENGE_DIGEST_SIZE) > 0
                               ? 0
                               : -EIO;
        return 0;
}

int challenge_sign(EVP_PKEY *key, const uint8_t *nonce, size_t nonce_len, const char *purpose, bool rsa_pss,
                   uint8_t **ret_sig, size_t *ret_sig_len, const char **ret_alg, Diag *d) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        uint8_t digest[CHALLENGE_DIGEST_SIZE];
        const char *alg;
        size_t len = 0;
        int r;

        r = challenge_digest(nonce, nonce_len, purpose, digest, d);
        if (r < 0)
                return r;
        alg = alg_for_key(key, rsa_pss);
        if (!alg)
                return diag_set(d, -EOPNOTSUPP, "a %s key cannot sign a challenge%s",
                                EVP_PKEY_get0_type_name(key),
                                rsa_pss ? " with RSA-PSS" : "; only EC and RSA keys can");

        /* The key's own library context and provider: a TPM key signs in the TPM. */
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        if (!ctx)
                return diag_set_ssl(d, -ENOMEM, "cannot set up the challenge signature");
        if (EVP_PKEY_sign_init(ctx) <= 0 || setup_ctx(ctx, alg) < 0 ||
            EVP_PKEY_sign(ctx, NULL, &len, digest, sizeof(digest)) <= 0)
                return diag_set_ssl(d, -EIO, "cannot sign the challenge (%s)", alg);
        if (len == 0 || len > CHALLENGE_SIGNATURE_MAX)
                return diag_set(d, -EIO, "the challenge signature would be %zu bytes", len);
        sig = malloc(len);
        if (!sig)
                return diag_set(d, -ENOMEM, "out of memory");
        if (EVP_PKEY_sign(ctx, sig, &len, digest, sizeof(digest)) <= 0)
                return diag_set_ssl(d, -EIO, "cannot sign the challenge (%s)", alg);

        *ret_sig = TAKE_PTR(sig);
        *ret_sig_len = len;
        *ret_alg = alg;
        return 0;
}

int challenge_verify(EVP_PKEY *pub, const char *alg, const uint8_t *nonce, size_t nonce_len,
                     const char *purpose, const uint8_t *sig, size_t sig_len, Diag *d) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        uint8_t digest[CHALLENGE_DIGEST_SIZE];
        bool pss;
        int r;

        if (!streq_ptr(alg, CHALLENGE_ALG_ECDSA) && !streq_ptr(alg, CHALLENGE_ALG_RSA_PKCS1) &&
            !streq_ptr(alg, CHALLENGE_ALG_RSA_PSS))
                return diag_set(d, -EINVAL, "unknown signature algorithm '%.64s'; expected %s, %s or %s",
                                strempty(alg), CHALLENGE_ALG_ECDSA, CHALLENGE_ALG_RSA_PKCS1,
                                CHALLENGE_ALG_RSA_PSS);
        r = challenge_digest(nonce, nonce_len, purpose, digest, d);
        if (r < 0)
                return r;
        pss = streq_ptr(alg, CHALLENGE_ALG_RSA_PSS);
        if (!streq_ptr(alg_for_key(pub, pss), alg))
                return diag_set(d, -EKEYREJECTED, "a %s signature cannot come from a %s key", alg,
                                EVP_PKEY_get0_type_name(pub) ?: "unknown");
        if (sig_len == 0 || sig_len > CHALLENGE_SIGNATURE_MAX)
                return diag_set(d, -EKEYREJECTED, "the signature is %zu bytes; expected 1 to %d", sig_len,
                                CHALLENGE_SIGNATURE_MAX);

        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        if (!ctx)
                return diag_set_ssl(d, -ENOMEM, "cannot set up the challenge verification");
        if (EVP_PKEY_verify_init(ctx) <= 0 || setup_ctx(ctx, alg) < 0)
                return diag_set_ssl(d, -EIO, "cannot set up the challenge verification (%s)", alg);
        r = EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof(digest));
        if (r != 1) {
                ERR_clear_error();
                return diag_set(d, -EKEYREJECTED,
                                "the %s signature over the challenge (purpose '%s') is not valid", alg,
                                purpose);
        }
        return 0;
}
