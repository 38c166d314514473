#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/demo.sh: fleetid on this machine, narrated, with nothing but loopback
# and nothing changed outside a private mount namespace (as the integration
# tests; also registered as test-demo): a fresh TPM 2.0 simulator (swtpm)
# behind tpm2-abrmd, the lab PKI and EST server (a registration authority for
# the sensors), the factory "manufacturing" the gateway, fleetidd enrolling
# it and serving org.fleetid.Agent1 on a private dbus-daemon configured like
# the system bus (the shipped policy). Then, as unprivileged users granted
# roles in access.conf:
#   1. an application (roles reader + attest) reads the gateway's chain, has
#      a random nonce signed (SignChallenge) and verifies the signature with
#      nothing but the chain, the documented message and the openssl command
#      line (docs/dbus-api.md, "Verifying a signature with nothing but the
#      chain"), and the chain to the EST CA;
#   2. a sensor (role sensor-broker; tests/integration/sensor-client.py,
#      python3-cryptography and python3-dbus) makes its key and CSR, gets a
#      challenge, signs the evidence with its birth key, requests its
#      certificate, waits for JobRemoved and receives its chain, which leads
#      to the EST CA and holds its key; fleetidctl sensor list shows it;
#   3. the gateway is resold: root runs fleetidctl factory-reset --owner with
#      a second lab EST server and its own CA (owner B, pinned by its CA's
#      fingerprint); fleetidd wipes the old owner's identity and enrolls with
#      B: the application's chain now leads to B's CA (and not to A's), the
#      sensor records are gone, the birth identity is the same, and the old
#      owner's server got no request after the reset.
# Every step is checked: the demo exits non-zero at the first one that fails;
# every wait is bounded. Needs root (the users exist only in the namespace)
# and a build (meson setup build && ninja -C build; FLEETID_BUILD_DIR).
# Exit status: 0 pass, 1 fail, 77 skipped (not root, a tool missing).

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root: the demo's users exist only in a private mount namespace (sudo tests/demo.sh)"
    exit 77
fi
for tool in dbus-daemon busctl setpriv unshare mount getent openssl xxd tpm2_readpublic; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done
/usr/bin/python3 -c "import dbus, cryptography" 2>/dev/null ||
    { echo "SKIP: python3-dbus or python3-cryptography is missing"; exit 77; }

APP=fleetid-demo-app
SENSOR_APP=fleetid-demo-sensor
# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_namespace "$0" "$APP" "$SENSOR_APP"

# ---- inside the namespace ----
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"

if [ -t 1 ]; then
    say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '\n==> %s\n' "$*"; }
fi
indent() { sed 's/^/    /'; }
CLIENT=$SRCDIR/tests/integration/sensor-client.py

say "The lab: a fresh TPM 2.0 (swtpm behind tpm2-abrmd), the lab PKI and EST server on 127.0.0.1"
fleetid_lab_up --label sensors
echo "    EST server: $EST_URL (a registration authority for sensor CSRs at the label 'sensors')"
est_control '{"ra_eku": true}'

say "Factory: fleetid-provision creates the birth key in the TPM; the manufacturer CA signs its IDevID"
fleetid_provision DEMO-GW-0001
"$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI" status | indent

say "access.conf: $APP may read and attest, $SENSOR_APP may broker sensors"
cat >"$LAB_TMPDIR/access.conf" <<EOF
grants = (
        { user = "$APP"; roles = [ "reader", "attest" ]; },
        { user = "$SENSOR_APP"; roles = [ "sensor-broker" ]; }
);
EOF
chmod 0644 "$LAB_TMPDIR/access.conf"
indent <"$LAB_TMPDIR/access.conf"
fleetid_write_config \
    "access: { file = \"$LAB_TMPDIR/access.conf\"; };" \
    "broker: { sensor_manufacturer_ca = \"$EST_PKI/mfg-ca.pem\"; est_label = \"sensors\"; };"

say "First contact: fleetidd enrolls an operational certificate over EST and serves org.fleetid.Agent1"
agent_bus_start
echo "    a private dbus-daemon with the shipped policy: $AGENT_BUS_ADDR"
fleetid_daemon_start
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving org.fleetid.Agent1" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own org.fleetid.Agent1" _serving
"$FLEETIDCTL" --config "$FLEETID_CONF" status | indent
EST_CA=$EST_PKI/est-ca.pem

# ---- 1. an application ----
A=$LAB_TMPDIR/app
mkdir -p "$A"
cp "$EST_CA" "$A/ca.pem" # the root the application trusts, given to it out of band
chown -R "$APP:" "$A"
chmod 0700 "$A"
app() { run_as "$APP" "$@"; }

say "1. An application ($APP) reads the gateway's certificate chain (fleetidctl chain, GetCertificateChain)"
app "$FLEETIDCTL" chain >"$A/chain.pem" 2>"$A/err" || lab_fail "fleetidctl chain: $(cat "$A/err")"
openssl crl2pkcs7 -nocrl -certfile "$A/chain.pem" | openssl pkcs7 -print_certs -noout | grep -E "subject|issuer" | indent
agent_busctl "$APP" call "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" GetCertificateChain ||
    lab_fail "busctl GetCertificateChain: $(cat "$AGENT_OUT")"
