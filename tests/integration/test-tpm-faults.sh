#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-tpm-faults.sh: fleetid and an unavailable or locked-out TPM.
#  (a) TPM unreachable: the TPM resource manager (tpm2-abrmd) is down, or the
#      TCTI points at a port where no TPM listens: `fleetidd --oneshot` exits
#      75 naming the TCTI. The daemon started while tpm2-abrmd is down keeps
#      retrying (waiting-retry, failures counting up) and enrolls once the
#      resource manager comes back, as after a late start at boot.
#  (b) Dictionary-attack lockout: with the TPM in lockout (inLockout=1), an
#      enrolled device starts as before (the operational key is noDA),
#      fleetidd warns about the lockout, and the lockout counter is unchanged.
#      A first enrollment fails, naming the lockout: the birth key here is
#      made from the TCG IDevID template as it is (create-key --template
#      tcg, as another tool would), which is DA-protected (docs/provisioning.md;
#      the lockout's other signs are in test-tpm-lockout.sh; fleetid's own
#      template, noDA, enrolls in lockout: test-birth-noda.sh), and spends
#      nothing.
#      Then, out of lockout with one failure counted, a fresh enrollment
#      leaves the counter where it was: fleetid never spends it.
# A busy TPM (TPM_RC_RETRY/YIELDED) is not tested: swtpm cannot be made to
# answer that on demand.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

lab_require_tools tpm2_dictionarylockout tpm2_createprimary tpm2_create tpm2_load \
    tpm2_unseal tpm2_evictcontrol tpm2_readpublic
fleetid_lab_up

# The lab's tpm2-abrmd, stopped and started again on the same swtpm (the lab
# has no function for this; TPM_ENV_ABRMD_PID stays the one tpm_env_stop kills).
abrmd_stop() {
    _lab_kill "$TPM_ENV_ABRMD_PID" tpm2-abrmd
}
abrmd_start() {
    tpm2-abrmd --session --tcti="swtpm:host=127.0.0.1,port=$TPM_ENV_PORT" --allow-root \
        >>"$TPM_ENV_DIR/abrmd.log" 2>&1 &
    TPM_ENV_ABRMD_PID=$!
}

# tpm_prop NAME: a field of `tpm2_getcap properties-variable`, e.g.
# TPM2_PT_LOCKOUT_COUNTER (printed as a decimal number) or inLockout.
tpm_prop() {
    local v
    v=$(tpm2_getcap properties-variable | sed -n "s/^ *$1: *//p" | head -n 1)
    [ -n "$v" ] || lab_fail "tpm2_getcap properties-variable shows no $1"
    echo $((v))
}

# da_fail: one failed authorization of a DA-protected object (wrong password).
da_fail() {
    if tpm2_unseal -c "$LAB_TMPDIR/sealed.ctx" -p wrong >/dev/null 2>&1; then
        lab_fail "tpm2_unseal with a wrong password succeeded"
    fi
}

echo "== (a) TPM resource manager down: --oneshot"
fleetid_provision
fleetid_write_config
abrmd_stop
fleetid_expect_oneshot_failure "tpm2-abrmd down" "TPM.*TCTI '$LAB_TABRMD_TCTI'"

echo "== (a) no TPM at the configured TCTI: --oneshot"
FLEETID_TEST_TCTI="swtpm:host=127.0.0.1,port=$(free_port)" fleetid_write_config
fleetid_expect_oneshot_failure "no swtpm listening" "TPM.*TCTI 'swtpm:host=127.0.0.1,port=[0-9]+'"

echo "== (a) daemon started before the resource manager"
fleetid_write_config 'retry: { initial = 1; max = 2; };'
fleetid_daemon_start
failures_reach() {
    local f
    f=$(fleetid_status_get failures)
    [ "$(fleetid_status_get state)" = waiting-retry ] && [ "${f:-0}" -ge "$1" ] 2>/dev/null
}
lab_wait_until 30 "fleetidd to count 3 failed attempts" failures_reach 3 ||
    lab_fail "fleetidd did not keep retrying without a TPM: state '$(fleetid_status_get state)', failures '$(fleetid_status_get failures)'"
err=$(fleetid_status_get last_error)
grep -q "TCTI '$LAB_TABRMD_TCTI'" <<<"$err" ||
    lab_fail "status last_error: expected it to name the TCTI '$LAB_TABRMD_TCTI', got '$err'"
