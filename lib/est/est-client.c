/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "est/est-client.h"
#include "est/tcp-quickack.h"

#define HEADER_VALUE_MAX 1024
/* All the header lines of a response (interim ones included), in bytes. */
#define HEADERS_MAX (64u * 1024u)

struct EstClient {
        CURL *curl;
        char *base;        /* url [+ "/" label] */
        char *host;        /* for the in-handshake host check */
        char *anchors_pem; /* CAINFO blob */
        size_t anchors_len;
        bool verify;
        EVP_PKEY *client_key;
        X509 *client_cert;
        STACK_OF(X509) *client_chain;
        char *username;
        char *password; /* wiped on free */
        size_t max_response;

        /* the channel binding of the connection the latest request went over */
        ChannelBinding binding;
        int binding_r; /* 0, or why binding is unusable (binding_diag) */
        Diag binding_diag;

        /* the response being received */
        EstResponse *resp;
        bool too_big;
        size_t header_bytes; /* of the response being received, all its lines (HEADERS_MAX) */
        bool headers_too_big;
        bool headers_done; /* the blank line after the final response's headers was seen */
        char errbuf[CURL_ERROR_SIZE];

        int refusal_alert; /* fatal TLS alert refusing our certificate, -1 if none */
        bool fresh_next;   /* the next request opens a new connection */

        /* the TCP socket libcurl opened last, while it is open; TCP_QUICKACK is
         * armed on it (tcp-quickack.h) unless the system refused it once */
        curl_socket_t sock;
        int quickack_r; /* 0, or the -errno of the refusal */
};

EstClient *est_client_free(EstClient *c) {
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->base);
        free(c->host);
        free(c->anchors_pem);
        EVP_PKEY_free(c->client_key);
        X509_free(c->client_cert);
        sk_X509_pop_free(c->client_chain, X509_free);
        free(c->username);
        channel_binding_erase(&c->binding);
        if (c->password) {
                explicit_bzero(c->password, strlen(c->password));
                free(c->password);
        }
        free(c);
        return NULL;
}

void est_response_done(EstResponse *r) {
        if (!r)
                return;
        free(r->content_type);
        free(r->retry_after);
        free(r->date);
        free(r->auth_challenge);
        free(r->body);
        *r = (EstResponse) {};
}

bool est_client_has_basic(const EstClient *c) {
        return c->username && c->password;
}

static int anchors_to_pem(STACK_OF(X509) *anchors, char **ret, size_t *ret_len) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data, *copy;
        long n;

        if (!b)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(anchors); i++)
                if (!PEM_write_bio_X509(b, sk_X509_value(anchors, i))) {
                        BIO_free(b);
                        return -EIO;
                }
        n = BIO_get_mem_data(b, &data);
        copy = n > 0 ? malloc((size_t) n) : NULL;
        if (copy)
                memcpy(copy, data, (size_t) n);
        BIO_free(b);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        *ret_len = (size_t) n;
        return 0;
}

/* The host part of an https URL (IPv6 literals keep no brackets). */
static int url_host(const char *url, char **ret) {
        CURLU *u = curl_url();
        char *host = NULL;
        size_t n;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
                curl_url_cleanup(u);
                return -EINVAL;
        }
        curl_url_cleanup(u);
        n = strlen(host);
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
                *ret = strndup(host + 1, n - 2);
        else
                *ret = strdup(host);
        curl_free(host);
        return *ret ? 0 : -ENOMEM;
}

/* The TLS alerts by which a server says it does not accept the client
 * certificate (RFC 8446 6.2): it does not know its issuer, or rejects it. */
static const char *certificate_refusal_name(int alert) {
        switch (alert) {
        case SSL_AD_UNKNOWN_CA:
                return "unknown_ca";
        case SSL_AD_BAD_CERTIFICATE:
                return "bad_certificate";
        case SSL_AD_CERTIFICATE_UNKNOWN:
                return "certificate_unknown";
        case SSL_AD_ACCESS_DENIED:
                return "access_denied";
        case SSL_AD_CERTIFICATE_REQUIRED:
                return "certificate_required";
        default:
                return NULL;
        }
}

/* Sees every TLS record; notes a fatal alert from the server that refuses the
 * client certificate (in the handshake under TLS 1.2, on the first read
 * under TLS 1.3, where the server checks it after the client's Finished). */
static void on_tls_message(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
                           void *arg) {
        const unsigned char *p = buf;
        EstClient *c = arg;

        (void) version, (void) ssl;
        if (write_p || content_type != SSL3_RT_ALERT || len != 2 || p[0] != SSL3_AL_FATAL)
                return;
        if (c->client_key && certificate_refusal_name(p[1]))
                c->refusal_alert = p[1];
}

