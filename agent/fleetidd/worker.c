/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "crypto/ossl-util.h"
#include "common/child-watch.h"
#include "common/frame.h"
#include "fleetidd/spawn.h"
#include "fleetidd/worker.h"

struct Worker {
        sd_event *event;
        WorkerKind kind;
        pid_t pid; /* 0 once reaped, or inline */
        int fd;
        sd_event_source *io, *kill_timer, *defer, *deadline;
        ChildWatch *child;
        uint64_t timeout_usec;
        bool timed_out;
        FrameReader rd; /* its frames, checked; rd.broken: the first protocol violation */
        bool have_result;
        siginfo_t exit;
        WorkerResult result;
        WorkerStateFn on_state;
        WorkerDoneFn on_done;
        void *userdata;
};

WorkerKind worker_kind(const Worker *w) {
        return w->kind;
}

static int take_cert(STACK_OF(X509) **sk, const uint8_t *p, size_t len, Diag *d) {
        const unsigned char *q = p;
        X509 *x;

        if (sk_X509_num(*sk) >= WORKER_CERTS_MAX)
                return diag_set(d, -E2BIG, "more than %d certificates in one list", WORKER_CERTS_MAX);
        x = d2i_X509(NULL, &q, (long) len);
        if (!x || q != p + len) {
                X509_free(x);
                return diag_set(d, -EBADMSG, "a certificate that does not parse");
        }
        if (!*sk)
                *sk = sk_X509_new_null();
        if (!*sk || !sk_X509_push(*sk, x)) {
                X509_free(x);
                return diag_set(d, -ENOMEM, "out of memory");
        }
        return 0;
}

static bool terminated(const char *s, size_t size) {
        return memchr(s, '\0', size) != NULL;
}

static int take_result(Worker *w, const uint8_t *p, size_t len, Diag *d) {
        WorkerResult *r = &w->result;
        WorkerResultWire wire;

        if (len != sizeof(wire))
                return diag_set(d, -EBADMSG, "a result of %zu bytes, not %zu", len, sizeof(wire));
        memcpy(&wire, p, sizeof(wire));
        if (wire.error > 0 || wire.outcome < 0 || wire.outcome >= _ATTEMPT_OUTCOME_MAX ||
            (wire.error < 0) == (wire.outcome == ATTEMPT_OK) || (wire.flags & ~_RESULT_FLAGS_ALL) ||
            wire.refused_error > 0 || !terminated(wire.diag, sizeof(wire.diag)) ||
            !terminated(wire.refused_why, sizeof(wire.refused_why)) ||
            !terminated(wire.retry_after_text, sizeof(wire.retry_after_text)) ||
            wire.retry_after_sec > EST_RETRY_AFTER_MAX || wire.http_status < 0 || wire.http_status > 999)
                return diag_set(d, -EBADMSG, "a result with values out of range");
        r->error = wire.error;
        r->outcome = (AttemptOutcome) wire.outcome;
        r->fetched = wire.flags & RESULT_FETCHED;
        r->trust_changes.ca_changed = wire.flags & RESULT_CA_CHANGED;
        r->trust_changes.ca_first = wire.flags & RESULT_CA_FIRST;
        r->trust_changes.adopted_changed = wire.flags & RESULT_ADOPTED_CHANGED;
        r->tpm_replaced = wire.flags & RESULT_TPM_REPLACED;
        r->tpm_lockout_known = wire.flags & RESULT_TPM_LOCKOUT_KNOWN;
        r->tpm_lockout = wire.flags & RESULT_TPM_LOCKOUT;
        r->birth_read = wire.flags & RESULT_BIRTH_READ;
        r->birth_da_protected = wire.flags & RESULT_BIRTH_DA;
        r->birth_expired = wire.flags & RESULT_BIRTH_EXPIRED;
        if (wire.refused_error < 0)
                diag_set(&r->trust_changes.refused_why, wire.refused_error, "%s", wire.refused_why);
        if (r->error < 0)
                diag_set(&r->diag, r->error, "%s", wire.diag);
        r->hint = (EstRetryHint) {
                .http_status = (long) wire.http_status,
                .retry_after_given = wire.retry_after_given != 0,
                .retry_after_sec = wire.retry_after_sec,
                .retry_after = { .present = wire.retry_after_present != 0,
                                 .invalid = wire.retry_after_invalid != 0 },
        };
        snprintf(r->hint.retry_after.text, sizeof(r->hint.retry_after.text), "%s", wire.retry_after_text);
        w->have_result = true;
        return 0;
}

