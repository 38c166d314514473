/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * worker.h: one slow operation (an enrollment, a renewal, a /cacerts
 * refresh, a factory reset's wipe) in a process of its own, so that the
 * event loop never waits for the TPM or the network.
 *
 * worker_start() starts `fleetid-worker KIND` (agent/worker/): it runs the
 * operation with the blocking lib/ calls, may log, may report a state it
 * reached, and ends with exactly one result (common/worker-wire.h). It never
 * touches sd-event, the hooks or the status file: the daemon does all that
 * from the result, in manager-*.c. The daemon reads the socketpair through
 * sd-event, checks every frame, reaps the child (common/child-watch.h), and calls
 * on_done once both are over. A worker that dies without a result (a crash,
 * a kill, an executable that cannot run) is a transient failure that says so.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/worker-wire.h"
#include "config/config.h"

/* After SIGTERM, how long a worker has before SIGKILL. */
#define WORKER_KILL_USEC (200 * 1000ULL)

typedef struct Worker Worker;

typedef void (*WorkerStateFn)(void *userdata, DaemonState s);
/* In the parent, once: r is the checked result (freed after the call). The
 * callback may free the worker; the worker touches nothing after calling it. */
typedef void (*WorkerDoneFn)(void *userdata, WorkerKind kind, WorkerResult *r);

/* Starts `fleetid-worker KIND` (spawn.h) with configuration c and the kind's
 * own input (extra: the renewal's deferred key, the reset's marker).
 * timeout_usec: a worker still running then is killed (SIGTERM, then SIGKILL)
 * and its result is a transient failure that says so; 0 = no bound.
 * inline_run: the loop waits for the worker, blocked, and takes its frames
 * through the same checks (fleetidd's blocking behaviour, for the
 * loop-latency benchmark only: FLEETIDD_INLINE_WORKERS=1). on_done then runs
 * from a deferred event source, never inside worker_start(). */
int worker_start(sd_event *e, WorkerKind kind, const Config *c, const void *extra, size_t extra_len,
                 uint64_t timeout_usec, bool inline_run, WorkerStateFn on_state, WorkerDoneFn on_done,
                 void *userdata, Worker **ret);
WorkerKind worker_kind(const Worker *w);
/* SIGTERM now, SIGKILL after WORKER_KILL_USEC; on_done follows the reaping. */
int worker_kill(Worker *w);
/* Kills (SIGKILL) and reaps a worker still running, without on_done. */
Worker *worker_free(Worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);
