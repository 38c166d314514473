/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* work-enroll.c: `fleetid-worker enroll`, the first enrollment (work.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/message-ids.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "enroll/enroll.h"
#include "identity/tpm-watch.h"
#include "util/timestamp.h"
#include "worker/work.h"

static void log_enrolled(X509 *cert, const char *how) {
        _cleanup_free_ char *subject = NULL, *serial = NULL;
        time_t nb = 0, na = 0;
        char until[TIMESTAMP_MAX] = "?";

        (void) cert_subject_string(cert, &subject);
        (void) cert_serial_string(cert, &serial);
        if (cert_times(cert, &nb, &na) >= 0)
                timestamp_utc(na, until);
        log_struct(LOG_INFO, 0, FLEETID_MESSAGE_ENROLLED,
                   "%s operational certificate %s, serial %s, valid until %s", how, strempty(subject),
                   strempty(serial), until);
}

/* The dictionary-attack state at the start of an attempt (one GetCapability). */
static void read_lockout(TpmContext *tpm, AttemptFacts *f) {
        TpmLockoutInfo info;

        if (tpm_get_lockout_info(tpm, &info, NULL) < 0)
                return;
        f->tpm_lockout_known = true;
        f->tpm_lockout = info.in_lockout;
        if (!info.in_lockout)
                return;
        log_warning("the TPM is in dictionary-attack lockout (%u of %u failed authorizations; recovers one "
                    "every %us). fleetid's keys are not subject to it (noDA) and fleetid never spends the "
                    "counter, but a birth key from the plain TCG template (no noDA) is: enrolling with one fails "
                    "until the lockout ends; continuing",
                    info.counter, info.max_tries, info.recovery_sec);
}

/* Whether this TPM is the one the device enrolled with (identity/tpm-watch.h):
 * -EKEYREJECTED if it is another one (f->tpm_replaced); a cleared one is
 * reported (state tpm-cleared) and the enrollment goes on. */
static int watch_tpm(WorkContext *ctx, TpmContext *tpm, WorkerOutput *out, AttemptFacts *f, Diag *d) {
        char was[17], now[17];
        TpmWatch w;
        int r;

        r = tpm_watch_check(tpm, ctx->config, ctx->store, &w, d);
        if (r < 0)
                return r;
        if (w.record_broken)
                log_warning("the record of the TPM's fingerprint (%s in the state directory) could not be read; "
                            "replaced by this TPM's",
                            STATE_TPM_FINGERPRINT);
        switch (w.change) {
        case TPM_CHANGE_REPLACED:
                tpm_fingerprint_name_short(&w.was.ek, was);
                tpm_fingerprint_name_short(&w.now.ek, now);
                f->tpm_replaced = true;
                log_struct(LOG_CRIT, 0, FLEETID_MESSAGE_TPM_REPLACED,
                           "the TPM was replaced: its endorsement key is not the one the device enrolled with "
                           "(EK name %s..., was %s...); the birth certificate is not for this TPM, so fleetidd "
                           "does not enroll",
                           now, was);
                return diag_set(
                        d, -EKEYREJECTED,
                        "the TPM was replaced (its endorsement key changed): the birth identity does not "
                        "belong to it; not enrolling (provision the new TPM, then reset fleetid's state)");
        case TPM_CHANGE_CLEARED:
                tpm_fingerprint_name_short(&w.was.srk, was);
                tpm_fingerprint_name_short(&w.now.srk, now);
                (void) worker_send_state(out, DAEMON_STATE_TPM_CLEARED);
                log_struct(LOG_WARNING, 0, FLEETID_MESSAGE_TPM_CLEARED,
                           "the TPM was cleared (TPM2_Clear): its storage root key changed (SRK name %s..., was "
                           "%s...), its endorsement key did not; the operational key is gone, enrolling again "
                           "with the birth identity",
                           now, was);
                return 0;
        default:
                return 0;
        }
}

/* One attempt, in the worker; returns 0 once the device holds a valid
 * operational certificate. */
static int attempt(WorkContext *ctx, WorkerOutput *out, EnrollResult *res, AttemptFacts *f, Diag *d) {
        _cleanup_(tpm_context_freep) TpmContext *tpm = NULL;
        _cleanup_(X509_freep) X509 *current = NULL;
        _cleanup_erase_ char *password = NULL;
        const Config *c = ctx->config;
        time_t now = time(NULL);
        int r;

        r = tpm_context_new(c->tpm_tcti, &tpm, d);
        if (r < 0)
                return r;
        read_lockout(tpm, f);

        r = enroll_check_current(c, tpm, ctx->store, now, &current, d);
        if (r < 0)
                return r;
        if (r > 0) {
                /* The operational key is at its handle and is the certificate's:
                 * the same TPM, not cleared. A device enrolled by a fleetid
                 * without the record gets it now, once. */
                if (!state_store_exists(ctx->store, STATE_TPM_FINGERPRINT)) {
                        TpmWatch w;
                        Diag wd = {};

                        if (tpm_watch_check(tpm, c, ctx->store, &w, &wd) < 0)
                                log_warning("cannot record the TPM's fingerprint: %s; tried again at the next "
                                            "start",
                                            diag_text(&wd, -EIO));
                }
                log_enrolled(current, "already enrolled:");
                return 0;
        }
        /* No usable operational identity: was the TPM cleared, or replaced? */
        {
                Diag why = *d; /* why there is no usable identity */

                r = watch_tpm(ctx, tpm, out, f, d);
                if (r < 0)
                        return r;
                *d = why;
        }
        /* Enrolled before, but that identity is expired or unusable: a new
         * enrollment is the fallback renew.fallback_to_birth may forbid. */
        if (!c->renew_fallback_to_birth && state_store_exists(ctx->store, STATE_OPERATIONAL_CERT)) {
                f->identity_unusable = true;
                return diag_prefix(d, -EKEYEXPIRED, "the operational identity is unusable");
        }
        log_info("enrolling: %s", diag_text(d, -ENOENT));
        diag_clear(d);

        f->preparing = true;
        r = work_prepare_attempt(ctx, NULL, &password, d);
        if (r < 0)
                return r;
        f->preparing = false;

        (void) worker_send_state(out, DAEMON_STATE_ENROLLING);
        r = enroll_first(c, tpm, ctx->store, password, now, res, d);
        if (res->birth_recreated)
                log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_BIRTH_KEY_RECREATED,
                           "the birth key was gone from the TPM at 0x%08x and was made again from its template "
                           "(%s): its public key is the birth certificate's (certificate from the %s)",
                           c->birth_key_handle,
                           res->birth_template == BIRTH_TEMPLATE_TCG
                                   ? "the TCG IDevID template as it is, no noDA"
                                   : "fleetid's: the TCG IDevID template plus noDA",
                           strempty(res->birth_source));
        if (res->birth_refused)
                log_notice("the EST server refused the birth certificate in the TLS handshake (alert %s); "
                           "enrolling without a client certificate, with HTTP Basic as '%s' (RFC 7030 3.2.3)",
                           res->birth_refused, c->est_username);
        work_log_csrattrs(&res->csrattrs, "enrollment");
        work_log_key_choice(&res->key_choice);
        if (r < 0)
                return r;
        if (res->trust_bootstrapped)
                log_notice("trust anchor bootstrapped from /cacerts by its fingerprint %s",
                           c->est_bootstrap_fingerprint);
        log_info("EST CA: %u certificate(s) trusted after /cacerts; client authentication: %s; operational key %s "
                 "at TPM handle 0x%08x; CSR channel binding: %s",
                 res->ca_certs,
                 res->birth_refused ? "HTTP Basic, no client certificate" : "birth certificate (TLS)",
                 res->key_created ? "created" : "reused (pending from an earlier attempt)", res->key_handle,
                 channel_binding_type_to_string(res->binding));
        if (res->old_key_kept)
                log_warning("the expired operational identity's key could not be evicted from the TPM; the "
                            "next renewal will replace it");
        if (res->subject_changed)
                log_notice("the EST CA issued the certificate with another subject than the CSR asked for");
        log_enrolled(res->cert, "enrolled:");
        return 0;
}

/* The worker: the attempt and its result, nothing else. */
void work_enroll(WorkContext *ctx, WorkerOutput *out) {
        EnrollResult res = {};
        WorkerResult wr = {};
        AttemptFacts f = {};
        Diag d = {};
        int r;

        r = attempt(ctx, out, &res, &f, &d);
        f.http_status = res.hint.http_status;
        if (res.birth_expired)
                f.preparing = true; /* nothing was sent */
        f.birth_da_protected = res.birth_read && res.birth_da_protected;
        work_attempt_result(ctx, r, &f, &d, &wr);
        wr.hint = res.hint;
        wr.fetched = r >= 0 && res.cert;
        wr.trust_changes = res.trust_changes;
        wr.birth_read = res.birth_read;
        wr.birth_da_protected = res.birth_da_protected;
        wr.birth_expired = res.birth_expired;
        (void) worker_send_result(out, &wr);
        enroll_result_done(&res); /* frees the trust changes too */
}
