/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-trust: the EST CA set and the root CA key update of RFC 7030 4.1.3
 * (OldWithNew, NewWithOld, NewWithNew), adoption and retirement of anchors,
 * on certificates made in memory and an explicit 'now'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "config/config.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "exchange/trust.h"
#include "store/state-store.h"
#include "test-certs.h"
#include "test-tmpdir.h"

/* A rollover in progress at TEST_NOW: the old root expires in 30 days, the new
 * one was made 10 days ago; both links as RFC 4210 4.4 describes them. */
typedef struct Rollover {
        EVP_PKEY *old_key, *new_key, *rogue_key, *leaf_key;
        X509 *old_root;     /* OldWithOld: the configured anchor */
        X509 *new_root;     /* NewWithNew */
        X509 *new_with_old; /* new key certified by the old root */
        X509 *old_with_new; /* old key certified by the new root */
        X509 *forged_link;  /* NewWithOld look-alike signed by another key */
        X509 *rogue_root;   /* self-signed, linked by nothing */
        X509 *new_leaf;     /* an operational certificate from the new root */
} Rollover;

static Rollover *ro;

static void rollover_free(Rollover *r) {
        if (!r)
                return;
        EVP_PKEY_free(r->old_key);
        EVP_PKEY_free(r->new_key);
        EVP_PKEY_free(r->rogue_key);
        EVP_PKEY_free(r->leaf_key);
        X509_free(r->old_root);
        X509_free(r->new_root);
        X509_free(r->new_with_old);
        X509_free(r->old_with_new);
        X509_free(r->forged_link);
        X509_free(r->rogue_root);
        X509_free(r->new_leaf);
        free(r);
}

/* Signs a certificate for `key` named `cn`, issued under the name of
 * `issuer_name_from` (NULL: self) but signed by `signer`. */
static X509 *cert(const char *cn, EVP_PKEY *key, X509 *issuer_name_from, EVP_PKEY *signer, bool ca,
                  time_t nb, time_t na, long serial) {
        X509 *x = NULL;

        assert_int_equal(test_cert_new(
                                 &(TestCertSpec) {
                                         .cn = cn,
                                         .key = key,
                                         .issuer = issuer_name_from,
                                         .issuer_key = signer,
                                         .ca = ca,
                                         .not_before = nb,
                                         .not_after = na,
                                         .eku = ca ? NULL : "clientAuth",
                                         .serial = serial,
                                 },
                                 &x),
                         0);
        return x;
}

/* The cast, with the new root named new_cn (the old root's name for a same-name rollover). */
static Rollover *rollover_new(const char *new_cn) {
        const time_t now = TEST_NOW, day = TEST_DAY;
        Rollover *r = calloc(1, sizeof(Rollover));

        assert_non_null(r);
        assert_int_equal(test_key_new(&r->old_key), 0);
        assert_int_equal(test_key_new(&r->new_key), 0);
        assert_int_equal(test_key_new(&r->rogue_key), 0);
        assert_int_equal(test_key_new(&r->leaf_key), 0);
        r->old_root = cert("EST Root CA", r->old_key, NULL, NULL, true, now - 3000 * day, now + 30 * day, 1);
        r->new_root = cert(new_cn, r->new_key, NULL, NULL, true, now - 10 * day, now + 3650 * day, 2);
        r->new_with_old =
                cert(new_cn, r->new_key, r->old_root, r->old_key, true, now - 10 * day, now + 30 * day, 3);
        r->old_with_new = cert("EST Root CA", r->old_key, r->new_root, r->new_key, true, now - 3000 * day,
                               now + 30 * day, 4);
        r->forged_link =
                cert(new_cn, r->new_key, r->old_root, r->rogue_key, true, now - 10 * day, now + 30 * day, 5);
        r->rogue_root = cert("EST Root CA G9", r->rogue_key, NULL, NULL, true, now - day, now + 3650 * day, 6);
        r->new_leaf = cert("device-0001", r->leaf_key, r->new_root, r->new_key, false, now - day,
                           now + 90 * day, 7);
        return r;
}

