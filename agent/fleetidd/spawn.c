/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fleetidd/spawn.h"

const char *spawn_worker_path(void) {
        const char *p = secure_getenv("FLEETIDD_WORKER");

        return p && p[0] == '/' ? p : FLEETID_WORKER_PATH;
}

int spawn_check_worker(Diag *d) {
        const char *p = spawn_worker_path();
        struct stat st;

        if (stat(p, &st) < 0)
                return diag_set(d, -errno, "the worker executable %s: %m", p);
        if (!S_ISREG(st.st_mode))
                return diag_set(d, -EINVAL, "the worker executable %s is not a regular file", p);
        if (access(p, X_OK) < 0)
                return diag_set(d, -errno, "the worker executable %s cannot be executed: %m", p);
        return 0;
}

/* In the child, after fork(): never returns. */
static void __attribute__((noreturn)) exec_child(ChildRole role, pid_t parent, int sock, int setup) {
        const char *path = spawn_worker_path();
        char *argv[] = { (char *) path, (char *) child_role_to_string(role), NULL };
        sigset_t none;
        int s, u;

        /* The daemon blocks these for sd-event: here SIGTERM must end the process. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        /* A daemon killed with SIGKILL takes its child along (kept across exec). */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(EXIT_FAILURE);
        /* Out of the way of 3 and 4 first, then there (dup2 clears close-on-exec). */
        s = fcntl(sock, F_DUPFD_CLOEXEC, 10);
        u = fcntl(setup, F_DUPFD_CLOEXEC, 10);
        if (s < 0 || u < 0 || dup2(s, CHILD_SOCKET_FD) < 0 || dup2(u, CHILD_SETUP_FD) < 0)
                _exit(127);
        if (close_range(CHILD_SETUP_FD + 1, ~0U, 0) < 0) {
                long max = sysconf(_SC_OPEN_MAX);

                for (long fd = CHILD_SETUP_FD + 1; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
                        (void) close((int) fd);
        }
        execv(path, argv);
        fprintf(stderr, "fleetidd: cannot execute the worker %s: %m\n", path);
        _exit(127);
}

int spawn_child(ChildRole role, const Config *c, const void *extra, size_t extra_len, int sock_type,
                pid_t *ret_pid, int *ret_fd) {
        pid_t parent = getpid(), pid;
        int sv[2], setup = -1, r;

        r = child_setup_memfd(c, extra, extra_len, &setup);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, sock_type | SOCK_CLOEXEC, 0, sv) < 0) {
                r = -errno;
                close(setup);
                return r;
        }
        fflush(NULL); /* nothing buffered is written twice */
        pid = fork();
        if (pid == 0)
                exec_child(role, parent, sv[1], setup);
        r = pid < 0 ? -errno : 0;
        close(setup);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                return r;
        }
        *ret_pid = pid;
        *ret_fd = sv[0];
        return 0;
}
