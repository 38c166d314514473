/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sensor CSR checks, with CSRs made here with OpenSSL: the good ones and
 * one of each way to be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include "broker/sensor-csr.h"
#include "crypto/ossl-util.h"

static EVP_PKEY *p256, *p384, *rsa2048, *other;

static const SensorPolicy policy = {
        .key_algorithms = KEY_ALG_BIT(KEY_ALG_ECC_P256) | KEY_ALG_BIT(KEY_ALG_ECC_P384),
        .extensions = SENSOR_EXT_BIT(SENSOR_EXT_KEY_USAGE) | SENSOR_EXT_BIT(SENSOR_EXT_EXT_KEY_USAGE),
        .subject_organization = "Acme Sensors",
        .subject_organizational_unit = "hall-b",
};

static int setup(void **state) {
        p256 = EVP_EC_gen("P-256");
        p384 = EVP_EC_gen("P-384");
        rsa2048 = EVP_RSA_gen(2048);
        other = EVP_EC_gen("P-256");
        return p256 && p384 && rsa2048 && other ? 0 : -1;
}

static int teardown(void **state) {
        EVP_PKEY_free(p256);
        EVP_PKEY_free(p384);
        EVP_PKEY_free(rsa2048);
        EVP_PKEY_free(other);
        return 0;
}

static void assert_diag(const Diag *d, int r, const char *why) {
        assert_int_equal(d->error, r);
        if (!strstr(d->text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d->text, why);
}

typedef struct CsrSpec {
        EVP_PKEY *key;
        EVP_PKEY *signer; /* NULL: key */
        const EVP_MD *md; /* NULL: SHA-256 */
        const char *rdns; /* "O=..;OU=..;CN=.." in DER order; NULL: none */
        const char *exts[4];
        bool challenge_password;
} CsrSpec;

static void add_rdns(X509_NAME *name, const char *rdns) {
        char buf[512], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", rdns);
        for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
                char *eq = strchr(t, '=');

                assert_non_null(eq);
                *eq = 0;
                assert_int_equal(X509_NAME_add_entry_by_txt(name, t, MBSTRING_UTF8, (unsigned char *) eq + 1,
                                                            -1, -1, 0),
                                 1);
        }
}

/* The DER CSR of spec; exts are "name:value" for X509V3_EXT_conf(). */
static uint8_t *make_csr(const CsrSpec *spec, size_t *ret_len) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
        _cleanup_(sk_X509_EXTENSION_free_allp) STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        uint8_t *der = NULL;
        int n;

        assert_non_null(req);
        assert_non_null(name);
        assert_non_null(exts);
        if (spec->rdns)
                add_rdns(name, spec->rdns);
        assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
        assert_int_equal(X509_REQ_set_pubkey(req, spec->key), 1);
        for (size_t i = 0; i < ELEMENTSOF(spec->exts) && spec->exts[i]; i++) {
                char buf[256], *colon;
                X509_EXTENSION *e;

                snprintf(buf, sizeof(buf), "%s", spec->exts[i]);
                colon = strchr(buf, ':');
                assert_non_null(colon);
                *colon = 0;
                e = X509V3_EXT_conf(NULL, NULL, buf, colon + 1);
                assert_non_null(e);
                assert_true(sk_X509_EXTENSION_push(exts, e) > 0);
        }
        if (sk_X509_EXTENSION_num(exts) > 0)
                assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        if (spec->challenge_password)
                assert_int_equal(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                                           (const unsigned char *) "secret", -1),
                                 1);
        assert_true(X509_REQ_sign(req, spec->signer ?: spec->key, spec->md ?: EVP_sha256()) > 0);
        n = i2d_X509_REQ(req, &der);
        assert_true(n > 0);
        *ret_len = (size_t) n;
        return der;
}

#define GOOD_RDNS "O=Acme Sensors;OU=hall-b;CN=temp-01"

