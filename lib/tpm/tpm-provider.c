/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <stdio.h>
#include <stdlib.h>

#include "tpm/tpm-provider.h"
#include "util/macro.h"

int tpm_provider_setup(const char *tcti, TpmProviders *ret, Diag *d) {
        _cleanup_(tpm_provider_teardown) TpmProviders p = {};

        /* The tpm2 provider reads its TCTI from the environment when it
         * initialises. Set only when it differs: a resolver thread libcurl left
         * behind may be reading the environment. */
        if (tcti && !streq_ptr(getenv("TPM2OPENSSL_TCTI"), tcti) && setenv("TPM2OPENSSL_TCTI", tcti, 1) < 0)
                return diag_set(d, -errno, "cannot set TPM2OPENSSL_TCTI");

        /* The errors are drained (into d) before the cleanup unloads the
         * providers, whose reason strings go with them. */
        p.libctx = OSSL_LIB_CTX_new();
        if (!p.libctx)
                return diag_set_ssl(d, -ENOMEM, "cannot create an OpenSSL library context");
        p.base = OSSL_PROVIDER_load(p.libctx, "default");
        if (!p.base)
                return diag_set_ssl(d, -ENOENT, "cannot load OpenSSL's default provider");
        /* Its initialisation connects to the TPM and asks for its capabilities. */
        p.tpm2 = OSSL_PROVIDER_load(p.libctx, "tpm2");
        if (!p.tpm2)
                return diag_set_ssl(d, -ENXIO,
                                    "TPM unavailable: cannot load the tpm2 OpenSSL provider through '%s' "
                                    "(is the TPM reachable, is tpm2-openssl installed?)",
                                    tcti ? tcti : "(default)");
        if (!EVP_set_default_properties(p.libctx, "?tpm2.signature"))
                return diag_set_ssl(d, -EIO, "cannot set the OpenSSL property query");
        p.previous = OSSL_LIB_CTX_set0_default(p.libctx);
        if (!p.previous)
                return diag_set_ssl(d, -EIO, "cannot make the tpm2 library context the default");
        *ret = p;
        p = (TpmProviders) {};
        return 0;
}

void tpm_provider_teardown(TpmProviders *p) {
        if (!p)
                return;
        if (p->previous)
                (void) OSSL_LIB_CTX_set0_default(p->previous);
        /* Unloading the last reference runs the provider's teardown: Esys_Finalize. */
        if (p->tpm2)
                OSSL_PROVIDER_unload(p->tpm2);
        if (p->base)
                OSSL_PROVIDER_unload(p->base);
        OSSL_LIB_CTX_free(p->libctx);
        *p = (TpmProviders) {};
}

int tpm_provider_load_key(uint32_t handle, EVP_PKEY **ret, Diag *d) {
        OSSL_STORE_CTX *store;
        EVP_PKEY *pkey = NULL;
        char uri[32];

        snprintf(uri, sizeof(uri), "handle:0x%08x", handle);
        store = OSSL_STORE_open_ex(uri, NULL, "provider=tpm2", NULL, NULL, NULL, NULL, NULL);
        if (!store)
                return diag_set_ssl(d, -ENOENT, "cannot open TPM key %s through the tpm2 provider", uri);

        while (!pkey && !OSSL_STORE_eof(store)) {
                OSSL_STORE_INFO *info = OSSL_STORE_load(store);

                if (!info)
                        break;
                if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
                        pkey = OSSL_STORE_INFO_get1_PKEY(info);
                OSSL_STORE_INFO_free(info);
        }
        OSSL_STORE_close(store);
        if (!pkey)
                return diag_set_ssl(d, -ENOENT, "TPM key %s could not be loaded as a private key", uri);
        *ret = pkey;
        return 0;
}
