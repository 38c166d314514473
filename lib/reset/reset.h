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

/* Pending D-Bus job files, removed with the sensor records. */
/* The name fleetidctl factory-reset --owner installs the owner file under. */
#define RESET_OWNER_DROPIN "owner.conf"

typedef struct ResetReport {
        uint32_t evicted[2]; /* handles whose recorded key was evicted now */
        unsigned n_evicted;
        uint32_t foreign[2];                  /* handles holding an object the marker did not record */
        char foreign_key[2][RESET_HASH_SIZE]; /* its public key, "" if it is no key fleetid can read */
        unsigned n_foreign;
} ResetReport;

/* Called after each step with its name (the test-only crash hook). */
typedef void (*ResetStepFn)(const char *step, void *userdata);

/* The marker for a reset asked for now by uid: a new one from the stored
 * operational certificate (its serial, issuer and key), or the one a reset
 * left unfinished, updated (its recorded keys kept, the current certificate's
 * key added; back to the wipe phase if the owner changes). Stores it. */
int reset_begin(StateStore *store, uid_t uid, time_t now, bool enroll, const char *owner_hash,
                ResetMarker *ret, Diag *d);

/* Before a wipe: the key of the operational certificate stored now is
 * recorded too (an enrollment that finished after the marker was written:
 * its certificate is fleetid's), durably, before the wipe evicts it. */
int reset_record_current(StateStore *store, ResetMarker *m, Diag *d);

/* Whether two markers are the same request (not one asked for since). */
bool reset_marker_same_request(const ResetMarker *a, const ResetMarker *b);

/* The wipe steps, under the state directory's lock (state_store_lock()).
 * 0 when everything is wiped; -EBUSY when a foreign object
 * sits at an operational handle (in ret; the rest is wiped all the same). */
int reset_wipe(const Config *c, TpmContext *tpm, StateStore *store, StateStore *runtime,
               const ResetMarker *m, ResetStepFn after, void *userdata, ResetReport *ret, Diag *d);

/* After a successful wipe: the marker's phase becomes "enroll", or the marker
 * goes when no enrollment was asked for (1 then, 0 otherwise). */
int reset_wipe_done(StateStore *store, ResetMarker *m, Diag *d);

/* Whether the configuration holds the owner the marker installs: exactly one
 * drop-in file with its hash, or none when the reset installed none. If not,
 * d says what is there instead (an interrupted owner installation). */
bool reset_owner_in_place(const Config *c, const ResetMarker *m, Diag *d);

/* The new owner's trust anchor for the log: the fingerprint of the first
 * certificate of est.trust_anchors, else est.bootstrap_fingerprint. */
int reset_owner_anchor(const Config *c, char **ret);

/* In the drop-in directory (root only: fleetidctl): removes every *.conf but
 * RESET_OWNER_DROPIN, and the old owner's files inside it that old_config
 * (may be NULL: it did not load)
 * names (est.trust_anchors, est.password_file) unless new_config names them
 * too; then writes owner_text as RESET_OWNER_DROPIN (0644, atomically), or
 * removes that too when owner_text is NULL. Idempotent. */
int reset_owner_install(const char *dropin_dir, const Config *old_config, const Config *new_config,
                        const char *owner_text, size_t owner_len, Diag *d);
