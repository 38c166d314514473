/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * worker-check: runs one worker through agent/fleetidd/worker.c on an
 * sd-event loop, the way fleetidd does, with a child that sends what the
 * SCENARIO says (a good result, or what a broken or hung worker could send),
 * for tests/integration/test-worker-protocol.sh.
 *
 *   worker-check SCENARIO [PEM]
 *
 * The child is this program again, started as fleetidd starts
 * fleetid-worker (fleetidd/spawn.c: fork, exec, the socket at fd 3, the setup
 * at fd 4): `worker-check renew`, with the scenario in the environment.
 *
 * Prints the states the parent was told ("state NAME") and one line
 * "done error=E outcome=O fetched=F http=H retry=G/S text='T' spki=N adopted=A
 * refused=R diag='D'", then "children=none" if the worker was reaped (else
 * "children=left"), and exits 0 once the worker is reaped (1 on setup
 * errors). The frames of the wire format are written by hand here on purpose:
 * the parent must refuse them however they are made.
 */
#include <errno.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/child-setup.h"
#include "common/log.h"
#include "fleetidd/worker.h"
#include "worker/work-output.h"

/* The wire format as worker.c defines it. */
#define MAGIC 0x57444946u
#define FRAME_STATE 1u
#define FRAME_RESULT 6u

typedef struct Header {
        uint32_t magic, type, length;
} Header;

static const char *scenario;
static const char *pem_path;

static void send_header(WorkerOutput *out, uint32_t magic, uint32_t type, uint32_t length) {
        Header h = { magic, type, length };

        (void) worker_send_raw(out, &h, sizeof(h));
}

static void send_state_raw(WorkerOutput *out, int32_t state) {
        send_header(out, MAGIC, FRAME_STATE, sizeof(state));
        (void) worker_send_raw(out, &state, sizeof(state));
}

static STACK_OF(X509) *load_pem(const char *path) {
        STACK_OF(X509) *sk = sk_X509_new_null();
        FILE *f = fopen(path, "re");
        X509 *x;

        if (!f || !sk)
                exit(EXIT_FAILURE);
        while ((x = PEM_read_X509(f, NULL, NULL, NULL)))
                sk_X509_push(sk, x);
        fclose(f);
        return sk;
}

/* A process of its own ptraces this one, and holds its exit for a while
 * before letting its parent have it, as the LeakSanitizer of an ASan build
 * does at every exit (common/child-watch.h). false if it may not attach
 * (kernel.yama.ptrace_scope). */
static bool traced_by_helper(void) {
        int go[2], ack[2];
        pid_t tracer;
        char c = 0;

        if (pipe(go) < 0 || pipe(ack) < 0)
                return false;
        tracer = fork();
        if (tracer < 0)
                return false;
        if (tracer == 0) {
                pid_t tracee = getppid();
                int st;

                if (read(go[0], &c, 1) != 1 || ptrace(PTRACE_SEIZE, tracee, NULL, NULL) < 0) {
                        (void) !write(ack[1], "n", 1);
                        _exit(1);
                }
                (void) !write(ack[1], "y", 1);
                usleep(500 * 1000); /* the tracee exits meanwhile: a zombie only this tracer may wait for */
                while (waitpid(tracee, &st, __WALL) == tracee && !WIFEXITED(st) && !WIFSIGNALED(st))
                        (void) ptrace(PTRACE_CONT, tracee, NULL, NULL);
                _exit(0);
        }
        (void) prctl(PR_SET_PTRACER, tracer);
        if (write(go[1], "x", 1) != 1 || read(ack[0], &c, 1) != 1)
                return false;
        return c == 'y';
}

