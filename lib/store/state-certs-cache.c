/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/ossl-util.h"
#include "store/state-certs-cache.h"
#include "store/state-certs.h"

struct StateCertsCache {
        StateStore *store;
        const char *name;
        bool valid;
        struct stat st; /* the file as it was before it was read */
        StateCertDer *certs;
        size_t n;
};

int state_certs_cache_new(StateStore *store, const char *name, StateCertsCache **ret) {
        StateCertsCache *c;

        if (!store || !state_store_name_valid(name))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->store = store;
        c->name = name;
        *ret = c;
        return 0;
}

static void drop(StateCertsCache *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->certs[i].der);
        free(c->certs);
        c->certs = NULL;
        c->n = 0;
        c->valid = false;
}

StateCertsCache *state_certs_cache_free(StateCertsCache *c) {
        if (!c)
                return NULL;
        drop(c);
        free(c);
        return NULL;
}

static bool same_file(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The DER of every certificate of certs, or -errno. */
static int encode(STACK_OF(X509) *certs, StateCertDer **ret, size_t *ret_n) {
        int n = sk_X509_num(certs);
        StateCertDer *out;

        out = calloc(n > 0 ? (size_t) n : 1, sizeof(*out));
        if (!out)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                unsigned char *der = NULL;
                int len = i2d_X509(sk_X509_value(certs, i), &der);

                if (len > 0)
                        out[i].der = malloc((size_t) len);
                if (len > 0 && out[i].der) {
                        memcpy(out[i].der, der, (size_t) len);
                        out[i].len = (size_t) len;
                }
                OPENSSL_free(der);
                if (!out[i].der) {
                        for (int j = 0; j < i; j++)
                                free(out[j].der);
                        free(out);
                        return len <= 0 ? -EIO : -ENOMEM;
                }
        }
        *ret = out;
        *ret_n = (size_t) n;
        return 0;
}

int state_certs_cache_get(StateCertsCache *c, const StateCertDer **ret_certs, size_t *ret_n, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        struct stat st = {};
        bool stated;
        int r;

        stated = state_store_stat(c->store, c->name, &st) >= 0;
        if (stated && c->valid && same_file(&st, &c->st)) {
                *ret_certs = c->certs;
                *ret_n = c->n;
                return 0;
        }
        drop(c);
        r = state_certs_load(c->store, c->name, &certs, d);
        if (r < 0)
                return r;
        r = encode(certs, &c->certs, &c->n);
        if (r < 0)
                return diag_set(d, r, "cannot encode the certificates of %s", c->name);
        /* No stat (a race with a rename): serve what was read, keep nothing. */
        c->valid = stated && state_store_stat(c->store, c->name, &c->st) >= 0 && same_file(&st, &c->st);
        *ret_certs = c->certs;
        *ret_n = c->n;
        return 1;
}
