#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-factory-reset-renewal.sh: a factory reset asked for while a renewal is
# in flight (issue 12). Owner A's lab EST server holds the renewal's POST
# /simplereenroll (a control-file delay; it then answers with a valid
# certificate, late); meanwhile `fleetidctl factory-reset --owner B --yes`
# (fleetidd running: SIGHUP):
#   - the renewal job, asked with `fleetidctl renew` over D-Bus (the lab's
#     private bus), ends canceled, saying a factory reset stopped it;
#   - the reset completes without waiting for A's answer: the new renewal
#     key the renewal had made at the spare handle is fleetid's (noted when it
#     was made), so it is evicted, not reported as a foreign object;
#   - the device ends enrolled with B (its certificate chains to B's CA);
#   - A's late answer is never stored: after A has answered, operational.pem
#     is still B's, and A saw no request after the reset but the held one.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

[ "$(id -u)" -eq 0 ] || lab_skip "fleetidctl factory-reset runs as root only"
lab_require_tools tpm2_readpublic
fleetid_lab_up
fleetid_provision SN-RESET-RENEW
HOLD=8
fleetid_write_config "renew: { min_interval = 0; };"
A_LOG=$EST_LOG
fleetid_second_est B
fleetid_owner_file "$LAB_TMPDIR/owner-b.conf" "$B_URL" fingerprint \
    "$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$B_PKI/est-ca.pem")"
OP=0x81020002 SPARE=0x81020003
ctl() { DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS "$FLEETIDCTL" --config "$FLEETID_CONF" "$@"; }

echo "== enrolled with owner A"
# The lab's private bus (it lets anyone own any name) stands for the system bus.
DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS fleetid_daemon_start
fleetid_wait_state 60 enrolled || lab_fail "fleetidd did not enroll with owner A"
lab_wait_until 30 "fleetidd to record its PID" test -s "$FLEETID_RUNTIME/fleetidd.pid" ||
    lab_fail "fleetidd did not record its PID"
_serving() { grep -q "D-Bus: serving org.fleetid.Agent1" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to serve org.fleetid.Agent1" _serving || lab_fail "fleetidd is not on the bus"
fleetid_issued_by "$EST_PKI" || lab_fail "the first certificate is not from A's CA"

echo "== a renewal held by A's server"
est_control "{\"faults\": [{\"match\": \"simplereenroll\", \"delay\": $HOLD}]}"
ctl renew --timeout 60 >"$LAB_TMPDIR/renew.out" 2>&1 &
renew_pid=$!
lab_on_exit "_lab_kill $renew_pid fleetidctl"
held() { [ "$(est_log_count event=delay op=simplereenroll)" -ge 1 ]; }
lab_wait_until 30 "A's server to hold the renewal" held || lab_fail "the renewal did not reach A's server"
tpm2_readpublic -c "$SPARE" >/dev/null 2>&1 || lab_fail "the renewal made no key at the spare handle $SPARE"
a_before=$(fleetid_requests_in "$A_LOG")

echo "== the factory reset to owner B, asked while A holds the renewal"
ctl factory-reset --owner "$LAB_TMPDIR/owner-b.conf" --yes --timeout 120 >"$LAB_TMPDIR/reset.out" 2>&1 ||
    lab_fail "the reset failed: $(cat "$LAB_TMPDIR/reset.out")"
cat "$LAB_TMPDIR/reset.out" >&2
fleetid_expect_grep "$LAB_TMPDIR/reset.out" "factory reset done: enrolled with $B_URL" "the reset"
fleetid_issued_by "$B_PKI" || lab_fail "after the reset the certificate is not from B's CA"

rc=0
wait "$renew_pid" || rc=$?
cat "$LAB_TMPDIR/renew.out" >&2
[ "$rc" -ne 0 ] || lab_fail "fleetidctl renew says the renewal succeeded: $(cat "$LAB_TMPDIR/renew.out")"
fleetid_expect_grep "$LAB_TMPDIR/renew.out" \
    "canceled: a factory reset was asked for while this renewal ran; the renewal was stopped and the old owner.s identity is wiped \[org.fleetid.Agent1.Error.Canceled\]" \
    "the renewal job's end"
fleetid_expect_grep "$FLEETIDD_LOG" "factory reset asked for while the renewal runs: stopping it" "the log"
fleetid_expect_grep "$FLEETIDD_LOG" "TPM handles evicted: [^;]*$SPARE" "the renewal's key evicted by the reset"

echo "== A answers late: nothing of it is stored"
answered() { [ "$(est_log_count op=simplereenroll)" -ge 1 ]; }
lab_wait_until $((HOLD + 30)) "A's server to answer the held renewal" answered ||
    lab_fail "A's server never answered the held renewal"
fleetid_wait_state 30 enrolled || lab_fail "fleetidd is not enrolled after the reset"
fleetid_issued_by "$B_PKI" || lab_fail "A's late answer replaced B's certificate"
! fleetid_issued_by "$EST_PKI" || lab_fail "the stored certificate chains to A's CA"
[ ! -e "$FLEETID_STATE/factory-reset" ] || lab_fail "the reset marker stayed"
fleetid_expect_eq "$(fleetid_requests_in "$A_LOG")" "$((a_before + 1))" \
    "requests to A after the reset (the held renewal only)"
fleetid_expect_eq "$(est_log_count op=simplereenroll)" 1 "renewals A saw"

echo "PASS"
