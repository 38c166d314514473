/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-evidence: evidence_parse() on any bytes (the evidence argument of
 * RequestSensorCertificate). What it accepts has 1..EVIDENCE_CERTS_MAX
 * certificates, a printable algorithm name and a bounded signature, and
 * encodes back (evidence_encode()) into evidence that parses to the same;
 * what it refuses yields nothing and says why.
 */
#include <errno.h>
#include <string.h>

#include "broker/evidence.h"
#include "crypto/challenge.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(evidence_freep) Evidence *e = NULL, *again = NULL;
        _cleanup_free_ uint8_t *enc = NULL;
        size_t enc_len;
        Diag d = {};
        int r;

        r = evidence_parse(data, size, &e, &d);
        if (r < 0) {
                FUZZ_CHECK(r == -EFBIG || r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(!e);
                FUZZ_CHECK(r == -ENOMEM || d.text[0] != 0);
                return 0;
        }
        FUZZ_CHECK(size <= EVIDENCE_MAX);
        FUZZ_CHECK(sk_X509_num(e->chain) >= 1 && sk_X509_num(e->chain) <= EVIDENCE_CERTS_MAX);
        FUZZ_CHECK(strlen(e->alg) >= 1 && strlen(e->alg) <= EVIDENCE_ALG_MAX);
        FUZZ_CHECK(e->signature_len >= 1 && e->signature_len <= CHALLENGE_SIGNATURE_MAX);

        r = evidence_encode(e->chain, e->alg, e->signature, e->signature_len, &enc, &enc_len, &d);
        if (r == -EINVAL) /* a certificate that re-encodes longer than EVIDENCE_CERT_MAX */
                return 0;
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(evidence_parse(enc, enc_len, &again, &d) == 0);
        FUZZ_CHECK(sk_X509_num(again->chain) == sk_X509_num(e->chain));
        for (int i = 0; i < sk_X509_num(e->chain); i++)
                FUZZ_CHECK(X509_cmp(sk_X509_value(again->chain, i), sk_X509_value(e->chain, i)) == 0);
        FUZZ_CHECK(strcmp(again->alg, e->alg) == 0);
        FUZZ_CHECK(again->signature_len == e->signature_len);
        FUZZ_CHECK(memcmp(again->signature, e->signature, e->signature_len) == 0);
        return 0;
}
