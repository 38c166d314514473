/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ossl-util.h"
#include "crypto/certcheck.h"
#include "exchange/request.h"
#include "util/clock.h"

int exchange_validate_issued(STACK_OF(X509) *returned, EVP_PKEY *key, STACK_OF(X509) *ca_certs, time_t now,
                             time_t not_before_slack, STACK_OF(X509) **ret_chain, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = NULL;
        X509 *leaf;
        int r;

        r = certs_find_for_key(returned, key, &leaf, NULL);
        if (r < 0)
                return diag_set(d, -EKEYREJECTED,
                                "the EST server returned no certificate for the key "
                                "fleetid created (a certificate for another key?)");
        if (cert_is_ca(leaf))
                return diag_set(d, -EKEYREJECTED, "the certificate returned for our key is a CA certificate");
        /* Dates first: an expired certificate from the right CA must be reported
         * as expired, not as one that "does not chain". */
        r = cert_check_validity(leaf, now, not_before_slack, d);
        if (r < 0)
                return diag_prefix(d, r, "the returned certificate is not currently valid");
        /* A CA clock slightly ahead of ours gives a notBefore in our future; within
         * the tolerated slack (first enrollment only), verify the chain at that
         * instant instead of now. */
        time_t not_before, not_after, at = now;
        if (cert_times(leaf, &not_before, &not_after) >= 0 && not_before > now)
                at = not_before;
        /* Only the chain that was verified is kept: whatever else the answer
         * carries (another CA, a certificate for another key) is not ours. */
        r = cert_verify_chain_path(leaf, returned, ca_certs, at, true, &chain, d);
        if (r < 0)
                return diag_prefix(d, r, "the returned certificate does not chain to the EST CA");

        *ret_chain = TAKE_PTR(chain);
        return 0;
}

EstClientOptions exchange_client_options(const Config *c, STACK_OF(X509) *anchors, EVP_PKEY *key, X509 *cert,
                                         STACK_OF(X509) *chain, const char *password) {
        return (EstClientOptions) {
                .url = c->est_url,
                .label = c->est_label,
                .anchors = anchors,
                .client_key = key,
                .client_cert = cert,
                .client_chain = chain,
                .username = c->est_username,
                .password = password,
                .timeout_sec = c->est_timeout_sec,
                .connect_timeout_sec = c->est_connect_timeout_sec,
                .max_response_bytes = c->est_max_response_bytes,
        };
}

/* Connections the CSR may be rebuilt for when the server closed the one its
 * binding came from: the first, and one more. */
#define BINDING_ATTEMPTS 2

void exchange_result_done(ExchangeResult *r) {
        if (!r)
                return;
        OSSL_STACK_OF_X509_free(r->chain);
        *r = (ExchangeResult) {};
}

/* The answer is judged on the local clock, never the server's: a server's Date
 * far ahead must not make a certificate that is not valid here acceptable,
 * least of all to replace a valid identity. The Date only explains a refusal. */
static int validate_on_local_clock(const ExchangeRequest *req, const EstEnrollResult *er, time_t start,
                                   STACK_OF(X509) **ret_chain, Diag *d) {
        time_t behind, now = time(NULL);
        int r;

        /* Judged when the answer is here, not when the attempt began: the CA
         * dates the certificate at its issuance, seconds (or a 202 wait) later. */
        if (now < start)
                now = start;
        r = exchange_validate_issued(er->certs, req->public_key, req->ca_certs, now,
                                     clock_not_before_slack(req->reenroll, req->max_clock_skew), ret_chain, d);
        if (r < 0 && clock_behind_server(now, er->server_date, req->max_clock_skew, &behind))
                return diag_prefix(d, r,
                                   "the EST server's Date is %llds ahead of the local clock (more than "
                                   "est.max_clock_skew = %llds): either clock may be wrong; check time "
                                   "synchronisation",
                                   (long long) behind, (long long) req->max_clock_skew);
        return r;
}

static int submit(EstClient *client, const ExchangeRequest *req, bool basic, time_t now, ExchangeResult *ret,
                  bool *ret_basic_wanted, Diag *d) {
        _cleanup_free_ uint8_t *csr = NULL;
        EstEnrollResult er = {};
        size_t csr_len;
        int r;

        *ret_basic_wanted = false;
        r = csr_build_der(&req->csr, &csr, &csr_len, d);
        if (r < 0)
                return r;
        r = est_enroll(client, req->reenroll, csr, csr_len, basic, &er, d);
        ret->hint = (EstRetryHint) { .http_status = er.status };
        *ret_basic_wanted = er.basic_wanted;
        if (r == -EAGAIN || r == -EBUSY) {
                ret->hint.retry_after_given = er.retry_after_given;
                ret->hint.retry_after_sec = er.retry_after_sec;
                ret->hint.retry_after = er.retry_after;
        }
        if (r >= 0)
                r = validate_on_local_clock(req, &er, now, &ret->chain, d);
        est_enroll_result_done(&er);
        return r;
}

