/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * reset-request.h: a factory reset asked for: the marker (reset-marker.h)
 * with the operational keys it may evict, made and stored before anything is
 * wiped (reset.h). No TPM: fleetidd does this on its loop.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "reset/reset-marker.h"
#include "store/state-store.h"
#include "util/diag.h"

/* The marker for a reset asked for now by uid: a new one from the stored
 * operational certificate (its serial, issuer and key), or the one a reset
 * left unfinished, updated (its recorded keys kept, the current certificate's
 * key added; back to the wipe phase if the owner changes, or if a certificate
 * was stored since its wipe). Stores it. */
int reset_begin(StateStore *store, uid_t uid, time_t now, bool enroll, const char *owner_hash,
                ResetMarker *ret, Diag *d);

/* Before a wipe: the key of the operational certificate stored now is
 * recorded too (an enrollment that finished after the marker was written:
 * its certificate is fleetid's), durably, before the wipe evicts it. */
int reset_record_current(StateStore *store, ResetMarker *m, Diag *d);
