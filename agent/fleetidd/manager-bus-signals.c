/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-bus-signals.c: the signals of org.fleetid.Agent1 that say what
 * changed, beyond PropertiesChanged (docs/dbus-api.md, "Signals"):
 *
 *   CertificateChanged(s serial, t not_after)  a new operational certificate
 *       is in force (an enrollment or a renewal stored it);
 *   TrustBundleChanged(t generation)  the EST CA set changed (/cacerts: a new
 *       or dropped CA certificate, a root adopted or retired, the first set).
 *
 * TrustGeneration (a property) counts the changes of the EST CA set. It is
 * kept in the state directory (trust-generation, one decimal line), written
 * when it changes, so that it never goes back across restarts: a client that
 * remembers a generation knows whether the bundle changed since. A missing
 * file is 0 (nothing was counted yet); an unreadable or damaged one is
 * replaced by the current time in seconds, larger than any count a device
 * reaches, so that the generation still does not go back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "fleetidd/bus-names.h"
#include "fleetidd/manager.h"

void manager_trust_generation_load(Manager *m) {
        _cleanup_free_ char *text = NULL;
        unsigned long long v;
        size_t len = 0;
        char *end;
        Diag d = {};
        int r;

        r = state_store_load(m->store, STATE_TRUST_GENERATION, 32, &text, &len, &d);
        if (r == -ENOENT) {
                m->trust_generation = 0;
                return;
        }
        errno = 0;
        v = r >= 0 ? strtoull(text, &end, 10) : 0;
        if (r < 0 || errno || end == text || (*end && *end != '\n') || text[0] == '-') {
                m->trust_generation = (uint64_t) time(NULL);
                log_warning("the trust generation in %s cannot be read (%s); it goes on from %" PRIu64
                            " (the current time), which no count reached",
                            STATE_TRUST_GENERATION, r < 0 ? diag_text(&d, r) : "not a number",
                            m->trust_generation);
                return;
        }
        m->trust_generation = (uint64_t) v;
}

void manager_bus_trust_changed(Manager *m) {
        char text[32];
        Diag d = {};
        int n, r;

        m->trust_generation++;
        n = snprintf(text, sizeof(text), "%" PRIu64 "\n", m->trust_generation);
        r = state_store_save(m->store, STATE_TRUST_GENERATION, text, (size_t) n, STATE_FILE_MODE, &d);
        if (r < 0)
                log_warning_errno(r,
                                  "cannot store the trust generation %" PRIu64 ": %s; a restart may count "
                                  "it again",
                                  m->trust_generation, diag_text(&d, r));
        if (!m->bus)
                return;
        r = sd_bus_emit_signal(m->bus, BUS_PATH, BUS_INTERFACE, "TrustBundleChanged", "t",
                               m->trust_generation);
        if (r >= 0)
                r = sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "TrustGeneration", NULL);
        if (r < 0)
                log_warning_errno(r, "D-Bus: cannot emit TrustBundleChanged: %m");
}

void manager_bus_certificate_changed(Manager *m) {
        int r;

        if (!m->bus || !m->renew_serial)
                return;
        r = sd_bus_emit_signal(m->bus, BUS_PATH, BUS_INTERFACE, "CertificateChanged", "st", m->renew_serial,
                               m->cert_not_after > 0 ? (uint64_t) m->cert_not_after * 1000000ULL : 0);
        if (r < 0)
                log_warning_errno(r, "D-Bus: cannot emit CertificateChanged: %m");
}
