/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/sensor-csr.h"
#include "common/log.h"
#include "common/password.h"
#include "crypto/ossl-util.h"
#include "est/est.h"
#include "exchange/request.h"
#include "exchange/session.h"
#include "fleetidd/sensor-worker.h"
#include "store/state-certs.h"
#include "tpm/tpm-context.h"

#define SENSOR_WORKER_MAGIC 0x53444946u /* "FIDS" */
#define REQUEST_MAX (sizeof(RequestHeader) + SENSOR_CSR_MAX)
#define ANSWER_MAX (sizeof(AnswerHeader) + SENSOR_WORKER_CHAIN_MAX)
#define CHAIN_CERTS_MAX 8

typedef struct RequestHeader {
        uint32_t magic;
        uint32_t csr_len;
        uint64_t id;
} RequestHeader;

typedef struct AnswerHeader {
        uint32_t magic;
        int32_t failure;
        uint64_t id;
        int32_t error;
        uint32_t retry_after_given;
        int64_t http_status;
        uint64_t retry_after_sec;
        uint32_t chain_len; /* DER certificates, one after the other */
        char diag[DIAG_MAX];
} AnswerHeader;

struct SensorWorker {
        sd_event *event;
        pid_t pid; /* 0 once reaped */
        int fd;
        sd_event_source *io, *child, *deadline;
        uint64_t request_timeout_usec;
        uint64_t in_flight; /* request id, 0 if none */
        bool retired, gone, timed_out, broken;
        Diag why; /* a protocol violation */
        uint8_t *buf;
        SensorWorkerAnswerFn on_answer;
        SensorWorkerGoneFn on_gone;
        void *userdata;
};

/* ---- the child ---- */

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
 * other than 503 (-EBUSY) is the server's own trouble: worth the request again
 * later, as for the gateway's renewals (lib/monitor/outcome.c). */