static CURLcode ssl_ctx_setup(CURL *curl, void *sslctx, void *userdata) {
        EstClient *c = userdata;
        SSL_CTX *ctx = sslctx;

        if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
                return CURLE_SSL_CERTPROBLEM;
        SSL_CTX_set_msg_callback(ctx, on_tls_message);
        SSL_CTX_set_msg_callback_arg(ctx, c);

        if (c->verify) {
                /* Check the name inside the handshake, so that a server with a valid
                 * certificate for another host never sees our client certificate. */
                X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
                int ok = strchr(c->host, ':') || strspn(c->host, "0123456789.") == strlen(c->host)
                                 ? X509_VERIFY_PARAM_set1_ip_asc(param, c->host)
                                 : X509_VERIFY_PARAM_set1_host(param, c->host, 0);
                if (!ok)
                        return CURLE_SSL_CERTPROBLEM;
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }

        if (c->client_key) {
                if (SSL_CTX_use_certificate(ctx, c->client_cert) != 1)
                        return CURLE_SSL_CERTPROBLEM;
                for (int i = 0; i < sk_X509_num(c->client_chain); i++)
                        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(c->client_chain, i)) != 1)
                                return CURLE_SSL_CERTPROBLEM;
                if (SSL_CTX_use_PrivateKey(ctx, c->client_key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
                        return CURLE_SSL_CERTPROBLEM;
        }
        return CURLE_OK;
}

/* Fail soft: a socket without quick ACKs only costs time, never a request. */
static void quickack_arm(EstClient *c) {
        if (c->quickack_r == 0 && c->sock != CURL_SOCKET_BAD)
                c->quickack_r = tcp_quickack_arm(c->sock);
}

static int on_socket_open(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        EstClient *c = userdata;

        if (purpose == CURLSOCKTYPE_IPCXN) {
                c->sock = fd;
                quickack_arm(c);
        }
        return CURL_SOCKOPT_OK;
}

static int on_socket_close(void *userdata, curl_socket_t fd) {
        EstClient *c = userdata;

        if (fd == c->sock)
                c->sock = CURL_SOCKET_BAD;
        return close(fd);
}

/* Called by libcurl once the connection for a request is up (new or reused),
 * just before the request is sent: the TLS session is the one that carries it. */
static int on_connection(void *userdata, char *primary_ip, char *local_ip, int primary_port, int local_port) {
        struct curl_tlssessioninfo *info = NULL;
        EstClient *c = userdata;

        (void) primary_ip, (void) local_ip, (void) primary_port, (void) local_port;
        quickack_arm(c); /* the request's answer is what is waited for next */
        c->binding = (ChannelBinding) {};
        diag_clear(&c->binding_diag);
        if (curl_easy_getinfo(c->curl, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || !info ||
            info->backend != CURLSSLBACKEND_OPENSSL || !info->internals)
                c->binding_r = diag_set(&c->binding_diag, -EOPNOTSUPP,
                                        "libcurl does not expose its OpenSSL session for this connection");
        else
                c->binding_r = channel_binding_from_ssl(info->internals, &c->binding, &c->binding_diag);
        return CURL_PREREQFUNC_OK;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        EstClient *c = userdata;
        EstResponse *r = c->resp;
        size_t n = size * nmemb;
        uint8_t *p;

        if (n > c->max_response || r->body_len > c->max_response - n) {
                c->too_big = true;
                return 0; /* aborts the transfer */
        }
        p = realloc(r->body, r->body_len + n + 1);
        if (!p)
                return 0;
        memcpy(p + r->body_len, ptr, n);
        r->body = p;
        r->body_len += n;
        r->body[r->body_len] = 0;
        return n;
}

static void header_take(char **field, const char *value, size_t len) {
        free(*field);
        *field = strndup(value, len);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata) {
        static const struct {
                const char *name;
                size_t offset;
        } wanted[] = {
                { "content-type", offsetof(EstResponse, content_type) },
                { "retry-after", offsetof(EstResponse, retry_after) },
                { "date", offsetof(EstResponse, date) },
                { "www-authenticate", offsetof(EstResponse, auth_challenge) },
        };
        EstClient *c = userdata;
        size_t n = size * nitems;

        /* Headers are bounded in all, not only each value kept: a server
         * could send header lines without end (libcurl 7.88 has no cap). */
        if (n > HEADERS_MAX - c->header_bytes) {
                c->headers_too_big = true;
                return 0; /* libcurl aborts the transfer */
        }
        c->header_bytes += n;

        /* A status line starts a response (an interim 1xx one, or the final
         * one); a blank line ends its headers. */
        if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
                /* The header has been read: acknowledge it now, a server
                 * may hold the body until then (tcp-quickack.h). */
                quickack_arm(c);
                c->headers_done = false;
        } else if ((n == 2 && buf[0] == '\r' && buf[1] == '\n') || (n == 1 && buf[0] == '\n'))
                c->headers_done = true;

        for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
                size_t k = strlen(wanted[i].name);
                const char *v;
                size_t vlen;

                if (n <= k || buf[k] != ':' || strncasecmp(buf, wanted[i].name, k) != 0)
                        continue;
                v = buf + k + 1;
                vlen = n - k - 1;
                while (vlen > 0 && (*v == ' ' || *v == '\t'))
                        v++, vlen--;
                while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
                        vlen--;
                if (vlen > HEADER_VALUE_MAX)
                        vlen = HEADER_VALUE_MAX;
                header_take((char **) ((uint8_t *) c->resp + wanted[i].offset), v, vlen);
        }
        return n;
}

