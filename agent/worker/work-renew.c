/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* work-renew.c: `fleetid-worker renew`, one renewal (work.h). */
#include <errno.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/message-ids.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "renew/renew.h"
#include "util/timestamp.h"
#include "worker/work.h"

static void log_renewed(const RenewResult *res) {
        _cleanup_free_ char *serial = NULL;
        time_t nb = 0, na = 0;
        char until[TIMESTAMP_MAX] = "?";

        (void) cert_serial_string(res->cert, &serial);
        if (cert_times(res->cert, &nb, &na) >= 0)
                timestamp_utc(na, until);
        log_struct(LOG_INFO, 0, FLEETID_MESSAGE_RENEWED,
                   "renewed: operational certificate serial %s, valid until %s, %s; CSR channel binding: %s",
                   strempty(serial), until,
                   res->key_rotated ? "new TPM key" : "same TPM key (renew.new_key = false)",
                   channel_binding_type_to_string(res->binding));
        if (res->old_key_kept)
                log_warning("the previous operational key could not be evicted from the TPM; the next renewal "
                            "will replace it");
}

/* In the worker: the deferred request's public key as DER for the result. */
static void deferred_to_der(EVP_PKEY *key, WorkerResult *wr) {
        unsigned char *der = NULL;
        int n = key ? i2d_PUBKEY(key, &der) : 0;

        if (n > 0) {
                wr->deferred_spki = malloc((size_t) n);
                if (wr->deferred_spki) {
                        memcpy(wr->deferred_spki, der, (size_t) n);
                        wr->deferred_spki_len = (size_t) n;
                }
        }
        OPENSSL_free(der);
}

static int renew_attempt(WorkContext *ctx, RenewResult *res, AttemptFacts *f, Diag *d) {
        _cleanup_(tpm_context_freep) TpmContext *tpm = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *deferred = NULL;
        _cleanup_erase_ char *password = NULL;
        const Config *c = ctx->config;
        int r;

        f->preparing = true;
        r = work_prepare_attempt(ctx, &tpm, &password, d);
        if (r < 0)
                return r;
        f->preparing = false;
        if (ctx->deferred_spki) {
                const unsigned char *p = ctx->deferred_spki;

                deferred = d2i_PUBKEY(NULL, &p, (long) ctx->deferred_spki_len);
        }
        r = renew_once(c, tpm, ctx->store, password, time(NULL), deferred, res, d);
        work_log_csrattrs(&res->csrattrs, "renewal");
        work_log_key_choice(&res->key_choice);
        return r;
}

/* The worker: the attempt and its result, nothing else. */
void work_renew(WorkContext *ctx, WorkerOutput *out) {
        RenewResult res = {};
        WorkerResult wr = {};
        AttemptFacts f = {};
        Diag d = {};
        int r;

        r = renew_attempt(ctx, &res, &f, &d);
        if (r >= 0)
                log_renewed(&res);
        f.http_status = res.hint.http_status;
        f.identity_unusable = res.identity_unusable;
        work_attempt_result(ctx, r, &f, &d, &wr);
        wr.hint = res.hint;
        wr.fetched = r >= 0;
        wr.trust_changes = res.trust_changes;
        if (r < 0 && !res.identity_unusable)
                deferred_to_der(res.deferred_key, &wr);
        (void) worker_send_result(out, &wr);
        free(wr.deferred_spki);
        renew_result_done(&res); /* frees the trust changes too */
}
