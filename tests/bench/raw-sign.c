/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * raw-sign: the raw TPM signature rate, the baseline of
 * tests/bench/sign-rate.sh: one process, one ESYS connection, the key opened
 * once, then COUNT TPM2_Sign of a SHA-256 digest in a loop (lib/tpm's
 * tpm_sign_digest(), the call fleetidd's signer makes, with the scheme the
 * signer uses for the key type: ECDSA for EC, RSASSA for RSA).
 *
 *   raw-sign TCTI HANDLE COUNT
 *
 * Prints "COUNT SECONDS CPU_SECONDS": the wall time of the loop and the CPU
 * time this process spent in it (ESYS marshalling, the TCTI's system calls:
 * what fleetidd's signer spends on the same call). Exit 0, or 1 with the
 * reason on stderr. Built with the tests, never installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tpm/tpm-context.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-sign.h"

int main(int argc, char **argv) {
        _cleanup_(tpm_context_freep) TpmContext *t = NULL;
        EVP_PKEY *pub = NULL;
        ESYS_TR obj;
        TpmSignScheme scheme;
        struct timespec t0, t1, c0, c1;
        uint8_t digest[32] = {}, sig[1024];
        size_t sig_len;
        unsigned long count;
        Diag d = {};
        int r;

        if (argc != 4 || (count = strtoul(argv[3], NULL, 10)) == 0 || count > 1000000) {
                fprintf(stderr, "usage: raw-sign TCTI HANDLE COUNT (1..1000000)\n");
                return 1;
        }
        r = tpm_context_new(argv[1], &t, &d);
        if (r >= 0)
                r = tpm_key_open(t, (uint32_t) strtoul(argv[2], NULL, 0), &obj, &pub, NULL, &d);
        if (r < 0) {
                fprintf(stderr, "raw-sign: %s\n", diag_text(&d, r));
                return 1;
        }
        scheme = EVP_PKEY_is_a(pub, "RSA") ? TPM_SIGN_RSASSA : TPM_SIGN_ECDSA;
        EVP_PKEY_free(pub);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned long i = 0; i < count; i++) {
                memcpy(digest, &i, sizeof(i)); /* a different digest each time, as challenges are */
                r = tpm_sign_digest(t->esys, obj, scheme, TPM2_ALG_SHA256, digest, sizeof(digest), sig,
                                    &sig_len, sizeof(sig), &d);
                if (r < 0) {
                        fprintf(stderr, "raw-sign: signature %lu: %s\n", i, diag_text(&d, r));
                        return 1;
                }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        printf("%lu %.6f %.6f\n", count,
               (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9,
               (double) (c1.tv_sec - c0.tv_sec) + (double) (c1.tv_nsec - c0.tv_nsec) / 1e9);
        return 0;
}
