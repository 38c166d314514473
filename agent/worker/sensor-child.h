/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-child.h: the sensor worker, `fleetid-worker sensors`: it enrolls
 * downstream sensors' CSRs over EST on the gateway's operational identity, as
 * an RFC 7030 registration authority (section 3.2.3, 3.7): POST
 * /simpleenroll at broker.est_label over mutual TLS with the gateway's
 * LDevID, one CSR after the other on one kept-alive connection, each answer
 * validated against the EST CA set for the CSR's key. The daemon's side and
 * the life cycle are in fleetidd/sensor-worker.h, the messages in
 * common/sensor-wire.h.
 */
#pragma once

#include "config/config.h"

/* Serves requests on fd until the daemon retires it, or
 * SENSOR_WORKER_IDLE_SEC without one; never returns. */
void __attribute__((noreturn)) sensor_child_main(int fd, const Config *c);
