/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A sensor request's checks in order, and their verdicts: the CSR, then the
 * single-use challenge and the evidence (the test PKI is the sensor
 * manufacturer: root -> inter -> leaf, the sensor's birth certificate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "broker/evidence.h"
#include "broker/sensor-request.h"
#include "crypto/challenge.h"
#include "test-certs.h"

#define SEC 1000000ULL
#define T0 (5000 * SEC)

static TestPki *pki;
static EVP_PKEY *sensor_key; /* the key the sensor wants certified */
static uint8_t *good_csr;
static int good_csr_len;

static const SensorPolicy policy = {
        .key_algorithms = KEY_ALG_BIT(KEY_ALG_ECC_P256),
        .extensions = SENSOR_EXT_BIT(SENSOR_EXT_KEY_USAGE),
};

static int make_csr(const char *cn, uint8_t **ret) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();

        if (!req || !name ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0) ||
            !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, sensor_key) ||
            !X509_REQ_sign(req, sensor_key, EVP_sha256()))
                return -1;
        return i2d_X509_REQ(req, ret);
}

static int setup(void **state) {
        if (test_pki_new(&pki) < 0 || !(sensor_key = EVP_EC_gen("P-256")))
                return -1;
        good_csr_len = make_csr("temp-01", &good_csr);
        return good_csr_len > 0 ? 0 : -1;
}

static int teardown(void **state) {
        OPENSSL_free(good_csr);
        EVP_PKEY_free(sensor_key);
        test_pki_free(pki);
        return 0;
}

static void assert_diag(const Diag *d, const char *why) {
        if (!strstr(d->text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d->text, why);
}

/* Evidence from the sensor's birth key over nonce, for a CSR of csr_key. */
static uint8_t *evidence_for(EVP_PKEY *birth_key, const uint8_t *nonce, EVP_PKEY *csr_key, size_t *ret_len) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = test_stack(pki->leaf, pki->inter, NULL);
        _cleanup_free_ uint8_t *sig = NULL;
        char purpose[EVIDENCE_PURPOSE_SIZE];
        uint8_t *ev = NULL;
        const char *alg;
        size_t sig_len;

        assert_int_equal(evidence_purpose(csr_key, purpose, NULL), 0);
        assert_int_equal(challenge_sign(birth_key, nonce, SENSOR_CHALLENGE_NONCE_SIZE, purpose, false, &sig,
                                        &sig_len, &alg, NULL),
                         0);
        assert_int_equal(evidence_encode(chain, alg, sig, sig_len, &ev, ret_len, NULL), 0);
        return ev;
}

/* Replaces *ev with new evidence over nonce for a CSR of csr_key and points req at it. */
static void set_evidence_for(SensorRequest *req, uint8_t **ev, EVP_PKEY *birth_key, const uint8_t *nonce,
                             EVP_PKEY *csr_key) {
        size_t len;

        free(*ev);
        *ev = evidence_for(birth_key, nonce, csr_key, &len);
        req->evidence = *ev;
        req->evidence_len = len;
}

/* The same for the CSR of the request (good_csr). */
static void set_evidence(SensorRequest *req, uint8_t **ev, EVP_PKEY *birth_key, const uint8_t *nonce) {
        set_evidence_for(req, ev, birth_key, nonce, sensor_key);
}

static void test_no_evidence_configured(void **state) {
        const SensorChecks c = { .policy = &policy, .now = TEST_NOW };
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_openssl_free_ uint8_t *wrong = NULL;
        int wrong_len = make_csr("temp-02", &wrong);
        Diag d = {};

        assert_int_equal(sensor_request_check(&c,
                                              &(SensorRequest) { .sensor_id = "temp-01",
                                                                 .csr = good_csr,
                                                                 .csr_len = (size_t) good_csr_len },
                                              &csr, &d),
                         SENSOR_ACCEPTED);
        assert_non_null(csr);
        assert_int_equal(sensor_request_check(&c,
                                              &(SensorRequest) { .sensor_id = "temp/01",
                                                                 .csr = good_csr,
                                                                 .csr_len = (size_t) good_csr_len },
                                              NULL, &d),
                         SENSOR_INVALID_ARGS);
        assert_int_equal(sensor_request_check(
                                 &c,
                                 &(SensorRequest) { .sensor_id = "temp-01", .csr = good_csr, .csr_len = 10 },
                                 NULL, &d),
                         SENSOR_INVALID_CSR);
        assert_int_equal(sensor_request_check(&c,
                                              &(SensorRequest) { .sensor_id = "temp-01",
                                                                 .csr = good_csr,
                                                                 .csr_len = SENSOR_CSR_MAX + 1 },
                                              NULL, &d),
                         SENSOR_INVALID_CSR);
        assert_int_equal(sensor_request_check(&c,
                                              &(SensorRequest) { .sensor_id = "temp-01",
                                                                 .csr = wrong,
                                                                 .csr_len = (size_t) wrong_len },
                                              NULL, &d),
                         SENSOR_POLICY_VIOLATION);
        assert_diag(&d, "for sensor 'temp-01' it must be \"/CN=temp-01\"");
        assert_string_equal(sensor_verdict_to_string(SENSOR_POLICY_VIOLATION), "policy-violation");
        assert_null(sensor_verdict_to_string(_SENSOR_VERDICT_MAX));
}

