/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-cacerts.c: the periodic /cacerts refresh between renewals, which
 * follows the EST CA through a root CA key update (RFC 7030 4.1.3): new roots
 * adopted, expired ones retired (lib/enroll/trust.h does the work), each
 * change logged with its MESSAGE_ID and announced with the hook event
 * ca-changed. docs/ca-rollover.md describes it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/hook.h"
#include "common/log.h"
#include "common/message-ids.h"
#include "crypto/certcheck.h"
#include "exchange/trust.h"
#include "fleetidd/manager.h"
#include "util/clock.h"
#include "util/timestamp.h"

/* The first refresh after the daemon starts comes at a random time within this
 * (or within the period, if shorter), so a fleet rebooting together spreads out. */
#define CACERTS_FIRST_MAX_SEC 600

/* Details of the ca-changed event: space-separated sha256 fingerprints. */
#define CACERTS_VAR_ADOPTED "FLEETID_CA_ADOPTED"
#define CACERTS_VAR_RETIRED "FLEETID_CA_RETIRED"

static int on_cacerts(sd_event_source *s, uint64_t usec, void *userdata);

/* CLOCK_BOOTTIME, so suspend time counts; 1% slack (at most an hour) lets the
 * kernel coalesce wake-ups. */
static int arm(Manager *m, time_t now, uint64_t delay_sec) {
        uint64_t slack = delay_sec / 100 > 3600 ? 3600 : delay_sec / 100;
        int r;

        m->cacerts_timer = sd_event_source_disable_unref(m->cacerts_timer);
        r = sd_event_add_time_relative(m->event, &m->cacerts_timer, CLOCK_BOOTTIME, delay_sec * 1000000ULL,
                                       slack ? slack * 1000000ULL : 1000ULL, on_cacerts, m);
        if (r < 0)
                return log_error_errno(r, "cannot schedule the periodic /cacerts refresh: %m");
        (void) sd_event_source_set_description(m->cacerts_timer, "cacerts-refresh");
        m->cacerts_next = (uint64_t) now + delay_sec;
        return 0;
}

int manager_cacerts_start(Manager *m) {
        uint64_t period = m->config->est_cacerts_refresh_sec;
        uint64_t first_max = period < CACERTS_FIRST_MAX_SEC ? period : CACERTS_FIRST_MAX_SEC;

        if (m->cacerts_timer)
                return 0;
        return arm(m, time(NULL), manager_random() % (first_max + 1));
}

int manager_cacerts_fetched(Manager *m) {
        time_t now = time(NULL);

        m->cacerts_checked = (uint64_t) now;
        return arm(m, now, m->config->est_cacerts_refresh_sec);
}

static void log_roots(int level, const char *message_id, STACK_OF(X509) *certs, const char *what,
                      const char *why) {
        for (int i = 0; i < sk_X509_num(certs); i++) {
                _cleanup_free_ char *subject = NULL, *fp = NULL;
                X509 *x = sk_X509_value(certs, i);
                time_t not_after = 0;
                char until[TIMESTAMP_MAX] = "?";

                (void) cert_subject_string(x, &subject);
                (void) cert_fingerprint(x, &fp);
                if (cert_times(x, NULL, &not_after) >= 0)
                        timestamp_utc(not_after, until);
                log_struct(level, 0, message_id, "%s the EST root CA certificate %s (%s, valid until %s): %s",
                           what, strempty(subject), strempty(fp), until, why);
        }
}

