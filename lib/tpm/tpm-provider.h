/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-provider.h: TPM keys as OpenSSL EVP_PKEYs, through the tpm2-openssl provider.
 *
 * tpm_provider_setup() configures the process's default OpenSSL library context
 * the one way that makes TLS 1.2 and 1.3 client authentication work with a TPM
 * key (see docs/tpm-openssl.md): the "default" provider first, then "tpm2", and
 * the property query "?tpm2.signature" so that only signatures go to the TPM.
 * It is process-wide by nature (libcurl's TLS uses the default context), so the
 * programs in agent/ call it once at start-up; nothing in lib/ calls it.
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/provider.h>
#include <stdint.h>

#include "util/diag.h"

typedef struct TpmProviders {
        OSSL_PROVIDER *base; /* "default" */
        OSSL_PROVIDER *tpm2;
} TpmProviders;

/* Loads both providers; unload them with tpm_provider_teardown() before exit
 * (the tpm2 provider holds a TPM connection of its own). */
int tpm_provider_setup(const char *tcti, TpmProviders *ret, Diag *d);
void tpm_provider_teardown(TpmProviders *p);

/* Loads the persistent key at handle as a private EVP_PKEY whose operations run
 * in the TPM. */
int tpm_provider_load_key(uint32_t handle, EVP_PKEY **ret, Diag *d);
