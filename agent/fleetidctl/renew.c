/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/certcheck.h"
#include "fleetidctl/bus.h"
#include "fleetidctl/renew.h"
#include "util/macro.h"
#include "util/timestamp.h"

typedef struct Wait {
        char *path;         /* our job, once Renew() answered */
        char *result;       /* its JobRemoved result */
        bool state_changed; /* a PropertiesChanged of a job: look at ours */
} Wait;

static int on_removed(sd_bus_message *m, void *userdata, sd_bus_error *unused) {
        Wait *w = userdata;
        const char *path, *kind, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &kind, &result) < 0)
                return 0;
        if (w->path && strcmp(path, w->path) == 0 && !w->result)
                w->result = strdup(result);
        return 0;
}

static int on_changed(sd_bus_message *m, void *userdata, sd_bus_error *unused) {
        Wait *w = userdata;

        if (w->path && streq_ptr(sd_bus_message_get_path(m), w->path))
                w->state_changed = true;
        return 0;
}

static void format_usec(uint64_t usec, char *buf, size_t size) {
        char t[TIMESTAMP_MAX];

        snprintf(buf, size, "%s",
                 usec == 0 ? "a time fleetidd has not said" : timestamp_utc((time_t) (usec / 1000000ULL), t));
}

/* "renewed" and what the new certificate is, from GetResult. */
static int report_done(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *serial = NULL;
        const void *der = NULL;
        char until[64] = "?";
        size_t len = 0;
        time_t nb, na;
        int r;

        printf("renewed\n");
        r = sd_bus_call_method(bus, CTL_BUS_NAME, path, CTL_BUS_JOB_INTERFACE, "GetResult", &e, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "ay");
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &der, &len);
        if (r > 0 && len > 0 && len <= LONG_MAX) {
                const unsigned char *p = der;
                X509 *cert = d2i_X509(NULL, &p, (long) len);

                if (cert && cert_serial_string(cert, &serial) >= 0 && cert_times(cert, &nb, &na) >= 0) {
                        format_usec((uint64_t) na * 1000000ULL, until, sizeof(until));
                        printf("operational certificate serial %s, valid until %s\n", serial, until);
                }
                X509_free(cert);
        }
        return RENEW_EXIT_RENEWED;
}

/* failed or canceled: the job's error, from GetResult. */
static int report_error(sd_bus *bus, const char *path, const char *result) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, CTL_BUS_NAME, path, CTL_BUS_JOB_INTERFACE, "GetResult", &e, NULL, NULL);
        if (r >= 0)
                printf("renewal did not succeed: %s\n", result);
        else
                printf("renewal did not succeed: %s: %s [%s]\n", result, e.message ?: strerror(-r),
                       e.name ?: "no D-Bus error name");
        return RENEW_EXIT_FAILED;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

int ctl_renew_bus(unsigned timeout_sec) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t deadline = now_usec() + (uint64_t) timeout_sec * 1000000ULL;
        Wait w = {};
        const char *path;
        Diag d = {};
        int r, ret;

        r = ctl_bus_open(&bus, &d);
        if (r < 0)
                return -EHOSTUNREACH;
        /* Subscribed before the call: the end of a short job cannot be missed. */
        r = sd_bus_match_signal(bus, NULL, CTL_BUS_NAME, CTL_BUS_PATH, CTL_BUS_INTERFACE, "JobRemoved",
                                on_removed, &w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, CTL_BUS_NAME, NULL, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_changed, &w);
        if (r < 0 && ctl_bus_unreachable(r, NULL))
                return -EHOSTUNREACH;
        if (r < 0) {
                fprintf(stderr, "fleetidctl: cannot subscribe to fleetidd's signals: %s\n", strerror(-r));
                return RENEW_EXIT_FAILED;
        }
        r = sd_bus_call_method(bus, CTL_BUS_NAME, CTL_BUS_PATH, CTL_BUS_INTERFACE, "Renew", &e, &reply, NULL);
        /* No answer in time is not "not on the bus": fleetidd got the call and
         * may have started the renewal; a SIGUSR1 now would ask for another. */
        if (r < 0 && (r == -ETIMEDOUT || sd_bus_error_has_name(&e, SD_BUS_ERROR_NO_REPLY))) {
                fprintf(stderr,
                        "fleetidctl: fleetidd took the renewal request but did not answer it in time (%s); it "
                        "may be renewing: see fleetidctl status\n",
                        e.message ?: strerror(-r));
                return RENEW_EXIT_FAILED;
        }
        if (r < 0 && ctl_bus_unreachable(r, &e))
                return -EHOSTUNREACH;
        if (r < 0) {
                fprintf(stderr, "fleetidctl: fleetidd refused the renewal: %s [%s]\n",
                        e.message ?: strerror(-r), e.name ?: "no D-Bus error name");
                return RENEW_EXIT_FAILED;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0 || !(w.path = strdup(path))) {
                fprintf(stderr, "fleetidctl: fleetidd's answer to Renew holds no job\n");
                return RENEW_EXIT_FAILED;
        }
        printf("renewal requested from fleetidd (job %s); waiting up to %us\n", w.path, timeout_sec);
        fflush(stdout);

        /* Its state now (signals before we knew the path were not ours to act on), then at each change. */
        w.state_changed = true;
        for (;;) {
                uint64_t now;

                if (w.result)
                        break;
                if (w.state_changed) {
                        _cleanup_(sd_bus_error_free) sd_bus_error pe = SD_BUS_ERROR_NULL;
                        _cleanup_free_ char *state = NULL;
                        uint64_t retry = 0;
                        char when[64];

                        w.state_changed = false;
                        r = ctl_bus_get_string(bus, w.path, CTL_BUS_JOB_INTERFACE, "State", &pe, &state);
                        if (r >= 0 && strcmp(state, "waiting-ca") == 0) {
                                (void) ctl_bus_get_u64(bus, w.path, CTL_BUS_JOB_INTERFACE, "RetryAfter", &pe,
                                                       &retry);
                                format_usec(retry, when, sizeof(when));
                                printf("pending: the CA deferred the request, retry after %s; fleetidd asks "
                                       "again by itself (job %s)\n",
                                       when, w.path);
                                ret = RENEW_EXIT_PENDING;
                                goto out;
                        }
                        if (r >= 0 && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
                                       strcmp(state, "canceled") == 0)) {
                                w.result = TAKE_PTR(state);
                                break;
                        }
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        printf("fleetidd went away before the renewal ended (%s); see fleetidctl status\n",
                               strerror(-r));
                        ret = RENEW_EXIT_FAILED;
                        goto out;
                }
                if (r > 0)
                        continue;
                now = now_usec();
                if (now >= deadline) {
                        printf("no outcome within %us; the renewal goes on in fleetidd (job %s); see "
                               "fleetidctl status\n",
                               timeout_sec, w.path);
                        ret = RENEW_EXIT_TIMEOUT;
                        goto out;
                }
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0 && r != -EINTR) {
                        printf("cannot wait for fleetidd: %s\n", strerror(-r));
                        ret = RENEW_EXIT_FAILED;
                        goto out;
                }
        }
        ret = strcmp(w.result, "done") == 0 ? report_done(bus, w.path) : report_error(bus, w.path, w.result);
out:
        free(w.path);
        free(w.result);
        return ret;
}
