/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-echo: a stand-in owner of a bus name, for tests/integration/test-bus-policy.sh.
 *
 *   bus-echo ADDRESS NAME SECONDS
 *
 * Connects to the bus at ADDRESS as a client and requests NAME. If the bus
 * refuses, prints "refused: <the bus's error>" and exits 3. Otherwise prints
 * "owned" and answers org.fleetid.BusPolicyTest.Echo(s text) -> s on
 * /org/fleetid/Agent1 with "uid=<the caller's effective uid, from the bus> <text>"
 * for SECONDS seconds, then exits 0. Exit 1 on usage or setup errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

static int on_echo(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus_creds *creds = NULL;
        const char *text;
        char reply[512];
        uid_t uid;
        int r;

        r = sd_bus_message_read(m, "s", &text);
        if (r < 0)
                return r;
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        sd_bus_creds_unref(creds);
        if (r < 0)
                return r;
        snprintf(reply, sizeof(reply), "uid=%u %s", (unsigned) uid, text);
        return sd_bus_reply_method_return(m, "s", reply);
}

static const sd_bus_vtable vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Echo", SD_BUS_ARGS("s", text), SD_BUS_RESULT("s", reply), on_echo,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int main(int argc, char *argv[]) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        uint32_t result = 0;
        uint64_t end;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: bus-echo ADDRESS NAME SECONDS\n");
                return 1;
        }
        end = now_usec() + strtoull(argv[3], NULL, 10) * 1000000u;
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, argv[1]) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || (r = sd_bus_start(bus)) < 0) {
                fprintf(stderr, "bus-echo: cannot connect to %s\n", argv[1]);
                return 1;
        }
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "RequestName", &error, &reply, "su", argv[2], 4u /* DO_NOT_QUEUE */);
        if (r < 0) {
                printf("refused: %s: %s\n", error.name, error.message);
                sd_bus_error_free(&error);
                sd_bus_unref(bus);
                return 3;
        }
        r = sd_bus_message_read(reply, "u", &result);
        sd_bus_message_unref(reply);
        if (r < 0 || result != 1 /* PRIMARY_OWNER */) {
                printf("refused: RequestName answered %u, not 1 (primary owner)\n", (unsigned) result);
                return 3;
        }
        r = sd_bus_add_object_vtable(bus, NULL, "/org/fleetid/Agent1", "org.fleetid.BusPolicyTest", vtable,
                                     NULL);
        if (r < 0) {
                fprintf(stderr, "bus-echo: cannot add the object: %s\n", strerror(-r));
                return 1;
        }
        printf("owned\n");
        fflush(stdout);
        while (now_usec() < end) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "bus-echo: %s\n", strerror(-r));
                        return 1;
                }
                if (r == 0)
                        (void) sd_bus_wait(bus, 100000);
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}
