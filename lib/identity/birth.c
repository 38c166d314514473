/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "identity/birth.h"
#include "tpm/tpm-birth-key.h"
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

/* The certificate in `certs` for the key (the first one if the key is not
 * known yet: the leaf comes first, as fleetid-provision and fleetidd write
 * it), and the others as its chain. */
static int take_certs(BirthIdentity *b, STACK_OF(X509) *certs, const char *what, Diag *d) {
        X509 *leaf = sk_X509_value(certs, 0);
        int r;

        if (b->public_key) {
                r = certs_find_for_key(certs, b->public_key, &leaf, d);
                if (r < 0)
                        return diag_set(d, -EKEYREJECTED,
                                        "no certificate in %s matches the birth key in the TPM at 0x%08x; "
                                        "refusing to use it",
                                        what, b->key_handle);
        }
        if (!leaf || !X509_up_ref(leaf))
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
        return 0;
}

static int load_from_file(BirthIdentity *b, const char *path, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        int r;

        r = certs_load_pem_file(path, &certs, d);
        if (r < 0)
                return diag_prefix(d, r, "cannot read the birth certificate file %s", path);
        r = take_certs(b, certs, path, d);
        if (r < 0)
                return r;
        b->source = "file";
        return 0;
}

/* The state directory's copy (birth.pem), for an NV index TPM2_Clear deleted. */
static int load_from_copy(BirthIdentity *b, StateStore *store, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *pem = NULL;
        size_t len;
        int r;

        r = state_store_load(store, STATE_BIRTH_CERT, BIRTH_COPY_MAX, &pem, &len, d);
        if (r >= 0)
                r = certs_from_pem(pem, len, STATE_BIRTH_CERT, &certs, d);
        if (r >= 0)
                r = take_certs(b, certs, "the state directory's copy " STATE_BIRTH_CERT, d);
        if (r < 0)
                return r;
        b->source = "state directory copy";
        return 0;
}

static int load_from_nv(BirthIdentity *b, TpmContext *t, uint32_t index, StateStore *store, Diag *d) {
        _cleanup_free_ uint8_t *der = NULL;
        size_t len;
        int r;

        r = tpm_nv_load(t, index, TPM_NV_CERT_MAX, &der, &len, d);
        if (r == -ENOENT && store && state_store_exists(store, STATE_BIRTH_CERT)) {
                diag_clear(d);
                return load_from_copy(b, store, d);
        }
        if (r < 0)
                return diag_prefix(d, r, "cannot read the birth certificate from TPM NV index 0x%08x", index);
        r = cert_from_der(der, len, &b->cert, d);
        if (r < 0)
                return diag_prefix(d, r, "TPM NV index 0x%08x does not hold a DER certificate", index);
        if (b->public_key) {
                r = cert_matches_key(b->cert, b->public_key, d);
                if (r < 0)
                        return diag_set(d, r,
                                        "the birth certificate in TPM NV index 0x%08x does not match the birth "
                                        "key at 0x%08x; refusing to use it",
                                        index, b->key_handle);
        }
        b->chain = sk_X509_new_null();
        if (!b->chain)
                return -ENOMEM;
        b->source = "TPM NV index";
        return 0;
}

static int load_cert(BirthIdentity *b, TpmContext *t, const Config *c, StateStore *store, Diag *d) {
        if (c->birth_cert_file)
                return load_from_file(b, c->birth_cert_file, d);
        if (c->birth_nv_index)
                return load_from_nv(b, t, c->birth_nv_index, store, d);
        return diag_set(d, -EINVAL, "neither birth.cert_file nor birth.nv_index is configured");
}

/* The key is gone from its handle (TPM2_Clear evicts persistent keys): made
 * again from the template of the certificate's key type, if that gives the
 * certificate's key. */
static int recreate_key(BirthIdentity *b, TpmContext *t, const Config *c, StateStore *store, Diag *d) {
        EVP_PKEY *cert_key;
        int r;

        r = load_cert(b, t, c, store, d);
        if (r < 0)
                return diag_prefix(d, r,
                                   "no birth key in the TPM at 0x%08x, and its certificate cannot be read to make "
                                   "it again",
                                   b->key_handle);
        cert_key = X509_get0_pubkey(b->cert);
        if (!cert_key)
                return diag_set(d, -EBADMSG, "the birth certificate's public key cannot be read");
        r = tpm_birth_key_recreate(t, key_algorithm_of_pkey(cert_key), b->key_handle, cert_key,
                                   &b->recreated_from, d);
        if (r == -EKEYREJECTED || r == -EOPNOTSUPP)
                return diag_prefix(
                        d, -EKEYREJECTED,
                        "the birth key is gone from the TPM at 0x%08x and cannot be made again: it "
                        "was not made from fleetid's or the TCG's IDevID template (a key under the SRK, as "
                        "fleetid-provision made birth keys before, is lost for good with TPM2_Clear: "
                        "the device must be provisioned again), or this is another TPM",
                        b->key_handle);
        if (r < 0)
                return diag_prefix(d, r, "cannot make the birth key at 0x%08x again", b->key_handle);
        /* Loaded again below, against the key now in the TPM. */
        X509_free(TAKE_PTR(b->cert));
        OSSL_STACK_OF_X509_free(TAKE_PTR(b->chain));
        b->recreated = true;
        return 0;
}

int birth_identity_load_from(TpmContext *t, const Config *c, StateStore *store, bool recreate,
                             BirthIdentity **ret, Diag *d) {
        _cleanup_(birth_identity_freep) BirthIdentity *b = NULL;
        uint32_t attributes;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->key_handle = c->birth_key_handle;

        r = tpm_key_read_public(t, b->key_handle, &b->public_key, &attributes, d);
        if (r == -ENOENT && recreate) {
                diag_clear(d);
                r = recreate_key(b, t, c, store, d);
                if (r < 0)
                        return r;
                r = tpm_key_read_public(t, b->key_handle, &b->public_key, &attributes, d);
        }
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
        b->da_protected = !(attributes & TPMA_OBJECT_NODA);

        r = load_cert(b, t, c, store, d);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(b);
        return 0;
}

int birth_identity_load(TpmContext *t, const Config *c, BirthIdentity **ret, Diag *d) {
        return birth_identity_load_from(t, c, NULL, false, ret, d);
}
