/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dbus-calls: the D-Bus side of tests/bench/dbus-calls.sh.
 *
 *   dbus-calls call ADDRESS DEST PATH INTERFACE METHOD SECONDS
 *       One connection to the bus at ADDRESS; calls METHOD() (no arguments)
 *       one after the other for SECONDS seconds (at most 10,000,000 calls),
 *       each waiting for its reply. Prints "calls N seconds S per_second R
 *       p50_us A p99_us B max_us C errors E" (latencies of single calls,
 *       from sending to the reply). Exit 0 if every call succeeded, 1 if
 *       one failed (the first error on stderr), 2 on usage or setup errors.
 *   dbus-calls echo ADDRESS NAME SECONDS
 *       Owns NAME and serves org.fleetid.BenchEcho.GetCertificateChain() ->
 *       aay on /org/fleetid/Agent1, answering a fixed 700-byte "certificate"
 *       for SECONDS seconds: what the client can do against a server that
 *       does nothing, the baseline fleetidd's numbers are compared with.
 *       Prints "owned" once it owns NAME.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#define CALLS_MAX 10000000u
#define ECHO_CERT_BYTES 700

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int connect_bus(const char *address, sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "dbus-calls: cannot connect to %s: %s\n", address, strerror(-r));
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

static int run_calls(char **argv) {
        sd_bus *bus = NULL;
        uint64_t seconds = strtoull(argv[5], NULL, 10), start, end, n = 0, errors = 0;
        uint32_t *lat;
        int r;

        if (seconds == 0 || seconds > 600) {
                fprintf(stderr, "dbus-calls: SECONDS must be 1 to 600\n");
                return 2;
        }
        lat = malloc(CALLS_MAX * sizeof(uint32_t));
        if (!lat || connect_bus(argv[0], &bus) < 0)
                return 2;
        start = now_usec();
        end = start + seconds * 1000000u;
        while (n < CALLS_MAX) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                uint64_t t0 = now_usec(), t1;

                if (t0 >= end)
                        break;
                r = sd_bus_call_method(bus, argv[1], argv[2], argv[3], argv[4], &error, &reply, NULL);
                t1 = now_usec();
                if (r < 0) {
                        if (errors++ == 0)
                                fprintf(stderr, "dbus-calls: %s failed: %s: %s\n", argv[4],
                                        error.name ?: "?", error.message ?: strerror(-r));
                }
                sd_bus_error_free(&error);
                sd_bus_message_unref(reply);
                lat[n++] = (uint32_t) (t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
        }
        end = now_usec();
        qsort(lat, n, sizeof(uint32_t), cmp_u32);
        printf("calls %llu seconds %.3f per_second %.0f p50_us %u p99_us %u max_us %u errors %llu\n",
               (unsigned long long) n, (double) (end - start) / 1e6,
               (double) n * 1e6 / (double) (end - start), n ? lat[n / 2] : 0, n ? lat[n * 99 / 100] : 0,
               n ? lat[n - 1] : 0, (unsigned long long) errors);
        free(lat);
        sd_bus_flush_close_unref(bus);
        return errors ? 1 : 0;
}

static int on_get(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        static uint8_t cert[ECHO_CERT_BYTES];
        sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "ay");
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', cert, sizeof(cert));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        sd_bus_message_unref(reply);
        return r;
}

static const sd_bus_vtable echo_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("GetCertificateChain", SD_BUS_NO_ARGS, SD_BUS_RESULT("aay", certificates),
                                on_get, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int run_echo(char **argv) {
        sd_bus *bus = NULL;
        uint64_t end = now_usec() + strtoull(argv[2], NULL, 10) * 1000000u;
        int r;

        if (connect_bus(argv[0], &bus) < 0)
                return 2;
        r = sd_bus_add_object_vtable(bus, NULL, "/org/fleetid/Agent1", "org.fleetid.BenchEcho", echo_vtable,
                                     NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, argv[1], 0);
        if (r < 0) {
                fprintf(stderr, "dbus-calls: cannot serve %s: %s\n", argv[1], strerror(-r));
                return 2;
        }
        printf("owned\n");
        fflush(stdout);
        for (uint64_t now; (now = now_usec()) < end;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return 2;
                if (r == 0)
                        (void) sd_bus_wait(bus, end - now);
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

int main(int argc, char *argv[]) {
        if (argc == 8 && strcmp(argv[1], "call") == 0)
                return run_calls(argv + 2);
        if (argc == 5 && strcmp(argv[1], "echo") == 0)
                return run_echo(argv + 2);
        fprintf(stderr, "usage: dbus-calls call ADDRESS DEST PATH INTERFACE METHOD SECONDS\n"
                        "       dbus-calls echo ADDRESS NAME SECONDS\n");
        return 2;
}
