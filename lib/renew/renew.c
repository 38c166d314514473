/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/certcheck.h"
#include "crypto/csr.h"
#include "crypto/ossl-util.h"
#include "exchange/request.h"
#include "exchange/trust.h"
#include "est/est.h"
#include "identity/operational.h"
#include "renew/renew.h"
#include "util/test-crash.h"
#include "exchange/session.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-provider.h"

void renew_result_done(RenewResult *r) {
        if (!r)
                return;
        X509_free(r->cert);
        EVP_PKEY_free(r->deferred_key);
        trust_changes_done(&r->trust_changes);
        *r = (RenewResult) {};
}

/* The key for the CSR: a new one at the spare handle (renew.new_key), or the
 * current one again. A key the CA deferred a request for (202) is kept: the
 * retry repeats that request (RFC 7030 4.2.3), which the CA may be holding
 * for approval. */
static int next_key(const Config *c, TpmContext *tpm, StateStore *store, const OperationalIdentity *o,
                    EVP_PKEY *deferred, KeyAlgorithm alg, uint32_t *ret_handle, EVP_PKEY **ret_pub,
                    EVP_PKEY **ret_key, Diag *d) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        uint32_t handle = o->key_handle;
        int r;

        if (c->renew_new_key) {
                uint32_t attributes = 0;
                Diag rd = {};

                handle = o->other_handle;
                r = deferred ? tpm_key_read_public(tpm, handle, &pub, &attributes, &rd) : -ENOENT;
                /* A TPM that cannot answer now (busy, unreachable) says
                 * nothing of the deferred key: it is tried again, not replaced. */
                if (r < 0 && !operational_load_failed_for_good(r))
                        return diag_set(d, r, "cannot read the deferred request's key at 0x%08x: %s", handle,
                                        diag_text(&rd, r));
                if (r < 0 || tpm_key_check_attributes(attributes, NULL) < 0 ||
                    EVP_PKEY_eq(pub, deferred) != 1) {
                        /* Whatever sits at the spare handle is a leftover of an earlier attempt. */
                        EVP_PKEY_free(TAKE_PTR(pub));
                        r = operational_key_create(c, tpm, store, alg, handle, true, &pub, d);
                        if (r < 0)
                                return r;
                }
        }
        /* The public key is read once: by the check above, from Create's answer, or here. */
        if (!pub) {
                r = tpm_key_read_public(tpm, handle, &pub, NULL, d);
                if (r < 0)
                        return r;
        }
        r = tpm_provider_load_key(tpm, handle, ret_key, d);
        if (r < 0)
                return r;
        *ret_pub = TAKE_PTR(pub);
        *ret_handle = handle;
        return 0;
}

/* What a renewal may honour: the configured policy for a new key; only the
 * type of the key that is kept when renew.new_key = false or a deferred
 * request is repeated. */
static KeyPolicy renew_key_policy(const Config *c, const OperationalIdentity *o, EVP_PKEY *deferred) {
        if (!c->renew_new_key)
                return exchange_key_policy(c, o->public_key, RENEW_KEEPS_KEY);
        if (deferred)
                return exchange_key_policy(c, deferred,
                                           "is not the type of the deferred request's key, which its retry "
                                           "repeats (RFC 7030 4.2.3)");
        return exchange_key_policy(c, NULL, NULL);
}

static int renew_try(const Config *c, TpmContext *tpm, StateStore *store, const char *password, time_t now,
                     EVP_PKEY *deferred, RenewResult *ret, Diag *d) {
        _cleanup_(exchange_session_done) ExchangeSession session = {};
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *new_key = NULL, *new_pub = NULL;
        _cleanup_(exchange_result_done) ExchangeResult res = {};
        uint32_t new_handle = 0;
        X509_EXTENSION *san = NULL;
        KeyPolicy policy;
        CsrAttrs attrs = {};
        Diag unusable = {};
        int r, i;

        *ret = (RenewResult) {};

        r = exchange_session_open(c, tpm, store, password, now, "a renewal", &session,
                                  &ret->identity_unusable, d);
        if (r < 0)
                return r;
        const OperationalIdentity *o = session.identity;
        ret->identity_not_after = o->not_after;

        r = trust_refresh_ca(session.client, store, now, &session.trust, d);
        if (r < 0) {
                ret->hint = session.trust.hint; /* a busy server's Retry-After */
                return r;
        }
        ret->trust_changes = session.trust.changes;
        session.trust.changes = (TrustChanges) {};

        policy = renew_key_policy(c, o, deferred);
        r = exchange_choose_key(session.client, tpm, &policy, &attrs, &ret->key_choice, &unusable, d);
        ret->csrattrs.why = unusable;
        if (r < 0)
                return r;
        r = next_key(c, tpm, store, o, deferred, ret->key_choice.algorithm, &new_handle, &new_pub, &new_key,
                     d);
        if (r < 0)
                return r;

        i = X509_get_ext_by_NID(o->cert, NID_subject_alt_name, -1);
        if (i >= 0)
                san = X509_get_ext(o->cert, i);
        ExchangeRequest req = {
                .reenroll = true,
                .csr = { .subject = X509_get_subject_name(o->cert),
                         .key = new_key,
                         .subject_alt_name = san,
                         .digest = ret->key_choice.digest },
                .attrs = &attrs,
                .attrs_unusable = unusable.error < 0 ? &unusable : NULL,
                .public_key = new_pub,
                .ca_certs = session.trust.ca_certs,
                .binding = c->est_channel_binding,
                .max_clock_skew = c->est_max_clock_skew_sec, /* at renewal: 5 s slack at most (renew/clock.h) */
        };
        r = exchange_request(session.client, &req, now, &res, d);
        ret->hint = res.hint;
        ret->csrattrs = res.csrattrs;
        if (r == -EAGAIN && EVP_PKEY_up_ref(new_pub))
                ret->deferred_key = new_pub;
        if (r < 0)
                return r;
        ret->binding = res.bound;
        if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(res.chain, 0)),
                          X509_get_subject_name(o->cert)) != 0)
                return diag_set(d, -EKEYREJECTED,
                                "the renewed certificate names another subject than the current one");

        r = operational_save(store, res.chain, d);
        if (r < 0)
                return r;
        test_crash_point(TEST_CRASH_KEY_VARIABLE, "stored");

        /* The new identity is stored: only now may the old key go. */
        ret->key_handle = new_handle;
        ret->key_rotated = new_handle != o->key_handle;
        if (ret->key_rotated)
                ret->old_key_kept = tpm_key_evict(tpm, o->key_handle, NULL) < 0;
        ret->cert = sk_X509_value(res.chain, 0);
        X509_up_ref(ret->cert);
        return 0;
}

int renew_once(const Config *c, TpmContext *tpm, StateStore *store, const char *password, time_t now,
               EVP_PKEY *deferred, RenewResult *ret, Diag *d) {
        int r = renew_try(c, tpm, store, password, now, deferred, ret, d);

        /* The certificate expired while the attempt ran (it failed, say, as
         * the server refused the client certificate that had just expired):
         * only a new enrollment can help now, as for one found expired at the
         * start; not a retry of the renewal on its schedule. */
        if (r < 0 && !ret->identity_unusable && ret->identity_not_after > 0 &&
            time(NULL) >= ret->identity_not_after) {
                ret->identity_unusable = true;
                return diag_prefix(d, r, "the operational certificate expired while it was being renewed");
        }
        return r;
}
