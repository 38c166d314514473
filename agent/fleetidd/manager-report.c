/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/hook.h"
#include "common/log.h"
#include "common/message-ids.h"
#include "fleetidd/manager.h"
#include "monitor/metrics.h"

/* How close to expiry without a successful renewal: rises notice -> critical. */
static Severity current_severity(const Manager *m, time_t now) {
        const Config *c = m->config;

        Severity s, short_life;

        /* Another TPM: no enrollment, ever, until a person acts. */
        if (m->state == DAEMON_STATE_TPM_REPLACED)
                return SEVERITY_CRITICAL;
        /* No identity and no way to enroll until the clock or the certificate changes. */
        if (m->state == DAEMON_STATE_BIRTH_EXPIRED && !m->cert_not_after)
                return SEVERITY_CRITICAL;
        if (!m->cert_not_after)
                return SEVERITY_OK;
        s = severity_for(now, (time_t) m->cert_not_before, (time_t) m->cert_not_after, (time_t) m->renew_due,
                         c->warning_percent, c->error_percent, c->critical_percent);
        short_life = severity_for_lifetime((time_t) m->cert_not_before, (time_t) m->cert_not_after,
                                           c->renew_min_lifetime_sec);
        return short_life > s ? short_life : s;
}

/* The certificate is shorter than renew.min_lifetime: a server problem. */
static bool short_lived(const Manager *m) {
        return m->cert_not_after &&
               severity_for_lifetime((time_t) m->cert_not_before, (time_t) m->cert_not_after,
                                     m->config->renew_min_lifetime_sec) != SEVERITY_OK;
}

static void write_metrics(const Manager *m, time_t now, Severity sev) {
        MetricsSnapshot s = {
                .cert_not_after = (time_t) m->cert_not_after,
                .cert_not_before = (time_t) m->cert_not_before,
                .last_success = (time_t) m->last_success,
                .last_attempt = (time_t) m->last_attempt,
                .next_attempt = (time_t) m->next_attempt,
                .consecutive_failures = m->failures,
                .state = m->state,
                .severity = sev,
                .have_cert = m->cert_not_after != 0,
                .state_write_error = m->write_error[0] != '\0',
                .tpm_lockout = m->tpm_lockout,
        };
        Diag d = {};
        int r;

        r = metrics_write(m->config->metrics_file, &s, &d);
        if (r < 0)
                log_warning_errno(r, "%s; tried again at the next status update", diag_text(&d, r));
}

static int on_severity(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_report(userdata);
        manager_bus_changed(userdata); /* Severity */
        return 0;
}

/* A CLOCK_REALTIME timer at the next rise above notice (warning, error,
 * critical, expiry), so the escalation does not wait for the next attempt: a
 * server's long Retry-After, or a stalled TPM, must not keep it quiet. Renewal
 * being due (notice) is announced by the attempts themselves. */
static void arm_severity_timer(Manager *m, time_t now) {
        const Config *c = m->config;
        time_t next = 0;
        uint64_t wait, slack;
        int r;

        m->severity_timer = sd_event_source_disable_unref(m->severity_timer);
        if (m->cert_not_after)
                next = severity_next_rise(now, (time_t) m->cert_not_before, (time_t) m->cert_not_after,
                                          (time_t) m->renew_due, c->warning_percent, c->error_percent,
                                          c->critical_percent, SEVERITY_NOTICE);
        if (next <= now)
                return;
        wait = (uint64_t) (next - now);
        slack = wait / 100 > 3600 ? 3600 : wait / 100;
        r = sd_event_add_time(m->event, &m->severity_timer, CLOCK_REALTIME, (uint64_t) next * 1000000ULL,
                              slack ? slack * 1000000ULL : 1000ULL, on_severity, m);
        if (r < 0) {
                log_warning_errno(r, "cannot schedule the next severity check: %m; it comes with the next "
                                     "attempt instead");
                return;
        }
        (void) sd_event_source_set_description(m->severity_timer, "severity");
}

/* time() reads the coarse clock, up to a tick behind the one timers fire on:
 * the severity timer must see the second it was armed for. */
static time_t now_precise(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return time(NULL);
        return ts.tv_sec;
}

