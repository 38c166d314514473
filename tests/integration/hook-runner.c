/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hook-runner: runs the monitoring hook through agent/common/hook.c on an
 * sd-event loop, the way fleetidd does, for tests/integration/test-hook-check.sh.
 *
 *   hook-runner [--count N] [--max N] [--leak-fd PATH] PROGRAM TIMEOUT EVENT [FLEETID_KEY=VALUE...]
 *
 * Starts N hooks (default 1) with at most --max (default 4) running at once,
 * and exits when every started hook has ended. Meanwhile a 100 ms timer counts
 * ticks, which shows that the loop kept running while the hooks ran.
 * --leak-fd opens PATH without close-on-exec first: the hook must not get it.
 * Prints "started=S dropped=D", one "result ..." line per hook, "ticks=T" and
 * "unreaped=U" (children left as zombies). Exit status: 0 if at least one hook
 * started, 2 if none could be, 1 on usage or setup errors.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "common/hook.h"
#include "common/log.h"

#define TICK_USEC 100000ULL
#define TICK_ACCURACY_USEC 1000ULL /* not sd-event's default of 250 ms */

static unsigned ticks;

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        ticks++;
        return sd_event_source_set_time_relative(s, TICK_USEC);
}

static void on_done(HookSet *set, const HookResult *r, void *userdata) {
        sd_event *e = userdata;

        printf("result event=%s pid=%d code=%s status=%d timed_out=%d\n", r->event, (int) r->pid,
               r->code == CLD_EXITED   ? "exited"
               : r->code == CLD_KILLED ? "killed"
               : r->code == CLD_DUMPED ? "dumped"
                                       : "lost",
               r->status, (int) r->timed_out);
        /* hook_set_running() still counts this one */
        if (hook_set_running(set) == 1)
                (void) sd_event_exit(e, 0);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = { { "count", required_argument, NULL, 'c' },
                                                 { "max", required_argument, NULL, 'm' },
                                                 { "leak-fd", required_argument, NULL, 'l' },
                                                 {} };
        _cleanup_(hook_set_freep) HookSet *set = NULL;
        sd_event_source *tick = NULL;
        unsigned count = 1, max = HOOK_MAX_RUNNING_DEFAULT, started = 0, dropped = 0, timeout, unreaped = 0;
        sd_event *e = NULL;
        sigset_t mask;
        int c, r, rc = 0;

        log_setup("hook-runner");
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        count = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'm':
                        max = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'l':
                        if (open(optarg, O_RDONLY) < 0) { /* deliberately not O_CLOEXEC */
                                perror("hook-runner: --leak-fd");
                                return 1;
                        }
                        break;
                default:
                        return 1;
                }
        if (argc - optind < 3 || count == 0) {
                fprintf(stderr,
                        "usage: hook-runner [--count N] [--max N] [--leak-fd PATH] PROGRAM TIMEOUT EVENT "
                        "[FLEETID_KEY=VALUE...]\n");
                return 1;
        }
        timeout = (unsigned) strtoul(argv[optind + 1], NULL, 10);

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || sd_event_default(&e) < 0 ||
            hook_set_new(max, &set) < 0 ||
            sd_event_add_time_relative(e, &tick, CLOCK_MONOTONIC, TICK_USEC, TICK_ACCURACY_USEC, on_tick,
                                       NULL) < 0 ||
            sd_event_source_set_enabled(tick, SD_EVENT_ON) < 0) {
                fprintf(stderr, "hook-runner: cannot set up the event loop\n");
                return 1;
        }
        hook_set_on_done(set, on_done, e);

        for (unsigned i = 0; i < count; i++) {
                r = hook_run(e, argv[optind], timeout, argv[optind + 2], argv + optind + 3, set);
                if (r >= 0)
                        started++;
                else
                        dropped++;
        }
        printf("started=%u dropped=%u\n", started, dropped);
        fflush(stdout);

        if (started > 0) {
                r = sd_event_loop(e);
                if (r < 0) {
                        fprintf(stderr, "hook-runner: event loop failed: %s\n", strerror(-r));
                        rc = 1;
                }
        } else
                rc = 2;

        while (waitpid(-1, NULL, WNOHANG) > 0)
                unreaped++;
        printf("ticks=%u\nunreaped=%u\n", ticks, unreaped);
        sd_event_source_unref(tick);
        set = hook_set_free(set);
        sd_event_unref(e);
        return rc;
}
