#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-renew-options.sh: the two renewal switches run for real, with
# certificates that live 30 seconds (issue 3, re-enrollment):
#  - renew.new_key = false: a renewal brings a new certificate for the same TPM
#    key at the same handle; nothing is created at the spare handle;
#  - renew.fallback_to_birth = false while fleetidd runs: renewals fail (503)
#    until the certificate expires; then fleetidd does not enroll with its
#    birth identity: "renewal impossible" at critical level, state failed,
#    the expired certificate kept, fleetidctl check critical;
#  - the same at start: a device that was off until its certificate expired
#    (the start goes through enrollment, which must honour the switch too),
#    and one whose stored certificate is unreadable.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
source "$(dirname "$0")/../lib/fleetid.sh"

lab_require_tools swtpm swtpm_setup tpm2-abrmd dbus-daemon tpm2_getcap openssl

fleetid_lab_up --cert-lifetime 30 --backdate 0
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 5; };
renew: { new_key = false; fallback_to_birth = false; min_interval = 0; min_lifetime = 0; };"

OPERATIONAL=$FLEETID_STATE/operational.pem
serial_of() { openssl x509 -in "$OPERATIONAL" -noout -serial | cut -d= -f2; }
pubkey_of() { openssl x509 -in "$OPERATIONAL" -noout -pubkey; }
serial_differs() { [ "$(serial_of)" != "$1" ]; }
expired() { [ "$(date +%s)" -gt "$(date -d "$1" +%s)" ]; }
log_has() { grep -qE -- "$1" "$FLEETIDD_LOG"; }
step() { echo "== $*"; }

# expect_impossible WHAT: fleetidd gave up renewing without the birth
# fallback: state failed, no /simpleenroll since $ENROLLS, the expired
# certificate kept byte for byte, fleetidctl check critical (2).
expect_impossible() {
    local rc=0
    fleetid_wait_state 10 failed || lab_fail "$1: the state is not failed: $(cat "$FLEETID_RUNTIME/status")"
    fleetid_expect_eq "$(est_log_count op=simpleenroll)" "$ENROLLS" "$1: /simpleenroll requests"
    cmp -s "$OPERATIONAL" "$LAB_TMPDIR/expired.pem" || lab_fail "$1: the stored certificate changed"
    "$FLEETIDCTL" --config "$FLEETID_CONF" check >/dev/null || rc=$?
    fleetid_expect_eq "$rc" 2 "$1: fleetidctl check exit status"
}

step "renew.new_key = false: a renewal keeps the key"
fleetid_daemon_start
fleetid_wait_state 30 enrolled || lab_fail "fleetidd did not enroll"
serial=$(serial_of)
key=$(pubkey_of)
lab_wait_until 40 "a scheduled renewal" serial_differs "$serial" ||
    lab_fail "no renewal within 40 s; log: $(tail -n 3 "$FLEETIDD_LOG")"
lab_wait_until 10 "the renewal to be logged" log_has "^fleetidd: renewed: " ||
    lab_fail "no 'renewed' log line"
fleetid_expect_grep "$FLEETIDD_LOG" "same TPM key \(renew.new_key = false\)" "the renewal log line"
[ "$(pubkey_of)" = "$key" ] || lab_fail "renew.new_key = false, yet the renewed certificate has another key"
[ "$(fleetid_tpm_pubkey 0x81020002)" = "$(openssl pkey -pubin <<<"$key")" ] ||
    lab_fail "the key is no longer at operational.key_handle 0x81020002"
handles=$(tpm2_getcap handles-persistent) || lab_fail "tpm2_getcap failed"
! grep -qi 0x81020003 <<<"$handles" ||
    lab_fail "renew.new_key = false, yet a key was created at the spare handle 0x81020003"

step "renew.fallback_to_birth = false: the certificate expires while renewals fail"
ENROLLS=$(est_log_count op=simpleenroll)
est_control '{"faults": [{"match": "simplereenroll", "status": 503, "body": "down (lab)"}]}'
lab_wait_until 60 "a renewal to fail" log_has "renewal failed: .*down \(lab\)" ||
    lab_fail "no failed renewal within 60 s"
cp "$OPERATIONAL" "$LAB_TMPDIR/expired.pem"
LAB_WAIT_POLL=0.1 lab_wait_until 40 "the certificate to expire" expired "$(openssl x509 -in "$OPERATIONAL" -noout -enddate | cut -d= -f2)"
lab_wait_until 90 "fleetidd to give up renewing" log_has "renewal impossible: .*fallback_to_birth is off" ||
    lab_fail "no 'renewal impossible' within 90 s of expiry; log: $(tail -n 3 "$FLEETIDD_LOG")"
expect_impossible "while running"

step "renew.fallback_to_birth = false: started with an expired certificate"
_lab_kill "$FLEETIDD_PID" fleetidd
est_control ''
fleetid_daemon_start
lab_wait_until 30 "the restarted fleetidd to give up" \
    log_has "renewal impossible: the operational identity is unusable: .*expired.*fallback_to_birth is off" ||
    lab_fail "the restarted fleetidd did not refuse the birth fallback; log: $(tail -n 3 "$FLEETIDD_LOG")"
expect_impossible "at start"
_lab_alive "$FLEETIDD_PID" || lab_fail "fleetidd exited"

step "renew.fallback_to_birth = false: started with an unreadable certificate"
_lab_kill "$FLEETIDD_PID" fleetidd
printf 'not a certificate\n' >"$OPERATIONAL"
cp "$OPERATIONAL" "$LAB_TMPDIR/garbage.pem"
fleetid_daemon_start
lab_wait_until 30 "the restarted fleetidd to give up" \
    log_has "renewal impossible: the operational identity is unusable: .*unreadable.*fallback_to_birth is off" ||
    lab_fail "fleetidd did not refuse the birth fallback over an unreadable certificate; log: $(tail -n 3 "$FLEETIDD_LOG")"
fleetid_wait_state 10 failed || lab_fail "unreadable: the state is not failed: $(cat "$FLEETID_RUNTIME/status")"
fleetid_expect_eq "$(est_log_count op=simpleenroll)" "$ENROLLS" "unreadable: /simpleenroll requests"
cmp -s "$OPERATIONAL" "$LAB_TMPDIR/garbage.pem" || lab_fail "unreadable: the stored file was changed"
_lab_alive "$FLEETIDD_PID" || lab_fail "fleetidd exited"

echo "PASS: renew.new_key = false keeps the key; renew.fallback_to_birth = false never enrolls anew, running or at start, expired or unreadable"