void manager_report(Manager *m) {
        time_t now = now_precise();
        Severity sev = current_severity(m, now);

        if (m->config->metrics_file)
                write_metrics(m, now, sev);
        if (m->event)
                arm_severity_timer(m, now);

        /* A renewal that is due is no news until an attempt at it has failed. */
        if (sev == SEVERITY_NOTICE && m->renew_failures == 0 && m->severity < SEVERITY_NOTICE)
                return;
        if (sev > m->severity &&
            (m->state == DAEMON_STATE_TPM_REPLACED || m->state == DAEMON_STATE_BIRTH_EXPIRED)) {
                /* Logged (FLEETID_MESSAGE_TPM_REPLACED, _BIRTH_EXPIRED) and announced
                 * (hook events tpm-replaced, enrollment-failed) where it was found:
                 * not a certificate's expiry. */
                m->severity = sev;
        } else if (sev > m->severity) {
                char left[64] = "expired";
                char *details[] = { NULL, NULL };
                char buf[64];

                if (m->cert_not_after > now)
                        snprintf(left, sizeof(left), "%lld s left",
                                 (long long) (m->cert_not_after - (int64_t) now));
                if (short_lived(m) && m->severity < SEVERITY_WARNING)
                        log_struct(severity_to_syslog(sev), 0, FLEETID_MESSAGE_CERT_EXPIRING,
                                   "operational certificate lives only %llds, less than renew.min_lifetime "
                                   "(%us): the EST CA issues certificates too short to renew safely (a server "
                                   "problem); renewals are held to one per renew.min_interval (%us): severity "
                                   "%s (%s)",
                                   (long long) (m->cert_not_after - m->cert_not_before),
                                   m->config->renew_min_lifetime_sec, m->config->renew_min_interval_sec,
                                   severity_to_string(sev), left);
                else
                        log_struct(severity_to_syslog(sev), 0, FLEETID_MESSAGE_CERT_EXPIRING,
                                   "operational certificate %s without a successful renewal: severity %s (%s)%s%s",
                                   m->cert_not_after > now ? "nearing expiry" : "expired",
                                   severity_to_string(sev), left, m->last_error[0] ? "; last error: " : "",
                                   m->last_error);
                snprintf(buf, sizeof(buf), HOOK_VAR_PREVIOUS_SEVERITY "=%s", severity_to_string(m->severity));
                details[0] = buf;
                m->severity = sev;
                manager_event(m, HOOK_EVENT_EXPIRING, details);
        } else
                m->severity = sev;
}

void manager_event(Manager *m, const char *event, char **extra) {
        char state[64], sev[64], failures[64], not_after[64], next[64], serial[128];
        char error[DIAG_MAX + 32], subject[HOOK_ENV_ENTRY_MAX];
        char *env[16] = {};
        size_t n = 0;

        if (!m->config->hook)
                return;
        snprintf(state, sizeof(state), HOOK_VAR_STATE "=%s", strempty(daemon_state_to_string(m->state)));
        snprintf(sev, sizeof(sev), HOOK_VAR_SEVERITY "=%s", severity_to_string(m->severity));
        snprintf(failures, sizeof(failures), HOOK_VAR_FAILURES "=%u", m->failures);
        env[n++] = state;
        env[n++] = sev;
        env[n++] = failures;
        if (m->cert_not_after) {
                snprintf(not_after, sizeof(not_after), HOOK_VAR_CERT_NOT_AFTER "=%lld",
                         (long long) m->cert_not_after);
                env[n++] = not_after;
        }
        if (m->cert_not_after && m->cert_subject) {
                /* Cut to the hook's bound on one detail rather than lose the event. */
                snprintf(subject, sizeof(subject), HOOK_VAR_CERT_SUBJECT "=%s", m->cert_subject);
                env[n++] = subject;
        }
        if (m->cert_not_after && m->renew_serial) {
                snprintf(serial, sizeof(serial), HOOK_VAR_CERT_SERIAL "=%s", m->renew_serial);
                env[n++] = serial;
        }
        if (m->next_attempt) {
                snprintf(next, sizeof(next), HOOK_VAR_NEXT_ATTEMPT "=%llu",
                         (unsigned long long) m->next_attempt);
                env[n++] = next;
        }
        if (m->last_error[0]) {
                snprintf(error, sizeof(error), HOOK_VAR_ERROR "=%s", m->last_error);
                env[n++] = error;
        }
        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(env) - 1; i++)
                env[n++] = extra[i];
        (void) hook_run(m->event, m->config->hook, m->config->hook_timeout_sec, event, env, m->hooks);
}
