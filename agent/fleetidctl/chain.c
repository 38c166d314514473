/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "crypto/ossl-util.h"
#include "fleetidctl/bus.h"
#include "fleetidctl/chain.h"
#include "store/state-certs.h"
#include "store/state-store.h"

static int flushed(void) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "fleetidctl: could not write the output: %s\n", strerror(errno));
                return 1;
        }
        return 0;
}

int ctl_chain_bus(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        Diag d = {};
        int r;

        if (ctl_bus_open(&bus, &d) < 0)
                return -EHOSTUNREACH;
        r = sd_bus_call_method(bus, CTL_BUS_NAME, CTL_BUS_PATH, CTL_BUS_INTERFACE, "GetCertificateChain", &e,
                               &reply, NULL);
        if (r < 0 && ctl_bus_unreachable(r, &e))
                return -EHOSTUNREACH;
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s [%s]\n", e.message ?: strerror(-r),
                        e.name ?: "no D-Bus error name");
                return 1;
        }
        r = ctl_bus_write_pem(stdout, reply);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: fleetidd's chain cannot be printed: %s\n", strerror(-r));
                return 1;
        }
        return flushed();
}

int ctl_chain_files(const char *state_dir) {
        _cleanup_(state_store_freep) StateStore *store = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        Diag d = {};
        int r;

        r = state_store_open_existing(state_dir, &store, &d);
        if (r >= 0)
                r = state_certs_load(store, STATE_OPERATIONAL_CERT, &certs, &d);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s%s\n", r == -ENOENT ? "not enrolled: " : "", diag_text(&d, r));
                return 1;
        }
        for (int i = 0; i < sk_X509_num(certs); i++)
                if (PEM_write_X509(stdout, sk_X509_value(certs, i)) != 1) {
                        fprintf(stderr, "fleetidctl: could not write the output\n");
                        return 1;
                }
        return flushed();
}
