/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-creds-cache.c: the callers' credentials kept by unique name: a hit
 * gives what was put (groups copied), an unknown name misses, the least
 * recently used name is the one replaced when the cache is full, and a
 * caller with too many groups is not kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "access/creds-cache.h"

static void test_hit_and_miss(void **state) {
        _cleanup_(creds_cache_freep) CredsCache *c = NULL;
        const gid_t groups[3] = { 10, 20, 30 };
        gid_t *gids = NULL;
        uid_t uid = 0;
        size_t n = 0;

        assert_int_equal(creds_cache_new(&c), 0);
        assert_int_equal(creds_cache_get(c, ":1.7", &uid, &gids, &n), 0);
        creds_cache_put(c, ":1.7", 1001, groups, 3);
        creds_cache_put(c, ":1.8", 0, NULL, 0);
        assert_int_equal(creds_cache_get(c, ":1.7", &uid, &gids, &n), 1);
        assert_int_equal(uid, 1001);
        assert_int_equal(n, 3);
        assert_memory_equal(gids, groups, sizeof(groups));
        free(gids);
        assert_int_equal(creds_cache_get(c, ":1.8", &uid, &gids, &n), 1);
        assert_int_equal(uid, 0);
        assert_int_equal(n, 0);
        assert_null(gids);
        assert_int_equal(creds_cache_get(c, ":1.70", &uid, &gids, &n), 0);
        assert_int_equal(creds_cache_get(c, NULL, &uid, &gids, &n), 0);
        assert_int_equal(creds_cache_get(NULL, ":1.7", &uid, &gids, &n), 0);
}

static void test_least_recently_used_replaced(void **state) {
        _cleanup_(creds_cache_freep) CredsCache *c = NULL;
        char name[32];
        gid_t *gids = NULL;
        uid_t uid;
        size_t n;

        assert_int_equal(creds_cache_new(&c), 0);
        for (unsigned i = 0; i < CREDS_CACHE_MAX; i++) {
                snprintf(name, sizeof(name), ":1.%u", i);
                creds_cache_put(c, name, 2000 + i, NULL, 0);
        }
        /* :1.0 used again: :1.1 is now the least recently used. */
        assert_int_equal(creds_cache_get(c, ":1.0", &uid, &gids, &n), 1);
        creds_cache_put(c, ":2.0", 42, NULL, 0);
        assert_int_equal(creds_cache_get(c, ":1.1", &uid, &gids, &n), 0);
        assert_int_equal(creds_cache_get(c, ":1.0", &uid, &gids, &n), 1);
        assert_int_equal(uid, 2000);
        assert_int_equal(creds_cache_get(c, ":2.0", &uid, &gids, &n), 1);
        assert_int_equal(uid, 42);
        for (unsigned i = 2; i < CREDS_CACHE_MAX; i++) {
                snprintf(name, sizeof(name), ":1.%u", i);
                assert_int_equal(creds_cache_get(c, name, &uid, &gids, &n), 1);
                assert_int_equal(uid, 2000 + i);
        }
}

static void test_too_many_groups_not_kept(void **state) {
        _cleanup_(creds_cache_freep) CredsCache *c = NULL;
        gid_t *many = calloc(CREDS_GIDS_MAX + 1, sizeof(gid_t)), *gids = NULL;
        uid_t uid;
        size_t n;

        assert_non_null(many);
        assert_int_equal(creds_cache_new(&c), 0);
        creds_cache_put(c, ":1.1", 5, many, CREDS_GIDS_MAX + 1);
        assert_int_equal(creds_cache_get(c, ":1.1", &uid, &gids, &n), 0);
        creds_cache_put(c, ":1.2", 5, many, CREDS_GIDS_MAX);
        assert_int_equal(creds_cache_get(c, ":1.2", &uid, &gids, &n), 1);
        assert_int_equal(n, CREDS_GIDS_MAX);
        free(gids);
        free(many);
        assert_null(creds_cache_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hit_and_miss),
                cmocka_unit_test(test_least_recently_used_replaced),
                cmocka_unit_test(test_too_many_groups_not_kept),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
