/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/certcheck.h"
#include "crypto/csr.h"
#include "crypto/ossl-util.h"
#include "enroll/enroll.h"
#include "enroll/request.h"
#include "enroll/trust.h"
#include "est/est.h"
#include "identity/operational.h"
#include "renew/renew.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-provider.h"

void renew_result_done(RenewResult *r) {
        if (!r)
                return;
        X509_free(r->cert);
        *r = (RenewResult) {};
}

/* The EST CA set as stored before this renewal, to tell whether it changed. */
static char *stored_ca_pem(StateStore *store) {
        char *pem = NULL;
        size_t len;

        if (state_store_load(store, STATE_TRUST_ANCHORS, CERT_PEM_FILE_MAX, &pem, &len, NULL) < 0)
                return NULL;
        return pem;
}

static int next_key(const Config *c, TpmContext *tpm, const OperationalIdentity *o, uint32_t *ret_handle,
                    EVP_PKEY **ret_pub, EVP_PKEY **ret_key, Diag *d) {
        uint32_t handle = o->key_handle;
        int r;

        if (c->renew_new_key) {
                handle = o->other_handle;
                /* Whatever sits at the spare handle is a leftover of an earlier attempt. */
                r = tpm_key_create_persistent(tpm, c->srk_handle, c->op_key_algorithm, handle, true, d);
                if (r < 0)
                        return r;
        }
        r = tpm_key_read_public(tpm, handle, ret_pub, NULL, d);
        if (r < 0)
                return r;
        r = tpm_provider_load_key(handle, ret_key, d);
        if (r < 0)
                return r;
        *ret_handle = handle;
        return 0;
}

int renew_once(const Config *c, TpmContext *tpm, StateStore *store, const char *password, time_t now,
               RenewResult *ret, Diag *d) {
        _cleanup_(operational_identity_freep) OperationalIdentity *o = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *cur_key = NULL, *new_key = NULL, *new_pub = NULL;
        _cleanup_(est_client_freep) EstClient *client = NULL;
        _cleanup_(enroll_request_result_done) EnrollRequestResult res = {};
        _cleanup_free_ char *old_ca = NULL, *new_ca = NULL, *pem = NULL;
        TrustSet trust = {};
        uint32_t new_handle = 0;
        size_t pem_len, new_ca_len;
        X509_EXTENSION *san = NULL;
        int r, i;

        *ret = (RenewResult) {};

        r = operational_load(c, tpm, store, &o, d);
        if (r < 0)
                return r;
        if (now > o->not_after)
                return diag_set(d, -EKEYEXPIRED,
                                "the operational certificate has expired; it cannot "
                                "authenticate a renewal");

        r = trust_load_anchors(c, store, &trust, d);
        if (r < 0)
                return r;
        r = tpm_provider_load_key(o->key_handle, &cur_key, d);
        if (r < 0)
                goto out;

        EstClientOptions opts =
                enroll_client_options(c, trust.server_anchors, cur_key, o->cert, o->chain, password);
        r = est_client_new(&opts, &client, d);
        if (r < 0)
                goto out;

        old_ca = stored_ca_pem(store);
        r = trust_refresh_ca(client, store, now, &trust, d);
        if (r < 0)
                goto out;
        if (certs_to_pem(trust.ca_certs, &new_ca, &new_ca_len) >= 0)
                ret->ca_changed = !old_ca || strcmp(old_ca, new_ca) != 0;

        r = next_key(c, tpm, o, &new_handle, &new_pub, &new_key, d);
        if (r < 0)
                goto out;

        i = X509_get_ext_by_NID(o->cert, NID_subject_alt_name, -1);
        if (i >= 0)
                san = X509_get_ext(o->cert, i);
        EnrollRequest req = {
                .reenroll = true,
                .csr = { .subject = X509_get_subject_name(o->cert), .key = new_key, .subject_alt_name = san },
                .public_key = new_pub,
                .ca_certs = trust.ca_certs,
                .binding = c->est_channel_binding,
        };
        r = enroll_request(client, &req, now, &res, d);
        ret->hint = res.hint;
        if (r < 0)
                goto out;
        ret->binding = res.bound;
        if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(res.chain, 0)),
                          X509_get_subject_name(o->cert)) != 0) {
                r = diag_set(d, -EKEYREJECTED,
                             "the renewed certificate names another subject than the current one");
                goto out;
        }

        r = certs_to_pem(res.chain, &pem, &pem_len);
        if (r < 0)
                goto out;
        r = state_store_save(store, STATE_OPERATIONAL_CERT, pem, pem_len, STATE_FILE_MODE, d);
        if (r < 0)
                goto out;

        /* The new identity is stored: only now may the old key go. */
        ret->key_handle = new_handle;
        ret->key_rotated = new_handle != o->key_handle;
        if (ret->key_rotated)
                ret->old_key_kept = tpm_key_evict(tpm, o->key_handle, NULL) < 0;
        ret->cert = sk_X509_value(res.chain, 0);
        X509_up_ref(ret->cert);
        r = 0;
out:
        trust_set_done(&trust);
        return r;
}
