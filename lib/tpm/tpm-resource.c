/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <tss2/tss2_mu.h>

#include "tpm/tpm-resource.h"

/* IESYSC_RESOURCE_TYPE values of tpm2-tss (esys_types.h, not installed). */
#define RESOURCE_KEY 1u
#define RESOURCE_NV 2u

/* Reads the public area of type `type` (RESOURCE_KEY: a TPM2B_PUBLIC into
 * ret, RESOURCE_NV: a TPM2B_NV_PUBLIC) from obj's serialized resource. False
 * if the resource is not of that shape for obj's TPM handle. */
static bool resource_public(TpmContext *t, ESYS_TR obj, uint32_t type, void *ret) {
        _cleanup_free_ uint8_t *buf = NULL;
        TPM2_HANDLE handle = 0, tpm_handle = 0;
        TPM2B_NAME name;
        uint32_t got_type = 0;
        size_t size = 0, offset = 0;
        TSS2_RC rc;

        if (Esys_TR_GetTpmHandle(t->esys, obj, &tpm_handle) != TSS2_RC_SUCCESS ||
            Esys_TR_Serialize(t->esys, obj, &buf, &size) != TSS2_RC_SUCCESS)
                return false;
        if (Tss2_MU_TPM2_HANDLE_Unmarshal(buf, size, &offset, &handle) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_NAME_Unmarshal(buf, size, &offset, &name) != TSS2_RC_SUCCESS ||
            Tss2_MU_UINT32_Unmarshal(buf, size, &offset, &got_type) != TSS2_RC_SUCCESS ||
            handle != tpm_handle || got_type != type || name.size == 0)
                return false;
        if (type == RESOURCE_KEY)
                rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, size, &offset, ret);
        else
                rc = Tss2_MU_TPM2B_NV_PUBLIC_Unmarshal(buf, size, &offset, ret);
        /* The public area is the last field: anything after it is another format. */
        return rc == TSS2_RC_SUCCESS && offset == size;
}

int tpm_resource_public(TpmContext *t, ESYS_TR obj, TPM2B_PUBLIC *ret, Diag *d) {
        TPM2B_PUBLIC pub = {}, *read = NULL;
        TSS2_RC rc;

        if (resource_public(t, obj, RESOURCE_KEY, &pub) && pub.size > 0) {
                *ret = pub;
                return 0;
        }
        rc = Esys_ReadPublic(t->esys, obj, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &read, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot read the TPM key's public part");
        *ret = *read;
        Esys_Free(read);
        return 0;
}

int tpm_resource_nv_public(TpmContext *t, ESYS_TR obj, TPM2B_NV_PUBLIC *ret, Diag *d) {
        TPM2B_NV_PUBLIC pub = {}, *read = NULL;
        TSS2_RC rc;

        if (resource_public(t, obj, RESOURCE_NV, &pub) && pub.size > 0) {
                *ret = pub;
                return 0;
        }
        rc = Esys_NV_ReadPublic(t->esys, obj, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &read, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot read the TPM NV index's attributes");
        *ret = *read;
        Esys_Free(read);
        return 0;
}
