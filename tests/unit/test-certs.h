/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-certs.h: an in-process test PKI for unit tests (header-only).
 *
 * Generates EC P-256 keys and X.509v3 certificates with the OpenSSL API, at
 * dates relative to TEST_NOW, so tests pass an explicit 'now' and never depend
 * on the clock. test_pki_new() builds the usual cast:
 *
 *   root (CA) -> inter (CA) -> leaf           valid, clientAuth
 *                           -> expired        expired a day before TEST_NOW
 *                           -> future         valid from 10 days after TEST_NOW
 *                           -> server_leaf    serverAuth only
 *                           -> other_key_leaf for other_key, not leaf_key
 *   other_root (CA) -> other_leaf             an unrelated PKI
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/ossl-util.h"
#include "util/macro.h"

#define TEST_NOW ((time_t) 1750000000) /* 2025-06-15 15:06:40 UTC */
#define TEST_DAY ((time_t) 86400)

typedef struct TestCertSpec {
        const char *cn;
        EVP_PKEY *key;        /* the subject's key */
        X509 *issuer;         /* NULL: self-signed */
        EVP_PKEY *issuer_key; /* the key signing; the subject's own if self-signed */
        bool ca;
        time_t not_before;
        time_t not_after;
        const char *eku; /* "clientAuth", "serverAuth", ... or NULL for none */
        long serial;
} TestCertSpec;

typedef struct TestPki {
        EVP_PKEY *root_key, *inter_key, *leaf_key, *other_key, *other_root_key;
        X509 *root, *inter, *leaf, *expired, *future, *server_leaf, *other_key_leaf;
        X509 *other_root, *other_leaf;
} TestPki;

_unused_ static int test_key_new(EVP_PKEY **ret) {
        EVP_PKEY *k = EVP_EC_gen("P-256");

        if (!k)
                return -EIO;
        *ret = k;
        return 0;
}

static int test_cert_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
        int ok;

        if (!ext)
                return -EIO;
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -EIO;
}

_unused_ static int test_cert_new(const TestCertSpec *s, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        X509V3_CTX ctx;

        x = X509_new();
        name = X509_NAME_new();
        if (!x || !name)
                return -ENOMEM;

        if (!X509_set_version(x, X509_VERSION_3) || !ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial) ||
            !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *) "fleetid test", -1,
                                        -1, 0) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) s->cn, -1, -1, 0) ||
            !X509_set_subject_name(x, name) ||
            !X509_set_issuer_name(x, s->issuer ? X509_get_subject_name(s->issuer) : name) ||
            !ASN1_TIME_set(X509_getm_notBefore(x), s->not_before) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), s->not_after) || !X509_set_pubkey(x, s->key))
                return -EIO;

        X509V3_set_ctx(&ctx, s->issuer ? s->issuer : x, x, NULL, NULL, 0);
        if (test_cert_add_ext(x, &ctx, NID_basic_constraints,
                              s->ca ? "critical,CA:TRUE" : "critical,CA:FALSE") < 0 ||
            test_cert_add_ext(x, &ctx, NID_key_usage,
                              s->ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") < 0 ||
            test_cert_add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
            test_cert_add_ext(x, &ctx, NID_authority_key_identifier, "keyid") < 0)
                return -EIO;
        if (s->eku && test_cert_add_ext(x, &ctx, NID_ext_key_usage, s->eku) < 0)
                return -EIO;

        if (!X509_sign(x, s->issuer_key ? s->issuer_key : s->key, EVP_sha256()))
                return -EIO;

        *ret = TAKE_PTR(x);
        return 0;
}

_unused_ static void test_pki_free(TestPki *p) {
        if (!p)
                return;
        EVP_PKEY_free(p->root_key);
        EVP_PKEY_free(p->inter_key);
        EVP_PKEY_free(p->leaf_key);
        EVP_PKEY_free(p->other_key);
        EVP_PKEY_free(p->other_root_key);
        X509_free(p->root);
        X509_free(p->inter);
        X509_free(p->leaf);
        X509_free(p->expired);
        X509_free(p->future);
        X509_free(p->server_leaf);
        X509_free(p->other_key_leaf);
        X509_free(p->other_root);
        X509_free(p->other_leaf);
        free(p);
}

