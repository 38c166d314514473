/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * trust.h: which EST server and which certificate authority fleetid trusts,
 * and how that follows a root CA key update (RFC 7030 4.1.3).
 *
 * Everything is explicit, never the system trust store:
 *  - the seed: the configured est.trust_anchors file (read-only for the
 *    daemon); or, when only est.bootstrap_fingerprint is configured, the CA
 *    certificate with that fingerprint taken from the server's own /cacerts
 *    (RFC 7030 4.1.1 bootstrap), kept in the state directory from then on;
 *  - the adopted anchors (STATE_ADOPTED_ANCHORS in the state directory): new
 *    root CA certificates taken from /cacerts because a NewWithOld certificate,
 *    signed by a root fleetid already trusts, vouches for their subject and key;
 *  - server anchors = seed + adopted anchors: what the EST server's TLS
 *    certificate must chain to;
 *  - the EST CA set (STATE_TRUST_ANCHORS): the anchors that have not expired,
 *    plus the /cacerts CA certificates that chain to them. Issued certificates
 *    must chain to these.
 * An anchor that expires is retired: dropped from the adopted anchors and from
 * the EST CA set (a seed in /etc cannot be edited; it simply no longer matches).
 * docs/ca-rollover.md describes the rules.
 */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "est/est.h"
#include "store/state-store.h"

/* New root CA certificates adopted from /cacerts (self-signed, PEM, 0640); absent = none. */
#define STATE_ADOPTED_ANCHORS "est-adopted-anchors.pem"

/* What applying one /cacerts answer changed, for logs and events. */
typedef struct TrustChanges {
        STACK_OF(X509) *adopted; /* roots adopted now (NewWithNew linked by a NewWithOld) */
        STACK_OF(X509) *retired; /* anchors dropped now because they expired */
        STACK_OF(X509) *refused; /* new self-signed CA certificates in /cacerts that were not adopted */
        Diag refused_why;        /* why the first of them was refused */
        bool ca_changed;         /* the EST CA set differs from the one stored before */
        bool ca_first;           /* there was none stored before (a first enrollment): no news */
        bool adopted_changed;    /* the adopted anchors differ from the ones stored before */
} TrustChanges;

void trust_changes_done(TrustChanges *c);

typedef struct TrustSet {
        STACK_OF(X509) *server_anchors; /* seed + adopted anchors */
        STACK_OF(X509) *adopted;        /* the adopted anchors alone (also in server_anchors); may be NULL */
        STACK_OF(X509) *ca_certs;       /* the EST CA set, after trust_refresh_ca() */
        TrustChanges changes;           /* after trust_refresh_ca(): what it changed */
        bool bootstrapped;              /* anchors came from a fingerprint bootstrap just now */
        EstRetryHint hint; /* trust_refresh_ca()'s /cacerts answer: status, a busy server's Retry-After */
} TrustSet;

void trust_set_done(TrustSet *t);

/* Establishes the server anchors: the seed (the configured file; else the EST CA
 * set saved after an earlier bootstrap; else a bootstrap through an
 * unauthenticated GET /cacerts that carries no credentials, checked against
 * est.bootstrap_fingerprint) plus the adopted anchors stored in the state
 * directory. An unreadable adopted-anchors file is an error (-EBADMSG ...). */
int trust_load_anchors(const Config *c, StateStore *store, TrustSet *ret, Diag *d);

/* Fetches /cacerts on `client` (a connection verified against t->server_anchors,
 * normally the enrollment or renewal connection itself) and applies it with
 * trust_apply_cacerts() against the EST CA set stored before. Writes, each
 * atomically and only if it changed, the adopted anchors (removed when none
 * are left), then the EST CA set. On success t is replaced by the result and
 * t->changes says what changed; on failure nothing is written and t is as it was. */
int trust_refresh_ca(EstClient *client, StateStore *store, time_t now, TrustSet *t, Diag *d);

/* Applies a /cacerts answer to the trust set `t` (server_anchors and adopted as
 * loaded), pure logic, at `now`:
 *  - adoption (RFC 7030 4.1.3, RFC 4210 4.4): a self-signed CA certificate in
 *    `cacerts` that is not an anchor yet and has not expired (NewWithNew) is
 *    adopted if `cacerts` also holds a CA certificate with the same subject and
 *    public key (NewWithOld) that a non-expired self-signed anchor signed
 *    directly (verified at `now`), and its own self-signature verifies. Any
 *    other new self-signed CA certificate is refused (changes.refused, with the
 *    reason of the first in changes.refused_why). OldWithNew and other CA
 *    certificates are never anchors: they join the EST CA set if they chain to
 *    an anchor, as intermediates;
 *  - retirement: adopted anchors that have expired leave the adopted set, and
 *    every expired anchor leaves the EST CA set; changes.retired lists those
 *    that were in the adopted set or in `previous_ca`;
 *  - the EST CA set: trust_select_ca_certs() over the anchors in force (not
 *    expired) plus the ones adopted now. If it is set-equal to `previous_ca`
 *    (may be NULL: none stored) that stack is kept, in its order.
 * ret: server_anchors = t's minus the retired adopted ones plus the adopted
 * ones; adopted, ca_certs, changes as above; bootstrapped copied.
 * -EKEYEXPIRED if every anchor has expired; -EKEYREJECTED if no /cacerts CA
 * certificate chains to the anchors. */
int trust_apply_cacerts(const TrustSet *t, STACK_OF(X509) *cacerts, STACK_OF(X509) *previous_ca, time_t now,
                        TrustSet *ret, Diag *d);

/* Selects from `cacerts` those that verify against `anchors` at `now`, adding the
 * anchors themselves. -EKEYREJECTED if none of cacerts does. Pure logic. */
int trust_select_ca_certs(STACK_OF(X509) *cacerts, STACK_OF(X509) *anchors, time_t now, STACK_OF(X509) **ret,
                          Diag *d);
