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

#include "common/log.h"
#include "crypto/ossl-util.h"
#include "exchange/request.h"
#include "common/child-watch.h"
#include "fleetidd/sensor-worker.h"
#include "fleetidd/spawn.h"

struct SensorWorker {
        sd_event *event;
        pid_t pid; /* 0 once reaped */
        int fd;
        sd_event_source *io, *deadline;
        ChildWatch *child;
        uint64_t request_timeout_usec;
        uint64_t in_flight; /* request id, 0 if none */
        bool retired, gone, timed_out, broken;
        Diag why; /* a protocol violation */
        uint8_t *buf;
        SensorWorkerAnswerFn on_answer;
        SensorWorkerGoneFn on_gone;
        void *userdata;
};

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
        else if (si->si_code == CLD_EXITED && si->si_status == SENSOR_WORKER_EXIT_IDLE)
                diag_set(&why, -EAGAIN, "the sensor worker ended idle, before it read the request sent to it");
        else {
                char how[80];

                diag_set(&why, -ECHILD, "the sensor worker %s", child_watch_describe(si, how, sizeof(how)));
        }
        w->on_gone(w->userdata, in_flight, &why);
}

static int take_answer(SensorWorker *w, size_t n, SensorEnrollAnswer *ret) {
        SensorAnswerHeader h;
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

                if (!x || sk_X509_num(ret->chain) >= SENSOR_CHAIN_CERTS_MAX) {
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

        n = recv(w->fd, w->buf, SENSOR_ANSWER_MAX, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                /* Its end is closed: the exit follows, and completes it. */
                w->io = sd_event_source_disable_unref(w->io);
                return 0;
        }
        if ((size_t) n > SENSOR_ANSWER_MAX || take_answer(w, (size_t) n, &a) < 0) {
                if ((size_t) n > SENSOR_ANSWER_MAX)
                        diag_set(&w->why, -E2BIG, "the sensor worker sent an answer longer than %zu bytes",
                                 (size_t) SENSOR_ANSWER_MAX);
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

static void on_exit_child(ChildWatch *cw, const siginfo_t *si, void *userdata) {
        SensorWorker *w = userdata;

        w->pid = 0; /* reaped */
        w->child = child_watch_free(w->child);
        /* An answer it sent before exiting is in the socket: take it first. */
        if (w->io && w->in_flight)
                (void) on_io(NULL, w->fd, EPOLLIN, w);
        gone(w, si);
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
        SensorRequestHeader h = { .magic = SENSOR_WORKER_MAGIC, .csr_len = (uint32_t) len, .id = id };
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
        w->child = child_watch_free(w->child);
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
        int r, size = (int) SENSOR_ANSWER_MAX * 2;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->event = sd_event_ref(e);
        w->request_timeout_usec = request_timeout_usec;
        w->on_answer = on_answer;
        w->on_gone = on_gone;
        w->userdata = userdata;
        w->buf = malloc(SENSOR_ANSWER_MAX);
        if (!w->buf)
                return -ENOMEM;
        r = spawn_child(CHILD_SENSORS, c, NULL, 0, SOCK_SEQPACKET, &w->pid, &w->fd);
        if (r < 0)
                return r;
        /* Room for the largest answer (the worker sizes its own end likewise). */
        (void) setsockopt(w->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        r = child_watch_new(e, w->pid, "sensor-worker-exit", on_exit_child, w, &w->child);
        if (r >= 0)
                r = sd_event_add_io(e, &w->io, w->fd, EPOLLIN, on_io, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->io, "sensor-worker-answer");
        log_debug("sensor worker started (pid %d)", (int) w->pid);
        *ret = TAKE_PTR(w);
        return 0;
}
