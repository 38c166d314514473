/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "crypto/challenge.h"
#include "crypto/ossl-util.h"
#include "common/child-watch.h"
#include "common/frame.h"
#include "fleetidd/spawn.h"
#include "common/signer-wire.h"
#include "fleetidd/signer.h"

typedef struct Pending {
        uint32_t id;
        SignerKey key;
        SignerAnswerFn fn;
        void *userdata;
} Pending;

struct Signer {
        sd_event *event;
        pid_t pid; /* 0 once reaped */
        int fd;
        sd_event_source *io, *idle_timer, *answer_timer;
        ChildWatch *child;
        uint64_t idle_usec;
        bool retired;
        FrameReader rd;
        Pending queue[SIGNER_QUEUE_MAX]; /* a ring, oldest at head */
        size_t head, n;
        uint32_t next_id;
        SignerChain chains[_SIGNER_KEY_MAX]; /* n 0: not sent yet */
        uint8_t *chain_buf[_SIGNER_KEY_MAX]; /* the chains' DER */
        Diag fault;                          /* why it is being killed: a hang */
        SignerExitFn on_exit;
        void *userdata;
};

bool signer_usable(const Signer *s) {
        return s && !s->retired && s->pid > 0;
}

pid_t signer_pid(const Signer *s) {
        return s->pid;
}

static void answer_head(Signer *s, const SignerAnswer *a) {
        Pending p = s->queue[s->head];

        s->head = (s->head + 1) % SIGNER_QUEUE_MAX;
        s->n--;
        p.fn(p.userdata, a);
}

/* Every request still in flight gets the error r, with the text of d. */
static void fail_all(Signer *s, int r, const Diag *d) {
        while (s->n > 0) {
                SignerAnswer a = { .error = r, .key = s->queue[s->head].key };

                diag_set(&a.diag, r, "%s", diag_text(d, r));
                answer_head(s, &a);
        }
}

/* Keeps a key's chain as the DER the signer sent (each answer returns it
 * as it is, with no encoding per call), once every certificate parsed. */
static int take_chain(Signer *s, const uint8_t *p, size_t len, Diag *d) {
        _cleanup_free_ uint8_t *buf = NULL;
        SignerChain c = {};
        uint32_t key;
        size_t off = sizeof(key);

        if (len < sizeof(key))
                return diag_set(d, -EBADMSG, "a chain frame of %zu bytes", len);
        memcpy(&key, p, sizeof(key));
        if (key >= _SIGNER_KEY_MAX)
                return diag_set(d, -EBADMSG, "a chain for an unknown key %u", key);
        buf = malloc(len);
        if (!buf)
                return diag_set(d, -ENOMEM, "out of memory");
        memcpy(buf, p, len);
        while (off < len) {
                const unsigned char *q;
                uint32_t l;
                X509 *x;

                if (len - off < sizeof(l) || c.n >= SIGNER_CHAIN_MAX)
                        return diag_set(d, -EBADMSG, "a chain frame that does not add up");
                memcpy(&l, buf + off, sizeof(l));
                off += sizeof(l);
                if (l == 0 || l > len - off)
                        return diag_set(d, -EBADMSG, "a certificate of %u bytes in a chain frame", l);
                q = buf + off;
                x = d2i_X509(NULL, &q, (long) l);
                X509_free(x);
                if (!x || q != buf + off + l)
                        return diag_set(d, -EBADMSG, "a certificate that does not parse");
                c.der[c.n] = buf + off;
                c.len[c.n++] = l;
                off += l;
        }
        if (c.n < 1)
                return diag_set(d, -EBADMSG, "an empty chain");
        free(s->chain_buf[key]);
        s->chain_buf[key] = TAKE_PTR(buf);
        s->chains[key] = c;
        return 0;
}

static void arm_timers(Signer *s);

static int take_answer(Signer *s, const uint8_t *p, size_t len, Diag *d) {
        SignerAnswerWire w;
        SignerAnswer a = {};
        Pending *head = &s->queue[s->head];

        if (len != sizeof(w))
                return diag_set(d, -EBADMSG, "an answer of %zu bytes, not %zu", len, sizeof(w));
        memcpy(&w, p, sizeof(w));
        if (s->n == 0 || w.id != head->id)
                return diag_set(d, -EBADMSG, "an answer to no request in flight (id %u)", w.id);
        if (w.error > 0 || !memchr(w.diag, '\0', sizeof(w.diag)) ||
            (w.error == 0 && (w.alg >= _SIGNER_ALG_MAX || w.sig_len == 0 || w.sig_len > sizeof(w.sig) ||
                              s->chains[head->key].n == 0)))
                return diag_set(d, -EBADMSG, "an answer with values out of range");
        a.error = w.error;
        a.key = head->key;
        if (w.error < 0)
                diag_set(&a.diag, w.error, "%s", w.diag);
        else {
                a.alg = w.alg == SIGNER_ALG_ECDSA ? CHALLENGE_ALG_ECDSA : CHALLENGE_ALG_RSA_PKCS1;
                a.sig = w.sig;
                a.sig_len = w.sig_len;
                a.chain = &s->chains[head->key];
        }
        answer_head(s, &a);
        arm_timers(s);
        return 0;
}

