/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * factory-reset.c: fleetidctl factory-reset (docs/factory-reset.md).
 *
 * Validates the new owner file before anything changes, asks, stores the
 * reset marker, installs the owner file in the drop-in directory (which only
 * root may write), and then has the wipe done: by the running fleetidd
 * (SIGHUP: it reloads the owner, wipes in a worker and enrolls), or here,
 * with the same lib/reset steps, when fleetidd does not run (it enrolls when
 * it starts, finding the marker). A crash anywhere leaves the marker, and
 * whoever runs next finishes the reset.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/reset-log.h"
#include "crypto/certcheck.h"
#include "fleetidctl/fleetidctl.h"
#include "monitor/daemon-state.h"
#include "reset/reset.h"
#include "tpm/tpm-context.h"
#include "util/fileio.h"

/* An owner file is small; this bounds the read. */
#define OWNER_FILE_MAX (64u * 1024u)

static int fail(const char *fmt, ...) _printf_(1, 2);
static int fail(const char *fmt, ...) {
        va_list ap;

        fputs("fleetidctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

/* Who asked: the login uid (the person behind sudo, as the audit subsystem
 * keeps it), else the real uid. */
static uid_t asking_uid(void) {
        _cleanup_free_ char *text = NULL;
        unsigned long v;
        char *end;
        size_t len;

        if (read_file_bounded("/proc/self/loginuid", 32, &text, &len) < 0)
                return getuid();
        errno = 0;
        v = strtoul(text, &end, 10);
        if (errno || end == text || (*end && *end != '\n') || v >= UINT32_MAX)
                return getuid(); /* 4294967295: no login uid */
        return (uid_t) v;
}

static bool confirm(const Config *c, const char *owner_url) {
        char line[16];

        if (!isatty(STDIN_FILENO))
                return false;
        printf("This wipes the operational identity of this device (TPM handles 0x%08x and 0x%08x, the\n"
               "operational certificate, the EST trust anchors, the status and the sensor records in %s)\n"
               "and the owner configuration in %s. The birth identity stays.\n"
               "The device then enrolls with %s.\n"
               "Type 'yes' to go on: ",
               c->op_key_handle, c->op_spare_key_handle, c->state_dir,
               c->dropin_dir ?: "(no drop-in directory)", owner_url ?: "nobody (--no-enroll)");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin))
                return false;
        return strcmp(line, "yes\n") == 0;
}

/* The test-only crash hook (FLEETID_TEST_RESET_CRASH_AFTER, docs/factory-reset.md). */
static void after_step(const char *step, void *userdata) {
        reset_test_crash_hook(step, false);
}

/* fleetidd does not run: the wipe here. Returns the exit status. */
static int wipe_here(const Config *c, StateStore *store, ResetMarker *m) {
        _cleanup_(tpm_context_freep) TpmContext *tpm = NULL;
        _cleanup_(state_store_freep) StateStore *runtime = NULL;
        ResetReport rep = {};
        Diag d = {};
        int r;

        if (m->phase == RESET_PHASE_ENROLL) {
                printf("factory reset: the wipe was done already; fleetidd enrolls with %s when it starts\n",
                       c->est_url);
                return 0;
        }
        r = reset_record_current(store, m, &d);
        if (r < 0)
                return fail("%s; the reset is recorded and finishes when fleetidd starts, or when factory-reset "
                            "runs again",
                            diag_text(&d, r));
        r = tpm_context_new(c->tpm_tcti, &tpm, &d);
        if (r < 0)
                return fail("cannot reach the TPM: %s; the reset is recorded and finishes when fleetidd starts, "
                            "or when factory-reset runs again",
                            diag_text(&d, r));
        if (c->runtime_dir)
                (void) state_store_open_existing(c->runtime_dir, &runtime, NULL);
        r = reset_wipe(c, tpm, store, runtime, m, after_step, NULL, &rep, &d);
        reset_log_wiped(m, c, &rep, r, &d);
        if (r < 0)
                return 1;
        r = reset_wipe_done(store, m, &d);
        if (r < 0)
                return fail("%s", diag_text(&d, r));
        reset_test_crash_hook("phase", false);
        if (r > 0)
                printf("factory reset done; not enrolling (--no-enroll)\n");
        else
                printf("factory reset: wiped; fleetidd enrolls with %s when it starts\n", c->est_url);
        return 0;
}

/* Whether two status records differ in what fleetidctl looks at. */
static bool record_changed(const StatusRecord *a, const StatusRecord *b) {
        return a->updated != b->updated || !streq_ptr(a->state, b->state) ||
               !streq_ptr(a->last_error, b->last_error);
}

/* fleetidd runs: SIGHUP, then wait for the marker to go. A failure counts
 * only in a status record that differs from the one before the signal
 * (which may say how an earlier attempt failed). */
