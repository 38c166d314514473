/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * base32.c: RFC 4648 base32, lowercase, unpadded.
 */
#include <errno.h>

#include "util/base32.h"

int base32_encode_lower(const uint8_t *in, size_t len, char *out, size_t out_size) {
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
        size_t o = 0;
        unsigned bits = 0;
        uint32_t acc = 0;

        if (len > (SIZE_MAX - 4) / 8 || out_size < BASE32_LEN(len) + 1)
                return -ENOBUFS;
        for (size_t i = 0; i < len; i++) {
                acc = (acc << 8 | in[i]) & 0xfff; /* at most 4 + 8 bits are pending */
                bits += 8;
                while (bits >= 5) {
                        bits -= 5;
                        out[o++] = alphabet[(acc >> bits) & 0x1f];
                }
        }
        if (bits > 0)
                out[o++] = alphabet[(acc << (5 - bits)) & 0x1f];
        out[o] = '\0';
        return 0;
}