echo "    busctl GetCertificateChain: $(head -c 60 "$AGENT_OUT")..."

say "1. It picks a random nonce and has the gateway sign it (fleetidctl sign-challenge, SignChallenge)"
NONCE=$(openssl rand -hex 32)
PURPOSE=demo.login
echo "    nonce $NONCE, purpose $PURPOSE"
app "$FLEETIDCTL" sign-challenge --nonce "$NONCE" --purpose "$PURPOSE" --out "$A/sig-chain.pem" \
    >"$A/sign.out" 2>"$A/err" || lab_fail "fleetidctl sign-challenge: $(cat "$A/err")"
indent <"$A/sign.out"
ALG=$(sed -n 's/^algorithm: //p' "$A/sign.out")
sed -n 's/^signature: //p' "$A/sign.out" | openssl base64 -d -A >"$A/sig.bin"
[ -s "$A/sig.bin" ] || lab_fail "no signature in: $(cat "$A/sign.out")"
cmp -s "$A/chain.pem" "$A/sig-chain.pem" || lab_fail "SignChallenge's chain is not the one fleetidctl chain printed"

say "1. It verifies the chain to the EST CA and the $ALG signature with the openssl command line"
echo "    message = \"fleetid-challenge-v1\" 0x00 purpose 0x00 nonce; SHA-256; the leaf's public key"
out=$(app openssl verify -CAfile "$A/ca.pem" -untrusted "$A/chain.pem" "$A/chain.pem" 2>&1) ||
    lab_fail "the chain does not lead to the EST CA: $out"
indent <<<"$out"
# shellcheck disable=SC2016 # expanded by the inner sh
app sh -c 'openssl x509 -in "$1/chain.pem" -noout -pubkey >"$1/pub.pem" &&
    { printf "fleetid-challenge-v1\0%s\0" "$2"; printf "%s" "$3" | xxd -r -p; } >"$1/msg.bin"' \
    sh "$A" "$PURPOSE" "$NONCE" || lab_fail "cannot build the key and the message"
opts=()
[ "$ALG" != rsassaPss ] || opts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32)
out=$(app openssl dgst -sha256 "${opts[@]}" -verify "$A/pub.pem" -signature "$A/sig.bin" "$A/msg.bin" 2>&1) ||
    lab_fail "the signature does not verify: $out"
indent <<<"$out"
# The same signature must not verify for another nonce: the check above is real.
printf 'x' >>"$A/msg.bin"
app openssl dgst -sha256 "${opts[@]}" -verify "$A/pub.pem" -signature "$A/sig.bin" "$A/msg.bin" >/dev/null 2>&1 &&
    lab_fail "the signature verifies for another message"
echo "    verified: the gateway holding this certificate's TPM key signed the nonce (another message: refused)"

# ---- 2. a sensor ----
S=$LAB_TMPDIR/sensor
mkdir -p "$S"
# The sensor's birth certificate, from the manufacturer CA that
# broker.sensor_manufacturer_ca names (in a real sensor, made at its factory).
"$LAB_PYTHON" "$LAB_PKI_PY" software-client "$EST_PKI" sensor-birth-01 >/dev/null
cp "$EST_PKI"/sensor-birth-01.* "$S/"
chown -R "$SENSOR_APP:" "$S"
chmod 0700 "$S"
sensor() { run_as "$SENSOR_APP" "$LAB_PYTHON" "$CLIENT" "$@"; }
ID=temp-01

say "2. A sensor ($SENSOR_APP, python3-dbus) makes its key and CSR (CN=$ID)"
sensor make-csr --id "$ID" --key "$S/$ID.key" --csr "$S/$ID.csr"
openssl req -inform DER -in "$S/$ID.csr" -noout -subject | indent

say "2. It gets a challenge (GetSensorChallenge) and signs it, bound to its CSR's key, with its birth key (the evidence)"
out=$(sensor challenge --id "$ID" --out "$S/$ID.nonce")
[[ $out == "nonce "* ]] || lab_fail "GetSensorChallenge: $out"
echo "    $out: $(xxd -p -c 64 "$S/$ID.nonce")"
sensor evidence --nonce "$S/$ID.nonce" --csr "$S/$ID.csr" --birth-key "$S/sensor-birth-01.key" \
    --birth-cert "$S/sensor-birth-01.pem" --out "$S/$ID.ev"
echo "    birth certificate: $(openssl x509 -in "$S/sensor-birth-01.pem" -noout -subject -issuer | tr '\n' ' ')"

say "2. It requests its certificate (RequestSensorCertificate), waits for JobRemoved, receives its chain"
sensor request --id "$ID" --csr "$S/$ID.csr" --evidence "$S/$ID.ev" --wait 60 --out "$S/$ID.chain" \
    >"$S/request.out" 2>&1 || lab_fail "the sensor's request: $(cat "$S/request.out")"
indent <"$S/request.out"
grep -q "^removed done$" "$S/request.out" || lab_fail "the job did not end done: $(cat "$S/request.out")"

