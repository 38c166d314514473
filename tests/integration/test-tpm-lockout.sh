#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-tpm-lockout.sh: the TPM in dictionary-attack lockout (issue 12). On the
# lab's swtpm only: the lockout threshold is set low (tpm2_dictionarylockout)
# and two wrong passwords for an NV index of the test's own put the TPM into
# lockout. The birth key is made from the TCG IDevID template as it is
# (create-key --template tcg, as another provisioning tool would): it is
# DA-protected (the TCG template leaves noDA clear; fleetid's own adds it),
# so enrolling with it fails; fleetidd then
#   - says so clearly: the enrollment error names the lockout and what ends it;
#   - shows it: tpm_lockout in the status (fleetidctl status --json), the
#     metric fleetid_tpm_lockout 1, the D-Bus property TpmLockout true
#     (org.fleetid.Agent1, served here on the lab's private bus), and
#     fleetidctl status's "TPM:" line;
# and once the lockout is reset (tpm2_dictionarylockout --clear-lockout), the
# next attempt enrolls and TpmLockout is false again.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

lab_require_tools tpm2_dictionarylockout tpm2_nvdefine tpm2_nvread tpm2_getcap busctl
fleetid_lab_up
fleetid_provision SN-LOCKOUT-1 ecc-p256 --template tcg
METRICS=$LAB_TMPDIR/fleetid.prom
fleetid_write_config "retry: { initial = 1; max = 2; };" "monitoring: { metrics_file = \"$METRICS\"; };"

in_lockout() {
    tpm2_getcap properties-variable | grep -qE '^ *inLockout: *1'
}

tpm_lockout_property() {
    busctl --address="$DBUS_SESSION_BUS_ADDRESS" --timeout=20 get-property org.fleetid.Agent1 \
        /org/fleetid/Agent1 org.fleetid.Agent1 TpmLockout 2>&1
}

echo "== the TPM into dictionary-attack lockout"
fleetid_tpm_lockout

echo "== fleetidd: the enrollment fails, saying why; the lockout is shown everywhere"
# The lab's private bus (it lets anyone own any name) stands for the system bus.
DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS fleetid_daemon_start
fleetid_wait_state 60 waiting-retry || lab_fail "fleetidd did not fail its enrollment in lockout"
last_error=$(fleetid_status_get last_error)
grep -q "the TPM is in dictionary-attack lockout .* the birth key lacks noDA (TCG template as it is) and cannot sign until the lockout ends or is reset" <<<"$last_error" ||
    lab_fail "the enrollment error does not name the lockout: '$last_error'"
fleetid_expect_eq "$(fleetid_status_get tpm_lockout)" true "tpm_lockout in fleetidctl status --json"
"$FLEETIDCTL" --config "$FLEETID_CONF" status >"$LAB_TMPDIR/status.out" 2>&1 || true
fleetid_expect_grep "$LAB_TMPDIR/status.out" "^TPM: +in dictionary-attack lockout" "fleetidctl status"
fleetid_expect_grep "$METRICS" "^fleetid_tpm_lockout 1$" "the metric in lockout"
fleetid_expect_eq "$(tpm_lockout_property)" "b true" "the D-Bus property TpmLockout in lockout"
fleetid_expect_eq "$(est_log_count op=simpleenroll status=200)" 0 "enrollments in lockout"

echo "== the lockout reset: the next attempt enrolls, TpmLockout false"
tpm2_dictionarylockout --clear-lockout || lab_fail "tpm2_dictionarylockout --clear-lockout failed"
! in_lockout || lab_fail "the TPM is still in lockout after --clear-lockout"
fleetid_wait_state 60 enrolled || lab_fail "fleetidd did not enroll after the lockout was reset"
fleetid_expect_eq "$(fleetid_status_get tpm_lockout)" false "tpm_lockout after the reset"
fleetid_expect_grep "$METRICS" "^fleetid_tpm_lockout 0$" "the metric after the reset"
fleetid_expect_eq "$(tpm_lockout_property)" "b false" "the D-Bus property TpmLockout after the reset"
fleetid_expect_grep "$FLEETIDD_LOG" "the TPM is out of dictionary-attack lockout" "the log after the reset"

echo "PASS"