KeyPolicy exchange_key_policy(const Config *c, EVP_PKEY *kept, const char *refusal) {
        KeyAlgorithm a = key_algorithm_of_pkey(kept);

        if (a != _KEY_ALG_INVALID)
                return (KeyPolicy) { .fallback = a, .allowed = KEY_ALG_BIT(a), .refusal = refusal };
        return (KeyPolicy) {
                .fallback = c->op_key_algorithm,
                .allowed = c->op_allowed_key_algorithms,
                .refusal = "is not in operational.allowed_key_algorithms",
        };
}

int exchange_choose_key(EstClient *client, TpmContext *tpm, const KeyPolicy *p, CsrAttrs *ret_attrs,
                        KeyChoice *ret_choice, Diag *ret_unusable, Diag *d) {
        CsrAttrs attrs = {};
        Diag why = {};
        int r, fetched;

        fetched = est_fetch_csrattrs(client, &attrs, &why);
        if (fetched < 0) {
                attrs = (CsrAttrs) {};
                if (why.error >= 0)
                        diag_set(&why, fetched, "%s", strerror(-fetched));
        } else
                diag_clear(&why);
        r = key_choice_resolve(tpm, &attrs, p, ret_choice, d);
        if (r < 0)
                return r;
        *ret_attrs = attrs;
        *ret_unusable = why;
        return 0;
}

/* The binding of the connection open now; if the server closed the latest one,
 * one cheap request opens another first. */
static int current_binding(EstClient *client, ChannelBinding *ret, Diag *d) {
        int r;

        if (!est_client_connection_alive(client)) {
                _cleanup_(est_response_done) EstResponse resp = {};

                /* Any answer will do (even an error status or a body that does not
                 * parse): what is wanted is the connection. Only a transport error
                 * means there is none. */
                r = est_client_request(client, "csrattrs", NULL, NULL, 0, false, &resp, d);
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

/* An unbound CSR refused although /csrattrs asked for a challengePassword:
 * the missing proof of possession is the likely reason. */
static int note_unbound(const ExchangeRequest *req, const ExchangeResult *ret, int r, Diag *d) {
        long status = ret->hint.http_status;

        if (!req->attrs || !req->attrs->challenge_password ||
            (status != 400 && status != 401 && status != 403))
                return r;
        return diag_prefix(d, r,
                           "the EST server's /csrattrs asked for a challengePassword (proof of possession) "
                           "and the CSR carried none (est.channel_binding = \"%s\")",
                           channel_binding_mode_to_string(req->binding));
}

int exchange_request(EstClient *client, ExchangeRequest *req, time_t now, ExchangeResult *ret, Diag *d) {
        bool bind, basic = false;
        unsigned attempt = 1;
        int r;

        *ret = (ExchangeResult) {};

        if (req->attrs_unusable)
                ret->csrattrs.why = *req->attrs_unusable;
        req->csr.challenge_password = NULL;
        bind = req->binding == CHANNEL_BINDING_REQUIRED ||
               (req->binding == CHANNEL_BINDING_AUTO && req->attrs && req->attrs->challenge_password);
        /* "auto" and a /csrattrs that could not be read: a binding never hurts,
         * its absence can make the server refuse the CSR. */
        if (req->binding == CHANNEL_BINDING_AUTO && req->attrs_unusable) {
                bind = true;
                ret->csrattrs.bound_anyway = true;
        }

        for (;;) {
                /* The binding is no long-term secret, but nothing needs it after the POST. */
                _cleanup_(channel_binding_erase) ChannelBinding bound = {}, carried = {};
                _cleanup_erase_ char *password = NULL;
                bool basic_wanted;

                /* The answer of this round only: a 401 before must not make a
                 * network failure now look like the server's refusal. */
                ret->hint = (EstRetryHint) {};

                if (bind) {
                        r = current_binding(client, &bound, d);
                        if (r < 0 && ret->csrattrs.bound_anyway) {
                                /* Only a guess: go on unbound rather than fail. */
                                bind = ret->csrattrs.bound_anyway = false;
                                diag_clear(d);
                                continue;
                        }
                        if (r < 0)
                                return r;
                        r = channel_binding_to_base64(&bound, &password);
                        if (r < 0)
                                return r;
                        req->csr.challenge_password = password;
                }
                r = submit(client, req, basic, now, ret, &basic_wanted, d);

                if (basic_wanted) {
                        /* RFC 7030 3.2.3: answer the 401 with HTTP Basic. The server may
                         * close the connection after a 401 without saying so, and libcurl
                         * would then resend on a new one: a bound CSR is made again, for
                         * a new connection that carries the request with Basic. */
                        req->csr.challenge_password = NULL;
                        basic = true;
                        if (bind)
                                est_client_fresh_connection(client);
                        diag_clear(d);
                        continue;
                }
                if (!bind) {
                        r = r < 0 ? note_unbound(req, ret, r, d) : r;
                        req->csr.challenge_password = NULL;
                        return r;
                }
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
                                           "the CSR's %s binding did not match the connection that carried "
                                           "the POST (libcurl had to open a new one)",
                                           channel_binding_type_to_string(bound.type));
                attempt++;
        }
}
