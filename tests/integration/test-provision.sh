#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-provision.sh: fleetid-provision, the factory tool, on a fresh TPM.
#   - create-key does not replace an existing birth key unless --force; the
#     key from the TCG IDevID template is the same key each time (it is made
#     from the endorsement seed), a key under the SRK (--hierarchy owner) is
#     a new one; rsa-3072 has no TCG template and is refused for it;
#   - install-cert installs nothing for a certificate of another key or from a
#     CA other than the manufacturer's, does not overwrite an installed
#     certificate unless --force, and --lock write-locks the NV index;
#   - a write-locked certificate is replaced only with --force --remove-lock,
#     which says that the lock was removed; --file takes only absolute paths;
#   - status names the key, whether it survives a TPM2_Clear, and the certificate.
# Exit status: 0 pass, 1 fail, 77 skipped (a tool is missing).

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

BIRTH_HANDLE=0x81020000
NV_INDEX=0x01c90000

step() {
    echo "== $*"
}

provision() {
    "$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI" "$@"
}

# expect_refused WHAT ERE COMMAND...: COMMAND exits non-zero with output matching ERE.
expect_refused() {
    local what=$1 ere=$2 rc=0
    shift 2
    "$@" >"$T/refused.out" 2>&1 || rc=$?
    cat "$T/refused.out" >&2
    [ "$rc" -ne 0 ] || lab_fail "$what: expected a refusal, the command succeeded"
    fleetid_expect_grep "$T/refused.out" "$ere" "$what"
}

# nv_defined: whether NV_INDEX is defined (tpm2_getcap prints e.g. "- 0x1C90000").
nv_defined() {
    local out h
    out=$(tpm2_getcap handles-nv-index) || lab_fail "tpm2_getcap handles-nv-index failed"
    while read -r _ h; do
        [ $((h)) -ne $((NV_INDEX)) ] || return 0
    done <<<"$out"
    return 1
}

# nv_cert: the certificate in the NV index, as PEM.
nv_cert() {
    tpm2_nvread "$NV_INDEX" -o "$T/nv.der" >/dev/null 2>&1 || return 1
    openssl x509 -inform DER -in "$T/nv.der"
}

birth_pubkey() {
    fleetid_tpm_pubkey "$BIRTH_HANDLE" || lab_fail "cannot read the birth key at $BIRTH_HANDLE"
}

sign_birth() {
    "$LAB_PYTHON" "$LAB_PKI_PY" sign-birth "$EST_PKI" "$@" >/dev/null ||
        lab_fail "pki.py sign-birth $* failed"
}

lab_require_tools swtpm swtpm_setup tpm2-abrmd dbus-daemon tpm2_getcap tpm2_nvread openssl
lab_tmpdir
T=$LAB_TMPDIR
tpm_env_start "$T/tpm"
EST_PKI=$T/pki
"$LAB_PYTHON" "$LAB_PKI_PY" init "$EST_PKI" >/dev/null || lab_fail "cannot create the lab PKI"

step "status before provisioning"
provision status >"$T/status.out" || lab_fail "fleetid-provision status failed on an empty TPM"
fleetid_expect_grep "$T/status.out" "^Birth key: +none at $BIRTH_HANDLE" "status without a birth key"

step "handles and NV indices outside their ranges are refused before the TPM is touched"
persistent_before=$(tpm2_getcap handles-persistent)
# Held to the configuration's ranges; parsed unsigned, so 0x81020000 also works
# where long is 32 bits (armhf), where strtol() overflowed.
expect_refused "--handle below the persistent range" \
    "invalid --handle: '0x7fffffff' is not a persistent handle in 0x81000000..0x81FFFFFF" \
    provision --handle 0x7fffffff create-key
expect_refused "--handle above 32 bits" "invalid --handle: '0x181020000' is not a persistent handle" \
    provision --handle 0x181020000 create-key
expect_refused "--handle of the operational key" \
    "--handle 0x81020002 is the operational key .operational.key_handle.'s handle" \
    provision --handle 0x81020002 create-key --force
expect_refused "--handle of the storage root key" "--handle 0x81000001 is the storage root key" \
    provision --handle 0x81000001 create-key --force
expect_refused "--handle with a sign" "invalid --handle: '-1' is not a number" provision --handle -1 create-key
expect_refused "--nv-index in the persistent range" \
    "invalid --nv-index: '0x81020000' is not an NV index in 0x01000000..0x01FFFFFF" \
    provision --nv-index 0x81020000 status
