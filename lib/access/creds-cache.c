/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access/creds-cache.h"

typedef struct CredsEntry {
        char *name; /* NULL: free slot */
        uid_t uid;
        gid_t *gids;
        size_t n_gids;
        uint64_t used; /* the tick of the last put or get */
} CredsEntry;

struct CredsCache {
        CredsEntry *entries;
        size_t max, n;
        uint64_t tick;
        CredsEntry *last; /* the entry found last, tried first: a client makes its calls in a row */
};

int creds_cache_new(size_t max, CredsCache **ret) {
        CredsCache *c;

        if (max < CREDS_CACHE_MIN || max > CREDS_CACHE_MAX)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->entries = calloc(max, sizeof(*c->entries));
        if (!c->entries) {
                free(c);
                return -ENOMEM;
        }
        c->max = max;
        *ret = c;
        return 0;
}

static void entry_clear(CredsCache *c, CredsEntry *e) {
        if (!e->name)
                return;
        if (c->last == e)
                c->last = NULL;
        free(e->name);
        free(e->gids);
        *e = (CredsEntry) {};
        c->n--;
}

CredsCache *creds_cache_free(CredsCache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->max; i++)
                entry_clear(c, &c->entries[i]);
        free(c->entries);
        free(c);
        return NULL;
}

static CredsEntry *find(CredsCache *c, const char *name) {
        if (c->last && strcmp(c->last->name, name) == 0)
                return c->last;
        for (size_t i = 0; i < c->max; i++)
                if (c->entries[i].name && strcmp(c->entries[i].name, name) == 0)
                        return (c->last = &c->entries[i]);
        return NULL;
}

bool creds_cache_get(CredsCache *c, const char *name, uid_t *ret_uid, const gid_t **ret_gids, size_t *ret_n) {
        CredsEntry *e = name ? find(c, name) : NULL;

        if (!e)
                return false;
        e->used = ++c->tick;
        *ret_uid = e->uid;
        *ret_gids = e->gids;
        *ret_n = e->n_gids;
        return true;
}

int creds_cache_put(CredsCache *c, const char *name, uid_t uid, const gid_t *gids, size_t n_gids) {
        CredsEntry *e, *slot = NULL;
        gid_t *copy = NULL;
        char *name_copy;

        if (!name || strlen(name) > CREDS_CACHE_NAME_MAX || n_gids > CREDS_CACHE_GIDS_MAX)
                return -E2BIG;
        if (n_gids > 0) {
                copy = malloc(n_gids * sizeof(gid_t));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, gids, n_gids * sizeof(gid_t));
        }
        name_copy = strdup(name);
        if (!name_copy) {
                free(copy);
                return -ENOMEM;
        }
        e = find(c, name);
        if (e)
                entry_clear(c, e);
        /* A free slot, else the least recently used. */
        for (size_t i = 0; i < c->max; i++) {
                CredsEntry *x = &c->entries[i];

                if (!x->name) {
                        slot = x;
                        break;
                }
                if (!slot || x->used < slot->used)
                        slot = x;
        }
        entry_clear(c, slot);
        *slot = (CredsEntry) { .name = name_copy, .uid = uid, .gids = copy, .n_gids = n_gids, .used = ++c->tick };
        c->n++;
        return 0;
}

void creds_cache_forget(CredsCache *c, const char *name) {
        CredsEntry *e = name ? find(c, name) : NULL;

        if (e)
                entry_clear(c, e);
}

size_t creds_cache_size(const CredsCache *c) {
        return c->n;
}
