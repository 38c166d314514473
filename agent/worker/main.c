/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleetid-worker: the processes fleetidd starts for its slow and key-holding
 * work, so that the daemon itself maps neither libcurl nor the TPM stack
 * (docs/architecture.md, "Workers"). Not for running by hand:
 *
 *   fleetid-worker enroll|renew|cacerts|reset|signer|sensors
 *
 * with its socket to fleetidd at fd 3 and the setup at fd 4
 * (common/child-setup.h). It logs as fleetidd does, under the same name, so
 * the journal tells one story.
 *
 * Exit codes: 0 done, 1 failure (the daemon says what it lacked), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/child-setup.h"
#include "common/log.h"
#include "reset/reset-marker.h"
#include "worker/sensor-child.h"
#include "worker/signer-process.h"
#include "worker/work.h"

/* The result of an operation that could not begin: what was missing. */
static void send_failure(WorkerOutput *out, int r, Diag *d, const char *what) {
        WorkerResult wr = { .error = r, .outcome = ATTEMPT_TRANSIENT };

        diag_prefix(d, r, "%s", what);
        wr.diag = *d;
        (void) worker_send_result(out, &wr);
}

/* One of the operations of work.h, then exit. */
static int run_work(ChildRole role, ChildSetup *setup) {
        _cleanup_(state_store_freep) StateStore *store = NULL, *runtime = NULL;
        ResetMarker marker = {};
        WorkContext ctx = { .config = setup->config };
        WorkerOutput *out = NULL;
        Diag d = {};
        int r;

        r = worker_output_open(CHILD_SOCKET_FD, &out);
        if (r < 0)
                return log_error_errno(r, "fleetid-worker: cannot use its socket: %m");
        /* The daemon opened (and made) the directory before it started this. */
        r = state_store_open_existing(setup->config->state_dir, &store, &d);
        if (r < 0) {
                send_failure(out, r, &d, "the state directory");
                return worker_output_close(out) < 0 ? 1 : 0;
        }
        if (setup->config->runtime_dir)
                (void) state_store_open_existing(setup->config->runtime_dir, &runtime, NULL);
        ctx.store = store;
        ctx.runtime = runtime;

        switch (role) {
        case CHILD_ENROLL:
                work_enroll(&ctx, out);
                break;
        case CHILD_RENEW:
                ctx.deferred_spki = setup->extra;
                ctx.deferred_spki_len = setup->extra_len;
                work_renew(&ctx, out);
                break;
        case CHILD_CACERTS:
                work_cacerts(&ctx, out);
                break;
        case CHILD_RESET:
                r = setup->extra
                            ? reset_marker_parse((const char *) setup->extra, setup->extra_len, &marker, &d)
                            : diag_set(&d, -EINVAL, "no reset marker was handed over");
                if (r < 0) {
                        send_failure(out, r, &d, "the factory reset's marker");
                        break;
                }
                ctx.reset = &marker;
                work_reset(&ctx, out);
                reset_marker_done(&marker);
                break;
        default:
                break;
        }
        return worker_output_close(out) < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        ChildSetup setup = {};
        ChildRole role;
        struct stat st;
        Diag d = {};
        int r;

        log_setup("fleetidd");
        /* libcurl would write the TLS session secrets to this file, and with
         * them the Basic password and the channel binding. */
        (void) unsetenv("SSLKEYLOGFILE");
        role = argc == 2 ? child_role_from_string(argv[1]) : _CHILD_ROLE_INVALID;
        if (role < 0) {
                fprintf(stderr,
                        "fleetid-worker is started by fleetidd, not by hand: fleetid-worker "
                        "enroll|renew|cacerts|reset|signer|sensors, with its socket at fd %d and its setup "
                        "at fd %d\n",
                        CHILD_SOCKET_FD, CHILD_SETUP_FD);
                return 2;
        }
        if (fstat(CHILD_SOCKET_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                log_error("fleetid-worker %s: fd %d is not a socket; it is started by fleetidd", argv[1],
                          CHILD_SOCKET_FD);
                return 2;
        }
        /* Nothing this process runs (a "cmd:" TCTI, say) inherits the daemon's socket. */
        (void) fcntl(CHILD_SOCKET_FD, F_SETFD, FD_CLOEXEC);
        r = child_setup_read(CHILD_SETUP_FD, &setup, &d);
        (void) close(CHILD_SETUP_FD);
        if (r < 0) {
                log_error("fleetid-worker %s: its setup from fleetidd is unusable: %s", argv[1],
                          diag_text(&d, r));
                return 1;
        }

        switch (role) {
        case CHILD_SIGNER: {
                StateStore *store = NULL;

                r = state_store_open_existing(setup.config->state_dir, &store, &d);
                if (r < 0) {
                        log_error("fleetid-worker signer: the state directory: %s", diag_text(&d, r));
                        return 1;
                }
                signer_process_main(CHILD_SOCKET_FD, setup.config, store);
        }
        case CHILD_SENSORS:
                sensor_child_main(CHILD_SOCKET_FD, setup.config);
        default:
                r = run_work(role, &setup);
                child_setup_done(&setup);
                return r;
        }
}
