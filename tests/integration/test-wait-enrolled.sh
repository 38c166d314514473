#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-wait-enrolled.sh: fleetidctl wait-enrolled, the sync point behind
# fleetid-wait-enrolled.service, and fleetidctl status/check with no daemon:
#  - with no fleetidd running it fails at once (exit 1) saying so;
#  - while the EST server refuses, it gives up after --timeout (exit 2) naming
#    the state and the server's error;
#  - when fleetidd exits while it waits, it fails (exit 1) saying so;
#  - a wait started before the enrollment returns 0 once fleetidd reports
#    the certificate (woken by inotify on the runtime directory), and at
#    once when the device is enrolled already, also while a failed renewal
#    is retried (the certificate stays in force);
#  - a daemon killed with SIGKILL (its PID file left behind) counts as not
#    running; fleetidctl status and check then say so and still show the
#    certificate.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
# A minute between attempts at first: the state stays waiting-retry, with the
# server's error, for as long as the timeout below takes under any load.
fleetid_write_config "retry: { initial = 60; max = 60; };"
OUT=$LAB_TMPDIR/wait.out
wait_enrolled() { # [OPTIONS]: runs it bounded, output in $OUT, returns its exit status
    local rc=0
    timeout 150 "$FLEETIDCTL" --config "$FLEETID_CONF" wait-enrolled "$@" >"$OUT" 2>&1 || rc=$?
    cat "$OUT" >&2
    return $rc
}
expect_rc() { # WHAT EXPECTED ACTUAL
    [ "$3" = "$2" ] || lab_fail "$1: exit status $3, expected $2 ($(cat "$OUT"))"
}

# ---- no daemon ----
rc=0; wait_enrolled --timeout 100 || rc=$?
expect_rc "wait-enrolled without a daemon" 1 "$rc"
fleetid_expect_grep "$OUT" "fleetidd is not running" "wait-enrolled saying that no fleetidd runs"

# ---- the EST server refuses: bounded by --timeout ----
est_control '{"faults": [{"match": "*", "status": 503, "body": "maintenance (lab)"}]}'
fleetid_daemon_start
fleetid_wait_state 60 waiting-retry
rc=0; wait_enrolled --timeout 2 || rc=$?
expect_rc "wait-enrolled while the server refuses" 2 "$rc"
fleetid_expect_grep "$OUT" "not enrolled within 2s: state waiting-retry: .*maintenance \(lab\); next attempt " \
    "the timeout naming the state, the server's error and the next attempt"

# ---- fleetidd exits while a wait runs ----
rc=0
wait_enrolled --timeout 100 & waiter=$!
# It waits (no outcome yet) until the daemon goes away.
sleep 1
kill -0 "$waiter" 2>/dev/null || lab_fail "wait-enrolled returned while nothing was enrolled: $(cat "$OUT")"
_lab_kill "$FLEETIDD_PID" fleetidd
wait "$waiter" || rc=$?
expect_rc "wait-enrolled when fleetidd exits" 1 "$rc"
fleetid_expect_grep "$OUT" "fleetidd \(pid [0-9]+\) exited before the device was enrolled" "wait-enrolled saying fleetidd exited"
# Stopped (SIGTERM removes the PID file): not running.
rc=0; wait_enrolled --timeout 100 || rc=$?
expect_rc "wait-enrolled after fleetidd stopped" 1 "$rc"
fleetid_expect_grep "$OUT" "fleetidd is not running \(no fleetidd.pid in the runtime or state directory\)" "wait-enrolled: no PID file"

