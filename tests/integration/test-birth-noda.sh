#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-birth-noda.sh: dictionary-attack protection and fleetid's keys (issue 12).
#  1. Every key fleetid creates is noDA (tpm2_readpublic): the birth key and
#     the SRK fleetid-provision makes, the operational key of the enrollment
#     and the one a renewal makes at the spare handle. fleetidd says nothing
#     about noDA then. With the TPM in dictionary-attack lockout, the device
#     (its operational identity gone) enrolls all the same with its birth key,
#     and the lockout counter does not move.
#  2. A birth key made from the TCG IDevID template as it is (create-key
#     --template tcg, as another provisioning tool makes it) lacks noDA:
#     fleetidd warns once per start, naming the handle, the consequence and
#     the remedy, however many attempts it makes; fleetidctl status and
#     check, and fleetid-provision status, say it too.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

lab_require_tools tpm2_readpublic tpm2_dictionarylockout tpm2_nvdefine tpm2_nvread tpm2_getcap \
    tpm2_evictcontrol
fleetid_lab_up
SRK=0x81000001 BIRTH=0x81020000 OP=0x81020002 SPARE=0x81020003
WARNING="the birth key at $BIRTH lacks noDA"

expect_noda() { # HANDLE WHAT
    local attrs
    attrs=$(fleetid_tpm_attributes "$1") || lab_fail "$2 at $1: tpm2_readpublic failed"
    grep -q noda <<<"$attrs" || lab_fail "$2 at $1 is not noDA: $attrs"
    lab_log "$2 at $1: $attrs"
}

tpm_prop() {
    tpm2_getcap properties-variable | awk -v k="$1:" '$1 == k { print $2 }'
}

echo "== 1. fleetid's keys: all noDA"
fleetid_provision SN-NODA-1
expect_noda "$BIRTH" "the birth key fleetid-provision made"
expect_noda "$SRK" "the SRK fleetid-provision made"
fleetid_write_config "retry: { initial = 1; max = 2; };"
fleetid_daemon_start
fleetid_wait_state 60 enrolled || lab_fail "fleetidd did not enroll"
expect_noda "$OP" "the operational key of the enrollment"
"$FLEETIDCTL" --config "$FLEETID_CONF" renew >"$LAB_TMPDIR/renew.out" 2>&1 ||
    lab_fail "fleetidctl renew failed: $(cat "$LAB_TMPDIR/renew.out")"
expect_noda "$SPARE" "the operational key of the renewal"
! grep -q "lacks noDA" "$FLEETIDD_LOG" || lab_fail "fleetidd warned about a birth key with noDA"
fleetid_expect_eq "$(fleetid_status_get birth_key_da)" false "birth_key_da in fleetidctl status --json"
fleetid_stop_daemon_bounded 20

echo "== 1b. in dictionary-attack lockout, fleetid's birth key enrolls all the same"
fleetid_tpm_lockout
counter=$(tpm_prop TPM2_PT_LOCKOUT_COUNTER)
rm -rf "$FLEETID_STATE"
for h in "$OP" "$SPARE"; do tpm2_evictcontrol -C o -c "$h" >/dev/null 2>&1 || true; done
fleetid_enroll_once || lab_fail "a first enrollment in lockout failed with fleetid's birth key"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "fleetidd: enrolled: operational certificate" \
    "a first enrollment in lockout"
fleetid_expect_eq "$(tpm_prop TPM2_PT_LOCKOUT_COUNTER)" "$counter" "the lockout counter after the enrollment"
tpm2_dictionarylockout --clear-lockout || lab_fail "tpm2_dictionarylockout --clear-lockout failed"

echo "== 2. a birth key from the TCG template as it is: no noDA, one warning per start"
fleetid_provision SN-NODA-2 ecc-p256 --template tcg --force 2>"$LAB_TMPDIR/provision.err"
fleetid_expect_grep "$LAB_TMPDIR/provision.err" "without noDA" "create-key --template tcg says it"
! grep -q noda <<<"$(fleetid_tpm_attributes "$BIRTH")" || lab_fail "the TCG-template birth key is noDA"
"$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI" status >"$LAB_TMPDIR/provision-status.out" ||
    lab_fail "fleetid-provision status failed"
fleetid_expect_grep "$LAB_TMPDIR/provision-status.out" "^Clear-proof: yes \(the TCG IDevID template as it is" \
    "fleetid-provision status: the template"
fleetid_expect_grep "$LAB_TMPDIR/provision-status.out" "^Warning: +the birth key is not noDA" \
    "fleetid-provision status: the warning"

rm -rf "$FLEETID_STATE"
for h in "$OP" "$SPARE"; do tpm2_evictcontrol -C o -c "$h" >/dev/null 2>&1 || true; done
# Two refused attempts first: three reads of the birth key in one start.
est_control '{"faults": [{"match": "simpleenroll", "status": 503, "retry_after": "1", "count": 2}]}'
fleetid_daemon_start
fleetid_wait_state 90 enrolled || lab_fail "fleetidd did not enroll with the TCG-template birth key"
fleetid_expect_eq "$(est_log_count op=simpleenroll status=503)" 2 "refused enrollments"
n=$(grep -c "$WARNING" "$FLEETIDD_LOG" || true)
fleetid_expect_eq "$n" 1 "warnings about the birth key without noDA in one start of three attempts"
fleetid_expect_grep "$FLEETIDD_LOG" \
    "$WARNING .*dictionary-attack lockout .*cannot enroll.*Remedy: provision the device again with fleetid-provision create-key" \
    "the warning names the handle, the consequence and the remedy"
fleetid_expect_eq "$(fleetid_status_get birth_key_da)" true "birth_key_da in fleetidctl status --json"
"$FLEETIDCTL" --config "$FLEETID_CONF" status >"$LAB_TMPDIR/status.out" 2>&1 || true
fleetid_expect_grep "$LAB_TMPDIR/status.out" "^Birth key: +lacks noDA" "fleetidctl status"
rc=0
"$FLEETIDCTL" --config "$FLEETID_CONF" check >"$LAB_TMPDIR/check.out" 2>&1 || rc=$?
fleetid_expect_eq "$rc" 1 "fleetidctl check exit status (WARNING)"
fleetid_expect_grep "$LAB_TMPDIR/check.out" "^FLEETID WARNING - the birth key lacks noDA" "fleetidctl check"
fleetid_stop_daemon_bounded 20

echo "== a restart warns again (once per start)"
rm -rf "$FLEETID_STATE"
tpm2_evictcontrol -C o -c "$OP" >/dev/null 2>&1 || tpm2_evictcontrol -C o -c "$SPARE" >/dev/null 2>&1 || true
fleetid_daemon_start
fleetid_wait_state 60 enrolled || lab_fail "fleetidd did not enroll again"
fleetid_expect_eq "$(grep -c "$WARNING" "$FLEETIDD_LOG" || true)" 1 "warnings in the second start"

echo "PASS"
