/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hook.h: runs the monitoring hook (monitoring.hook) on fleetid events,
 * without ever blocking the daemon.
 *
 * The program runs asynchronously on the daemon's sd-event loop:
 *   - environment: only PATH=/usr/sbin:/usr/bin:/sbin:/bin, FLEETID_EVENT=<event>
 *     and the caller's FLEETID_* details; nothing of the daemon's own
 *     environment, and never a secret (the caller passes none);
 *   - argv: the program, then the event name;
 *   - stdin /dev/null, stdout and stderr the daemon's stderr (the journal),
 *     working directory /, default signal dispositions and an empty signal
 *     mask, no other file descriptor (closed at spawn, whatever their
 *     close-on-exec flag);
 *   - its own process group. At the timeout the group gets SIGTERM, and
 *     SIGKILL HOOK_KILL_GRACE_SEC later if the program is still there. When
 *     the program exits, whatever it left running in its group is killed
 *     (SIGKILL): a hook's work ends with the hook.
 * At most HookSet's limit of hooks run at the same time; beyond that an
 * event's hook is dropped with a warning. Start, outcome and kills are logged
 * (agent/common/log.h); failures with FLEETID_MESSAGE_HOOK_FAILED.
 *
 * The caller must block SIGCHLD (sigprocmask) before the first hook_run(), so
 * that no handler (and no SIG_IGN) reaps a hook before its exit is read
 * (child-watch.h); hook_run() refuses with -EBUSY otherwise.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "util/macro.h"

#define HOOK_MAX_RUNNING_DEFAULT 4
#define HOOK_KILL_GRACE_SEC 5
#define HOOK_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
/* Bounds on the details: entries, and bytes per "KEY=VALUE". */
#define HOOK_ENV_MAX 32
#define HOOK_ENV_ENTRY_MAX 4096

/* FLEETID_EVENT values; docs/monitoring.md says which details each carries. */
#define HOOK_EVENT_ENROLLED "enrolled"
#define HOOK_EVENT_ENROLLMENT_FAILED "enrollment-failed"
#define HOOK_EVENT_RENEWED "renewed"
#define HOOK_EVENT_RENEWAL_FAILED "renewal-failed"
#define HOOK_EVENT_EXPIRING "expiring" /* the severity rose: closer to expiry, not renewed */
#define HOOK_EVENT_CA_CHANGED "ca-changed"
#define HOOK_EVENT_CLOCK_UNSYNCHRONIZED "clock-unsynchronized"
#define HOOK_EVENT_TPM_CLEARED "tpm-cleared"   /* enrolling again with the birth identity */
#define HOOK_EVENT_TPM_REPLACED "tpm-replaced" /* another TPM: not enrolling */

/* Details (env entries "NAME=value"); docs/monitoring.md says which event has which. */
#define HOOK_VAR_STATE "FLEETID_STATE"       /* fleetidd's state: enrolled, waiting-retry, ... */
#define HOOK_VAR_SEVERITY "FLEETID_SEVERITY" /* ok, notice, warning, error, critical */
#define HOOK_VAR_PREVIOUS_SEVERITY "FLEETID_PREVIOUS_SEVERITY"
#define HOOK_VAR_CERT_SUBJECT "FLEETID_CERT_SUBJECT"     /* of the operational certificate */
#define HOOK_VAR_CERT_SERIAL "FLEETID_CERT_SERIAL"       /* hex */
#define HOOK_VAR_CERT_NOT_AFTER "FLEETID_CERT_NOT_AFTER" /* seconds since the epoch */
#define HOOK_VAR_ERROR "FLEETID_ERROR"                   /* what failed, one line */
#define HOOK_VAR_FAILURES "FLEETID_FAILURES"             /* consecutive failures */
#define HOOK_VAR_NEXT_ATTEMPT "FLEETID_NEXT_ATTEMPT"     /* seconds since the epoch */

typedef struct HookSet HookSet;

/* How one hook ended, handed to the HookSet's done handler. */
typedef struct HookResult {
        const char *event;
        const char *program;
        pid_t pid;
        int code;       /* CLD_EXITED, CLD_KILLED, CLD_DUMPED or CHILD_WATCH_REAPED_ELSEWHERE */
        int status;     /* the exit status, or the signal; 0 if reaped elsewhere */
        bool timed_out; /* fleetid killed it at its timeout */
} HookResult;

typedef void (*hook_done_t)(HookSet *set, const HookResult *result, void *userdata);

/* An empty set allowing max_running (>= 1) hooks at the same time. */
int hook_set_new(unsigned max_running, HookSet **ret);

/* Kills (SIGKILL, whole process group) and reaps every hook still running,
 * logging each, and frees the set. For daemon exit. */
HookSet *hook_set_free(HookSet *set);
DEFINE_TRIVIAL_CLEANUP_FUNC(HookSet *, hook_set_free);

/* Called after each hook ended (not for one that could not be started). */
void hook_set_on_done(HookSet *set, hook_done_t handler, void *userdata);

unsigned hook_set_running(const HookSet *set);

/* Starts program (an absolute path) for event_name ([a-z0-9-], at most 64)
 * with the details in env (NULL or a NULL-terminated list of "FLEETID_KEY=VALUE",
 * KEY from [A-Z0-9_], not FLEETID_EVENT, within the HOOK_ENV_* bounds) and
 * returns once it runs; timeout_sec >= 1. Logs every outcome itself, so
 * callers may ignore the result: 0 started, -EINVAL bad arguments, -EBUSY
 * too many hooks running (or SIGCHLD not blocked), -ENOENT/-EACCES/... the
 * program cannot be run. */
int hook_run(sd_event *e, const char *program, unsigned timeout_sec, const char *event_name, char **env,
             HookSet *set);
