/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * evidence.h: a sensor's proof that it is genuine, for RequestSensorCertificate
 * when broker.sensor_manufacturer_ca is set (issue "The sensor broker",
 * point 2; the encoding is in docs/dbus-api.md, "Sensor broker: formats").
 *
 * Evidence is the sensor's birth certificate chain (leaf first) and its birth
 * key's signature over the challenge digest (crypto/challenge.h) with the
 * nonce from GetSensorChallenge and a purpose that names the CSR's key
 * (evidence_purpose()):
 *
 *   purpose = "sensor-spki." base32(SHA-256(DER SubjectPublicKeyInfo of the CSR))
 *
 * (base32: RFC 4648, lowercase, no padding; 12 + 52 = 64 characters, the
 * formula's limit). The birth key thereby vouches for this one request and
 * this one key: evidence taken from one request (a log, a proxy) cannot be
 * replayed (the nonce is used up) nor moved to another CSR (another key).
 *
 * The encoding:
 *
 *   "fleetid-evidence-v1" 0x00                       20 bytes
 *   count                  1 byte, 1..EVIDENCE_CERTS_MAX
 *   count times:           2 bytes big-endian length (1..EVIDENCE_CERT_MAX), DER certificate
 *   alg length             1 byte, 1..32
 *   alg                    the signature algorithm, ASCII (a CHALLENGE_ALG_* name)
 *   signature length       2 bytes big-endian (1..CHALLENGE_SIGNATURE_MAX)
 *   signature
 *   nothing after it; at most EVIDENCE_MAX bytes in all.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "crypto/certcheck.h"
#include "util/base32.h"
#include "util/diag.h"

#define EVIDENCE_MAGIC "fleetid-evidence-v1" /* followed by its NUL */
#define EVIDENCE_PURPOSE_PREFIX "sensor-spki."
/* The purpose and its NUL. */
#define EVIDENCE_PURPOSE_SIZE (sizeof(EVIDENCE_PURPOSE_PREFIX) - 1 + BASE32_LEN(32) + 1)
#define EVIDENCE_CERTS_MAX 4
#define EVIDENCE_CERT_MAX 8192
#define EVIDENCE_ALG_MAX 32
#define EVIDENCE_MAX (32u * 1024u)

typedef struct Evidence {
        STACK_OF(X509) *chain; /* leaf first */
        char alg[EVIDENCE_ALG_MAX + 1];
        uint8_t *signature;
        size_t signature_len;
} Evidence;

Evidence *evidence_free(Evidence *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Evidence *, evidence_free);

/* Parses the encoding above. -EFBIG if longer than EVIDENCE_MAX, -EBADMSG
 * naming the field that is wrong otherwise. */
int evidence_parse(const uint8_t *data, size_t len, Evidence **ret, Diag *d);

/* The encoding of chain (1..EVIDENCE_CERTS_MAX certificates, leaf first), alg
 * and signature; *ret is malloc()ed. -EINVAL if a part is out of bounds. */
int evidence_encode(STACK_OF(X509) *chain, const char *alg, const uint8_t *sig, size_t sig_len,
                    uint8_t **ret, size_t *ret_len, Diag *d);

/* The purpose the evidence signature carries for a CSR whose key is csr_key:
 * EVIDENCE_PURPOSE_PREFIX and the base32 of SHA-256 over the DER
 * SubjectPublicKeyInfo. -EINVAL without a key, -EIO if it cannot be encoded. */
int evidence_purpose(EVP_PKEY *csr_key, char ret[static EVIDENCE_PURPOSE_SIZE], Diag *d);

/* The SHA-256 ("sha256:" + hex, certcheck.h) of the public key
 * (SubjectPublicKeyInfo, DER) of the evidence's leaf, the sensor's birth
 * key: what the broker binds a sensor_id to (sensor-record.h). The key, not
 * the certificate: a birth certificate re-issued for the same key is the same
 * sensor. Only parses: call it on evidence evidence_verify() accepted. */
int evidence_birth_fingerprint(const uint8_t *data, size_t len, char ret[static SHA256_TEXT_SIZE], Diag *d);

/* Parses and verifies evidence for nonce and the CSR's key csr_key:
 *   - the chain leads from its leaf, through the other certificates given, to
 *     one of manufacturer_cas (explicit anchors only, cert_verify_chain() at
 *     now); the leaf is not a CA;
 *   - the signature is the leaf key's over the challenge digest with
 *     evidence_purpose(csr_key) and nonce.
 * On success *ret_leaf (may be NULL) gets a reference to the leaf.
 * -EFBIG/-EBADMSG as evidence_parse(), -EKEYREJECTED for an untrusted chain
 * or a bad signature (the Diag says which), -EINVAL for a bad nonce or without anchors. */
int evidence_verify(const uint8_t *data, size_t len, const uint8_t *nonce, size_t nonce_len,
                    EVP_PKEY *csr_key, STACK_OF(X509) *manufacturer_cas, time_t now, X509 **ret_leaf, Diag *d);
