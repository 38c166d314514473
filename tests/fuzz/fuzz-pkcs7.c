/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-pkcs7: pkcs7_parse_certs() on any bytes (the body of /cacerts,
 * /simpleenroll and /simplereenroll: base64, PEM or DER). A body it accepts
 * holds 1..PKCS7_MAX_CERTS certificates, and rebuilding a certs-only message
 * from them parses back to the same certificates in the same order.
 */
#include <errno.h>

#include "crypto/ossl-util.h"
#include "crypto/pkcs7.h"
#include "fuzz.h"

static void check_rebuild(STACK_OF(X509) *certs) {
        _cleanup_free_ uint8_t *der = NULL;
        STACK_OF(X509) *again = NULL;
        size_t der_len = 0;
        Diag d = {};

        FUZZ_CHECK(pkcs7_build_certs(certs, &der, &der_len) == 0);
        FUZZ_CHECK(pkcs7_parse_certs(der, der_len, &again, &d) == 0);
        FUZZ_CHECK(sk_X509_num(again) == sk_X509_num(certs));
        for (int i = 0; i < sk_X509_num(certs); i++)
                FUZZ_CHECK(X509_cmp(sk_X509_value(again, i), sk_X509_value(certs, i)) == 0);
        OSSL_STACK_OF_X509_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        STACK_OF(X509) *certs = NULL;
        Diag d = {};
        int r;

        r = pkcs7_parse_certs(data, size, &certs, &d);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(!certs);
                FUZZ_CHECK(r == -ENOMEM || d.text[0] != 0);
                return 0;
        }
        FUZZ_CHECK(sk_X509_num(certs) >= 1 && sk_X509_num(certs) <= PKCS7_MAX_CERTS);
        check_rebuild(certs);
        OSSL_STACK_OF_X509_free(certs);
        return 0;
}