[ "$(tpm2_getcap handles-persistent)" = "$persistent_before" ] || lab_fail "a refused --handle still created a key"

step "create-key, and no silent replacement"
provision create-key >/dev/null || lab_fail "create-key failed on an empty TPM"
key1=$(birth_pubkey)
expect_refused "create-key over an existing key" "already exists.*--force" provision create-key
fleetid_expect_eq "$(birth_pubkey)" "$key1" "birth key after the refused create-key"
provision create-key --hierarchy owner --force >/dev/null || lab_fail "create-key --hierarchy owner --force failed"
key2=$(birth_pubkey)
[ "$key2" != "$key1" ] || lab_fail "create-key --hierarchy owner --force left the old key in place"
provision status >"$T/status.out" || lab_fail "fleetid-provision status failed"
fleetid_expect_grep "$T/status.out" "^Clear-proof: NO" "status of a birth key under the SRK"
provision create-key --force >/dev/null || lab_fail "create-key --force failed"
fleetid_expect_eq "$(birth_pubkey)" "$key1" "the birth key made again from the TCG template"
expect_refused "create-key rsa-3072 from the TCG template" "no IDevID key template for rsa-3072" \
    provision create-key --algorithm rsa-3072 --force
fleetid_expect_eq "$(birth_pubkey)" "$key1" "birth key after the refused rsa-3072 create-key"
expect_refused "--hierarchy with a typo" "invalid --hierarchy 'storage'" provision --hierarchy storage create-key

step "install-cert refuses certificates that do not belong to the key or to the manufacturer"
provision csr --serial SN-PROV-1 --out "$T/birth.csr" || lab_fail "csr failed"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/soft.key" \
    -subj "/CN=SN-PROV-1/serialNumber=SN-PROV-1" -out "$T/soft.csr" 2>/dev/null ||
    lab_fail "openssl req failed"
sign_birth "$T/soft.csr" "$T/other-key.pem"
expect_refused "install-cert with a certificate for another key" "no certificate for the birth key" \
    provision install-cert --cert "$T/other-key.pem" --ca "$EST_PKI/mfg-ca.pem" --lock
! nv_defined || lab_fail "NV index $NV_INDEX defined after refusing a certificate for another key"
sign_birth "$T/birth.csr" "$T/rogue.pem" --ca rogue
expect_refused "install-cert with a certificate from the rogue CA" "does not chain to the manufacturer CA" \
    provision install-cert --cert "$T/rogue.pem" --ca "$EST_PKI/mfg-ca.pem" --lock
! nv_defined || lab_fail "NV index $NV_INDEX defined after refusing a rogue certificate"

mkfifo "$T/cert.fifo"
expect_refused "install-cert --cert FIFO" "birth certificate \(--cert\): cannot read .*cert\.fifo: not a regular file" \
    timeout 20 "$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI" install-cert --cert "$T/cert.fifo" \
    --ca "$EST_PKI/mfg-ca.pem"
expect_refused "install-cert --ca /dev/zero" "manufacturer CA \(--ca\): cannot read /dev/zero: not a regular file" \
    provision install-cert --cert "$T/rogue.pem" --ca /dev/zero
! nv_defined || lab_fail "NV index $NV_INDEX defined after refusing unreadable input"

step "install-cert installs, and does not overwrite without --force"
sign_birth "$T/birth.csr" "$T/idevid-1.pem"
sign_birth "$T/birth.csr" "$T/idevid-2.pem" --days 0
provision install-cert --cert "$T/idevid-1.pem" --ca "$EST_PKI/mfg-ca.pem" ||
    lab_fail "install-cert refused a good birth certificate"
nv_defined || lab_fail "NV index $NV_INDEX not defined after install-cert"
fleetid_expect_eq "$(nv_cert)" "$(openssl x509 -in "$T/idevid-1.pem")" "certificate in NV $NV_INDEX"
if tpm2_nvreadpublic "$NV_INDEX" | grep -q writelocked; then
    lab_fail "NV index $NV_INDEX is write-locked although --lock was not given"
fi
expect_refused "install-cert over an installed certificate" "already installed.*--force" \
    provision install-cert --cert "$T/idevid-2.pem" --ca "$EST_PKI/mfg-ca.pem"
fleetid_expect_eq "$(nv_cert)" "$(openssl x509 -in "$T/idevid-1.pem")" \
    "certificate in NV $NV_INDEX after the refused install-cert"

