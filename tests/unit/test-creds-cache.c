/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bus peers' credentials by unique name: lookups, replacement, bounds, LRU. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "access/creds-cache.h"

static void test_put_get_forget(void **state) {
        _cleanup_(creds_cache_freep) CredsCache *c = NULL;
        gid_t gids[] = { 100, 27, 100 };
        const gid_t *got = NULL;
        uid_t uid = 0;
        size_t n = 0;

        assert_int_equal(creds_cache_new(4, &c), 0);
        assert_false(creds_cache_get(c, ":1.7", &uid, &got, &n));
        assert_int_equal(creds_cache_put(c, ":1.7", 1000, gids, 3), 0);
        gids[0] = 5; /* the cache holds a copy */
        assert_true(creds_cache_get(c, ":1.7", &uid, &got, &n));
        assert_int_equal(uid, 1000);
        assert_int_equal(n, 3);
        assert_int_equal(got[0], 100);
        assert_int_equal(got[1], 27);
        assert_false(creds_cache_get(c, ":1.70", &uid, &got, &n));
        assert_false(creds_cache_get(c, ":1", &uid, &got, &n));
        assert_false(creds_cache_get(c, NULL, &uid, &got, &n));
        /* replaced, not added twice */
        assert_int_equal(creds_cache_put(c, ":1.7", 1001, NULL, 0), 0);
        assert_int_equal(creds_cache_size(c), 1);
        assert_true(creds_cache_get(c, ":1.7", &uid, &got, &n));
        assert_int_equal(uid, 1001);
        assert_int_equal(n, 0);
        creds_cache_forget(c, ":1.7");
        creds_cache_forget(c, ":1.7");
        creds_cache_forget(c, NULL);
        assert_false(creds_cache_get(c, ":1.7", &uid, &got, &n));
        assert_int_equal(creds_cache_size(c), 0);
}

static void test_bounds(void **state) {
        _cleanup_(creds_cache_freep) CredsCache *c = NULL;
        char name[CREDS_CACHE_NAME_MAX + 2];
        static gid_t many[CREDS_CACHE_GIDS_MAX + 1];

        assert_int_equal(creds_cache_new(0, &c), -EINVAL);
        assert_int_equal(creds_cache_new(CREDS_CACHE_MAX + 1, &c), -EINVAL);
        assert_int_equal(creds_cache_new(2, &c), 0);
        memset(name, 'a', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        assert_int_equal(creds_cache_put(c, name, 1, NULL, 0), -E2BIG);
        name[CREDS_CACHE_NAME_MAX] = '\0';
        assert_int_equal(creds_cache_put(c, name, 1, NULL, 0), 0);
        assert_int_equal(creds_cache_put(c, ":1.1", 1, many, CREDS_CACHE_GIDS_MAX + 1), -E2BIG);
        assert_int_equal(creds_cache_put(c, ":1.1", 1, many, CREDS_CACHE_GIDS_MAX), 0);
        assert_int_equal(creds_cache_put(c, NULL, 1, NULL, 0), -E2BIG);
        assert_int_equal(creds_cache_size(c), 2);
}

static void test_lru(void **state) {
        _cleanup_(creds_cache_freep) CredsCache *c = NULL;
        const gid_t *got;
        uid_t uid;
        size_t n;
        char name[32];

        assert_int_equal(creds_cache_new(3, &c), 0);
        assert_int_equal(creds_cache_put(c, ":1.1", 1, NULL, 0), 0);
        assert_int_equal(creds_cache_put(c, ":1.2", 2, NULL, 0), 0);
        assert_int_equal(creds_cache_put(c, ":1.3", 3, NULL, 0), 0);
        /* :1.1 used again: :1.2 is now the least recently used and goes */
        assert_true(creds_cache_get(c, ":1.1", &uid, &got, &n));
        assert_int_equal(creds_cache_put(c, ":1.4", 4, NULL, 0), 0);
        assert_false(creds_cache_get(c, ":1.2", &uid, &got, &n));
        assert_true(creds_cache_get(c, ":1.1", &uid, &got, &n));
        assert_true(creds_cache_get(c, ":1.3", &uid, &got, &n));
        assert_true(creds_cache_get(c, ":1.4", &uid, &got, &n));
        assert_int_equal(uid, 4);
        /* a flood of new peers never grows it */
        for (int i = 0; i < 10000; i++) {
                snprintf(name, sizeof(name), ":2.%d", i);
                assert_int_equal(creds_cache_put(c, name, (uid_t) i, NULL, 0), 0);
                assert_true(creds_cache_size(c) <= 3);
        }
        assert_true(creds_cache_get(c, ":2.9999", &uid, &got, &n));
        assert_int_equal(uid, 9999);
        assert_false(creds_cache_get(c, ":1.1", &uid, &got, &n));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_put_get_forget),
                cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_lru),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
