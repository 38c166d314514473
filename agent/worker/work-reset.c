/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* work-reset.c: `fleetid-worker reset`, the factory reset's wipe (work.h). */
#include <errno.h>

#include "common/reset-log.h"
#include "reset/reset.h"
#include "worker/work.h"

static void after_step(const char *step, void *userdata) {
        reset_test_crash_hook(step, true);
}

/* The worker: the wipe steps, the log record, the marker's next phase. */
void work_reset(WorkContext *ctx, WorkerOutput *out) {
        _cleanup_(tpm_context_freep) TpmContext *tpm = NULL;
        ResetReport rep = {};
        WorkerResult wr = {};
        AttemptFacts f = {};
        Diag d = {};
        int r;

        r = reset_record_current(ctx->store, ctx->reset, &d);
        if (r >= 0)
                r = tpm_context_new(ctx->config->tpm_tcti, &tpm, &d);
        if (r >= 0) {
                r = reset_wipe(ctx->config, tpm, ctx->store, ctx->runtime, ctx->reset, after_step, NULL,
                               &rep, &d);
                reset_log_wiped(ctx->reset, ctx->config, &rep, r, &d);
        }
        if (r >= 0) {
                r = reset_wipe_done(ctx->store, ctx->reset, &d);
                if (r >= 0)
                        reset_test_crash_hook("phase", true);
        }
        f.identity_unusable = r == -EBUSY; /* a foreign object: only a person can help */
        work_attempt_result(ctx, r, &f, &d, &wr);
        (void) worker_send_result(out, &wr);
}
