/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <stdint.h>

#include "util/base64.h"
#include "util/macro.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of an alphabet character, -1 for anything else (including '='). */
static int decode_char(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

static bool is_base64_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t n = 0, o = 0, pad = 0;
        uint32_t acc = 0;

        if (!in && len > 0)
                return -EINVAL;

        /* Pass 1: count the significant characters, so the output is sized exactly. */
        for (size_t i = 0; i < len; i++)
                if (!is_base64_space(in[i]))
                        n++;
        if (n % 4 != 0)
                return -EBADMSG;

        out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;

        /* Pass 2: decode. 'k' counts significant characters seen so far. */
        for (size_t i = 0, k = 0; i < len; i++) {
                char c = in[i];
                int v;

                if (is_base64_space(c))
                        continue;
                k++;

                if (c == '=') {
                        /* Padding: only in the last two positions of the input. */
                        if (k + 1 < n)
                                return -EBADMSG;
                        pad++;
                        acc <<= 6;
                        continue;
                }
                if (pad > 0) /* data after '=' */
                        return -EBADMSG;

                v = decode_char(c);
                if (v < 0)
                        return -EBADMSG;
                acc = (acc << 6) | (uint32_t) v;

                if (k % 4 == 0) {
                        out[o++] = (uint8_t) (acc >> 16);
                        out[o++] = (uint8_t) (acc >> 8);
                        out[o++] = (uint8_t) acc;
                        acc = 0;
                }
        }

        if (pad > 0) {
                /* The last quartet ended in padding; it holds 3 - pad bytes. */
                if ((pad == 2 && (acc & 0xffff) != 0) || (pad == 1 && (acc & 0xff) != 0))
                        return -EBADMSG; /* non-canonical: unused bits set */
                out[o++] = (uint8_t) (acc >> 16);
                if (pad == 1)
                        out[o++] = (uint8_t) (acc >> 8);
        }

        out[o] = 0;
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}

int base64_encode(const uint8_t *in, size_t len, size_t line_width, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t chars, total, o = 0, col = 0;

        if (!in && len > 0)
                return -EINVAL;
        if (len > SIZE_MAX / 16 * 3) /* keeps chars + newlines + NUL well within size_t */
                return -ENOMEM;

        chars = (len + 2) / 3 * 4;
        total = chars;
        if (line_width > 0 && chars > 0)
                total += (chars - 1) / line_width; /* newlines between lines only */
        out = malloc(total + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i += 3) {
                uint32_t acc = (uint32_t) in[i] << 16;
                size_t avail = len - i;
                char quartet[4];

                if (avail > 1)
                        acc |= (uint32_t) in[i + 1] << 8;
                if (avail > 2)
                        acc |= in[i + 2];

                quartet[0] = alphabet[(acc >> 18) & 0x3f];
                quartet[1] = alphabet[(acc >> 12) & 0x3f];
                quartet[2] = avail > 1 ? alphabet[(acc >> 6) & 0x3f] : '=';
                quartet[3] = avail > 2 ? alphabet[acc & 0x3f] : '=';

                for (size_t j = 0; j < 4; j++) {
                        if (line_width > 0 && col == line_width) {
                                out[o++] = '\n';
                                col = 0;
                        }
                        out[o++] = quartet[j];
                        col++;
                }
        }

        out[o] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}
