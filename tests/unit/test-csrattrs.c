/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-csrattrs.c: the /csrattrs parser (est/csrattrs.h) against the forms
 * servers send and against hostile bodies, and the key choice made from it
 * (enroll/key-choice.h, without a TPM).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "exchange/key-choice.h"
#include "est/csrattrs.h"

/* Hex to bytes; the test bodies are written out as DER in hex. */
static size_t unhex(const char *hex, uint8_t *out, size_t size) {
        size_t n = 0;

        for (; hex[0] && hex[1]; hex += 2) {
                unsigned v;

                assert_true(n < size);
                assert_int_equal(sscanf(hex, "%2x", &v), 1);
                out[n++] = (uint8_t) v;
        }
        return n;
}

static int parse_hex(const char *hex, CsrAttrs *ret) {
        uint8_t der[2048];
        size_t len = unhex(hex, der, sizeof(der));
        Diag d = {};
        int r = csrattrs_parse(der, len, ret, &d);

        if (r < 0)
                assert_true(d.text[0] != '\0'); /* a reason is always given */
        return r;
}

/* As the lab server sends them (tests/lab/est_server.py csrattrs_key). */
#define BODY_P256 \
        "302c06092a864886f70d01090706082a8648ce3d040302301506072a8648ce3d0201310a06082a8648ce3d030107"
#define BODY_P384 "302a06092a864886f70d010907301206072a8648ce3d0201310706052b810400220609608648016503040202"
#define BODY_RSA2048 "302906092a864886f70d010907301106092a864886f70d01010131040202080006092a864886f70d01010b"
#define BODY_RSA3072 "302906092a864886f70d010907301106092a864886f70d010101310402020c0006092a864886f70d01010c"
#define BODY_P521 "302906092a864886f70d010907301206072a8648ce3d0201310706052b8104002306082a8648ce3d040304"

static void test_forms(void **state) {
        CsrAttrs a;

        assert_int_equal(parse_hex(BODY_P256, &a), 0);
        assert_true(a.challenge_password);
        assert_int_equal(a.key_nid, NID_X9_62_id_ecPublicKey);
        assert_int_equal(a.curve_nid, NID_X9_62_prime256v1);
        assert_string_equal(a.digest, "SHA256");
        assert_int_equal(a.signature_key_nid, NID_X9_62_id_ecPublicKey);
        assert_int_equal(a.unsupported, 0);

        /* The curve as an attribute, the hash as a bare id-sha384 (the outside probe's server). */
        assert_int_equal(parse_hex(BODY_P384, &a), 0);
        assert_int_equal(a.key_nid, NID_X9_62_id_ecPublicKey);
        assert_int_equal(a.curve_nid, NID_secp384r1);
        assert_string_equal(a.key_name, "secp384r1");
        assert_string_equal(a.digest, "SHA384");
        assert_int_equal(a.signature_key_nid, NID_undef);

        /* rsaEncryption with an INTEGER size, a signature algorithm for the hash. */
        assert_int_equal(parse_hex(BODY_RSA3072, &a), 0);
        assert_int_equal(a.key_nid, NID_rsaEncryption);
        assert_int_equal(a.rsa_bits, 3072);
        assert_string_equal(a.key_name, "RSA 3072");
        assert_string_equal(a.digest, "SHA384");
        assert_int_equal(parse_hex(BODY_RSA2048, &a), 0);
        assert_int_equal(a.rsa_bits, 2048);
        assert_string_equal(a.digest, "SHA256");

        /* A bare rsaEncryption: any size. A bare id-ecPublicKey: any curve. */
        assert_int_equal(parse_hex("300b06092a864886f70d010101", &a), 0);
        assert_int_equal(a.key_nid, NID_rsaEncryption);
        assert_int_equal(a.rsa_bits, 0);
        assert_int_equal(parse_hex("300906072a8648ce3d0201", &a), 0);
        assert_int_equal(a.key_nid, NID_X9_62_id_ecPublicKey);
        assert_int_equal(a.curve_nid, NID_undef);

        /* RFC 7030 4.5.2's example: extensionRequest { macAddress } is not acted on, but named. */
        assert_int_equal(parse_hex("304106092a864886f70d010907"
                                   "301206072a8648ce3d0201310706052b81040022"
                                   "301606092a864886f70d01090e310906072b060101010116" /* macAddress */
                                   "06082a8648ce3d040303",
                                   &a),
                         0);
        assert_int_equal(a.curve_nid, NID_secp384r1);
        assert_string_equal(a.digest, "SHA384");
        assert_int_equal(a.unsupported, 1);
        assert_non_null(strstr(a.unsupported_names, "Extension Request"));

        /* A hash fleetid does not sign with is named, not used. */
        assert_int_equal(parse_hex("300706052b0e03021a", &a), 0); /* id-sha1 */
        assert_null(a.digest);
        assert_string_equal(a.digest_name, "SHA1");

        /* Nothing at all. */
        assert_int_equal(parse_hex("", &a), 0);
        assert_int_equal(a.key_nid, NID_undef);
        assert_int_equal(parse_hex("3000", &a), 0);
        assert_false(a.challenge_password);
        assert_null(a.digest);
}

