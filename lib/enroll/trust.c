/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "enroll/trust.h"
#include "est/est.h"

void trust_set_done(TrustSet *t) {
        if (!t)
                return;
        OSSL_STACK_OF_X509_free(t->server_anchors);
        OSSL_STACK_OF_X509_free(t->ca_certs);
        *t = (TrustSet) {};
}

static int push_copy(STACK_OF(X509) *sk, X509 *x) {
        for (int i = 0; i < sk_X509_num(sk); i++)
                if (X509_cmp(sk_X509_value(sk, i), x) == 0)
                        return 0;
        if (!X509_up_ref(x))
                return -ENOMEM;
        if (!sk_X509_push(sk, x)) {
                X509_free(x);
                return -ENOMEM;
        }
        return 0;
}

int trust_select_ca_certs(STACK_OF(X509) *cacerts, STACK_OF(X509) *anchors, time_t now, STACK_OF(X509) **ret,
                          Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *out = sk_X509_new_null();
        int matched = 0, r;

        if (!out)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(anchors); i++)
                if ((r = push_copy(out, sk_X509_value(anchors, i))) < 0)
                        return r;
        for (int i = 0; i < sk_X509_num(cacerts); i++) {
                X509 *x = sk_X509_value(cacerts, i);

                if (!cert_is_ca(x))
                        continue;
                if (cert_verify_chain(x, cacerts, anchors, now, false, NULL) < 0)
                        continue;
                if ((r = push_copy(out, x)) < 0)
                        return r;
                matched++;
        }
        if (matched == 0)
                return diag_set(d, -EKEYREJECTED,
                                "no CA certificate in the /cacerts response chains to "
                                "the configured trust anchors");
        *ret = TAKE_PTR(out);
        return 0;
}

static int bootstrap_anchor(const Config *c, STACK_OF(X509) **ret, Diag *d) {
        _cleanup_(est_client_freep) EstClient *client = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = NULL;
        uint8_t fp[CERT_FINGERPRINT_SIZE];
        X509 *found;
        int r;

        r = fingerprint_parse(c->est_bootstrap_fingerprint, fp);
        if (r < 0)
                return diag_set(d, r, "est.bootstrap_fingerprint is not a sha256 fingerprint");

        /* RFC 7030 4.1.1: an unauthenticated /cacerts, carrying no client
         * certificate and no password, whose answer is then checked out of band. */
        EstClientOptions o = {
                .url = c->est_url,
                .label = c->est_label,
                .timeout_sec = c->est_timeout_sec,
                .connect_timeout_sec = c->est_connect_timeout_sec,
                .max_response_bytes = c->est_max_response_bytes,
        };
        r = est_client_new(&o, &client, d);
        if (r < 0)
                return r;
        r = est_fetch_cacerts(client, &cacerts, d);
        if (r < 0)
                return diag_prefix(d, r, "bootstrap /cacerts failed");
        r = certs_find_by_fingerprint(cacerts, fp, &found);
        if (r < 0)
                return diag_set(d, -EKEYREJECTED,
                                "no certificate in the server's /cacerts has the "
                                "configured bootstrap fingerprint %s; trusting nothing",
                                c->est_bootstrap_fingerprint);
        if (!cert_is_ca(found))
                return diag_set(d, -EKEYREJECTED,
                                "the certificate with the bootstrap fingerprint is not "
                                "a CA certificate; trusting nothing");
        /* Chains are always verified to a root (no partial chains), so the
         * fingerprint must name the root, not an intermediate. */
        if (X509_check_issued(found, found) != X509_V_OK)
                return diag_set(d, -EKEYREJECTED,
                                "the certificate with the bootstrap fingerprint is not a "
                                "self-signed root CA; configure the fingerprint of the EST CA's root");
        anchors = sk_X509_new_null();
        if (!anchors)
                return -ENOMEM;
        r = push_copy(anchors, found);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(anchors);
        return 0;
}

static int load_anchors_file(const char *path, STACK_OF(X509) **ret, Diag *d) {
        int r = certs_load_pem_file(path, ret, d);

        if (r < 0)
                return diag_prefix(d, r, "cannot load the trust anchors from %s", path);
        return 0;
}

int trust_load_anchors(const Config *c, StateStore *store, TrustSet *ret, Diag *d) {
        _cleanup_free_ char *saved_path = NULL;
        TrustSet t = {};
        int r;

        if (c->est_trust_anchors)
                r = load_anchors_file(c->est_trust_anchors, &t.server_anchors, d);
        else {
                if (asprintf(&saved_path, "%s/%s", state_store_path(store), STATE_TRUST_ANCHORS) < 0)
                        return -ENOMEM;
                if (access(saved_path, F_OK) == 0)
                        r = load_anchors_file(saved_path, &t.server_anchors, d);
                else {
                        r = bootstrap_anchor(c, &t.server_anchors, d);
                        t.bootstrapped = r >= 0;
                }
        }
        if (r < 0) {
                trust_set_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

int trust_refresh_ca(EstClient *client, StateStore *store, time_t now, TrustSet *t, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts = NULL, *ca = NULL;
        _cleanup_free_ char *pem = NULL;
        size_t pem_len;
        int r;

        r = est_fetch_cacerts(client, &cacerts, d);
        if (r < 0)
                return r;
        r = trust_select_ca_certs(cacerts, t->server_anchors, now, &ca, d);
        if (r < 0)
                return r;
        r = certs_to_pem(ca, &pem, &pem_len);
        if (r < 0)
                return r;
        r = state_store_save(store, STATE_TRUST_ANCHORS, pem, pem_len, STATE_FILE_MODE, d);
        if (r < 0)
                return r;
        OSSL_STACK_OF_X509_free(t->ca_certs);
        t->ca_certs = TAKE_PTR(ca);
        return 0;
}
