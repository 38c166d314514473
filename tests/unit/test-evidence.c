/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sensor evidence: its encoding, and its verification against a manufacturer
 * CA (the in-process test PKI: root -> inter -> leaf is the "manufacturer"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "broker/evidence.h"
#include "crypto/challenge.h"
#include "test-certs.h"
#include "util/fileio.h"

static TestPki *pki;
static uint8_t nonce[32];
static EVP_PKEY *csr_key;                 /* the key of the CSR the evidence goes with */
static char bound[EVIDENCE_PURPOSE_SIZE]; /* evidence_purpose(csr_key) */

static int setup(void **state) {
        for (size_t i = 0; i < sizeof(nonce); i++)
                nonce[i] = (uint8_t) (0xc0 + i);
        if (test_pki_new(&pki) < 0)
                return -1;
        csr_key = pki->other_key;
        return evidence_purpose(csr_key, bound, NULL) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        test_pki_free(pki);
        return 0;
}

static void assert_diag(const Diag *d, int r, const char *why) {
        assert_int_equal(d->error, r);
        if (!strstr(d->text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d->text, why);
}

/* Evidence of chain, signed by key over (purpose, n). */
static uint8_t *make_evidence(STACK_OF(X509) *chain, EVP_PKEY *key, const char *purpose, const uint8_t *n,
                              size_t *ret_len) {
        _cleanup_free_ uint8_t *sig = NULL;
        uint8_t *ev = NULL;
        const char *alg;
        size_t sig_len;

        assert_int_equal(challenge_sign(key, n, sizeof(nonce), purpose, false, &sig, &sig_len, &alg, NULL), 0);
        assert_int_equal(evidence_encode(chain, alg, sig, sig_len, &ev, ret_len, NULL), 0);
        return ev;
}

static int verify(const uint8_t *ev, size_t len, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);

        return evidence_verify(ev, len, nonce, sizeof(nonce), csr_key, anchors, TEST_NOW, NULL, d);
}

static void test_good(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = test_stack(pki->leaf, pki->inter, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);
        _cleanup_(X509_freep) X509 *leaf = NULL;
        _cleanup_free_ uint8_t *ev = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        size_t len;
        Diag d = {};

        ev = make_evidence(chain, pki->leaf_key, bound, nonce, &len);
        assert_int_equal(
                evidence_verify(ev, len, nonce, sizeof(nonce), csr_key, anchors, TEST_NOW, &leaf, &d), 0);
        assert_int_equal(X509_cmp(leaf, pki->leaf), 0);

        /* the layout of docs/dbus-api.md */
        assert_memory_equal(ev, "fleetid-evidence-v1\0", 20);
        assert_int_equal(ev[20], 2);
        assert_int_equal(evidence_parse(ev, len, &e, &d), 0);
        assert_int_equal(sk_X509_num(e->chain), 2);
        assert_int_equal((ev[21] << 8) | ev[22], i2d_X509(pki->leaf, NULL));
        assert_string_equal(e->alg, "ecdsa-with-SHA256");
        assert_memory_equal(ev + len - e->signature_len, e->signature, e->signature_len);
        assert_int_equal((ev[len - e->signature_len - 2] << 8) | ev[len - e->signature_len - 1],
                         e->signature_len);

        /* the birth binding's fingerprint: the leaf's key, not the certificate */
        {
                char fp[SHA256_TEXT_SIZE], want[SHA256_TEXT_SIZE];

                assert_int_equal(evidence_birth_fingerprint(ev, len, fp, &d), 0);
                assert_int_equal(pubkey_sha256_text(X509_get0_pubkey(pki->leaf), want), 0);
                assert_string_equal(fp, want);
                assert_int_equal(evidence_birth_fingerprint(ev, 10, fp, &d), -EBADMSG);
        }
}

static void test_forged(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = test_stack(pki->leaf, pki->inter, NULL);
        _cleanup_free_ uint8_t *ev1 = NULL, *ev2 = NULL, *ev3 = NULL;
        uint8_t other_nonce[32];
        size_t l1, l2, l3;
        Diag d = {};

        /* signed by a key that is not the leaf's */
        ev1 = make_evidence(chain, pki->other_key, bound, nonce, &l1);
        assert_int_equal(verify(ev1, l1, &d), -EKEYREJECTED);
        assert_diag(
                &d, -EKEYREJECTED,
                "the evidence signature (binding the nonce to this CSR's key): the ecdsa-with-SHA256 signature over the challenge");
        /* another purpose: a SignChallenge answer is no evidence */
        ev2 = make_evidence(chain, pki->leaf_key, "login", nonce, &l2);
        assert_int_equal(verify(ev2, l2, &d), -EKEYREJECTED);
        /* the nonce alone (the formula before the CSR's key was bound) */
        ev2 = (free(ev2), make_evidence(chain, pki->leaf_key, "sensor-evidence", nonce, &l2));
        assert_int_equal(verify(ev2, l2, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "purpose 'sensor-spki.");
        assert_diag(&d, -EKEYREJECTED, "this CSR's key");
        /* genuine evidence for this nonce, moved to a CSR for another key */
        ev2 = (free(ev2), make_evidence(chain, pki->leaf_key, bound, nonce, &l2));
        assert_int_equal(verify(ev2, l2, &d), 0);
        {
                _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);

                assert_int_equal(evidence_verify(ev2, l2, nonce, sizeof(nonce), pki->leaf_key, anchors,
                                                 TEST_NOW, NULL, &d),
                                 -EKEYREJECTED);
                assert_int_equal(
                        evidence_verify(ev2, l2, nonce, sizeof(nonce), NULL, anchors, TEST_NOW, NULL, &d),
                        -EINVAL);
        }
        /* another nonce (an old challenge) */
        memcpy(other_nonce, nonce, sizeof(nonce));
        other_nonce[0] ^= 1;
        ev3 = make_evidence(chain, pki->leaf_key, bound, other_nonce, &l3);
        assert_int_equal(verify(ev3, l3, &d), -EKEYREJECTED);
        /* a flipped bit in the signature */
        ev1 = (free(ev1), make_evidence(chain, pki->leaf_key, bound, nonce, &l1));
        assert_int_equal(verify(ev1, l1, &d), 0);
        ev1[l1 - 5] ^= 0x10;
        assert_int_equal(verify(ev1, l1, &d), -EKEYREJECTED);
}

static void test_untrusted_chain(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *other = test_stack(pki->other_leaf, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *no_inter = test_stack(pki->leaf, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *expired =
                test_stack(pki->expired, pki->inter, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *ca = test_stack(pki->inter, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = test_stack(pki->leaf, pki->inter, NULL);
        _cleanup_free_ uint8_t *ev = NULL;
        size_t len;
        Diag d = {};

        /* the same key, certified by another CA */
        ev = make_evidence(other, pki->leaf_key, bound, nonce, &len);
        assert_int_equal(verify(ev, len, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "the sensor's birth certificate: certificate chain does not lead");
        free(ev);
        ev = make_evidence(no_inter, pki->leaf_key, bound, nonce, &len);
        assert_int_equal(verify(ev, len, &d), -EKEYREJECTED);
        free(ev);
        ev = make_evidence(expired, pki->leaf_key, bound, nonce, &len);
        assert_true(verify(ev, len, &d) < 0);
        assert_diag(&d, d.error, "the sensor's birth certificate");
        free(ev);
        ev = make_evidence(ca, pki->inter_key, bound, nonce, &len);
        assert_int_equal(verify(ev, len, &d), -EKEYREJECTED);
        assert_diag(&d, -EKEYREJECTED, "is a CA certificate");
        free(ev);
        /* no anchors, a bad nonce */
        ev = make_evidence(chain, pki->leaf_key, bound, nonce, &len);
        assert_int_equal(evidence_verify(ev, len, nonce, sizeof(nonce), csr_key, NULL, TEST_NOW, NULL, &d),
                         -EINVAL);
        {
                _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(pki->root, NULL);

                assert_int_equal(evidence_verify(ev, len, nonce, 8, csr_key, anchors, TEST_NOW, NULL, &d),
                                 -EINVAL);
        }
}

static void test_malformed(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = test_stack(pki->leaf, pki->inter, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *five =
                test_stack(pki->leaf, pki->inter, pki->root, pki->other_root, pki->other_leaf, NULL);
        _cleanup_free_ uint8_t *ev = NULL, *copy = NULL, *tmp = NULL;
        Evidence *e = NULL;
        size_t len, tmp_len;
        Diag d = {};

        ev = make_evidence(chain, pki->leaf_key, bound, nonce, &len);
        copy = malloc(EVIDENCE_MAX + 1);
        assert_non_null(copy);

        /* every truncation is refused, none crashes */
        for (size_t n = 0; n < len; n++) {
                assert_int_equal(evidence_parse(ev, n, &e, &d), -EBADMSG);
                assert_null(e);
                assert_true(d.text[0] != 0);
        }
        memcpy(copy, ev, len);
        copy[len] = 0;
        assert_int_equal(evidence_parse(copy, len + 1, &e, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "the evidence has 1 bytes after the signature");

        memcpy(copy, ev, len);
        copy[0] = 'F';
        assert_int_equal(evidence_parse(copy, len, &e, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "does not start with \"fleetid-evidence-v1\\0\"");
        memcpy(copy, ev, len);
        copy[20] = 0;
        assert_int_equal(evidence_parse(copy, len, &e, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "certificate count is missing or not 1..4");
        copy[20] = 5;
        assert_int_equal(evidence_parse(copy, len, &e, &d), -EBADMSG);
        memcpy(copy, ev, len);
        copy[25] ^= 0xff; /* inside the first certificate's DER */
        assert_true(evidence_parse(copy, len, &e, &d) < 0);
        memset(copy, 0, EVIDENCE_MAX + 1);
        assert_int_equal(evidence_parse(copy, EVIDENCE_MAX + 1, &e, &d), -EFBIG);
        assert_diag(&d, -EFBIG, "the evidence is 32769 bytes; at most 32768 are accepted");

        /* an algorithm fleetid does not know */
        {
                uint8_t sig[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

                assert_int_equal(
                        evidence_encode(chain, "md5WithRSAEncryption", sig, sizeof(sig), &tmp, &tmp_len, &d),
                        0);
                assert_int_equal(verify(tmp, tmp_len, &d), -EBADMSG);
                assert_diag(&d, -EBADMSG, "unknown signature algorithm 'md5WithRSAEncryption'");
                assert_int_equal(
                        evidence_encode(five, CHALLENGE_ALG_ECDSA, sig, sizeof(sig), &tmp, &tmp_len, &d),
                        -EINVAL);
                assert_int_equal(evidence_encode(chain, "", sig, sizeof(sig), &tmp, &tmp_len, &d), -EINVAL);
                assert_int_equal(evidence_encode(chain, CHALLENGE_ALG_ECDSA, sig, 0, &tmp, &tmp_len, &d),
                                 -EINVAL);
        }
}

/* Evidence made by the Python encoder and purpose of docs/dbus-api.md (with
 * python3-cryptography: a self-signed "Sensor Mfg CA", a leaf, an ECDSA
 * signature over nonce 00 01 .. 1f and the purpose of a CSR whose key is the
 * CA's: any key serves, and that one is in the file) parses and verifies
 * here: the documented format and formula are the ones implemented. The file
 * is a fuzzing seed. */
static void test_purpose(void **state) {
        char p[EVIDENCE_PURPOSE_SIZE], q[EVIDENCE_PURPOSE_SIZE];

        /* "sensor-spki." and 52 base32 characters: the formula's 64 */
        assert_int_equal(evidence_purpose(pki->leaf_key, p, NULL), 0);
        assert_int_equal(strlen(p), 64);
        assert_memory_equal(p, "sensor-spki.", 12);
        assert_int_equal(challenge_check_purpose(p, NULL), 0);
        /* a key's public half decides it: the certificate's key, the private key alike */
        assert_int_equal(evidence_purpose(X509_get0_pubkey(pki->leaf), q, NULL), 0);
        assert_string_equal(p, q);
        assert_int_equal(evidence_purpose(pki->other_key, q, NULL), 0);
        assert_string_not_equal(p, q);
}

static void test_python_made(void **state) {
        const char *suffix = "tests/unit/test-evidence.c";
        size_t n = strlen(__FILE__), m = strlen(suffix);
        _cleanup_free_ char *path = NULL, *data = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = NULL;
        uint8_t py_nonce[32];
        EVP_PKEY *py_key;
        size_t len;
        Diag d = {};

        assert_true(n >= m && strcmp(__FILE__ + n - m, suffix) == 0);
        assert_true(asprintf(&path, "%.*stests/fuzz/corpus/fuzz-evidence/leaf-and-ca", (int) (n - m),
                             __FILE__) > 0);
        assert_int_equal(read_file_bounded(path, EVIDENCE_MAX, &data, &len), 0);
        for (size_t i = 0; i < sizeof(py_nonce); i++)
                py_nonce[i] = (uint8_t) i;

        assert_int_equal(evidence_parse((uint8_t *) data, len, &e, &d), 0);
        assert_int_equal(sk_X509_num(e->chain), 2);
        anchors = test_stack(sk_X509_value(e->chain, 1), NULL);
        py_key = X509_get0_pubkey(sk_X509_value(e->chain, 1));
        assert_int_equal(evidence_verify((uint8_t *) data, len, py_nonce, sizeof(py_nonce), py_key, anchors,
                                         TEST_NOW, NULL, &d),
                         0);
        /* bound to that key: not to the leaf's */
        assert_int_equal(evidence_verify((uint8_t *) data, len, py_nonce, sizeof(py_nonce),
                                         X509_get0_pubkey(sk_X509_value(e->chain, 0)), anchors, TEST_NOW,
                                         NULL, &d),
                         -EKEYREJECTED);
        py_nonce[31] ^= 1;
        assert_int_equal(evidence_verify((uint8_t *) data, len, py_nonce, sizeof(py_nonce), py_key, anchors,
                                         TEST_NOW, NULL, &d),
                         -EKEYREJECTED);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),      cmocka_unit_test(test_forged),
                cmocka_unit_test(test_purpose),   cmocka_unit_test(test_untrusted_chain),
                cmocka_unit_test(test_malformed), cmocka_unit_test(test_python_made),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