static int take_frame(void *userdata, uint32_t type, const uint8_t *p, size_t len, Diag *d) {
        Worker *w = userdata;
        WorkerResult *r = &w->result;
        int32_t state;

        if (w->have_result)
                return diag_set(d, -EBADMSG, "a frame after the result");
        switch (type) {
        case FRAME_STATE:
                if (len != sizeof(state))
                        return diag_set(d, -EBADMSG, "a state frame of %zu bytes", len);
                memcpy(&state, p, sizeof(state));
                if (state < 0 || state >= _DAEMON_STATE_MAX)
                        return diag_set(d, -EBADMSG, "an unknown state %d", (int) state);
                if (w->on_state)
                        w->on_state(w->userdata, (DaemonState) state);
                return 0;
        case FRAME_CERT_ADOPTED:
                return take_cert(&r->trust_changes.adopted, p, len, d);
        case FRAME_CERT_RETIRED:
                return take_cert(&r->trust_changes.retired, p, len, d);
        case FRAME_CERT_REFUSED:
                return take_cert(&r->trust_changes.refused, p, len, d);
        case FRAME_DEFERRED_SPKI:
                if (r->deferred_spki || len == 0)
                        return diag_set(d, -EBADMSG, "a second or empty deferred key");
                r->deferred_spki = malloc(len);
                if (!r->deferred_spki)
                        return diag_set(d, -ENOMEM, "out of memory");
                memcpy(r->deferred_spki, p, len);
                r->deferred_spki_len = len;
                return 0;
        case FRAME_RESULT:
                return take_result(w, p, len, d);
        default:
                return diag_set(d, -EBADMSG, "an unknown frame type %u", type);
        }
}

/* Reads what is there without blocking; 0 at the end of the stream, -EAGAIN if more may come. */
static int receive(Worker *w) {
        return frame_reader_receive(&w->rd, w->fd);
}

static void finish(Worker *w) {
        WorkerResult *r = &w->result;
        char how[64];

        if (w->rd.broken.error != 0 || !w->have_result) {
                worker_result_done(r);
                (void) child_watch_describe(&w->exit, how, sizeof(how));
                if (w->timed_out)
                        diag_set(&r->diag, -ETIMEDOUT,
                                 "the %s worker did not finish within %llus and was stopped (it %s)",
                                 worker_kind_to_string(w->kind),
                                 (unsigned long long) (w->timeout_usec / 1000000ULL), how);
                else if (w->rd.broken.error != 0)
                        diag_set(&r->diag, -EPROTO, "the %s worker sent a bad message (%s) and %s",
                                 worker_kind_to_string(w->kind), w->rd.broken.text, how);
                else if (w->exit.si_code == CLD_EXITED && w->exit.si_status == 127 && !w->rd.total)
                        diag_set(&r->diag, -ECHILD,
                                 "the %s worker could not be run (exit status 127; the log says why)",
                                 worker_kind_to_string(w->kind));
                else
                        diag_set(&r->diag, -ECHILD, "the %s worker %s without a result",
                                 worker_kind_to_string(w->kind), how);
                r->error = r->diag.error;
                r->outcome = ATTEMPT_TRANSIENT;
                r->lost = true;
        }
        w->on_done(w->userdata, w->kind, r); /* may free w */
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;

        if (receive(w) == -EAGAIN)
                return 0;
        /* The end of the stream or a bad message: the exit completes it. */
        w->io = sd_event_source_disable_unref(w->io);
        if (w->rd.broken.error != 0 && w->pid > 0)
                (void) kill(w->pid, SIGKILL);
        return 0;
}

static void on_exit_child(ChildWatch *cw, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;

        w->exit = *si;
        w->pid = 0; /* reaped */
        w->child = child_watch_free(w->child);
        w->kill_timer = sd_event_source_disable_unref(w->kill_timer);
        w->deadline = sd_event_source_disable_unref(w->deadline);
        /* Its end is closed: everything it sent is in the socket now. */
        if (w->io)
                (void) receive(w);
        w->io = sd_event_source_disable_unref(w->io);
        finish(w);
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        if (w->pid > 0) {
                log_warning("the %s worker (pid %d) did not end on SIGTERM within %llums; killing it",
                            worker_kind_to_string(w->kind), (int) w->pid,
                            (unsigned long long) (WORKER_KILL_USEC / 1000));
                (void) kill(w->pid, SIGKILL);
        }
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        w->deadline = sd_event_source_disable_unref(w->deadline);
        log_warning("the %s worker (pid %d) has run for %llus; stopping it", worker_kind_to_string(w->kind),
                    (int) w->pid, (unsigned long long) (w->timeout_usec / 1000000ULL));
        w->timed_out = true;
        (void) worker_kill(w);
        return 0;
}

