/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * session.h: an EST connection authenticated by the current operational
 * identity (LDevID): its TPM key and certificate over mutual TLS, the server
 * verified against the trust anchors. Renewal (renew.h) and the periodic
 * /cacerts refresh both start here.
 */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "exchange/trust.h"
#include "est/est-client.h"
#include "identity/operational.h"
#include "store/state-store.h"
#include "tpm/tpm-context.h"

typedef struct ExchangeSession {
        OperationalIdentity *identity; /* the current certificate and its key handle */
        TrustSet trust;                /* anchors; the EST CA set once /cacerts was fetched */
        EVP_PKEY *key;                 /* the current key, in the TPM */
        EstClient *client;             /* the connection (opened by the first request) */
} ExchangeSession;

void exchange_session_done(ExchangeSession *s);

/* -EKEYEXPIRED if the operational certificate has expired: it cannot
 * authenticate `purpose` ("a renewal", "a /cacerts refresh"). On failure,
 * *ret_unusable (if not NULL) says whether the cause is the identity itself
 * (none, unreadable, key gone, expired: enroll anew) rather than something a
 * retry may cure (a missing trust anchor or password file, the TPM, ...). */
int exchange_session_open(const Config *c, TpmContext *tpm, StateStore *store, const char *password,
                          time_t now, const char *purpose, ExchangeSession *ret, bool *ret_unusable, Diag *d);

/* The periodic /cacerts refresh: a session, GET /cacerts, trust_refresh_ca().
 * ret_changes: what changed (roots adopted or retired, EST CA set). */
int exchange_refresh_cacerts(const Config *c, TpmContext *tpm, StateStore *store, const char *password,
                             time_t now, TrustChanges *ret_changes, Diag *d);
