/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager.h: the fleetidd state, the userdata of every event callback.
 *
 * manager.c         life cycle: create, start, free
 * manager-enroll.c  one enrollment attempt, and the retry schedule after failures
 * manager-renew.c   the renewal schedule, renewals, SIGUSR1 = renew now
 * manager-clock.c   waiting for a believable clock (1970 at boot, stale RTC)
 * manager-status.c  what the daemon tells the outside: status file, sd_notify
 * manager-report.c  escalation: severity, metrics file, event hook
 * manager-cacerts.c the periodic /cacerts refresh: CA rollover (RFC 7030 4.1.3)
 * manager-ping.c    the loop's liveness probe: a unix socket in the runtime directory
 * manager-bus.c     org.fleetid.Agent1 on the system bus, and its access check
 * manager-sign.c    SignChallenge, answered by the signing process (signer.h)
 * manager-sensors.c the sensor broker (manager-sensors.h), its worker sensor-worker.c
 * manager-reset.c   the factory reset: the marker, the wipe worker, SIGHUP
 * manager-jobs.c    the jobs of org.fleetid.Agent1 (manager-jobs.h)
 * worker.c          the process each enrollment, renewal or refresh runs in
 *
 * Everything that changes this state runs in the daemon, on the loop. The
 * slow work (TPM key creation, the EST exchanges) runs in a worker process,
 * `fleetid-worker` (worker.h, agent/worker/): it gets the configuration and
 * the operation's input, and the matching *_done() handler here acts on its
 * result.
 */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "access/access-methods.h"
#include "access/access-policy.h"

#include "common/hook.h"
#include "config/config.h"
#include "exchange/key-choice.h"
#include "exchange/trust.h"
#include "monitor/daemon-state.h"
#include "monitor/severity.h"
#include "reset/reset.h"
#include "store/state-store.h"
#include "util/diag.h"
#include "fleetidd/worker.h"

typedef struct Manager Manager;
typedef struct Job Job; /* manager-jobs.h */

/* The properties of org.fleetid.Agent1 as PropertiesChanged last announced them. */
typedef struct BusSnapshot {
        bool known;
        DaemonState state;
        bool enrolled;
        char *subject, *serial;
        int64_t not_before, not_after, renew_due;
        uint64_t last_success;
        char last_error[DIAG_MAX];
        Severity severity;
        bool tpm_lockout;
} BusSnapshot;
/* The caller of the method call being dispatched, as the access filter
 * checked it (manager_bus_caller()). */
typedef struct BusCaller {
        sd_bus_message *msg; /* not a reference: only compared with the message at hand */
        uid_t uid;
        gid_t *gids; /* kept across calls, grown when a caller has more groups */
        size_t n_gids, gids_allocated;
} BusCaller;
/* Acts on the result of an operation's worker, on the loop. */
typedef void (*ManagerDoneFn)(Manager *m, WorkerResult *r);