static int setup(void **state) {
        ro = rollover_new("EST Root CA G2");
        return 0;
}

static int teardown(void **state) {
        rollover_free(ro);
        ro = NULL;
        return 0;
}

static void assert_diag(const Diag *d, int r, const char *why) {
        assert_int_equal(d->error, r);
        if (!strstr(d->text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d->text, why);
}

static bool has(STACK_OF(X509) *sk, X509 *x) {
        for (int i = 0; i < sk_X509_num(sk); i++)
                if (X509_cmp(sk_X509_value(sk, i), x) == 0)
                        return true;
        return false;
}

static void assert_changes(const TrustChanges *c, int adopted, int retired, int refused,
                           bool adopted_changed, bool ca_changed) {
        assert_int_equal(sk_X509_num(c->adopted), adopted);
        assert_int_equal(sk_X509_num(c->retired), retired);
        assert_int_equal(sk_X509_num(c->refused), refused);
        assert_int_equal(c->adopted_changed, adopted_changed);
        assert_int_equal(c->ca_changed, ca_changed);
}

/* A trust set as trust_load_anchors() makes it: seed + adopted. */
static TrustSet loaded(X509 *seed, X509 *adopted) {
        TrustSet t = {
                .server_anchors = test_stack(seed, adopted, NULL),
                .adopted = adopted ? test_stack(adopted, NULL) : NULL,
        };

        assert_non_null(t.server_anchors);
        return t;
}

static void test_select(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = test_stack(ro->old_root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts = test_stack(ro->rogue_root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *sel = NULL;
        Diag d = {};

        assert_int_equal(trust_select_ca_certs(cacerts, anchors, TEST_NOW, &sel, &d), -EKEYREJECTED);
        assert_null(sel);
        assert_diag(&d, -EKEYREJECTED, "chains to the configured trust anchors");

        OSSL_STACK_OF_X509_free(cacerts);
        cacerts = test_stack(ro->old_root, ro->new_with_old, ro->rogue_root, NULL);
        assert_int_equal(trust_select_ca_certs(cacerts, anchors, TEST_NOW, &sel, &d), 0);
        assert_int_equal(sk_X509_num(sel), 2);
        assert_true(has(sel, ro->old_root));
        assert_true(has(sel, ro->new_with_old));
}

/* [OldWithOld, NewWithNew, NewWithOld, OldWithNew]: the new root is adopted, the
 * links are intermediates, and a certificate from the new root is accepted. */
static void check_adoption(Rollover *r) {
        _cleanup_(trust_set_done) TrustSet t = loaded(r->old_root, NULL), n = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(r->old_root, r->new_root, r->new_with_old, r->old_with_new, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *previous = test_stack(r->old_root, NULL);
        Diag d = {};

        assert_int_equal(trust_apply_cacerts(&t, cacerts, previous, TEST_NOW, &n, &d), 0);
        assert_changes(&n.changes, 1, 0, 0, true, true);
        assert_true(has(n.changes.adopted, r->new_root));

        assert_int_equal(sk_X509_num(n.adopted), 1);
        assert_true(has(n.adopted, r->new_root));
        assert_int_equal(sk_X509_num(n.server_anchors), 2);
        assert_true(has(n.server_anchors, r->old_root));
        assert_true(has(n.server_anchors, r->new_root));
        /* OldWithNew and NewWithOld only as intermediates of the EST CA set. */
        assert_false(has(n.server_anchors, r->old_with_new));
        assert_false(has(n.adopted, r->new_with_old));
        assert_int_equal(sk_X509_num(n.ca_certs), 4);
        assert_true(has(n.ca_certs, r->old_with_new));
        assert_true(has(n.ca_certs, r->new_with_old));

        assert_int_equal(cert_verify_chain(r->new_leaf, NULL, n.ca_certs, TEST_NOW, true, &d), 0);
        /* Before adoption it chained only through NewWithOld to the old root. */
        assert_int_equal(cert_verify_chain(r->new_leaf, NULL, t.server_anchors, TEST_NOW, true, NULL),
                         -EKEYREJECTED);
}

static void test_adopt(void **state) {
        check_adoption(ro);
}

/* The new root may keep the old root's name (RFC 4210 4.4); the key decides. */
static void test_adopt_same_name(void **state) {
        Rollover *r = rollover_new("EST Root CA");

        check_adoption(r);
        rollover_free(r);
}

static void test_order_does_not_matter(void **state) {
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, NULL), n = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_with_new, ro->new_with_old, ro->new_root, ro->old_root, NULL);

        assert_int_equal(trust_apply_cacerts(&t, cacerts, NULL, TEST_NOW, &n, NULL), 0);
        assert_true(has(n.changes.adopted, ro->new_root));
        assert_true(n.changes.ca_changed); /* nothing stored before */
}

/* A self-signed root that nothing links to a trusted root stays out. */
static void test_new_root_alone_refused(void **state) {
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, NULL), n = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_root, ro->new_root, ro->rogue_root, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *previous = test_stack(ro->old_root, NULL);

        assert_int_equal(trust_apply_cacerts(&t, cacerts, previous, TEST_NOW, &n, NULL), 0);
        assert_changes(&n.changes, 0, 0, 2, false, false);
        assert_true(has(n.changes.refused, ro->new_root));
        assert_true(has(n.changes.refused, ro->rogue_root));
        assert_diag(&n.changes.refused_why, -EKEYREJECTED, "no NewWithOld certificate");
        assert_diag(&n.changes.refused_why, -EKEYREJECTED, "CN=EST Root CA G2");
        assert_int_equal(sk_X509_num(n.server_anchors), 1);
        assert_int_equal(sk_X509_num(n.adopted), 0);
        assert_false(has(n.ca_certs, ro->new_root));
}

/* A NewWithOld that claims the old root as issuer but was signed by another key. */
static void test_forged_link_refused(void **state) {
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, NULL), n = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_root, ro->new_root, ro->forged_link, NULL);

        assert_int_equal(trust_apply_cacerts(&t, cacerts, NULL, TEST_NOW, &n, NULL), 0);
        assert_int_equal(sk_X509_num(n.changes.adopted), 0);
        assert_true(has(n.changes.refused, ro->new_root));
        assert_diag(&n.changes.refused_why, -EKEYREJECTED, "NewWithOld certificate does not verify");
        assert_diag(&n.changes.refused_why, -EKEYREJECTED, "signature");
        assert_false(has(n.server_anchors, ro->new_root));
        assert_false(has(n.ca_certs, ro->forged_link));
}

