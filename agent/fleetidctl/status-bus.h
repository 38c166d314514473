/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * status-bus.h: what fleetidctl status takes from the running fleetidd over
 * org.fleetid.Agent1 (its properties, role reader, and GetCertificateChain)
 * instead of the state directory: the live state, even for a user who may
 * not read the state directory. The status file still gives what the API
 * does not carry (failures, attempts, /cacerts times); main.c prints both
 * in the one format.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct BusStatus {
        pid_t pid; /* fleetidd's, from the bus; 0 if the bus did not say */
        char *state, *last_error;
        uint64_t last_success, renew_due; /* unix seconds, 0 = none */
        char *leaf_pem;                   /* the operational certificate, PEM; NULL if none (NotEnrolled) */
} BusStatus;

void bus_status_done(BusStatus *s);

/* 0 and *ret filled; -EHOSTUNREACH when fleetidd is not on the bus;
 * -EACCES when it refuses (no role reader: the files are all there is);
 * another -errno on a failure, said on stderr. */
int ctl_status_bus(BusStatus *ret);
