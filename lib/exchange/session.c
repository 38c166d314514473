/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "crypto/ossl-util.h"
#include "exchange/request.h"
#include "exchange/session.h"
#include "tpm/tpm-provider.h"

void exchange_session_done(ExchangeSession *s) {
        if (!s)
                return;
        est_client_free(s->client);
        EVP_PKEY_free(s->key);
        trust_set_done(&s->trust);
        operational_identity_free(s->identity);
        *s = (ExchangeSession) {};
}

int exchange_session_open(const Config *c, TpmContext *tpm, StateStore *store, const char *password,
                          time_t now, const char *purpose, ExchangeSession *ret, bool *ret_unusable, Diag *d) {
        _cleanup_(exchange_session_done) ExchangeSession s = {};
        bool unusable_ignored;
        int r;

        if (!ret_unusable)
                ret_unusable = &unusable_ignored;
        *ret_unusable = false;
        r = operational_load(c, tpm, store, &s.identity, d);
        if (r < 0) {
                *ret_unusable = operational_load_failed_for_good(r);
                return r;
        }
        *ret_unusable = now > s.identity->not_after;
        if (*ret_unusable)
                return diag_set(d, -EKEYEXPIRED,
                                "the operational certificate has expired; it cannot authenticate %s", purpose);
        r = trust_load_anchors(c, store, &s.trust, d);
        if (r < 0)
                return r;
        r = tpm_provider_load_key(tpm, s.identity->key_handle, &s.key, d);
        if (r < 0)
                return r;
        EstClientOptions opts = exchange_client_options(c, s.trust.server_anchors, s.key, s.identity->cert,
                                                        s.identity->chain, password);
        r = est_client_new(&opts, &s.client, d);
        if (r < 0)
                return r;
        *ret = s;
        s = (ExchangeSession) {};
        return 0;
}

int exchange_refresh_cacerts(const Config *c, TpmContext *tpm, StateStore *store, const char *password,
                             time_t now, TrustChanges *ret_changes, Diag *d) {
        _cleanup_(exchange_session_done) ExchangeSession s = {};
        int r;

        r = exchange_session_open(c, tpm, store, password, now, "a /cacerts refresh", &s, NULL, d);
        if (r < 0)
                return r;
        r = trust_refresh_ca(s.client, store, now, &s.trust, d);
        if (r < 0)
                return r;
        *ret_changes = s.trust.changes;
        s.trust.changes = (TrustChanges) {};
        return 0;
}
