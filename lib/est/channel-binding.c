/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "est/channel-binding.h"
#include "util/base64.h"

#define EXPORTER_LABEL "EXPORTER-Channel-Binding"
#define EXPORTER_LEN 32

const char *channel_binding_type_to_string(ChannelBindingType t) {
        switch (t) {
        case BINDING_TLS_UNIQUE:
                return "tls-unique";
        case BINDING_TLS_EXPORTER:
                return "tls-exporter";
        default:
                return "none";
        }
}

int channel_binding_from_ssl(SSL *ssl, ChannelBinding *ret, Diag *d) {
        ChannelBinding b = {};
        size_t n;

        if (!ssl || !SSL_is_init_finished(ssl))
                return diag_set(d, -ENOTCONN, "no established TLS connection to take a channel binding from");

        switch (SSL_version(ssl)) {
        case TLS1_2_VERSION:
                /* RFC 5929 3.1: the first Finished of the latest handshake, which
                 * is the server's when the session was resumed. */
                b.type = BINDING_TLS_UNIQUE;
                n = SSL_session_reused(ssl) ? SSL_get_peer_finished(ssl, b.value, sizeof(b.value))
                                            : SSL_get_finished(ssl, b.value, sizeof(b.value));
                if (n == 0 || n > sizeof(b.value))
                        return diag_set(d, -EPROTO,
                                        "the TLS 1.2 Finished message (tls-unique) is not available");
                b.len = n;
                break;
        case TLS1_3_VERSION:
                b.type = BINDING_TLS_EXPORTER;
                if (SSL_export_keying_material(ssl, b.value, EXPORTER_LEN, EXPORTER_LABEL,
                                               strlen(EXPORTER_LABEL), (const unsigned char *) "", 0, 1) != 1)
                        return diag_set_ssl(d, -EPROTO, "cannot compute the TLS 1.3 tls-exporter value");
                b.len = EXPORTER_LEN;
                break;
        default:
                return diag_set(d, -EPROTONOSUPPORT, "no channel binding is defined for %s",
                                SSL_get_version(ssl));
        }
        *ret = b;
        return 0;
}

void channel_binding_erase(ChannelBinding *b) {
        if (b)
                explicit_bzero(b, sizeof(*b));
}

bool channel_binding_equal(const ChannelBinding *a, const ChannelBinding *b) {
        return a->type == b->type && a->len == b->len && memcmp(a->value, b->value, a->len) == 0;
}

int channel_binding_to_base64(const ChannelBinding *b, char **ret) {
        if (b->type == BINDING_NONE || b->len == 0)
                return -EINVAL;
        return base64_encode(b->value, b->len, 0, ret);
}
