/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ossl-util.h"
#include "fleetidctl/bus.h"
#include "fleetidctl/status-bus.h"
#include "util/macro.h"

void bus_status_done(BusStatus *s) {
        free(s->state);
        free(s->last_error);
        free(s->leaf_pem);
        *s = (BusStatus) {};
}

/* The first certificate of a GetCertificateChain reply, as PEM. */
static int leaf_pem(sd_bus_message *reply, char **ret) {
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        const void *der = NULL;
        const unsigned char *p;
        X509 *x;
        size_t len = 0;
        char *data;
        long n;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "ay");
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &der, &len);
        if (r < 0)
                return r;
        if (r == 0 || len == 0 || len > LONG_MAX)
                return -EBADMSG;
        p = der;
        x = d2i_X509(NULL, &p, (long) len);
        b = BIO_new(BIO_s_mem());
        if (!x || !b || PEM_write_bio_X509(b, x) != 1) {
                X509_free(x);
                return -EBADMSG;
        }
        X509_free(x);
        /* Not NUL-terminated: no strndup(), which may read on to the terminator. */
        n = BIO_get_mem_data(b, &data);
        if (n <= 0)
                return -EBADMSG;
        *ret = malloc((size_t) n + 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, data, (size_t) n);
        (*ret)[n] = '\0';
        return 0;
}

static int get_usec_as_sec(sd_bus *bus, const char *name, sd_bus_error *e, uint64_t *ret) {
        uint64_t usec = 0;
        int r;

        r = ctl_bus_get_u64(bus, CTL_BUS_PATH, CTL_BUS_INTERFACE, name, e, &usec);
        if (r >= 0)
                *ret = usec / 1000000ULL;
        return r;
}

int ctl_status_bus(BusStatus *ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_(bus_status_done) BusStatus s = {};
        Diag d = {};
        int r;

        if (ctl_bus_open(&bus, &d) < 0)
                return -EHOSTUNREACH;
        r = ctl_bus_get_string(bus, CTL_BUS_PATH, CTL_BUS_INTERFACE, "State", &e, &s.state);
        if (r >= 0)
                r = ctl_bus_get_string(bus, CTL_BUS_PATH, CTL_BUS_INTERFACE, "LastError", &e, &s.last_error);
        if (r >= 0)
                r = get_usec_as_sec(bus, "LastSuccess", &e, &s.last_success);
        if (r >= 0)
                r = get_usec_as_sec(bus, "RenewDue", &e, &s.renew_due);
        if (r >= 0) {
                r = sd_bus_call_method(bus, CTL_BUS_NAME, CTL_BUS_PATH, CTL_BUS_INTERFACE,
                                       "GetCertificateChain", &e, &reply, NULL);
                if (r >= 0)
                        r = leaf_pem(reply, &s.leaf_pem);
                else if (sd_bus_error_has_name(&e, "org.fleetid.Agent1.Error.NotEnrolled")) {
                        sd_bus_error_free(&e);
                        r = 0; /* none in force */
                }
        }
        if (r < 0 && ctl_bus_unreachable(r, &e))
                return -EHOSTUNREACH;
        if (r < 0 && sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED))
                return -EACCES;
        if (r < 0) {
                fprintf(stderr, "fleetidctl: fleetidd's status over D-Bus: %s; showing the state directory\n",
                        e.message ?: strerror(-r));
                return r;
        }
        if (sd_bus_get_name_creds(bus, CTL_BUS_NAME, SD_BUS_CREDS_PID, &creds) >= 0)
                (void) sd_bus_creds_get_pid(creds, &s.pid);
        if (isempty(s.last_error)) {
                free(s.last_error);
                s.last_error = NULL;
        }
        *ret = s;
        s = (BusStatus) {};
        return 0;
}
