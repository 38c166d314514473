/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/child-watch.h"

struct ChildWatch {
        pid_t pid;
        int pidfd;
        sd_event_source *io, *retry;
        ChildWatchFn fn;
        void *userdata;
};

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Reports and reaps the child if it has exited; else looks again a little later. */
static void check(ChildWatch *cw) {
        siginfo_t si = {};
        pid_t pid = cw->pid;

        /* WNOWAIT: a zombie during the callback, as with sd-event, so that its
         * pid (and process group) cannot have been reused meanwhile. */
        if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
                if (errno == EINTR)
                        return; /* the pidfd is still readable: back soon */
                /* ECHILD: reaped before we could look: it ended, its status is lost. */
                si = (siginfo_t) { .si_pid = pid, .si_code = CHILD_WATCH_REAPED_ELSEWHERE };
        } else if (si.si_pid == 0) {
                /* Readable but not waitable yet (a tracer holds it): no busy loop, a retry. */
                (void) sd_event_source_set_enabled(cw->io, SD_EVENT_OFF);
                (void) sd_event_source_set_time_relative(cw->retry, CHILD_WATCH_RETRY_USEC);
                (void) sd_event_source_set_enabled(cw->retry, SD_EVENT_ONESHOT);
                return;
        }
        (void) sd_event_source_set_enabled(cw->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(cw->retry, SD_EVENT_OFF);
        cw->pid = 0;
        cw->fn(cw, &si, cw->userdata); /* may free cw */
        /* Now for good. */
        while (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG) < 0 && errno == EINTR)
                ;
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        check(userdata);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        ChildWatch *cw = userdata;

        (void) sd_event_source_set_enabled(cw->io, SD_EVENT_ON);
        check(cw);
        return 0;
}

int child_watch_new(sd_event *e, pid_t pid, const char *description, ChildWatchFn fn, void *userdata,
                    ChildWatch **ret) {
        _cleanup_(child_watch_freep) ChildWatch *cw = NULL;
        int r;

        cw = calloc(1, sizeof(*cw));
        if (!cw)
                return -ENOMEM;
        cw->pidfd = -1;
        cw->pid = pid;
        cw->fn = fn;
        cw->userdata = userdata;
        cw->pidfd = pidfd_open(pid, 0);
        if (cw->pidfd < 0)
                return -errno;
        r = sd_event_add_io(e, &cw->io, cw->pidfd, EPOLLIN, on_pidfd, cw);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(e, &cw->retry, CLOCK_MONOTONIC, CHILD_WATCH_RETRY_USEC, 0, on_retry,
                                       cw);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(cw->retry, SD_EVENT_OFF);
        (void) sd_event_source_set_description(cw->io, description);
        (void) sd_event_source_set_description(cw->retry, description);
        *ret = TAKE_PTR(cw);
        return 0;
}

const char *child_watch_describe(const siginfo_t *si, char *buf, size_t size) {
        switch (si->si_code) {
        case CLD_EXITED:
                snprintf(buf, size, "exited with status %d", si->si_status);
                break;
        case CLD_KILLED:
        case CLD_DUMPED:
                snprintf(buf, size, "was killed by signal %d%s", si->si_status,
                         si->si_code == CLD_DUMPED ? " (core dumped)" : "");
                break;
        case CHILD_WATCH_REAPED_ELSEWHERE:
                snprintf(buf, size, "ended with its exit status lost to another waiter");
                break;
        default:
                snprintf(buf, size, "ended (si_code %d, status %d)", si->si_code, si->si_status);
                break;
        }
        return buf;
}

ChildWatch *child_watch_free(ChildWatch *cw) {
        if (!cw)
                return NULL;
        sd_event_source_disable_unref(cw->io);
        sd_event_source_disable_unref(cw->retry);
        if (cw->pidfd >= 0)
                close(cw->pidfd);
        free(cw);
        return NULL;
}
