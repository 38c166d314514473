/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-certs-cache.h: the certificates of one state file (the operational
 * chain, the EST CA set) as DER, read again only when the file changed, so
 * that a D-Bus reader asking many times a second does not parse PEM each
 * time.
 *
 * "Changed" is decided by lstat(): the device, inode, size, mtime and ctime
 * as they were before the file was last read. Every write to the state
 * directory replaces the file by a rename (a new inode), whoever writes it (a
 * fleetidd --oneshot beside the daemon too), so a changed file is never taken
 * for the one read. The stat is taken before the read: a file replaced in
 * between is read again at the next call.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/state-store.h"
#include "util/diag.h"
#include "util/macro.h"

typedef struct StateCertDer {
        uint8_t *der;
        size_t len;
} StateCertDer;

typedef struct StateCertsCache StateCertsCache;

/* For state file `name` of store (neither is copied: both must outlive it). */
int state_certs_cache_new(StateStore *store, const char *name, StateCertsCache **ret);
StateCertsCache *state_certs_cache_free(StateCertsCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(StateCertsCache *, state_certs_cache_free);

/* The file's certificates now, DER, in file order: from the cache if the file
 * is unchanged, else read (state_certs_load(): same errors, and nothing is
 * cached then). *ret_certs stays valid until the next call or the free.
 * Returns 1 if read from the file, 0 if from the cache. */
int state_certs_cache_get(StateCertsCache *c, const StateCertDer **ret_certs, size_t *ret_n, Diag *d);
