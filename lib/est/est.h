/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * est.h: the EST operations (RFC 7030 section 4, RFC 8951) on top of an EstClient:
 * /cacerts, /csrattrs, /simpleenroll and /simplereenroll, with their status
 * codes turned into outcomes a scheduler can act on.
 */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "est/csrattrs.h"
#include "est/est-client.h"

#define EST_RETRY_AFTER_MAX (7 * 24 * 3600)

/* A Retry-After header as the server sent it, for a log line: printable
 * ASCII only, cut to fit; invalid if it was neither delta-seconds nor an
 * HTTP-date (then it was ignored). */
typedef struct EstRetryAfterText {
        bool present;
        bool invalid;
        char text[48];
} EstRetryAfterText;

typedef struct EstEnrollResult {
        long status;            /* last HTTP status */
        STACK_OF(X509) *certs;  /* 200: the certificates returned */
        bool retry_after_given; /* 202/503: the server said when to come back */
        uint64_t retry_after_sec;
        time_t server_date;            /* Date header, 0 if absent or unparsable */
        EstRetryAfterText retry_after; /* 202/429/503: the header as sent, for the log */
        bool basic_wanted;             /* 401 to a request without HTTP Basic, which is configured */
} EstEnrollResult;

void est_enroll_result_done(EstEnrollResult *r);

/* What a scheduler needs to know of a failed enroll/reenroll. */
typedef struct EstRetryHint {
        long http_status;       /* last status seen, 0 if none */
        bool retry_after_given; /* 202/503 with Retry-After */
        uint64_t retry_after_sec;
        EstRetryAfterText retry_after; /* the header as sent */
} EstRetryHint;

/* GET /cacerts: the certificates, parsed (not yet checked against anything).
 * ret_hint (may be NULL) gets the answer's status and, for a busy server
 * (429, 503: -EBUSY), its Retry-After, as est_enroll() gives them. */
int est_fetch_cacerts(EstClient *c, STACK_OF(X509) **ret, EstRetryHint *ret_hint, Diag *d);

/* GET /csrattrs: 200 parsed; 204 and 404 mean "nothing asked" (RFC 7030 4.5.2). */
int est_fetch_csrattrs(EstClient *c, CsrAttrs *ret, Diag *d);

/* POST the DER CSR (sent base64, wrapped at 64 columns), with the HTTP Basic
 * credentials if with_basic. ret->status is set whenever a response came. A
 * Retry-After HTTP-date is measured from the answer's Date header, else from
 * the time the answer arrived.
 * Outcomes:
 *   0          200, ret->certs holds the response (to be validated by the caller)
 *   -EAGAIN    202 Accepted: come back later (retry_after if the server said so)
 *   -EBUSY     503 or 429: server overloaded (retry_after if given)
 *   -EACCES    401/403: not authorized; ret->basic_wanted if a 401 can be answered
 *              with HTTP Basic (the caller sends the request again with_basic)
 *   -EBADMSG   200 with a body that is not a certs-only PKCS#7
 *   -EPROTO    any other status; the server's text is in d
 *   transport errors from est_client_request() */
int est_enroll(EstClient *c, bool reenroll, const uint8_t *csr, size_t csr_len, bool with_basic,
               EstEnrollResult *ret, Diag *d);