_unused_ static int test_pki_new(TestPki **ret) {
        TestPki *p = calloc(1, sizeof(TestPki));
        const time_t now = TEST_NOW, day = TEST_DAY;
        int r;

        if (!p)
                return -ENOMEM;

#define TRY(expr)                         \
        do {                              \
                r = (expr);               \
                if (r < 0) {              \
                        test_pki_free(p); \
                        return r;         \
                }                         \
        } while (0)

        TRY(test_key_new(&p->root_key));
        TRY(test_key_new(&p->inter_key));
        TRY(test_key_new(&p->leaf_key));
        TRY(test_key_new(&p->other_key));
        TRY(test_key_new(&p->other_root_key));

        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "Test Root CA",
                        .key = p->root_key,
                        .ca = true,
                        .not_before = now - 365 * day,
                        .not_after = now + 3650 * day,
                        .serial = 1,
                },
                &p->root));
        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "Test Issuing CA",
                        .key = p->inter_key,
                        .issuer = p->root,
                        .issuer_key = p->root_key,
                        .ca = true,
                        .not_before = now - 300 * day,
                        .not_after = now + 1825 * day,
                        .serial = 2,
                },
                &p->inter));
        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "device-0001",
                        .key = p->leaf_key,
                        .issuer = p->inter,
                        .issuer_key = p->inter_key,
                        .eku = "clientAuth",
                        .not_before = now - day,
                        .not_after = now + 90 * day,
                        .serial = 0x1234abcd,
                },
                &p->leaf));
        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "device-expired",
                        .key = p->leaf_key,
                        .issuer = p->inter,
                        .issuer_key = p->inter_key,
                        .eku = "clientAuth",
                        .not_before = now - 91 * day,
                        .not_after = now - day,
                        .serial = 4,
                },
                &p->expired));
        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "device-future",
                        .key = p->leaf_key,
                        .issuer = p->inter,
                        .issuer_key = p->inter_key,
                        .eku = "clientAuth",
                        .not_before = now + 10 * day,
                        .not_after = now + 100 * day,
                        .serial = 5,
                },
                &p->future));
        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "server.example",
                        .key = p->leaf_key,
                        .issuer = p->inter,
                        .issuer_key = p->inter_key,
                        .eku = "serverAuth",
                        .not_before = now - day,
                        .not_after = now + 90 * day,
                        .serial = 6,
                },
                &p->server_leaf));
        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "device-other-key",
                        .key = p->other_key,
                        .issuer = p->inter,
                        .issuer_key = p->inter_key,
                        .eku = "clientAuth",
                        .not_before = now - day,
                        .not_after = now + 90 * day,
                        .serial = 7,
                },
                &p->other_key_leaf));
        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "Other Root CA",
                        .key = p->other_root_key,
                        .ca = true,
                        .not_before = now - 365 * day,
                        .not_after = now + 3650 * day,
                        .serial = 8,
                },
                &p->other_root));
        TRY(test_cert_new(
                &(TestCertSpec) {
                        .cn = "device-0001",
                        .key = p->leaf_key,
                        .issuer = p->other_root,
                        .issuer_key = p->other_root_key,
                        .eku = "clientAuth",
                        .not_before = now - day,
                        .not_after = now + 90 * day,
                        .serial = 9,
                },
                &p->other_leaf));
#undef TRY

        *ret = p;
        return 0;
}

/* A new stack holding references to the given certificates (NULL-terminated list). */
_unused_ static STACK_OF(X509) *test_stack(X509 *first, ...) {
        STACK_OF(X509) *s = sk_X509_new_null();
        va_list ap;

        if (!s)
                return NULL;
        va_start(ap, first);
        for (X509 *x = first; x; x = va_arg(ap, X509 *)) {
                if (!X509_up_ref(x)) {
                        va_end(ap);
                        OSSL_STACK_OF_X509_free(s);
                        return NULL;
                }
                if (!sk_X509_push(s, x)) {
                        X509_free(x);
                        va_end(ap);
                        OSSL_STACK_OF_X509_free(s);
                        return NULL;
                }
        }
        va_end(ap);
        return s;
}
