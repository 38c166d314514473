/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE 1 /* asprintf() */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>
#include <openssl/pkcs7.h>

#include "crypto/ossl-util.h"
#include "crypto/pkcs7.h"
#include "test-certs.h"
#include "util/base64.h"

static TestPki *pki;

static int setup(void **state) {
        return test_pki_new(&pki) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        test_pki_free(pki);
        pki = NULL;
        return 0;
}

/* DER of a certs-only PKCS#7 with leaf, inter, root. */
static void build_chain_der(uint8_t **ret, size_t *ret_len) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *s =
                test_stack(pki->leaf, pki->inter, pki->root, NULL);

        assert_non_null(s);
        assert_int_equal(pkcs7_build_certs(s, ret, ret_len), 0);
}

static void assert_chain(STACK_OF(X509) *certs) {
        assert_int_equal(sk_X509_num(certs), 3);
        assert_int_equal(X509_cmp(sk_X509_value(certs, 0), pki->leaf), 0);
        assert_int_equal(X509_cmp(sk_X509_value(certs, 1), pki->inter), 0);
        assert_int_equal(X509_cmp(sk_X509_value(certs, 2), pki->root), 0);
}

static void assert_parses(const void *body, size_t len) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        Diag d = {};

        assert_int_equal(pkcs7_parse_certs(body, len, &certs, &d), 0);
        assert_chain(certs);
}

/* Rejected with -EBADMSG, *ret untouched, and the Diag mentioning 'why'. */
static void assert_rejected(const void *body, size_t len, const char *why) {
        STACK_OF(X509) *certs = (STACK_OF(X509) *) (uintptr_t) 1;
        Diag d = {};

        assert_int_equal(pkcs7_parse_certs(body, len, &certs, &d), -EBADMSG);
        assert_ptr_equal(certs, (STACK_OF(X509) *) (uintptr_t) 1);
        assert_int_equal(d.error, -EBADMSG);
        if (!strstr(d.text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d.text, why);
}

/* base64 of der, wrapped at 'width' with "\r\n" line ends. */
static char *to_base64_crlf(const uint8_t *der, size_t len, size_t width) {
        _cleanup_free_ char *lf = NULL;
        char *out, *o;

        assert_int_equal(base64_encode(der, len, width, &lf), 0);
        out = malloc(2 * strlen(lf) + 3);
        assert_non_null(out);
        o = out;
        for (const char *p = lf; *p; p++) {
                if (*p == '\n')
                        *o++ = '\r';
                *o++ = *p;
        }
        strcpy(o, "\r\n");
        return out;
}

static void test_base64_with_breaks(void **state) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *crlf = NULL, *lf = NULL;
        size_t len;

        build_chain_der(&der, &len);
        crlf = to_base64_crlf(der, len, 76);
        assert_parses(crlf, strlen(crlf));
        assert_int_equal(base64_encode(der, len, 64, &lf), 0);
        assert_parses(lf, strlen(lf));
}

static void test_base64_one_line(void **state) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *b64 = NULL;
        size_t len;

        build_chain_der(&der, &len);
        assert_int_equal(base64_encode(der, len, 0, &b64), 0);
        assert_int_equal(b64[0], 'M');
        assert_null(strchr(b64, '\n'));
        assert_parses(b64, strlen(b64));
        /* a C string's NUL at the end (some servers send it): harmless */
        assert_parses(b64, strlen(b64) + 1);
}

static void test_pem(void **state) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *b64 = NULL, *pem = NULL;
        size_t len;

        build_chain_der(&der, &len);
        assert_int_equal(base64_encode(der, len, 64, &b64), 0);
        assert_true(asprintf(&pem, "\n-----BEGIN PKCS7-----\n%s\n-----END PKCS7-----\n", b64) > 0);
        assert_parses(pem, strlen(pem));
}

/* What OpenSSL itself writes must be what we read. */
static void test_pem_from_openssl(void **state) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_(PKCS7_freep) PKCS7 *p7 = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
        const uint8_t *p;
        char *data;
        long n;
        size_t len;

        build_chain_der(&der, &len);
        p = der;
        p7 = d2i_PKCS7(NULL, &p, (long) len);
        assert_non_null(p7);
        assert_non_null(bio);
        assert_true(PEM_write_bio_PKCS7(bio, p7));
        n = BIO_get_mem_data(bio, &data);
        assert_true(n > 0);
        assert_parses(data, (size_t) n);
}