static int check(const CsrSpec *spec, const SensorPolicy *p, const char *id, Diag *d) {
        _cleanup_openssl_free_ uint8_t *der = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        size_t len;
        int r;

        der = make_csr(spec, &len);
        r = sensor_csr_check(p, id, der, len, &req, d);
        if (r == 0)
                assert_non_null(req);
        else
                assert_null(req);
        return r;
}

static void test_good(void **state) {
        Diag d = {};

        assert_int_equal(check(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS }, &policy, "temp-01", &d), 0);
        assert_int_equal(check(&(CsrSpec) { .key = p384,
                                            .rdns = GOOD_RDNS,
                                            .exts = { "keyUsage:critical,digitalSignature",
                                                      "extendedKeyUsage:clientAuth" } },
                               &policy, "temp-01", &d),
                         0);
        /* the subject is compared as a name: PrintableString and UTF8String alike */
        {
                _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
                _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
                _cleanup_openssl_free_ uint8_t *der = NULL;
                int n;

                assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", V_ASN1_PRINTABLESTRING,
                                                            (unsigned char *) "Acme Sensors", -1, -1, 0),
                                 1);
                assert_int_equal(X509_NAME_add_entry_by_txt(name, "OU", V_ASN1_PRINTABLESTRING,
                                                            (unsigned char *) "hall-b", -1, -1, 0),
                                 1);
                assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", V_ASN1_PRINTABLESTRING,
                                                            (unsigned char *) "temp-01", -1, -1, 0),
                                 1);
                assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
                assert_int_equal(X509_REQ_set_pubkey(req, p256), 1);
                assert_true(X509_REQ_sign(req, p256, EVP_sha256()) > 0);
                n = i2d_X509_REQ(req, &der);
                assert_int_equal(sensor_csr_check(&policy, "temp-01", der, (size_t) n, NULL, &d), 0);
        }
}

static void test_subject_rule(void **state) {
        _cleanup_(X509_NAME_freep) X509_NAME *n1 = NULL, *n2 = NULL;
        const SensorPolicy cn_only = { .key_algorithms = KEY_ALG_BIT(KEY_ALG_ECC_P256) };
        char buf[256];
        Diag d = {};

        assert_int_equal(sensor_subject_new(&policy, "temp-01", &n1, &d), 0);
        X509_NAME_oneline(n1, buf, sizeof(buf));
        assert_string_equal(buf, "/O=Acme Sensors/OU=hall-b/CN=temp-01");
        assert_int_equal(sensor_subject_new(&cn_only, "temp-01", &n2, &d), 0);
        X509_NAME_oneline(n2, buf, sizeof(buf));
        assert_string_equal(buf, "/CN=temp-01");
        assert_int_equal(sensor_subject_new(&policy, "a/b", &n2, &d), -EINVAL);

        assert_int_equal(check(&(CsrSpec) { .key = p256, .rdns = "CN=temp-01" }, &cn_only, "temp-01", &d), 0);
}

static void test_wrong_subject(void **state) {
        static const char *const bad[] = {
                "O=Acme Sensors;OU=hall-b;CN=temp-02",                /* another sensor */
                "OU=hall-b;CN=temp-01",                               /* O missing */
                "CN=temp-01;OU=hall-b;O=Acme Sensors",                /* reversed order */
                "O=Acme Sensors;OU=hall-b;CN=temp-01;serialNumber=1", /* one RDN more */
                "O=Evil;OU=hall-b;CN=temp-01",                        /* another O */
                NULL,                                                 /* empty */
        };
        Diag d = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(check(&(CsrSpec) { .key = p256, .rdns = bad[i] }, &policy, "temp-01", &d),
                                 -EPERM);
                assert_diag(&d, -EPERM,
                            "for sensor 'temp-01' it must be \"/O=Acme Sensors/OU=hall-b/CN=temp-01\"");
        }
        assert_int_equal(check(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS }, &policy, "temp-02", &d), -EPERM);
        assert_diag(&d, -EPERM, "the CSR's subject is \"/O=Acme Sensors/OU=hall-b/CN=temp-01\"");
}

