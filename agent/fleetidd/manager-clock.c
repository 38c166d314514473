/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/message-ids.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "fleetidd/manager.h"
#include "store/state-certs.h"
#include "util/clock.h"

/* systemd-timesyncd touches this once the clock is synchronised (systemd >= 239). */
#define TIMESYNC_DIR "/run/systemd/timesync"
#define TIMESYNC_FLAG "synchronized"

/* The notBefore of the first certificate in the state file `name` (the birth
 * or the operational certificate), 0 if none or unreadable. */
static time_t stored_not_before(Manager *m, const char *name) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        time_t nb = 0, na;

        if (state_certs_load(m->store, name, &certs, NULL) < 0 ||
            cert_times(sk_X509_value(certs, 0), &nb, &na) < 0)
                return 0;
        return nb;
}

/* The largest time_t (systemd's TIME_T_MAX, for the same timerfd use). */
#define TIME_T_MAX_VALUE ((time_t) ((UINTMAX_C(1) << (sizeof(time_t) * 8 - 1)) - 1))

static void clock_wait_stop(Manager *m) {
        m->clock_change_source = sd_event_source_disable_unref(m->clock_change_source);
        m->timesync_source = sd_event_source_disable_unref(m->timesync_source);
}

void manager_clock_wait_cancel(Manager *m) {
        clock_wait_stop(m);
        m->clock_waiting_for_renewal = false;
}

static void resume(Manager *m) {
        clock_wait_stop(m);
        if (m->state == DAEMON_STATE_BIRTH_EXPIRED)
                log_info("the clock changed; trying the birth certificate, expired on the old clock, again");
        else
                log_info("the clock changed; checking it again");
        if (m->clock_waiting_for_renewal)
                (void) manager_renew_now(m);
        else
                (void) manager_schedule_attempt(m, 0);
}

static int on_clock_change(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t expirations;

        /* read() fails with ECANCELED exactly when the realtime clock was set. */
        (void) read(fd, &expirations, sizeof(expirations));
        resume(userdata);
        return 0;
}

static int on_timesync(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        if (ev->len > 0 && strcmp(ev->name, TIMESYNC_FLAG) == 0)
                resume(userdata);
        return 0;
}

/* Wakes the daemon when the wall clock is set (timerfd with CANCEL_ON_SET) or
 * when timesyncd reports synchronisation. No polling. */
static int clock_wait_start(Manager *m) {
        /* A deadline that never comes: only a clock change wakes it (not
         * INT32_MAX, which a clock past 2038-01-19 has passed already). */
        struct itimerspec its = { .it_value = { .tv_sec = TIME_T_MAX_VALUE } };
        int fd, r;

        if (m->clock_change_source)
                return 0;
        fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "cannot watch for clock changes: %m");
        if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0) {
                r = -errno;
                close(fd);
                return log_error_errno(r, "cannot watch for clock changes: %m");
        }
        r = sd_event_add_io(m->event, &m->clock_change_source, fd, EPOLLIN, on_clock_change, m);
        if (r < 0) {
                close(fd);
                return log_error_errno(r, "cannot watch for clock changes: %m");
        }
        (void) sd_event_source_set_io_fd_own(m->clock_change_source, true);
        if (access(TIMESYNC_DIR, F_OK) == 0)
                (void) sd_event_add_inotify(m->event, &m->timesync_source, TIMESYNC_DIR,
                                            IN_CREATE | IN_MOVED_TO | IN_ATTRIB, on_timesync, m);
        return 0;
}

int manager_clock_ready(Manager *m, bool for_renewal) {
        Diag d = {};
        int r;

        r = clock_check(time(NULL), FLEETID_BUILD_EPOCH, stored_not_before(m, STATE_BIRTH_CERT), &d);
        if (r >= 0)
                r = clock_check_stored(time(NULL), stored_not_before(m, STATE_OPERATIONAL_CERT),
                                       m->config->est_max_clock_skew_sec,
                                       access(TIMESYNC_DIR "/" TIMESYNC_FLAG, F_OK) == 0, &d);
        if (r >= 0) {
                clock_wait_stop(m);
                return 1;
        }
        m->clock_waiting_for_renewal = for_renewal;
        if (!m->clock_change_source)
                log_struct(LOG_WARNING, r, FLEETID_MESSAGE_CLOCK_UNSYNCHRONIZED,
                           "not trusting the clock: %s; waiting for time synchronisation before judging or "
                           "renewing certificates",
                           diag_text(&d, r));
        bool first = !m->clock_change_source;
        manager_set_state(m, DAEMON_STATE_WAITING_CLOCK, diag_text(&d, r));
        if (first)
                manager_event(m, HOOK_EVENT_CLOCK_UNSYNCHRONIZED, NULL);
        r = clock_wait_start(m);
        return r < 0 ? r : 0;
}

void manager_birth_expired(Manager *m, int r, const Diag *d) {
        char text[DIAG_MAX + 160];
        uint64_t delay = m->config->retry_max_sec;

        snprintf(text, sizeof(text), "%s", diag_text(d, r));
        log_struct(LOG_ERR, r, FLEETID_MESSAGE_BIRTH_EXPIRED,
                   "enrollment impossible: %s; nothing was sent to the EST server; trying again in %llus "
                   "(retry.max), or at once when the system clock is set",
                   text, (unsigned long long) delay);
        manager_reset_enroll_failed(m, text);
        m->next_attempt = (uint64_t) time(NULL) + delay;
        m->clock_waiting_for_renewal = false;
        manager_set_state(m, DAEMON_STATE_BIRTH_EXPIRED, text);
        manager_event(m, HOOK_EVENT_ENROLLMENT_FAILED, NULL);
        (void) manager_schedule_attempt(m, delay);
        /* A clock set right (or further ahead) is worth a try at once. */
        (void) clock_wait_start(m);
}
