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
