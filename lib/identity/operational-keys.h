/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * operational-keys.h: the record of the operational keys fleetid made
 * (STATE_KEYS_CREATED), apart from the identity itself (operational.h), so
 * that what reads the record (the factory reset's request, in fleetidd)
 * needs no TPM.
 */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>

#include "crypto/certcheck.h"
#include "store/state-store.h"
#include "util/diag.h"

/* The operational keys fleetid made, noted as it makes them (before any
 * certificate names them), so that a factory reset can tell a key fleetid
 * made but never certified (an enrollment or renewal stopped half-way) from
 * a foreign object at the same handle: the SHA-256 of each public key
 * (pubkey_sha256_text()), the newest OPERATIONAL_KEYS_NOTED, in
 * STATE_KEYS_CREATED. A key made but stopped before it was noted is still
 * foreign to the reset (the window is one file write). */
#define OPERATIONAL_KEYS_NOTED 2
int operational_note_key(StateStore *store, EVP_PKEY *pub, Diag *d);
/* Up to max hashes into ret, the oldest first; none (0) if there is no record. */
int operational_keys_noted(StateStore *store, char ret[][SHA256_TEXT_SIZE], size_t max, size_t *ret_n,
                           Diag *d);