# ---- a wait started before the enrollment ends with it ----
fleetid_write_config "retry: { initial = 1; max = 2; };"
fleetid_daemon_start
fleetid_wait_state 60 waiting-retry
rc=0
wait_enrolled --timeout 120 & waiter=$!
sleep 1
kill -0 "$waiter" 2>/dev/null || lab_fail "wait-enrolled returned while nothing was enrolled: $(cat "$OUT")"
est_control ''
wait "$waiter" || rc=$?
expect_rc "wait-enrolled through the enrollment" 0 "$rc"
[ -s "$FLEETID_STATE/operational.pem" ] || lab_fail "wait-enrolled returned 0, but there is no operational.pem"
[ "$(fleetid_status_get state)" = enrolled ] || lab_fail "wait-enrolled returned 0 in state $(fleetid_status_get state)"
not_after=$(date -u -d "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)
fleetid_expect_grep "$OUT" "^enrolled: the operational certificate is valid until $not_after$" "the certificate's end in the output"

# Enrolled already: at once, without a timeout (0 = no limit).
rc=0; wait_enrolled --timeout 0 || rc=$?
expect_rc "wait-enrolled when enrolled" 0 "$rc"

# A failed renewal leaves the current certificate in force: still enrolled
# as fleetidd reports it (waiting-retry, with valid_until in the status).
est_control '{"faults": [{"match": "simplereenroll", "status": 503, "body": "renewals paused (lab)"}]}'
rc=0; timeout 150 "$FLEETIDCTL" --config "$FLEETID_CONF" renew >"$OUT" 2>&1 || rc=$?
expect_rc "fleetidctl renew against a refusing server" 1 "$rc"
[ "$(fleetid_status_get state)" = waiting-retry ] || lab_fail "state after the failed renewal: $(fleetid_status_get state)"
rc=0; wait_enrolled --timeout 5 || rc=$?
expect_rc "wait-enrolled while a renewal is retried" 0 "$rc"
est_control ''

# Usage: --timeout belongs to wait-enrolled and takes seconds.
rc=0; "$FLEETIDCTL" --config "$FLEETID_CONF" wait-enrolled --timeout soon >"$OUT" 2>&1 || rc=$?
expect_rc "wait-enrolled --timeout soon" 1 "$rc"
fleetid_expect_grep "$OUT" "--timeout \"soon\" is not a number of seconds" "the bad --timeout named"
rc=0; "$FLEETIDCTL" --config "$FLEETID_CONF" status --timeout 5 >"$OUT" 2>&1 || rc=$?
expect_rc "status --timeout" 1 "$rc"
fleetid_expect_grep "$OUT" "--timeout applies only to wait-enrolled" "--timeout refused for status"

# ---- the daemon dies: status and check say so, and still show the certificate ----
"$FLEETIDCTL" --config "$FLEETID_CONF" status >"$OUT"
fleetid_expect_grep "$OUT" "^Daemon: +running \(pid $FLEETIDD_PID\)$" "status: the running daemon"
kill -KILL "$FLEETIDD_PID"
lab_wait_until 10 "fleetidd to die" eval "! kill -0 $FLEETIDD_PID 2>/dev/null"
[ -e "$FLEETID_RUNTIME/fleetidd.pid" ] || lab_fail "SIGKILL removed the PID file? (the test needs a stale one)"
rc=0; wait_enrolled --timeout 100 || rc=$?
expect_rc "wait-enrolled after SIGKILL" 1 "$rc"
fleetid_expect_grep "$OUT" "fleetidd is not running \(process $FLEETIDD_PID is gone" "wait-enrolled: the stale PID file"

rc=0; "$FLEETIDCTL" --config "$FLEETID_CONF" status >"$OUT" 2>&1 || rc=$?
expect_rc "status with fleetidd down" 0 "$rc"
fleetid_expect_grep "$OUT" "^Daemon: +fleetidd is not running .*; the state below is its last report$" "status: the daemon is down"
fleetid_expect_grep "$OUT" "^Operational not after: +$not_after" "status: the certificate facts"
[ "$(fleetid_status_get daemon_running)" = false ] || lab_fail "status --json: daemon_running is not false"
rc=0; "$FLEETIDCTL" --config "$FLEETID_CONF" check >"$OUT" 2>&1 || rc=$?
expect_rc "check with fleetidd down" 0 "$rc"
fleetid_expect_grep "$OUT" "^FLEETID OK - operational certificate valid until $not_after, .* left(; .*)?; fleetidd is not running \| days_left=" \
    "check: the certificate and that fleetidd is down"

echo "PASS: wait-enrolled: no daemon, timeout, daemon exit, enrollment; status/check with the daemon down"
