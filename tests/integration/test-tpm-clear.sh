#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-tpm-clear.sh: a birth identity that survives TPM2_Clear, and a TPM
# that is watched (issue 12, docs/provisioning.md). On the lab's swtpm only
# (tpm2_clear through the lab's TCTI; nothing of the machine is touched):
#   - provisioned with the TCG IDevID template and enrolled, the device
#     records the TPM's fingerprint; `tpm2_clear` then deletes every
#     persistent key and the owner's NV index holding the birth certificate;
#     `fleetidd --oneshot` goes through the state tpm-cleared, makes the birth
#     key again (the same public key, the birth certificate's, at the same
#     handle), takes the certificate from the state directory's copy, and
#     enrolls anew (a second /simpleenroll, with the birth certificate);
#   - a second, freshly manufactured TPM under the same state directory: the
#     state is tpm-replaced, `fleetidctl check` is CRITICAL, nothing reaches
#     the EST server and nothing is made in the new TPM; the old TPM put back
#     and the device goes on by itself;
#   - re-created after the clear, the birth key's whole public area (noDA
#     included) is the same, bit for bit; a birth key made from the TCG
#     template as it is (create-key --template tcg, no noDA) is made again
#     from that template, the one that gives the certificate's key;
#   - a device provisioned the old way (birth key under the SRK, --hierarchy
#     owner) enrolls and starts again as before; after a clear it says that
#     its birth key cannot be made again and that it must be provisioned anew.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

BIRTH_HANDLE=0x81020000

step() {
    echo "== $*"
}

lab_require_tools tpm2_clear tpm2_getcap tpm2_readpublic
fleetid_lab_up
fleetid_provision SN-CLEAR-1
fleetid_write_config

# clear: TPM2_Clear with the (empty) lockout authorization, on the lab's TPM.
clear_tpm() {
    tpm2_clear -c l >/dev/null || lab_fail "tpm2_clear failed"
    ! tpm2_getcap handles-persistent | grep -qi "$BIRTH_HANDLE" ||
        lab_fail "the birth key is still at $BIRTH_HANDLE after tpm2_clear"
    ! tpm2_getcap handles-nv-index | grep -qi 0x1c90000 ||
        lab_fail "the birth certificate's NV index is still defined after tpm2_clear"
}

enrolls() { # the number of successful /simpleenroll requests with the birth certificate
    est_log_count op=simpleenroll status=200 client_kind=birth
}

step "enrolled: the TPM's fingerprint is recorded"
fleetid_enroll_once || lab_fail "first enrollment failed"
[ -s "$FLEETID_STATE/tpm-fingerprint" ] || lab_fail "no tpm-fingerprint in $FLEETID_STATE"
grep -qE '^srk=000b[0-9a-f]{64}$' "$FLEETID_STATE/tpm-fingerprint" &&
    grep -qE '^ek=000b[0-9a-f]{64}$' "$FLEETID_STATE/tpm-fingerprint" ||
    lab_fail "tpm-fingerprint is not two SHA-256 names: $(cat "$FLEETID_STATE/tpm-fingerprint")"
ek_before=$(sed -n 's/^ek=//p' "$FLEETID_STATE/tpm-fingerprint")
srk_before=$(sed -n 's/^srk=//p' "$FLEETID_STATE/tpm-fingerprint")
birth_pub=$(fleetid_tpm_pubkey "$BIRTH_HANDLE") || lab_fail "no birth key at $BIRTH_HANDLE"
fleetid_expect_eq "$birth_pub" "$(openssl x509 -in "$LAB_TMPDIR/idevid.pem" -noout -pubkey)" \
    "birth key vs the birth certificate"
tpm2_readpublic -c "$BIRTH_HANDLE" -o "$LAB_TMPDIR/birth-before.pub" >/dev/null ||
    lab_fail "tpm2_readpublic of the birth key failed"
