/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-context.h: an open connection to the TPM (TCTI + ESYS), and the
 * translation of TSS2_RC codes into -errno plus readable text.
 *
 * The TCTI string is handed in ("device:/dev/tpmrm0" on a gateway,
 * "tabrmd:bus_type=session" in tests); nothing here picks one by itself.
 *
 * Error classes callers act on:
 *   -ENXIO    no TPM / TCTI could not connect, or the connection broke (the
 *             resource manager or the TPM went away): retry later. Its text
 *             starts with "TPM unavailable: ".
 *   -EBUSY    TPM asked to retry (RETRY, YIELDED, TESTING) or resource manager busy
 *   -EACCES   TPM is in dictionary-attack lockout and the object is DA-protected
 *   -EIO      any other TPM failure
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <tss2/tss2_esys.h>

#include "util/diag.h"

/* A persistent key opened on this connection (tpm-key.h), kept until it is
 * evicted or the connection closes, so that it is read from the TPM once. */
typedef struct TpmOpenKey {
        uint32_t handle;
        ESYS_TR obj;
} TpmOpenKey;

typedef struct TpmContext {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        struct ossl_lib_ctx_st *libctx; /* the "fleetid-tpm" provider's, once a key is loaded (tpm-provider.h) */
        struct ossl_provider_st *providers[2]; /* loaded into libctx: "default", "fleetid-tpm" */
        TpmOpenKey *open_keys;                 /* their ESYS handles are closed by Esys_Finalize */
        size_t n_open_keys;
} TpmContext;

int tpm_context_new(const char *tcti, TpmContext **ret, Diag *d);
TpmContext *tpm_context_free(TpmContext *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(TpmContext *, tpm_context_free);

/* Maps a TSS2_RC to -errno and records "what: <decoded rc>" in d. */
int tpm_rc_to_errno(TSS2_RC rc);
int tpm_diag(Diag *d, TSS2_RC rc, const char *what);

/* True when the error is worth retrying later rather than a hard failure. */
bool tpm_error_is_transient(int r);

/* Whether the TPM answers now, on a connection of its own (one
 * TPM2_GetCapability): 0, or -ENXIO ("TPM unavailable: ...") and the like. */
int tpm_probe(const char *tcti, Diag *d);

typedef struct TpmLockoutInfo {
        bool in_lockout;
        uint32_t counter; /* failed authorizations so far */
        uint32_t max_tries;
        uint32_t recovery_sec;
} TpmLockoutInfo;

/* Reads the dictionary-attack state (TPM2_GetCapability, no authorization). */
int tpm_get_lockout_info(TpmContext *t, TpmLockoutInfo *ret, Diag *d);
/* The same on a connection of its own, which also tells whether the TPM
 * answers now, as tpm_probe() does (one TPM2_GetCapability). */
int tpm_probe_lockout(const char *tcti, TpmLockoutInfo *ret, Diag *d);

/* Whether a persistent handle or NV index is populated: 1 yes, 0 no, <0 error. */
int tpm_handle_exists(TpmContext *t, uint32_t handle, Diag *d);

/* TPM2_PT_NV_BUFFER_MAX, the largest NV read/write chunk. */
int tpm_get_nv_buffer_max(TpmContext *t, uint32_t *ret, Diag *d);
