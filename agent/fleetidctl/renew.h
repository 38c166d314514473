/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * renew.h: fleetidctl renew over org.fleetid.Agent1: Renew(), then waiting
 * for the job's end (JobRemoved, subscribed before the call) or for the CA
 * to defer the request (the job's State waiting-ca), at most timeout_sec.
 */
#pragma once

/* The exit status of fleetidctl renew. */
enum {
        RENEW_EXIT_RENEWED = 0,
        RENEW_EXIT_FAILED = 1,  /* the renewal failed, or fleetidd refused or is not running */
        RENEW_EXIT_TIMEOUT = 2, /* no outcome within the wait */
        RENEW_EXIT_PENDING = 3, /* the CA deferred the request (HTTP 202); fleetidd asks again itself */
};

/* The exit status; or -EHOSTUNREACH, having printed nothing, when the API
 * cannot be reached (no bus, fleetidd not on it): the caller then asks by
 * SIGUSR1. */
int ctl_renew_bus(unsigned timeout_sec);
