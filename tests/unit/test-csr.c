/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CSR building and /csrattrs parsing, with software keys (no TPM). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>

#include "crypto/csr.h"
#include "est/csrattrs.h"
#include "test-certs.h"

static X509_REQ *build(EVP_PKEY *key, const char *cn, const char *serial, const char *digest,
                       const char *challenge) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        const unsigned char *p;
        size_t len;
        Diag d = {};

        assert_int_equal(csr_subject_new(cn, serial, &name, &d), 0);
        CsrRequest req = { .subject = name, .key = key, .digest = digest, .challenge_password = challenge };
        assert_int_equal(csr_build_der(&req, &der, &len, &d), 0);
        p = der;
        return d2i_X509_REQ(NULL, &p, (long) len);
}

static void test_csr_signed_and_named(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        X509_NAME *subject;
        char buf[128];

        assert_int_equal(test_key_new(&key), 0);
        req = build(key, "gw-1", "SN-42", NULL, NULL);
        assert_non_null(req);
        /* Proof of possession: the request verifies with its own public key. */
        assert_int_equal(X509_REQ_verify(req, key), 1);
        assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key), 1);
        subject = X509_REQ_get_subject_name(req);
        assert_true(X509_NAME_get_text_by_NID(subject, NID_commonName, buf, sizeof(buf)) > 0);
        assert_string_equal(buf, "gw-1");
        assert_true(X509_NAME_get_text_by_NID(subject, NID_serialNumber, buf, sizeof(buf)) > 0);
        assert_string_equal(buf, "SN-42");
        /* P-256 signs with SHA-256 by default. */
        assert_int_equal(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA256);
        assert_int_equal(X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1), -1);
}

static void test_csr_digest_and_challenge(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        X509_ATTRIBUTE *attr;
        ASN1_TYPE *v;

        assert_int_equal(test_key_new(&key), 0);
        req = build(key, NULL, "SN-1", "SHA384", "dGxzLXVuaXF1ZQ==");
        assert_non_null(req);
        assert_int_equal(X509_REQ_verify(req, key), 1);
        assert_int_equal(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA384);
        attr = X509_REQ_get_attr(req, X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1));
        assert_non_null(attr);
        v = X509_ATTRIBUTE_get0_type(attr, 0);
        assert_non_null(v);
        assert_memory_equal(ASN1_STRING_get0_data(v->value.asn1_string), "dGxzLXVuaXF1ZQ==", 16);
}

static void test_csr_subject_rules(void **state) {
        X509_NAME *name = NULL;
        Diag d = {};

        assert_int_equal(csr_subject_new(NULL, NULL, &name, &d), -EINVAL);
        assert_null(name);
        assert_non_null(strstr(d.text, "common name or a serial"));
        assert_int_equal(csr_subject_new("", "", &name, &d), -EINVAL);
}

static void test_default_digest(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *p256 = NULL, *p384 = NULL, *rsa2048 = NULL;

        assert_int_equal(test_key_new(&p256), 0);
        p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        assert_non_null(p384);
        assert_non_null(rsa2048);
        assert_string_equal(csr_default_digest(p256), "SHA256");
        assert_string_equal(csr_default_digest(p384), "SHA384");
        assert_string_equal(csr_default_digest(rsa2048), "SHA256");
}

/* DER of SEQUENCE { challengePassword OID, ecdsa-with-SHA384 OID,
 *                   SEQUENCE { id-ecPublicKey, SET { secp384r1 } } } */
static const uint8_t csrattrs_der[] = {
        0x30, 0x29, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03, 0x30, 0x12, 0x06, 0x07, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x02, 0x01, 0x31, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x00,
};

static void test_csrattrs_parse(void **state) {
        CsrAttrs a;
        Diag d = {};

        /* the trailing 0x00 above is not part of the SEQUENCE: must be refused */
        assert_int_equal(csrattrs_parse(csrattrs_der, sizeof(csrattrs_der), &a, &d), -EBADMSG);
        assert_int_equal(csrattrs_parse(csrattrs_der, sizeof(csrattrs_der) - 1, &a, &d), 0);
        assert_true(a.challenge_password);
        assert_string_equal(a.digest, "SHA384");
        /* the key-type request is read, not counted as unsupported (test-csrattrs.c has more) */
        assert_int_equal(a.curve_nid, NID_secp384r1);
        assert_int_equal(a.unsupported, 0);
}

static void test_csrattrs_empty_and_garbage(void **state) {
        static const uint8_t empty_seq[] = { 0x30, 0x00 };
        static const uint8_t not_seq[] = { 0x04, 0x01, 0x00 };
        static const uint8_t truncated[] = { 0x30, 0x10, 0x06, 0x03 };
        CsrAttrs a = { .unsupported = 99 };
        Diag d = {};

        assert_int_equal(csrattrs_parse(empty_seq, sizeof(empty_seq), &a, &d), 0);
        assert_false(a.challenge_password);
        assert_null(a.digest);
        assert_int_equal(a.unsupported, 0);
        assert_int_equal(csrattrs_parse(NULL, 0, &a, &d), 0);
        assert_int_equal(csrattrs_parse(not_seq, sizeof(not_seq), &a, &d), -EBADMSG);
        assert_int_equal(csrattrs_parse(truncated, sizeof(truncated), &a, &d), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_csr_signed_and_named),
                cmocka_unit_test(test_csr_digest_and_challenge),
                cmocka_unit_test(test_csr_subject_rules),
                cmocka_unit_test(test_default_digest),
                cmocka_unit_test(test_csrattrs_parse),
                cmocka_unit_test(test_csrattrs_empty_and_garbage),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