static int wipe_by_daemon(const Config *c, StateStore *store, pid_t pid, const ResetMarker *m,
                          unsigned timeout) {
        _cleanup_(status_record_done) StatusRecord before = {};

        (void) load_record(c, store, &before, NULL);
        if (kill(pid, SIGHUP) < 0)
                return fail("cannot signal fleetidd (pid %d): %s; the reset is recorded and finishes when "
                            "fleetidd starts again",
                            (int) pid, strerror(errno));
        if (timeout == 0) {
                printf("factory reset handed to fleetidd (pid %d); not waiting (--timeout 0)\n", (int) pid);
                return 0;
        }
        printf("factory reset handed to fleetidd (pid %d); waiting up to %us\n", (int) pid, timeout);
        fflush(stdout);
        for (unsigned i = 0; i < timeout * 10; i++) {
                _cleanup_(status_record_done) StatusRecord rec = {};
                ResetMarker now = {};
                int r;

                usleep(100 * 1000);
                r = reset_marker_load(store, &now, NULL);
                reset_marker_done(&now);
                if (r == -ENOENT) {
                        printf(m->enroll ? "factory reset done: enrolled with %s\n"
                                         : "factory reset done; not enrolling (--no-enroll): fleetidd stopped\n",
                               c->est_url);
                        return 0;
                }
                if (kill(pid, 0) < 0 && m->enroll)
                        return fail("fleetidd exited before the reset finished; it finishes when fleetidd "
                                    "starts again");
                if (load_record(c, store, &rec, NULL) < 0 || !record_changed(&rec, &before))
                        continue;
                if (daemon_state_from_string(rec.state) == DAEMON_STATE_FAILED && rec.last_error &&
                    strstr(rec.last_error, "factory reset"))
                        return fail("%s", rec.last_error);
                if (daemon_state_from_string(rec.state) == DAEMON_STATE_WAITING_RETRY)
                        return fail("factory reset: wiped, but enrolling with %s failed: %s; fleetidd retries "
                                    "(fleetidctl status)",
                                    c->est_url, strempty(rec.last_error));
        }
        printf("the factory reset did not finish within %us; fleetidd goes on with it (fleetidctl status)\n",
               timeout);
        return 2;
}

int factory_reset(const FactoryResetArgs *a) {
        _cleanup_(config_freep) Config *old = NULL, *new = NULL;
        _cleanup_(state_store_freep) StateStore *store = NULL;
        _cleanup_(reset_marker_done) ResetMarker m = {};
        _cleanup_free_ char *owner_text = NULL;
        char owner_hash[RESET_HASH_SIZE] = "";
        size_t owner_len = 0;
        Diag d = {};
        pid_t pid;
        int r;

        log_setup("fleetidctl");
        log_set_ids_to_journal();
        if (geteuid() != 0)
                return fail("factory-reset must run as root: it installs the owner file in the drop-in "
                            "directory and evicts TPM keys; nothing was changed");

        /* The configuration as it is: may not load (a broken drop-in); the
         * reset replaces the drop-ins then all the same. */
        if (config_load(a->config_path, &old, &d) < 0) {
                fprintf(stderr,
                        "fleetidctl: the current configuration does not load (%s); the reset replaces "
                        "its owner files\n",
                        d.text);
                diag_clear(&d);
        }

        /* What the configuration will be: refused before anything changes. */
        if (a->owner) {
                r = read_file_bounded(a->owner, OWNER_FILE_MAX, &owner_text, &owner_len);
                if (r < 0)
                        return fail("cannot read the owner file %s: %s; nothing was changed", a->owner,
                                    read_file_strerror(r));
                if (sha256_text(owner_text, owner_len, owner_hash) < 0)
                        return fail("cannot hash the owner file; nothing was changed");
        }
        /* The configuration whose owner files go: the one in force, NULL if it
         * did not load (borrowed: it may become `new` below). */
        const Config *previous = old;

        r = config_load_with_owner(a->config_path, a->owner, &new, &d);
        if (r < 0 && (a->owner || !a->no_enroll))
                return fail("%s; %s; nothing was changed", diag_text(&d, r),
                            a->owner ? "the owner file is refused"
                                     : "without --owner the device would enroll with the main configuration file "
                                       "alone; give --owner FILE, or --no-enroll");
        if (r < 0) {
                /* --no-enroll without an owner: no owner is needed, the device part is. */
                if (!old)
                        return fail("%s; nothing was changed", diag_text(&d, r));
                new = TAKE_PTR(old);
        }
        if (a->owner && !streq_ptr(new->dropins[0].hash, owner_hash))
                return fail("the owner file %s changed while it was read; nothing was changed", a->owner);

        if (!a->yes && !confirm(new, a->no_enroll ? NULL : new->est_url))
                return fail(isatty(STDIN_FILENO) ? "not confirmed; nothing was changed"
                                                 : "no --yes and no terminal to ask on; nothing was changed");

        r = state_store_open_existing(new->state_dir, &store, &d);
        if (r == -ENOENT) {
                /* fleetidd never ran: no identity to wipe, only the owner to replace. */
                r = reset_owner_install(new->dropin_dir, previous, a->owner ? new : NULL, owner_text,
                                        owner_len, &d);
                if (r < 0)
                        return fail("cannot install the owner configuration: %s", diag_text(&d, r));
                printf("factory reset: no state directory %s (fleetidd never ran), so no identity to wipe; the "
                       "owner configuration is replaced\n",
                       new->state_dir);
                return 0;
        }
        if (r < 0)
                return fail("%s; nothing was changed", diag_text(&d, r));
        {
                /* Under the lock a wipe holds to its end (reset_wipe_done()): a
                 * wipe by fleetidd that is running sees this request, and
                 * leaves its marker for fleetidd to run next. */
                _cleanup_close_ int lock = -1;

                r = state_store_lock(store, &lock, &d);
                if (r >= 0)
                        r = reset_begin(store, asking_uid(), time(NULL), !a->no_enroll, owner_hash, &m, &d);
        }
        if (r < 0)
                return fail("cannot record the factory reset: %s; nothing was changed", diag_text(&d, r));
        reset_test_crash_hook("marker", false);

        r = reset_owner_install(new->dropin_dir, previous, a->owner ? new : NULL, owner_text, owner_len, &d);
        if (r < 0)
                return fail("cannot install the owner configuration: %s; the reset is recorded: run "
                            "factory-reset again",
                            diag_text(&d, r));
        reset_test_crash_hook("owner", false);

        if (read_daemon_pid(new, store, &pid, NULL) >= 0)
                return wipe_by_daemon(new, store, pid, &m, a->timeout);
        return wipe_here(new, store, &m);
}
