/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * creds-cache.h: the credentials (uid and groups) of the bus peers that
 * called fleetidd, by their unique bus name (":1.42"), so that the access
 * check asks the bus driver once per connection instead of once per call.
 *
 * Sound because the credentials belong to the connection: dbus-daemon takes
 * them from the socket when the peer connects (SO_PEERCRED, SO_PEERGROUPS)
 * and never changes them, and it never gives a unique name to a second
 * connection. An entry is dropped when its peer leaves (the caller forgets it
 * on NameOwnerChanged); one left behind is stale memory, never a wrong
 * answer, since no one can call with that name again.
 *
 * Memory is bounded: at most max entries; when full, the least recently used
 * goes. Names longer than CREDS_CACHE_NAME_MAX and more than
 * CREDS_CACHE_GIDS_MAX groups are not cached (the caller then asks the bus
 * driver each time).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/macro.h"

#define CREDS_CACHE_NAME_MAX 255u /* the D-Bus bound on a bus name */
#define CREDS_CACHE_GIDS_MAX 1024u
#define CREDS_CACHE_MIN 1u
#define CREDS_CACHE_MAX 65536u

typedef struct CredsCache CredsCache;

/* -EINVAL unless CREDS_CACHE_MIN <= max <= CREDS_CACHE_MAX. */
int creds_cache_new(size_t max, CredsCache **ret);
CredsCache *creds_cache_free(CredsCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CredsCache *, creds_cache_free);

/* The credentials of name, if cached: true, and *ret_gids points into the
 * cache until the next creds_cache_put() or creds_cache_forget(). */
bool creds_cache_get(CredsCache *c, const char *name, uid_t *ret_uid, const gid_t **ret_gids, size_t *ret_n);
/* Caches a copy (replacing name's entry if there is one). 0 cached, -E2BIG
 * for a name or a group list beyond the bounds (not cached), -ENOMEM. */
int creds_cache_put(CredsCache *c, const char *name, uid_t uid, const gid_t *gids, size_t n_gids);
/* Drops name's entry, if any. */
void creds_cache_forget(CredsCache *c, const char *name);
/* Entries held (at most max). */
size_t creds_cache_size(const CredsCache *c);
