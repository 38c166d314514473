/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dbus-calls: the D-Bus side of tests/bench/dbus-calls.sh.
 *
 *   dbus-calls call ADDRESS DEST PATH INTERFACE METHOD SECONDS [WINDOW [CALLS]]
 *       One connection to the bus at ADDRESS; calls METHOD() (no arguments)
 *       for SECONDS seconds, or until CALLS calls are answered (at most
 *       10,000,000), with WINDOW calls in flight (1..256, default 1: one
 *       after the other, each waiting for its reply; more: a new call is
 *       sent as each reply comes, as an asynchronous client does). Prints
 *       "calls N seconds S per_second R p50_us A p99_us B max_us C errors E
 *       client_cpu_us U" (latencies of single calls, from sending to the
 *       reply; U the CPU time the client used, user and system). Exit 0 if
 *       every call succeeded, 1 if one failed (the first error on stderr),
 *       2 on usage or setup errors.
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
#include <sys/resource.h>
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

static uint64_t tv_usec(const struct timeval *tv) {
        return (uint64_t) tv->tv_sec * 1000000u + (uint64_t) tv->tv_usec;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

typedef struct Calls {
        uint32_t *lat; /* latencies of the answered calls, µs */
        uint64_t n, errors, in_flight;
        const char *method;
} Calls;

/* One call in flight: when it was sent (0: the slot is free). */
typedef struct Slot {
        uint64_t sent;
        Calls *calls;
} Slot;

static void record(Calls *c, uint64_t t0, const sd_bus_error *error, int r) {
        uint64_t d = now_usec() - t0;

        if (r < 0 || sd_bus_error_is_set(error)) {
                if (c->errors++ == 0)
                        fprintf(stderr, "dbus-calls: %s failed: %s: %s\n", c->method,
                                error && error->name ? error->name : "?",
                                error && error->message ? error->message : strerror(r < 0 ? -r : EIO));
        }
        c->lat[c->n++] = (uint32_t) (d > UINT32_MAX ? UINT32_MAX : d);
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *unused) {
        Slot *slot = userdata;

        record(slot->calls, slot->sent, sd_bus_message_get_error(m), 0);
        slot->calls->in_flight--;
        slot->sent = 0;
        return 0;
}

static int run_calls(char **argv, int argc) {
        sd_bus *bus = NULL;
        uint64_t seconds = strtoull(argv[5], NULL, 10), window = argc > 6 ? strtoull(argv[6], NULL, 10) : 1;
        uint64_t max = argc > 7 ? strtoull(argv[7], NULL, 10) : CALLS_MAX, start, end;
        Calls c = { .method = argv[4] };
        Slot *slots = NULL;
        struct rusage ru;
        int r = 0;

        if (seconds == 0 || seconds > 600 || window == 0 || window > 256 || max == 0 || max > CALLS_MAX) {
                fprintf(stderr, "dbus-calls: SECONDS must be 1 to 600, WINDOW 1 to 256, CALLS 1 to %u\n",
                        CALLS_MAX);
                return 2;
        }
        c.lat = malloc(max * sizeof(uint32_t));
        slots = calloc(window, sizeof(*slots));
        if (!c.lat || !slots || connect_bus(argv[0], &bus) < 0)
                return 2;
        start = now_usec();
        end = start + seconds * 1000000u;
        if (window == 1)
                while (c.n < max && now_usec() < end) {
                        sd_bus_error error = SD_BUS_ERROR_NULL;
                        sd_bus_message *reply = NULL;
                        uint64_t t0 = now_usec();

                        r = sd_bus_call_method(bus, argv[1], argv[2], argv[3], argv[4], &error, &reply, NULL);
                        record(&c, t0, &error, r);
                        sd_bus_error_free(&error);
                        sd_bus_message_unref(reply);
                }
        else {
                uint64_t issued = 0;

                for (;;) {
                        uint64_t now = now_usec();

                        /* Keep the window full while there is time and calls left. */
                        for (uint64_t i = 0; i < window && now < end && issued < max; i++) {
                                if (slots[i].sent != 0)
                                        continue;
                                slots[i] = (Slot) { .sent = now, .calls = &c };
                                r = sd_bus_call_method_async(bus, NULL, argv[1], argv[2], argv[3], argv[4],
                                                             on_reply, &slots[i], NULL);
                                if (r < 0) {
                                        fprintf(stderr, "dbus-calls: cannot send: %s\n", strerror(-r));
                                        return 2;
                                }
                                issued++;
                                c.in_flight++;
                        }
                        if (c.in_flight == 0)
                                break;
                        r = sd_bus_process(bus, NULL);
                        if (r < 0) {
                                fprintf(stderr, "dbus-calls: the connection failed: %s\n", strerror(-r));
                                return 2;
                        }
                        if (r == 0)
                                (void) sd_bus_wait(bus, 1000000);
                }
        }
        end = now_usec();
        getrusage(RUSAGE_SELF, &ru);
        qsort(c.lat, c.n, sizeof(uint32_t), cmp_u32);
        printf("calls %llu seconds %.3f per_second %.0f p50_us %u p99_us %u max_us %u errors %llu "
               "client_cpu_us %llu\n",
               (unsigned long long) c.n, (double) (end - start) / 1e6,
               (double) c.n * 1e6 / (double) (end - start), c.n ? c.lat[c.n / 2] : 0,
               c.n ? c.lat[c.n * 99 / 100] : 0, c.n ? c.lat[c.n - 1] : 0, (unsigned long long) c.errors,
               (unsigned long long) (tv_usec(&ru.ru_utime) + tv_usec(&ru.ru_stime)));
        free(c.lat);
        free(slots);
        sd_bus_flush_close_unref(bus);
        return c.errors ? 1 : 0;
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
        if (argc >= 8 && argc <= 10 && strcmp(argv[1], "call") == 0)
                return run_calls(argv + 2, argc - 2);
        if (argc == 5 && strcmp(argv[1], "echo") == 0)
                return run_echo(argv + 2);
        fprintf(stderr, "usage: dbus-calls call ADDRESS DEST PATH INTERFACE METHOD SECONDS [WINDOW [CALLS]]\n"
                        "       dbus-calls echo ADDRESS NAME SECONDS\n");
        return 2;
}