say "2. Its chain leads to the EST CA and holds the sensor's key"
out=$(openssl verify -CAfile "$EST_CA" -untrusted "$S/$ID.chain" "$S/$ID.chain" 2>&1) ||
    lab_fail "the sensor's chain does not lead to the EST CA: $out"
indent <<<"$out"
cmp -s <(openssl x509 -in "$S/$ID.chain" -noout -pubkey) <(openssl pkey -in "$S/$ID.key" -pubout) ||
    lab_fail "the sensor's certificate does not hold its key"
openssl x509 -in "$S/$ID.chain" -noout -subject -issuer -enddate | indent
echo "    verified: the certificate holds the sensor's key"

say "2. fleetidctl sensor list"
run_as "$SENSOR_APP" "$FLEETIDCTL" sensor list >"$S/list.out" 2>&1 || lab_fail "fleetidctl sensor list: $(cat "$S/list.out")"
indent <"$S/list.out"
grep -q "$ID" "$S/list.out" || lab_fail "fleetidctl sensor list does not show $ID"

# ---- 3. a new owner ----
say "3. The gateway changes hands: a second EST server with its own CA (owner B) on 127.0.0.1"
A_LOG=$EST_LOG
fleetid_second_est B
B_FINGERPRINT=$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$B_PKI/est-ca.pem")
fleetid_owner_file "$LAB_TMPDIR/owner-b.conf" "$B_URL" fingerprint "$B_FINGERPRINT"
echo "    owner B's file (its EST CA pinned by fingerprint; fleetidctl installs it in the drop-in directory):"
indent <"$LAB_TMPDIR/owner-b.conf"
tpm2_readpublic -c 0x81020000 -o "$LAB_TMPDIR/birth-before.pub" >/dev/null

say "3. Root runs fleetidctl factory-reset --owner owner-b.conf --yes: fleetidd wipes and enrolls with B"
a_before=$(fleetid_requests_in "$A_LOG")
"$FLEETIDCTL" --config "$FLEETID_CONF" factory-reset --owner "$LAB_TMPDIR/owner-b.conf" --yes --timeout 120 \
    >"$LAB_TMPDIR/reset.out" 2>&1 || lab_fail "fleetidctl factory-reset: $(cat "$LAB_TMPDIR/reset.out")"
indent <"$LAB_TMPDIR/reset.out"
grep -q "factory reset done: enrolled with $B_URL" "$LAB_TMPDIR/reset.out" ||
    lab_fail "the reset did not end enrolled with B: $(cat "$LAB_TMPDIR/reset.out")"
grep "factory reset asked by uid" "$FLEETIDD_LOG" | indent
fleetid_wait_state 30 enrolled
"$FLEETIDCTL" --config "$FLEETID_CONF" status | indent

say "3. The application's chain now leads to B's CA, not to the old owner's"
cp "$B_PKI/est-ca.pem" "$A/ca-b.pem"
chown "$APP:" "$A/ca-b.pem"
app "$FLEETIDCTL" chain >"$A/chain-b.pem" 2>"$A/err" || lab_fail "fleetidctl chain: $(cat "$A/err")"
out=$(app openssl verify -CAfile "$A/ca-b.pem" -untrusted "$A/chain-b.pem" "$A/chain-b.pem" 2>&1) ||
    lab_fail "the new chain does not lead to B's EST CA: $out"
indent <<<"$out"
app openssl verify -CAfile "$A/ca.pem" -untrusted "$A/chain-b.pem" "$A/chain-b.pem" >/dev/null 2>&1 &&
    lab_fail "the new chain still leads to the old owner's EST CA"
echo "    the old owner's CA: refused"
fleetid_issued_by "$B_PKI" || lab_fail "operational.pem is not from B's CA"

say "3. Nothing of the old owner is left; the manufacturer's birth identity is"
# (The broker starts again after the reset, on an empty records directory.)
[ -z "$(ls -A "$FLEETID_STATE/sensors" 2>/dev/null)" ] ||
    lab_fail "the sensor records survived the reset: $(ls -A "$FLEETID_STATE/sensors")"
run_as "$SENSOR_APP" "$FLEETIDCTL" sensor list >"$S/list-b.out" 2>&1 || true
! grep -q "$ID" "$S/list-b.out" || lab_fail "fleetidctl sensor list still shows $ID after the reset"
echo "    sensor records: none"
tpm2_readpublic -c 0x81020000 -o "$LAB_TMPDIR/birth-after.pub" >/dev/null
cmp -s "$LAB_TMPDIR/birth-before.pub" "$LAB_TMPDIR/birth-after.pub" || lab_fail "the birth key changed"
echo "    birth key at 0x81020000: the same public area"
fleetid_expect_eq "$(fleetid_requests_in "$A_LOG")" "$a_before" "requests to the old owner's server after the reset"
echo "    requests to the old owner's server since the reset: 0; to B's: $(fleetid_requests_in "$B_LOG")"

say "Done: stopping fleetidd, the bus, the EST servers, tpm2-abrmd and swtpm"
echo "PASS: test-demo"
