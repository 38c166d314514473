/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * est-client.h: the HTTPS transport to one EST server (libcurl + OpenSSL).
 *
 * One EstClient is one libcurl handle, so consecutive requests reuse the TLS
 * connection. The server is verified against the explicit trust anchors only
 * (never the system store), with the host name checked inside the handshake,
 * before the client certificate is sent; TLS 1.2 is the minimum. The client may
 * authenticate with a key that lives in the TPM (an EVP_PKEY from the tpm2
 * provider) and, only after a 401, with HTTP Basic. Responses are bounded.
 */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "est/channel-binding.h"
#include "util/diag.h"

typedef struct EstClientOptions {
        const char *url;         /* base, "https://host[:port]/.well-known/est" */
        const char *label;       /* optional path segment, NULL = none */
        STACK_OF(X509) *anchors; /* verify the server against these; NULL = do NOT
                                        * verify (only for the bootstrap GET /cacerts) */
        EVP_PKEY *client_key;    /* NULL = no client certificate */
        X509 *client_cert;
        STACK_OF(X509) *client_chain; /* intermediates sent with client_cert, may be NULL */
        const char *username;         /* HTTP Basic, used only after a 401 */
        const char *password;
        unsigned timeout_sec;
        unsigned connect_timeout_sec;
        size_t max_response_bytes;
} EstClientOptions;

typedef struct EstResponse {
        long status;
        char *content_type;   /* NULL if absent */
        char *retry_after;    /* raw Retry-After value, NULL if absent */
        char *date;           /* raw Date value, NULL if absent */
        char *auth_challenge; /* raw WWW-Authenticate value, NULL if absent */
        uint8_t *body;        /* NUL-terminated, body_len bytes */
        size_t body_len;
} EstResponse;

typedef struct EstClient EstClient;

int est_client_new(const EstClientOptions *o, EstClient **ret, Diag *d);
EstClient *est_client_free(EstClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(EstClient *, est_client_free);

/* GET (body == NULL) or POST one EST operation ("cacerts", "simpleenroll", ...).
 * with_basic: send the configured Basic credentials. Transport errors:
 * -ECONNREFUSED (host not resolved or not reachable), -ETIMEDOUT,
 * -ECONNRESET (the connection broke), -ECONNABORTED (TLS handshake failed),
 * all worth a retry later; -EPERM for a server that fails verification, -EFBIG
 * for an oversized response, -EIO for anything else libcurl reports (its text
 * is in d). HTTP error statuses are not errors here: they are in ret->status. */
int est_client_request(EstClient *c, const char *operation, const char *content_type, const void *body,
                       size_t len, bool with_basic, EstResponse *ret, Diag *d);

bool est_client_has_basic(const EstClient *c);

/* The channel binding of the TLS connection that carried the latest request,
 * taken when that connection was handed to the request. -ENOTCONN if no
 * request reached a connection, -EOPNOTSUPP/-EPROTONOSUPPORT if it has none. */
int est_client_channel_binding(const EstClient *c, ChannelBinding *ret, Diag *d);

/* Whether the connection of the latest request is still open for the next one
 * (libcurl keeps it unless the server or an error closed it). */
bool est_client_connection_alive(EstClient *c);

/* The next request goes over a new connection, whatever libcurl keeps open
 * (e.g. after a 401, which some servers follow by closing the connection
 * without saying so). */
void est_client_fresh_connection(EstClient *c);

/* If the latest request failed because the server refused our client
 * certificate with a fatal TLS alert: the alert's name ("unknown_ca",
 * "bad_certificate"). NULL otherwise. */
const char *est_client_certificate_refused(const EstClient *c);

void est_response_done(EstResponse *r);
