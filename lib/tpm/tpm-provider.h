/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-provider.h: TPM keys as OpenSSL EVP_PKEYs, through fleetid's own
 * OpenSSL provider "fleetid-tpm".
 *
 * Such a key signs with one TPM2_Sign on fleetid's ESYS connection
 * (tpm-sign.h); everything else (hashing, every signature verification, key
 * exchange, random numbers) stays in OpenSSL's default provider. The private
 * key cannot be exported: OpenSSL therefore runs a signature with the key in
 * the provider that holds it, while the process-wide defaults are untouched
 * (docs/tpm-openssl.md says why this replaced the tpm2-openssl provider).
 *
 * The provider lives in a library context of the TpmContext's own, made at the
 * first key loaded and freed with the TpmContext. Keys keep pointers into the
 * TpmContext: every EVP_PKEY loaded here, and whatever holds a reference to it
 * (an SSL_CTX, a curl handle), must be freed before the TpmContext.
 */
#pragma once

#include <openssl/evp.h>
#include <stdint.h>

#include "tpm/tpm-context.h"
#include "util/diag.h"

/* Loads the persistent key at handle as a private EVP_PKEY whose signatures
 * run in the TPM (one TPM2_ReadPublic, none if the key was already read or
 * created through t: tpm_key_open()). -ENOENT if no key is there. */
int tpm_provider_load_key(TpmContext *t, uint32_t handle, EVP_PKEY **ret, Diag *d);

/* Frees the TpmContext's library context (tpm_context_free() calls it). */
void tpm_provider_release(TpmContext *t);