static void test_hostile(void **state) {
        static const char *const bad[] = {
                "30",                                           /* no length */
                "3080060352040000",                             /* BER indefinite length */
                "308103060352",                                 /* non-minimal length */
                "3084000000050603520401",                       /* 4-byte length */
                "3010060352",                                   /* length beyond the body */
                "300506035204010000",                           /* bytes after the SEQUENCE */
                "3100",                                         /* a SET, not a SEQUENCE */
                "3003020105",                                   /* an INTEGER item */
                "3002",                                         /* item cut short */
                "3004060280 01",                                /* OID with a 0x80 pad byte */
                "30020600",                                     /* empty OID */
                "30031f0100",                                   /* high tag number */
                "300b300906072a8648ce3d0201",                   /* attribute without its SET */
                "300d300b06072a8648ce3d02010500",               /* attribute with NULL instead of SET */
                "300f300d06072a8648ce3d020131000500",           /* attribute with something after the SET */
                "300e300c06072a8648ce3d02013101",               /* SET value cut short */
                "3010300e06072a8648ce3d02013103020101",         /* curve given as INTEGER */
                "3012301006092a864886f70d010101310306012a",     /* RSA size given as OID */
                "3011300f06092a864886f70d01010131020200",       /* RSA size 0 */
                "3011300f06092a864886f70d010101310202ff",       /* negative RSA size */
                "3014301206092a864886f70d01010131050203000800", /* non-minimal INTEGER */
                "3014301206092a864886f70d01010131050203186a00", /* 1.6 million bits */
                "3015301306092a864886f70d0101013106020401000000", /* 4-byte INTEGER */
                "3011300f06092a864886f70d010101310202",           /* INTEGER cut short */
        };
        CsrAttrs a;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char hex[256];
                size_t k = 0;

                /* allow spaces in the table for readability */
                for (const char *p = bad[i]; *p && k + 1 < sizeof(hex); p++)
                        if (*p != ' ')
                                hex[k++] = *p;
                hex[k] = '\0';
                if (parse_hex(hex, &a) != -EBADMSG)
                        fail_msg("accepted hostile body %zu: %s", i, bad[i]);
        }
}

static void test_bounds(void **state) {
        uint8_t der[4096];
        CsrAttrs a;
        size_t n;

        /* 64 bare OIDs are fine, 65 are not. */
        for (unsigned items = 64; items <= 65; items++) {
                n = 0;
                der[n++] = 0x30;
                der[n++] = 0x82;
                der[n++] = (uint8_t) ((items * 5) >> 8);
                der[n++] = (uint8_t) (items * 5);
                for (unsigned i = 0; i < items; i++) {
                        memcpy(der + n, "\x06\x03\x55\x04\x03", 5); /* commonName */
                        n += 5;
                }
                assert_int_equal(csrattrs_parse(der, n, &a, NULL), items == 64 ? 0 : -EBADMSG);
                if (items == 64)
                        assert_int_equal(a.unsupported, 64);
        }

        /* 16 values in an attribute's SET are fine, 17 are not. */
        for (unsigned values = 16; values <= 17; values++) {
                size_t set_len = values * 3, attr_len = 11 + 2 + set_len;

                n = 0;
                der[n++] = 0x30;
                der[n++] = (uint8_t) (2 + attr_len);
                der[n++] = 0x30;
                der[n++] = (uint8_t) attr_len;
                memcpy(der + n, "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x09\x0e", 11); /* extensionRequest */
                n += 11;
                der[n++] = 0x31;
                der[n++] = (uint8_t) set_len;
                for (unsigned i = 0; i < values; i++) {
                        memcpy(der + n, "\x02\x01\x01", 3);
                        n += 3;
                }
                assert_int_equal(csrattrs_parse(der, n, &a, NULL), values == 16 ? 0 : -EBADMSG);
        }
}

/* Every truncation and every single-byte change of a valid body is either
 * parsed or refused: never read beyond, never crash (run under ASan too). */
static void test_mutations(void **state) {
        static const char *const bodies[] = { BODY_P256, BODY_P384, BODY_RSA3072, BODY_P521 };
        uint8_t der[256], m[256];
        CsrAttrs a;

        for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
                size_t len = unhex(bodies[b], der, sizeof(der));

                for (size_t cut = 1; cut < len; cut++) {
                        uint8_t *copy = malloc(cut); /* exact size, so ASan sees any overread */

                        assert_non_null(copy);
                        memcpy(copy, der, cut);
                        assert_int_equal(csrattrs_parse(copy, cut, &a, NULL), -EBADMSG);
                        free(copy);
                }
                for (size_t i = 0; i < len; i++)
                        for (unsigned v = 0; v < 256; v += 7) {
                                int r;

                                memcpy(m, der, len);
                                m[i] ^= (uint8_t) (v | 1);
                                r = csrattrs_parse(m, len, &a, NULL);
                                assert_true(r == 0 || r == -EBADMSG);
                        }
        }
}

