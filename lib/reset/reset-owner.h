/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * reset-owner.h: the owner a factory reset installs: the drop-in file in
 * the configuration's drop-in directory (fleetidctl writes it; fleetidd
 * checks that it is in place before enrolling with it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "reset/reset-marker.h"
#include "util/diag.h"

/* The name fleetidctl factory-reset --owner installs the owner file under. */
#define RESET_OWNER_DROPIN "owner.conf"

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
