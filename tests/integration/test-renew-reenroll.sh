#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# test-renew-reenroll.sh: a renewal asked for while the device enrolls again.
# A running, enrolled fleetidd loses its operational key (evicted from the
# TPM). A renewal asked for (SIGUSR1) finds the identity unusable and falls
# back to an enrollment with the birth identity (renew.fallback_to_birth, the
# default), which the EST server refuses for now (503), so the enrollment
# waits on its backoff (retry.initial = 60 s). Then:
#  - SIGUSR1 and Renew() (D-Bus, as root) do not run a renewal: there is no
#    usable certificate to renew. SIGUSR1 is answered in the log, Renew()
#    with NotEnrolled; neither starts an enrollment before its backoff is
#    over (no /simpleenroll, no second "cannot renew");
#  - once the server is back, the enrollment's retry (forced here with a
#    restart of fleetidd, as a reboot would) enrolls a new key, and Renew()
#    works again.
# Needs root (fleetidd owns the bus name on a private system-like bus);
# skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_require busctl gdbus
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"
lab_require_tools tpm2_evictcontrol

step() { echo "== $*"; }
log_has() { grep -qE -- "$1" "$FLEETIDD_LOG"; }
log_count() { grep -cE -- "$1" "$FLEETIDD_LOG" || true; }

fleetid_lab_up
fleetid_provision
fleetid_write_config "retry: { initial = 60; max = 120; };"
OPERATIONAL=$FLEETID_STATE/operational.pem
agent_bus_start
fleetid_daemon_start
fleetid_wait_state 90 enrolled || lab_fail "fleetidd did not enroll"
_serving() { grep -q "D-Bus: serving $AGENT_NAME" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own $AGENT_NAME" _serving

step "the operational key is lost; a renewal falls back to enrolling, which the server refuses"
HANDLE=$(fleetid_cert_key_handle "$OPERATIONAL" 0x81020002 0x81020003)
[ -n "$HANDLE" ] || lab_fail "the operational certificate's key is at neither handle"
tpm2_evictcontrol -C o -c "$HANDLE" >/dev/null
est_control '{"faults": [{"match": "simpleenroll", "status": 503, "body": "down (lab)"}]}'
kill -USR1 "$FLEETIDD_PID"
lab_wait_until 30 "the renewal to fall back" log_has "cannot renew: .*enrolling again with the birth identity" ||
    lab_fail "no fallback to the birth identity; log: $(tail -n 3 "$FLEETIDD_LOG")"
lab_wait_until 30 "the enrollment to fail" log_has "enrollment failed: .*down \(lab\).*retrying in" ||
    lab_fail "the enrollment did not fail on the 503; log: $(tail -n 3 "$FLEETIDD_LOG")"
ENROLLS=$(est_log_count op=simpleenroll)
FALLBACKS=$(log_count "cannot renew: ")

step "SIGUSR1 and Renew() while the enrollment waits: answered, no attempt before its backoff"
kill -USR1 "$FLEETIDD_PID"
lab_wait_until 10 "SIGUSR1 to be answered" \
    log_has "renewal requested, but the operational certificate is unusable; enrollment is already being attempted" ||
    lab_fail "SIGUSR1 was not answered as 'nothing to renew'; log: $(tail -n 3 "$FLEETIDD_LOG")"
agent_expect_error root "org\.fleetid\.Agent1\.Error\.NotEnrolled.*no usable operational certificate" \
    "Renew while enrolling anew" call --dest "$AGENT_NAME" --object-path "$AGENT_OBJ" \
    --method "$AGENT_NAME.Renew"
kill -USR1 "$FLEETIDD_PID"
sleep 3
fleetid_expect_eq "$(est_log_count op=simpleenroll)" "$ENROLLS" "/simpleenroll requests after SIGUSR1 and Renew()"
fleetid_expect_eq "$(log_count "cannot renew: ")" "$FALLBACKS" "renewals that fell back again"
fleetid_wait_state 5 waiting-retry || lab_fail "the state is not waiting-retry: $(cat "$FLEETID_RUNTIME/status")"
_lab_alive "$FLEETIDD_PID" || lab_fail "fleetidd exited"

step "the server back: the enrollment's retry enrolls a new key; Renew() works again"
est_control ''
_lab_kill "$FLEETIDD_PID" fleetidd
fleetid_daemon_start
fleetid_wait_state 90 enrolled || lab_fail "fleetidd did not enroll again: $(cat "$FLEETID_RUNTIME/status")"
lab_wait_until 30 "fleetidd to own $AGENT_NAME" _serving
agent_busctl root call "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" Renew || lab_fail "Renew failed: $(cat "$AGENT_OUT")"

echo "PASS: a renewal asked for while the device enrolls anew neither renews nor skips the enrollment's backoff"
