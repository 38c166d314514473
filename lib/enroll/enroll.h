/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * enroll.h: first enrollment of the operational identity (LDevID).
 *
 *  1. the birth identity is loaded and checked (identity/birth.h); a birth
 *     key gone from its handle (TPM2_Clear) is made again from its template;
 *     a birth certificate expired on this clock is refused before anything
 *     is sent (-EKEYEXPIRED, birth_expired: the clock may be ahead, too);
 *  2. the EST CA is established (enroll/trust.h);
 *  3. /csrattrs is read and the key chosen (enroll/key-choice.h); the
 *     operational key is created in the TPM under the SRK, at its
 *     persistent handle (or the pending one from an earlier attempt is reused
 *     if it is of the chosen type, so a 202 can be answered with the same request);
 *     If the server refuses the birth certificate in the TLS handshake (alert
 *     unknown_ca or bad_certificate) and est.username is configured, the
 *     connection is made once more without a client certificate, and the
 *     client authenticates with HTTP Basic (RFC 7030 3.2.3);
 *  4. on that connection, mutual TLS with the birth key in the TPM: a CSR
 *     signed by the new key, bound to the connection if so configured, and
 *     /simpleenroll (enroll/request.h);
 *  5. the answer is validated (exchange_validate_issued()) and only then stored,
 *     atomically, in the state directory.
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
#include "tpm/tpm-birth-key.h"
#include "store/state-store.h"
#include "tpm/tpm-context.h"

typedef struct EnrollResult {
        EstRetryHint hint;   /* when the server said to come back */
        X509 *cert;          /* on success: the new operational certificate */
        bool key_created;    /* a new operational key was created in the TPM (else a pending one reused) */
        uint32_t key_handle; /* the TPM handle of the operational key */
        bool old_key_kept;   /* an old identity's key could not be evicted (harmless; replaced later) */
        bool trust_bootstrapped;      /* the trust anchor came from the fingerprint bootstrap just now */
        unsigned ca_certs;            /* EST CA certificates trusted after /cacerts */
        bool subject_changed;         /* the CA issued another subject than the CSR asked for */
        ChannelBindingType binding;   /* the channel binding the CSR carried (proof of possession) */
        TrustChanges trust_changes;   /* what this enrollment's /cacerts changed, even if it then failed */
        const char *birth_refused;    /* the server refused the birth certificate in the TLS handshake
                                     * with this alert ("unknown_ca", ...); HTTP Basic without a
                                     * client certificate was used instead. NULL: mutual TLS */
        CsrAttrsNote csrattrs;        /* a /csrattrs that could not be used, even if it then failed */
        KeyChoice key_choice;         /* the key and hash sent, and what /csrattrs asked (also on failure) */
        bool birth_recreated;         /* the birth key was gone and was made again from its template: */
        BirthTemplate birth_template; /* this one */
        const char *birth_source;     /* where the birth certificate came from (static), NULL if not read */
        bool birth_read;              /* the birth key was read: */
        bool birth_da_protected;      /* it lacks noDA (a TPM in dictionary-attack lockout refuses it) */
        bool birth_expired;           /* the birth certificate has expired on this clock: nothing was sent */
} EnrollResult;

void enroll_result_done(EnrollResult *r);

/* password: the HTTP Basic password (already read by the caller), or NULL. */
int enroll_first(const Config *c, TpmContext *tpm, StateStore *store, const char *password, time_t now,
                 EnrollResult *ret, Diag *d);

/* Whether the state directory holds an operational certificate for the key in
 * the TPM that is valid at `now` (its notBefore at most est.max_clock_skew
 * ahead): 1 yes, 0 no (d says why), <0 on error. */
int enroll_check_current(const Config *c, TpmContext *tpm, StateStore *store, time_t now, X509 **ret_cert,
                         Diag *d);
