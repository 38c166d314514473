/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * channel-binding.h: the TLS channel binding of one client connection, for
 * proof of possession in an EST CSR (RFC 7030 3.5).
 *
 *  TLS 1.2: tls-unique (RFC 5929 3.1), the first Finished message of the most
 *           recent handshake: ours on a full handshake, the server's on a
 *           resumed one.
 *  TLS 1.3: tls-exporter (RFC 9266), the TLS exporter with the label
 *           "EXPORTER-Channel-Binding", an empty context and 32 bytes.
 *
 * The CSR carries the value base64-encoded in its challengePassword.
 */
#pragma once

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/diag.h"

typedef enum ChannelBindingType {
        BINDING_NONE,
        BINDING_TLS_UNIQUE,
        BINDING_TLS_EXPORTER,
} ChannelBindingType;

#define CHANNEL_BINDING_MAX 64 /* EVP_MAX_MD_SIZE: the longest Finished */

typedef struct ChannelBinding {
        ChannelBindingType type;
        uint8_t value[CHANNEL_BINDING_MAX];
        size_t len;
} ChannelBinding;

const char *channel_binding_type_to_string(ChannelBindingType t); /* "tls-unique", "tls-exporter", "none" */

/* The binding of the connection `ssl`, client side, after its handshake.
 * -EPROTONOSUPPORT for a protocol version with no binding defined here. */
int channel_binding_from_ssl(SSL *ssl, ChannelBinding *ret, Diag *d);

bool channel_binding_equal(const ChannelBinding *a, const ChannelBinding *b);

/* Wipes the value (for _cleanup_). */
void channel_binding_erase(ChannelBinding *b);

/* The challengePassword text: base64 of the value, on one line. */
int channel_binding_to_base64(const ChannelBinding *b, char **ret);
