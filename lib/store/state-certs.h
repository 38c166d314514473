/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-certs.h: certificates kept in the state directory (the operational
 * chain, the birth certificate copy, the EST CA set, adopted roots), read the
 * way every state file is read: relative to the store's directory fd, never
 * through a symlink, bounded in size (CERT_PEM_FILE_MAX).
 */
#pragma once

#include <openssl/x509.h>

#include "store/state-store.h"
#include "util/diag.h"

/* Every certificate of state file `name`. -ENOENT if it does not exist (d says
 * so), -ELOOP for a symlink, -EFBIG, -EBADMSG as certs_from_pem(). */
int state_certs_load(StateStore *store, const char *name, STACK_OF(X509) **ret, Diag *d);

/* Writes certs as the PEM state file `name` (state_store_save(), atomically,
 * with `mode`). -EFBIG, writing nothing, when the PEM would be larger than
 * state_certs_load() reads back: a file written must never be one that then
 * reads as unusable. */
int state_certs_save(StateStore *store, const char *name, STACK_OF(X509) *certs, mode_t mode, Diag *d);
