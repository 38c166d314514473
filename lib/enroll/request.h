/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request.h: one certificate request on an open EST connection, shared by the
 * first enrollment (/simpleenroll) and renewal (/simplereenroll).
 *
 *  1. GET /csrattrs on the connection (optional for the server), and the key
 *     and hash the CSR gets from it (enroll_choose_key(), before the key is made);
 *  2. proof of possession (RFC 7030 3.5), per est.channel_binding: when it is
 *     "required", or "auto" and the server asked for challengePassword, the
 *     CSR's challengePassword is the base64 channel binding (tls-unique under
 *     TLS 1.2, tls-exporter under TLS 1.3) of the connection that is open now,
 *     and the CSR is built only then;
 *  3. the CSR is POSTed on the same connection. Which connection carried the
 *     POST is checked afterwards: if the server had closed the first one, the
 *     CSR is rebuilt once with the binding of the new connection;
 *  4. the answer is validated with enroll_validate_issued() for our key.
 */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "crypto/csr.h"
#include "enroll/key-choice.h"
#include "est/est.h"
#include "tpm/tpm-context.h"

typedef struct EnrollRequest {
        bool reenroll;              /* /simplereenroll rather than /simpleenroll */
        CsrRequest csr;             /* subject, key, SAN, digest; challengePassword is set here */
        const CsrAttrs *attrs;      /* what /csrattrs asked (enroll_choose_key()), NULL = nothing */
        EVP_PKEY *public_key;       /* the key the certificate must be for (public copy of csr.key) */
        STACK_OF(X509) *ca_certs;   /* what the certificate must chain to */
        ChannelBindingMode binding; /* est.channel_binding */
} EnrollRequest;

typedef struct EnrollRequestResult {
        EstRetryHint hint;        /* when the server said to come back */
        ChannelBindingType bound; /* the binding the accepted CSR carried, BINDING_NONE if none */
        STACK_OF(X509) *chain;    /* on success: the issued certificate first, then the others */
} EnrollRequestResult;

void enroll_request_result_done(EnrollRequestResult *r);

/* The policy of the configuration: operational.key_algorithm as the fallback,
 * operational.allowed_key_algorithms as the allowed set. When an existing key
 * is kept (renew.new_key = false, a deferred request repeated), only its type
 * can be honoured: kept's type is then the fallback and the allowed set, and
 * `refusal` says why another is refused. kept may be NULL. */
KeyPolicy enroll_key_policy(const Config *c, EVP_PKEY *kept, const char *refusal);
#define RENEW_KEEPS_KEY "is not the type of the current key, which renew.new_key = false keeps"

/* GET /csrattrs on the connection, and the key and hash for the CSR
 * (enroll/key-choice.h). /csrattrs is optional for the server: if it fails or
 * cannot be parsed, nothing counts as asked and the reason is noted in the
 * choice. Fails only when the TPM cannot be asked. */
int enroll_choose_key(EstClient *client, TpmContext *tpm, const KeyPolicy *p, CsrAttrs *ret_attrs,
                      KeyChoice *ret_choice, Diag *d);

/* `now` is the caller's clock; the server's Date is taken as a lower bound.
 * Outcomes as for est_enroll(), plus -EKEYREJECTED for an answer that fails
 * validation and -EPROTO when a required binding cannot be carried (the
 * server closes every connection after one response). */
int enroll_request(EstClient *client, EnrollRequest *req, time_t now, EnrollRequestResult *ret, Diag *d);