/* "NAME=fp1 fp2 ..." within the hook's bound on one detail; NULL if there is none. */
static char *fingerprints_var(const char *name, STACK_OF(X509) *certs) {
        char *s = NULL;
        size_t len;
        FILE *f;

        if (sk_X509_num(certs) <= 0) /* -1 for NULL */
                return NULL;
        f = open_memstream(&s, &len);
        if (!f)
                return NULL;
        fprintf(f, "%s=", name);
        for (int i = 0; i < sk_X509_num(certs); i++) {
                _cleanup_free_ char *fp = NULL;

                if (cert_fingerprint(sk_X509_value(certs, i), &fp) < 0 ||
                    ftell(f) + 1 + (long) strlen(fp) >= HOOK_ENV_ENTRY_MAX)
                        break;
                fprintf(f, "%s%s", i > 0 ? " " : "", fp);
        }
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

void manager_announce_trust_changes(Manager *m, const TrustChanges *ch) {
        _cleanup_free_ char *adopted = NULL, *retired = NULL;
        char *details[3] = {};
        size_t n = 0;

        log_roots(LOG_NOTICE, FLEETID_MESSAGE_CA_ROOT_ADOPTED, ch->adopted, "adopted",
                  "a NewWithOld certificate in /cacerts, signed by a trusted root, vouches for it (RFC 7030 "
                  "4.1.3); stored in " STATE_ADOPTED_ANCHORS);
        log_roots(LOG_NOTICE, FLEETID_MESSAGE_CA_ROOT_RETIRED, ch->retired, "retired",
                  "it has expired; the other trust anchors carry on");
        if (sk_X509_num(ch->refused) > 0)
                log_struct(LOG_WARNING, ch->refused_why.error, FLEETID_MESSAGE_CA_ROOT_REFUSED,
                           "/cacerts offers %d new root CA certificate(s) that nothing links to a trusted root; "
                           "trust unchanged: %s",
                           sk_X509_num(ch->refused), diag_text(&ch->refused_why, -EKEYREJECTED));
        /* The first set too: a client that found none learns there is one. */
        if (ch->ca_changed || sk_X509_num(ch->adopted) > 0 || sk_X509_num(ch->retired) > 0)
                manager_bus_trust_changed(m);
        if ((!ch->ca_changed || ch->ca_first) && sk_X509_num(ch->adopted) <= 0 &&
            sk_X509_num(ch->retired) <= 0) {
                log_debug("/cacerts refreshed: the EST CA certificates are unchanged");
                return;
        }
        log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_CA_CHANGED,
                   "the EST CA certificates changed (/cacerts); the stored set was updated");
        adopted = fingerprints_var(CACERTS_VAR_ADOPTED, ch->adopted);
        retired = fingerprints_var(CACERTS_VAR_RETIRED, ch->retired);
        if (adopted)
                details[n++] = adopted;
        if (retired)
                details[n++] = retired;
        manager_event(m, HOOK_EVENT_CA_CHANGED, details);
}

static void cacerts_done(Manager *m, WorkerResult *res) {
        unsigned period = m->config->est_cacerts_refresh_sec;
        int r = res->error;

        if (r < 0) {
                log_struct(LOG_WARNING, r, FLEETID_MESSAGE_CA_REFRESH_FAILED,
                           "periodic /cacerts refresh failed: %s [%s]; the operational identity and the trust "
                           "anchors are unchanged; trying again in %us",
                           diag_text(&res->diag, r), attempt_outcome_to_string(res->outcome), period);
                (void) arm(m, time(NULL), period);
        } else {
                manager_announce_trust_changes(m, &res->trust_changes);
                (void) manager_cacerts_fetched(m);
        }
        manager_write_status(m);
}

static int cacerts_run(Manager *m, sd_event_source *timer) {
        unsigned period = m->config->est_cacerts_refresh_sec;
        time_t now = time(NULL);
        int r;

        /* Renewal, enrollment and the clock check own those cases; an
         * unbelievable clock would misjudge which roots have expired. */
        if (!m->cert_not_after || now > (time_t) m->cert_not_after ||
            clock_check(now, FLEETID_BUILD_EPOCH, 0, NULL) < 0) {
                log_debug("no /cacerts refresh now (no valid operational certificate, or the clock is not "
                          "believable); next try in %us",
                          period);
                r = arm(m, time(NULL), period);
                manager_write_status(m);
                return r;
        }
        return manager_run_worker(m, WORKER_CACERTS, timer, cacerts_done);
}

static int on_cacerts(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->worker) /* another operation runs: this refresh follows it */
                return manager_run_worker(m, WORKER_CACERTS, s, NULL);
        return cacerts_run(m, s);
}
