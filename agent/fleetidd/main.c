/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleetidd: the fleetid daemon. Enrolls the device's operational certificate
 * over EST with its TPM-resident birth identity, retrying with backoff until it
 * succeeds, and renews it. Reports READY=1 to systemd once the configuration is
 * valid and the event loop runs (not once enrolled: fleetidctl wait-enrolled
 * is that sync point), STATUS= at every change, and WATCHDOG=1 from the loop
 * when the unit sets WatchdogSec=.
 *
 * SIGUSR1 asks for a renewal now. SIGHUP starts the factory reset that
 * fleetidctl factory-reset recorded (docs/factory-reset.md); fleetidd also
 * finishes an unfinished one first thing when it starts.
 *
 * Serves org.fleetid.Agent1 on the system bus (docs/dbus-api.md), except with
 * --oneshot; without a bus it does its identity work all the same.
 *
 * Exit codes: 0 ok, 1 failure, 2 usage, 75 (--oneshot) enrollment failed and
 * would be retried, 78 configuration error (the unit does not restart on it).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "config/config.h"
#include "fleetidd/manager-sensors.h"
#include "fleetidd/manager.h"
#include "fleetidd/spawn.h"

#define EXIT_CONFIG 78

static void help(void) {
        printf("Usage: fleetidd [OPTIONS]\n\n"
               "Keep this device's operational identity enrolled over EST, anchored in the TPM.\n\n"
               "  --config PATH   configuration file (default %s)\n"
               "  --oneshot       make one attempt and exit: 0 enrolled, 75 failed\n"
               "  --check-config  validate the configuration and exit\n"
               "  --help, --version\n",
               FLEETID_CONFIG_PATH);
}

/* The signal handlers return 0 whatever happened: sd-event turns off for
 * good a source whose handler returns < 0, and the next SIGUSR1 or SIGTERM
 * would then go unheard. */

/* SIGTERM/SIGINT: stop the operation in flight and exit (within a second). */
static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        int r = manager_stop(userdata);

        if (r < 0)
                log_error_errno(r, "cannot stop cleanly: %m");
        return 0;
}

/* SIGHUP (fleetidctl factory-reset): the reset its marker asks for. */
static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_reset_request(userdata);
        return 0;
}

/* SIGUSR1 (fleetidctl renew, or systemctl kill -s USR1 fleetidd): renew now. */
static int on_sigusr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        int r = manager_renew_now(userdata);

        if (r < 0)
                log_warning_errno(r,
                                  "SIGUSR1: cannot start the renewal now: %m; the next SIGUSR1 tries again");
        return 0;
}

int main(int argc, char **argv) {
        enum { A_CONFIG = 256, A_ONESHOT, A_CHECK, A_VERSION };
        static const struct option opts[] = {
                { "config", required_argument, NULL, A_CONFIG }, { "oneshot", no_argument, NULL, A_ONESHOT },
                { "check-config", no_argument, NULL, A_CHECK },  { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, A_VERSION },     {},
        };
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *config_path = FLEETID_CONFIG_PATH;
        bool oneshot = false, check = false;
        Config *config = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *term = NULL, *intr = NULL;
        sigset_t mask;
        Diag d = {};
        int c, r;

        log_setup("fleetidd");
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case A_CONFIG:
                        config_path = optarg;
                        break;
                case A_ONESHOT:
                        oneshot = true;
                        break;
                case A_CHECK:
                        check = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case A_VERSION:
                        printf("fleetidd %s\n", FLEETID_VERSION);
                        return 0;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("unexpected argument '%s'; see --help", argv[optind]);
                return 2;
        }

        r = config_load(config_path, &config, &d);
        if (r < 0) {
                /* One line, and an exit status the unit will not restart on. */
                log_error("configuration rejected: %s; not starting", diag_text(&d, r));
                (void) sd_notifyf(0, "STATUS=configuration rejected: %s", diag_text(&d, r));
                return EXIT_CONFIG;
        }
        if (check) {
                config_free(config);
                printf("%s: OK\n", config_path);
                return 0;
        }
        /* Every enrollment, renewal and signature runs in it: missing, fleetidd could do nothing. */
        r = spawn_check_worker(&d);
        if (r < 0) {
                config_free(config);
                log_error("%s; not starting (reinstall the package)", diag_text(&d, r));
                (void) sd_notifyf(0, "STATUS=%s", diag_text(&d, r));
                return 1;
        }

        r = manager_new(config, oneshot, &m);
        if (r < 0) {
                config_free(config);
                log_error_errno(r, "cannot set up the event loop: %m");
                return 1;
        }

        /* SIGCHLD ignored, as a parent may leave it across exec (a shell's
         * trap '' CHLD), would have the kernel reap every child before its
         * watch reads how it ended: each worker's exit status would be lost. */
        (void) signal(SIGCHLD, SIG_DFL);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD); /* nothing reaps a child before its watch reads its exit (child-watch.h) */
        sigprocmask(SIG_BLOCK, &mask, NULL);
        /* The stop comes before whatever else the same wake-up brings (a
         * worker's exit among them): SD_EVENT_PRIORITY_IMPORTANT. */
        if (sd_event_add_signal(m->event, &term, SIGTERM, on_stop, m) < 0 ||
            sd_event_add_signal(m->event, &intr, SIGINT, on_stop, m) < 0 ||
            sd_event_source_set_priority(term, SD_EVENT_PRIORITY_IMPORTANT) < 0 ||
            sd_event_source_set_priority(intr, SD_EVENT_PRIORITY_IMPORTANT) < 0 ||
            sd_event_add_signal(m->event, NULL, SIGUSR1, on_sigusr1, m) < 0 ||
            sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m) < 0) {
                log_error("cannot handle SIGTERM/SIGINT");
                return 1;
        }

        r = manager_start(m);
        if (r < 0)
                return 1;
        r = manager_watchdog_start(m);
        if (r < 0)
                return 1;
        if (!oneshot && manager_bus_start(m) < 0)
                return 1;
        if (!oneshot && manager_sensors_start(m) < 0) {
                log_error("cannot set up the sensor broker: out of memory");
                return 1;
        }
        manager_notify_ready(m);

        r = sd_event_loop(m->event);
        if (r < 0) {
                log_error_errno(r, "event loop failed: %m");
                return 1;
        }
        (void) sd_notify(0, "STOPPING=1");
        return r;
}
