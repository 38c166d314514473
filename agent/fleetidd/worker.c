/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "crypto/ossl-util.h"
#include "fleetidd/frame.h"
#include "fleetidd/worker.h"

#define WORKER_MAGIC 0x57444946u /* "FIDW" */

enum {
        FRAME_STATE = 1,     /* int32 DaemonState */
        FRAME_CERT_ADOPTED,  /* DER certificate */
        FRAME_CERT_RETIRED,  /* DER certificate */
        FRAME_CERT_REFUSED,  /* DER certificate */
        FRAME_DEFERRED_SPKI, /* DER SubjectPublicKeyInfo */
        FRAME_RESULT,        /* WorkerResultWire, last */
};

enum {
        RESULT_FETCHED = 1u << 0,
        RESULT_CA_CHANGED = 1u << 1,
        RESULT_CA_FIRST = 1u << 2,
        RESULT_ADOPTED_CHANGED = 1u << 3,
        RESULT_TPM_REPLACED = 1u << 4,
        RESULT_TPM_LOCKOUT_KNOWN = 1u << 5,
        RESULT_TPM_LOCKOUT = 1u << 6,
        RESULT_BIRTH_READ = 1u << 7,
        RESULT_BIRTH_DA = 1u << 8,
        RESULT_BIRTH_EXPIRED = 1u << 9,
        _RESULT_FLAGS_ALL = (1u << 10) - 1,
};

typedef struct WorkerResultWire {
        int32_t error;
        int32_t outcome;
        uint32_t flags;
        int32_t refused_error;
        int64_t http_status;
        uint32_t retry_after_given;
        uint32_t retry_after_present;
        uint32_t retry_after_invalid;
        uint64_t retry_after_sec;
        char retry_after_text[sizeof(((EstRetryAfterText *) NULL)->text)];
        char diag[DIAG_MAX];
        char refused_why[DIAG_MAX];
} WorkerResultWire;

struct WorkerOutput {
        FILE *f;
        bool failed;
};

struct Worker {
        sd_event *event;
        WorkerKind kind;
        pid_t pid; /* 0 once reaped, or inline */
        int fd;
        sd_event_source *io, *child, *kill_timer, *defer, *deadline;
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

static const char *const worker_kind_names[_WORKER_KIND_MAX] = {
        [WORKER_ENROLL] = "enrollment",
        [WORKER_RENEW] = "renewal",
        [WORKER_CACERTS] = "/cacerts refresh",
        [WORKER_RESET] = "factory reset",
};

const char *worker_kind_to_string(WorkerKind k) {
        return k >= 0 && k < _WORKER_KIND_MAX ? worker_kind_names[k] : NULL;
}

WorkerKind worker_kind(const Worker *w) {
        return w->kind;
}

void worker_result_done(WorkerResult *r) {
        if (!r)
                return;
        trust_changes_done(&r->trust_changes);
        free(r->deferred_spki);
        *r = (WorkerResult) {};
}

/* ---- the child's side ---- */

static int send_frame(WorkerOutput *o, uint32_t type, const void *data, size_t len) {
        if (o->failed)
                return -EIO;
        if (len > WORKER_FRAME_MAX || frame_write(o->f, WORKER_MAGIC, type, data, len) < 0) {
                o->failed = true;
                return -EIO;
        }
        return 0;
}

int worker_send_raw(WorkerOutput *o, const void *data, size_t len) {
        if (o->failed || (len > 0 && fwrite(data, len, 1, o->f) != 1) || fflush(o->f) != 0) {
                o->failed = true;
                return -EIO;
        }
        return 0;
}

int worker_send_state(WorkerOutput *o, DaemonState s) {
        int32_t v = (int32_t) s;

        return send_frame(o, FRAME_STATE, &v, sizeof(v));
}

static void send_certs(WorkerOutput *o, uint32_t type, STACK_OF(X509) *certs) {
        for (int i = 0; i < sk_X509_num(certs) && i < WORKER_CERTS_MAX; i++) {
                unsigned char *der = NULL;
                int n = i2d_X509(sk_X509_value(certs, i), &der);

                if (n > 0)
                        (void) send_frame(o, type, der, (size_t) n);
                OPENSSL_free(der);
        }
}

int worker_send_result(WorkerOutput *o, const WorkerResult *r) {
        const TrustChanges *ch = &r->trust_changes;
        WorkerResultWire w = {
                .error = r->error > 0 ? 0 : r->error,
                .outcome = r->outcome,
                .flags = (r->fetched ? RESULT_FETCHED : 0) | (ch->ca_changed ? RESULT_CA_CHANGED : 0) |
                         (ch->ca_first ? RESULT_CA_FIRST : 0) |
                         (ch->adopted_changed ? RESULT_ADOPTED_CHANGED : 0) |
                         (r->tpm_replaced ? RESULT_TPM_REPLACED : 0) |
                         (r->tpm_lockout_known ? RESULT_TPM_LOCKOUT_KNOWN : 0) |
                         (r->tpm_lockout ? RESULT_TPM_LOCKOUT : 0) | (r->birth_read ? RESULT_BIRTH_READ : 0) |
                         (r->birth_da_protected ? RESULT_BIRTH_DA : 0) |
                         (r->birth_expired ? RESULT_BIRTH_EXPIRED : 0),
                .refused_error = ch->refused_why.error,
                .http_status = r->hint.http_status,
                .retry_after_given = r->hint.retry_after_given,
                .retry_after_present = r->hint.retry_after.present,
                .retry_after_invalid = r->hint.retry_after.invalid,
                .retry_after_sec = r->hint.retry_after_sec,
        };

        snprintf(w.retry_after_text, sizeof(w.retry_after_text), "%s", r->hint.retry_after.text);
        snprintf(w.diag, sizeof(w.diag), "%s", r->error < 0 ? diag_text(&r->diag, r->error) : "");
        snprintf(w.refused_why, sizeof(w.refused_why), "%s", ch->refused_why.text);
        send_certs(o, FRAME_CERT_ADOPTED, ch->adopted);
        send_certs(o, FRAME_CERT_RETIRED, ch->retired);
        send_certs(o, FRAME_CERT_REFUSED, ch->refused);
        if (r->deferred_spki_len > 0)
                (void) send_frame(o, FRAME_DEFERRED_SPKI, r->deferred_spki, r->deferred_spki_len);
        return send_frame(o, FRAME_RESULT, &w, sizeof(w));
}

typedef struct ChildRun {
        WorkerRunFn run;
        void *userdata;
} ChildRun;

static void __attribute__((noreturn)) child_main(int fd, void *userdata) {
        ChildRun *c = userdata;
        WorkerOutput out = {};

        out.f = fdopen(fd, "w");
        if (!out.f)
                _exit(EXIT_FAILURE);
        c->run(c->userdata, &out);
        /* _exit(): no atexit handlers, no destructors of the daemon's state. */
        _exit(fclose(out.f) == 0 && !out.failed ? EXIT_SUCCESS : EXIT_FAILURE);
}

/* ---- the parent's side ---- */

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
                if (w->exit.si_code == CLD_EXITED)
                        snprintf(how, sizeof(how), "exited with status %d", w->exit.si_status);
                else
                        snprintf(how, sizeof(how), "was killed by signal %d", w->exit.si_status);
                if (w->timed_out)
                        diag_set(&r->diag, -ETIMEDOUT,
                                 "the %s worker did not finish within %llus and was stopped (it %s)",
                                 worker_kind_to_string(w->kind),
                                 (unsigned long long) (w->timeout_usec / 1000000ULL), how);
                else if (w->rd.broken.error != 0)
                        diag_set(&r->diag, -EPROTO, "the %s worker sent a bad message (%s) and %s",
                                 worker_kind_to_string(w->kind), w->rd.broken.text, how);
                else
                        diag_set(&r->diag, -ECHILD, "the %s worker %s without a result",
                                 worker_kind_to_string(w->kind), how);
                r->error = r->diag.error;
                r->outcome = ATTEMPT_TRANSIENT;
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

static int on_exit_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;

