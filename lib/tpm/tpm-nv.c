/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpm/tpm-nv.h"
#include "tpm/tpm-resource.h"

/* Opens the index (one TPM2_NV_ReadPublic) and, if ret_pub is not NULL, gives
 * the public area ESYS read doing so. */
static int nv_open(TpmContext *t, uint32_t index, ESYS_TR *ret, TPM2B_NV_PUBLIC *ret_pub, Diag *d) {
        ESYS_TR nv = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        rc = Esys_TR_FromTPMPublic(t->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
        if (tpm_rc_to_errno(rc) == -ENOENT)
                return diag_set(d, -ENOENT, "TPM NV index 0x%08x is not defined", index);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot open the TPM NV index");
        if (ret_pub) {
                r = tpm_resource_nv_public(t, nv, ret_pub, d);
                if (r < 0) {
                        Esys_TR_Close(t->esys, &nv);
                        return r;
                }
        }
        *ret = nv;
        return 0;
}

static int nv_undefine(TpmContext *t, uint32_t index, Diag *d) {
        ESYS_TR nv;
        TSS2_RC rc;
        int r;

        r = nv_open(t, index, &nv, NULL, d);
        if (r < 0)
                return r;
        rc = Esys_NV_UndefineSpace(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS) {
                Esys_TR_Close(t->esys, &nv);
                return tpm_diag(d, rc, "cannot delete the existing TPM NV index");
        }
        return 0;
}

int tpm_nv_store(TpmContext *t, uint32_t index, const uint8_t *data, size_t len, bool replace, bool lock,
                 Diag *d) {
        TPM2B_AUTH auth = {};
        TPM2B_NV_PUBLIC pub = {
                .nvPublic = {
                        .nvIndex = index,
                        .nameAlg = TPM2_ALG_SHA256,
                        .attributes = TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD |
                                      TPMA_NV_NO_DA | TPMA_NV_WRITEDEFINE |
                                      (TPM2_NT_ORDINARY << TPMA_NV_TPM2_NT_SHIFT),
                        .dataSize = (UINT16) len,
                },
        };
        ESYS_TR nv = ESYS_TR_NONE;
        uint32_t chunk;
        TSS2_RC rc;
        int r;

        if (len == 0 || len > TPM_NV_CERT_MAX)
                return diag_set(d, -EFBIG, "%zu bytes do not fit an NV certificate index (1..%u)", len,
                                TPM_NV_CERT_MAX);

        r = tpm_handle_exists(t, index, d);
        if (r < 0)
                return r;
        if (r > 0) {
                if (!replace)
                        return diag_set(d, -EEXIST, "TPM NV index 0x%08x is already defined", index);
                r = nv_undefine(t, index, d);
                if (r < 0)
                        return r;
        }

        r = tpm_get_nv_buffer_max(t, &chunk, d);
        if (r < 0)
                return r;
        if (chunk == 0 || chunk > sizeof(((TPM2B_MAX_NV_BUFFER *) NULL)->buffer))
                chunk = sizeof(((TPM2B_MAX_NV_BUFFER *) NULL)->buffer);

        rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                 &auth, &pub, &nv);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot define the TPM NV index");

        for (size_t off = 0; off < len; off += chunk) {
                TPM2B_MAX_NV_BUFFER buf = {};

                buf.size = (UINT16) (len - off < chunk ? len - off : chunk);
                memcpy(buf.buffer, data + off, buf.size);
                rc = Esys_NV_Write(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, &buf, (UINT16) off);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tpm_diag(d, rc, "cannot write the TPM NV index");
                        /* Do not leave a half-written certificate behind. */
                        Esys_NV_UndefineSpace(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                              ESYS_TR_NONE);
                        return r;
                }
        }

        if (lock) {
                rc = Esys_NV_WriteLock(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                       ESYS_TR_NONE);
                if (rc != TSS2_RC_SUCCESS) {
                        Esys_TR_Close(t->esys, &nv);
                        return tpm_diag(d, rc, "certificate written, but cannot write-lock the TPM NV index");
                }
        }
        Esys_TR_Close(t->esys, &nv);
        return 0;
}

int tpm_nv_load(TpmContext *t, uint32_t index, size_t max, uint8_t **ret, size_t *ret_len, Diag *d) {
        TPM2B_NV_PUBLIC pub;
        _cleanup_free_ uint8_t *out = NULL;
        ESYS_TR nv;
        uint32_t chunk;
        size_t len;
        TSS2_RC rc;
        int r;

        r = tpm_get_nv_buffer_max(t, &chunk, d);
        if (r < 0)
                return r;
        if (chunk == 0 || chunk > sizeof(((TPM2B_MAX_NV_BUFFER *) NULL)->buffer))
                chunk = sizeof(((TPM2B_MAX_NV_BUFFER *) NULL)->buffer);

        r = nv_open(t, index, &nv, &pub, d);
        if (r < 0)
                return r;
        len = pub.nvPublic.dataSize;
        if (len == 0 || len > max) {
                Esys_TR_Close(t->esys, &nv);
                return diag_set(d, -EFBIG, "TPM NV index 0x%08x holds %zu bytes, expected 1..%zu", index,
                                len, max);
        }

        out = malloc(len + 1);
        if (!out) {
                Esys_TR_Close(t->esys, &nv);
                return -ENOMEM;
        }
        for (size_t off = 0; off < len; off += chunk) {
                TPM2B_MAX_NV_BUFFER *buf = NULL;
                UINT16 want = (UINT16) (len - off < chunk ? len - off : chunk);

                rc = Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, want,
                                  (UINT16) off, &buf);
                if (rc != TSS2_RC_SUCCESS) {
                        Esys_TR_Close(t->esys, &nv);
                        return tpm_diag(d, rc, "cannot read the TPM NV index");
                }
                if (buf->size != want) {
                        Esys_Free(buf);
                        Esys_TR_Close(t->esys, &nv);
                        return diag_set(d, -EIO, "short read from TPM NV index 0x%08x", index);
                }
                memcpy(out + off, buf->buffer, want);
                Esys_Free(buf);
        }
        Esys_TR_Close(t->esys, &nv);
        out[len] = 0;
        *ret = TAKE_PTR(out);
        *ret_len = len;
        return 0;
}

int tpm_nv_is_write_locked(TpmContext *t, uint32_t index, Diag *d) {
        TPM2B_NV_PUBLIC pub;
        ESYS_TR nv;
        int r;

        r = nv_open(t, index, &nv, &pub, d);
        if (r < 0)
                return r;
        r = !!(pub.nvPublic.attributes & TPMA_NV_WRITELOCKED);
        Esys_TR_Close(t->esys, &nv);
        return r;
}