/* A link from a root that is not an anchor proves nothing. */
static void test_link_from_untrusted_root_refused(void **state) {
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, NULL), n = {};
        _cleanup_(X509_freep) X509 *link = cert("EST Root CA G2", ro->new_key, ro->rogue_root, ro->rogue_key,
                                                true, TEST_NOW - TEST_DAY, TEST_NOW + TEST_DAY, 8);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_root, ro->new_root, link, ro->rogue_root, NULL);

        assert_int_equal(trust_apply_cacerts(&t, cacerts, NULL, TEST_NOW, &n, NULL), 0);
        assert_int_equal(sk_X509_num(n.changes.adopted), 0);
        assert_true(has(n.changes.refused, ro->new_root));
        assert_diag(&n.changes.refused_why, -EKEYREJECTED, "does not lead to a configured trust anchor");
}

/* A NewWithNew look-alike (right name and key, linked) with a signature by another key:
 * its other fields (dates, constraints) are not the CA's. */
static void test_bad_self_signature_refused(void **state) {
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, NULL), n = {};
        _cleanup_(X509_freep) X509 *fake = cert("EST Root CA G2", ro->new_key, NULL, ro->rogue_key, true,
                                                TEST_NOW - TEST_DAY, TEST_NOW + 20000 * TEST_DAY, 9);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_root, fake, ro->new_with_old, NULL);

        assert_int_equal(trust_apply_cacerts(&t, cacerts, NULL, TEST_NOW, &n, NULL), 0);
        assert_int_equal(sk_X509_num(n.changes.adopted), 0);
        assert_true(has(n.changes.refused, fake));
        assert_diag(&n.changes.refused_why, -EKEYREJECTED, "self-signature does not verify");
}