/* The check of a P-256 CSR whose subject is O=Acme Sensors, OU=hall-b and a
 * CN of `cn` of ASN.1 type `type` (or MBSTRING_UTF8), in an RDN of its own
 * (set 0) or in OU's (set -1). */
static int check_cn(const char *id, const char *cn, int type, int set, Diag *d) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
        _cleanup_openssl_free_ uint8_t *der = NULL;
        int n;

        add_rdns(name, "O=Acme Sensors;OU=hall-b");
        assert_int_equal(
                X509_NAME_add_entry_by_txt(name, "CN", type, (const unsigned char *) cn, -1, -1, set), 1);
        assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
        assert_int_equal(X509_REQ_set_pubkey(req, p256), 1);
        assert_true(X509_REQ_sign(req, p256, EVP_sha256()) > 0);
        n = i2d_X509_REQ(req, &der);
        return sensor_csr_check(&policy, id, der, (size_t) n, NULL, d);
}

/* Names that X509_NAME_cmp() takes for the rule's name, and the CA would
 * issue as another: the comparison is exact. */
static void test_subject_exact(void **state) {
        static const char *const near[] = {
                "O=Acme Sensors;OU=hall-b;CN=TEMP-01",  /* case */
                "O=Acme Sensors;OU=hall-b;CN= temp-01", /* a leading space */
                "O=Acme Sensors;OU=hall-b;CN=temp-01 ", /* a trailing space */
                "O=acme  sensors;OU=hall-b;CN=temp-01", /* case and inner spaces */
        };
        Diag d = {};

        for (size_t i = 0; i < ELEMENTSOF(near); i++) {
                assert_int_equal(check(&(CsrSpec) { .key = p256, .rdns = near[i] }, &policy, "temp-01", &d),
                                 -EPERM);
                assert_diag(&d, -EPERM, "for sensor 'temp-01' it must be");
        }
        /* the right values, with CN in OU's RDN (multi-valued), or as IA5String */
        assert_int_equal(check_cn("temp-01", "temp-01", MBSTRING_UTF8, -1, &d), -EPERM);
        assert_diag(&d, -EPERM, "for sensor 'temp-01' it must be");
        assert_int_equal(check_cn("temp-01", "temp-01", V_ASN1_IA5STRING, 0, &d), -EPERM);
        assert_diag(&d, -EPERM, "for sensor 'temp-01' it must be");
        /* a PrintableString with a character it cannot hold ('_', which sensor
         * ids allow): refused; the same as UTF8String passes */
        assert_int_equal(check_cn("temp_01", "temp_01", V_ASN1_PRINTABLESTRING, 0, &d), -EPERM);
        assert_int_equal(check_cn("temp_01", "temp_01", MBSTRING_UTF8, 0, &d), 0);
}

