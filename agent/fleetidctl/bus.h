/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus.h: fleetidctl's side of org.fleetid.Agent1 (docs/dbus-api.md): the
 * connection to the system bus (DBUS_SYSTEM_BUS_ADDRESS when set), and
 * whether an answer means that the API cannot be reached, so that a verb
 * falls back to what it does without it (the state directory, SIGUSR1).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "util/diag.h"

#define CTL_BUS_NAME "org.fleetid.Agent1"
#define CTL_BUS_PATH "/org/fleetid/Agent1"
#define CTL_BUS_INTERFACE "org.fleetid.Agent1"
#define CTL_BUS_JOB_INTERFACE "org.fleetid.Agent1.Job"
/* A call to fleetidd, at most. */
#define CTL_BUS_CALL_USEC (25ULL * 1000000ULL)

/* Connects to the system bus. -errno and why in d. */
int ctl_bus_open(sd_bus **ret, Diag *d);

/* Whether a failed call (r, e) means that the API is not there: no bus,
 * nobody owns the name (fleetidd not running, or running without the bus),
 * or a fleetidd without that member. Not for AccessDenied or fleetidd's own
 * errors: those are answers. */
bool ctl_bus_unreachable(int r, const sd_bus_error *e);

/* A property of the manager object or of a job, read into *ret (s: a copy
 * the caller frees; t, u, b as such). -errno and the D-Bus error in e. */
int ctl_bus_get_string(sd_bus *bus, const char *path, const char *interface, const char *name,
                       sd_bus_error *e, char **ret);
int ctl_bus_get_u64(sd_bus *bus, const char *path, const char *interface, const char *name, sd_bus_error *e,
                    uint64_t *ret);

/* Writes the aay of certificates in reply (DER each) as PEM to f.
 * Returns how many, or -errno (-EBADMSG: one does not parse). */
int ctl_bus_write_pem(FILE *f, sd_bus_message *reply);
