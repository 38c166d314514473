/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE 1 /* asprintf() */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "test-certs.h"

static TestPki *pki;
static char tmpdir[] = "/tmp/test-certcheck-XXXXXX";

static int setup(void **state) {
        if (!mkdtemp(tmpdir))
                return -1;
        return test_pki_new(&pki) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        char cmd[sizeof(tmpdir) + 16];

        test_pki_free(pki);
        pki = NULL;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void assert_diag(const Diag *d, int r, const char *why) {
        assert_int_equal(d->error, r);
        if (!strstr(d->text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d->text, why);
}

static void test_key_match(void **state) {
        Diag d = {};

        assert_int_equal(cert_matches_key(pki->leaf, pki->leaf_key, &d), 0);
        assert_int_equal(cert_matches_key(pki->other_leaf, pki->leaf_key, &d), 0);
        assert_int_equal(cert_matches_key(pki->other_key_leaf, pki->leaf_key, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "CN=device-other-key,O=fleetid test does not match the key");
        assert_int_equal(cert_matches_key(pki->root, pki->leaf_key, NULL), -EKEYREJECTED);
}

/* A key that holds only the public half (as a TPM-backed key looks to us) matches. */
static void test_key_match_public_only(void **state) {
        _cleanup_openssl_free_ uint8_t *spki = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        const uint8_t *p;
        int n;

        n = i2d_PUBKEY(pki->leaf_key, &spki);
        assert_true(n > 0);
        p = spki;
        pub = d2i_PUBKEY(NULL, &p, n);
        assert_non_null(pub);
        assert_int_equal(cert_matches_key(pki->leaf, pub, NULL), 0);
        assert_int_equal(cert_matches_key(pki->other_key_leaf, pub, NULL), -EKEYREJECTED);
}

static void test_find_for_key(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *s =
                test_stack(pki->root, pki->inter, pki->other_key_leaf, pki->leaf, NULL);
        X509 *found = NULL;
        Diag d = {};

        assert_int_equal(certs_find_for_key(s, pki->leaf_key, &found, &d), 0);
        assert_ptr_equal(found, pki->leaf);
        assert_int_equal(certs_find_for_key(s, pki->inter_key, &found, &d), 0);
        assert_ptr_equal(found, pki->inter);

        found = NULL;
        assert_int_equal(certs_find_for_key(s, pki->other_root_key, &found, &d), -ENOKEY);
        assert_null(found);
        assert_diag(&d, -ENOKEY, "none of the 4 certificates matches the key");
        assert_int_equal(certs_find_for_key(NULL, pki->leaf_key, &found, NULL), -ENOKEY);
}

/* The verified path: the leaf, the intermediates used, no trust anchor, nothing
 * else that came along (another root, a certificate for another key, the root). */
static void test_chain_path(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *untrusted =
                test_stack(pki->other_root, pki->other_key_leaf, pki->leaf, pki->inter, pki->root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *root_and_inter =
                test_stack(pki->inter, pki->root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *others = test_stack(pki->other_root, NULL);
        STACK_OF(X509) *path = NULL;
        Diag d = {};

        assert_int_equal(cert_verify_chain_path(pki->leaf, untrusted, anchors, TEST_NOW, true, &path, &d), 0);
        assert_int_equal(sk_X509_num(path), 2);
        assert_ptr_equal(sk_X509_value(path, 0), pki->leaf);
        assert_int_equal(X509_cmp(sk_X509_value(path, 1), pki->inter), 0);
        OSSL_STACK_OF_X509_free(path);
        path = NULL;

        /* The intermediate from the anchors: it is part of the path too. */
        assert_int_equal(cert_verify_chain_path(pki->leaf, NULL, root_and_inter, TEST_NOW, true, &path, &d),
                         0);
        assert_int_equal(sk_X509_num(path), 2);
        assert_int_equal(X509_cmp(sk_X509_value(path, 1), pki->inter), 0);
        OSSL_STACK_OF_X509_free(path);
        path = NULL;

        /* Issued by the root directly: the leaf alone. */
        assert_int_equal(
                cert_verify_chain_path(pki->other_leaf, untrusted, others, TEST_NOW, true, &path, &d), 0);
        assert_int_equal(sk_X509_num(path), 1);
        assert_ptr_equal(sk_X509_value(path, 0), pki->other_leaf);
        OSSL_STACK_OF_X509_free(path);
        path = NULL;

        /* Failure: no path, untouched. */
        assert_int_equal(cert_verify_chain_path(pki->leaf, untrusted, others, TEST_NOW, true, &path, &d),
                         -EKEYREJECTED);
        assert_null(path);
}

static void test_chain_ok(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *untrusted = test_stack(pki->inter, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *both =
                test_stack(pki->other_root, pki->root, NULL);
        Diag d = {};

        assert_int_equal(cert_verify_chain(pki->leaf, untrusted, anchors, TEST_NOW, true, &d), 0);
        assert_int_equal(cert_verify_chain(pki->leaf, untrusted, anchors, TEST_NOW, false, &d), 0);
        assert_int_equal(cert_verify_chain(pki->leaf, untrusted, both, TEST_NOW, true, &d), 0);
        assert_int_equal(cert_verify_chain(pki->other_leaf, NULL, both, TEST_NOW, true, &d), 0);
        /* An intermediate among the anchors is fine as long as the chain still ends at a root. */
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *root_and_inter =
                test_stack(pki->inter, pki->root, NULL);
        assert_int_equal(cert_verify_chain(pki->leaf, NULL, root_and_inter, TEST_NOW, true, &d), 0);
        /* A CA certificate verifies when no end-entity is asked for. */
        assert_int_equal(cert_verify_chain(pki->inter, NULL, anchors, TEST_NOW, false, &d), 0);
}

static void test_chain_wrong_anchor(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *untrusted = test_stack(pki->inter, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->other_root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *roots = test_stack(pki->root, NULL);
        Diag d = {};

        assert_int_equal(cert_verify_chain(pki->leaf, untrusted, anchors, TEST_NOW, true, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED,
                    "certificate chain does not lead to a configured trust anchor "
                    "(unable to get local issuer certificate)");
        assert_diag(&d, -EKEYREJECTED, "CN=Test Issuing CA");

        /* A root passed only as "untrusted" is not a trust anchor. */
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *with_root =
                test_stack(pki->inter, pki->root, NULL);
        assert_int_equal(cert_verify_chain(pki->leaf, with_root, anchors, TEST_NOW, true, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "does not lead to a configured trust anchor");

        /* The other PKI's leaf against our root. */
        assert_int_equal(cert_verify_chain(pki->other_leaf, untrusted, roots, TEST_NOW, true, &d),
                         -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "does not lead to a configured trust anchor");
}

static void test_chain_intermediate_missing(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *unrelated = test_stack(pki->other_root, NULL);
        Diag d = {};

        assert_int_equal(cert_verify_chain(pki->leaf, NULL, anchors, TEST_NOW, true, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED,
                    "does not lead to a configured trust anchor (unable to get local issuer certificate)");
        assert_diag(&d, -EKEYREJECTED, "at depth 0, certificate CN=device-0001");
        assert_int_equal(cert_verify_chain(pki->leaf, unrelated, anchors, TEST_NOW, true, &d), -EKEYREJECTED);
}

/* An intermediate among the anchors does not make a partial chain acceptable. */
static void test_chain_no_partial(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->inter, NULL);
        Diag d = {};

        assert_int_equal(cert_verify_chain(pki->leaf, NULL, anchors, TEST_NOW, true, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "does not lead to a configured trust anchor");
}

static void test_chain_expired(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *untrusted = test_stack(pki->inter, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);
        Diag d = {};

        assert_int_equal(cert_verify_chain(pki->expired, untrusted, anchors, TEST_NOW, true, &d),
                         -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "has expired (certificate has expired)");
        /* ... and it was fine while it was valid: the check uses 'now', not the clock. */
        assert_int_equal(
                cert_verify_chain(pki->expired, untrusted, anchors, TEST_NOW - 30 * TEST_DAY, true, &d), 0);

        assert_int_equal(cert_verify_chain(pki->future, untrusted, anchors, TEST_NOW, true, &d),
                         -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "not yet valid");
        assert_int_equal(
                cert_verify_chain(pki->future, untrusted, anchors, TEST_NOW + 11 * TEST_DAY, true, &d), 0);

        /* The leaf is fine, the intermediate has expired. */
        assert_int_equal(
                cert_verify_chain(pki->leaf, untrusted, anchors, TEST_NOW + 2000 * TEST_DAY, false, &d),
                -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "expired");
}

static void test_chain_end_entity(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *untrusted = test_stack(pki->inter, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);
        Diag d = {};

        assert_int_equal(cert_verify_chain(pki->inter, NULL, anchors, TEST_NOW, true, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED,
                    "CN=Test Issuing CA,O=fleetid test is a CA certificate, not an end-entity");

        /* serverAuth-only: not for TLS client authentication. */
        assert_int_equal(cert_verify_chain(pki->server_leaf, untrusted, anchors, TEST_NOW, true, &d),
                         -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "not usable for TLS client authentication");
        assert_int_equal(cert_verify_chain(pki->server_leaf, untrusted, anchors, TEST_NOW, false, &d), 0);
}

static void test_chain_no_anchors(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *none = sk_X509_new_null();
        Diag d = {};

        assert_int_equal(cert_verify_chain(pki->leaf, NULL, NULL, TEST_NOW, true, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "no trust anchor");
        assert_int_equal(cert_verify_chain(pki->leaf, NULL, none, TEST_NOW, true, &d), -EINVAL);
}

static void test_times(void **state) {
        time_t nb = 0, na = 0;

        assert_int_equal(cert_times(pki->leaf, &nb, &na), 0);
        assert_int_equal(nb, TEST_NOW - TEST_DAY);
        assert_int_equal(na, TEST_NOW + 90 * TEST_DAY);
        assert_int_equal(cert_times(pki->root, NULL, &na), 0);
        assert_int_equal(na, TEST_NOW + 3650 * TEST_DAY);
}

static void test_validity(void **state) {
        const time_t na = TEST_NOW + 90 * TEST_DAY, nb = TEST_NOW - TEST_DAY;
        Diag d = {};

        assert_int_equal(cert_check_validity(pki->leaf, TEST_NOW, 0, &d), 0);
        assert_int_equal(cert_check_validity(pki->leaf, na, 0, &d), 0); /* notAfter is inclusive */
        assert_int_equal(cert_check_validity(pki->leaf, nb, 0, &d), 0);
        assert_int_equal(cert_check_validity(pki->leaf, na + 1, 0, &d), -ESTALE);
        assert_diag(&d, -ESTALE, "CN=device-0001,O=fleetid test expired on 2025-09-13 15:06:40 UTC");
        assert_int_equal(cert_check_validity(pki->leaf, nb - 1, 0, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "not valid before 2025-06-14 15:06:40 UTC");

        assert_int_equal(cert_check_validity(pki->expired, TEST_NOW, 300, &d), -ESTALE);
        assert_diag(&d, -ESTALE, "expired on 2025-06-14 15:06:40 UTC");

        /* Skew only helps before notBefore, never after notAfter. */
        assert_int_equal(cert_check_validity(pki->expired, TEST_NOW, 10 * TEST_DAY, &d), -ESTALE);
        assert_int_equal(cert_check_validity(pki->future, TEST_NOW, 300, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "not valid before 2025-06-25 15:06:40 UTC");
        assert_int_equal(cert_check_validity(pki->future, TEST_NOW, 10 * TEST_DAY, &d), 0);
        assert_int_equal(cert_check_validity(pki->future, TEST_NOW, 10 * TEST_DAY - 1, &d), -EKEYREJECTED);
}

static void test_validity_inverted(void **state) {
        _cleanup_(X509_freep) X509 *inverted = NULL;
        Diag d = {};

        assert_int_equal(test_cert_new(
                                 &(TestCertSpec) {
                                         .cn = "inverted",
                                         .key = pki->leaf_key,
                                         .issuer = pki->inter,
                                         .issuer_key = pki->inter_key,
                                         .not_before = TEST_NOW + TEST_DAY,
                                         .not_after = TEST_NOW - TEST_DAY,
                                         .serial = 99,
                                 },
                                 &inverted),
                         0);
        assert_int_equal(cert_check_validity(inverted, TEST_NOW, 3 * TEST_DAY, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "inverted validity period");
}

static void test_fingerprint(void **state) {
        _cleanup_free_ char *fp = NULL;
        uint8_t md[32], parsed[32];
        unsigned n;
        char expect[8 + 64] = "sha256:";

        assert_true(X509_digest(pki->leaf, EVP_sha256(), md, &n));
        for (size_t i = 0; i < sizeof(md); i++)
                sprintf(expect + 7 + 2 * i, "%02x", md[i]);

        assert_int_equal(cert_fingerprint(pki->leaf, &fp), 0);
        assert_string_equal(fp, expect);
        assert_int_equal(strlen(fp), 7 + 64);

        assert_int_equal(fingerprint_parse(fp, parsed), 0);
        assert_memory_equal(parsed, md, sizeof(md));
}

static void test_fingerprint_parse(void **state) {
        static const char plain[] = "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        static const char colons[] = "SHA256:00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:"
                                     "10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F";
        static const char mixed[] =
                "Sha256:0001:0203040506:07:08090A0b0C0d0e0f101112131415161718191a1b1c1d1e1f";
        static const char *const bad[] = {
                "",
                "sha256:",
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", /* no prefix */
                "sha1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",     /* 31 bytes */
                "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", /* 33 bytes */
                "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",    /* odd */
                "sha256:zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",   /* bad hex */
                "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
                "sha256::000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", /* leading ':' */
                "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f:", /* trailing ':' */
                "sha256:00::0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", /* double ':' */
                "sha256:0:00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", /* ':' mid-byte */
                "sha256: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f ",
        };
        uint8_t expect[32], out[32];

        for (size_t i = 0; i < sizeof(expect); i++)
                expect[i] = (uint8_t) i;

        memset(out, 0, sizeof(out));
        assert_int_equal(fingerprint_parse(plain, out), 0);
        assert_memory_equal(out, expect, sizeof(out));
        memset(out, 0, sizeof(out));
        assert_int_equal(fingerprint_parse(colons, out), 0);
        assert_memory_equal(out, expect, sizeof(out));
        memset(out, 0, sizeof(out));
        assert_int_equal(fingerprint_parse(mixed, out), 0);
        assert_memory_equal(out, expect, sizeof(out));

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memset(out, 0xaa, sizeof(out));
                if (fingerprint_parse(bad[i], out) != -EINVAL)
                        fail_msg("accepted \"%s\"", bad[i]);
                for (size_t j = 0; j < sizeof(out); j++)
                        assert_int_equal(out[j], 0xaa);
        }
        assert_int_equal(fingerprint_parse(NULL, out), -EINVAL);
}

static void test_find_by_fingerprint(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *s =
                test_stack(pki->leaf, pki->inter, pki->root, NULL);
        _cleanup_free_ char *fp = NULL, *other = NULL;
        uint8_t md[32];
        X509 *found = NULL;

        assert_int_equal(cert_fingerprint(pki->inter, &fp), 0);
        assert_int_equal(fingerprint_parse(fp, md), 0);
        assert_int_equal(certs_find_by_fingerprint(s, md, &found), 0);
        assert_ptr_equal(found, pki->inter);

        found = NULL;
        assert_int_equal(cert_fingerprint(pki->other_root, &other), 0);
        assert_int_equal(fingerprint_parse(other, md), 0);
        assert_int_equal(certs_find_by_fingerprint(s, md, &found), -ENOENT);
        assert_null(found);
}

static char *write_tmp(const char *name, const void *data, size_t len) {
        char *path;
        FILE *f;

        assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
        f = fopen(path, "we");
        assert_non_null(f);
        if (len > 0)
                assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        return path;
}

static void test_pem_roundtrip(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *s =
                test_stack(pki->leaf, pki->inter, pki->root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *back = NULL;
        _cleanup_free_ char *pem = NULL, *path = NULL;
        size_t len = 0;
        Diag d = {};

        assert_int_equal(certs_to_pem(s, &pem, &len), 0);
        assert_int_equal(strlen(pem), len);
        assert_ptr_equal(strstr(pem, "-----BEGIN CERTIFICATE-----\n"), pem);

        path = write_tmp("chain.pem", pem, len);
        assert_int_equal(certs_load_pem_file(path, &back, &d), 0);
        assert_int_equal(sk_X509_num(back), 3);
        for (int i = 0; i < 3; i++)
                assert_int_equal(X509_cmp(sk_X509_value(back, i), sk_X509_value(s, i)), 0);
}

/* Other PEM blocks (a key, say) around the certificates are skipped. */
static void test_pem_file_with_other_blocks(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *back = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
        _cleanup_free_ char *path = NULL;
        char *data;
        long n;

        assert_non_null(bio);
        assert_true(BIO_puts(bio, "# trust anchors\n") > 0);
        assert_true(PEM_write_bio_PUBKEY(bio, pki->root_key));
        assert_true(PEM_write_bio_X509(bio, pki->root));
        n = BIO_get_mem_data(bio, &data);
        path = write_tmp("mixed.pem", data, (size_t) n);
        assert_int_equal(certs_load_pem_file(path, &back, NULL), 0);
        assert_int_equal(sk_X509_num(back), 1);
        assert_int_equal(X509_cmp(sk_X509_value(back, 0), pki->root), 0);
}

static void assert_load_fails(const char *path, int r, const char *why) {
        STACK_OF(X509) *certs = (STACK_OF(X509) *) (uintptr_t) 1;
        Diag d = {};

        assert_int_equal(certs_load_pem_file(path, &certs, &d), r);
        assert_ptr_equal(certs, (STACK_OF(X509) *) (uintptr_t) 1);
        assert_diag(&d, r, why);
}

static void test_pem_file_errors(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *s = test_stack(pki->leaf, pki->root, NULL);
        _cleanup_free_ char *pem = NULL, *empty = NULL, *garbage = NULL, *corrupt = NULL, *big = NULL,
                            *missing = NULL, *huge = NULL, *cut = NULL, *pem_cut = NULL;
        size_t len;
        char *second;

        empty = write_tmp("empty.pem", "", 0);
        assert_load_fails(empty, -EBADMSG, "holds no PEM certificate");

        garbage = write_tmp("garbage.pem", "hello\nworld\n", 12);
        assert_load_fails(garbage, -EBADMSG, "holds no PEM certificate");

        assert_true(asprintf(&missing, "%s/does-not-exist.pem", tmpdir) > 0);
        assert_load_fails(missing, -ENOENT, "does-not-exist.pem");

        assert_load_fails(tmpdir, -EISDIR, tmpdir);

        /* The second certificate's base64 is damaged: the whole file is refused. */
        assert_int_equal(certs_to_pem(s, &pem, &len), 0);
        second = strstr(pem + 1, "-----BEGIN CERTIFICATE-----");
        assert_non_null(second);
        second[40] = '*';
        corrupt = write_tmp("corrupt.pem", pem, len);
        assert_load_fails(corrupt, -EBADMSG, "certificate #2 is malformed");

        /* A block without its END line. */
        assert_int_equal(certs_to_pem(s, &pem_cut, &len), 0);
        cut = write_tmp("cut.pem", pem_cut, len - 30);
        assert_load_fails(cut, -EBADMSG, "certificate #2 is malformed");

        huge = malloc(CERT_PEM_FILE_MAX + 1);
        assert_non_null(huge);
        memset(huge, '\n', CERT_PEM_FILE_MAX + 1);
        big = write_tmp("big.pem", huge, CERT_PEM_FILE_MAX + 1);
        assert_load_fails(big, -EFBIG, "larger than");
}

static void test_der(void **state) {
        _cleanup_openssl_free_ uint8_t *der = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ uint8_t *longer = NULL;
        X509 *untouched = (X509 *) (uintptr_t) 1;
        Diag d = {};
        int n;

        n = i2d_X509(pki->leaf, &der);
        assert_true(n > 0);
        assert_int_equal(cert_from_der(der, (size_t) n, &cert, &d), 0);
        assert_int_equal(X509_cmp(cert, pki->leaf), 0);

        assert_int_equal(cert_from_der(der, (size_t) n - 1, &untouched, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "not a DER certificate");
        assert_int_equal(cert_from_der((const uint8_t *) "hello", 5, &untouched, &d), -EBADMSG);
        assert_int_equal(cert_from_der(der, 0, &untouched, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "empty");

        longer = malloc((size_t) n + 2);
        assert_non_null(longer);
        memcpy(longer, der, (size_t) n);
        longer[n] = longer[n + 1] = 0;
        assert_int_equal(cert_from_der(longer, (size_t) n + 2, &untouched, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "followed by 2 bytes");
        assert_ptr_equal(untouched, (X509 *) (uintptr_t) 1);
}

static void test_subject_serial(void **state) {
        _cleanup_free_ char *subject = NULL, *serial = NULL, *root_serial = NULL;

        assert_int_equal(cert_subject_string(pki->leaf, &subject), 0);
        assert_string_equal(subject, "CN=device-0001,O=fleetid test");
        assert_int_equal(cert_serial_string(pki->leaf, &serial), 0);
        assert_string_equal(serial, "1234ABCD");
        assert_int_equal(cert_serial_string(pki->root, &root_serial), 0);
        assert_string_equal(root_serial, "01");
}

static void test_is_ca(void **state) {
        assert_true(cert_is_ca(pki->root));
        assert_true(cert_is_ca(pki->inter));
        assert_false(cert_is_ca(pki->leaf));
        assert_false(cert_is_ca(pki->server_leaf));
        assert_false(cert_is_ca(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_key_match),
                cmocka_unit_test(test_key_match_public_only),
                cmocka_unit_test(test_find_for_key),
                cmocka_unit_test(test_chain_ok),
                cmocka_unit_test(test_chain_path),
                cmocka_unit_test(test_chain_wrong_anchor),
                cmocka_unit_test(test_chain_intermediate_missing),
                cmocka_unit_test(test_chain_no_partial),
                cmocka_unit_test(test_chain_expired),
                cmocka_unit_test(test_chain_end_entity),
                cmocka_unit_test(test_chain_no_anchors),
                cmocka_unit_test(test_times),
                cmocka_unit_test(test_validity),
                cmocka_unit_test(test_validity_inverted),
                cmocka_unit_test(test_fingerprint),
                cmocka_unit_test(test_fingerprint_parse),
                cmocka_unit_test(test_find_by_fingerprint),
                cmocka_unit_test(test_pem_roundtrip),
                cmocka_unit_test(test_pem_file_with_other_blocks),
                cmocka_unit_test(test_pem_file_errors),
                cmocka_unit_test(test_der),
                cmocka_unit_test(test_subject_serial),
                cmocka_unit_test(test_is_ca),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
