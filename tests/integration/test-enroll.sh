#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-enroll.sh: the happy path. A device provisioned with fleetid-provision
# enrolls with `fleetidd --oneshot` against the lab EST server, over mutual TLS
# with its TPM birth key, and ends up with an operational certificate from the
# EST CA for a second TPM-resident, non-exportable key (replacing whatever else
# sits at its handle); no private key is ever written to disk, the state files
# have the documented modes, fleetidctl shows the result, and a second run does
# not enroll again. Three lab runs cover the key algorithms (ecc-p256,
# rsa-2048, ecc-p384 as birth and operational keys), TLS 1.2 and 1.3, and a CA
# label. Proxy variables in the environment are ignored (libcurl would use
# them).
# Exit status: 0 pass, 1 fail, 77 skipped (a tool is missing).

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

BIRTH_HANDLE=0x81020000
OP_HANDLE=0x81020002
umask 022 # the state directory is created 0750 minus the umask

step() {
    echo "== $*"
}

fresh_lab() {
    tpm_env_stop
    est_env_stop
    fleetid_lab_up "$@"
}

fingerprint() {
    "$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$1"
}

# key_algorithm: ecc-p256, ecc-p384, rsa-2048, ... for the PEM public key on stdin.
key_algorithm() {
    local text
    text=$(openssl pkey -pubin -noout -text) || return 1
    case $text in
    *"NIST CURVE: P-256"*) echo ecc-p256 ;;
    *"NIST CURVE: P-384"*) echo ecc-p384 ;;
    *Modulus:*) echo "rsa-$(sed -n 's/^Public-Key: (\([0-9]*\) bit)$/\1/p' <<<"$text")" ;;
    *) echo "unknown: $(head -n 1 <<<"$text")" ;;
    esac
}

# check_tpm_key HANDLE ROLE: a TPM-resident signing key that cannot leave the
# TPM and is neither a decryption nor a restricted (attestation/storage) key.
check_tpm_key() {
    local handle=$1 role=$2 attrs a
    attrs=$(fleetid_tpm_attributes "$handle") || lab_fail "no $role key in the TPM at $handle"
    for a in fixedtpm fixedparent sensitivedataorigin sign; do
        [[ "|$attrs|" == *"|$a|"* ]] ||
            lab_fail "$role key at $handle: expected attribute $a, attributes are '$attrs'"
    done
    for a in decrypt restricted; do
        [[ "|$attrs|" != *"|$a|"* ]] ||
            lab_fail "$role key at $handle: expected no attribute $a, attributes are '$attrs'"
    done
}