static const KeyPolicy all_allowed = { KEY_ALG_ECC_P256, KEY_ALG_ALL, "is not allowed" };
static const KeyPolicy only_p256 = { KEY_ALG_ECC_P256, KEY_ALG_BIT(KEY_ALG_ECC_P256),
                                     "is not in operational.allowed_key_algorithms" };

/* The choice for a body under a policy: the key, the hash, and a reason
 * containing `why` ("" = honoured, no reason). Returns it for further checks. */
static KeyChoice expect_choice(const char *hex, const KeyPolicy *p, KeyAlgorithm alg, const char *digest,
                               const char *why) {
        CsrAttrs a;
        KeyChoice c;

        assert_int_equal(parse_hex(hex, &a), 0);
        key_choice_decide(&a, p, &c);
        assert_int_equal(c.algorithm, alg);
        assert_string_equal(c.digest, digest);
        if (why[0] == '\0')
                assert_string_equal(c.why, "");
        else if (!strstr(c.why, why))
                fail_msg("reason '%s' lacks '%s'", c.why, why);
        return c;
}

static void test_choice_honoured(void **state) {
        KeyChoice c;

        c = expect_choice(BODY_P384, &all_allowed, KEY_ALG_ECC_P384, "SHA384", "");
        assert_string_equal(c.asked, "key secp384r1, hash SHA384");
        expect_choice(BODY_RSA2048, &all_allowed, KEY_ALG_RSA_2048, "SHA256", "");
        expect_choice(BODY_RSA3072, &all_allowed, KEY_ALG_RSA_3072, "SHA384", "");
        /* A signature algorithm alone names the key type: sha384WithRSAEncryption. */
        expect_choice("300b06092a864886f70d01010c", &all_allowed, KEY_ALG_RSA_2048, "SHA384", "");
        /* Nothing asked: the default, silently. */
        c = expect_choice("3000", &all_allowed, KEY_ALG_ECC_P256, "SHA256", "");
        assert_string_equal(c.asked, "");
}

static void test_choice_refused(void **state) {
        KeyChoice c;

        /* Outside the allowed set: the default key; the hash is still honoured. */
        c = expect_choice(BODY_P384, &only_p256, KEY_ALG_ECC_P256, "SHA384",
                          "ecc-p384 is not in operational.allowed_key_algorithms");
        assert_string_equal(c.why, "ecc-p384 is not in operational.allowed_key_algorithms");
        /* A curve fleetid does not make. */
        c = expect_choice(BODY_P521, &all_allowed, KEY_ALG_ECC_P256, "SHA512", "P-256 and P-384 only");
        assert_string_equal(c.asked, "key secp521r1, hash SHA512");
        /* An RSA size fleetid does not make (4096), and a hash it does not sign with (SHA-1). */
        c = expect_choice("301a301106092a864886f70d01010131040202100006052b0e03021a", &all_allowed,
                          KEY_ALG_ECC_P256, "SHA256", "2048 and 3072 bits only");
        assert_non_null(strstr(c.why, "SHA256, SHA384 or SHA512 only"));
        /* Another key type altogether: Ed25519. */
        expect_choice("300506032b6570", &all_allowed, KEY_ALG_ECC_P256, "SHA256", "ED25519");
        /* A bare rsaEncryption with only P-256 allowed. */
        expect_choice("300b06092a864886f70d010101", &only_p256, KEY_ALG_ECC_P256, "SHA256",
                      "rsa-2048 is not in operational.allowed_key_algorithms");
}

static EVP_PKEY *ec_key(const char *curve) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

        assert_non_null(k);
        return k;
}

/* A key is classified by its curve, not its size: other 256-bit curves are
 * not P-256. */
static void test_key_of_pkey(void **state) {
        static const struct {
                const char *curve;
                KeyAlgorithm want;
        } cases[] = {
                { "P-256", KEY_ALG_ECC_P256 },           { "P-384", KEY_ALG_ECC_P384 },
                { "secp256k1", _KEY_ALG_INVALID },       { "brainpoolP256r1", _KEY_ALG_INVALID },
                { "brainpoolP384r1", _KEY_ALG_INVALID }, { "P-521", _KEY_ALG_INVALID },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                EVP_PKEY *k = ec_key(cases[i].curve);

                assert_int_equal(key_algorithm_of_pkey(k), cases[i].want);
                EVP_PKEY_free(k);
        }
        assert_int_equal(key_algorithm_of_pkey(NULL), _KEY_ALG_INVALID);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_forms),           cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_bounds),          cmocka_unit_test(test_mutations),
                cmocka_unit_test(test_choice_honoured), cmocka_unit_test(test_choice_refused),
                cmocka_unit_test(test_key_of_pkey),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
