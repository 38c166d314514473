/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-resource.h: what ESYS already knows about an object it opened.
 *
 * Esys_TR_FromTPMPublic() sends one TPM2_ReadPublic (or TPM2_NV_ReadPublic)
 * and keeps the answer in the ESYS resource. tpm2-tss 3.2 has no getter for
 * it, but Esys_TR_Serialize() writes it out in the format tpm2-tools' .tr
 * files use (TPM handle, TPM2B_NAME, resource type, then the TPM2B_PUBLIC or
 * TPM2B_NV_PUBLIC). These functions read the public area from there instead
 * of asking the TPM a second time; if the serialized resource is not of that
 * shape (another tpm2-tss), they ask the TPM as before.
 */
#pragma once

#include "tpm/tpm-context.h"

/* The public area of the key or object obj stands for. */
int tpm_resource_public(TpmContext *t, ESYS_TR obj, TPM2B_PUBLIC *ret, Diag *d);

/* The public area of the NV index obj stands for. */
int tpm_resource_nv_public(TpmContext *t, ESYS_TR obj, TPM2B_NV_PUBLIC *ret, Diag *d);
