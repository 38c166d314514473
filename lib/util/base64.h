/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * base64.h: RFC 4648 base64 (standard alphabet, '=' padding) as EST uses it.
 *
 * RFC 7030 and RFC 8951 send base64 with line breaks anywhere, so the decoder
 * skips ASCII whitespace; everything else is strict.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Decodes in[0..len), skipping ASCII whitespace (space, \t, \r, \n) anywhere.
 * Rejects with -EBADMSG: any other byte outside the alphabet (including NUL and
 * the base64url characters '-' and '_'), a length that is not a multiple of 4
 * once whitespace is removed, '=' anywhere but the last one or two positions,
 * and non-zero bits in the unused part of the last character before the
 * padding (non-canonical encodings, RFC 4648 section 3.5).
 * Empty input (or only whitespace) decodes to zero bytes. The output is
 * NUL-terminated for convenience (the NUL is not counted in *ret_len).
 * -ENOMEM on allocation failure. */
int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);

/* Encodes in[0..len). line_width 0 produces one line; otherwise a "\n" is put
 * after every line_width characters, except at the end: the result never ends
 * with a newline. -ENOMEM on allocation failure or size overflow. */
int base64_encode(const uint8_t *in, size_t len, size_t line_width, char **ret);
