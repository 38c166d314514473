/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "fleetidctl/bus.h"
#include "util/macro.h"

int ctl_bus_open(sd_bus **ret, Diag *d) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system_with_description(&bus, "fleetidctl");
        if (r < 0)
                return diag_set(d, r, "cannot connect to the system bus: %s", strerror(-r));
        r = sd_bus_set_method_call_timeout(bus, CTL_BUS_CALL_USEC);
        if (r < 0) {
                sd_bus_flush_close_unref(bus);
                return diag_set(d, r, "cannot set up the system bus connection: %s", strerror(-r));
        }
        *ret = bus;
        return 0;
}

bool ctl_bus_unreachable(int r, const sd_bus_error *e) {
        if (sd_bus_error_is_set(e))
                return sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                              SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_UNKNOWN_METHOD,
                                              SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_INTERFACE,
                                              SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED);
        return r == -ENOENT || r == -ECONNREFUSED || r == -ENOTCONN || r == -ECONNRESET || r == -EHOSTDOWN ||
               r == -ENXIO;
}

int ctl_bus_get_string(sd_bus *bus, const char *path, const char *interface, const char *name,
                       sd_bus_error *e, char **ret) {
        return sd_bus_get_property_string(bus, CTL_BUS_NAME, path, interface, name, e, ret);
}

int ctl_bus_get_u64(sd_bus *bus, const char *path, const char *interface, const char *name, sd_bus_error *e,
                    uint64_t *ret) {
        return sd_bus_get_property_trivial(bus, CTL_BUS_NAME, path, interface, name, e, 't', ret);
}

int ctl_bus_write_pem(FILE *f, sd_bus_message *reply) {
        const void *der;
        size_t len;
        int r, n = 0;

        r = sd_bus_message_enter_container(reply, 'a', "ay");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read_array(reply, 'y', &der, &len)) > 0) {
                const unsigned char *p = der;
                X509 *cert;

                if (len == 0 || len > LONG_MAX)
                        return -EBADMSG;
                cert = d2i_X509(NULL, &p, (long) len);
                if (!cert || p != (const unsigned char *) der + len) {
                        X509_free(cert);
                        return -EBADMSG;
                }
                r = PEM_write_X509(f, cert);
                X509_free(cert);
                if (r != 1)
                        return -EIO;
                n++;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(reply);
        return r < 0 ? r : n;
}
