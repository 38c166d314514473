/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * reset.h: the factory reset: the old owner's identity wiped, the birth
 * identity kept, ready to enroll with a new owner.
 *
 * One implementation for fleetidctl (when fleetidd does not run) and for
 * fleetidd's reset worker. The steps are idempotent and run in order after
 * the marker (reset-marker.h) is stored; a crash anywhere leaves the marker,
 * and the next run (fleetidd at its start) runs the steps again from the
 * first, finding done what was done:
 *
 *   keys         evict the keys at operational.key_handle and spare_key_handle
 *                whose public key the marker recorded; anything else there is
 *                reported as foreign and stays
 *   certificate  operational.pem
 *   trust        est-trust-anchors.pem, est-adopted-anchors.pem
 *   status       the status record (state and runtime directory), the metrics file
 *   sensors      the sensor records (sensors/) and deferred requests (sensors-pending/)
 *
 * Kept: the birth key and certificate (and birth.pem, its copy), the SRK,
 * the manufacturer CA and everything configured in the main file.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"
#include "reset/reset-marker.h"
#include "store/state-store.h"
#include "tpm/tpm-context.h"
#include "util/diag.h"
#include "reset/reset-owner.h"
#include "reset/reset-request.h"

/* Pending D-Bus job files, removed with the sensor records. */

typedef struct ResetReport {
        uint32_t evicted[2]; /* handles whose recorded key was evicted now */
        unsigned n_evicted;
        uint32_t foreign[2];                  /* handles holding an object the marker did not record */
        char foreign_key[2][RESET_HASH_SIZE]; /* its public key, "" if it is no key fleetid can read */
        unsigned n_foreign;
} ResetReport;

/* Called after each step with its name (the test-only crash hook). */
typedef void (*ResetStepFn)(const char *step, void *userdata);


/* The wipe steps, under the state directory's lock (state_store_lock()).
 * 0 when everything is wiped; -EBUSY when a foreign object
 * sits at an operational handle (in ret; the rest is wiped all the same). */
int reset_wipe(const Config *c, TpmContext *tpm, StateStore *store, StateStore *runtime,
               const ResetMarker *m, ResetStepFn after, void *userdata, ResetReport *ret, Diag *d);

/* After a successful wipe: the marker's phase becomes "enroll", or the marker
 * goes when no enrollment was asked for (1 then, 0 otherwise). Under the
 * state directory's lock; if the marker on disk is no longer m's request (a
 * reset asked for again meanwhile), it is left as it is (0). */
int reset_wipe_done(StateStore *store, ResetMarker *m, Diag *d);