static int take_frame(void *userdata, uint32_t type, const uint8_t *p, size_t len, Diag *d) {
        Signer *s = userdata;

        switch (type) {
        case SIGNER_FRAME_CHAIN:
                return take_chain(s, p, len, d);
        case SIGNER_FRAME_ANSWER:
                return take_answer(s, p, len, d);
        default:
                return diag_set(d, -EBADMSG, "an unknown frame type %u", type);
        }
}

/* Stops taking requests and kills the process; its exit completes the stop. */
static void kill_now(Signer *s) {
        s->retired = true;
        s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
        s->answer_timer = sd_event_source_disable_unref(s->answer_timer);
        if (s->pid > 0)
                (void) kill(s->pid, SIGKILL);
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Signer *s = userdata;

        if (frame_reader_receive(&s->rd, s->fd) == -EAGAIN)
                return 0;
        s->io = sd_event_source_disable_unref(s->io);
        if (s->rd.broken.error != 0) {
                log_warning("the signer (pid %d) sent a bad message (%s); killing it", (int) s->pid,
                            s->rd.broken.text);
                kill_now(s);
        }
        return 0;
}

static void on_exit_child(ChildWatch *cw, const siginfo_t *si, void *userdata) {
        Signer *s = userdata;
        char how[64];
        Diag d = {};
        int r;

        s->pid = 0;
        s->retired = true;
        s->child = child_watch_free(s->child);
        /* Its end is closed: its last answers are in the socket now. */
        if (s->io)
                (void) frame_reader_receive(&s->rd, s->fd);
        s->io = sd_event_source_disable_unref(s->io);
        s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
        s->answer_timer = sd_event_source_disable_unref(s->answer_timer);
        (void) child_watch_describe(si, how, sizeof(how));
        if (s->n > 0) {
                if (s->fault.error != 0)
                        r = diag_set(&d, s->fault.error, "%s", s->fault.text);
                else if (s->rd.broken.error != 0)
                        r = diag_set(&d, -EPROTO, "the signing process sent a bad message (%s) and %s",
                                     s->rd.broken.text, how);
                else
                        r = diag_set(&d, -ECHILD,
                                     "the signing process %s before it answered; the next call starts a new one",
                                     how);
                log_warning("signer (pid %d) ended with %zu call(s) in flight: %s", (int) si->si_pid, s->n,
                            d.text);
                fail_all(s, r, &d);
        } else
                log_debug("signer (pid %d) %s", (int) si->si_pid, how);
        s->on_exit(s->userdata, s); /* may free s */
}

static int on_idle(sd_event_source *es, uint64_t usec, void *userdata) {
        Signer *s = userdata;

        log_debug("signer (pid %d): no call for %llus; it exits", (int) s->pid,
                  (unsigned long long) (s->idle_usec / 1000000ULL));
        signer_retire(s);
        return 0;
}

static int on_answer_timeout(sd_event_source *es, uint64_t usec, void *userdata) {
        Signer *s = userdata;

        diag_set(&s->fault, -ETIMEDOUT,
                 "the signing process did not answer within %llus (the TPM hangs?); it was killed",
                 (unsigned long long) (SIGNER_ANSWER_USEC / 1000000ULL));
        log_warning("signer (pid %d): %s", (int) s->pid, s->fault.text);
        kill_now(s);
        return 0;
}

/* The answer deadline runs while requests are in flight (from the last
 * answer or the first request), the idle timer while none are. */