static void run(WorkerOutput *out) {
        WorkerResult r = { .outcome = ATTEMPT_OK };

        if (strcmp(scenario, "ok") == 0) {
                static uint8_t spki[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

                (void) worker_send_state(out, DAEMON_STATE_ENROLLING);
                r.fetched = true;
                r.hint.http_status = 200;
                r.deferred_spki = spki;
                r.deferred_spki_len = sizeof(spki);
                if (pem_path)
                        r.trust_changes.adopted = load_pem(pem_path);
        } else if (strcmp(scenario, "big-certs") == 0 && pem_path) {
                /* refused: the PEM's certificates (one over WORKER_FRAME_MAX);
                 * adopted: its last one, more times than WORKER_CERTS_MAX */
                r.trust_changes.refused = load_pem(pem_path);
                r.trust_changes.adopted = sk_X509_new_null();
                for (int i = 0; i < WORKER_CERTS_MAX + 6 && r.trust_changes.adopted; i++)
                        if (X509_up_ref(sk_X509_value(r.trust_changes.refused,
                                                      sk_X509_num(r.trust_changes.refused) - 1)))
                                (void) sk_X509_push(r.trust_changes.adopted,
                                                    sk_X509_value(r.trust_changes.refused,
                                                                  sk_X509_num(r.trust_changes.refused) - 1));
        } else if (strcmp(scenario, "rejected") == 0) {
                r.error = -EACCES;
                r.outcome = ATTEMPT_REJECTED;
                diag_set(&r.diag, r.error, "EST server returned 403: go away");
                r.hint = (EstRetryHint) { .http_status = 403, .retry_after_given = true, .retry_after_sec = 90 };
                snprintf(r.hint.retry_after.text, sizeof(r.hint.retry_after.text), "90");
                r.hint.retry_after.present = true;
        } else if (strcmp(scenario, "crash") == 0) {
                (void) worker_send_state(out, DAEMON_STATE_RENEWING);
                abort();
        } else if (strcmp(scenario, "exit") == 0 || strcmp(scenario, "reaped-elsewhere") == 0) {
                _exit(3);
        } else if (strcmp(scenario, "bad-magic") == 0) {
                send_header(out, 0xdeadbeef, FRAME_STATE, 4);
                (void) worker_send_raw(out, "\0\0\0\0", 4);
        } else if (strcmp(scenario, "too-long") == 0) {
                send_header(out, MAGIC, FRAME_STATE, WORKER_FRAME_MAX + 1);
        } else if (strcmp(scenario, "truncated") == 0) {
                send_header(out, MAGIC, FRAME_RESULT, 100);
                (void) worker_send_raw(out, "0123456789", 10);
                _exit(0);
        } else if (strcmp(scenario, "unknown-type") == 0) {
                send_header(out, MAGIC, 99, 0);
        } else if (strcmp(scenario, "bad-state") == 0) {
                send_state_raw(out, 99);
        } else if (strcmp(scenario, "short-result") == 0) {
                send_header(out, MAGIC, FRAME_RESULT, 8);
                (void) worker_send_raw(out, "\0\0\0\0\0\0\0\0", 8);
        } else if (strcmp(scenario, "bad-outcome") == 0) {
                r.error = -EIO;
                r.outcome = (AttemptOutcome) 99;
        } else if (strcmp(scenario, "ok-with-error") == 0) {
                r.error = -EIO; /* a failure that claims success */
        } else if (strcmp(scenario, "after-result") == 0) {
                (void) worker_send_result(out, &r);
                (void) worker_send_state(out, DAEMON_STATE_ENROLLED);
                return;
        } else if (strcmp(scenario, "flood") == 0) {
                /* valid frames, more than WORKER_MESSAGE_MAX in all */
                for (unsigned i = 0; i < WORKER_MESSAGE_MAX / 16 + 16; i++)
                        if (worker_send_state(out, DAEMON_STATE_ENROLLING) < 0)
                                _exit(4); /* the parent stopped reading */
        } else if (strcmp(scenario, "traced-exit") == 0) {
                if (!traced_by_helper()) {
                        r.error = -EPERM;
                        r.outcome = ATTEMPT_TRANSIENT;
                        diag_set(&r.diag, r.error, "no-ptrace");
                }
        } else if (strcmp(scenario, "hang") == 0 || strcmp(scenario, "stop") == 0) {
                sleep(60);
        } else if (strcmp(scenario, "ignore-term") == 0) {
                signal(SIGTERM, SIG_IGN);
                sleep(60);
        }
        (void) worker_send_result(out, &r);
}

static void on_state(void *userdata, DaemonState s) {
        printf("state %s\n", daemon_state_to_string(s));
}

static int count(STACK_OF(X509) *sk) {
        return sk ? sk_X509_num(sk) : 0;
}

static void on_done(void *userdata, WorkerKind kind, WorkerResult *r) {
        sd_event *e = userdata;

        printf("done error=%d outcome=%s fetched=%d http=%ld retry=%d/%llu text='%s' spki=%zu adopted=%d "
               "refused=%d diag='%s'\n",
               r->error, attempt_outcome_to_string(r->outcome), r->fetched, r->hint.http_status,
               r->hint.retry_after_given, (unsigned long long) r->hint.retry_after_sec,
               r->hint.retry_after.text, r->deferred_spki_len, count(r->trust_changes.adopted),
               count(r->trust_changes.refused), r->error < 0 ? diag_text(&r->diag, r->error) : "");
        fflush(stdout);
        (void) sd_event_exit(e, 0);
}

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return worker_kill(userdata);
}

