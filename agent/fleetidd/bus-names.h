/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-names.h: the names under which fleetidd serves its D-Bus API
 * (docs/dbus-api.md): the bus name, the manager object and its interface,
 * and the jobs' objects and interface.
 */
#pragma once

#define BUS_NAME "org.fleetid.Agent1"
#define BUS_PATH "/org/fleetid/Agent1"
#define BUS_INTERFACE "org.fleetid.Agent1"
/* A job is BUS_JOB_PREFIX/N, N its id in decimal (lib/monitor/job-state.h). */
#define BUS_JOB_PREFIX "/org/fleetid/Agent1/job"
#define BUS_JOB_INTERFACE "org.fleetid.Agent1.Job"
