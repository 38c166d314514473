/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * trust.h: which EST server and which certificate authority fleetid trusts.
 *
 * Two sets of certificates, both explicit, never the system trust store:
 *  - server anchors: what the EST server's TLS certificate must chain to. The
 *    configured est.trust_anchors file; or, when only est.bootstrap_fingerprint
 *    is configured, the CA certificate with that fingerprint taken from the
 *    server's own /cacerts (RFC 7030 4.1.1 bootstrap), kept in the state
 *    directory from then on.
 *  - the EST CA certificates: the /cacerts certificates that chain to the
 *    server anchors, plus the anchors. Issued certificates must chain to these.
 */
#pragma once

#include <openssl/x509.h>
#include <time.h>

#include "config/config.h"
#include "est/est-client.h"
#include "store/state-store.h"

typedef struct TrustSet {
        STACK_OF(X509) *server_anchors;
        STACK_OF(X509) *ca_certs;
        bool bootstrapped; /* anchors came from a fingerprint bootstrap just now */
} TrustSet;

void trust_set_done(TrustSet *t);

/* Establishes the server anchors: the configured file; else those saved by an
 * earlier bootstrap; else a bootstrap through an unauthenticated GET /cacerts
 * that carries no credentials, checked against est.bootstrap_fingerprint. */
int trust_load_anchors(const Config *c, StateStore *store, TrustSet *ret, Diag *d);

/* Fetches /cacerts on `client` (a connection verified against t->server_anchors,
 * normally the enrollment connection itself), keeps the CA certificates that
 * chain to the anchors in t->ca_certs and saves them atomically. */
int trust_refresh_ca(EstClient *client, StateStore *store, time_t now, TrustSet *t, Diag *d);

/* Selects from `cacerts` those that verify against `anchors` at `now`, adding the
 * anchors themselves. -EKEYREJECTED if none of cacerts does. Pure logic. */
int trust_select_ca_certs(STACK_OF(X509) *cacerts, STACK_OF(X509) *anchors, time_t now, STACK_OF(X509) **ret,
                          Diag *d);
