/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * csrattrs.h: what the EST server asks to see in a CSR (RFC 7030 4.5, RFC 9908).
 *
 * fleetid honours what it can: the signature hash (ecdsa-with-SHA256/384/512,
 * sha256/384/512WithRSAEncryption) and whether a challengePassword (channel
 * binding) is wanted. Anything else is counted and reported, not obeyed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/diag.h"

#define CSRATTRS_MAX_ITEMS 64

typedef struct CsrAttrs {
        bool challenge_password; /* server asks for challengePassword */
        const char *digest;      /* "SHA256"/"SHA384"/"SHA512" or NULL if not asked (static) */
        unsigned unsupported;    /* items fleetid does not act on */
} CsrAttrs;

/* Parses the DER CsrAttrs SEQUENCE (already base64-decoded). An empty SEQUENCE
 * is fine. -EBADMSG if malformed or over CSRATTRS_MAX_ITEMS. */
int csrattrs_parse(const uint8_t *der, size_t len, CsrAttrs *ret, Diag *d);
