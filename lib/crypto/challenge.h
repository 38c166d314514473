/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * challenge.h: the domain-separated challenge that a device key signs for
 * SignChallenge and a sensor's birth key signs for its evidence
 * (docs/dbus-api.md, "The challenge formula").
 *
 *   message = "fleetid-challenge-v1" 0x00 purpose 0x00 nonce
 *   digest  = SHA-256(message)
 *
 * The key signs that digest, never one the caller chose, so a local caller
 * cannot make the device key sign a TLS transcript or a CSR. Signing and
 * verifying work with any EVP_PKEY: a software key, or a TPM key through the
 * fleetid-tpm provider (tpm/tpm-provider.h), where the digest is signed with
 * one TPM2_Sign. Verification is always in software.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "util/diag.h"

#define CHALLENGE_DOMAIN "fleetid-challenge-v1"
#define CHALLENGE_NONCE_MIN 16
#define CHALLENGE_NONCE_MAX 64
#define CHALLENGE_PURPOSE_MAX 64
#define CHALLENGE_DIGEST_SIZE 32     /* SHA-256 */
#define CHALLENGE_SIGNATURE_MAX 1024 /* RSA-4096 is 512 bytes, ECDSA P-384 at most 104 */

/* The signature algorithms, by the names SignChallenge returns (OpenSSL's
 * names of the X.509 signature algorithms). All hash with SHA-256; PSS uses
 * MGF1 with SHA-256 and a salt of 32 bytes. */
#define CHALLENGE_ALG_ECDSA "ecdsa-with-SHA256"
#define CHALLENGE_ALG_RSA_PKCS1 "sha256WithRSAEncryption"
#define CHALLENGE_ALG_RSA_PSS "rsassaPss"

/* 0 if the nonce is CHALLENGE_NONCE_MIN..CHALLENGE_NONCE_MAX bytes;
 * -EINVAL naming its length otherwise. */
int challenge_check_nonce(size_t nonce_len, Diag *d);

/* 0 if purpose is 1..CHALLENGE_PURPOSE_MAX characters from [a-z0-9._-];
 * -EINVAL naming what is wrong otherwise (NULL is refused too). */
int challenge_check_purpose(const char *purpose, Diag *d);

/* Checks nonce and purpose, then computes the digest above. */
int challenge_digest(const uint8_t *nonce, size_t nonce_len, const char *purpose,
                     uint8_t ret[CHALLENGE_DIGEST_SIZE], Diag *d);

/* Signs the challenge digest with key (EC: ECDSA, DER-encoded ECDSA-Sig-Value;
 * RSA: PKCS #1 v1.5, or PSS when rsa_pss is true). *ret_sig is malloc()ed,
 * *ret_alg one of the CHALLENGE_ALG_* constants (static). -EINVAL for a bad
 * nonce or purpose, -EOPNOTSUPP for a key that is neither EC nor RSA (or
 * rsa_pss with an EC key), -EIO with OpenSSL's reason if signing fails. */
int challenge_sign(EVP_PKEY *key, const uint8_t *nonce, size_t nonce_len, const char *purpose, bool rsa_pss,
                   uint8_t **ret_sig, size_t *ret_sig_len, const char **ret_alg, Diag *d);

/* Verifies sig, made by algorithm alg (a CHALLENGE_ALG_* name), over the
 * challenge digest with the public key pub. 0 if it is valid; -EKEYREJECTED if
 * it is not (a bad signature, or alg does not fit the key type);
 * -EINVAL for a bad nonce, purpose or an unknown alg. */
int challenge_verify(EVP_PKEY *pub, const char *alg, const uint8_t *nonce, size_t nonce_len,
                     const char *purpose, const uint8_t *sig, size_t sig_len, Diag *d);