op_before=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -fingerprint -sha256)
fleetid_expect_eq "$(enrolls)" 1 "enrollments with the birth certificate"

step "TPM2_Clear: tpm-cleared, the birth key made again, enrolled anew"
clear_tpm
fleetid_enroll_once || lab_fail "fleetidd --oneshot after tpm2_clear: expected exit 0 (enrolled again)"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "state: none -> tpm-cleared" "the state tpm-cleared"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" \
    "the TPM was cleared \\(TPM2_Clear\\): its storage root key changed" "the clear's log line"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" \
    "birth key was gone from the TPM at 0x81020000 and was made again .*certificate from the state directory copy" \
    "the birth key's re-creation"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "state: tpm-cleared -> enrolling" "enrolling after the clear"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "fleetidd: enrolled: operational certificate" "enrolled again"
fleetid_expect_eq "$(fleetid_tpm_pubkey "$BIRTH_HANDLE")" "$birth_pub" \
    "the birth key made again after the clear (the same public key as the birth certificate)"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "made again from its template \(fleetid's: the TCG IDevID template plus noDA\)" \
    "the template the birth key was made again from"
tpm2_readpublic -c "$BIRTH_HANDLE" -o "$LAB_TMPDIR/birth-after.pub" >/dev/null ||
    lab_fail "tpm2_readpublic of the birth key made again failed"
cmp -s "$LAB_TMPDIR/birth-before.pub" "$LAB_TMPDIR/birth-after.pub" ||
    lab_fail "the birth key's public area after the clear is not bit-identical to before"
fleetid_expect_eq "$(enrolls)" 2 "enrollments with the birth certificate after the clear"
[ "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -fingerprint -sha256)" != "$op_before" ] ||
    lab_fail "operational.pem was not replaced after the clear"
fleetid_expect_eq "$(sed -n 's/^ek=//p' "$FLEETID_STATE/tpm-fingerprint")" "$ek_before" \
    "the recorded EK name after the clear"
[ "$(sed -n 's/^srk=//p' "$FLEETID_STATE/tpm-fingerprint")" != "$srk_before" ] ||
    lab_fail "the recorded SRK name did not change with the clear"
fleetid_expect_eq "$(fleetid_status_get state)" enrolled "status after the clear"
fleetid_enroll_once || lab_fail "repeat start after the clear failed"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "already enrolled" "repeat start after the clear"
! grep -q "tpm-cleared" "$LAB_TMPDIR/fleetidd.log" || lab_fail "the clear was reported again at a repeat start"

step "another TPM under the same state directory: tpm-replaced, no enrollment"
# A second TPM manufactured now (its own endorsement seed; the lab's cached
# one would share the first one's), swapped in behind the same port.
_tpm_env_manufacture "$LAB_TMPDIR/other-tpm" || lab_fail "swtpm_setup failed for the second TPM"
tpm_env_kill_swtpm
mv "$TPM_ENV_DIR/tpm" "$LAB_TMPDIR/first-tpm"
cp -a "$LAB_TMPDIR/other-tpm/tpm" "$TPM_ENV_DIR/tpm"
tpm_env_start_swtpm
tpm_env_restart_abrmd
persistent_before=$(tpm2_getcap handles-persistent)
requests_before=$(est_log_count)
rc=0
fleetid_enroll_once || rc=$?
fleetid_expect_eq "$rc" 75 "fleetidd --oneshot with another TPM: exit status"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" \
    "the TPM was replaced: its endorsement key is not the one the device enrolled with" "the replacement's log line"
fleetid_expect_eq "$(fleetid_status_get state)" tpm-replaced "status with another TPM"
fleetid_status_get last_error | grep -q "the TPM was replaced (its endorsement key changed)" ||
    lab_fail "last_error with another TPM: $(fleetid_status_get last_error)"
