/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spawn.h: starts a child process of fleetidd, `fleetid-worker ROLE`
 * (common/child-setup.h): fork, then exec, so that the daemon maps neither
 * libcurl nor the TPM stack.
 *
 * The child has the signals sd-event blocks unblocked (SIGTERM ends it),
 * dies with the daemon (PR_SET_PDEATHSIG; it exits at once if the daemon is
 * already gone), and holds fd 3 (its end of a socketpair), fd 4 (the setup)
 * and the standard streams, nothing else. The executable is
 * FLEETID_WORKER_PATH (libexecdir/fleetid/fleetid-worker), or
 * $FLEETIDD_WORKER: a build tree's, for the tests.
 */
#pragma once

#include <sys/types.h>

#include "common/child-setup.h"
#include "config/config.h"
#include "util/diag.h"

const char *spawn_worker_path(void);
/* At the daemon's start: the worker is there and may be executed; -errno
 * with what is wrong in d. */
int spawn_check_worker(Diag *d);
/* sock_type: SOCK_STREAM or SOCK_SEQPACKET. The parent gets the child's pid
 * and its own end of the socket (blocking, close-on-exec). */
int spawn_child(ChildRole role, const Config *c, const void *extra, size_t extra_len, int sock_type,
                pid_t *ret_pid, int *ret_fd);
