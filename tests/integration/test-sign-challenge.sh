#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-sign-challenge.sh: the SignChallenge engine (lib/crypto/challenge.h) with a
# real TPM key, through the fleetid-tpm provider: for ecc-p256, ecc-p384 and
# rsa-2048 birth keys (and RSA-PSS), the TPM signs the domain-separated
# challenge digest, and three verifiers that know nothing but the chain (the
# birth certificate and the lab manufacturer CA) and the formula of
# docs/dbus-api.md accept it: `openssl dgst` over the message, `openssl
# pkeyutl` over the digest, and tests/lab/verify_challenge.py
# (python3-cryptography). Another purpose or nonce is refused by all three;
# a bad nonce or purpose never reaches the TPM.
# Exit status: 0 pass, 1 fail, 77 skipped (a tool is missing).

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

BIRTH_HANDLE=0x81020000
SIGNER=$FLEETID_BUILD_DIR/tests/integration/challenge-signer
VERIFY_PY=$FLEETID_SOURCE_DIR/tests/lab/verify_challenge.py
NONCE=00112233445566778899aabbccddeeff0123456789abcdef
PURPOSE=login.example-v1

step() {
    echo "== $*"
}

[ -x "$SIGNER" ] || lab_fail "$SIGNER is not built"
lab_require_tools swtpm swtpm_setup tpm2-abrmd dbus-daemon tpm2_getcap openssl
lab_tmpdir
T=$LAB_TMPDIR
tpm_env_start "$T/tpm"
EST_PKI=$T/pki
"$LAB_PYTHON" "$LAB_PKI_PY" init "$EST_PKI" >/dev/null || lab_fail "cannot create the lab PKI"

# message FILE PURPOSE NONCE_HEX: the documented message, byte for byte.
message() {
    { printf 'fleetid-challenge-v1\0%s\0' "$2"; "$LAB_PYTHON" -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$3"; } >"$1"
}

# verify_all WHAT ALG SIG PURPOSE NONCE: 0 if all three verifiers accept,
# 1 if all three refuse; a disagreement fails the test.
verify_all() {
    local what=$1 alg=$2 sig=$3 purpose=$4 nonce=$5 ok=0 n=0 opts=()
    message "$T/msg" "$purpose" "$nonce"
    openssl dgst -sha256 -binary "$T/msg" >"$T/digest"
    if [ "$alg" = rsassaPss ]; then
        opts=(rsa_padding_mode:pss rsa_pss_saltlen:32)
    fi
    local dgst_opts=() pkey_opts=(-pkeyopt digest:sha256) o
    for o in "${opts[@]}"; do
        dgst_opts+=(-sigopt "$o")
        pkey_opts+=(-pkeyopt "$o")
    done
    if openssl dgst -sha256 -verify "$T/pub.pem" -signature "$sig" "${dgst_opts[@]}" "$T/msg" >/dev/null 2>&1; then
        ok=$((ok + 1))
    fi
    if openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -in "$T/digest" -sigfile "$sig" \
        "${pkey_opts[@]}" >/dev/null 2>&1; then
        ok=$((ok + 1))
    fi
    if "$LAB_PYTHON" "$VERIFY_PY" --chain "$T/idevid.pem" --ca "$EST_PKI/mfg-ca.pem" --nonce "$nonce" \
        --purpose "$purpose" --alg "$alg" --sig "$sig" >/dev/null 2>&1; then
        ok=$((ok + 1))
    fi
    n=3
    [ "$ok" -eq 0 ] && return 1
    [ "$ok" -eq "$n" ] || lab_fail "$what: only $ok of $n verifiers accept the signature"
    return 0
}

for alg in ecc-p256 ecc-p384 rsa-2048; do
    step "$alg: the TPM signs the challenge; the chain and the formula verify it"
    "$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI" create-key --algorithm "$alg" --force >/dev/null ||
        lab_fail "create-key $alg failed"
    "$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI" csr --serial "SN-$alg" --out "$T/csr.pem" ||
        lab_fail "csr failed"
    "$LAB_PYTHON" "$LAB_PKI_PY" sign-birth "$EST_PKI" "$T/csr.pem" "$T/idevid.pem" >/dev/null ||
        lab_fail "the lab manufacturer CA refused the CSR"
    openssl verify -CAfile "$EST_PKI/mfg-ca.pem" "$T/idevid.pem" >/dev/null ||
        lab_fail "$alg: the birth certificate does not chain to the manufacturer CA"
    openssl x509 -in "$T/idevid.pem" -noout -pubkey >"$T/pub.pem"

    modes=(plain)
    [ "$alg" = rsa-2048 ] && modes+=(pss)
    for mode in "${modes[@]}"; do
        extra=()
        [ "$mode" = pss ] && extra=(pss)
        got_alg=$("$SIGNER" "$FLEETID_TEST_TCTI" "$BIRTH_HANDLE" "$NONCE" "$PURPOSE" "$T/sig" "${extra[@]}") ||
            lab_fail "$alg ($mode): challenge-signer failed"
        case "$alg/$mode" in
            ecc-*/plain) want=ecdsa-with-SHA256 ;;
            rsa-*/plain) want=sha256WithRSAEncryption ;;
            rsa-*/pss) want=rsassaPss ;;
        esac
        fleetid_expect_eq "$got_alg" "$want" "$alg ($mode): algorithm"
        verify_all "$alg ($mode)" "$got_alg" "$T/sig" "$PURPOSE" "$NONCE" ||
            lab_fail "$alg ($mode): the verifiers refuse the TPM's signature"
        if verify_all "$alg ($mode), other purpose" "$got_alg" "$T/sig" "login.example-v2" "$NONCE"; then
            lab_fail "$alg ($mode): the signature verified for another purpose"
        fi
        if verify_all "$alg ($mode), other nonce" "$got_alg" "$T/sig" "$PURPOSE" "ff${NONCE:2}"; then
            lab_fail "$alg ($mode): the signature verified for another nonce"
        fi
    done
done

step "a bad nonce or purpose is refused, naming what is wrong"
if "$SIGNER" "$FLEETID_TEST_TCTI" "$BIRTH_HANDLE" 00112233445566778899aabbccddee "$PURPOSE" "$T/bad" \
    >/dev/null 2>"$T/err"; then
    lab_fail "a 15-byte nonce was signed"
fi
fleetid_expect_grep "$T/err" "the nonce is 15 bytes; it must be 16 to 64 bytes" "short nonce"
if "$SIGNER" "$FLEETID_TEST_TCTI" "$BIRTH_HANDLE" "$NONCE" "TLS 1.3, server CertificateVerify" "$T/bad" \
    >/dev/null 2>"$T/err"; then
    lab_fail "a purpose with capitals and spaces was signed"
fi
fleetid_expect_grep "$T/err" "the purpose has the character 0x54 at offset 0" "bad purpose"
[ ! -e "$T/bad" ] || lab_fail "a refused challenge left a signature file"

echo "test-sign-challenge: PASS"
