/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tpm/tpm-context.h"
#include "tpm/tpm-provider.h"

int tpm_context_new(const char *tcti, TpmContext **ret, Diag *d) {
        _cleanup_(tpm_context_freep) TpmContext *t = NULL;
        TSS2_RC rc;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
        if (rc != TSS2_RC_SUCCESS)
                return diag_set(d, -ENXIO, "TPM unavailable: cannot reach it through TCTI '%s': %s",
                                tcti ? tcti : "(default)", Tss2_RC_Decode(rc));

        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return diag_set(d, -ENXIO,
                                "TPM unavailable: cannot initialise the TPM software stack on '%s': %s",
                                tcti ? tcti : "(default)", Tss2_RC_Decode(rc));

        *ret = TAKE_PTR(t);
        return 0;
}

TpmContext *tpm_context_free(TpmContext *t) {
        if (!t)
                return NULL;
        tpm_provider_release(t);
        if (t->esys)
                Esys_Finalize(&t->esys);
        if (t->tcti)
                Tss2_TctiLdr_Finalize(&t->tcti);
        free(t->open_keys);
        free(t);
        return NULL;
}

int tpm_rc_to_errno(TSS2_RC rc) {
        TSS2_RC base;

        if (rc == TSS2_RC_SUCCESS)
                return 0;

        /* TPM codes, whether straight from the TPM or relayed by the resource manager. */
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER ||
            (rc & TSS2_RC_LAYER_MASK) == TSS2_RESMGR_TPM_RC_LAYER) {
                TSS2_RC code = rc & 0xfff;

                /* Format-one codes carry a parameter/handle/session number: strip it. */
                if (code & TPM2_RC_FMT1)
                        code &= 0x0bf;
                switch (code) {
                case TPM2_RC_RETRY:
                case TPM2_RC_YIELDED:
                case TPM2_RC_TESTING:
                case TPM2_RC_NV_RATE:
                        return -EBUSY;
                case TPM2_RC_LOCKOUT:
                        return -EACCES;
                case TPM2_RC_NV_DEFINED:
                        return -EEXIST;
                case TPM2_RC_NV_LOCKED:
                        return -EROFS;
                case TPM2_RC_NV_SPACE:
                case TPM2_RC_OBJECT_MEMORY:
                case TPM2_RC_SESSION_MEMORY:
                case TPM2_RC_MEMORY:
                        return -ENOSPC;
                case TPM2_RC_HANDLE & 0x0bf:
                        return -ENOENT;
                default:
                        return -EIO;
                }
        }

        base = rc & ~TSS2_RC_LAYER_MASK;
        switch (base) {
        case TSS2_BASE_RC_NO_CONNECTION:
        case TSS2_BASE_RC_IO_ERROR:
                return -ENXIO;
        case TSS2_BASE_RC_TRY_AGAIN:
                return -EBUSY;
        case TSS2_BASE_RC_NOT_IMPLEMENTED:
                return -EOPNOTSUPP;
        case TSS2_BASE_RC_MEMORY:
                return -ENOMEM;
        default:
                /* The resource manager's own failures (queue full, internal error). */
                if ((rc & TSS2_RC_LAYER_MASK) == TSS2_RESMGR_RC_LAYER)
                        return -EBUSY;
                return -EIO;
        }
}

int tpm_diag(Diag *d, TSS2_RC rc, const char *what) {
        int r = tpm_rc_to_errno(rc);

        if (r == -EACCES)
                return diag_set(d, r, "%s: the TPM is in dictionary-attack lockout (%s)", what,
                                Tss2_RC_Decode(rc));
        if (r == -ENXIO)
                return diag_set(d, r, "TPM unavailable: %s: %s", what, Tss2_RC_Decode(rc));
        return diag_set(d, r, "%s: %s", what, Tss2_RC_Decode(rc));
}

bool tpm_error_is_transient(int r) {
        return r == -ENXIO || r == -EBUSY || r == -EACCES || r == -ENOSPC;
}

static int tpm_get_property(TpmContext *t, TPM2_PT property, uint32_t *ret, Diag *d) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        TSS2_RC rc;
        int r = -ENODATA;

        rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                property, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot read TPM properties");

        if (cap->data.tpmProperties.count >= 1 && cap->data.tpmProperties.tpmProperty[0].property == property) {
                *ret = cap->data.tpmProperties.tpmProperty[0].value;
                r = 0;
        } else
                diag_set(d, r, "TPM does not report property 0x%x", (unsigned) property);
        Esys_Free(cap);
        return r;
}

int tpm_probe(const char *tcti, Diag *d) {
        _cleanup_(tpm_context_freep) TpmContext *t = NULL;
        uint32_t family;
        int r;

        r = tpm_context_new(tcti, &t, d);
        if (r < 0)
                return r;
        return tpm_get_property(t, TPM2_PT_FAMILY_INDICATOR, &family, d);
}

int tpm_get_lockout_info(TpmContext *t, TpmLockoutInfo *ret, Diag *d) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TpmLockoutInfo info = {};
        TPMI_YES_NO more;
        bool seen = false;
        TSS2_RC rc;

        /* One GetCapability: TPM2_PT_PERMANENT through TPM2_PT_LOCKOUT_RECOVERY are adjacent. */
        rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                TPM2_PT_PERMANENT, TPM2_PT_LOCKOUT_RECOVERY - TPM2_PT_PERMANENT + 1, &more,
                                &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot read the TPM's dictionary-attack state");
        for (UINT32 i = 0; i < cap->data.tpmProperties.count; i++) {
                const TPMS_TAGGED_PROPERTY *p = &cap->data.tpmProperties.tpmProperty[i];

                switch (p->property) {
                case TPM2_PT_PERMANENT:
                        info.in_lockout = p->value & TPMA_PERMANENT_INLOCKOUT;
                        seen = true;
                        break;
                case TPM2_PT_LOCKOUT_COUNTER:
                        info.counter = p->value;
                        break;
                case TPM2_PT_MAX_AUTH_FAIL:
                        info.max_tries = p->value;
                        break;
                case TPM2_PT_LOCKOUT_INTERVAL:
                        info.recovery_sec = p->value;
                        break;
                default:
                        break;
                }
        }
        Esys_Free(cap);
        if (!seen)
                return diag_set(d, -ENODATA, "the TPM does not report its permanent attributes");
        *ret = info;
        return 0;
}

int tpm_probe_lockout(const char *tcti, TpmLockoutInfo *ret, Diag *d) {
        _cleanup_(tpm_context_freep) TpmContext *t = NULL;
        int r;

        r = tpm_context_new(tcti, &t, d);
        if (r < 0)
                return r;
        return tpm_get_lockout_info(t, ret, d);
}

int tpm_handle_exists(TpmContext *t, uint32_t handle, Diag *d) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        TSS2_RC rc;
        int found;

        rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, handle,
                                1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot list TPM handles");
        found = cap->data.handles.count >= 1 && cap->data.handles.handle[0] == handle;
        Esys_Free(cap);
        return found;
}

int tpm_get_nv_buffer_max(TpmContext *t, uint32_t *ret, Diag *d) {
        return tpm_get_property(t, TPM2_PT_NV_BUFFER_MAX, ret, d);
}