/* The child: the setup must be the one the parent handed over. */
static int child(void) {
        ChildSetup setup = {};
        WorkerOutput *out = NULL;
        Diag d = {};
        int r;

        if (child_setup_read(CHILD_SETUP_FD, &setup, &d) < 0 ||
            strcmp(setup.config->est_url, "https://worker-check.invalid/est") != 0) {
                fprintf(stderr, "worker-check: bad setup: %s\n", d.text);
                return 1;
        }
        child_setup_done(&setup);
        if (worker_output_open(CHILD_SOCKET_FD, &out) < 0)
                return 1;
        run(out);
        r = worker_output_close(out) < 0 ? 1 : 0;
        /* Traced by the helper: an ASan build's LeakSanitizer, which ptraces
         * the process at exit, could not attach (a fatal error); no check. */
        if (strcmp(scenario, "traced-exit") == 0)
                _exit(r);
        return r;
}

int main(int argc, char **argv) {
        _cleanup_(worker_freep) Worker *w = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        char self[4096];
        sd_event *e = NULL;
        uint64_t timeout = 0;
        sigset_t mask;
        ssize_t n;
        int r;

        scenario = getenv("WORKER_CHECK_SCENARIO");
        pem_path = getenv("WORKER_CHECK_PEM");
        if (argc == 2 && scenario && strcmp(argv[1], "renew") == 0)
                return child();
        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: worker-check SCENARIO [PEM]\n");
                return 1;
        }
        scenario = argv[1];
        pem_path = argc > 2 ? argv[2] : NULL;
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0 || config_new_defaults(&c) < 0 ||
            !(c->est_url = strdup("https://worker-check.invalid/est")))
                return 1;
        self[n] = '\0';
        if (setenv("FLEETIDD_WORKER", self, 1) < 0 || setenv("WORKER_CHECK_SCENARIO", scenario, 1) < 0 ||
            (pem_path && setenv("WORKER_CHECK_PEM", pem_path, 1) < 0))
                return 1;
        log_setup("worker-check");
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (sd_event_default(&e) < 0)
                return 1;
        if (strcmp(scenario, "hang") == 0)
                timeout = 1000000ULL;
        /* WORKER_CHECK_INLINE=1: fleetidd's FLEETIDD_INLINE_WORKERS mode, the loop blocked on the worker. */
        r = worker_start(e, WORKER_RENEW, c, NULL, 0, timeout, streq_ptr(getenv("WORKER_CHECK_INLINE"), "1"),
                         on_state, on_done, e, &w);
        if (r < 0) {
                fprintf(stderr, "worker_start: %s\n", strerror(-r));
                return 1;
        }
        if ((strcmp(scenario, "stop") == 0 || strcmp(scenario, "ignore-term") == 0) &&
            sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 300000ULL, 0, on_stop_timer, w) < 0)
                return 1;
        /* Another process reaps the worker before the daemon can (a parent
         * that ignores SIGCHLD would): its exit status is lost, and the
         * daemon must say so rather than make one up. */
        if (strcmp(scenario, "reaped-elsewhere") == 0 && waitpid(-1, NULL, 0) < 0)
                return 1;
        r = sd_event_loop(e);
        w = worker_free(w);
        sd_event_unref(e);
        /* The worker was reaped: no child is left, not even a zombie. */
        printf("children=%s\n", waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD ? "none" : "left");
        return r < 0 ? 1 : 0;
}