static void test_evidence_flow(void **state) {
        _cleanup_(sensor_challenges_freep) SensorChallenges *t = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cas = test_stack(pki->root, NULL);
        uint8_t nonce[SENSOR_CHALLENGE_NONCE_SIZE], old[SENSOR_CHALLENGE_NONCE_SIZE];
        SensorChecks c = { .policy = &policy, .manufacturer_cas = cas, .now = TEST_NOW, .now_usec = T0 };
        SensorRequest req = { .sensor_id = "temp-01", .csr = good_csr, .csr_len = (size_t) good_csr_len };
        _cleanup_free_ uint8_t *ev = NULL, *forged = NULL;
        Diag d = {};

        assert_int_equal(sensor_challenges_new(8, 60 * SEC, &t), 0);
        c.challenges = t;

        /* no evidence: refused, and the challenge stays */
        assert_int_equal(sensor_challenges_issue(t, "temp-01", T0, nonce, &d), 0);
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_EVIDENCE);
        assert_diag(&d, "needs evidence");
        assert_int_equal(sensor_challenges_count(t), 1);

        /* genuine */
        set_evidence(&req, &ev, pki->leaf_key, nonce);
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_ACCEPTED);
        assert_int_equal(sensor_challenges_count(t), 0);
        /* replayed */
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_EVIDENCE);
        assert_diag(&d, "sensor 'temp-01' has no outstanding challenge");

        /* a bad CSR does not use the challenge up */
        memcpy(old, nonce, sizeof(old));
        assert_int_equal(sensor_challenges_issue(t, "temp-01", T0, nonce, &d), 0);
        set_evidence(&req, &ev, pki->leaf_key, nonce);
        req.csr_len = 20;
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_CSR);
        assert_int_equal(sensor_challenges_count(t), 1);
        req.csr_len = (size_t) good_csr_len;

        /* forged (another key signed): refused, and the challenge is used up */
        set_evidence(&req, &forged, pki->other_key, nonce);
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_EVIDENCE);
        assert_diag(&d, "the evidence signature");
        set_evidence(&req, &ev, pki->leaf_key, nonce);
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_EVIDENCE);

        /* genuine evidence of this sensor, made for a CSR of another key */
        assert_int_equal(sensor_challenges_issue(t, "temp-01", T0, nonce, &d), 0);
        set_evidence_for(&req, &ev, pki->leaf_key, nonce, pki->other_key);
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_EVIDENCE);
        assert_diag(&d, "this CSR's key");

        /* evidence over an old nonce */
        assert_int_equal(sensor_challenges_issue(t, "temp-01", T0, nonce, &d), 0);
        set_evidence(&req, &ev, pki->leaf_key, old);
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_EVIDENCE);

        /* expired */
        assert_int_equal(sensor_challenges_issue(t, "temp-01", T0, nonce, &d), 0);
        set_evidence(&req, &ev, pki->leaf_key, nonce);
        c.now_usec = T0 + 60 * SEC;
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_EVIDENCE);
        assert_diag(&d, "has expired");

        /* garbage evidence */
        assert_int_equal(sensor_challenges_issue(t, "temp-01", T0, nonce, &d), 0);
        c.now_usec = T0 + SEC;
        req.evidence = (const uint8_t *) "fleetid-evidence-v1";
        req.evidence_len = 19;
        assert_int_equal(sensor_request_check(&c, &req, NULL, &d), SENSOR_INVALID_EVIDENCE);
        assert_diag(&d, "does not start with");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_evidence_configured),
                cmocka_unit_test(test_evidence_flow),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