static void test_der(void **state) {
        _cleanup_free_ uint8_t *der = NULL;
        size_t len;

        build_chain_der(&der, &len);
        assert_int_equal(der[0], 0x30);
        assert_parses(der, len);
}

static void test_empty(void **state) {
        assert_rejected("", 0, "empty");
        assert_rejected(NULL, 0, "empty");
        assert_rejected(" \r\n\t", 4, "empty");
}

static void test_truncated(void **state) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *b64 = NULL, *pem = NULL;
        size_t len, bl;

        build_chain_der(&der, &len);
        assert_rejected(der, len - 10, "truncated");
        assert_rejected(der, 1, "truncated");
        assert_rejected(der, 3, "truncated");

        assert_int_equal(base64_encode(der, len, 0, &b64), 0);
        bl = strlen(b64);
        /* Cut at a 4-character boundary: valid base64 of truncated DER. */
        assert_rejected(b64, bl - 8, "is truncated: the structure declares");
        /* Cut anywhere else: not even whole base64 groups. */
        assert_rejected(b64, bl - 3, "not valid base64: bad padding, or truncated");

        assert_true(asprintf(&pem, "-----BEGIN PKCS7-----\n%.*s", 200, b64) > 0);
        assert_rejected(pem, strlen(pem), "truncated");
}

static void test_not_base64(void **state) {
        static const char html[] = "<html><body>Service Unavailable</body></html>";

        assert_rejected(html, strlen(html), "not base64");
        assert_rejected("MIIB$AAA", 8, "not base64");
        assert_rejected("MII-_AAA", 8, "not base64");
        assert_rejected("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 60,
                        "not \"-----BEGIN PKCS7-----\"");
}

static void test_garbage_der(void **state) {
        static const uint8_t not_seq[] = { 0x04, 0x82, 0x01, 0x00, 0xff, 0xfe };
        static const uint8_t seq_int[] = { 0x30, 0x83, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00 };
        static const uint8_t long_len[] = { 0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff };
        _cleanup_free_ char *b64 = NULL;

        assert_rejected(not_seq, sizeof(not_seq), "not base64");
        assert_rejected(seq_int, sizeof(seq_int), "not DER PKCS#7");
        assert_rejected(long_len, sizeof(long_len), "not DER PKCS#7");

        /* The same garbage, base64-encoded as a server would send it. */
        assert_int_equal(base64_encode(seq_int, sizeof(seq_int), 0, &b64), 0);
        assert_rejected(b64, strlen(b64), "not DER PKCS#7");
        free(b64);
        assert_int_equal(base64_encode(not_seq, sizeof(not_seq), 0, &b64), 0);
        assert_rejected(b64, strlen(b64), "does not start with an ASN.1 SEQUENCE");
}

static void test_trailing_data(void **state) {
        _cleanup_free_ uint8_t *der = NULL, *longer = NULL;
        size_t len;

        build_chain_der(&der, &len);
        longer = malloc(len + 4);
        assert_non_null(longer);
        memcpy(longer, der, len);
        memcpy(longer + len, "\xff\x00\x01\x02", 4);
        assert_rejected(longer, len + 4, "trailing data");
}

static void assert_p7_rejected(PKCS7 *p7, const char *why) {
        _cleanup_openssl_free_ uint8_t *der = NULL;
        _cleanup_free_ char *b64 = NULL;
        int n;

        n = i2d_PKCS7(p7, &der);
        assert_true(n > 0);
        assert_rejected(der, (size_t) n, why);
        assert_int_equal(base64_encode(der, (size_t) n, 64, &b64), 0);
        assert_rejected(b64, strlen(b64), why);
}

static void test_signed_with_signer_infos(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *extra = test_stack(pki->inter, NULL);
        static const char msg[] = "not a certs-only message";
        int flags[] = { PKCS7_BINARY, PKCS7_BINARY | PKCS7_DETACHED };

        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                _cleanup_(BIO_free_allp) BIO *in = BIO_new_mem_buf(msg, (int) strlen(msg));
                _cleanup_(PKCS7_freep) PKCS7 *p7 = NULL;

                p7 = PKCS7_sign(pki->leaf, pki->leaf_key, extra, in, flags[i]);
                assert_non_null(p7);
                assert_p7_rejected(p7, "1 signerInfo");
        }
}

static void test_signed_with_content(void **state) {
        _cleanup_(PKCS7_freep) PKCS7 *p7 = PKCS7_new();

        assert_non_null(p7);
        assert_true(PKCS7_set_type(p7, NID_pkcs7_signed));
        assert_true(PKCS7_content_new(p7, NID_pkcs7_data));
        assert_true(PKCS7_add_certificate(p7, pki->leaf));
        assert_true(ASN1_OCTET_STRING_set(p7->d.sign->contents->d.data, (const unsigned char *) "hello", 5));
        assert_p7_rejected(p7, "5 bytes of content");
}

