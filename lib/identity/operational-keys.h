/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * operational-keys.h: reading the record of the operational keys fleetid
 * made (STATE_KEYS_CREATED), apart from the identity itself (operational.h,
 * where the keys are made and noted, with the TPM), so that what only reads
 * the record (the factory reset's request, in fleetidd) needs no TPM.
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
 * (pubkey_sha256_text()) in STATE_KEYS_CREATED, the newest last.
 *
 * A key is noted after the TPM made it and before it is made persistent
 * (operational_key_create()): until then it is a transient object that goes
 * with the process, so there is no instant in which a persistent key of
 * fleetid's exists unnoted, whenever the process is killed. A crash between
 * the note and the persistence leaves the hash of a key that exists nowhere,
 * which matches no object. At most OPERATIONAL_KEYS_NOTED keys (one per
 * handle, and the new key while the one it replaces is still there): when the
 * record is full, a new key drops the noted keys at neither operational handle
 * (evicted, or never made persistent), never one that sits at a handle. */
#define OPERATIONAL_KEYS_NOTED 3

/* Up to max hashes into ret, the newest max, the oldest first; none (0) if
 * there is no record. */
int operational_keys_noted(StateStore *store, char ret[][SHA256_TEXT_SIZE], size_t max, size_t *ret_n,
                           Diag *d);
