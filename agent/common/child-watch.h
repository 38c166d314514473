/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * child-watch.h: waits on the event loop for one child process to exit,
 * reaps it, and says how it ended: fleetidd's workers, signer and sensor
 * worker, and the event hooks.
 *
 * Why not sd_event_add_child(): a child that is being ptraced when it dies
 * (strace, gdb, or the LeakSanitizer of an ASan build, which ptraces the
 * process at its exit) makes its pidfd readable once, at the exit, while
 * only the tracer may wait for it yet. sd-event 252 registers the pidfd
 * one-shot, finds nothing to reap, and never looks again: the child stays a
 * zombie and its owner waits for ever (the same kernel behaviour is
 * reported against tokio, rust-lang/tokio#7144). Here a readiness that finds
 * nothing to reap is looked at again after CHILD_WATCH_RETRY_USEC, until
 * the child can be reaped.
 */
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "util/macro.h"

#define CHILD_WATCH_RETRY_USEC (50 * 1000ULL)

typedef struct ChildWatch ChildWatch;

/* si_code of a child that was reaped before its watch could read how it
 * ended (waitid() said ECHILD): it has ended, its exit status is lost, and
 * it is no zombie any more (its pid may be reused already). fleetid never
 * reaps elsewhere, and fleetidd sets SIGCHLD to its default at start (an
 * inherited SIG_IGN would have the kernel reap every child); a test reaps
 * one on purpose (worker-check). Not a CLD_* value, nor 0 (SI_USER). */
#define CHILD_WATCH_REAPED_ELSEWHERE (-1)

/* On the loop, once: the child has exited; si says how (si_code CLD_EXITED,
 * CLD_KILLED, CLD_DUMPED, or CHILD_WATCH_REAPED_ELSEWHERE). Unless reaped
 * elsewhere, it is a zombie during the call (its pid cannot be reused yet)
 * and reaped right after it.
 * The callback may free the watch. */
typedef void (*ChildWatchFn)(ChildWatch *cw, const siginfo_t *si, void *userdata);

/* Watches child pid (not reaped yet). description names the event sources. */
int child_watch_new(sd_event *e, pid_t pid, const char *description, ChildWatchFn fn, void *userdata,
                    ChildWatch **ret);
/* How the child ended, for messages: "exited with status N", "was killed
 * by signal N" (" (core dumped)"), or "ended; its exit status was lost to
 * another waiter". Returns buf. */
const char *child_watch_describe(const siginfo_t *si, char *buf, size_t size);
/* Stops watching; the child, if still there, is the caller's to reap. */
ChildWatch *child_watch_free(ChildWatch *cw);
DEFINE_TRIVIAL_CLEANUP_FUNC(ChildWatch *, child_watch_free);