/* A link that has expired cannot vouch any more. */
static void test_expired_link_refused(void **state) {
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, NULL), n = {};
        _cleanup_(X509_freep) X509 *link = cert("EST Root CA G2", ro->new_key, ro->old_root, ro->old_key,
                                                true, TEST_NOW - 10 * TEST_DAY, TEST_NOW - TEST_DAY, 10);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_root, ro->new_root, link, NULL);

        assert_int_equal(trust_apply_cacerts(&t, cacerts, NULL, TEST_NOW, &n, NULL), 0);
        assert_int_equal(sk_X509_num(n.changes.adopted), 0);
        assert_diag(&n.changes.refused_why, -EKEYREJECTED, "expired");
}

/* The same answer again: nothing changes, nothing needs writing. */
static void test_nothing_changed(void **state) {
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, NULL), first = {}, second = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_root, ro->new_root, ro->new_with_old, ro->old_with_new, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *reordered = NULL;

        assert_int_equal(trust_apply_cacerts(&t, cacerts, NULL, TEST_NOW, &first, NULL), 0);
        assert_true(first.changes.ca_changed);

        /* What trust_load_anchors() would give with the files just written, the stored set reordered. */
        TrustSet again = loaded(ro->old_root, ro->new_root);
        reordered = test_stack(ro->old_with_new, ro->new_root, ro->old_root, ro->new_with_old, NULL);
        assert_int_equal(trust_apply_cacerts(&again, cacerts, reordered, TEST_NOW + 60, &second, NULL), 0);
        trust_set_done(&again);
        assert_changes(&second.changes, 0, 0, 0, false, false);
        /* The stored order is kept, so a byte comparison of the file sees no change either. */
        assert_int_equal(sk_X509_num(second.ca_certs), 4);
        for (int i = 0; i < 4; i++)
                assert_int_equal(X509_cmp(sk_X509_value(second.ca_certs, i), sk_X509_value(reordered, i)), 0);
}

/* After the old root's notAfter: it leaves the EST CA set (reported once), the
 * new root carries everything, the links that expired with it are gone. */
static void test_old_root_retired(void **state) {
        const time_t later = TEST_NOW + 31 * TEST_DAY;
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, ro->new_root), n = {}, n2 = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_root, ro->new_root, ro->new_with_old, ro->old_with_new, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *previous =
                test_stack(ro->old_root, ro->new_root, ro->new_with_old, ro->old_with_new, NULL);
        Diag d = {};

        assert_int_equal(trust_apply_cacerts(&t, cacerts, previous, later, &n, &d), 0);
        /* The seed lives in /etc: the adopted set is unchanged. */
        assert_changes(&n.changes, 0, 1, 0, false, true);
        assert_true(has(n.changes.retired, ro->old_root));
        assert_int_equal(sk_X509_num(n.ca_certs), 1);
        assert_true(has(n.ca_certs, ro->new_root));
        assert_int_equal(cert_verify_chain(ro->new_leaf, NULL, n.ca_certs, later, true, &d), 0);

        /* The next refresh reports nothing more. */
        assert_int_equal(trust_apply_cacerts(&n, cacerts, n.ca_certs, later + 60, &n2, &d), 0);
        assert_int_equal(sk_X509_num(n2.changes.retired), 0);
        assert_false(n2.changes.ca_changed);
}

/* An adopted anchor that expires leaves the adopted set (and the file). */
static void test_adopted_root_retired(void **state) {
        _cleanup_(X509_freep) X509 *gone = cert("EST Root CA G0", ro->rogue_key, NULL, NULL, true,
                                                TEST_NOW - 400 * TEST_DAY, TEST_NOW - TEST_DAY, 11);
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, gone), n = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts = test_stack(ro->old_root, gone, NULL);
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *previous = test_stack(ro->old_root, gone, NULL);

        assert_int_equal(trust_apply_cacerts(&t, cacerts, previous, TEST_NOW, &n, NULL), 0);
        /* Expired, it is not offered for adoption again either (nothing refused). */
        assert_changes(&n.changes, 0, 1, 0, true, true);
        assert_true(has(n.changes.retired, gone));
        assert_int_equal(sk_X509_num(n.adopted), 0);
        assert_false(has(n.server_anchors, gone));
        assert_false(has(n.ca_certs, gone));
}

