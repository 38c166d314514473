/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleetidctl.h: what main.c (the read-only verbs) shares with the verbs in
 * files of their own (factory-reset.c).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"
#include "store/state-store.h"
#include "store/status-file.h"
#include "util/diag.h"

/* The running fleetidd's PID, checked to be fleetidd; < 0 and why in d if none. */
int read_daemon_pid(const Config *config, StateStore *store, pid_t *ret, Diag *d);
/* The newer of the status record's two copies (state and runtime directory). */
int load_record(const Config *config, StateStore *store, StatusRecord *ret, Diag *d);

typedef struct FactoryResetArgs {
        const char *config_path;
        const char *owner; /* --owner FILE, NULL if none */
        bool yes;          /* --yes: do not ask */
        bool no_enroll;    /* --no-enroll */
        unsigned timeout;  /* how long to wait for the running fleetidd, seconds */
} FactoryResetArgs;

/* fleetidctl factory-reset: 0 done, 1 refused or failed, 2 the running
 * fleetidd did not finish within the timeout. */
int factory_reset(const FactoryResetArgs *a);
