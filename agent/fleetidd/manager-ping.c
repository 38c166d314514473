/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-ping.c: the event loop's liveness probe, a unix stream socket
 * "ping" in the runtime directory (mode 0600: root, or the daemon's user).
 * Each connection gets one line from the loop itself, "pong <state>\n", and
 * is closed; nothing is read from it. It shows that the loop answers while an
 * enrollment or renewal runs in its worker (tests/bench/loop-latency.sh) and
 * stands in until the D-Bus API gives a real method.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "fleetidd/manager.h"

#define PING_SOCKET "ping"
/* Connections answered per wake-up, so a flood cannot hold the loop. */
#define PING_BURST 16

static int on_ping(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;

        for (unsigned i = 0; i < PING_BURST; i++) {
                char reply[64];
                int c, n;

                c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_debug("ping: accept failed: %s", strerror(errno));
                        return 0;
                }
                n = snprintf(reply, sizeof(reply), "pong %s\n",
                             daemon_state_to_string(m->state) ?: "starting");
                /* A reader that does not read loses its answer, never the loop's time. */
                (void) send(c, reply, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL);
                close(c);
        }
        return 0;
}

int manager_ping_start(Manager *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *path = NULL;
        mode_t old;
        int fd, r;

        /* A --oneshot beside the daemon must not take over the daemon's socket. */
        if (m->oneshot || !m->runtime || !m->config->runtime_dir)
                return 0;
        if (asprintf(&path, "%s/" PING_SOCKET, m->config->runtime_dir) < 0)
                return log_error_errno(ENOMEM, "cannot set up the ping socket: out of memory");
        if (strlen(path) >= sizeof(sa.sun_path)) {
                log_warning("the runtime directory's path is too long for a unix socket (%zu bytes, at most "
                            "%zu); no ping socket",
                            strlen(path), sizeof(sa.sun_path) - 1 - strlen("/" PING_SOCKET));
                return 0;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_warning_errno(errno, "cannot create the ping socket: %m; no ping socket");
        (void) unlink(path); /* left by an earlier run */
        old = umask(0177);   /* the socket is made 0600 */
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
        if (r == 0 && listen(fd, SOMAXCONN) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                return log_warning_errno(r, "cannot listen on %s: %m; no ping socket", path);
        }
        r = sd_event_add_io(m->event, &m->ping, fd, EPOLLIN, on_ping, m);
        if (r < 0) {
                close(fd);
                (void) unlink(path);
                return log_warning_errno(r, "cannot watch %s: %m; no ping socket", path);
        }
        (void) sd_event_source_set_io_fd_own(m->ping, true);
        (void) sd_event_source_set_description(m->ping, "ping");
        m->ping_path = TAKE_PTR(path);
        return 0;
}

void manager_ping_stop(Manager *m) {
        m->ping = sd_event_source_disable_unref(m->ping);
        if (m->ping_path)
                (void) unlink(m->ping_path);
        free(m->ping_path);
        m->ping_path = NULL;
}
