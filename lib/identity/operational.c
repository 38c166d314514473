/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "identity/operational.h"
#include "store/state-certs.h"
#include "tpm/tpm-key.h"

OperationalIdentity *operational_identity_free(OperationalIdentity *o) {
        if (!o)
                return NULL;
        X509_free(o->cert);
        OSSL_STACK_OF_X509_free(o->chain);
        EVP_PKEY_free(o->public_key);
        free(o);
        return NULL;
}

bool operational_load_failed_for_good(int r) {
        return r < 0 && !tpm_error_is_transient(r) && r != -EIO && r != -ENOMEM;
}

int operational_load(const Config *c, TpmContext *tpm, StateStore *store, OperationalIdentity **ret, Diag *d) {
        _cleanup_(operational_identity_freep) OperationalIdentity *o = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        const uint32_t handles[2] = { c->op_key_handle, c->op_spare_key_handle };
        int r;

        r = state_certs_load(store, STATE_OPERATIONAL_CERT, &certs, d);
        if (r == -ENOENT)
                return diag_set(d, -ENOENT, "no operational certificate stored yet");
        if (r < 0)
                return diag_prefix(d, r, "the stored operational certificate is unreadable");

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(handles) && !o->cert; i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
                X509 *leaf;

                Diag rd = {};

                /* One read: its own diagnosis is passed on only if it is an error
                 * (the handle being empty is not). */
                r = tpm_key_read_public(tpm, handles[i], &pub, NULL, &rd);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return diag_set(d, r, "%s", diag_text(&rd, r));
                if (certs_find_for_key(certs, pub, &leaf, NULL) < 0)
                        continue;
                if (!X509_up_ref(leaf))
                        return -ENOMEM;
                o->cert = leaf;
                o->public_key = TAKE_PTR(pub);
                o->key_handle = handles[i];
                o->other_handle = handles[1 - i];
        }
        if (!o->cert)
                return diag_set(d, -ENOKEY,
                                "the stored operational certificate belongs to neither TPM key "
                                "(0x%08x, 0x%08x)",
                                handles[0], handles[1]);

        o->chain = sk_X509_new_null();
        if (!o->chain)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(certs); i++) {
                X509 *x = sk_X509_value(certs, i);

                if (x == o->cert)
                        continue;
                if (!X509_up_ref(x))
                        return -ENOMEM;
                if (!sk_X509_push(o->chain, x)) {
                        X509_free(x);
                        return -ENOMEM;
                }
        }
        r = cert_times(o->cert, &o->not_before, &o->not_after);
        if (r < 0)
                return diag_set(d, r, "the stored operational certificate has unreadable dates");
        *ret = TAKE_PTR(o);
        return 0;
}

int operational_save(StateStore *store, STACK_OF(X509) *chain, Diag *d) {
        _cleanup_free_ char *pem = NULL;
        size_t len;
        int r;

        r = certs_to_pem(chain, &pem, &len);
        if (r < 0)
                return r;
        return state_store_save(store, STATE_OPERATIONAL_CERT, pem, len, STATE_FILE_MODE, d);
}