typedef struct Manager {
        Config *config;
        sd_event *event;
        sd_event_source *retry_timer;   /* the next enrollment attempt */
        sd_event_source *renew_timer;   /* the next renewal (due time or retry) */
        sd_event_source *cacerts_timer; /* the next periodic /cacerts refresh */
        uint64_t cacerts_checked;       /* unix seconds of the last /cacerts fetched, 0 = none yet */
        uint64_t cacerts_next;          /* unix seconds the periodic refresh is due (estimate) */
        StateStore *store;
        StateStore *runtime; /* paths.runtime_dir: the status record and the PID, NULL if none */
        /* What the status file in the state directory last got of the facts
         * that must survive a reboot; with a runtime directory that file is
         * written only when one of them changes (flash is not written at
         * every state change or retry): the last success, the renewal due
         * time, the certificate in force, and whether attempts are failing
         * (the first failure and the recovery are written, not each retry). */
        struct {
                bool known;
                uint64_t last_success, renew_due, valid_until;
                bool failing; /* failures > 0: the last report was a failure */
        } persisted;
        char write_error[DIAG_MAX]; /* why the last status write to the state directory failed, "" if it did not */

        bool oneshot;  /* exit after the first attempt */
        int exit_code; /* with oneshot */
        bool ready_sent;

        unsigned failures;     /* consecutive failed attempts */
        uint64_t last_success; /* unix seconds */
        uint64_t next_attempt; /* unix seconds, 0 = none */
        DaemonState state;     /* _DAEMON_STATE_INVALID until the first is set */
        char last_error[DIAG_MAX];
        bool tpm_lockout;     /* the TPM was in dictionary-attack lockout when a worker last read it */
        bool birth_key_da;    /* the birth key lacks noDA (as a worker last read it) */
        bool birth_da_warned; /* said so since this start */

        /* renewal */
        uint64_t renew_random; /* this certificate's draw for the jitter (from its fingerprint) */
        char *renew_serial;    /* the current certificate's serial, NULL if none or unreadable */
        unsigned renew_failures;
        uint8_t *renew_deferred_spki; /* the key of a request the CA deferred (202), DER, or NULL */
        size_t renew_deferred_spki_len;
        unsigned renew_requests;                 /* SIGUSR1s received (fleetidctl renew) */
        unsigned renew_answered;                 /* renew_requests when the latest renewal attempt started */
        int64_t cert_not_before, cert_not_after; /* the current certificate, 0 if none */
        char *cert_subject;                      /* its subject (RFC 2253), NULL if none */
        /* A renewal found the current certificate unusable and the device
         * enrolls again with its birth identity: until that succeeds there
         * is nothing to renew (the dates above stay, for the escalation). */
        bool enrolling_anew;

        /* Renew() over D-Bus (manager-renew-job.c) */
        Job *renew_job;          /* the renew job not finished yet, or NULL */
        bool renew_job_attached; /* the attempt in flight, or the one deferred by the CA, is renew_job's */
        bool renew_canceled;     /* the renewal worker was killed by a Cancel */
        bool reset_preempting;   /* the worker in flight was killed for a factory reset */

        /* waiting for a believable clock */
        sd_event_source *clock_change_source; /* timerfd CANCEL_ON_SET */
        sd_event_source *timesync_source;     /* inotify on /run/systemd/timesync */
        bool clock_waiting_for_renewal;       /* what to resume: renewal, else enrollment */

        /* escalation */
        int64_t renew_due;               /* the current certificate's renewal time, 0 if none */
        uint64_t last_attempt;           /* unix seconds of the last enrollment/renewal attempt */
        Severity severity;               /* last reported */
        sd_event_source *severity_timer; /* when the severity rises next without an attempt */
        HookSet *hooks;                  /* event hooks still running */

        /* the operation in flight (one at a time) */
        Worker *worker;            /* NULL when idle */
        ManagerDoneFn worker_done; /* what acts on its result */
        unsigned deferred;         /* timers (1 << WorkerKind) that fired while it ran */
        bool inline_workers;       /* FLEETIDD_INLINE_WORKERS=1: run on the loop (loop-latency bench only) */
        bool stopping;             /* SIGTERM/SIGINT: exit once the worker is reaped */
        sd_event_source *ping;     /* the liveness probe socket, NULL if none */
        char *ping_path;

        /* org.fleetid.Agent1 (manager-bus.c); bus NULL when the API is off */
        sd_bus *bus;
        sd_bus_slot *bus_slot;
        AccessPolicy *access;           /* access.file; NULL = no grants */
        struct RateLimit *bus_deny_log; /* refusals logged per uid */
        BusSnapshot bus_seen;
        struct RateLimit *bus_rate[_ACCESS_RATE_MAX]; /* per uid, per AccessRateClass (NONE unused) */
        BusCaller bus_caller;                         /* the call the filter let through last */

        /* SignChallenge (manager-sign.c): the signing process, started by a call */
        struct Signer *signer;             /* takes new calls; NULL when none runs */
        struct Signer *signers_retired[4]; /* finishing their calls before they exit */
        struct CredsCache *bus_creds;      /* the callers' credentials by unique name */
        uint64_t trust_generation;         /* changes of the EST CA set (manager-bus-signals.c) */
        struct StateCertsCache *bus_chain, *bus_bundle; /* operational.pem, est-trust-anchors.pem as DER */
        struct SensorBroker *sensors;                   /* manager-sensors.c; NULL with --oneshot */
        /* factory reset (manager-reset.c) */
        ResetMarker reset_marker; /* the marker as last read */
        ResetMarker *reset;       /* &reset_marker while a reset is unfinished, else NULL */
        bool reset_pending;       /* asked for (SIGHUP) while another operation ran */
        Job *reset_job;           /* the FactoryReset() job not finished yet, or NULL */

        /* jobs (manager-jobs.h) */
        struct {
                Job *first, *last;   /* every job kept, by id */
                unsigned n_live;     /* not finished */
                unsigned n_finished; /* finished, kept for GetResult */
                uint32_t last_id;    /* the last id given; never reused in a run */
                sd_event_source *gc; /* drops the finished jobs whose time is over */
                bool stopping;       /* manager_jobs_cancel_all(): no new job, none freed */
        } jobs;
} Manager;

#define EXIT_TEMPFAIL 75