static void arm_timers(Signer *s) {
        if (s->retired)
                return;
        if (s->n > 0) {
                s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
                if (sd_event_source_set_time_relative(s->answer_timer, SIGNER_ANSWER_USEC) >= 0 &&
                    sd_event_source_set_enabled(s->answer_timer, SD_EVENT_ONESHOT) >= 0)
                        return;
                s->answer_timer = sd_event_source_disable_unref(s->answer_timer);
                (void) sd_event_add_time_relative(s->event, &s->answer_timer, CLOCK_MONOTONIC,
                                                  SIGNER_ANSWER_USEC, 100000ULL, on_answer_timeout, s);
                return;
        }
        if (s->answer_timer)
                (void) sd_event_source_set_enabled(s->answer_timer, SD_EVENT_OFF);
        if (s->idle_usec == 0)
                return;
        if (s->idle_timer && sd_event_source_set_time_relative(s->idle_timer, s->idle_usec) >= 0 &&
            sd_event_source_set_enabled(s->idle_timer, SD_EVENT_ONESHOT) >= 0)
                return;
        s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
        (void) sd_event_add_time_relative(s->event, &s->idle_timer, CLOCK_MONOTONIC, s->idle_usec, 100000ULL,
                                          on_idle, s);
}

int signer_submit(Signer *s, SignerKey key, const uint8_t *nonce, size_t nonce_len, const char *purpose,
                  SignerAnswerFn fn, void *userdata) {
        SignerRequestWire req = { .key = (uint32_t) key, .nonce_len = (uint32_t) nonce_len };
        uint8_t frame[sizeof(FrameHeader) + sizeof(req)];
        FrameHeader h = { .magic = SIGNER_MAGIC, .type = SIGNER_FRAME_REQUEST, .length = sizeof(req) };
        ssize_t n;

        if (!signer_usable(s))
                return -EPIPE;
        if (s->n >= SIGNER_QUEUE_MAX)
                return -EBUSY;
        if (key < 0 || key >= _SIGNER_KEY_MAX || nonce_len > sizeof(req.nonce) || !purpose ||
            strlen(purpose) >= sizeof(req.purpose))
                return -EINVAL;
        req.id = s->next_id++;
        memcpy(req.nonce, nonce, nonce_len);
        strcpy(req.purpose, purpose);
        memcpy(frame, &h, sizeof(h));
        memcpy(frame + sizeof(h), &req, sizeof(req));
        /* At most SIGNER_QUEUE_MAX requests of ~150 bytes are unread: they fit
         * in the socket's buffer, so a whole frame goes out at once or not at all. */
        n = send(s->fd, frame, sizeof(frame), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n != (ssize_t) sizeof(frame)) {
                int r = n < 0 ? -errno : -EIO;

                log_warning_errno(r, "cannot send a request to the signer (pid %d): %m; killing it",
                                  (int) s->pid);
                kill_now(s);
                return -EPIPE;
        }
        s->queue[(s->head + s->n) % SIGNER_QUEUE_MAX] =
                (Pending) { .id = req.id, .key = key, .fn = fn, .userdata = userdata };
        s->n++;
        if (s->n == 1)
                arm_timers(s);
        return 0;
}

void signer_retire(Signer *s) {
        if (!s || s->retired)
                return;
        s->retired = true;
        s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
        /* It reads the end of the stream after the requests it has, answers them, and exits. */
        if (s->fd >= 0)
                (void) shutdown(s->fd, SHUT_WR);
}

Signer *signer_free(Signer *s) {
        Diag d = {};

        if (!s)
                return NULL;
        s->child = child_watch_free(s->child);
        if (s->pid > 0) {
                (void) kill(s->pid, SIGTERM);
                while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        diag_set(&d, -ECANCELED, "fleetidd is stopping; the call was not signed");
        fail_all(s, -ECANCELED, &d);
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->idle_timer);
        sd_event_source_disable_unref(s->answer_timer);
        if (s->fd >= 0)
                close(s->fd);
        for (size_t i = 0; i < ELEMENTSOF(s->chain_buf); i++)
                free(s->chain_buf[i]);
        frame_reader_done(&s->rd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int signer_new(sd_event *e, const Config *c, uint64_t idle_usec, SignerExitFn on_exit, void *userdata,
               Signer **ret) {
        _cleanup_(signer_freep) Signer *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        s->event = sd_event_ref(e);
        s->idle_usec = idle_usec;
        s->on_exit = on_exit;
        s->userdata = userdata;
        r = frame_reader_init(&s->rd, SIGNER_MAGIC, SIGNER_FRAME_MAX, 0, take_frame, s);
        if (r < 0)
                return r;
        r = spawn_child(CHILD_SIGNER, c, NULL, 0, SOCK_STREAM, &s->pid, &s->fd);
        if (r < 0)
                return r;
        if (fcntl(s->fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        r = child_watch_new(e, s->pid, "signer-exit", on_exit_child, s, &s->child);
        if (r < 0)
                return r;
        r = sd_event_add_io(e, &s->io, s->fd, EPOLLIN, on_io, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->io, "signer-answers");
        log_debug("signer started (pid %d)", (int) s->pid);
        *ret = TAKE_PTR(s);
        return 0;
}