# json_field FILE DOTTED.PATH: a field of a JSON document (text as is, else JSON).
json_field() {
    "$LAB_PYTHON" - "$1" "$2" <<'EOF'
import json
import sys

v = json.load(open(sys.argv[1], encoding="utf-8"))
for k in sys.argv[2].split("."):
    v = v[k]
print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# enroll_and_check BIRTH_ALG OP_ALG TLS_VERSION [LABEL]: provision with a
# BIRTH_ALG key, enroll an OP_ALG key, check everything a user relies on.
enroll_and_check() {
    local birth_alg=$1 op_alg=$2 tls=$3 label=${4:-}
    local birth=$LAB_TMPDIR/idevid.pem op
    local est="est: { url = \"$EST_URL\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; timeout = 20;"

    fleetid_provision "" "$birth_alg"
    # The lab's /csrattrs asks for this key type (fleetid honours what it asks:
    # test-key-agility.sh); ecc-p384 -> p384, rsa-2048 -> rsa2048.
    est_control "{\"csrattrs_key\": \"$(sed 's/^ecc-//; s/-//' <<<"$op_alg")\"}"
    FLEETID_CONF_NO_EST=1 fleetid_write_config "$est ${label:+label = \"$label\"; }};" \
        "operational: { key_algorithm = \"$op_alg\"; };"
    op=$FLEETID_STATE/operational.pem
    # A proxy in the environment (as a unit's Environment= or systemd's
    # DefaultEnvironment= could set) is not used: no such port listens.
    https_proxy=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 \
        fleetid_enroll_once || lab_fail "fleetidd --oneshot: expected exit 0 (enrolled), got $?"

    # The certificate: from the EST CA, the device's subject, for the TPM key.
    [ -s "$op" ] || lab_fail "fleetidd reported success but wrote no $op"
    openssl verify -CAfile "$EST_PKI/est-ca.pem" -purpose sslclient "$op" >/dev/null ||
        lab_fail "$op does not chain to the lab EST CA as a TLS client certificate"
    fleetid_expect_eq "$(openssl x509 -in "$op" -noout -subject -nameopt RFC2253)" \
        "$(openssl x509 -in "$birth" -noout -subject -nameopt RFC2253)" \
        "subject of the operational certificate (must be the birth certificate's)"
    local op_pub birth_pub
    op_pub=$(fleetid_tpm_pubkey "$OP_HANDLE") || lab_fail "no operational key in the TPM at $OP_HANDLE"
    birth_pub=$(fleetid_tpm_pubkey "$BIRTH_HANDLE") || lab_fail "no birth key in the TPM at $BIRTH_HANDLE"
    fleetid_expect_eq "$(openssl x509 -in "$op" -noout -pubkey)" "$op_pub" \
        "public key of $op vs the TPM key at $OP_HANDLE"
    [ "$op_pub" != "$birth_pub" ] || lab_fail "the operational key is the birth key"
    fleetid_expect_eq "$(key_algorithm <<<"$op_pub")" "$op_alg" "algorithm of the operational key"
    fleetid_expect_eq "$(key_algorithm <<<"$birth_pub")" "$birth_alg" "algorithm of the birth key"
    check_tpm_key "$BIRTH_HANDLE" birth
    check_tpm_key "$OP_HANDLE" operational

    # What reached the server: one enrollment over mutual TLS with the birth
    # certificate, a CSR for the TPM key, answered with this certificate.
    openssl x509 -in "$op" -out "$LAB_TMPDIR/op-leaf.pem"
    local op_spki_fp
    op_spki_fp=sha256:$(openssl pkey -pubin -outform DER <<<"$op_pub" | sha256sum | cut -d' ' -f1)
    fleetid_expect_eq "$(est_log_count op=simpleenroll)" 1 "simpleenroll requests in $EST_LOG"
    fleetid_expect_eq "$(est_log_count op=simpleenroll status=200 auth=tls-birth client_kind=birth \
        client_fingerprint="$(fingerprint "$birth")" csr_pubkey_fingerprint="$op_spki_fp" \
        issued_fingerprint="$(fingerprint "$LAB_TMPDIR/op-leaf.pem")" tls_version="TLSv$tls" \
        label="${label:-null}" path="/.well-known/est/${label:+$label/}simpleenroll")" 1 \
        "simpleenroll requests authenticated by the birth certificate over TLS $tls${label:+ with label $label} that issued $op"
    if [ -n "$label" ]; then
        fleetid_expect_eq "$(est_log_count label=null)" 0 "requests without the CA label $label"
    fi

    # No private key on disk: only the lab's own software CAs have one.
    local others
    mapfile -t others < <(find "$LAB_TMPDIR" -mindepth 1 -maxdepth 1 ! -name pki ! -name localca)
    fleetid_assert_no_private_keys "${others[@]}"
    if grep -rq "PRIVATE KEY" "$FLEETID_STATE"; then
        lab_fail "key material in the state directory: $(grep -rl "PRIVATE KEY" "$FLEETID_STATE")"
    fi

    # State directory and file modes (docs/state-directory.md).
    fleetid_expect_eq "$(stat -c %a "$FLEETID_STATE")" 750 "mode of $FLEETID_STATE"
    local f
    for f in operational.pem birth.pem est-trust-anchors.pem status; do
        [ -f "$FLEETID_STATE/$f" ] || lab_fail "expected $FLEETID_STATE/$f after enrolling"
    done
    for f in "$FLEETID_STATE"/*; do
        fleetid_expect_eq "$(stat -c %a "$f")" 640 "mode of $f"
    done

    # fleetidctl shows it.
    local serial
    serial=$(openssl x509 -in "$op" -noout -serial)
    serial=${serial#serial=}
    "$FLEETIDCTL" --config "$FLEETID_CONF" status >"$LAB_TMPDIR/status.txt" ||
        lab_fail "fleetidctl status failed: $(cat "$LAB_TMPDIR/status.txt")"
    fleetid_expect_grep "$LAB_TMPDIR/status.txt" '^State: +enrolled$' "fleetidctl status"
    fleetid_expect_grep "$LAB_TMPDIR/status.txt" "^Operational serial: +$serial\$" "fleetidctl status"
    "$FLEETIDCTL" --config "$FLEETID_CONF" status --json >"$LAB_TMPDIR/status.json" ||
        lab_fail "fleetidctl status --json failed"
    fleetid_expect_eq "$(json_field "$LAB_TMPDIR/status.json" state)" enrolled "state in status --json"
    fleetid_expect_eq "$(json_field "$LAB_TMPDIR/status.json" operational_certificate.serial)" \
        "$serial" "operational serial in status --json"
    fleetid_expect_eq "$(json_field "$LAB_TMPDIR/status.json" operational_certificate.issuer)" \
        "$(openssl x509 -in "$op" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')" \
        "operational issuer in status --json"
    fleetid_expect_eq "$(json_field "$LAB_TMPDIR/status.json" errors)" "[]" "errors in status --json"

    # A second run finds the certificate valid and does not enroll again.
    local sum
    sum=$(sha256sum <"$op")
    fleetid_enroll_once || lab_fail "second fleetidd --oneshot: expected exit 0 (already enrolled), got $?"
    fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" 'already enrolled' "second fleetidd --oneshot"
    fleetid_expect_eq "$(est_log_count op=simpleenroll)" 1 "simpleenroll requests after the second run"
    fleetid_expect_eq "$(sha256sum <"$op")" "$sum" "$op after the second run"
}

step "ecc-p256 birth and operational keys, TLS 1.3, no label"
fleetid_lab_up
enroll_and_check ecc-p256 ecc-p256 1.3

# The lab's /csrattrs asks for an EC P-256 key signed with ecdsa-with-SHA256,
# and a strict server refuses other operational keys; fleetid enrolls the key
# operational.key_algorithm names (it does not follow a key type /csrattrs
# asks for). These two runs are about TPM key algorithms other than P-256, so
# the server accepts any key type (--lenient-key-type).
step "rsa-2048 birth key, ecc-p384 operational key, server limited to TLS 1.2, label gw"
fresh_lab --tls-max 1.2 --label gw --lenient-key-type
enroll_and_check rsa-2048 ecc-p384 1.2 gw

step "ecc-p384 birth key, rsa-2048 operational key replacing a foreign key at its handle, TLS 1.3"
fresh_lab --lenient-key-type
# A leftover storage key (restricted, decrypt) where the operational key goes:
# fleetidd must replace it with a proper signing key.
tpm2_createprimary -Q -C o -c "$LAB_TMPDIR/foreign.ctx" || lab_fail "tpm2_createprimary failed"
tpm2_evictcontrol -Q -C o -c "$LAB_TMPDIR/foreign.ctx" "$OP_HANDLE" ||
    lab_fail "cannot place a foreign key at $OP_HANDLE"
enroll_and_check ecc-p384 rsa-2048 1.3

echo "PASS: enrollment over EST with TPM keys"
