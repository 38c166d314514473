/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * challenge-signer: signs the SignChallenge digest (lib/crypto/challenge.h)
 * with a TPM key through the fleetid-tpm provider, for
 * tests/integration/test-sign-challenge.sh. This directory is only built with
 * -Dtests=true; never installed.
 *
 *   challenge-signer TCTI HANDLE NONCE_HEX PURPOSE SIG_FILE [pss]
 *
 * Writes the signature (DER for ECDSA) to SIG_FILE and prints the algorithm
 * name. Exit status 0, or 1 with the Diag on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/challenge.h"
#include "crypto/ossl-util.h"
#include "tpm/tpm-context.h"
#include "tpm/tpm-provider.h"

static int parse_hex(const char *hex, uint8_t *out, size_t max, size_t *ret_len) {
        size_t n = strlen(hex);

        if (n % 2 != 0 || n / 2 > max)
                return -1;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;

                if (sscanf(hex + 2 * i, "%2x", &v) != 1)
                        return -1;
                out[i] = (uint8_t) v;
        }
        *ret_len = n / 2;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(tpm_context_freep) TpmContext *t = NULL;
        uint8_t nonce[256], *sig = NULL;
        EVP_PKEY *key = NULL;
        const char *alg = NULL;
        size_t nonce_len, sig_len = 0;
        Diag d = {};
        FILE *f;
        int r;

        if (argc < 6 || argc > 7 || parse_hex(argv[3], nonce, sizeof(nonce), &nonce_len) < 0) {
                fprintf(stderr, "usage: challenge-signer TCTI HANDLE NONCE_HEX PURPOSE SIG_FILE [pss]\n");
                return 1;
        }
        r = tpm_context_new(argv[1], &t, &d);
        if (r >= 0)
                r = tpm_provider_load_key(t, (uint32_t) strtoul(argv[2], NULL, 0), &key, &d);
        if (r >= 0)
                r = challenge_sign(key, nonce, nonce_len, argv[4], argc == 7 && strcmp(argv[6], "pss") == 0,
                                   &sig, &sig_len, &alg, &d);
        EVP_PKEY_free(key); /* before the TpmContext */
        if (r < 0) {
                fprintf(stderr, "challenge-signer: %s\n", diag_text(&d, r));
                return 1;
        }
        f = fopen(argv[5], "we");
        if (!f || fwrite(sig, 1, sig_len, f) != sig_len || fclose(f) != 0) {
                fprintf(stderr, "challenge-signer: cannot write %s\n", argv[5]);
                free(sig);
                return 1;
        }
        free(sig);
        printf("%s\n", alg);
        return 0;
}
