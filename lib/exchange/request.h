/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request.h: one certificate request on an open EST connection, shared by the
 * first enrollment (/simpleenroll) and renewal (/simplereenroll).
 *
 *  1. GET /csrattrs on the connection (optional for the server: a failure is
 *     reported, not fatal; a trailing NUL is tolerated), and the key and
 *     hash the CSR gets from it (exchange_choose_key(), before the key is made);
 *  2. proof of possession (RFC 7030 3.5), per est.channel_binding: when it is
 *     "required", or "auto" and the server asked for challengePassword, the
 *     CSR's challengePassword is the base64 channel binding (tls-unique under
 *     TLS 1.2, tls-exporter under TLS 1.3) of the connection that is open now,
 *     and the CSR is built only then. With "auto", a /csrattrs that cannot be
 *     read or parsed also gets a bound CSR (a binding never hurts);
 *  3. the CSR is POSTed on the same connection. Which connection carried the
 *     POST is checked afterwards: if the server had closed the first one, the
 *     CSR is rebuilt once with the binding of the new connection. A 401 is
 *     answered with HTTP Basic (if configured) by a CSR made again, bound to
 *     a new connection that then carries the Basic request;
 *  4. the answer is validated with exchange_validate_issued() for our key, on
 *     the local clock (renew/clock.h): at renewal it must be valid now; at
 *     first enrollment its notBefore may lie up to max_clock_skew ahead.
 */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "crypto/csr.h"
#include "exchange/key-choice.h"
#include "est/est-client.h"
#include "est/est.h"
#include "tpm/tpm-context.h"

typedef struct ExchangeRequest {
        bool reenroll;              /* /simplereenroll rather than /simpleenroll */
        CsrRequest csr;             /* subject, key, SAN, digest; challengePassword is set here */
        const CsrAttrs *attrs;      /* what /csrattrs asked (exchange_choose_key()), NULL = nothing */
        const Diag *attrs_unusable; /* why /csrattrs could not be used, NULL if it could */
        EVP_PKEY *public_key;       /* the key the certificate must be for (public copy of csr.key) */
        STACK_OF(X509) *ca_certs;   /* what the certificate must chain to */
        ChannelBindingMode binding; /* est.channel_binding */
        time_t max_clock_skew;      /* est.max_clock_skew: notBefore slack at first enrollment only */
} ExchangeRequest;

/* A /csrattrs that could not be used, which the caller logs as a warning. */
typedef struct CsrAttrsNote {
        Diag why;          /* why.error < 0: why it could not be used; else nothing happened */
        bool bound_anyway; /* the CSR was bound for that reason (est.channel_binding = "auto") */
} CsrAttrsNote;

typedef struct ExchangeResult {
        EstRetryHint hint;        /* when the server said to come back */
        ChannelBindingType bound; /* the binding the accepted CSR carried, BINDING_NONE if none */
        STACK_OF(X509) *chain;    /* on success: the issued certificate first, then the others */
        CsrAttrsNote csrattrs;    /* a /csrattrs that could not be used, for the log */
} ExchangeResult;

void exchange_result_done(ExchangeResult *r);

/* The policy of the configuration: operational.key_algorithm as the fallback,
 * operational.allowed_key_algorithms as the allowed set. When an existing key
 * is kept (renew.new_key = false, a deferred request repeated), only its type
 * can be honoured: kept's type is then the fallback and the allowed set, and
 * `refusal` says why another is refused. kept may be NULL. */
KeyPolicy exchange_key_policy(const Config *c, EVP_PKEY *kept, const char *refusal);
#define RENEW_KEEPS_KEY "is not the type of the current key, which renew.new_key = false keeps"

/* GET /csrattrs on the connection, and the key and hash for the CSR
 * (exchange/key-choice.h). /csrattrs is optional for the server: if it fails or
 * cannot be parsed, nothing counts as asked, and ret_unusable says why (its
 * error < 0; cleared otherwise). Fails only when the TPM cannot be asked. */
int exchange_choose_key(EstClient *client, TpmContext *tpm, const KeyPolicy *p, CsrAttrs *ret_attrs,
                        KeyChoice *ret_choice, Diag *ret_unusable, Diag *d);

/* `now` is the caller's clock, the only one certificates are judged at; the
 * server's Date only explains a refusal (the local clock looks behind).
 * Outcomes as for est_enroll(), plus -EKEYREJECTED for an answer that fails
 * validation and -EPROTO when a required binding cannot be carried (the
 * server closes every connection after one response). */
int exchange_request(EstClient *client, ExchangeRequest *req, time_t now, ExchangeResult *ret, Diag *d);

/* The EstClient options for this configuration: server anchors, client key and
 * certificate (+chain), HTTP Basic, timeouts and size bound. */
EstClientOptions exchange_client_options(const Config *c, STACK_OF(X509) *anchors, EVP_PKEY *key, X509 *cert,
                                         STACK_OF(X509) *chain, const char *password);

/* Checks an EST answer before anything is stored: it must hold a certificate for
 * `key`, chaining to `ca_certs`, fit for TLS client authentication, valid at
 * `now` (its notBefore at most not_before_slack seconds ahead).
 * ret_chain: that certificate first, then the intermediates its verification
 * used, without the trust anchor; anything else in the answer (another CA, a
 * certificate for another key) is left out. */
int exchange_validate_issued(STACK_OF(X509) *returned, EVP_PKEY *key, STACK_OF(X509) *ca_certs, time_t now,
                             time_t not_before_slack, STACK_OF(X509) **ret_chain, Diag *d);
