/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "crypto/certcheck.h"
#include "store/state-certs.h"
#include "util/macro.h"

int state_certs_load(StateStore *store, const char *name, STACK_OF(X509) **ret, Diag *d) {
        _cleanup_free_ char *text = NULL, *what = NULL;
        size_t len = 0;
        int r;

        r = state_store_load(store, name, CERT_PEM_FILE_MAX, &text, &len, d);
        if (r < 0)
                return r;
        if (asprintf(&what, "%s/%s", state_store_path(store), name) < 0)
                return -ENOMEM;
        return certs_from_pem(text, len, what, ret, d);
}

int state_certs_save(StateStore *store, const char *name, STACK_OF(X509) *certs, mode_t mode, Diag *d) {
        _cleanup_free_ char *pem = NULL;
        size_t len;
        int r;

        r = certs_to_pem(certs, &pem, &len);
        if (r < 0)
                return diag_set(d, r, "cannot encode %s/%s as PEM", state_store_path(store), name);
        if (len > CERT_PEM_FILE_MAX)
                return diag_set(d, -EFBIG,
                                "%s/%s would be %zu bytes of PEM, more than the %u it is read back with; not "
                                "written",
                                state_store_path(store), name, len, CERT_PEM_FILE_MAX);
        return state_store_save(store, name, pem, len, mode, d);
}
