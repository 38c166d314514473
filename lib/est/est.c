/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/pkcs7.h"
#include "est/est.h"
#include "est/retry-after.h"
#include "util/base64.h"

#define SERVER_TEXT_MAX 200

void est_enroll_result_done(EstEnrollResult *r) {
        if (!r)
                return;
        sk_X509_pop_free(r->certs, X509_free);
        *r = (EstEnrollResult) {};
}

/* The first line of the server's text, printable ASCII only, bounded. */
static void server_text(const EstResponse *resp, char *buf, size_t size) {
        size_t n = 0;

        for (size_t i = 0; resp->body && i < resp->body_len && n + 1 < size && n < SERVER_TEXT_MAX; i++) {
                unsigned char ch = resp->body[i];

                if (ch == '\n' || ch == '\r') {
                        if (n > 0)
                                break;
                        continue;
                }
                buf[n++] = isprint(ch) ? (char) ch : '?';
        }
        buf[n] = 0;
        if (n == 0)
                snprintf(buf, size, "(no text)");
}

static void note_retry_after(const EstResponse *resp, EstEnrollResult *res);

int est_fetch_cacerts(EstClient *c, STACK_OF(X509) **ret, EstRetryHint *ret_hint, Diag *d) {
        EstResponse resp = {};
        char text[SERVER_TEXT_MAX + 1];
        int r;

        r = est_client_request(c, "cacerts", NULL, NULL, 0, false, &resp, d);
        if (r < 0)
                return r;
        if (ret_hint)
                *ret_hint = (EstRetryHint) { .http_status = resp.status };
        if (resp.status == 429 || resp.status == 503) {
                /* A busy server's Retry-After counts here as for a POST: /cacerts
                 * is the first request of every enrollment and renewal. */
                EstEnrollResult res = {};
                time_t date;

                if (resp.date && http_date_parse(resp.date, &date) >= 0)
                        res.server_date = date;
                note_retry_after(&resp, &res);
                if (ret_hint) {
                        ret_hint->retry_after_given = res.retry_after_given;
                        ret_hint->retry_after_sec = res.retry_after_sec;
                        ret_hint->retry_after = res.retry_after;
                }
                server_text(&resp, text, sizeof(text));
                r = diag_set(d, -EBUSY, "/cacerts: EST server is busy (HTTP %ld): %s", resp.status, text);
        } else if (resp.status != 200) {
                server_text(&resp, text, sizeof(text));
                r = diag_set(d, -EPROTO, "/cacerts returned HTTP %ld: %s", resp.status, text);
        } else {
                r = pkcs7_parse_certs(resp.body, resp.body_len, ret, d);
                if (r < 0)
                        diag_prefix(d, r, "/cacerts response rejected");
        }
        est_response_done(&resp);
        return r;
}

int est_fetch_csrattrs(EstClient *c, CsrAttrs *ret, Diag *d) {
        EstResponse resp = {};
        _cleanup_free_ uint8_t *der = NULL;
        size_t len = 0;
        char text[SERVER_TEXT_MAX + 1];
        int r;

        r = est_client_request(c, "csrattrs", NULL, NULL, 0, false, &resp, d);
        if (r < 0)
                return r;
        switch (resp.status) {
        case 200:
                /* Some servers end the body with a C string's NUL: harmless. */
                while (resp.body_len > 0 && resp.body[resp.body_len - 1] == 0)
                        resp.body_len--;
                r = base64_decode((const char *) resp.body, resp.body_len, &der, &len);
                if (r < 0)
                        r = diag_set(d, r, "/csrattrs response (%zu bytes) is not base64", resp.body_len);
                else
                        r = csrattrs_parse(der, len, ret, d);
                break;
        case 204:
        case 404:
                *ret = (CsrAttrs) {};
                r = 0;
                break;
        default:
                server_text(&resp, text, sizeof(text));
                r = diag_set(d, -EPROTO, "/csrattrs returned HTTP %ld: %s", resp.status, text);
        }
        est_response_done(&resp);
        return r;
}

/* "Retry-After: 0", or a date already past, asks for nothing: the client's own
 * backoff applies, or a fleet would be back every second.
 * An HTTP-date is measured from the answer's own Date when it has one (both in
 * the server's clock: neither a skewed client clock nor a slow attempt changes
 * the delay), else from the time the answer arrived, not from `now`, the
 * attempt's start. */
static void note_retry_after(const EstResponse *resp, EstEnrollResult *res) {
        time_t now = res->server_date > 0 ? res->server_date : time(NULL);
        EstRetryAfterText *t = &res->retry_after;
        size_t n = 0;
        uint64_t s;

        if (!resp->retry_after)
                return;
        t->present = true;
        for (const char *p = resp->retry_after; *p && n < sizeof(t->text) - 1; p++)
                t->text[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
        t->text[n] = 0;
        if (retry_after_parse(resp->retry_after, now, EST_RETRY_AFTER_MAX, &s) < 0) {
                t->invalid = true;
                return;
        }
        if (s > 0) {
                res->retry_after_given = true;
                res->retry_after_sec = s;
        }
}

int est_enroll(EstClient *c, bool reenroll, const uint8_t *csr, size_t csr_len, bool with_basic,
               EstEnrollResult *ret, Diag *d) {
        const char *op = reenroll ? "simplereenroll" : "simpleenroll";
        _cleanup_free_ char *b64 = NULL;
        EstEnrollResult res = {};
        EstResponse resp = {};
        char text[SERVER_TEXT_MAX + 1];
        time_t date;
        int r;

        r = base64_encode(csr, csr_len, 64, &b64);
        if (r < 0)
                return r;

        r = est_client_request(c, op, "application/pkcs10", b64, strlen(b64), with_basic, &resp, d);
        if (r < 0)
                return r;

        res.status = resp.status;
        if (resp.date && http_date_parse(resp.date, &date) >= 0)
                res.server_date = date;
        server_text(&resp, text, sizeof(text));

        switch (resp.status) {
        case 200:
                r = pkcs7_parse_certs(resp.body, resp.body_len, &res.certs, d);
                if (r < 0)
                        diag_prefix(d, r = -EBADMSG, "/%s response rejected", op);
                break;
        case 202:
                note_retry_after(&resp, &res);
                r = diag_set(d, -EAGAIN, "/%s: request accepted but not yet processed (HTTP 202)", op);
                break;
        case 429:
        case 503:
                note_retry_after(&resp, &res);
                r = diag_set(d, -EBUSY, "/%s: EST server is busy (HTTP %ld): %s", op, resp.status, text);
                break;
        case 401:
        case 403:
                /* RFC 7030 3.2.3: a 401 is answered with HTTP Basic, by the caller,
                 * with a CSR made for the connection that will carry it. */
                res.basic_wanted = resp.status == 401 && !with_basic && est_client_has_basic(c);
                r = diag_set(d, -EACCES, "/%s: not authorized (HTTP %ld%s): %s", op, resp.status,
                             resp.status != 401        ? ""
                             : with_basic              ? ", although HTTP Basic was sent"
                             : est_client_has_basic(c) ? ", HTTP Basic wanted"
                                                       : ", no HTTP Basic configured",
                             text);
                break;
        default:
                r = diag_set(d, -EPROTO, "/%s: EST server returned HTTP %ld: %s", op, resp.status, text);
        }
        est_response_done(&resp);
        if (r < 0 && r != -EAGAIN && r != -EBUSY) {
                /* The status and what to do next stay; the certificates go. */
                sk_X509_pop_free(res.certs, X509_free);
                res.certs = NULL;
        }
        *ret = res;
        return r;
}
