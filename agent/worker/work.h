/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * work.h: the operations `fleetid-worker` runs for fleetidd, one per
 * process, with the blocking lib/ calls (the daemon's side: fleetidd/worker.h).
 *
 * work-enroll.c   `enroll`: the first enrollment (or "already enrolled")
 * work-renew.c    `renew`: one renewal, with the deferred request's key if the CA deferred one
 * work-cacerts.c  `cacerts`: the periodic /cacerts refresh
 * work-reset.c    `reset`: the factory reset's wipe steps
 * work-common.c   what they share: the TPM and password for an attempt, and the class of its failure
 *
 * Each reads the state directory and the TPM, logs what it does, reports the
 * states it reaches and ends with exactly one result (work-output.h). It
 * never touches the daemon's state: the daemon acts on the result.
 */
#pragma once

#include "config/config.h"
#include "exchange/request.h"
#include "exchange/key-choice.h"
#include "monitor/outcome.h"
#include "reset/reset-marker.h"
#include "store/state-store.h"
#include "tpm/tpm-context.h"
#include "worker/work-output.h"

/* What an operation runs with: the daemon's configuration and the
 * operation's input, from the setup (common/child-setup.h). */
typedef struct WorkContext {
        const Config *config;
        StateStore *store;
        StateStore *runtime;          /* paths.runtime_dir, NULL if none */
        ResetMarker *reset;           /* `reset`: the marker the daemon acts on */
        const uint8_t *deferred_spki; /* `renew`: the key of the request the CA deferred (DER), or NULL */
        size_t deferred_spki_len;
} WorkContext;

void work_enroll(WorkContext *ctx, WorkerOutput *out);
void work_renew(WorkContext *ctx, WorkerOutput *out);
void work_cacerts(WorkContext *ctx, WorkerOutput *out);
void work_reset(WorkContext *ctx, WorkerOutput *out);

/* What an enrollment or renewal attempt needs before it talks to the server:
 * a TPM connection of its own (if ret_tpm), and the HTTP Basic password read. */
int work_prepare_attempt(WorkContext *ctx, TpmContext **ret_tpm, char **ret_password, Diag *d);
/* The class of a finished attempt from what is known of it: if it failed and
 * the TPM cannot be reached now, that is the cause reported (-ENXIO, "TPM
 * unavailable: ..."; a TPM signature inside a TLS handshake fails with an
 * OpenSSL error that does not say so), and the dictionary-attack state. */
void work_attempt_result(WorkContext *ctx, int r, AttemptFacts *f, Diag *d, WorkerResult *ret);
/* Logs a warning for a /csrattrs an enrollment or renewal ("what") could not use. */
void work_log_csrattrs(const CsrAttrsNote *n, const char *what);
/* Says which key and hash the CSR got: a warning naming what /csrattrs asked
 * and what is sent instead when the request was not honoured. */
void work_log_key_choice(const KeyChoice *c);