int est_client_new(const EstClientOptions *o, EstClient **ret, Diag *d) {
        _cleanup_(est_client_freep) EstClient *c = NULL;
        size_t n;
        int r;

        if (!o->url || strncmp(o->url, "https://", 8) != 0)
                return diag_set(d, -EINVAL, "EST URL '%s' is not https://", strempty(o->url));
        if (o->client_key && !o->client_cert)
                return diag_set(d, -EINVAL, "a client key needs its certificate");

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->max_response = o->max_response_bytes ?: 1024 * 1024;
        c->refusal_alert = -1;
        c->sock = CURL_SOCKET_BAD;

        n = strlen(o->url);
        while (n > 0 && o->url[n - 1] == '/')
                n--;
        if (o->label) {
                if (asprintf(&c->base, "%.*s/%s", (int) n, o->url, o->label) < 0)
                        c->base = NULL;
        } else
                c->base = strndup(o->url, n);
        if (!c->base)
                return -ENOMEM;
        r = url_host(o->url, &c->host);
        if (r < 0)
                return diag_set(d, r, "cannot parse the host in EST URL '%s'", o->url);

        c->verify = o->anchors != NULL;
        if (c->verify) {
                if (sk_X509_num(o->anchors) <= 0)
                        return diag_set(d, -EINVAL, "no trust anchors to verify the EST server with");
                r = anchors_to_pem(o->anchors, &c->anchors_pem, &c->anchors_len);
                if (r < 0)
                        return diag_set(d, r, "cannot encode the trust anchors");
        }
        if (o->client_key) {
                if (!EVP_PKEY_up_ref(o->client_key) || !X509_up_ref(o->client_cert))
                        return -ENOMEM;
                c->client_key = o->client_key;
                c->client_cert = o->client_cert;
                if (o->client_chain && !(c->client_chain = X509_chain_up_ref(o->client_chain)))
                        return -ENOMEM;
        }
        if (o->username && o->password) {
                c->username = strdup(o->username);
                c->password = strdup(o->password);
                if (!c->username || !c->password)
                        return -ENOMEM;
        }

        c->curl = curl_easy_init();
        if (!c->curl)
                return -ENOMEM;

        CURL *h = c->curl;
        if (curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            /* No proxy from the environment (https_proxy, ALL_PROXY...): an
             * https:// proxy would be verified against the system trust store,
             * which fleetid never uses, and a daemon's environment is no
             * configuration fleetid documents. */
            curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK ||
            /* One connection at a time: a fresh one (a CSR bound to it after a 401)
             * closes the old, which libcurl could otherwise pick for the POST. */
            curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) (o->timeout_sec ?: 60)) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long) (o->connect_timeout_sec ?: 15)) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_CAINFO, NULL) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_CAPATH, NULL) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SSL_OPTIONS, (long) CURLSSLOPT_NO_PARTIALCHAIN) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_setup) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_WRITEDATA, c) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_HEADERDATA, c) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_connection) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_PREREQDATA, c) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->max_response) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_USERAGENT, "fleetid/" FLEETID_VERSION) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_socket_open) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, c) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_socket_close) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, c) != CURLE_OK)
                return diag_set(d, -EIO, "cannot configure libcurl");

        if (c->verify) {
                struct curl_blob blob = { .data = c->anchors_pem,
                                          .len = c->anchors_len,
                                          .flags = CURL_BLOB_NOCOPY };
                if (curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK ||
                    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
                    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK)
                        return diag_set(d, -EIO, "cannot configure server verification");
        } else if (curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
                   curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK)
                return diag_set(d, -EIO, "cannot configure libcurl");

        *ret = TAKE_PTR(c);
        return 0;
}