        w->exit = *si;
        w->pid = 0; /* sd-event reaps it after this callback */
        w->kill_timer = sd_event_source_disable_unref(w->kill_timer);
        w->deadline = sd_event_source_disable_unref(w->deadline);
        /* Its end is closed: everything it sent is in the socket now. */
        if (w->io)
                (void) receive(w);
        w->io = sd_event_source_disable_unref(w->io);
        finish(w);
        return 0;
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
        w->child = sd_event_source_disable_unref(w->child);
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

/* The frames go through memory and the same checks; the result comes from
 * the next loop iteration, as a worker's would. */
static int run_inline(Worker *w, WorkerRunFn run, void *userdata) {
        _cleanup_free_ char *data = NULL;
        WorkerOutput out = {};
        size_t size = 0, off = 0;

        out.f = open_memstream(&data, &size);
        if (!out.f)
                return -ENOMEM;
        run(userdata, &out);
        if (fclose(out.f) != 0)
                return -ENOMEM;
        while (off < size && w->rd.broken.error == 0) {
                size_t n = size - off, room = WORKER_FRAME_MAX + sizeof(FrameHeader) - w->rd.len;

                n = n < room ? n : room;
                frame_reader_feed(&w->rd, data + off, n);
                off += n;
        }
        w->exit = (siginfo_t) { .si_code = CLD_EXITED, .si_status = out.failed ? EXIT_FAILURE : 0 };
        return sd_event_add_defer(w->event, &w->defer, on_inline_done, w);
}

int worker_start(sd_event *e, WorkerKind kind, uint64_t timeout_usec, bool inline_run, WorkerRunFn run,
                 void *run_data, WorkerStateFn on_state, WorkerDoneFn on_done, void *userdata, Worker **ret) {
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
        if (inline_run) {
                r = run_inline(w, run, run_data);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(w);
                return 0;
        }

        r = frame_fork(child_main, &(ChildRun) { run, run_data }, &w->pid, &w->fd);
        if (r < 0)
                return r;
        r = sd_event_add_child(e, &w->child, w->pid, WEXITED, on_exit_child, w);
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
        (void) sd_event_source_set_description(w->child, "worker-exit");
        (void) sd_event_source_set_description(w->io, "worker-result");
        log_debug("%s worker started (pid %d)", worker_kind_to_string(kind), (int) w->pid);
        *ret = TAKE_PTR(w);
        return 0;
}
