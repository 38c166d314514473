/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <string.h>

#include "crypto/csr.h"

const char *csr_default_digest(EVP_PKEY *key) {
        int bits = EVP_PKEY_get_bits(key);

        if (EVP_PKEY_is_a(key, "EC"))
                return bits > 256 ? "SHA384" : "SHA256";
        return bits >= 3072 ? "SHA384" : "SHA256";
}

int csr_subject_new(const char *cn, const char *serial, X509_NAME **ret, Diag *d) {
        X509_NAME *name;

        if (isempty(cn) && isempty(serial))
                return diag_set(d, -EINVAL, "a CSR subject needs a common name or a serial number");
        name = X509_NAME_new();
        if (!name)
                return -ENOMEM;
        if ((!isempty(cn) && !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                         (const unsigned char *) cn, -1, -1, 0)) ||
            (!isempty(serial) && !X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
                                                             (const unsigned char *) serial, -1, -1, 0))) {
                X509_NAME_free(name);
                return diag_set_ssl(d, -EINVAL, "invalid CSR subject (CN '%s', serial '%s')", strempty(cn),
                                    strempty(serial));
        }
        *ret = name;
        return 0;
}

int csr_build_der(const CsrRequest *req, uint8_t **ret, size_t *ret_len, Diag *d) {
        X509_REQ *x = NULL;
        EVP_MD_CTX *md = NULL;
        unsigned char *der = NULL;
        const char *digest;
        int len, r = -EIO;

        if (!req->subject || !req->key)
                return diag_set(d, -EINVAL, "a CSR needs a subject and a key");
        digest = req->digest ?: csr_default_digest(req->key);

        x = X509_REQ_new();
        if (!x)
                return -ENOMEM;
        if (!X509_REQ_set_version(x, X509_REQ_VERSION_1) || !X509_REQ_set_subject_name(x, req->subject) ||
            !X509_REQ_set_pubkey(x, req->key)) {
                r = diag_set_ssl(d, -EIO, "cannot assemble the CSR");
                goto out;
        }
        if (req->challenge_password &&
            !X509_REQ_add1_attr_by_NID(x, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                       (const unsigned char *) req->challenge_password, -1)) {
                r = diag_set_ssl(d, -EIO, "cannot add the challengePassword attribute");
                goto out;
        }

        if (req->subject_alt_name) {
                STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
                int ok = exts && sk_X509_EXTENSION_push(exts, req->subject_alt_name) &&
                         X509_REQ_add_extensions(x, exts);

                sk_X509_EXTENSION_free(exts); /* the extension itself stays the caller's */
                if (!ok) {
                        r = diag_set_ssl(d, -EIO, "cannot add the subjectAltName request");
                        goto out;
                }
        }

        md = EVP_MD_CTX_new();
        if (!md) {
                r = -ENOMEM;
                goto out;
        }
        /* Property query NULL: the process default ("?tpm2.signature") routes the
         * signature to the TPM when the key lives there. */
        if (EVP_DigestSignInit_ex(md, NULL, digest, NULL, NULL, req->key, NULL) <= 0 ||
            X509_REQ_sign_ctx(x, md) <= 0) {
                r = diag_set_ssl(d, -EIO, "cannot sign the CSR with the %s key",
                                 EVP_PKEY_get0_type_name(req->key));
                goto out;
        }

        len = i2d_X509_REQ(x, &der);
        if (len <= 0) {
                r = diag_set_ssl(d, -EIO, "cannot encode the CSR");
                goto out;
        }
        *ret = der;
        *ret_len = (size_t) len;
        r = 0;
out:
        EVP_MD_CTX_free(md);
        X509_REQ_free(x);
        return r;
}