static int curl_code_to_errno(CURLcode cc) {
        switch (cc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
                return -EPERM;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
                return -ECONNABORTED;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

int est_client_request(EstClient *c, const char *operation, const char *content_type, const void *body,
                       size_t len, bool with_basic, EstResponse *ret, Diag *d) {
        _cleanup_free_ char *url = NULL;
        struct curl_slist *headers = NULL;
        EstResponse resp = {};
        CURLcode cc;
        int r = 0;

        if (asprintf(&url, "%s/%s", c->base, operation) < 0)
                return -ENOMEM;

        c->resp = &resp;
        c->too_big = false;
        c->header_bytes = 0;
        c->headers_too_big = false;
        c->headers_done = false;
        c->refusal_alert = -1;
        c->binding = (ChannelBinding) {};
        c->binding_r =
                diag_set(&c->binding_diag, -ENOTCONN, "no connection was made for the %s request", operation);
        c->errbuf[0] = 0;

        if (body) {
                char ct[128];

                snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
                headers = curl_slist_append(headers, ct);
                headers = headers ? curl_slist_append(headers, "Content-Transfer-Encoding: base64") : NULL;
                if (!headers)
                        return -ENOMEM;
        }
        /* Every option is checked: a URL libcurl refuses, or one it could not
         * copy, must not leave the previous request's URL or body in place. */
        if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK ||
            (body ? curl_easy_setopt(c->curl, CURLOPT_POST, 1L) != CURLE_OK ||
                             curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
                             curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len) != CURLE_OK
                  : curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L) != CURLE_OK) ||
            curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, c->fresh_next ? 1L : 0L) != CURLE_OK ||
            (with_basic && est_client_has_basic(c)
                     ? curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC) != CURLE_OK ||
                               curl_easy_setopt(c->curl, CURLOPT_USERNAME, c->username) != CURLE_OK ||
                               curl_easy_setopt(c->curl, CURLOPT_PASSWORD, c->password) != CURLE_OK
                     : curl_easy_setopt(c->curl, CURLOPT_USERNAME, NULL) != CURLE_OK ||
                               curl_easy_setopt(c->curl, CURLOPT_PASSWORD, NULL) != CURLE_OK)) {
                (void) curl_easy_setopt(c->curl, CURLOPT_USERNAME, NULL);
                (void) curl_easy_setopt(c->curl, CURLOPT_PASSWORD, NULL);
                (void) curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
                curl_slist_free_all(headers);
                c->resp = NULL;
                return diag_set(d, -EIO, "libcurl refused the options of the %s request to %s", operation,
                                url);
        }
        c->fresh_next = false;

        cc = curl_easy_perform(c->curl);

        /* Do not leave the password in curl's option copy longer than needed
         * (clearing an option cannot fail). */
        (void) curl_easy_setopt(c->curl, CURLOPT_USERNAME, NULL);
        (void) curl_easy_setopt(c->curl, CURLOPT_PASSWORD, NULL);
        (void) curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(headers);
        c->resp = NULL;

        if (c->too_big)
                r = diag_set(d, -EFBIG, "EST server %s sent more than %zu bytes for %s; response discarded",
                             c->host, c->max_response, operation);
        else if (c->headers_too_big)
                r = diag_set(d, -EFBIG,
                             "EST server %s sent more than %u bytes of headers for %s; response discarded",
                             c->host, HEADERS_MAX, operation);
        else if (cc == CURLE_FILESIZE_EXCEEDED)
                r = diag_set(d, -EFBIG,
                             "EST server %s announced a response to %s larger than the limit of %zu bytes "
                             "(est.max_response_bytes); response discarded",
                             c->host, operation, c->max_response);
        else if (cc == CURLE_OK && !c->headers_done)
                /* libcurl takes a connection closed in the middle of the headers
                 * for the end of a response without a body. */
                r = diag_set(d, -ECONNRESET,
                             "EST server %s closed the connection before its response to %s was complete "
                             "(in the headers)",
                             c->host, operation);
        else if (cc != CURLE_OK)
                r = diag_set(d, curl_code_to_errno(cc), "%s request to %s failed: %s", operation, c->host,
                             c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
        if (r < 0) {
                est_response_done(&resp);
                return r;
        }
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp.status);
        *ret = resp;
        return 0;
}

int est_client_channel_binding(const EstClient *c, ChannelBinding *ret, Diag *d) {
        if (c->binding_r < 0) {
                if (d)
                        *d = c->binding_diag;
                return c->binding_r;
        }
        *ret = c->binding;
        return 0;
}

bool est_client_connection_alive(EstClient *c) {
        curl_socket_t fd = CURL_SOCKET_BAD;

        if (c->fresh_next)
                return false;
        return curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK && fd != CURL_SOCKET_BAD;
}

void est_client_fresh_connection(EstClient *c) {
        c->fresh_next = true;
}

const char *est_client_certificate_refused(const EstClient *c) {
        return certificate_refusal_name(c->refusal_alert);
}
