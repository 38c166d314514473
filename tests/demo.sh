#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/demo.sh: the whole fleetid life cycle available so far, on this machine,
# with nothing but loopback: a fresh TPM 2.0 simulator, a lab PKI and EST
# server, the factory "manufacturing" the device, and fleetidd enrolling it.
# Everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Checking the dependencies (Debian packages)"
# shellcheck source=tests/lib/deps.sh
source tests/lib/deps.sh
deps_install

if [ ! -x build/agent/fleetidd/fleetidd ]; then
    say "Building fleetid"
    [ -d build ] || meson setup build >/dev/null
fi
ninja -C build >/dev/null

export FLEETID_BUILD_DIR=$PWD/build
# shellcheck source=tests/lib/fleetid.sh
source tests/lib/fleetid.sh
lab_tmpdir

say "Starting a fresh TPM 2.0 (swtpm, with an endorsement key certificate like a real one) behind the tpm2-abrmd resource manager"
tpm_env_start "$LAB_TMPDIR"
tpm2_getcap properties-fixed | grep -A1 -E "TPM2_PT_MANUFACTURER|TPM2_PT_FAMILY_INDICATOR" | grep -E "raw|value" | head -2

say "Starting the lab PKI (manufacturer CA, EST CA) and the lab EST server on 127.0.0.1"
est_env_start "$LAB_TMPDIR" --cert-lifetime 86400
echo "EST server: $EST_URL"

say "Factory: fleetid-provision creates the birth key inside the TPM (it never leaves it)"
P=("$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI")
"${P[@]}" create-key | sed 's/^/    /'

say "Factory: the TPM signs a CSR naming the device serial; the manufacturer CA signs the birth certificate (IDevID)"
"${P[@]}" csr --serial DEMO-GW-0001 --out "$LAB_TMPDIR/idevid.csr"
"$LAB_PYTHON" "$LAB_PKI_PY" sign-birth "$EST_PKI" "$LAB_TMPDIR/idevid.csr" "$LAB_TMPDIR/idevid.pem" >/dev/null
openssl x509 -in "$LAB_TMPDIR/idevid.pem" -noout -subject -issuer | sed 's/^/    /'

say "Factory: the certificate is checked against the key and the manufacturer CA, then written to TPM NV and locked"
"${P[@]}" install-cert --cert "$LAB_TMPDIR/idevid.pem" --ca "$EST_PKI/mfg-ca.pem" --lock
"${P[@]}" status | sed 's/^/    /'

say "First contact: fleetidd proves the birth identity over mutual TLS and enrolls an operational certificate (LDevID) with a new TPM key"
fleetid_write_config
sed 's/^/    /' "$FLEETID_CONF"
"$FLEETIDD" --config "$FLEETID_CONF" >"$LAB_TMPDIR/fleetidd.log" 2>&1 &
DAEMON=$!
lab_on_exit "kill $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null || true"
lab_wait_until 60 "fleetidd to enroll" grep -q '^state=enrolled' "$FLEETID_STATE/status" 2>/dev/null ||
    { cat "$LAB_TMPDIR/fleetidd.log"; lab_fail "fleetidd did not enroll"; }
sed 's/^/    /' "$LAB_TMPDIR/fleetidd.log"

say "The keys in the TPM (0x81020000 birth, 0x81020002 operational): both created inside it, neither exportable"
for h in 0x81020000 0x81020002; do
    echo "    $h: $(tpm2_readpublic -c "$h" | grep -A1 '^attributes' | tail -1 | sed 's/^ *value: //')"
done

say "fleetidctl status"
"$FLEETIDCTL" --config "$FLEETID_CONF" status

say "Done. Stopping fleetidd, the EST server, tpm2-abrmd and swtpm."
