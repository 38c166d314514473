/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ossl-util.h"
#include "enroll/enroll.h"
#include "enroll/request.h"
#include "renew/clock.h"

/* Connections the CSR may be rebuilt for when the server closed the one its
 * binding came from: the first, and one more. */
#define BINDING_ATTEMPTS 2

void enroll_request_result_done(EnrollRequestResult *r) {
        if (!r)
                return;
        OSSL_STACK_OF_X509_free(r->chain);
        *r = (EnrollRequestResult) {};
}

static int submit(EstClient *client, const EnrollRequest *req, time_t now, EnrollRequestResult *ret, Diag *d) {
        _cleanup_free_ uint8_t *csr = NULL;
        EstEnrollResult er = {};
        size_t csr_len;
        int r;

        r = csr_build_der(&req->csr, &csr, &csr_len, d);
        if (r < 0)
                return r;
        r = est_enroll(client, req->reenroll, csr, csr_len, now, &er, d);
        ret->hint = (EstRetryHint) { .http_status = er.status };
        if (r == -EAGAIN || r == -EBUSY) {
                ret->hint.retry_after_given = er.retry_after_given;
                ret->hint.retry_after_sec = er.retry_after_sec;
        }
        if (r >= 0)
                /* A clock behind the server's must not make a fresh certificate look "not yet valid". */
                r = enroll_validate_issued(er.certs, req->public_key, req->ca_certs,
                                           clock_lower_bound(now, er.server_date), &ret->chain, d);
        est_enroll_result_done(&er);
        return r;
}

KeyPolicy enroll_key_policy(const Config *c, EVP_PKEY *kept, const char *refusal) {
        KeyAlgorithm a = key_algorithm_of_pkey(kept);

        if (a != _KEY_ALG_INVALID)
                return (KeyPolicy) { .fallback = a, .allowed = KEY_ALG_BIT(a), .refusal = refusal };
        return (KeyPolicy) {
                .fallback = c->op_key_algorithm,
                .allowed = c->op_allowed_key_algorithms,
                .refusal = "is not in operational.allowed_key_algorithms",
        };
}

int enroll_choose_key(EstClient *client, TpmContext *tpm, const KeyPolicy *p, CsrAttrs *ret_attrs,
                      KeyChoice *ret_choice, Diag *d) {
        CsrAttrs attrs = {};
        Diag why = {};
        int r, fetched;

        fetched = est_fetch_csrattrs(client, &attrs, &why);
        if (fetched < 0)
                attrs = (CsrAttrs) {};
        r = key_choice_resolve(tpm, &attrs, p, ret_choice, d);
        if (r < 0)
                return r;
        if (fetched < 0)
                key_choice_note(ret_choice, "/csrattrs was not used: %s", diag_text(&why, fetched));
        *ret_attrs = attrs;
        return 0;
}

/* The binding of the connection open now; if the server closed the latest one,
 * one cheap request opens another first. */
static int current_binding(EstClient *client, ChannelBinding *ret, Diag *d) {
        CsrAttrs ignored = {};
        int r;

        if (!est_client_connection_alive(client)) {
                r = est_fetch_csrattrs(client, &ignored, d);
                if (r < 0)
                        return diag_prefix(d, r, "cannot open a connection to take a channel binding from");
                if (!est_client_connection_alive(client))
                        return diag_set(d, -EPROTO,
                                        "the EST server closes the connection after every response, so no "
                                        "CSR can travel on the connection its channel binding comes from; "
                                        "set est.channel_binding = \"off\" if the server does not need it");
        }
        r = est_client_channel_binding(client, ret, d);
        if (r < 0)
                return diag_prefix(d, r, "no channel binding for the CSR");
        return 0;
}

int enroll_request(EstClient *client, EnrollRequest *req, time_t now, EnrollRequestResult *ret, Diag *d) {
        bool bind;
        int r;

        *ret = (EnrollRequestResult) {};

        req->csr.challenge_password = NULL;
        bind = req->binding == CHANNEL_BINDING_REQUIRED ||
               (req->binding == CHANNEL_BINDING_AUTO && req->attrs && req->attrs->challenge_password);
        if (!bind)
                return submit(client, req, now, ret, d);

        for (unsigned attempt = 1;; attempt++) {
                /* The binding is no long-term secret, but nothing needs it after the POST. */
                _cleanup_(channel_binding_erase) ChannelBinding bound = {}, carried = {};
                _cleanup_erase_ char *password = NULL;

                r = current_binding(client, &bound, d);
                if (r < 0)
                        return r;
                r = channel_binding_to_base64(&bound, &password);
                if (r < 0)
                        return r;
                req->csr.challenge_password = password;
                r = submit(client, req, now, ret, d);
                req->csr.challenge_password = NULL;

                /* Which connection did the POST travel on? */
                if (est_client_channel_binding(client, &carried, NULL) >= 0 &&
                    channel_binding_equal(&bound, &carried)) {
                        if (r >= 0)
                                ret->bound = bound.type;
                        return r;
                }
                if (r >= 0) {
                        /* Accepted although bound to an earlier connection: the server
                         * does not check the binding. */
                        ret->bound = BINDING_NONE;
                        return r;
                }
                if ((r != -EPROTO && r != -EACCES) || attempt >= BINDING_ATTEMPTS)
                        return diag_prefix(d, r,
                                           "the CSR's %s binding was taken on a connection the server closed "
                                           "before the POST",
                                           channel_binding_type_to_string(bound.type));
                enroll_request_result_done(ret);
        }
}
