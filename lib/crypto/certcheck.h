/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * certcheck.h: the checks every certificate passes before fleetid trusts or
 * stores it, plus the small conversions around them (fingerprints, PEM, DER,
 * printable subject and serial).
 *
 * Trust is always explicit: chains are verified against the anchors the caller
 * passes, never the system store, and never as a partial chain.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util/diag.h"

#define CERT_PEM_FILE_MAX (1024u * 1024u)
#define CERT_FINGERPRINT_SIZE 32 /* SHA-256 */

/* 0 if the certificate's public key is 'key' (compared as public keys, so a
 * TPM-backed key matches its certificate); -EKEYREJECTED if not. */
int cert_matches_key(X509 *cert, EVP_PKEY *key, Diag *d);

/* Verifies 'leaf' against ONLY 'anchors' (never the system store), with
 * 'untrusted' (may be NULL) as candidate intermediates, at time 'now'.
 * Anchors must be the roots of the chain (self-signed): a chain that ends at an
 * intermediate placed among the anchors is refused, since partial chains
 * (X509_V_FLAG_PARTIAL_CHAIN) are never accepted.
 * client_auth true: the leaf is an end-entity certificate used for TLS client
 * authentication (IDevID, LDevID): it must NOT be a CA certificate (see
 * cert_is_ca()) and the chain must allow the SSL client purpose
 * (X509_PURPOSE_SSL_CLIENT: keyUsage, extendedKeyUsage). client_auth false: no
 * purpose check, and the leaf may be a CA (e.g. a CA taken from /cacerts).
 * Returns -EKEYREJECTED with the reason and X509 verify error, e.g.
 * "certificate chain does not lead to a configured trust anchor (unable to get
 * local issuer certificate)", -EINVAL if no anchor is given, -ENOMEM/-EIO on
 * internal failures. */
int cert_verify_chain(X509 *leaf, STACK_OF(X509) *untrusted, STACK_OF(X509) *anchors, time_t now,
                      bool client_auth, Diag *d);

/* cert_verify_chain(), and on success *ret_path: the chain the verification
 * built, 'leaf' first, then the intermediates it used (from 'untrusted' or
 * 'anchors'), without the trust anchor at its end. Nothing else of 'untrusted'
 * is in it. */
int cert_verify_chain_path(X509 *leaf, STACK_OF(X509) *untrusted, STACK_OF(X509) *anchors, time_t now,
                           bool client_auth, STACK_OF(X509) **ret_path, Diag *d);

/* Validity sanity at 'now', allowing 'skew_sec' of clock skew before notBefore:
 *   notBefore > notAfter                    -EKEYREJECTED "validity period is inverted ..."
 *   now > notAfter                          -ESTALE "certificate expired on <date>"
 *   now < notBefore - skew_sec              -EKEYREJECTED "certificate not valid before <date>"
 * notAfter itself is still valid (RFC 5280: inclusive). -EBADMSG if the dates
 * cannot be read. */
int cert_check_validity(X509 *cert, time_t now, time_t skew_sec, Diag *d);

/* notBefore and notAfter as time_t (either out-param may be NULL); -EBADMSG if
 * a date cannot be read. */
int cert_times(X509 *cert, time_t *ret_not_before, time_t *ret_not_after);

/* The first certificate in 'certs' whose public key is 'key' (borrowed from
 * the stack); -ENOKEY if none is. */
int certs_find_for_key(STACK_OF(X509) *certs, EVP_PKEY *key, X509 **ret, Diag *d);

/* "sha256:" + 64 lowercase hex digits of SHA-256 over the DER certificate. */
int cert_fingerprint(X509 *cert, char **ret);

/* The same form for any bytes (a file's content, a DER public key). */
#define SHA256_TEXT_SIZE 72
int sha256_text(const void *data, size_t len, char ret[SHA256_TEXT_SIZE]);
/* ... of a public key's DER SubjectPublicKeyInfo. */
int pubkey_sha256_text(EVP_PKEY *key, char ret[SHA256_TEXT_SIZE]);

/* The first 8 bytes of the certificate's SHA-256 fingerprint as a number: a
 * value spread evenly across certificates that stays the same for one
 * certificate (its renewal jitter survives restarts). */
int cert_digest_u64(X509 *cert, uint64_t *ret);

/* Parses "sha256:HEX": the prefix is case-insensitive, the 32 bytes are hex
 * digits of either case, each pair optionally separated from the next by one
 * ':' (so "sha256:AB:CD:..." as printed by 'openssl x509 -fingerprint' and
 * "sha256:abcd..." both work). -EINVAL for anything else. */
int fingerprint_parse(const char *s, uint8_t ret[CERT_FINGERPRINT_SIZE]);

/* The certificate in 'certs' with SHA-256 fingerprint 'fp' (borrowed);
 * -ENOENT if none has it. */
int certs_find_by_fingerprint(STACK_OF(X509) *certs, const uint8_t fp[CERT_FINGERPRINT_SIZE], X509 **ret);

/* Reads every "BEGIN CERTIFICATE" block of a PEM file (other block types are
 * skipped). The file must be a regular file of at most CERT_PEM_FILE_MAX bytes
 * holding at least one certificate. -ENOENT (and other open() errors),
 * -EISDIR/-EBADFD if not a regular file, -EFBIG if too large, -EBADMSG if a
 * block is malformed or there is no certificate. */
int certs_load_pem_file(const char *path, STACK_OF(X509) **ret, Diag *d);

/* The same for PEM text already read (at most CERT_PEM_FILE_MAX bytes); `what`
 * names its source in errors. */
int certs_from_pem(const char *text, size_t len, const char *what, STACK_OF(X509) **ret, Diag *d);

/* The certificates as concatenated PEM blocks, NUL-terminated; *ret_len
 * excludes the NUL. *ret is malloc()ed. */
int certs_to_pem(STACK_OF(X509) *certs, char **ret, size_t *ret_len);

/* One DER certificate, with nothing after it; -EBADMSG otherwise. */
int cert_from_der(const uint8_t *der, size_t len, X509 **ret, Diag *d);

/* Subject and issuer as RFC 2253 one-line strings ("CN=dev-42,O=Example"). */
int cert_subject_string(X509 *cert, char **ret);
int cert_issuer_string(X509 *cert, char **ret);

/* Serial number in hex as 'openssl x509 -serial' prints it (uppercase, even
 * number of digits). */
int cert_serial_string(X509 *cert, char **ret);

/* True if the certificate is, or may act as, a CA: basicConstraints cA=TRUE,
 * or anything OpenSSL's X509_check_ca() accepts as a CA (without
 * basicConstraints: keyUsage with keyCertSign, a self-signed version 1
 * certificate, a Netscape CA cert type). */
bool cert_is_ca(X509 *cert);
