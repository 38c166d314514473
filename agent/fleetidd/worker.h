/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * worker.h: one slow operation (an enrollment, a renewal, a /cacerts
 * refresh) in a process of its own, so that the event loop never waits for
 * the TPM or the network.
 *
 * worker_start() forks; the child runs the operation with the blocking lib/
 * calls, may log, may report a state it reached (worker_send_state()), and
 * ends with exactly one result (worker_send_result()). It never touches
 * sd-event, the hooks or the status file: the parent does all that from the
 * result, in manager-*.c. The parent reads the socketpair through sd-event,
 * checks every frame (magic, type, size, count, NUL-terminated text, enum
 * ranges; at most WORKER_MESSAGE_MAX bytes in all), reaps the child through
 * sd-event, and calls on_done once both are over. A worker that dies without
 * a result (a crash, a kill) is a transient failure that says so.
 *
 * Wire format (native byte order: both ends are the same executable): frames
 * of a WorkerFrameHeader { magic, type, length } and `length` bytes.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "exchange/trust.h"
#include "est/est.h"
#include "monitor/daemon-state.h"
#include "monitor/outcome.h"
#include "util/diag.h"

typedef enum WorkerKind {
        WORKER_ENROLL,
        WORKER_RENEW,
        WORKER_CACERTS,
        WORKER_RESET,
        _WORKER_KIND_MAX,
} WorkerKind;

/* "enrollment", "renewal", "/cacerts refresh", "factory reset" */
const char *worker_kind_to_string(WorkerKind k);

/* The whole message a worker sends, bounded. */
#define WORKER_MESSAGE_MAX (1024 * 1024)
/* One certificate or public key (DER). */
#define WORKER_FRAME_MAX (64 * 1024)
/* Certificates in each list of the trust changes. */
#define WORKER_CERTS_MAX 64
/* After SIGTERM, how long a worker has before SIGKILL. */
#define WORKER_KILL_USEC (200 * 1000ULL)

/* What an operation came to, as the parent acts on it. */
typedef struct WorkerResult {
        int error;                  /* >= 0 success, else -errno */
        AttemptOutcome outcome;     /* what kind of failure: the next step follows from it */
        Diag diag;                  /* why it failed */
        EstRetryHint hint;          /* when the server said to come back */
        bool fetched;               /* a new certificate was stored (not "already enrolled") */
        TrustChanges trust_changes; /* what /cacerts changed, even if the operation then failed */
        uint8_t *deferred_spki;     /* renewal answered 202: the public key of the deferred request, DER */
        size_t deferred_spki_len;
        bool tpm_replaced;       /* another TPM than the device enrolled with: never enroll (AttemptFacts) */
        bool tpm_lockout_known;  /* the TPM's dictionary-attack state was read: */
        bool tpm_lockout;        /* in lockout */
        bool birth_read;         /* the birth key was read: */
        bool birth_da_protected; /* it lacks noDA (refused while the TPM is in lockout) */
        bool birth_expired;      /* the birth certificate expired on this clock; nothing was sent */
} WorkerResult;

void worker_result_done(WorkerResult *r);

/* The child's end of the socket. */
typedef struct WorkerOutput WorkerOutput;

/* In the child: a state reached on the way (the parent sets it). */
int worker_send_state(WorkerOutput *o, DaemonState s);
/* In the child: the result, once, last. */
int worker_send_result(WorkerOutput *o, const WorkerResult *r);
/* Bytes as they are, unframed: for tests/integration/worker-check.c, which
 * sends what a broken worker could, to check the daemon's side. */
int worker_send_raw(WorkerOutput *o, const void *data, size_t len);

typedef struct Worker Worker;

/* Runs in the child with run_data; returns when the result is sent. */
typedef void (*WorkerRunFn)(void *userdata, WorkerOutput *out);
typedef void (*WorkerStateFn)(void *userdata, DaemonState s);
/* In the parent, once: r is the checked result (freed after the call). The
 * callback may free the worker; the worker touches nothing after calling it. */
typedef void (*WorkerDoneFn)(void *userdata, WorkerKind kind, WorkerResult *r);

/* timeout_usec: a worker still running then is killed (SIGTERM, then SIGKILL)
 * and its result is a transient failure that says so; 0 = no bound.
 * inline_run: no process, run() on the loop itself, its frames through the
 * same checks (fleetidd's blocking behaviour, for the loop-latency benchmark
 * only: FLEETIDD_INLINE_WORKERS=1). on_done then runs from a deferred event
 * source, never inside worker_start(). */
int worker_start(sd_event *e, WorkerKind kind, uint64_t timeout_usec, bool inline_run, WorkerRunFn run,
                 void *run_data, WorkerStateFn on_state, WorkerDoneFn on_done, void *userdata, Worker **ret);
WorkerKind worker_kind(const Worker *w);
/* SIGTERM now, SIGKILL after WORKER_KILL_USEC; on_done follows the reaping. */
int worker_kill(Worker *w);
/* Kills (SIGKILL) and reaps a worker still running, without on_done. */
Worker *worker_free(Worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);