static SensorFailure classify(int r, long http_status) {
        if (r == -EPROTO && http_status >= 500 && http_status < 600)
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

                r = est_fetch_cacerts(s->session.client, &label_cas, d);
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

        for (int i = 0; i < sk_X509_num(chain) && i < CHAIN_CERTS_MAX; i++) {
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
static void child_enroll(ChildState *s, const RequestHeader *h, const uint8_t *csr_der, uint8_t *out, int fd) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *chain = NULL;
        EstEnrollResult res = {};
        AnswerHeader a = { .magic = SENSOR_WORKER_MAGIC, .id = h->id };
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

static void __attribute__((noreturn)) child_main(int fd, const Config *c, pid_t parent) {
        ChildState s = { .config = c };
        uint8_t *in = malloc(REQUEST_MAX), *out = malloc(ANSWER_MAX);
        sigset_t none;

        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Named, for ps and the journal: "fleetid-sensors" (at most 15 bytes). */
        (void) prctl(PR_SET_NAME, "fleetid-sensors");
        if (getppid() != parent || !in || !out)
                _exit(EXIT_FAILURE);
        child_try_open(&s);

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                RequestHeader h;
                ssize_t n;
                int r;

                r = poll(&pfd, 1, SENSOR_WORKER_IDLE_SEC * 1000);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break; /* idle, or poll failed: end; the daemon starts another when needed */
                n = recv(fd, in, REQUEST_MAX, 0);
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

/* ---- the daemon's side ---- */

static void gone(SensorWorker *w, const siginfo_t *si) {
        Diag why = {};
        uint64_t in_flight = w->in_flight;

        w->gone = true;
        w->in_flight = 0;
        w->io = sd_event_source_disable_unref(w->io);
        w->deadline = sd_event_source_disable_unref(w->deadline);
        if (w->broken)
                why = w->why;
        else if (w->timed_out)
                diag_set(&why, -ETIMEDOUT,
                         "the request did not finish within its timeout of %llus (broker.request_timeout), so "
                         "the sensor worker was killed; the EST server may still issue a certificate that "
                         "fleetidd does not receive",
                         (unsigned long long) (w->request_timeout_usec / 1000000ULL));
        else if (!si)
                diag_set(&why, -ECHILD, "the sensor worker has ended");
        else if (si->si_code == CLD_EXITED)
                diag_set(&why, -ECHILD, "the sensor worker exited with status %d", si->si_status);
        else
                diag_set(&why, -ECHILD, "the sensor worker was killed by signal %d", si->si_status);
        w->on_gone(w->userdata, in_flight, &why);
}

static int take_answer(SensorWorker *w, size_t n, SensorEnrollAnswer *ret) {
        AnswerHeader h;
        const uint8_t *p;

        if (n < sizeof(h))
                return diag_set(&w->why, -EBADMSG, "the sensor worker sent an answer of %zu bytes", n);
        memcpy(&h, w->buf, sizeof(h));
        if (h.magic != SENSOR_WORKER_MAGIC || h.id == 0 || h.id != w->in_flight || h.failure < 0 ||
            h.failure >= _SENSOR_FAILURE_MAX || (h.failure == SENSOR_FAILURE_NONE) != (h.error == 0) ||
            h.error > 0 || h.chain_len != n - sizeof(h) || (h.failure != SENSOR_FAILURE_NONE && h.chain_len) ||
            (h.failure == SENSOR_FAILURE_NONE && !h.chain_len) || !memchr(h.diag, 0, sizeof(h.diag)) ||
            h.retry_after_sec > EST_RETRY_AFTER_MAX || h.http_status < 0 || h.http_status > 999)
                return diag_set(&w->why, -EBADMSG,
                                "the sensor worker sent an answer with values out of range");
        *ret = (SensorEnrollAnswer) {
                .id = h.id,
                .failure = (SensorFailure) h.failure,
                .http_status = (long) h.http_status,
                .retry_after_given = h.retry_after_given != 0,
                .retry_after_sec = h.retry_after_sec,
        };
        if (h.error < 0)
                diag_set(&ret->diag, h.error, "%s", h.diag);
        p = w->buf + sizeof(h);
        while (p < w->buf + n) {
                const unsigned char *q = p;
                X509 *x = d2i_X509(NULL, &q, (long) (w->buf + n - p));

                if (!x || sk_X509_num(ret->chain) >= CHAIN_CERTS_MAX) {
                        X509_free(x);
                        OSSL_STACK_OF_X509_free(ret->chain);
                        ret->chain = NULL;
                        return diag_set(&w->why, -EBADMSG,
                                        "the sensor worker sent a chain that does not parse");
                }
                if (!ret->chain)
                        ret->chain = sk_X509_new_null();
                if (!ret->chain || !sk_X509_push(ret->chain, x)) {
                        X509_free(x);
                        OSSL_STACK_OF_X509_free(ret->chain);
                        ret->chain = NULL;
                        return diag_set(&w->why, -ENOMEM, "out of memory");
                }
                p = q;
        }
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SensorWorker *w = userdata;
        SensorEnrollAnswer a = {};
        ssize_t n;

        n = recv(w->fd, w->buf, ANSWER_MAX, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                /* Its end is closed: the exit follows, and completes it. */
                w->io = sd_event_source_disable_unref(w->io);
                return 0;
        }
        if ((size_t) n > ANSWER_MAX || take_answer(w, (size_t) n, &a) < 0) {
                if ((size_t) n > ANSWER_MAX)
                        diag_set(&w->why, -E2BIG, "the sensor worker sent an answer longer than %zu bytes",
                                 (size_t) ANSWER_MAX);
                w->broken = true;
                w->io = sd_event_source_disable_unref(w->io);
                if (w->pid > 0)
                        (void) kill(w->pid, SIGKILL);
                return 0;
        }
        w->in_flight = 0;
        w->deadline = sd_event_source_disable_unref(w->deadline);
        w->on_answer(w->userdata, &a);
        OSSL_STACK_OF_X509_free(a.chain);
        return 0;
}

static int on_exit_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        SensorWorker *w = userdata;

        w->pid = 0;
        /* An answer it sent before exiting is in the socket: take it first. */
        if (w->io && w->in_flight)
                (void) on_io(NULL, w->fd, EPOLLIN, w);
        gone(w, si);
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        SensorWorker *w = userdata;

        w->deadline = sd_event_source_disable_unref(w->deadline);
        log_warning("the sensor worker (pid %d) has not answered request %llu within %llus "
                    "(broker.request_timeout); killing it",
                    (int) w->pid, (unsigned long long) w->in_flight,
                    (unsigned long long) (w->request_timeout_usec / 1000000ULL));
        w->timed_out = true;
        if (w->pid > 0)
                (void) kill(w->pid, SIGKILL);
        return 0;
}

int sensor_worker_submit(SensorWorker *w, uint64_t id, const uint8_t *csr, size_t len) {
        RequestHeader h = { .magic = SENSOR_WORKER_MAGIC, .csr_len = (uint32_t) len, .id = id };
        uint8_t *msg;
        ssize_t n;
        int r;

        if (!sensor_worker_usable(w))
                return -ESHUTDOWN;
        if (w->in_flight)
                return -EBUSY;
        if (id == 0 || len == 0 || len > SENSOR_CSR_MAX)
                return -EINVAL;
        msg = malloc(sizeof(h) + len);
        if (!msg)
                return -ENOMEM;
        memcpy(msg, &h, sizeof(h));
        memcpy(msg + sizeof(h), csr, len);
        /* One datagram into an empty socket (one request at a time): it fits at once. */
        n = send(w->fd, msg, sizeof(h) + len, MSG_DONTWAIT | MSG_NOSIGNAL);
        r = n < 0 ? -errno : 0;
        free(msg);
        if (r < 0)
                return r;
        w->in_flight = id;
        if (w->request_timeout_usec > 0) {
                r = sd_event_add_time_relative(w->event, &w->deadline, CLOCK_MONOTONIC,
                                               w->request_timeout_usec, 1000000ULL, on_deadline, w);
                if (r < 0)
                        log_warning_errno(r, "cannot bound the sensor worker's request: %m");
        }
        return 0;
}

bool sensor_worker_busy(const SensorWorker *w) {
        return w && w->in_flight != 0;
}

bool sensor_worker_usable(const SensorWorker *w) {
        return w && !w->retired && !w->gone && !w->broken && !w->timed_out;
}

void sensor_worker_retire(SensorWorker *w) {
        if (!w || w->retired)
                return;
        w->retired = true;
        /* The child reads the end of the stream once the request in flight is answered. */
        (void) shutdown(w->fd, SHUT_WR);
}

SensorWorker *sensor_worker_free(SensorWorker *w) {
        if (!w)
                return NULL;
        w->child = sd_event_source_disable_unref(w->child);
        if (w->pid > 0) {
                (void) kill(w->pid, SIGKILL);
                while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->deadline);
        if (w->fd >= 0)
                close(w->fd);
        sd_event_unref(w->event);
        free(w->buf);
        free(w);
        return NULL;
}

int sensor_worker_start(sd_event *e, const Config *c, uint64_t request_timeout_usec,
                        SensorWorkerAnswerFn on_answer, SensorWorkerGoneFn on_gone, void *userdata,
                        SensorWorker **ret) {
        _cleanup_(sensor_worker_freep) SensorWorker *w = NULL;
        pid_t parent = getpid();
        int sv[2], r, size = (int) ANSWER_MAX * 2;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->event = sd_event_ref(e);
        w->request_timeout_usec = request_timeout_usec;
        w->on_answer = on_answer;
        w->on_gone = on_gone;
        w->userdata = userdata;
        w->buf = malloc(ANSWER_MAX);
        if (!w->buf)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* Room for the largest message each way. */
        (void) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        (void) setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        fflush(NULL);
        w->pid = fork();
        if (w->pid < 0) {
                r = -errno;
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (w->pid == 0) {
                close(sv[0]);
                child_main(sv[1], c, parent);
        }
        close(sv[1]);
        w->fd = sv[0];
        r = sd_event_add_child(e, &w->child, w->pid, WEXITED, on_exit_child, w);
        if (r >= 0)
                r = sd_event_add_io(e, &w->io, w->fd, EPOLLIN, on_io, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->child, "sensor-worker-exit");
        (void) sd_event_source_set_description(w->io, "sensor-worker-answer");
        log_debug("sensor worker started (pid %d)", (int) w->pid);
        *ret = TAKE_PTR(w);
        return 0;
}
