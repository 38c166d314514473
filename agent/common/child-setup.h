/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * child-setup.h: what fleetidd hands each of its child processes when it
 * starts one, and how the child takes it.
 *
 * The slow or key-holding work runs in `fleetid-worker ROLE` (agent/worker/),
 * a separate executable: fleetidd itself then maps neither libcurl nor the
 * TPM stack, only what its loop needs (docs/architecture.md). The child gets
 * two descriptors and nothing else:
 *   fd 3  its end of a socketpair, where its role's protocol runs
 *         (worker-wire.h, signer-wire.h, sensor-wire.h);
 *   fd 4  the setup, a sealed memfd: the configuration the daemon runs with
 *         (lib/config/config-wire.h) and the role's own input (the renewal's
 *         deferred key, the factory reset's marker).
 * Native byte order: both ends come from the same build.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/diag.h"

#define CHILD_SOCKET_FD 3
#define CHILD_SETUP_FD 4
/* The role's own input, at most. */
#define CHILD_SETUP_EXTRA_MAX (256u * 1024u)

/* The first four are the WorkerKinds (worker-wire.h), in their order. */
typedef enum ChildRole {
        CHILD_ENROLL,
        CHILD_RENEW,
        CHILD_CACERTS,
        CHILD_RESET,
        CHILD_SIGNER,
        CHILD_SENSORS,
        _CHILD_ROLE_MAX,
        _CHILD_ROLE_INVALID = -EINVAL,
} ChildRole;

/* "enroll", "renew", "cacerts", "reset", "signer", "sensors": argv[1]. */
const char *child_role_to_string(ChildRole r);
ChildRole child_role_from_string(const char *s);

/* In fleetidd: a sealed memfd (close-on-exec) holding the setup. */
int child_setup_memfd(const Config *c, const void *extra, size_t extra_len, int *ret_fd);

typedef struct ChildSetup {
        Config *config;
        uint8_t *extra; /* NULL if none */
        size_t extra_len;
} ChildSetup;

/* In the child: reads and checks the setup at fd; -EBADMSG (-EIO) with d set. */
int child_setup_read(int fd, ChildSetup *ret, Diag *d);
void child_setup_done(ChildSetup *s);
