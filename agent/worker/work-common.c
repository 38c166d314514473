/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>

#include "common/log.h"
#include "common/password.h"
#include "worker/work.h"

int work_prepare_attempt(WorkContext *ctx, TpmContext **ret_tpm, char **ret_password, Diag *d) {
        const Config *c = ctx->config;
        int r;

        if (ret_tpm) {
                r = tpm_context_new(c->tpm_tcti, ret_tpm, d);
                if (r < 0)
                        return r;
        }

        *ret_password = NULL;
        if (c->est_password_file)
                return password_read_file(c->est_password_file, ret_password, d);
        return 0;
}

/* The TPM after a failure r: reachable or not (one TPM2_GetCapability on a
 * connection of its own), and in dictionary-attack lockout or not. */
static int examine_tpm(WorkContext *ctx, int r, AttemptFacts *f, Diag *d) {
        TpmLockoutInfo info;
        Diag probe = {};
        char failed[DIAG_MAX];
        int p;

        p = tpm_probe_lockout(ctx->config->tpm_tcti, &info, &probe);
        snprintf(failed, sizeof(failed), "%s", diag_text(d, r));
        if (p == -ENXIO && r != -ENXIO)
                return diag_set(d, -ENXIO, "%s (the attempt failed with: %s)", probe.text, failed);
        if (p < 0 || !f)
                return r;
        f->tpm_lockout_known = true;
        f->tpm_lockout = info.in_lockout;
        if (info.in_lockout && f->birth_da_protected)
                return diag_set(d, r,
                                "%s; the TPM is in dictionary-attack lockout (%u of %u failed authorizations, "
                                "one forgiven every %us): the birth key lacks noDA (TCG template as it is) and "
                                "cannot sign until the lockout ends or is reset "
                                "(tpm2_dictionarylockout --clear-lockout)",
                                failed, info.counter, info.max_tries, info.recovery_sec);
        if (info.in_lockout)
                return diag_set(d, r,
                                "%s; the TPM is in dictionary-attack lockout (%u of %u failed authorizations, "
                                "one forgiven every %us), which does not block fleetid's keys (noDA)",
                                failed, info.counter, info.max_tries, info.recovery_sec);
        return r;
}

void work_attempt_result(WorkContext *ctx, int r, AttemptFacts *f, Diag *d, WorkerResult *ret) {
        if (r < 0) {
                if (r != -ENXIO) /* else the TPM was not reached: nothing to ask it */
                        r = examine_tpm(ctx, r, f, d);
                f->tpm_unavailable = r == -ENXIO;
        } else if (f->tpm_lockout_known && f->tpm_lockout) {
                /* In lockout when the attempt started, yet it succeeded: the
                 * lockout may have been reset meanwhile; ask again (only then,
                 * so an ordinary attempt costs no command more). */
                TpmLockoutInfo info;
                Diag probe = {};

                if (tpm_probe_lockout(ctx->config->tpm_tcti, &info, &probe) >= 0)
                        f->tpm_lockout = info.in_lockout;
                else
                        f->tpm_lockout_known = false;
        }
        f->error = r;
        ret->error = r < 0 ? r : 0;
        ret->outcome = attempt_outcome_classify(f);
        ret->diag = *d;
        ret->tpm_replaced = f->tpm_replaced;
        ret->tpm_lockout_known = f->tpm_lockout_known;
        ret->tpm_lockout = f->tpm_lockout;
}


void work_log_key_choice(const KeyChoice *c) {
        const char *alg = key_algorithm_to_string(c->algorithm);

        if (!c->digest) /* no choice was made: the attempt failed before /csrattrs */
                return;
        if (c->why[0] && c->asked[0])
                log_warning("the EST server asked in /csrattrs for %s; sending key %s, hash %s instead: %s",
                            c->asked, alg, c->digest, c->why);
        else if (c->why[0])
                log_warning("sending key %s, hash %s: %s", alg, c->digest, c->why);
        else if (c->asked[0])
                log_info("the EST server asked in /csrattrs for %s: sending key %s, hash %s", c->asked, alg,
                         c->digest);
        if (c->ignored[0])
                log_notice("/csrattrs also lists %s, which fleetid does not act on", c->ignored);
}

void work_log_csrattrs(const CsrAttrsNote *n, const char *what) {
        if (n->why.error >= 0)
                return;
        log_warning("%s: the EST server's /csrattrs could not be used: %s; %s", what,
                    diag_text(&n->why, n->why.error),
                    n->bound_anyway
                            ? "the CSR is bound to the connection anyway (est.channel_binding = \"auto\")"
                            : "going on as if it asked for nothing");
}
