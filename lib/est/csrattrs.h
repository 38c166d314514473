/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * csrattrs.h: what the EST server asks to see in a CSR (RFC 7030 4.5.2, RFC 8951,
 * RFC 9908).
 *
 * CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID, AttrOrOID being a bare OID
 * or an Attribute { type OID, values SET }. What is read here:
 *  - challengePassword (a bare OID or an attribute): channel binding wanted;
 *  - the key: id-ecPublicKey as an attribute whose value is the named curve
 *    (or bare: any curve), rsaEncryption as an attribute with an INTEGER key
 *    size (or bare: any size), other key algorithms by name (Ed25519 ...);
 *  - the hash: a bare hash OID (id-sha256/384/512) or a signature algorithm
 *    (ecdsa-with-SHA384, sha384WithRSAEncryption ...), whose key type also
 *    counts as the key asked for when no key attribute says otherwise.
 * Anything else is counted and named in `unsupported`, not obeyed. What is
 * honoured is decided in enroll/key-choice.h.
 *
 * The parser is strict DER: definite, minimal lengths, one-byte tags, nothing
 * after the outer SEQUENCE, at most CSRATTRS_MAX_ITEMS items and
 * CSRATTRS_MAX_VALUES values per attribute; anything else is -EBADMSG.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/diag.h"

#define CSRATTRS_MAX_ITEMS 64
#define CSRATTRS_MAX_VALUES 16
#define CSRATTRS_NAME_MAX 64

typedef struct CsrAttrs {
        bool challenge_password; /* server asks for challengePassword */

        /* The key: key_nid is NID_X9_62_id_ecPublicKey, NID_rsaEncryption,
         * another key algorithm's NID, or NID_undef if none was named. */
        int key_nid;
        int curve_nid;                    /* EC: the named curve asked for, NID_undef if none */
        unsigned rsa_bits;                /* RSA: the key size asked for, 0 if none */
        char key_name[CSRATTRS_NAME_MAX]; /* the key asked for as text ("secp384r1", "RSA 3072", ...), "" if none */
        int signature_key_nid; /* the key type implied by a signature algorithm OID, NID_undef if none */

        const char *digest;                  /* "SHA256"/"SHA384"/"SHA512" (static), NULL if none usable */
        char digest_name[CSRATTRS_NAME_MAX]; /* the hash asked for as text, also one fleetid cannot use, "" if none */

        unsigned unsupported;        /* items fleetid does not act on */
        char unsupported_names[256]; /* their names, comma-separated (cut short if long) */
} CsrAttrs;

/* Parses the DER CsrAttrs SEQUENCE (already base64-decoded). An empty body or
 * an empty SEQUENCE is fine. -EBADMSG if malformed or over the bounds. */
int csrattrs_parse(const uint8_t *der, size_t len, CsrAttrs *ret, Diag *d);
