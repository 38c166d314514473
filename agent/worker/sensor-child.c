/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/password.h"
#include "common/sensor-wire.h"
#include "crypto/ossl-util.h"
#include "est/est.h"
#include "exchange/request.h"
#include "exchange/session.h"
#include "store/state-certs.h"
#include "tpm/tpm-context.h"
#include "worker/sensor-child.h"

typedef struct ChildState {
        const Config *config;
        TpmContext *tpm;
        StateStore *store;
        char *password;
        ExchangeSession session;
        STACK_OF(X509) *ca_certs; /* what an issued chain must lead to */
        bool open;
        Diag open_failed; /* why the identity could not be opened */
        SensorFailure open_failure;
} ChildState;

/* r from the EST exchange; http_status the answer's, 0 without one. A 5xx
 * other than 503 (-EBUSY) is the server's own trouble, and a 408 its timeout:
 * worth the request again later, as for the gateway's renewals
 * (lib/monitor/outcome.c). */
static SensorFailure classify(int r, long http_status) {
        if (r == -EPROTO && (http_status == 408 || (http_status >= 500 && http_status < 600)))
                return SENSOR_FAILURE_UNREACHABLE;
        switch (r) {
        case 0:
                return SENSOR_FAILURE_NONE;
        case -EAGAIN:
                return SENSOR_FAILURE_DEFERRED;
        case -EBUSY:
                return SENSOR_FAILURE_BUSY;
        case -EACCES:
        case -EPROTO:
        case -EBADMSG:
        case -EKEYREJECTED:
                return SENSOR_FAILURE_REJECTED;
        default:
                return SENSOR_FAILURE_UNREACHABLE;
        }
}

/* The gateway's identity, the EST connection, and the CA set issued sensor
 * certificates must lead to: the stored EST CA set, and the CA certificates
 * of broker.est_label's /cacerts when that label is another than est.label. */
static int child_open(ChildState *s, Diag *d) {
        Config c = *s->config; /* shallow: the session's client goes to broker.est_label */
        bool unusable = false;
        int r;

        c.est_label = s->config->broker_est_label;
        r = tpm_context_new(c.tpm_tcti, &s->tpm, d);
        if (r < 0) {
                s->open_failure = SENSOR_FAILURE_TPM;
                return diag_prefix(d, r, "the TPM");
        }
        if (c.est_password_file) {
                r = password_read_file(c.est_password_file, &s->password, d);
                if (r < 0) {
                        s->open_failure = SENSOR_FAILURE_LOCAL;
                        return r;
                }
        }
        /* No network here: the identity, its key in the TPM, the trust anchors. */
        r = exchange_session_open(&c, s->tpm, s->store, s->password, time(NULL), "sensor enrollments",
                                  &s->session, &unusable, d);
        if (r < 0) {
                s->open_failure = unusable ? SENSOR_FAILURE_NOT_ENROLLED : SENSOR_FAILURE_LOCAL;
                return diag_prefix(d, r, "the gateway's operational identity");
        }
        r = state_certs_load(s->store, STATE_TRUST_ANCHORS, &s->ca_certs, d);
        if (r < 0) {
                s->open_failure = SENSOR_FAILURE_NOT_ENROLLED;
                return diag_prefix(d, r, "the EST CA set");
        }
        if (!streq_ptr(s->config->broker_est_label, s->config->est_label)) {
                _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *label_cas = NULL;

                r = est_fetch_cacerts(s->session.client, &label_cas, NULL, d);
                if (r < 0) {
                        s->open_failure = classify(r, 0); /* rejected, busy or unreachable */
                        return diag_prefix(d, r, "/cacerts at broker.est_label '%s'",
                                           strempty(s->config->broker_est_label));
                }
                while (sk_X509_num(label_cas) > 0) {
                        X509 *x = sk_X509_shift(label_cas);

                        if (!sk_X509_push(s->ca_certs, x)) {
                                X509_free(x);
                                return diag_set(d, -ENOMEM, "out of memory");
                        }
                }
        }
        return 0;
}

static void child_close(ChildState *s) {
        exchange_session_done(&s->session);
        OSSL_STACK_OF_X509_free(s->ca_certs);
        s->ca_certs = NULL;
        if (s->password) {
                explicit_bzero(s->password, strlen(s->password));
                free(s->password);
                s->password = NULL;
        }
        tpm_context_free(s->tpm);
        s->tpm = NULL;
}

/* The state directory and the identity; on failure, why is kept for the answers. */
static void child_try_open(ChildState *s) {
        Diag d = {};

        child_close(s);
        s->open_failed = (Diag) {};
        if (!s->store && state_store_open_existing(s->config->state_dir, &s->store, &d) < 0) {
                s->open_failed = d;
                s->open_failure = SENSOR_FAILURE_NOT_ENROLLED;
        } else if (child_open(s, &d) < 0) {
                s->open_failed = d;
                if (s->open_failed.error == 0)
                        s->open_failed.error = -EIO;
        } else
                s->open = true;
}

