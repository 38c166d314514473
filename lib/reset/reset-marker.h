/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * reset-marker.h: the factory reset marker, the file in the state directory
 * that says a factory reset was asked for and is not finished.
 *
 * It is written (atomically, fsynced) before anything is wiped, and holds
 * what the reset needs to finish after a crash without the files it wipes:
 * who asked and when, the old operational certificate's serial and issuer
 * (for the log), the public keys fleetid had certified (the only keys the
 * reset evicts), the owner file it installs (its SHA-256) and whether to
 * enroll afterwards. Its phase is "wipe" until every wipe step is done, then
 * "enroll" until the new operational certificate is stored; then it goes.
 * docs/factory-reset.md describes the format.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/certcheck.h"
#include "store/state-store.h"
#include "util/diag.h"

#define RESET_MARKER "factory-reset"
#define RESET_MARKER_MAX 4096
/* Keys recorded: the operational key, and those of later requests that were not finished. */
#define RESET_KEYS_MAX 8
/* "sha256:" + 64 hex digits + NUL */
#define RESET_HASH_SIZE SHA256_TEXT_SIZE

typedef enum ResetPhase {
        RESET_PHASE_WIPE,   /* wiping the old owner's identity */
        RESET_PHASE_ENROLL, /* wiped; enrolling with the new owner */
        _RESET_PHASE_MAX,
        _RESET_PHASE_INVALID = -1,
} ResetPhase;

const char *reset_phase_to_string(ResetPhase p);

typedef struct ResetMarker {
        ResetPhase phase;
        uid_t uid;                   /* who asked */
        uint64_t requested;          /* unix seconds */
        bool enroll;                 /* enroll with the new owner after the wipe (false: --no-enroll) */
        char owner[RESET_HASH_SIZE]; /* the owner file installed ("sha256:..."), "" = no drop-in at all */
        char *old_serial;            /* the old operational certificate's, NULL if there was none */
        char *old_issuer;
        char keys[RESET_KEYS_MAX][RESET_HASH_SIZE]; /* SHA-256 of the SubjectPublicKeyInfo of each key fleetid certified */
        unsigned n_keys;
} ResetMarker;

void reset_marker_done(ResetMarker *m);

/* The text of the marker, and back (pure). Parsing is strict: a known key
 * twice, a bad value or a missing phase is -EBADMSG naming the line. */
int reset_marker_format(const ResetMarker *m, char **ret, size_t *ret_len);
int reset_marker_parse(const char *text, size_t len, ResetMarker *ret, Diag *d);

/* -ENOENT if there is none. */
int reset_marker_load(StateStore *s, ResetMarker *ret, Diag *d);
/* Atomically and durably (the file and the directory fsynced), readable by
 * the state directory's owner (fleetidd) also when root writes it. */
int reset_marker_save(StateStore *s, const ResetMarker *m, Diag *d);

/* Whether two markers are the same request (not one asked for since). */
bool reset_marker_same_request(const ResetMarker *a, const ResetMarker *b);
/* The same, whatever the phase: the wipe of request a moved it on to enroll. */
bool reset_marker_same_asking(const ResetMarker *a, const ResetMarker *b);
/* Whether the key (its SubjectPublicKeyInfo's "sha256:...") is recorded. */
bool reset_marker_has_key(const ResetMarker *m, const char *spki_hash);
