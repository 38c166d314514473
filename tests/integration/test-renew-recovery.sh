#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# test-renew-recovery.sh: renewals that meet what a crash or another program
# left behind.
#  - A renewal whose worker dies right after it
# stored the new certificate (the test-only FLEETID_TEST_KEY_CRASH_AFTER=stored
# SIGKILLs it there, before the old key is evicted: as a worker killed at its
# timeout, or the OOM killer, would end it). The stored certificate is the
# identity in force: fleetidd says so, takes its dates (state enrolled, the
# renewal due time moved on), and does not count a failed renewal nor try
# the renewal again. The next renewal (the crash point off) renews from that
# certificate, and the old key, left at the other handle, gives way to its
# new key.
#  - An object that is no key fleetid could have made (an AES key) at the
#    other handle does not hide the identity at its own: the renewal renews
#    (and its new key takes that handle), where it used to find the identity
#    unusable and enroll anew with the birth identity.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
source "$(dirname "$0")/../lib/fleetid.sh"

lab_require_tools swtpm swtpm_setup tpm2-abrmd dbus-daemon tpm2_readpublic tpm2_createprimary tpm2_evictcontrol openssl

log_has() { grep -qE -- "$1" "$FLEETIDD_LOG"; }
serial_of() { openssl x509 -in "$OPERATIONAL" -noout -serial | cut -d= -f2; }
status_field() { "$FLEETIDCTL" --config "$FLEETID_CONF" status --json | "$LAB_PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$1"; }

fleetid_lab_up
fleetid_provision
fleetid_write_config
OPERATIONAL=$FLEETID_STATE/operational.pem

echo "== a renewal killed right after it stored the new certificate"
FLEETID_TEST_KEY_CRASH_AFTER=stored fleetid_daemon_start
fleetid_wait_state 60 enrolled || lab_fail "fleetidd did not enroll"
serial0=$(serial_of)
handle0=$(fleetid_cert_key_handle "$OPERATIONAL" 0x81020002 0x81020003)
due0=$(status_field renew_due)
kill -USR1 "$FLEETIDD_PID"
lab_wait_until 30 "the renewal to store its certificate" log_has "the renewal failed after it stored the new certificate" ||
    lab_fail "fleetidd did not take the stored certificate; log: $(tail -n 5 "$FLEETIDD_LOG")"
log_has "killed by signal 9" || lab_fail "the worker was not killed at the crash point; log: $(tail -n 5 "$FLEETIDD_LOG")"
serial1=$(serial_of)
[ "$serial1" != "$serial0" ] || lab_fail "no new certificate was stored"
fleetid_wait_state 10 enrolled || lab_fail "the state is not enrolled: $(cat "$FLEETID_RUNTIME/status")"
fleetid_expect_eq "$(status_field failures)" 0 "failures after the renewal that stored its certificate"
[ "$(status_field renew_due)" != "$due0" ] || lab_fail "the renewal due time is the old certificate's"
sleep 2
fleetid_expect_eq "$(grep -c 'state: enrolled -> renewing' "$FLEETIDD_LOG")" 1 "renewal attempts (the one asked for, no retry)"
fleetid_expect_eq "$(grep -c 'renewal failed: ' "$FLEETIDD_LOG" || true)" 0 "renewals logged as failed"
handle1=$(fleetid_cert_key_handle "$OPERATIONAL" 0x81020002 0x81020003)
[ -n "$handle1" ] && [ "$handle1" != "$handle0" ] || lab_fail "the new certificate's key is not at the other handle"
tpm2_readpublic -c "$handle0" >/dev/null 2>&1 || lab_fail "the old key at $handle0 is gone (the worker died before its eviction)"

echo "== the next renewal renews from it; the old key gives way"
_lab_kill "$FLEETIDD_PID" fleetidd
fleetid_daemon_start
fleetid_wait_state 60 enrolled || lab_fail "fleetidd did not start enrolled"
kill -USR1 "$FLEETIDD_PID"
_renewed() { [ "$(serial_of)" != "$serial1" ] && log_has "state: renewing -> enrolled"; }
lab_wait_until 30 "the next renewal" _renewed || lab_fail "the next renewal did not happen; log: $(tail -n 5 "$FLEETIDD_LOG")"
fleetid_expect_eq "$(fleetid_cert_key_handle "$OPERATIONAL" 0x81020002 0x81020003)" "$handle0" \
    "the handle of the next renewal's key"
! tpm2_readpublic -c "$handle1" >/dev/null 2>&1 || lab_fail "the key of the certificate renewed from is still at $handle1"

# Twice: the key in force at either handle, the AES key at the other (the
# handle read first, operational.key_handle, is the one that mattered).
for round in 1 2; do
    echo "== an AES key at the other handle ($round)"
    serial2=$(serial_of)
    in_force=$(fleetid_cert_key_handle "$OPERATIONAL" 0x81020002 0x81020003)
    other=0x81020003
    [ "$in_force" != 0x81020003 ] || other=0x81020002
    tpm2_createprimary -Q -C o -G aes128cfb -c "$LAB_TMPDIR/aes.ctx" || lab_fail "tpm2_createprimary (aes) failed"
    tpm2_evictcontrol -Q -C o -c "$LAB_TMPDIR/aes.ctx" "$other" || lab_fail "cannot place the AES key at $other"
    renewed=$(grep -c "state: renewing -> enrolled" "$FLEETIDD_LOG")
    kill -USR1 "$FLEETIDD_PID"
    _renewed_again() { [ "$(serial_of)" != "$serial2" ] && [ "$(grep -c "state: renewing -> enrolled" "$FLEETIDD_LOG")" -gt "$renewed" ]; }
    lab_wait_until 30 "the renewal beside the AES key" _renewed_again ||
        lab_fail "no renewal beside the AES key at $other; log: $(tail -n 5 "$FLEETIDD_LOG")"
    ! log_has "cannot renew: |enrolling again with the birth identity" ||
        lab_fail "the AES key at $other made the identity at $in_force look unusable"
    fleetid_expect_eq "$(fleetid_cert_key_handle "$OPERATIONAL" 0x81020002 0x81020003)" "$other" \
        "the handle of the key renewed beside the AES key"
done

echo "PASS: a renewal killed after storing its certificate is taken as done, the next one renews from it; an AES key at the other handle hides nothing"
