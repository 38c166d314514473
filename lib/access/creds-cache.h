/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * creds-cache.h: the credentials the bus driver gave for a caller's unique
 * name, kept so that the access filter asks the driver once per connection,
 * not once per call (a synchronous round trip on the loop).
 *
 * This is as exact as asking each time: dbus-daemon takes a connection's uid
 * and groups from its socket when it connects (SO_PEERCRED, SO_PEERGROUPS)
 * and never changes them, and it never gives a unique name twice. The cache
 * belongs to one bus connection (dropped with it: a new dbus-daemon counts
 * names anew). At most CREDS_CACHE_MAX names, the least recently used
 * replaced; a caller with more than CREDS_GIDS_MAX groups is not kept.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "util/macro.h"

#define CREDS_CACHE_MAX 64
#define CREDS_GIDS_MAX 256

typedef struct CredsCache CredsCache;

int creds_cache_new(CredsCache **ret);
CredsCache *creds_cache_free(CredsCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CredsCache *, creds_cache_free);

/* 1 and the credentials (*ret_gids malloc()ed, NULL when none) if sender is
 * known, 0 if not, -ENOMEM. */
int creds_cache_get(CredsCache *c, const char *sender, uid_t *ret_uid, gid_t **ret_gids, size_t *ret_n);
/* Remembers what the driver said for sender. */
void creds_cache_put(CredsCache *c, const char *sender, uid_t uid, const gid_t *gids, size_t n);
