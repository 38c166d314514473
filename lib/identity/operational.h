/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * operational.h: the device's current operational identity (LDevID): the
 * certificate stored in the state directory and the TPM key it belongs to.
 *
 * Renewals alternate the key between operational.key_handle and
 * operational.spare_key_handle; which one is current is derived from the
 * stored certificate (whose public key matches), never kept separately.
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "crypto/certcheck.h"
#include "store/state-store.h"
#include "tpm/tpm-context.h"

typedef struct OperationalIdentity {
        uint32_t key_handle;   /* the handle holding the certificate's key */
        uint32_t other_handle; /* the other one of the pair, free for the next key */
        X509 *cert;            /* the leaf */
        STACK_OF(X509) *chain; /* the certificates stored after the leaf */
        EVP_PKEY *public_key;  /* the TPM key's public part */
        time_t not_before, not_after;
} OperationalIdentity;

/* -ENOENT: no operational certificate stored; -ENOKEY: the stored certificate
 * belongs to neither TPM handle. Validity is NOT checked here. */
int operational_load(const Config *c, TpmContext *tpm, StateStore *store, OperationalIdentity **ret, Diag *d);

/* Whether operational_load() failing with r means there is no usable
 * operational identity (none stored, unreadable, its key gone), so the device
 * must enroll anew; false for trouble a retry may cure (the TPM busy or
 * unreachable, -EIO, -ENOMEM). Enrollment and renewal decide by this one rule,
 * so a renewal never hands over to an enrollment that finds nothing to do. */
bool operational_load_failed_for_good(int r);

/* Stores a validated chain (the operational certificate first) as the current
 * operational identity, atomically. */
int operational_save(StateStore *store, STACK_OF(X509) *chain, Diag *d);

OperationalIdentity *operational_identity_free(OperationalIdentity *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(OperationalIdentity *, operational_identity_free);

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

/* Makes a new operational key of alg at handle (replace: evicting what is
 * there, only once the new key is loaded), noted as above first. ret_pub
 * gets its public key. */
int operational_key_create(const Config *c, TpmContext *tpm, StateStore *store, KeyAlgorithm alg,
                           uint32_t handle, bool replace, EVP_PKEY **ret_pub, Diag *d);

/* Adds the key to the record (see above); reads the operational handles
 * through tpm only when the record is full. */
int operational_note_key(const Config *c, TpmContext *tpm, StateStore *store, EVP_PKEY *pub, Diag *d);

/* Up to max hashes into ret, the newest max, the oldest first; none (0) if
 * there is no record. */
int operational_keys_noted(StateStore *store, char ret[][SHA256_TEXT_SIZE], size_t max, size_t *ret_n,
                           Diag *d);
