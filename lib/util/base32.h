/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * base32.h: RFC 4648 base32 (section 6), in lowercase and without '='
 * padding: the form that fits a sensor evidence purpose ([a-z0-9._-],
 * lib/broker/evidence.h). Encoding only.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Characters base32_encode_lower() writes for len bytes (without the NUL). */
#define BASE32_LEN(len) (((len) *8 + 4) / 5)

/* Writes the encoding of in[0..len) and a NUL to out. -ENOBUFS (nothing
 * written) if out_size is less than BASE32_LEN(len) + 1. */
int base32_encode_lower(const uint8_t *in, size_t len, char *out, size_t out_size);
