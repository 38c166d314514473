/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* work-cacerts.c: `fleetid-worker cacerts`, the periodic /cacerts refresh (work.h). */
#include <time.h>

#include "exchange/session.h"
#include "exchange/trust.h"
#include "worker/work.h"

static int refresh(WorkContext *ctx, TrustChanges *ret, AttemptFacts *f, Diag *d) {
        _cleanup_(tpm_context_freep) TpmContext *tpm = NULL;
        _cleanup_erase_ char *password = NULL;
        int r;

        f->preparing = true;
        r = work_prepare_attempt(ctx, &tpm, &password, d);
        if (r < 0)
                return r;
        f->preparing = false;
        return exchange_refresh_cacerts(ctx->config, tpm, ctx->store, password, time(NULL), ret, d);
}

/* The worker: the refresh and its result, nothing else. */
void work_cacerts(WorkContext *ctx, WorkerOutput *out) {
        TrustChanges ch = {};
        WorkerResult wr = {};
        AttemptFacts f = {};
        Diag d = {};
        int r;

        r = refresh(ctx, &ch, &f, &d);
        work_attempt_result(ctx, r, &f, &d, &wr);
        wr.trust_changes = ch;
        (void) worker_send_result(out, &wr);
        trust_changes_done(&ch);
}
