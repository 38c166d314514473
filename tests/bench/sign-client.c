/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sign-client: SignChallenge calls from one D-Bus client, for
 * tests/bench/sign-rate.sh: COUNT calls to org.fleetid.Agent1 on the system
 * bus (DBUS_SYSTEM_BUS_ADDRESS), at most WINDOW in flight at once (1 = one
 * call after the other; more = pipelined, as many callers at once would
 * be). Each answer is checked to be a signature (no error).
 *
 *   sign-client COUNT WINDOW
 *
 * Prints "COUNT SECONDS CPU_SECONDS": the wall time from the first call sent
 * to the last answer, and the CPU time this client spent meanwhile.
 * Exit 0, or 1 with the first error on stderr. Built with the tests, never
 * installed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "util/macro.h"

typedef struct Client {
        sd_bus *bus;
        unsigned long count, window, sent, answered;
        int error;
} Client;

static int send_one(Client *c);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *unused) {
        Client *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (e) {
                fprintf(stderr, "sign-client: call failed: %s: %s\n", e->name, e->message);
                c->error = -EIO;
                return 0;
        }
        c->answered++;
        if (c->sent < c->count)
                c->error = send_one(c);
        return 0;
}

static int send_one(Client *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint8_t nonce[32] = {};
        int r;

        memcpy(nonce, &c->sent, sizeof(c->sent));
        r = sd_bus_message_new_method_call(c->bus, &m, "org.fleetid.Agent1", "/org/fleetid/Agent1",
                                           "org.fleetid.Agent1", "SignChallenge");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', nonce, sizeof(nonce));
        if (r >= 0)
                r = sd_bus_message_append(m, "sa{sv}", "bench", 0);
        if (r >= 0)
                r = sd_bus_call_async(c->bus, NULL, m, on_reply, c, 60ULL * 1000000ULL);
        if (r < 0)
                return r;
        c->sent++;
        return 0;
}

int main(int argc, char **argv) {
        Client c = {};
        struct timespec t0, t1, c0, c1;
        int r;

        if (argc != 3 || (c.count = strtoul(argv[1], NULL, 10)) == 0 ||
            (c.window = strtoul(argv[2], NULL, 10)) == 0 || c.window > 64) {
                fprintf(stderr, "usage: sign-client COUNT WINDOW (1..64)\n");
                return 1;
        }
        r = sd_bus_open_system(&c.bus);
        if (r < 0) {
                fprintf(stderr, "sign-client: cannot connect to the system bus: %s\n", strerror(-r));
                return 1;
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned long i = 0; i < c.window && c.sent < c.count && r >= 0; i++)
                r = send_one(&c);
        while (r >= 0 && c.error == 0 && c.answered < c.count) {
                r = sd_bus_process(c.bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(c.bus, 60ULL * 1000000ULL);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        sd_bus_flush_close_unref(c.bus);
        if (r < 0 || c.error < 0) {
                fprintf(stderr, "sign-client: %s\n", strerror(-(r < 0 ? r : c.error)));
                return 1;
        }
        printf("%lu %.6f %.6f\n", c.count,
               (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9,
               (double) (c1.tv_sec - c0.tv_sec) + (double) (c1.tv_nsec - c0.tv_nsec) / 1e9);
        return 0;
}