static void test_key_policy(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = EVP_EC_gen("secp256k1");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        SensorPolicy with_rsa = policy;
        Diag d = {};

        assert_non_null(k1);
        assert_non_null(ed);
        assert_int_equal(check(&(CsrSpec) { .key = rsa2048, .rdns = GOOD_RDNS }, &policy, "temp-01", &d),
                         -EPERM);
        assert_diag(&d, -EPERM,
                    "the CSR's key is RSA-2048; broker.sensor_key_algorithms allows ecc-p256, ecc-p384");
        with_rsa.key_algorithms |= KEY_ALG_BIT(KEY_ALG_RSA_2048);
        assert_int_equal(check(&(CsrSpec) { .key = rsa2048, .rdns = GOOD_RDNS }, &with_rsa, "temp-01", &d), 0);
        /* a 256-bit curve that is not P-256 */
        assert_int_equal(check(&(CsrSpec) { .key = k1, .rdns = GOOD_RDNS }, &policy, "temp-01", &d), -EPERM);
        assert_diag(&d, -EPERM, "the CSR's key is EC secp256k1");
        with_rsa.key_algorithms = KEY_ALG_BIT(KEY_ALG_ECC_P384);
        assert_int_equal(check(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS }, &with_rsa, "temp-01", &d),
                         -EPERM);
        assert_diag(&d, -EPERM, "allows ecc-p384");
        {
                /* Ed25519 signs without a separate digest */
                _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
                _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
                _cleanup_openssl_free_ uint8_t *der = NULL;
                int n;

                add_rdns(name, GOOD_RDNS);
                assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
                assert_int_equal(X509_REQ_set_pubkey(req, ed), 1);
                assert_true(X509_REQ_sign(req, ed, NULL) > 0);
                n = i2d_X509_REQ(req, &der);
                assert_int_equal(sensor_csr_check(&policy, "temp-01", der, (size_t) n, NULL, &d), -EPERM);
                assert_diag(&d, -EPERM, "the CSR's key is ED25519");
        }
        {
                /* P-256 given by explicit curve parameters, which OpenSSL also names prime256v1 */
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *expl = EVP_PKEY_dup(p256);

                assert_non_null(expl);
                assert_int_equal(EVP_PKEY_set_utf8_string_param(expl, OSSL_PKEY_PARAM_EC_ENCODING,
                                                                OSSL_PKEY_EC_ENCODING_EXPLICIT),
                                 1);
                assert_int_equal(check(&(CsrSpec) { .key = expl, .rdns = GOOD_RDNS }, &policy, "temp-01", &d),
                                 -EPERM);
                assert_diag(&d, -EPERM, "the CSR's key is EC with explicit curve parameters");
        }
}

/* An RSA-PSS self-signature with the given hash (MGF1 with the same). */
static uint8_t *make_pss_csr(const EVP_MD *md, size_t *ret_len) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        uint8_t *der = NULL;
        int n;

        add_rdns(name, GOOD_RDNS);
        assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
        assert_int_equal(X509_REQ_set_pubkey(req, rsa2048), 1);
        assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, rsa2048), 1);
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
        assert_true(X509_REQ_sign_ctx(req, ctx) > 0);
        n = i2d_X509_REQ(req, &der);
        assert_true(n > 0);
        *ret_len = (size_t) n;
        return der;
}

static void test_pss(void **state) {
        SensorPolicy with_rsa = policy;
        Diag d = {};

        with_rsa.key_algorithms |= KEY_ALG_BIT(KEY_ALG_RSA_2048);
        {
                _cleanup_openssl_free_ uint8_t *der = NULL;
                size_t len;

                der = make_pss_csr(EVP_sha256(), &len);
                assert_int_equal(sensor_csr_check(&with_rsa, "temp-01", der, len, NULL, &d), 0);
        }
        {
                _cleanup_openssl_free_ uint8_t *der = NULL;
                size_t len;

                der = make_pss_csr(EVP_sha1(), &len);
                assert_int_equal(sensor_csr_check(&with_rsa, "temp-01", der, len, NULL, &d), -EPERM);
                assert_diag(&d, -EPERM, "the CSR's RSA-PSS signature hashes with sha1 and MGF1 with sha1");
        }
}

static void test_bad_signature(void **state) {
        Diag d = {};

        assert_int_equal(check(&(CsrSpec) { .key = p256, .signer = other, .rdns = GOOD_RDNS }, &policy,
                               "temp-01", &d),
                         -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "the CSR's self-signature does not verify with its own key");
        /* a SHA-1 proof of possession is none; SHA-384 and -512 are fine */
        assert_int_equal(check(&(CsrSpec) { .key = p256, .md = EVP_sha1(), .rdns = GOOD_RDNS }, &policy,
                               "temp-01", &d),
                         -EPERM);
        assert_diag(&d, -EPERM,
                    "the CSR is signed with ecdsa-with-SHA1; SHA-256, SHA-384 or SHA-512 is required");
        assert_int_equal(check(&(CsrSpec) { .key = p384, .md = EVP_sha384(), .rdns = GOOD_RDNS }, &policy,
                               "temp-01", &d),
                         0);
        assert_int_equal(check(&(CsrSpec) { .key = p256, .md = EVP_sha512(), .rdns = GOOD_RDNS }, &policy,
                               "temp-01", &d),
                         0);
}

