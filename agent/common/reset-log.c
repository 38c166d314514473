/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/message-ids.h"
#include "common/reset-log.h"

static void handles_text(const uint32_t *h, unsigned n, char *buf, size_t size) {
        size_t len = 0;

        buf[0] = '\0';
        for (unsigned i = 0; i < n && len < size; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s0x%08x", i ? ", " : "", h[i]);
        if (n == 0)
                snprintf(buf, size, "none");
}

void reset_log_wiped(const ResetMarker *m, const Config *owner, const ResetReport *rep, int r, const Diag *d) {
        _cleanup_free_ char *anchor = NULL;
        char evicted[64], foreign[64], result[DIAG_MAX + 64];

        if (reset_owner_anchor(owner, &anchor) < 0)
                anchor = NULL;
        handles_text(rep->evicted, rep->n_evicted, evicted, sizeof(evicted));
        handles_text(rep->foreign, rep->n_foreign, foreign, sizeof(foreign));
        if (r < 0)
                snprintf(result, sizeof(result), "failed: %s", diag_text(d, r));
        else if (!m->enroll)
                snprintf(result, sizeof(result), "wiped; not enrolling (--no-enroll)");
        else
                snprintf(result, sizeof(result), "wiped; enrolling with the new owner next");
        log_struct(r < 0 ? LOG_ERR : LOG_NOTICE, r, FLEETID_MESSAGE_FACTORY_RESET,
                   "factory reset asked by uid %u: old operational certificate %s (issuer %s); TPM handles "
                   "evicted: %s; foreign objects left: %s; new owner %s, trust anchor %s; %s",
                   (unsigned) m->uid, m->old_serial ? m->old_serial : "none",
                   m->old_issuer ? m->old_issuer : "none", evicted, foreign, strempty(owner->est_url),
                   anchor ? anchor : "unknown", result);
}

void reset_log_enrolled(const ResetMarker *m, const Config *owner, const char *serial, const char *issuer) {
        log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_FACTORY_RESET_ENROLLED,
                   "factory reset asked by uid %u finished: enrolled with the new owner %s, operational "
                   "certificate %s issued by %s",
                   (unsigned) m->uid, strempty(owner->est_url), strempty(serial), strempty(issuer));
}

void reset_test_crash_hook(const char *step, bool in_worker) {
        const char *want = getenv("FLEETID_TEST_RESET_CRASH_AFTER");
        const char *stop = getenv("FLEETID_TEST_RESET_STOP_AFTER");

        /* The worker stops itself (SIGSTOP) after the step, for a test to
         * act while the wipe is under way, and SIGCONT it. */
        if (in_worker && stop && streq_ptr(stop, step))
                (void) raise(SIGSTOP);

        if (!want || !streq_ptr(want, step))
                return;
        if (in_worker)
                (void) kill(getppid(), SIGKILL);
        (void) raise(SIGKILL);
}