static int append_chain(uint8_t *out, size_t room, STACK_OF(X509) *chain, uint32_t *ret_len) {
        size_t off = 0;

        for (int i = 0; i < sk_X509_num(chain) && i < SENSOR_CHAIN_CERTS_MAX; i++) {
                unsigned char *der = NULL;
                int n = i2d_X509(sk_X509_value(chain, i), &der);

                if (n <= 0 || (size_t) n > room - off) {
                        OPENSSL_free(der);
                        return -E2BIG;
                }
                memcpy(out + off, der, (size_t) n);
                OPENSSL_free(der);
                off += (size_t) n;
        }
        *ret_len = (uint32_t) off;
        return 0;
}

/* One CSR: POST /simpleenroll, and the answer validated for the CSR's key. */
static void child_enroll(ChildState *s, const SensorRequestHeader *h, const uint8_t *csr_der, uint8_t *out,
                         int fd) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = NULL;
        EstEnrollResult res = {};
        SensorAnswerHeader a = { .magic = SENSOR_WORKER_MAGIC, .id = h->id };
        const unsigned char *p = csr_der;
        Diag d = {};
        int r;

        if (!s->open) {
                r = s->open_failed.error;
                d = s->open_failed;
                a.failure = s->open_failure;
                goto answer;
        }
        req = d2i_X509_REQ(NULL, &p, (long) h->csr_len);
        if (!req) {
                r = diag_set(&d, -EBADMSG, "the CSR handed to the sensor worker does not parse");
                a.failure = SENSOR_FAILURE_REJECTED;
                goto answer;
        }
        r = est_enroll(s->session.client, false, csr_der, h->csr_len, false, &res, &d);
        a.http_status = res.status;
        a.retry_after_given = res.retry_after_given;
        a.retry_after_sec =
                res.retry_after_sec > EST_RETRY_AFTER_MAX ? EST_RETRY_AFTER_MAX : res.retry_after_sec;
        if (r >= 0) {
                EVP_PKEY *key = X509_REQ_get0_pubkey(req);

                r = key ? exchange_validate_issued(res.certs, key, s->ca_certs, time(NULL),
                                                   s->config->est_max_clock_skew_sec, &chain, &d)
                        : diag_set(&d, -EBADMSG, "the CSR has no key");
        }
        a.failure = classify(r, res.status);
        if (r >= 0 && append_chain(out + sizeof(a), SENSOR_WORKER_CHAIN_MAX, chain, &a.chain_len) < 0) {
                r = diag_set(&d, -E2BIG, "the issued chain is longer than %u bytes", SENSOR_WORKER_CHAIN_MAX);
                a.failure = SENSOR_FAILURE_REJECTED;
        }
        est_enroll_result_done(&res);
answer:
        a.error = r < 0 ? r : 0;
        if (r < 0)
                snprintf(a.diag, sizeof(a.diag), "%s", diag_text(&d, r));
        if (r < 0)
                a.chain_len = 0;
        memcpy(out, &a, sizeof(a));
        while (send(fd, out, sizeof(a) + a.chain_len, MSG_NOSIGNAL) < 0 && errno == EINTR)
                ;
}

void sensor_child_main(int fd, const Config *c) {
        ChildState s = { .config = c };
        uint8_t *in = malloc(SENSOR_REQUEST_MAX), *out = malloc(SENSOR_ANSWER_MAX);
        int size = (int) SENSOR_ANSWER_MAX * 2;

        /* Named, for ps and the journal: "fleetid-sensors" (at most 15 bytes). */
        (void) prctl(PR_SET_NAME, "fleetid-sensors");
        if (!in || !out)
                _exit(EXIT_FAILURE);
        /* Room for the largest answer. */
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        child_try_open(&s);

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                SensorRequestHeader h;
                ssize_t n;
                int r;

                r = poll(&pfd, 1, SENSOR_WORKER_IDLE_SEC * 1000);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0) { /* idle: end; the daemon starts another when needed */
                        child_close(&s);
                        _exit(SENSOR_WORKER_EXIT_IDLE);
                }
                if (r < 0)
                        break;
                n = recv(fd, in, SENSOR_REQUEST_MAX, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* retired (the daemon shut its end) */
                memcpy(&h, in, n >= (ssize_t) sizeof(h) ? sizeof(h) : 0);
                if ((size_t) n < sizeof(h) || h.magic != SENSOR_WORKER_MAGIC || h.id == 0 ||
                    h.csr_len != (size_t) n - sizeof(h) || h.csr_len == 0)
                        break;
                if (!s.open)
                        child_try_open(&s); /* each request gets a new attempt (a TPM back, an enrollment done) */
                child_enroll(&s, &h, in + sizeof(h), out, fd);
        }
        child_close(&s);
        _exit(EXIT_SUCCESS);
}