static void test_extensions(void **state) {
        SensorPolicy with_bc = policy;
        Diag d = {};

        assert_int_equal(check(&(CsrSpec) { .key = p256,
                                            .rdns = GOOD_RDNS,
                                            .exts = { "subjectAltName:DNS:evil.example" } },
                               &policy, "temp-01", &d),
                         -EPERM);
        assert_diag(&d, -EPERM,
                    "the CSR requests the extension X509v3 Subject Alternative Name; broker.allowed_extensions "
                    "allows keyUsage, extendedKeyUsage");
        assert_int_equal(
                check(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS, .exts = { "basicConstraints:CA:FALSE" } },
                      &policy, "temp-01", &d),
                -EPERM);
        with_bc.extensions |= SENSOR_EXT_BIT(SENSOR_EXT_BASIC_CONSTRAINTS);
        assert_int_equal(
                check(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS, .exts = { "basicConstraints:CA:FALSE" } },
                      &with_bc, "temp-01", &d),
                0);
        assert_int_equal(
                check(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS, .exts = { "basicConstraints:CA:TRUE" } },
                      &with_bc, "temp-01", &d),
                -EPERM);
        assert_diag(&d, -EPERM, "the CSR asks for a CA certificate");
        assert_int_equal(
                check(&(CsrSpec) { .key = p256,
                                   .rdns = GOOD_RDNS,
                                   .exts = { "keyUsage:digitalSignature", "keyUsage:keyEncipherment" } },
                      &policy, "temp-01", &d),
                -EPERM);
        assert_diag(&d, -EPERM, "requests the extension X509v3 Key Usage twice");
        assert_int_equal(check(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS, .challenge_password = true },
                               &policy, "temp-01", &d),
                         -EPERM);
        assert_diag(&d, -EPERM,
                    "the CSR has the attribute challengePassword; only extensionRequest is allowed");
}

/* What the extensions ask for: what the gateway then checks in the
 * certificate issued, and nothing a CA or an RA would have. */
static void test_extension_values(void **state) {
        static const struct {
                const char *ext, *why;
        } bad[] = {
                { "keyUsage:digitalSignature,keyCertSign", "asks for keyCertSign, cRLSign" },
                { "keyUsage:digitalSignature,cRLSign", "asks for keyCertSign, cRLSign" },
                { "keyUsage:keyEncipherment", "lacks digitalSignature" },
                { "extendedKeyUsage:serverAuth", "lacks clientAuth" },
                { "extendedKeyUsage:clientAuth,1.3.6.1.5.5.7.3.28",
                  "asks for CMC Registration Authority" }, /* cmcRA */
                { "extendedKeyUsage:clientAuth,anyExtendedKeyUsage", "asks for Any Extended Key Usage" },
                { "extendedKeyUsage:clientAuth,codeSigning", "asks for Code Signing" },
        };
        Diag d = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(check(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS, .exts = { bad[i].ext } },
                                       &policy, "temp-01", &d),
                                 -EPERM);
                assert_diag(&d, -EPERM, bad[i].why);
        }
        assert_int_equal(check(&(CsrSpec) { .key = p256,
                                            .rdns = GOOD_RDNS,
                                            .exts = { "keyUsage:digitalSignature,keyAgreement",
                                                      "extendedKeyUsage:clientAuth,serverAuth" } },
                               &policy, "temp-01", &d),
                         0);
}

/* One extensionRequest attribute holding two sets of extensions: OpenSSL
 * reads the first only, so the second would go to the CA unchecked. */
