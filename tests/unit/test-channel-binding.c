/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-channel-binding: the client-side binding of lib/est/channel-binding.c
 * against what the server side of the same TLS connection computes, over an
 * in-memory BIO pair (real OpenSSL handshakes, no network):
 *  - TLS 1.2 full handshake: tls-unique is the client's Finished;
 *  - TLS 1.2 resumed session: tls-unique is the server's Finished (it comes
 *    first in an abbreviated handshake, RFC 5929 3.1);
 *  - TLS 1.3: tls-exporter with the RFC 9266 label, 32 bytes;
 *  - two connections never share a value; base64 text for challengePassword.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "est/channel-binding.h"
#include "test-certs.h"

typedef struct Server {
        EVP_PKEY *key;
        X509 *cert;
        SSL_CTX *server_ctx, *client_ctx;
} Server;

static int setup(void **state) {
        Server *s = calloc(1, sizeof(*s));

        assert_non_null(s);
        assert_int_equal(test_key_new(&s->key), 0);
        TestCertSpec spec = {
                .cn = "localhost",
                .key = s->key,
                .issuer_key = s->key,
                .not_before = TEST_NOW - TEST_DAY,
                .not_after = TEST_NOW + TEST_DAY,
                .eku = "serverAuth",
                .serial = 1,
        };
        assert_int_equal(test_cert_new(&spec, &s->cert), 0);
        s->server_ctx = SSL_CTX_new(TLS_server_method());
        s->client_ctx = SSL_CTX_new(TLS_client_method());
        assert_non_null(s->server_ctx);
        assert_non_null(s->client_ctx);
        assert_int_equal(SSL_CTX_use_certificate(s->server_ctx, s->cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(s->server_ctx, s->key), 1);
        /* The client does not verify: this is about the binding, not trust. */
        SSL_CTX_set_verify(s->client_ctx, SSL_VERIFY_NONE, NULL);
        *state = s;
        return 0;
}

static int teardown(void **state) {
        Server *s = *state;

        SSL_CTX_free(s->server_ctx);
        SSL_CTX_free(s->client_ctx);
        X509_free(s->cert);
        EVP_PKEY_free(s->key);
        free(s);
        return 0;
}

/* Runs both ends of a handshake over a BIO pair until both are done. */
static void handshake(Server *s, int version, SSL_SESSION *resume, SSL **ret_client, SSL **ret_server) {
        SSL *c = SSL_new(s->client_ctx), *v = SSL_new(s->server_ctx);
        BIO *cb = NULL, *vb = NULL;
        bool c_done = false, v_done = false;

        assert_non_null(c);
        assert_non_null(v);
        assert_int_equal(SSL_set_min_proto_version(c, version), 1);
        assert_int_equal(SSL_set_max_proto_version(c, version), 1);
        if (resume)
                assert_int_equal(SSL_set_session(c, resume), 1);
        assert_int_equal(BIO_new_bio_pair(&cb, 0, &vb, 0), 1);
        SSL_set_bio(c, cb, cb);
        SSL_set_bio(v, vb, vb);
        SSL_set_connect_state(c);
        SSL_set_accept_state(v);

        for (int i = 0; i < 100 && !(c_done && v_done); i++) {
                if (!c_done) {
                        int r = SSL_do_handshake(c);
                        if (r == 1)
                                c_done = true;
                        else
                                assert_int_equal(SSL_get_error(c, r), SSL_ERROR_WANT_READ);
                }
                if (!v_done) {
                        int r = SSL_do_handshake(v);
                        if (r == 1)
                                v_done = true;
                        else
                                assert_int_equal(SSL_get_error(v, r), SSL_ERROR_WANT_READ);
                }
        }
        assert_true(c_done && v_done);
        *ret_client = c;
        *ret_server = v;
}

static void test_tls12_full_and_resumed(void **state) {
        Server *s = *state;
        SSL *c = NULL, *v = NULL, *c2 = NULL, *v2 = NULL;
        ChannelBinding b = {}, b2 = {};
        uint8_t expect[CHANNEL_BINDING_MAX];
        size_t n;

        handshake(s, TLS1_2_VERSION, NULL, &c, &v);
        assert_int_equal(SSL_session_reused(c), 0);
        assert_int_equal(channel_binding_from_ssl(c, &b, NULL), 0);
        assert_int_equal(b.type, BINDING_TLS_UNIQUE);
        /* Full handshake: the client's Finished, which the server received. */
        n = SSL_get_peer_finished(v, expect, sizeof(expect));
        assert_int_equal(b.len, n);
        assert_memory_equal(b.value, expect, n);

        /* Resumed: the server's Finished comes first. */
        SSL_SESSION *sess = SSL_get1_session(c);
        assert_non_null(sess);
        handshake(s, TLS1_2_VERSION, sess, &c2, &v2);
        assert_int_equal(SSL_session_reused(c2), 1);
        assert_int_equal(channel_binding_from_ssl(c2, &b2, NULL), 0);
        n = SSL_get_finished(v2, expect, sizeof(expect));
        assert_int_equal(b2.len, n);
        assert_memory_equal(b2.value, expect, n);
        assert_false(channel_binding_equal(&b, &b2));

        SSL_SESSION_free(sess);
        SSL_free(c);
        SSL_free(v);
        SSL_free(c2);
        SSL_free(v2);
}

static void test_tls13_exporter(void **state) {
        static const char label[] = "EXPORTER-Channel-Binding";
        Server *s = *state;
        SSL *c = NULL, *v = NULL, *c2 = NULL, *v2 = NULL;
        ChannelBinding b = {}, b2 = {};
        uint8_t expect[32];
        _cleanup_free_ char *text = NULL;

        handshake(s, TLS1_3_VERSION, NULL, &c, &v);
        assert_int_equal(channel_binding_from_ssl(c, &b, NULL), 0);
        assert_int_equal(b.type, BINDING_TLS_EXPORTER);
        assert_int_equal(b.len, 32);
        assert_int_equal(SSL_export_keying_material(v, expect, sizeof(expect), label, strlen(label),
                                                    (const unsigned char *) "", 0, 1),
                         1);
        assert_memory_equal(b.value, expect, sizeof(expect));

        handshake(s, TLS1_3_VERSION, NULL, &c2, &v2);
        assert_int_equal(channel_binding_from_ssl(c2, &b2, NULL), 0);
        assert_false(channel_binding_equal(&b, &b2));
        assert_true(channel_binding_equal(&b, &b));

        assert_int_equal(channel_binding_to_base64(&b, &text), 0);
        assert_int_equal(strlen(text), 44); /* 32 bytes, one line, padded */
        assert_null(strchr(text, '\n'));
        assert_string_equal(channel_binding_type_to_string(b.type), "tls-exporter");

        SSL_free(c);
        SSL_free(v);
        SSL_free(c2);
        SSL_free(v2);
}

static void test_not_connected(void **state) {
        Server *s = *state;
        SSL *c = SSL_new(s->client_ctx);
        ChannelBinding b = {};
        char *text = NULL;

        assert_int_equal(channel_binding_from_ssl(NULL, &b, NULL), -ENOTCONN);
        assert_int_equal(channel_binding_from_ssl(c, &b, NULL), -ENOTCONN);
        assert_int_equal(channel_binding_to_base64(&b, &text), -EINVAL);
        assert_null(text);
        SSL_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tls12_full_and_resumed),
                cmocka_unit_test(test_tls13_exporter),
                cmocka_unit_test(test_not_connected),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