fleetid_expect_eq "$(est_log_count)" "$requests_before" "requests to the EST server with another TPM"
fleetid_expect_eq "$(tpm2_getcap handles-persistent)" "$persistent_before" \
    "persistent handles of the other TPM (nothing made in it)"
fleetid_expect_eq "$(sed -n 's/^ek=//p' "$FLEETID_STATE/tpm-fingerprint")" "$ek_before" \
    "the record kept with another TPM"
rc=0
"$FLEETIDCTL" --config "$FLEETID_CONF" check >"$LAB_TMPDIR/check.out" 2>&1 || rc=$?
fleetid_expect_eq "$rc" 2 "fleetidctl check with another TPM (CRITICAL)"
fleetid_expect_grep "$LAB_TMPDIR/check.out" "the TPM was replaced" "fleetidctl check's message"

step "the first TPM back: the device goes on by itself"
tpm_env_kill_swtpm
rm -rf "$TPM_ENV_DIR/tpm"
mv "$LAB_TMPDIR/first-tpm" "$TPM_ENV_DIR/tpm"
tpm_env_start_swtpm
tpm_env_restart_abrmd
fleetid_enroll_once || lab_fail "fleetidd --oneshot with the first TPM back"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "already enrolled" "the first TPM back"
fleetid_expect_eq "$(fleetid_status_get state)" enrolled "status with the first TPM back"

step "a birth key from the TCG template as it is (no noDA): made again from that template"
fleetid_provision SN-CLEAR-TCG ecc-p256 --template tcg --force
tpm2_readpublic -c "$BIRTH_HANDLE" -o "$LAB_TMPDIR/tcg-before.pub" >/dev/null || lab_fail "tpm2_readpublic failed"
! grep -q noda <<<"$(fleetid_tpm_attributes "$BIRTH_HANDLE")" || lab_fail "the TCG-template birth key is noDA"
rm -rf "$FLEETID_STATE"
fleetid_enroll_once || lab_fail "the TCG-template device did not enroll"
clear_tpm
fleetid_enroll_once || lab_fail "the TCG-template device did not enroll again after a clear"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" \
    "made again from its template \(the TCG IDevID template as it is, no noDA\)" \
    "the TCG-template birth key: the template it was made again from"
tpm2_readpublic -c "$BIRTH_HANDLE" -o "$LAB_TMPDIR/tcg-after.pub" >/dev/null || lab_fail "tpm2_readpublic failed"
cmp -s "$LAB_TMPDIR/tcg-before.pub" "$LAB_TMPDIR/tcg-after.pub" ||
    lab_fail "the TCG-template birth key after the clear is not bit-identical to before"

step "a birth key under the SRK (provisioned the old way) still works, but not after a clear"
fleetid_provision SN-CLEAR-OLD ecc-p256 --hierarchy owner --force
"$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI" status >"$LAB_TMPDIR/status.out" || lab_fail "status failed"
fleetid_expect_grep "$LAB_TMPDIR/status.out" "^Clear-proof: NO" "status of the old-style birth key"
rm -rf "$FLEETID_STATE"
fleetid_enroll_once || lab_fail "the old-style device did not enroll"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "fleetidd: enrolled: operational certificate" "old-style enrollment"
fleetid_enroll_once || lab_fail "the old-style device did not start again"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "already enrolled" "old-style repeat start"
clear_tpm
rc=0
fleetid_enroll_once || rc=$?
fleetid_expect_eq "$rc" 75 "the old-style device after a clear: exit status"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "state: none -> tpm-cleared" "old-style: the clear is seen"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" \
    "the birth key is gone from the TPM at 0x81020000 and cannot be made again: it was not made from fleetid.s or the TCG.s IDevID template.*must be provisioned again" \
    "old-style: the error after a clear"
! tpm2_getcap handles-persistent | grep -qi "$BIRTH_HANDLE" ||
    lab_fail "a key was put at $BIRTH_HANDLE for the old-style device"

echo "PASS"