static void test_extension_request_values(void **state) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
        _cleanup_(sk_X509_EXTENSION_free_allp) STACK_OF(X509_EXTENSION) *good = sk_X509_EXTENSION_new_null();
        _cleanup_(sk_X509_EXTENSION_free_allp) STACK_OF(X509_EXTENSION) *evil = sk_X509_EXTENSION_new_null();
        _cleanup_openssl_free_ uint8_t *evil_der = NULL, *der = NULL;
        int evil_len, n;
        Diag d = {};

        add_rdns(name, GOOD_RDNS);
        assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
        assert_int_equal(X509_REQ_set_pubkey(req, p256), 1);
        assert_true(sk_X509_EXTENSION_push(good,
                                           X509V3_EXT_conf(NULL, NULL, "keyUsage", "digitalSignature")) > 0);
        assert_true(sk_X509_EXTENSION_push(evil, X509V3_EXT_conf(NULL, NULL, "basicConstraints", "CA:TRUE")) >
                    0);
        assert_int_equal(X509_REQ_add_extensions(req, good), 1);
        evil_len = ASN1_item_i2d((ASN1_VALUE *) evil, &evil_der, ASN1_ITEM_rptr(X509_EXTENSIONS));
        assert_true(evil_len > 0);
        assert_int_equal(
                X509_ATTRIBUTE_set1_data(X509_REQ_get_attr(req, 0), V_ASN1_SEQUENCE, evil_der, evil_len), 1);
        assert_true(X509_REQ_sign(req, p256, EVP_sha256()) > 0);
        n = i2d_X509_REQ(req, &der);
        assert_true(n > 0);
        assert_int_equal(sensor_csr_check(&policy, "temp-01", der, (size_t) n, NULL, &d), -EPERM);
        assert_diag(&d, -EPERM, "the CSR's extensionRequest attribute holds 2 values; exactly one is allowed");
}

static void test_garbage(void **state) {
        _cleanup_openssl_free_ uint8_t *der = NULL;
        _cleanup_free_ uint8_t *big = NULL;
        uint8_t noise[512];
        size_t len;
        Diag d = {};

        der = make_csr(&(CsrSpec) { .key = p256, .rdns = GOOD_RDNS }, &len);
        assert_int_equal(sensor_csr_check(&policy, "temp-01", der, len - 1, NULL, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "the CSR is not a DER PKCS #10 certification request");
        assert_int_equal(sensor_csr_check(&policy, "temp-01", der, 0, NULL, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "the CSR is empty");
        assert_int_equal(sensor_csr_check(&policy, "temp-01", NULL, 0, NULL, &d), -EBADMSG);
        for (size_t i = 0; i < sizeof(noise); i++)
                noise[i] = (uint8_t) (i * 37 + 11);
        assert_int_equal(sensor_csr_check(&policy, "temp-01", noise, sizeof(noise), NULL, &d), -EBADMSG);

        /* the good CSR with bytes after it */
        big = calloc(1, SENSOR_CSR_MAX + 1);
        assert_non_null(big);
        memcpy(big, der, len);
        assert_int_equal(sensor_csr_check(&policy, "temp-01", big, len + 3, NULL, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "the CSR is followed by 3 bytes of something else");
        assert_int_equal(sensor_csr_check(&policy, "temp-01", big, SENSOR_CSR_MAX + 1, NULL, &d), -EFBIG);
        assert_diag(&d, -EFBIG, "the CSR is 16385 bytes; at most 16384 are accepted");
        /* the good CSR, with a bad sensor id */
        assert_int_equal(sensor_csr_check(&policy, "../temp-01", der, len, NULL, &d), -EINVAL);
        assert_int_equal(sensor_csr_check(&policy, "temp-01", der, len, NULL, &d), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),
                cmocka_unit_test(test_subject_rule),
                cmocka_unit_test(test_wrong_subject),
                cmocka_unit_test(test_key_policy),
                cmocka_unit_test(test_bad_signature),
                cmocka_unit_test(test_extensions),
                cmocka_unit_test(test_garbage),
                cmocka_unit_test(test_subject_exact),
                cmocka_unit_test(test_pss),
                cmocka_unit_test(test_extension_values),
                cmocka_unit_test(test_extension_request_values),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
