/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-nv.h: certificates kept in TPM NV indices (the IDevID certificate).
 *
 * The index is defined by the owner, readable with its (empty) own auth or by
 * the owner, writable by the owner, and can be write-locked for good
 * (TPMA_NV_WRITEDEFINE: once locked, only deleting the index unlocks it).
 * Reads and writes go in chunks of TPM2_PT_NV_BUFFER_MAX.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tpm/tpm-context.h"

#define TPM_NV_CERT_MAX 4096u /* largest certificate fleetid stores or accepts from NV */

/* Writes data to a new index, defining it with exactly len bytes. If the index
 * exists: -EEXIST unless replace (then it is undefined first, which also removes
 * a write lock: callers check tpm_nv_is_write_locked() first and decide).
 * lock: write-lock. */
int tpm_nv_store(TpmContext *t, uint32_t index, const uint8_t *data, size_t len, bool replace, bool lock,
                 Diag *d);

/* Reads the whole index (bounded by max). -ENOENT if it is not defined. */
int tpm_nv_load(TpmContext *t, uint32_t index, size_t max, uint8_t **ret, size_t *ret_len, Diag *d);

/* 1 if the index is write-locked, 0 if not, -ENOENT if absent. */
int tpm_nv_is_write_locked(TpmContext *t, uint32_t index, Diag *d);
