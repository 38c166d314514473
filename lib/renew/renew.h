/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * renew.h: one renewal of the operational certificate (RFC 7030 4.2.2).
 *
 *  1. the current identity is loaded (identity/operational.h); an expired one
 *     is not renewed here (-EKEYEXPIRED, identity_unusable): the caller falls back to a first
 *     enrollment with the birth identity if so configured;
 *  2. mutual TLS with the current operational key and certificate; /cacerts
 *     refreshed on that connection (a changed EST CA set is reported);
 *  3. /csrattrs read and the key chosen (exchange/key-choice.h): a new key of
 *     that type in the TPM at the other handle of the pair (renew.new_key), or
 *     the current key again; after a 202, the key of the deferred request (a
 *     kept key bounds what can be honoured to its own type);
 *  4. a CSR with exactly the current subject and subjectAltName, bound to the
 *     connection if so configured, POSTed to /simplereenroll on it
 *     (exchange/request.h);
 *  5. the answer is validated (our key, the EST CA, currently valid, the same
 *     subject) and stored atomically; only then is the old key evicted.
 * Until step 5 completes, the current key and certificate stay in force.
 */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "exchange/request.h"
#include "exchange/key-choice.h"
#include "exchange/trust.h"
#include "est/est.h"
#include "store/state-store.h"
#include "tpm/tpm-context.h"

typedef struct RenewResult {
        EstRetryHint hint;   /* when the server said to come back */
        X509 *cert;          /* on success: the new certificate */
        uint32_t key_handle; /* on success: where its key is */
        bool key_rotated;    /* a new key was made (and the old one evicted) */
        bool old_key_kept;   /* rotated, but evicting the old key failed (harmless; retried next time) */
        TrustChanges trust_changes; /* what the /cacerts of this renewal changed (roots, EST CA set) */
        ChannelBindingType binding; /* the channel binding the CSR carried (proof of possession) */
        bool identity_unusable;     /* on failure: no usable operational identity (none, unreadable,
                                     * key gone, expired, also during the attempt): only a new
                                     * enrollment can help */
        time_t identity_not_after;  /* the current certificate's notAfter, once it was read (else 0) */
        EVP_PKEY *deferred_key;     /* on 202: the public key of the CSR the CA deferred */
        CsrAttrsNote csrattrs;      /* a /csrattrs that could not be used, even if it then failed */
        KeyChoice key_choice;       /* the key and hash sent, and what /csrattrs asked (also on failure) */
} RenewResult;

void renew_result_done(RenewResult *r);

/* deferred: the deferred_key of an earlier attempt answered 202, or NULL. If
 * the spare handle still holds that key, the CSR is made with it again: the
 * retry repeats the deferred request (RFC 7030 4.2.3). */
int renew_once(const Config *c, TpmContext *tpm, StateStore *store, const char *password, time_t now,
               EVP_PKEY *deferred, RenewResult *ret, Diag *d);
