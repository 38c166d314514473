/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-provider.h: TPM keys as OpenSSL EVP_PKEYs, through the tpm2-openssl provider.
 *
 * tpm_provider_setup() opens a fresh OpenSSL library context set up the one way
 * that makes TLS 1.2 and 1.3 client authentication work with a TPM key (see
 * docs/tpm-openssl.md): the "default" provider first, then "tpm2", and the
 * property query "?tpm2.signature" so that only signatures go to the TPM. It
 * makes that context the calling thread's default (libcurl creates its
 * SSL_CTX in the default context and cannot be handed another one) until
 * tpm_provider_teardown().
 *
 * The tpm2 provider opens its own TPM connection when it is initialised and
 * never re-opens it: after the resource manager restarts, or after a TPM I/O
 * error, that connection is dead for good. OpenSSL 3.0 initialises a provider
 * only once per library context (unload + load does not), so a TPM that comes
 * back is reached again only through a new context: one per attempt, set up
 * before and torn down after it. Every object made while it is the default
 * (keys, certificates, SSL_CTXs, curl handles) must be freed before the
 * teardown. The programs in agent/ call these; nothing in lib/ does.
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/provider.h>
#include <stdint.h>

#include "util/diag.h"

typedef struct TpmProviders {
        OSSL_LIB_CTX *libctx;   /* the context the providers live in */
        OSSL_LIB_CTX *previous; /* the thread's default library context before */
        OSSL_PROVIDER *base;    /* "default" */
        OSSL_PROVIDER *tpm2;
} TpmProviders;

/* A new library context with both providers, made the thread's default. On a
 * TPM that cannot be reached: -ENXIO ("TPM unavailable: ..."). */
int tpm_provider_setup(const char *tcti, TpmProviders *ret, Diag *d);
/* Restores the previous default context, closes the provider's TPM connection
 * and frees the context. Accepts a zeroed TpmProviders; leaves it zeroed. */
void tpm_provider_teardown(TpmProviders *p);

/* Loads the persistent key at handle as a private EVP_PKEY whose operations run
 * in the TPM. */
int tpm_provider_load_key(uint32_t handle, EVP_PKEY **ret, Diag *d);