step "install-cert --force --lock replaces and write-locks"
provision install-cert --cert "$T/idevid-2.pem" --ca "$EST_PKI/mfg-ca.pem" --force --lock ||
    lab_fail "install-cert --force --lock failed"
fleetid_expect_eq "$(nv_cert)" "$(openssl x509 -in "$T/idevid-2.pem")" \
    "certificate in NV $NV_INDEX after install-cert --force"
tpm2_nvreadpublic "$NV_INDEX" >"$T/nvpublic.out"
fleetid_expect_grep "$T/nvpublic.out" "friendly: .*writelocked" "attributes of NV $NV_INDEX after --lock"

step "status names the key and the certificate"
provision status >"$T/status.out" || lab_fail "fleetid-provision status failed"
cat "$T/status.out"
fleetid_expect_grep "$T/status.out" "^Birth key: +$BIRTH_HANDLE, EC 256 bits, .*sign" "status: birth key"
fleetid_expect_grep "$T/status.out" "^Clear-proof: yes" "status: the birth key survives a TPM2_Clear"
fleetid_expect_grep "$T/status.out" \
    "^Certificate: .*CN=SN-PROV-1.*NV $NV_INDEX \\(write-locked\\), matches the key$" "status: certificate"

step "a write-locked certificate is replaced only with --force --remove-lock, which says so"
expect_refused "install-cert --force over a write-locked certificate" "write-locked.*--remove-lock" \
    provision install-cert --cert "$T/idevid-1.pem" --ca "$EST_PKI/mfg-ca.pem" --force
fleetid_expect_eq "$(nv_cert)" "$(openssl x509 -in "$T/idevid-2.pem")" \
    "certificate in NV $NV_INDEX after the refused install-cert --force"
tpm2_nvreadpublic "$NV_INDEX" >"$T/nvpublic.out"
fleetid_expect_grep "$T/nvpublic.out" "friendly: .*writelocked" "attributes of NV $NV_INDEX after the refusal"
expect_refused "--remove-lock without --force" "only goes with --force" \
    provision install-cert --cert "$T/idevid-1.pem" --ca "$EST_PKI/mfg-ca.pem" --remove-lock
provision install-cert --cert "$T/idevid-1.pem" --ca "$EST_PKI/mfg-ca.pem" --force --remove-lock \
    >"$T/unlock.out" 2>&1 || lab_fail "install-cert --force --remove-lock failed: $(cat "$T/unlock.out")"
cat "$T/unlock.out"
fleetid_expect_grep "$T/unlock.out" "write lock on NV index $NV_INDEX was removed.*NOT locked" \
    "install-cert --force --remove-lock output"
fleetid_expect_eq "$(nv_cert)" "$(openssl x509 -in "$T/idevid-1.pem")" \
    "certificate in NV $NV_INDEX after install-cert --force --remove-lock"
if tpm2_nvreadpublic "$NV_INDEX" | grep -q writelocked; then
    lab_fail "NV index $NV_INDEX is still write-locked although it was redefined without --lock"
fi

step "install-cert --file takes only an absolute path"
mkdir "$T/cwd"
expect_refused "install-cert --file with a relative path" "--file must be an absolute path.*birth\\.pem" \
    env --chdir="$T/cwd" "$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI" \
    install-cert --cert "$T/idevid-1.pem" --ca "$EST_PKI/mfg-ca.pem" --force --file birth.pem
[ -z "$(ls -A "$T/cwd")" ] || lab_fail "install-cert --file birth.pem wrote into the current directory"
provision install-cert --cert "$T/idevid-1.pem" --ca "$EST_PKI/mfg-ca.pem" --force --file "$T/birth.pem" ||
    lab_fail "install-cert --file with an absolute path failed"
fleetid_expect_eq "$(openssl x509 -in "$T/birth.pem")" "$(openssl x509 -in "$T/idevid-1.pem")" \
    "certificate written by install-cert --file"

step "replacing the key makes status report the mismatch"
provision create-key --hierarchy owner --force >/dev/null || lab_fail "create-key --force failed"
provision status >"$T/status.out" || lab_fail "fleetid-provision status failed"
fleetid_expect_grep "$T/status.out" "^Certificate: .*DOES NOT MATCH THE KEY" \
    "status after replacing the key under an installed certificate"

echo "PASS: fleetid-provision"