static void test_all_expired(void **state) {
        _cleanup_(trust_set_done) TrustSet t = loaded(ro->old_root, NULL), n = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts =
                test_stack(ro->old_root, ro->new_root, ro->new_with_old, NULL);
        Diag d = {};

        assert_int_equal(trust_apply_cacerts(&t, cacerts, NULL, TEST_NOW + 31 * TEST_DAY, &n, &d),
                         -EKEYEXPIRED);
        assert_diag(&d, -EKEYEXPIRED, "every EST trust anchor has expired");
        assert_null(n.server_anchors);
}

static void write_pem(const char *path, X509 *a, X509 *b) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *sk = test_stack(a, b, NULL);
        _cleanup_free_ char *pem = NULL;
        size_t len;
        FILE *f;

        assert_int_equal(certs_to_pem(sk, &pem, &len), 0);
        assert_non_null(f = fopen(path, "w"));
        assert_int_equal(fwrite(pem, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

/* Server anchors = the configured seed + the adopted file (roots only). */
static void test_load(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(state_store_freep) StateStore *store = NULL;
        _cleanup_free_ char *seed = NULL, *adopted = NULL;
        TrustSet t = {};
        char base[64];
        Diag d = {};

        assert_non_null(test_tmpdir_new(base, sizeof(base), "trust"));
        assert_int_equal(config_new_defaults(&c), 0);
        assert_true(asprintf(&seed, "%s/seed.pem", base) > 0);
        write_pem(seed, ro->old_root, NULL);
        free(c->est_trust_anchors);
        c->est_trust_anchors = strdup(seed);
        assert_int_equal(state_store_open(base, &store, &d), 0);

        assert_int_equal(trust_load_anchors(c, store, &t, &d), 0);
        assert_int_equal(sk_X509_num(t.server_anchors), 1);
        assert_int_equal(sk_X509_num(t.adopted), 0);
        trust_set_done(&t);

        /* A non-root in the adopted file is not an anchor. */
        assert_true(asprintf(&adopted, "%s/%s", base, STATE_ADOPTED_ANCHORS) > 0);
        write_pem(adopted, ro->new_root, ro->new_with_old);
        assert_int_equal(trust_load_anchors(c, store, &t, &d), 0);
        assert_int_equal(sk_X509_num(t.server_anchors), 2);
        assert_true(has(t.server_anchors, ro->old_root));
        assert_true(has(t.server_anchors, ro->new_root));
        assert_int_equal(sk_X509_num(t.adopted), 1);
        assert_true(has(t.adopted, ro->new_root));
        trust_set_done(&t);

        /* A broken adopted file is an error naming it, not silently less trust. */
        FILE *f = fopen(adopted, "w");
        assert_non_null(f);
        fputs("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(trust_load_anchors(c, store, &t, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, STATE_ADOPTED_ANCHORS);
        assert_null(t.server_anchors);

        assert_int_equal(test_tmpdir_remove(base), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_select),
                cmocka_unit_test(test_adopt),
                cmocka_unit_test(test_adopt_same_name),
                cmocka_unit_test(test_order_does_not_matter),
                cmocka_unit_test(test_new_root_alone_refused),
                cmocka_unit_test(test_forged_link_refused),
                cmocka_unit_test(test_link_from_untrusted_root_refused),
                cmocka_unit_test(test_bad_self_signature_refused),
                cmocka_unit_test(test_expired_link_refused),
                cmocka_unit_test(test_nothing_changed),
                cmocka_unit_test(test_old_root_retired),
                cmocka_unit_test(test_adopted_root_retired),
                cmocka_unit_test(test_all_expired),
                cmocka_unit_test(test_load),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
