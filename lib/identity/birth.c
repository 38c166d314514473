/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "identity/birth.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-nv.h"

BirthIdentity *birth_identity_free(BirthIdentity *b) {
        if (!b)
                return NULL;
        EVP_PKEY_free(b->public_key);
        X509_free(b->cert);
        OSSL_STACK_OF_X509_free(b->chain);
        free(b);
        return NULL;
}

static int load_from_file(BirthIdentity *b, const char *path, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        X509 *leaf;
        int r;

        r = certs_load_pem_file(path, &certs, d);
        if (r < 0)
                return diag_prefix(d, r, "cannot read the birth certificate file %s", path);
        r = certs_find_for_key(certs, b->public_key, &leaf, d);
        if (r < 0)
                return diag_set(d, -EKEYREJECTED,
                                "no certificate in %s matches the birth key in the TPM at 0x%08x; "
                                "refusing to use it",
                                path, b->key_handle);
        if (!X509_up_ref(leaf))
                return -ENOMEM;
        b->cert = leaf;
        b->chain = sk_X509_new_null();
        if (!b->chain)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(certs); i++) {
                X509 *x = sk_X509_value(certs, i);

                if (x == leaf)
                        continue;
                if (!X509_up_ref(x))
                        return -ENOMEM;
                if (!sk_X509_push(b->chain, x)) {
                        X509_free(x);
                        return -ENOMEM;
                }
        }
        b->source = "file";
        return 0;
}

static int load_from_nv(BirthIdentity *b, TpmContext *t, uint32_t index, Diag *d) {
        _cleanup_free_ uint8_t *der = NULL;
        size_t len;
        int r;

        r = tpm_nv_load(t, index, TPM_NV_CERT_MAX, &der, &len, d);
        if (r < 0)
                return diag_prefix(d, r, "cannot read the birth certificate from TPM NV index 0x%08x", index);
        r = cert_from_der(der, len, &b->cert, d);
        if (r < 0)
                return diag_prefix(d, r, "TPM NV index 0x%08x does not hold a DER certificate", index);
        r = cert_matches_key(b->cert, b->public_key, d);
        if (r < 0)
                return diag_set(d, r,
                                "the birth certificate in TPM NV index 0x%08x does not match the birth key "
                                "at 0x%08x; refusing to use it",
                                index, b->key_handle);
        b->chain = sk_X509_new_null();
        if (!b->chain)
                return -ENOMEM;
        b->source = "TPM NV index";
        return 0;
}

int birth_identity_load(TpmContext *t, const Config *c, BirthIdentity **ret, Diag *d) {
        _cleanup_(birth_identity_freep) BirthIdentity *b = NULL;
        uint32_t attributes;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->key_handle = c->birth_key_handle;

        r = tpm_key_read_public(t, b->key_handle, &b->public_key, &attributes, d);
        if (r == -ENOENT)
                return diag_set(d, r,
                                "no birth key in the TPM at 0x%08x: this device has not been "
                                "provisioned (run fleetid-provision)",
                                b->key_handle);
        if (r < 0)
                return r;
        r = tpm_key_check_attributes(attributes, d);
        if (r < 0)
                return diag_prefix(d, r, "birth key at 0x%08x refused", b->key_handle);

        if (c->birth_cert_file)
                r = load_from_file(b, c->birth_cert_file, d);
        else if (c->birth_nv_index)
                r = load_from_nv(b, t, c->birth_nv_index, d);
        else
                r = diag_set(d, -EINVAL, "neither birth.cert_file nor birth.nv_index is configured");
        if (r < 0)
                return r;

        *ret = TAKE_PTR(b);
        return 0;
}
