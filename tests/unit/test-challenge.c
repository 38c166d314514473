/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>
#include <openssl/rsa.h>

#include "crypto/challenge.h"
#include "crypto/ossl-util.h"

static const uint8_t nonce16[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void assert_diag(const Diag *d, int r, const char *why) {
        assert_int_equal(d->error, r);
        if (!strstr(d->text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d->text, why);
}

static void test_nonce_bounds(void **state) {
        Diag d = {};

        assert_int_equal(challenge_check_nonce(15, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "the nonce is 15 bytes; it must be 16 to 64 bytes");
        assert_int_equal(challenge_check_nonce(0, NULL), -EINVAL);
        assert_int_equal(challenge_check_nonce(16, NULL), 0);
        assert_int_equal(challenge_check_nonce(64, NULL), 0);
        assert_int_equal(challenge_check_nonce(65, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "65 bytes");
}

static void test_purpose(void **state) {
        char longest[65], too_long[66];
        Diag d = {};

        memset(longest, 'a', 64);
        longest[64] = 0;
        memset(too_long, 'a', 65);
        too_long[65] = 0;
        assert_int_equal(challenge_check_purpose("login.v2_x-y", NULL), 0);
        assert_int_equal(challenge_check_purpose("0", NULL), 0);
        assert_int_equal(challenge_check_purpose(longest, NULL), 0);
        assert_int_equal(challenge_check_purpose(too_long, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "longer than 64 characters");
        assert_int_equal(challenge_check_purpose("", &d), -EINVAL);
        assert_diag(&d, -EINVAL, "the purpose is empty");
        assert_int_equal(challenge_check_purpose(NULL, &d), -EINVAL);
        assert_int_equal(challenge_check_purpose("Login", &d), -EINVAL);
        assert_diag(&d, -EINVAL, "the purpose has the character 0x4c at offset 0");
        assert_int_equal(challenge_check_purpose("a/b", &d), -EINVAL);
        assert_diag(&d, -EINVAL, "0x2f at offset 1");
        assert_int_equal(challenge_check_purpose("a b", &d), -EINVAL);
        assert_int_equal(challenge_check_purpose("tls\n", &d), -EINVAL);
}

/* Known answer, computed outside fleetid (Python hashlib):
 * sha256(b"fleetid-challenge-v1\0test\0" + bytes(range(16))). */
static void test_digest_known_answer(void **state) {
        static const uint8_t want[CHALLENGE_DIGEST_SIZE] = {
                0xaf, 0x89, 0x0a, 0xaf, 0xaf, 0x19, 0xbb, 0x85, 0xd9, 0xb8, 0xe4,
                0xd7, 0x17, 0x84, 0x11, 0x9c, 0x51, 0x1d, 0xca, 0x0b, 0xde, 0xed,
                0x02, 0xf2, 0x20, 0x54, 0x51, 0xf2, 0xfa, 0x68, 0x68, 0xc8,
        };
        uint8_t got[CHALLENGE_DIGEST_SIZE], other[CHALLENGE_DIGEST_SIZE];
        Diag d = {};

        assert_int_equal(challenge_digest(nonce16, sizeof(nonce16), "test", got, &d), 0);
        assert_memory_equal(got, want, sizeof(want));
        /* the separators matter: "tes" + "t\0..." must not collide */
        assert_int_equal(challenge_digest(nonce16, sizeof(nonce16), "tes", other, &d), 0);
        assert_memory_not_equal(got, other, sizeof(got));
        memset(other, 0x55, sizeof(other));
        assert_int_equal(challenge_digest(nonce16, 15, "test", other, &d), -EINVAL);
        assert_int_equal(other[0], 0x55); /* untouched on failure */
        assert_int_equal(challenge_digest(nonce16, 16, "Test", other, &d), -EINVAL);
}

static EVP_PKEY *rsa_key(void) {
        EVP_PKEY *k = EVP_RSA_gen(2048);

        assert_non_null(k);
        return k;
}

/* The signature verifies over the documented message with plain OpenSSL
 * (EVP_DigestVerify over "fleetid-challenge-v1" 0 purpose 0 nonce, what
 * `openssl dgst -sha256 -verify` does), not only with challenge_verify(). */
static void verify_as_third_party(EVP_PKEY *key, const char *purpose, const uint8_t *nonce, size_t nonce_len,
                                  const uint8_t *sig, size_t sig_len, bool pss) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t msg[256];
        size_t n = 0;
        EVP_PKEY_CTX *pctx = NULL;

        memcpy(msg, "fleetid-challenge-v1", 20);
        n = 20;
        msg[n++] = 0;
        memcpy(msg + n, purpose, strlen(purpose));
        n += strlen(purpose);
        msg[n++] = 0;
        memcpy(msg + n, nonce, nonce_len);
        n += nonce_len;

        assert_non_null(md);
        assert_int_equal(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key), 1);
        if (pss) {
                assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
                assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
        }
        assert_int_equal(EVP_DigestVerify(md, sig, sig_len, msg, n), 1);
}

static void sign_and_verify(EVP_PKEY *key, bool pss, const char *want_alg) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = EVP_EC_gen("P-256");
        _cleanup_free_ uint8_t *sig = NULL;
        uint8_t nonce64[64];
        const char *alg = NULL;
        size_t len = 0;
        Diag d = {};

        memset(nonce64, 0xa5, sizeof(nonce64));
        assert_int_equal(challenge_sign(key, nonce64, sizeof(nonce64), "login", pss, &sig, &len, &alg, &d), 0);
        assert_string_equal(alg, want_alg);
        assert_int_equal(challenge_verify(key, alg, nonce64, sizeof(nonce64), "login", sig, len, &d), 0);
        verify_as_third_party(key, "login", nonce64, sizeof(nonce64), sig, len, pss);

        /* another purpose, another nonce, a flipped bit, another key: refused */
        assert_int_equal(challenge_verify(key, alg, nonce64, sizeof(nonce64), "logon", sig, len, &d),
                         -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "signature over the challenge (purpose 'logon') is not valid");
        assert_int_equal(challenge_verify(key, alg, nonce64, 63, "login", sig, len, &d), -EKEYREJECTED);
        sig[len / 2] ^= 0x01;
        assert_int_equal(challenge_verify(key, alg, nonce64, sizeof(nonce64), "login", sig, len, &d),
                         -EKEYREJECTED);
        sig[len / 2] ^= 0x01;
        assert_int_equal(challenge_verify(key, alg, nonce64, sizeof(nonce64), "login", sig, len, &d), 0);
        if (!EVP_PKEY_is_a(key, "EC"))
                assert_int_equal(challenge_verify(other, alg, nonce64, sizeof(nonce64), "login", sig, len, &d),
                                 -EKEYREJECTED);
        /* bad input to the verifier */
        assert_int_equal(challenge_verify(key, "md5WithRSAEncryption", nonce64, 64, "login", sig, len, &d),
                         -EINVAL);
        assert_diag(&d, -EINVAL, "unknown signature algorithm 'md5WithRSAEncryption'");
        assert_int_equal(challenge_verify(key, alg, nonce64, 64, "login", sig, 0, &d), -EKEYREJECTED);
        assert_int_equal(challenge_verify(key, alg, nonce64, 8, "login", sig, len, &d), -EINVAL);
}

static void test_sign_ec(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *p256 = EVP_EC_gen("P-256");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *p384 = EVP_EC_gen("P-384");

        assert_non_null(p256);
        assert_non_null(p384);
        sign_and_verify(p256, false, CHALLENGE_ALG_ECDSA);
        sign_and_verify(p384, false, CHALLENGE_ALG_ECDSA);
}

static void test_sign_rsa(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa = rsa_key();

        sign_and_verify(rsa, false, CHALLENGE_ALG_RSA_PKCS1);
        sign_and_verify(rsa, true, CHALLENGE_ALG_RSA_PSS);
}

/* An algorithm that does not fit the key is refused, not tried. */
static void test_alg_mismatch(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa = rsa_key();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ec = EVP_EC_gen("P-256");
        _cleanup_free_ uint8_t *sig = NULL;
        const char *alg;
        size_t len;
        Diag d = {};

        assert_int_equal(challenge_sign(rsa, nonce16, 16, "x", false, &sig, &len, &alg, &d), 0);
        assert_int_equal(challenge_verify(rsa, CHALLENGE_ALG_RSA_PSS, nonce16, 16, "x", sig, len, &d),
                         -EKEYREJECTED);
        assert_int_equal(challenge_verify(ec, CHALLENGE_ALG_RSA_PKCS1, nonce16, 16, "x", sig, len, &d),
                         -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "a sha256WithRSAEncryption signature cannot come from a EC key");
}

static void test_sign_refusals(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ec = EVP_EC_gen("P-256");
        uint8_t *sig = (uint8_t *) "untouched";
        const char *alg = "untouched";
        size_t len = 7;
        Diag d = {};

        assert_non_null(ed);
        assert_int_equal(challenge_sign(ed, nonce16, 16, "x", false, &sig, &len, &alg, &d), -EOPNOTSUPP);
        assert_diag(&d, -EOPNOTSUPP, "a ED25519 key cannot sign a challenge");
        assert_int_equal(challenge_sign(ec, nonce16, 16, "x", true, &sig, &len, &alg, &d), -EOPNOTSUPP);
        assert_diag(&d, -EOPNOTSUPP, "with RSA-PSS");
        assert_int_equal(challenge_sign(ec, nonce16, 10, "x", false, &sig, &len, &alg, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "the nonce is 10 bytes");
        assert_int_equal(challenge_sign(ec, nonce16, 16, "X", false, &sig, &len, &alg, &d), -EINVAL);
        assert_string_equal(alg, "untouched");
        assert_int_equal(len, 7);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nonce_bounds),
                cmocka_unit_test(test_purpose),
                cmocka_unit_test(test_digest_known_answer),
                cmocka_unit_test(test_sign_ec),
                cmocka_unit_test(test_sign_rsa),
                cmocka_unit_test(test_alg_mismatch),
                cmocka_unit_test(test_sign_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
