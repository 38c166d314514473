#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-birth-mismatch.sh: a birth certificate that is not for the birth key in
# the TPM is refused before it is used: a valid manufacturer-signed
# certificate for another (software) key given as birth.cert_file, or written
# into the TPM NV index over the provisioned one; a truncated certificate or
# text in the NV index; an undefined NV index. Each time `fleetidd --oneshot`
# exits 75 with an error naming the problem, nothing at all reaches the EST
# server (no request, no TLS handshake), and nothing is stored. Putting the
# provisioned certificate back makes enrollment work (so "nothing sent" is
# not for another reason).
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

lab_require_tools tpm2_nvundefine tpm2_nvdefine tpm2_nvwrite
fleetid_lab_up
fleetid_provision
NV=0x01c90000

# A valid birth certificate from the lab manufacturer CA, for a software key.
"$LAB_PYTHON" "$LAB_PKI_PY" software-client "$EST_PKI" other-device >/dev/null ||
    lab_fail "pki.py software-client failed"
OTHER_PEM=$LAB_TMPDIR/other-device.pem
cp "$EST_PKI/other-device.pem" "$OTHER_PEM"
openssl verify -CAfile "$EST_PKI/mfg-ca.pem" "$OTHER_PEM" >/dev/null ||
    lab_fail "the other device's certificate does not verify against the manufacturer CA"

# nv_replace FILE: the NV index redefined (owner authorization, like an
# attacker or a botched repair with tpm2-tools) to hold FILE's bytes.
nv_replace() {
    local size
    size=$(stat -c %s "$1")
    tpm2_nvundefine -C o "$NV" >/dev/null 2>&1 || true
    tpm2_nvdefine -C o -s "$size" -a "ownerwrite|ownerread|authread|no_da" "$NV" >/dev/null ||
        lab_fail "tpm2_nvdefine $NV failed"
    tpm2_nvwrite -C o -i "$1" "$NV" >/dev/null || lab_fail "tpm2_nvwrite $NV failed"
}

# refused WHAT ERE: --oneshot exits 75 naming the problem (ERE), stores
# nothing, and the EST server saw nothing at all.
refused() {
    local what=$1 ere=$2
    echo "== $what"
    rm -rf "$FLEETID_STATE"
    fleetid_expect_oneshot_failure "$what" "$ere"
    [ ! -e "$FLEETID_STATE/birth.pem" ] || lab_fail "$what: the refused certificate was copied to birth.pem"
    [ "$(est_log_count)" -eq 0 ] && [ "$(est_log_count event=tls_handshake_failed)" -eq 0 ] ||
        lab_fail "$what: expected nothing sent to the EST server, its log has: $(cat "$EST_LOG")"
}

fleetid_write_config "birth: { cert_file = \"$OTHER_PEM\"; nv_index = 0; };"
refused "birth.cert_file for another key" \
    "no certificate in $OTHER_PEM matches the birth key in the TPM at 0x81020000"

fleetid_write_config
openssl x509 -in "$OTHER_PEM" -outform der -out "$LAB_TMPDIR/other-device.der"
nv_replace "$LAB_TMPDIR/other-device.der"
refused "NV index holding another device's certificate" \
    "birth certificate in TPM NV index $NV does not match the birth key at 0x81020000"

openssl x509 -in "$LAB_TMPDIR/idevid.pem" -outform der -out "$LAB_TMPDIR/idevid.der"
head -c 200 "$LAB_TMPDIR/idevid.der" >"$LAB_TMPDIR/truncated.der"
nv_replace "$LAB_TMPDIR/truncated.der"
refused "NV index holding a truncated certificate" "TPM NV index $NV does not hold a DER certificate"

printf 'fleetid lab: not a certificate\n%.0s' {1..20} >"$LAB_TMPDIR/garbage.bin"
nv_replace "$LAB_TMPDIR/garbage.bin"
refused "NV index holding text" "TPM NV index $NV does not hold a DER certificate"

tpm2_nvundefine -C o "$NV" >/dev/null || lab_fail "tpm2_nvundefine $NV failed"
refused "NV index not defined" "TPM NV index $NV is not defined"

echo "== the provisioned certificate back in NV: enrollment works"
nv_replace "$LAB_TMPDIR/idevid.der"
rm -rf "$FLEETID_STATE"
fleetid_enroll_once || lab_fail "fleetidd --oneshot failed with the provisioned certificate restored"
[ "$(est_log_count op=simpleenroll status=200)" -eq 1 ] ||
    lab_fail "expected one successful /simpleenroll with the provisioned certificate"

echo "PASS"