fleetid_expect_grep "$FLEETIDD_LOG" "TCTI '$LAB_TABRMD_TCTI'.*\(attempt 3\); retrying in" "daemon log"
abrmd_start
fleetid_wait_state 30 enrolled || lab_fail "fleetidd did not enroll within 30 s of tpm2-abrmd coming back"
_lab_kill "$FLEETIDD_PID" fleetidd

echo "== (b) a fresh TPM in dictionary-attack lockout"
tpm_env_stop
rm -rf "$FLEETID_STATE"
tpm_env_start "$LAB_TMPDIR/tpm-b"
fleetid_provision SN-FAULTS-B ecc-p256 --template tcg
fleetid_write_config
fleetid_enroll_once || lab_fail "fleetidd --oneshot failed before the lockout"
tpm2_dictionarylockout --setup-parameters --max-tries=1 --recovery-time=600 \
    --lockout-recovery-time=600 >/dev/null
tpm2_createprimary -C o -c "$LAB_TMPDIR/primary.ctx" >/dev/null
echo secret | tpm2_create -C "$LAB_TMPDIR/primary.ctx" -p good -i- \
    -u "$LAB_TMPDIR/sealed.pub" -r "$LAB_TMPDIR/sealed.priv" >/dev/null
tpm2_load -C "$LAB_TMPDIR/primary.ctx" -u "$LAB_TMPDIR/sealed.pub" -r "$LAB_TMPDIR/sealed.priv" \
    -c "$LAB_TMPDIR/sealed.ctx" >/dev/null
da_fail
[ "$(tpm_prop inLockout)" -eq 1 ] || lab_fail "could not put the TPM into lockout"
counter=$(tpm_prop TPM2_PT_LOCKOUT_COUNTER)

fleetid_enroll_once || lab_fail "fleetidd --oneshot of the enrolled device failed with the TPM in lockout"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "the TPM is in dictionary-attack lockout" \
    "lockout warning"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "already enrolled" "the enrolled device in lockout"
tpm2_readpublic -c 0x81020002 | grep -q noda || lab_fail "the operational key at 0x81020002 is not noDA"
! tpm2_readpublic -c 0x81020000 | grep -q noda ||
    lab_fail "the birth key at 0x81020000 is noDA: not the TCG IDevID template as it is"
rm -rf "$FLEETID_STATE"
tpm2_evictcontrol -C o -c 0x81020002 >/dev/null
rc=0
fleetid_enroll_once || rc=$?
fleetid_expect_eq "$rc" 75 "a first enrollment in lockout: exit status"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" \
    "enrollment failed: .*the TPM is in dictionary-attack lockout .*the birth key .*cannot sign" \
    "a first enrollment in lockout: the error"
[ "$(tpm_prop TPM2_PT_LOCKOUT_COUNTER)" -eq "$counter" ] && [ "$(tpm_prop inLockout)" -eq 1 ] ||
    lab_fail "lockout counter: expected $counter, got $(tpm_prop TPM2_PT_LOCKOUT_COUNTER)"

echo "== (b) out of lockout, one failure counted: fleetid does not add any"
tpm2_dictionarylockout --clear-lockout >/dev/null
tpm2_dictionarylockout --setup-parameters --max-tries=3 --recovery-time=600 \
    --lockout-recovery-time=600 >/dev/null
da_fail
[ "$(tpm_prop TPM2_PT_LOCKOUT_COUNTER)" -eq 1 ] && [ "$(tpm_prop inLockout)" -eq 0 ] ||
    lab_fail "expected lockout counter 1 and no lockout before enrolling again"
! tpm2_readpublic -c 0x81020002 >/dev/null 2>&1 || tpm2_evictcontrol -C o -c 0x81020002 >/dev/null
rm -rf "$FLEETID_STATE"
fleetid_enroll_once || lab_fail "fleetidd --oneshot failed with one DA failure counted"
# (The TCG-template birth key's warning names the lockout as what it risks.)
if grep "dictionary-attack lockout" "$LAB_TMPDIR/fleetidd.log" | grep -qv "lacks noDA"; then
    lab_fail "fleetidd warned about a lockout while the TPM was not in lockout"
fi
[ "$(tpm_prop TPM2_PT_LOCKOUT_COUNTER)" -eq 1 ] ||
    lab_fail "lockout counter after enrollment: expected 1, got $(tpm_prop TPM2_PT_LOCKOUT_COUNTER)"

echo "PASS"
