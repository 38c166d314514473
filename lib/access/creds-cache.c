/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access/creds-cache.h"

typedef struct Entry {
        char *sender; /* NULL: free */
        uid_t uid;
        gid_t *gids;
        size_t n_gids;
        uint64_t used; /* the tick of the last use */
} Entry;

struct CredsCache {
        Entry entries[CREDS_CACHE_MAX];
        uint64_t tick;
};

int creds_cache_new(CredsCache **ret) {
        *ret = calloc(1, sizeof(CredsCache));
        return *ret ? 0 : -ENOMEM;
}

static void entry_clear(Entry *e) {
        free(e->sender);
        free(e->gids);
        *e = (Entry) {};
}

CredsCache *creds_cache_free(CredsCache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < CREDS_CACHE_MAX; i++)
                entry_clear(&c->entries[i]);
        free(c);
        return NULL;
}

int creds_cache_get(CredsCache *c, const char *sender, uid_t *ret_uid, gid_t **ret_gids, size_t *ret_n) {
        for (size_t i = 0; c && sender && i < CREDS_CACHE_MAX; i++) {
                Entry *e = &c->entries[i];
                gid_t *gids = NULL;

                if (!e->sender || strcmp(e->sender, sender) != 0)
                        continue;
                if (e->n_gids > 0) {
                        gids = malloc(e->n_gids * sizeof(gid_t));
                        if (!gids)
                                return -ENOMEM;
                        memcpy(gids, e->gids, e->n_gids * sizeof(gid_t));
                }
                e->used = ++c->tick;
                *ret_uid = e->uid;
                *ret_gids = gids;
                *ret_n = e->n_gids;
                return 1;
        }
        return 0;
}

void creds_cache_put(CredsCache *c, const char *sender, uid_t uid, const gid_t *gids, size_t n) {
        Entry *victim;

        if (!c || !sender || n > CREDS_GIDS_MAX)
                return;
        victim = &c->entries[0];
        for (size_t i = 0; i < CREDS_CACHE_MAX; i++) {
                Entry *e = &c->entries[i];

                if (!e->sender) {
                        victim = e;
                        break;
                }
                if (e->used < victim->used)
                        victim = e;
        }
        entry_clear(victim);
        victim->sender = strdup(sender);
        if (n > 0)
                victim->gids = malloc(n * sizeof(gid_t));
        if (!victim->sender || (n > 0 && !victim->gids)) {
                entry_clear(victim); /* not kept: asked again next time */
                return;
        }
        if (n > 0)
                memcpy(victim->gids, gids, n * sizeof(gid_t));
        victim->uid = uid;
        victim->n_gids = n;
        victim->used = ++c->tick;
}
