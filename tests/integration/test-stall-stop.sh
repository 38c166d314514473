#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The EST exchanges and the TPM work run in a worker process, off fleetidd's
# event loop. With the lab EST server holding an answer for 60 s:
#  - the loop still answers its probe socket ($FLEETID_RUNTIME/ping) while
#    the enrollment, then a renewal, is stalled, naming the state;
#  - SIGTERM makes fleetidd stop the worker and exit at once (a bounded wait
#    of 5 s; the measured time is logged), with status 0, and the worker is
#    gone too;
#  - nothing is half-written: after a first enrollment stopped in the middle
#    no certificate is stored, after a renewal stopped in the middle the
#    stored certificate is the one from before, intact and still matching its
#    TPM key;
#  - no TPM key is orphaned: the next start reuses the pending key of the
#    stopped enrollment (one persistent object more than before: the
#    operational key), and the next renewal replaces the key the stopped one
#    left at the spare handle (as many persistent objects as before it).
set -euo pipefail
source "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 5; };"

delayed() { [ "$(est_log_count event=delay op="$1")" -gt "$2" ]; }
serial_of() { openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial | cut -d= -f2; }

# The probe answers with the state while the request is held; several
# probes, each bounded (an answer, not a speed, is asserted).
probe_answers() {
    local what=$1 state=$2 i out
    for i in 1 2 3 4 5; do
        out=$(fleetid_ping 5) || lab_fail "$what: the loop did not answer its probe (try $i)"
        fleetid_expect_eq "$out" "pong $state" "$what: the probe's answer"
    done
}

# SIGTERM while the worker waits for the server: exit 0 within the bound,
# and the worker (the daemon's child) does not outlive it.
stop_during_stall() {
    local what=$1 worker
    worker=$({ ps -o pid= --ppid "$FLEETIDD_PID" || true; } | tr -d ' ' | head -n 1)
    [ -n "$worker" ] || lab_fail "$what: fleetidd has no worker process while the request is held"
    fleetid_stop_daemon_bounded 5
    lab_log "$what: fleetidd exited ${FLEETIDD_STOP_MS} ms after SIGTERM (status $FLEETIDD_EXIT)"
    echo "measured: $what: exit ${FLEETIDD_STOP_MS} ms after SIGTERM"
    fleetid_expect_eq "$FLEETIDD_EXIT" 0 "$what: fleetidd's exit status after SIGTERM"
    ! _lab_alive "$worker" || lab_fail "$what: the worker (pid $worker) outlived fleetidd"
    fleetid_expect_grep "$FLEETIDD_LOG" "stopping: ending the .* in flight" "$what: fleetidd log"
}

handles_before=$(fleetid_persistent_handles)

# 1. A first enrollment held at /simpleenroll (its key is made by then).
est_control '{"faults": [{"match": "simpleenroll", "delay": 60, "count": 1}]}'
fleetid_daemon_start
lab_wait_until 60 "the lab server to hold /simpleenroll" delayed simpleenroll 0 ||
    lab_fail "the enrollment did not reach /simpleenroll; log: $(tail -n 3 "$FLEETIDD_LOG")"
probe_answers "enrollment held" enrolling
stop_during_stall "enrollment held"
[ ! -e "$FLEETID_STATE/operational.pem" ] || lab_fail "an operational certificate was stored by a stopped enrollment"

# The next start enrolls with the key the stopped attempt left pending.
est_control ''
fleetid_daemon_start
fleetid_wait_state 60 enrolled
fleetid_expect_grep "$FLEETIDD_LOG" "operational key reused \(pending from an earlier attempt\)" \
    "the enrollment after the stop"
handles_enrolled=$(fleetid_persistent_handles)
fleetid_expect_eq "$handles_enrolled" $((handles_before + 1)) \
    "persistent TPM objects after enrolling (before: $handles_before, plus the operational key)"

# 2. A renewal held at /simplereenroll (its new key is at the spare handle).
kept=$(serial_of)
cp "$FLEETID_STATE/operational.pem" "$LAB_TMPDIR/kept.pem"
est_control '{"faults": [{"match": "simplereenroll", "delay": 60, "count": 1}]}'
kill -USR1 "$FLEETIDD_PID"
lab_wait_until 60 "the lab server to hold /simplereenroll" delayed simplereenroll 0 ||
    lab_fail "the renewal did not reach /simplereenroll; log: $(tail -n 3 "$FLEETIDD_LOG")"
probe_answers "renewal held" renewing
stop_during_stall "renewal held"
cmp -s "$FLEETID_STATE/operational.pem" "$LAB_TMPDIR/kept.pem" ||
    lab_fail "the stored certificate changed although the renewal was stopped"
openssl verify -CAfile "$EST_PKI/est-ca.pem" "$FLEETID_STATE/operational.pem" >/dev/null ||
    lab_fail "the stored certificate does not verify after the stopped renewal"
[ -n "$(fleetid_cert_key_handle "$FLEETID_STATE/operational.pem" 0x81020002 0x81020003)" ] ||
    lab_fail "the stored certificate's key is no longer in the TPM"

# The next start is enrolled with it, and the next renewal replaces the key
# the stopped one left at the spare handle.
est_control ''
fleetid_daemon_start
fleetid_wait_state 60 enrolled
[ "$(serial_of)" = "$kept" ] || lab_fail "the restart replaced the certificate instead of keeping it"
out=$("$FLEETIDCTL" --config "$FLEETID_CONF" renew) || lab_fail "fleetidctl renew after the stop failed: $out"
[ "$(serial_of)" != "$kept" ] || lab_fail "the renewal after the stop stored no new certificate"
fleetid_expect_eq "$(fleetid_persistent_handles)" "$handles_enrolled" \
    "persistent TPM objects after the renewal that followed the stopped one"

# 3. `systemctl stop` sends SIGTERM to every process of the unit at once: the
# worker's death is then part of the stop, not a failed renewal to report
# (and no hook event), even when fleetidd sees the worker's exit and its own
# SIGTERM in the same wake-up. That is made certain here: fleetidd is held
# with SIGSTOP until the worker is dead and its own SIGTERM is pending.
est_control '{"faults": [{"match": "simplereenroll", "delay": 60, "count": 1}]}'
kill -USR1 "$FLEETIDD_PID"
lab_wait_until 60 "the lab server to hold /simplereenroll again" delayed simplereenroll 1 ||
    lab_fail "the renewal did not reach /simplereenroll; log: $(tail -n 3 "$FLEETIDD_LOG")"
worker=$({ ps -o pid= --ppid "$FLEETIDD_PID" || true; } | tr -d ' ' | head -n 1)
[ -n "$worker" ] || lab_fail "no worker process while the renewal is held"
kill -STOP "$FLEETIDD_PID"
kill -TERM "$worker"
lab_wait_until 5 "the worker to die" eval "! _lab_alive $worker" || lab_fail "the worker did not die on SIGTERM"
kill -TERM "$FLEETIDD_PID"
kill -CONT "$FLEETIDD_PID"
lab_wait_until 5 "fleetidd to exit after the SIGTERM to the whole unit" eval "! _lab_alive $FLEETIDD_PID" ||
    lab_fail "fleetidd still runs after SIGTERM to it and its worker"
wait "$FLEETIDD_PID" || lab_fail "fleetidd exited with status $? after SIGTERM to it and its worker"
if grep -qE "renewal failed|was killed by signal" "$FLEETIDD_LOG"; then
    lab_fail "a stop of the whole unit was reported as a failed renewal: $(grep -E "renewal failed" "$FLEETIDD_LOG")"
fi
echo "PASS: test-stall-stop"
