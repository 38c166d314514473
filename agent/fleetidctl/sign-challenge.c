/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "crypto/challenge.h"
#include "crypto/ossl-util.h"
#include "fleetidctl/bus.h"
#include "fleetidctl/sign-challenge.h"
#include "util/fileio.h"

/* The whole call, at most (the daemon queues calls while the TPM signs others). */
#define SIGN_CALL_TIMEOUT_USEC (60ULL * 1000000ULL)

SignChallengeArgs arg_sign = {};

/* The nonce from hex, at most CHALLENGE_NONCE_MAX bytes (the length is checked after). */
static int parse_nonce(const char *hex, uint8_t *out, size_t *ret_len) {
        size_t n = strlen(hex);

        if (n % 2 != 0 || n / 2 > CHALLENGE_NONCE_MAX + 1)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                char byte[3] = { hex[2 * i], hex[2 * i + 1], 0 };
                char *end;

                if (!isxdigit((unsigned char) byte[0]) || !isxdigit((unsigned char) byte[1]))
                        return -EINVAL;
                out[i] = (uint8_t) strtoul(byte, &end, 16);
        }
        *ret_len = n / 2;
        return 0;
}

int verb_sign_challenge(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *b64 = NULL, *pem = NULL;
        size_t pem_len = 0;
        uint8_t nonce[CHALLENGE_NONCE_MAX + 1];
        const void *sig;
        const char *alg;
        size_t nonce_len = 0, sig_len;
        FILE *f = stdout;
        Diag d = {};
        int r;

        if (!arg_sign.nonce_hex || !arg_sign.purpose) {
                fprintf(stderr, "fleetidctl: sign-challenge needs --nonce HEX and --purpose P\n");
                return 1;
        }
        if (parse_nonce(arg_sign.nonce_hex, nonce, &nonce_len) < 0) {
                fprintf(stderr, "fleetidctl: --nonce \"%.40s\" is not %d to %d bytes in hex\n",
                        arg_sign.nonce_hex, CHALLENGE_NONCE_MIN, CHALLENGE_NONCE_MAX);
                return 1;
        }
        r = challenge_check_nonce(nonce_len, &d);
        if (r >= 0)
                r = challenge_check_purpose(arg_sign.purpose, &d);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s\n", diag_text(&d, r));
                return 1;
        }

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: cannot connect to the system bus: %s\n", strerror(-r));
                return 1;
        }
        r = sd_bus_message_new_method_call(bus, &call, "org.fleetid.Agent1", "/org/fleetid/Agent1",
                                           "org.fleetid.Agent1", "SignChallenge");
        if (r >= 0)
                r = sd_bus_message_append_array(call, 'y', nonce, nonce_len);
        if (r >= 0)
                r = sd_bus_message_append(call, "s", arg_sign.purpose);
        if (r >= 0)
                r = arg_sign.birth ? sd_bus_message_append(call, "a{sv}", 1, "identity", "s", "birth")
                                   : sd_bus_message_append(call, "a{sv}", 0);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: cannot build the call: %s\n", strerror(-r));
                return 1;
        }
        r = sd_bus_call(bus, call, SIGN_CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: SignChallenge failed: %s: %s\n", error.name ?: "error",
                        error.message ?: strerror(-r));
                return 1;
        }
        r = sd_bus_message_read_array(reply, 'y', &sig, &sig_len);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &alg);
        if (r < 0 || sig_len == 0 || sig_len > CHALLENGE_SIGNATURE_MAX) {
                fprintf(stderr, "fleetidctl: fleetidd's answer does not parse\n");
                return 1;
        }
        b64 = malloc(4 * ((sig_len + 2) / 3) + 1);
        if (!b64)
                return 1;
        EVP_EncodeBlock((unsigned char *) b64, sig, (int) sig_len);
        printf("algorithm: %s\nsignature: %s\n", alg, b64);
        /* --out: the chain in memory first, then the file replaced at once
         * (write_file_atomic()), never left half-written. */
        if (arg_sign.out) {
                f = open_memstream(&pem, &pem_len);
                if (!f) {
                        fprintf(stderr, "fleetidctl: out of memory\n");
                        return 1;
                }
        }
        r = ctl_bus_write_pem(f, reply);
        if (r == 0)
                r = -EBADMSG; /* no certificate */
        if (f != stdout && fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && arg_sign.out)
                r = write_file_atomic(arg_sign.out, pem, pem_len, 0644);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: cannot write the chain%s%s: %s\n", arg_sign.out ? " to " : "",
                        arg_sign.out ?: "", strerror(-r));
                return 1;
        }
        return 0;
}
