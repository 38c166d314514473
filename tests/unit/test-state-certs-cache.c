/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A state file's certificates as DER, read again only when the file changed;
 * and state_certs_save(), which writes nothing it could not read back. */
#include <errno.h>
#include <openssl/pem.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/state-certs-cache.h"
#include "store/state-certs.h"
#include "test-certs.h"
#include "test-tmpdir.h"

/* PEM of certs, as the state directory holds them. */
static void save_pem(StateStore *s, X509 *a, X509 *b) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data;
        long len;

        assert_non_null(bio);
        assert_int_equal(PEM_write_bio_X509(bio, a), 1);
        if (b)
                assert_int_equal(PEM_write_bio_X509(bio, b), 1);
        len = BIO_get_mem_data(bio, &data);
        assert_int_equal(state_store_save(s, STATE_OPERATIONAL_CERT, data, (size_t) len, 0640, NULL), 0);
        BIO_free(bio);
}

static void assert_der(const StateCertDer *c, X509 *x) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);

        assert_true(len > 0);
        assert_int_equal(c->len, (size_t) len);
        assert_memory_equal(c->der, der, (size_t) len);
        OPENSSL_free(der);
}

static void test_save_bounded(void **state) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = sk_X509_new_null(), *back = NULL;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        TestPki *pki = NULL;
        char base[64];
        Diag d = {};

        assert_non_null(chain);
        assert_int_equal(test_pki_new(&pki), 0);
        assert_non_null(test_tmpdir_new(base, sizeof(base), "state-certs-save"));
        assert_int_equal(state_store_open(base, &s, NULL), 0);
        assert_true(X509_up_ref(pki->leaf) && sk_X509_push(chain, pki->leaf));
        assert_true(X509_up_ref(pki->inter) && sk_X509_push(chain, pki->inter));
        assert_int_equal(state_certs_save(s, STATE_OPERATIONAL_CERT, chain, 0640, &d), 0);
        assert_int_equal(state_certs_load(s, STATE_OPERATIONAL_CERT, &back, &d), 0);
        assert_int_equal(sk_X509_num(back), 2);

        /* more PEM than state_certs_load() reads: refused, the file as it was */
        while (sk_X509_num(chain) < 4000)
                assert_true(X509_up_ref(pki->leaf) && sk_X509_push(chain, pki->leaf));
        assert_int_equal(state_certs_save(s, STATE_OPERATIONAL_CERT, chain, 0640, &d), -EFBIG);
        if (!strstr(d.text, "more than the 1048576 it is read back with; not written"))
                fail_msg("diag: %s", d.text);
        OSSL_STACK_OF_X509_free(TAKE_PTR(back));
        assert_int_equal(state_certs_load(s, STATE_OPERATIONAL_CERT, &back, &d), 0);
        assert_int_equal(sk_X509_num(back), 2);
        assert_int_equal(test_tmpdir_remove(base), 0);
        test_pki_free(pki);
}

static void test_cache(void **state) {
        TestPki *pki = NULL;
        _cleanup_(state_store_freep) StateStore *s = NULL;
        _cleanup_(state_certs_cache_freep) StateCertsCache *c = NULL;
        const StateCertDer *certs = NULL;
        char base[64];
        size_t n = 0;
        Diag d = {};

        assert_int_equal(test_pki_new(&pki), 0);
        assert_non_null(test_tmpdir_new(base, sizeof(base), "state-certs-cache"));
        assert_int_equal(state_store_open(base, &s, NULL), 0);
        assert_int_equal(state_certs_cache_new(s, "../x", &c), -EINVAL);
        assert_int_equal(state_certs_cache_new(s, STATE_OPERATIONAL_CERT, &c), 0);

        /* none yet: the load's error, nothing cached */
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), -ENOENT);
        save_pem(s, pki->leaf, pki->inter);
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), 1); /* read */
        assert_int_equal(n, 2);
        assert_der(&certs[0], pki->leaf);
        assert_der(&certs[1], pki->inter);
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), 0); /* cached */
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), 0);
        assert_int_equal(n, 2);

        /* replaced (a renewal): read again, whatever the size and time */
        save_pem(s, pki->other_leaf, NULL);
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), 1);
        assert_int_equal(n, 1);
        assert_der(&certs[0], pki->other_leaf);
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), 0);

        /* removed: the error again, not the old certificates */
        assert_int_equal(state_store_remove(s, STATE_OPERATIONAL_CERT, NULL), 0);
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), -ENOENT);

        /* a symlink in its place is refused, as state_certs_load() refuses it */
        save_pem(s, pki->leaf, NULL);
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), 1);
        {
                char path[128], target[128];

                snprintf(path, sizeof(path), "%s/%s", base, STATE_OPERATIONAL_CERT);
                snprintf(target, sizeof(target), "%s/elsewhere.pem", base);
                assert_int_equal(rename(path, target), 0);
                assert_int_equal(symlink(target, path), 0);
        }
        assert_int_equal(state_certs_cache_get(c, &certs, &n, &d), -ELOOP);

        state_certs_cache_free(TAKE_PTR(c));
        state_store_free(TAKE_PTR(s));
        assert_int_equal(test_tmpdir_remove(base), 0);
        test_pki_free(pki);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cache),
                cmocka_unit_test(test_save_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
