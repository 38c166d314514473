/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pkcs7.h: the certs-only PKCS#7 bodies EST returns (/cacerts, /simpleenroll,
 * /simplereenroll; RFC 7030 section 4.1.3 and 4.2.3, RFC 8951).
 *
 * A certs-only message is a signedData with no signerInfos and no encapsulated
 * content: only a bag of certificates. Anything else an EST server sends there
 * is refused, with the reason in the Diag.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "util/diag.h"

#define PKCS7_MAX_CERTS 32
#define PKCS7_MAX_BODY (4u * 1024u * 1024u)

/* Parses a certs-only PKCS#7 body. Accepted encodings:
 *   - base64 of DER, with or without line breaks (RFC 7030 / RFC 8951);
 *   - a PEM "-----BEGIN PKCS7-----" block (tolerated; some servers send it);
 *   - raw DER (the "binary" transfer encoding some servers use).
 * An eContent that is present but empty is tolerated; CRLs are ignored.
 * On success *ret holds the certificates in the order the server sent them
 * (owned by the caller; free with OSSL_STACK_OF_X509_free()).
 * Rejected with -EBADMSG and a Diag naming the cause: empty body, larger than
 * PKCS7_MAX_BODY, neither base64 nor DER, not DER PKCS#7, truncated, trailing
 * data, not signedData, signedData carrying signerInfos or content (not
 * certs-only), no certificates, more than PKCS7_MAX_CERTS. -ENOMEM on allocation
 * failure. */
int pkcs7_parse_certs(const uint8_t *body, size_t len, STACK_OF(X509) **ret, Diag *d);

/* Builds a certs-only DER PKCS#7 holding 'certs' in order (for tests and for
 * paths that need the EST wire format without a server). No limits are applied:
 * an empty or NULL stack builds a message with no certificates, which
 * pkcs7_parse_certs() rejects. *ret is malloc()ed. -ENOMEM/-EIO on failure. */
int pkcs7_build_certs(STACK_OF(X509) *certs, uint8_t **ret, size_t *ret_len);