/* Some servers encapsulate an empty eContent: still certs-only. */
static void test_signed_with_empty_content(void **state) {
        _cleanup_(PKCS7_freep) PKCS7 *p7 = PKCS7_new();
        _cleanup_openssl_free_ uint8_t *der = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        int n;

        assert_non_null(p7);
        assert_true(PKCS7_set_type(p7, NID_pkcs7_signed));
        assert_true(PKCS7_content_new(p7, NID_pkcs7_data));
        assert_true(PKCS7_add_certificate(p7, pki->leaf));
        n = i2d_PKCS7(p7, &der);
        assert_true(n > 0);
        assert_int_equal(pkcs7_parse_certs(der, (size_t) n, &certs, NULL), 0);
        assert_int_equal(sk_X509_num(certs), 1);
}

static void test_not_signed_data(void **state) {
        _cleanup_(PKCS7_freep) PKCS7 *p7 = PKCS7_new();

        assert_non_null(p7);
        assert_true(PKCS7_set_type(p7, NID_pkcs7_data));
        assert_true(ASN1_OCTET_STRING_set(p7->d.data, (const unsigned char *) "x", 1));
        assert_p7_rejected(p7, "not signedData");
}

static void test_zero_certs(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *none = sk_X509_new_null();
        _cleanup_free_ uint8_t *der = NULL, *der2 = NULL;
        size_t len, len2;

        assert_int_equal(pkcs7_build_certs(none, &der, &len), 0);
        assert_rejected(der, len, "no certificates");
        assert_int_equal(pkcs7_build_certs(NULL, &der2, &len2), 0);
        assert_rejected(der2, len2, "no certificates");
}

static void test_too_many_certs(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *many = sk_X509_new_null();
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ uint8_t *der = NULL, *der_max = NULL;
        size_t len;

        assert_non_null(many);
        for (int i = 0; i < PKCS7_MAX_CERTS; i++) {
                assert_true(X509_up_ref(pki->leaf));
                assert_true(sk_X509_push(many, pki->leaf));
        }
        assert_int_equal(pkcs7_build_certs(many, &der_max, &len), 0);
        assert_int_equal(pkcs7_parse_certs(der_max, len, &certs, NULL), 0);
        assert_int_equal(sk_X509_num(certs), PKCS7_MAX_CERTS);

        assert_true(X509_up_ref(pki->root));
        assert_true(sk_X509_push(many, pki->root));
        assert_int_equal(pkcs7_build_certs(many, &der, &len), 0);
        assert_rejected(der, len, "more than the 32 accepted");
}

static void test_too_large(void **state) {
        size_t len = PKCS7_MAX_BODY + 1;
        _cleanup_free_ char *big = malloc(len);

        assert_non_null(big);
        memset(big, 'A', len);
        assert_rejected(big, len, "more than the");
}

/* Bodies built by pkcs7_build_certs() are what 'openssl crl2pkcs7 -nocrl' writes:
 * the content is absent and the certificates are in order. */
static void test_build_certs_only(void **state) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_(PKCS7_freep) PKCS7 *p7 = NULL;
        const uint8_t *p;
        size_t len;

        build_chain_der(&der, &len);
        p = der;
        p7 = d2i_PKCS7(NULL, &p, (long) len);
        assert_non_null(p7);
        assert_true(PKCS7_type_is_signed(p7));
        assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
        assert_int_equal(OBJ_obj2nid(p7->d.sign->contents->type), NID_pkcs7_data);
        assert_null(p7->d.sign->contents->d.data);
        assert_int_equal(sk_X509_num(p7->d.sign->cert), 3);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64_with_breaks),
                cmocka_unit_test(test_base64_one_line),
                cmocka_unit_test(test_pem),
                cmocka_unit_test(test_pem_from_openssl),
                cmocka_unit_test(test_der),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_not_base64),
                cmocka_unit_test(test_garbage_der),
                cmocka_unit_test(test_trailing_data),
                cmocka_unit_test(test_signed_with_signer_infos),
                cmocka_unit_test(test_signed_with_content),
                cmocka_unit_test(test_signed_with_empty_content),
                cmocka_unit_test(test_not_signed_data),
                cmocka_unit_test(test_zero_certs),
                cmocka_unit_test(test_too_many_certs),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_build_certs_only),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