int worker_kill(Worker *w) {
        if (!w || w->pid <= 0 || w->kill_timer)
                return 0;
        if (kill(w->pid, SIGTERM) < 0)
                return -errno;
        return sd_event_add_time_relative(w->event, &w->kill_timer, CLOCK_MONOTONIC, WORKER_KILL_USEC, 0,
                                          on_kill_timer, w);
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        w->child = child_watch_free(w->child);
        if (w->pid > 0) {
                (void) kill(w->pid, SIGKILL);
                while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->kill_timer);
        sd_event_source_disable_unref(w->defer);
        sd_event_source_disable_unref(w->deadline);
        if (w->fd >= 0)
                close(w->fd);
        worker_result_done(&w->result);
        sd_event_unref(w->event);
        frame_reader_done(&w->rd);
        free(w);
        return NULL;
}

static int on_inline_done(sd_event_source *s, void *userdata) {
        Worker *w = userdata;

        w->defer = sd_event_source_disable_unref(w->defer);
        finish(w);
        return 0;
}

/* The loop waits, blocked, for the worker's whole message and its exit; the
 * frames go through the same checks, and the result comes from the next
 * loop iteration, as a worker's would. */
static int run_inline(Worker *w) {
        int r;

        (void) frame_reader_receive(&w->rd, w->fd); /* blocking: returns at the end, or at a bad frame */
        if (w->rd.broken.error != 0)
                (void) kill(w->pid, SIGKILL); /* it may be blocked writing more: no waiting for it */
        for (;;) {
                r = waitid(P_PID, (id_t) w->pid, &w->exit, WEXITED);
                if (r >= 0 || errno != EINTR)
                        break;
        }
        if (r < 0)
                return -errno;
        w->pid = 0;
        return sd_event_add_defer(w->event, &w->defer, on_inline_done, w);
}

int worker_start(sd_event *e, WorkerKind kind, const Config *c, const void *extra, size_t extra_len,
                 uint64_t timeout_usec, bool inline_run, WorkerStateFn on_state, WorkerDoneFn on_done,
                 void *userdata, Worker **ret) {
        _cleanup_(worker_freep) Worker *w = NULL;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->kind = kind;
        w->timeout_usec = timeout_usec;
        w->event = sd_event_ref(e);
        w->on_state = on_state;
        w->on_done = on_done;
        w->userdata = userdata;
        r = frame_reader_init(&w->rd, WORKER_MAGIC, WORKER_FRAME_MAX, WORKER_MESSAGE_MAX, take_frame, w);
        if (r < 0)
                return r;
        _Static_assert((int) WORKER_ENROLL == (int) CHILD_ENROLL && (int) WORKER_RESET == (int) CHILD_RESET,
                       "a WorkerKind is its ChildRole");
        r = spawn_child((ChildRole) kind, c, extra, extra_len, SOCK_STREAM, &w->pid, &w->fd);
        if (r < 0)
                return r;
        if (inline_run) {
                r = run_inline(w);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(w);
                return 0;
        }
        if (fcntl(w->fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        r = child_watch_new(e, w->pid, "worker-exit", on_exit_child, w, &w->child);
        if (r < 0)
                return r;
        r = sd_event_add_io(e, &w->io, w->fd, EPOLLIN, on_io, w);
        if (r < 0)
                return r;
        if (timeout_usec > 0) {
                r = sd_event_add_time_relative(e, &w->deadline, CLOCK_MONOTONIC, timeout_usec, 1000000ULL,
                                               on_deadline, w);
                if (r < 0)
                        return r;
        }
        (void) sd_event_source_set_description(w->io, "worker-result");
        log_debug("%s worker started (pid %d)", worker_kind_to_string(kind), (int) w->pid);
        *ret = TAKE_PTR(w);
        return 0;
}