int manager_new(Config *config, bool oneshot, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Opens the state directory and schedules the first attempt right away. */
int manager_start(Manager *m);
/* SIGTERM/SIGINT: stops the worker in flight (SIGTERM, then SIGKILL after
 * WORKER_KILL_USEC), and leaves the loop once it is reaped, or at once. */
int manager_stop(Manager *m);

/* Starts the kind's worker (`fleetid-worker KIND`, agent/worker/) for the
 * timer `timer` (the kind's own timer), with the configuration in force and
 * the kind's input (the renewal's deferred key, the reset's marker); done()
 * gets its result on the loop. When another operation is in flight, the
 * timer is deferred instead: it fires again when that one ends, unless its
 * result re-armed the timer. Returns 0 in both cases. */
int manager_run_worker(Manager *m, WorkerKind kind, sd_event_source *timer, ManagerDoneFn done);

/* manager-ping.c: the probe socket in the runtime directory (none without one). */
int manager_ping_start(Manager *m);
void manager_ping_stop(Manager *m);

/* manager-bus.c: connects to the system bus and serves org.fleetid.Agent1
 * (never with --oneshot). A bus that cannot be reached or a name that cannot
 * be owned is logged and leaves the API off: the identity work goes on.
 * Returns < 0 only for a programming error (a method without access row). */
int manager_bus_start(Manager *m);
void manager_bus_stop(Manager *m);
/* In a method handler: the caller's uid as the access filter checked it
 * (-ESRCH if msg is not the call the filter let through last). */
int manager_bus_caller(Manager *m, sd_bus_message *msg, uid_t *ret_uid);
/* In a method handler: whether the caller holds `role` too (a variant of a
 * member that needs more, e.g. SignChallenge with identity=birth). */
bool manager_bus_caller_has(Manager *m, sd_bus_message *msg, AccessRole role);
/* In a method handler: refuses the call as the access filter does (logged
 * with the uid, at most as often as the filter logs): AccessDenied naming
 * the member, the variant and the role of the access table's row. Returns
 * > 0 (answered; also for a call that expects no reply), < 0 if the reply
 * could not be sent: a filter or handler returns it as is. */
int manager_bus_refuse(Manager *m, sd_bus_message *msg, const AccessMethod *row, uid_t uid);
/* Emits PropertiesChanged (names only: readers re-read, through the access
 * check) for the properties that changed since the last call. */
void manager_bus_changed(Manager *m);

/* manager-sign.c: SignChallenge's handler (in agent_vtable). */
int manager_bus_sign_challenge(sd_bus_message *msg, void *userdata, sd_bus_error *error);
/* The certificate in force changed (enrollment, renewal, factory reset): the
 * running signer finishes its calls with the old key and exits, the next
 * call starts one with the new key. */
void manager_signer_reset(Manager *m);
/* Stops every signer now (SIGTERM, reaped); calls in flight fail. */
void manager_signer_stop(Manager *m);
/* manager-reset.c: runs the factory reset the marker in the state directory
 * asks for (the wipe in a worker, or the enrollment after it): 1 if there is
 * one, 0 if not (nothing done), < 0 if the marker cannot be read (state
 * failed then). */
int manager_reset_start(Manager *m);
/* SIGHUP: fleetidctl factory-reset stored a marker and installed the new
 * owner: takes the owner keys from the configuration anew, and starts the
 * reset (the operation in flight, if any, is stopped first: its outcome is
 * the old owner's). */
void manager_reset_request(Manager *m);
/* The worker stopped for a reset was reaped (instead of its done()): a
 * renewal job ends canceled, saying why. */
void manager_reset_preempted(Manager *m, WorkerKind kind, const WorkerResult *res);
/* After an enrollment stored its certificate: ends a reset in its enroll
 * phase (removes the marker, logs, finishes the job). true if there was one. */
bool manager_reset_enrolled(Manager *m);
/* After an enrollment attempt of a reset failed (fleetidd retries): the
 * FactoryReset() job, if any, fails with the reason. */
void manager_reset_enroll_failed(Manager *m, const char *why);
/* FactoryReset() over D-Bus (docs/dbus-api.md): records the reset (the
 * owner as the drop-in directory holds it now) and starts it, as SIGHUP
 * does; *ret the job. A job not finished yet is returned again. -ENOTUNIQ:
 * more than one drop-in file; else the error and why in d. */
int manager_reset_job_request(Manager *m, uid_t owner, bool enroll, Job **ret, Diag *d);

/* manager-enroll.c */
int manager_schedule_attempt(Manager *m, uint64_t delay_sec);
/* Logs a Retry-After that was ignored (unparsable) or cut to `cap` seconds,
 * the configuration key cap_name (retry.max, renew.retry_max). */
void manager_log_retry_after(const EstRetryHint *h, bool capped, const char *cap_name, uint64_t cap);

/* manager-renew.c */
int manager_schedule_renewal(Manager *m);
bool manager_has_renewable(const Manager *m);
/* Reads the stored operational certificate's dates, subject and serial. */
int manager_load_cert_dates(Manager *m, Diag *d);
/* The identity is unusable and renew.fallback_to_birth forbids enrolling anew:
 * critical, state "failed", checked again after renew.retry_max. */
int manager_renewal_impossible(Manager *m, int error, const Diag *d);
int manager_renew_now(Manager *m);
/* A renewal request (SIGUSR1) that the last attempt did not answer: renew now. */
int manager_renew_pending(Manager *m);
uint64_t manager_random(void);

/* manager-clock.c: 1 if the clock can be trusted; else 0 and the pending
 * action (renewal or enrollment) resumes when the clock is set. */
int manager_clock_ready(Manager *m, bool for_renewal);
/* manager-clock.c: stops waiting for the clock (the factory reset: nothing of
 * the old identity resumes). */
void manager_clock_wait_cancel(Manager *m);
/* manager-clock.c: an enrollment found the birth certificate expired (r, d):
 * state birth-expired, the next attempt after retry.max or as soon as the
 * clock is set, whichever comes first. */
void manager_birth_expired(Manager *m, int r, const Diag *d);

/* manager-report.c: recomputes the severity (logging and announcing a rise),
 * writes the metrics file; manager_event() runs the hook for an event. */
void manager_report(Manager *m);
void manager_event(Manager *m, const char *event, char **extra);

/* manager-cacerts.c: starts the periodic /cacerts refresh (once; it re-arms itself). */
int manager_cacerts_start(Manager *m);
/* An enrollment or renewal has just fetched /cacerts: the next periodic refresh
 * is a full est.cacerts_refresh from now, not sooner. */
int manager_cacerts_fetched(Manager *m);

/* manager-status.c: writes the status file (and its runtime copy, which also
 * carries a failure to write the state directory) and the systemd STATUS=
 * from the current state; manager_set_state() changes the state first. */
void manager_write_status(Manager *m);
/* The notAfter of the operational certificate in force (unix seconds), 0 if none. */
uint64_t manager_identity_valid_until(const Manager *m, time_t now);
/* Logs root adoptions, retirements and refusals, and a changed EST CA set
 * (message IDs; the ca-changed hook event with the fingerprints). */
void manager_announce_trust_changes(Manager *m, const TrustChanges *ch);

/* manager-status.c */
/* The one place the state changes: logs a transition, records the error (NULL
 * clears it) and writes the status. */
void manager_set_state(Manager *m, DaemonState state, const char *error);
/* READY=1 (with the first STATUS=), once: the configuration is valid, the
 * state directory open and the event loop about to run. Not "enrolled": that
 * is what fleetidctl wait-enrolled waits for. */
void manager_notify_ready(Manager *m);
/* Enables the systemd watchdog (WATCHDOG=1 from the event loop) when the
 * service manager asked for one; warns when its timeout is shorter than one
 * blocking attempt may take. */
int manager_watchdog_start(Manager *m);

/* manager-renew-job.c: Renew() as a job of kind "renew". The job of a
 * renewal requested now (or the one not finished yet, joined); -ENOENT if
 * there is no operational certificate to renew, -EBUSY for too many jobs,
 * -ESHUTDOWN while a factory reset runs. */
int manager_renew_job_request(Manager *m, uid_t owner, Job **ret);
/* renew_run() started a renewal worker: the job, if any, follows it. */
void manager_renew_job_attempt_started(Manager *m);
/* renew_done(): the attempt the job follows ended; retry_delay_sec: when the
 * next one is (a deferred request's Retry-After), 0 if none. */
void manager_renew_job_attempt_done(Manager *m, const WorkerResult *res, uint64_t retry_delay_sec);
/* The renewal will not run (nothing to renew): the job fails with this error. */
void manager_renew_job_abandon(Manager *m, const char *bus_error_name, const char *message);
/* manager-renew.c: a renewal given up (Cancel): the deferred request is
 * forgotten, and a certificate not due yet goes back to its schedule. */
void manager_renew_back_to_schedule(Manager *m);

/* manager-bus-signals.c: CertificateChanged, TrustBundleChanged and the
 * TrustGeneration they carry (persisted in the state directory). */
void manager_trust_generation_load(Manager *m);
/* The EST CA set changed: the generation counts up, is stored, announced. */
void manager_bus_trust_changed(Manager *m);
/* A new operational certificate is in force (m's serial and dates loaded). */
void manager_bus_certificate_changed(Manager *m);
