#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/system/guest/systest.sh: the checks inside the booted guest, one
# phase per boot (the payload's "phase" file names it). Run by the image's
# fleetid-systest.service from the unpacked payload in /run/systest. Writes
# "SYSTEST: ..." progress and one "SYSTEST-VERDICT: PASS|FAIL ..." line to the
# console, then powers off ("shell" in the payload: stays up for a login).
#   install   apt installs the .deb, fleetid-provision provisions the TPM
#             (device:/dev/tpmrm0) as a factory station would, fleetidd
#             enrolls against the lab EST server on loopback; unit, user,
#             TCTI, systemd-analyze verify/security, org.fleetid.Agent1 on
#             the system bus (root reads, nobody gets the trust bundle only,
#             only fleetid owns the name), journal and catalog; every member
#             of org.fleetid.Agent1 with the shipped policy and an
#             access.conf granting roles to test users: GetAll as a reader,
#             SignChallenge (fleetidctl, verified with openssl) as an
#             attest user, refused with identity=birth, with it as root
#             (busctl); a sensor certificate through fleetidctl sensor
#             request (the lab EST server as an RA); Renew and FactoryReset
#             refused to a non-admin.
#   reboot    identity kept, no second /simpleenroll; then a renewal is
#             started and held by the EST server, and the host cuts the power
#             when the console says SYSTEST-CUT-POWER.
#   recover   after the power cut: identity intact and renewable (a Renew
#             job through the bus, CertificateChanged); the clock jumps
#             forward past the due time (renewal) and back (the fresh
#             certificate is kept); a start with the clock in 1970 waits
#             (waiting-clock) and carries on once it is set; a factory reset to a second owner (a
#             second lab EST server and CA), then tpm2_clear: fleetidd sees
#             the clear, makes the SRK and the birth key again (the same
#             public area) and enrolls anew; dpkg --purge removes the package.
set -uo pipefail

P=/run/systest
LAB=/var/lib/fleetid-lab
STATE=/var/lib/fleetid
EST_PORT=8443
EST_LOG=$LAB/est.log
# The second owner's lab EST server (its own CA; it trusts the same
# manufacturer CA), for the factory reset.
EST_B_PORT=8444
EST_B_LOG=$LAB/est-b.log
SERIAL=SN-SYSTEST-0001
AGENT=(org.fleetid.Agent1 /org/fleetid/Agent1 org.fleetid.Agent1)
BIRTH_HANDLE=0x81020000
SRK_HANDLE=0x81000001
# Test users, made in the install phase, and their roles (access.conf):
# a reader (by a group), an application that may attest (by a group), a
# sensor broker (by its user name).
READER=systest-reader
APP=systest-app
BROKER=systest-sensors
# "device" (default): the kernel resource manager. "tabrmd": tpm2-abrmd on
# the system bus over /dev/tpm0, a diagnostic mode (README.md).
TCTI_MODE=$(cat "$P/tcti" 2>/dev/null || echo device)
case $TCTI_MODE in
tabrmd) TCTI=tabrmd:bus_type=system ;;
*) TCTI=device:/dev/tpmrm0 ;;
esac
# The journal message IDs, as agent/common/message-ids.h defines them (run.sh
# copies them into the payload).
MSG_ENROLLED=$(cat "$P/msg-enrolled")
MSG_RENEWED=$(cat "$P/msg-renewed")
MSG_BUS_DENIED=$(cat "$P/msg-bus_access_denied")
MSG_FACTORY_RESET=$(cat "$P/msg-factory_reset")
MSG_FACTORY_RESET_ENROLLED=$(cat "$P/msg-factory_reset_enrolled")
MSG_TPM_CLEARED=$(cat "$P/msg-tpm_cleared")
MSG_BIRTH_KEY_RECREATED=$(cat "$P/msg-birth_key_recreated")
phase=$(cat "$P/phase")

say() { echo "SYSTEST: [$phase] $*"; }

finish() {
    local verdict=$1
    shift
    if [ "$verdict" = FAIL ]; then
        echo "SYSTEST-JOURNAL-BEGIN"
        journalctl -b --no-pager -o short-monotonic -u fleetidd.service -u fleetid-lab-est.service \
            -u fleetid-lab-est-b.service | tail -n 150
        echo "SYSTEST: warnings and errors of this boot:"
        journalctl -b --no-pager -o short-monotonic -p warning | tail -n 50
        echo "SYSTEST-JOURNAL-END"
        [ -f "$EST_LOG" ] && { echo "SYSTEST: EST log:"; tail -n 20 "$EST_LOG"; }
        [ -f "$EST_B_LOG" ] && { echo "SYSTEST: EST log of the second owner:"; tail -n 10 "$EST_B_LOG"; }
    fi
    # The verdict is given: the deadline has nothing more to do.
    [ -z "${GUARD_PID:-}" ] || [ "$BASHPID" != "$$" ] || kill "$GUARD_PID" 2>/dev/null
    echo "SYSTEST-VERDICT: $verdict [$phase] $*"
    if [ -e "$P/shell" ]; then
        echo "SYSTEST: shell mode: log in as root on the console; poweroff when done"
        exit 0
    fi
    sync
    systemctl poweroff --no-block
    exit 0
}

fail() { finish FAIL "$*"; }

# wait_until SECS WHAT CMD...: retries CMD every 0.5 s, bounded.
wait_until() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 2; i++)); do
        "$@" && return 0
        sleep 0.5
    done
    say "timed out after ${secs}s waiting for $what"
    return 1
}

# est_count [K=V...]: request lines of the lab EST server's log matching all
# K=V; est_count_in LOG [K=V...]: the same in another EST server's LOG.
est_count() { est_count_in "$EST_LOG" "$@"; }
est_count_in() {
    python3 - "$@" <<'PY'
import json, sys
n = 0
want = [a.split("=", 1) for a in sys.argv[2:]]
try:
    lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
except FileNotFoundError:
    lines = []
for line in lines:
    try:
        e = json.loads(line)
    except ValueError:
        continue  # a line cut short by the power cut
    if e.get("event") == "request" and all(str(e.get(k)) == v for k, v in want):
        n += 1
print(n)
PY
}

# The live status record is in the runtime directory; the state directory's
# copy is rewritten only when what must survive a reboot changes.
status_get() { sed -n "s/^$1=//p" /run/fleetid/status 2>/dev/null || sed -n "s/^$1=//p" "$STATE/status"; }
status_is() { [ "$(status_get state)" = "$1" ]; }
serial_of() { openssl x509 -in "$STATE/operational.pem" -noout -serial | cut -d= -f2; }

# tpm_pubkey HANDLE: the public key of the TPM object at HANDLE, PEM.
tpm_pubkey() {
    { tpm2_readpublic -T "$TCTI" -c "$1" -f pem -o /dev/fd/3 >/dev/null; } 3>&1 | openssl pkey -pubin
}

# identity_intact [CA]: the operational certificate is valid now, chains to
# the EST CA (default: the first owner's), and its key is the TPM's object at
# one of the two operational key handles (operational.key_handle and
# spare_key_handle alternate at renewals).
identity_intact() {
    local ca=${1:-$LAB/pki/est-ca.pem}
    openssl verify -CAfile "$ca" "$STATE/operational.pem" >/dev/null ||
        { say "operational.pem does not verify against the EST CA $ca"; return 1; }
    openssl x509 -in "$STATE/operational.pem" -noout -checkend 0 >/dev/null ||
        { say "operational.pem is not valid now"; return 1; }
    local cert_key handle
    cert_key=$(openssl x509 -in "$STATE/operational.pem" -noout -pubkey)
    for handle in 0x81020002 0x81020003; do
        [ "$(tpm_pubkey "$handle" 2>/dev/null)" != "$cert_key" ] || return 0
    done
    say "operational.pem is for no TPM key at 0x81020002 or 0x81020003"
    return 1
}

wait_active() {
    wait_until "$1" "fleetidd.service active" systemctl -q is-active fleetidd.service
}

# as USER CMD...: CMD as USER with USER's groups (initgroups), as a login
# gives them: the bus takes the caller's groups from its socket.
as() {
    local user=$1
    shift
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$@"
}

# denied USER WHAT CMD...: CMD as USER fails with AccessDenied (busctl says
# "Access denied" for it, fleetidctl the error's name and message).
denied() {
    local user=$1 what=$2 out
    shift 2
    if out=$(as "$user" "$@" 2>&1); then
        fail "$user may $what without the role for it"
    fi
    grep -qi "access denied\|AccessDenied" <<<"$out" || fail "$user, $what: not AccessDenied: $out"
}

# refusal_logged UID MEMBER: fleetidd logged its refusal of MEMBER (with
# " with identity=birth" for the birth key) to UID (MESSAGE_ID bus access denied).
refusal_logged() {
    journalctl -b -u fleetidd.service MESSAGE_ID="$MSG_BUS_DENIED" -o cat --no-pager |
        grep -qF "D-Bus: refused $2 to uid $1: "
}

# challenge_message PURPOSE NONCE_HEX: the message SignChallenge signs
# ("fleetid-challenge-v1" 0x00 purpose 0x00 nonce, docs/dbus-api.md).
challenge_message() {
    printf 'fleetid-challenge-v1\0%s\0' "$1"
    printf '%b' "$(sed 's/../\\x&/g' <<<"$2")"
}

# verify_signature DIR ALG PURPOSE NONCE_HEX: DIR/sig.bin is the signature
# (algorithm ALG) of the first certificate's key in DIR/chain.pem over the
# challenge, by the openssl command line alone; and it does not verify for
# another purpose (the check can fail).
verify_signature() {
    local d=$1 alg=$2 purpose=$3 nonce=$4 opts=()
    [ "$alg" != rsassaPss ] || opts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32)
    openssl x509 -in "$d/chain.pem" -noout -pubkey >"$d/pub.pem" || return 1
    challenge_message "$purpose" "$nonce" >"$d/msg.bin"
    openssl dgst -sha256 "${opts[@]}" -verify "$d/pub.pem" -signature "$d/sig.bin" "$d/msg.bin" >/dev/null ||
        { say "the $alg signature in $d does not verify"; return 1; }
    challenge_message "$purpose.other" "$nonce" >"$d/other.bin"
    if openssl dgst -sha256 "${opts[@]}" -verify "$d/pub.pem" -signature "$d/sig.bin" "$d/other.bin" \
        >/dev/null 2>&1; then
        say "the signature in $d verifies for another purpose too"
        return 1
    fi
}

# hex_to_decimal_bytes HEX: the bytes as busctl takes an "ay" (decimal, spaced).
hex_to_decimal_bytes() {
    local h
    for h in $(sed 's/../& /g' <<<"$1"); do printf '%d ' "$((16#$h))"; done
}

# guard: a deadline inside the guest, before the host's bound (payload
# "deadline", seconds from power-on): a check that hangs still ends in a
# verdict with the journal, not in QEMU being killed with nothing but the
# console.
guard() {
    local limit left
    limit=$(cat "$P/deadline" 2>/dev/null) || return 0
    left=$((limit - $(cut -d. -f1 /proc/uptime) - 25))
    [ "$left" -gt 0 ] || left=1
    (
        sleep "$left"
        fail "no verdict ${left}s into the checks (the host kills the guest ${limit}s after power-on)"
    ) &
    GUARD_PID=$!
}

# dbus_roles: every member of org.fleetid.Agent1 on the system bus, through
# the shipped bus policy and the access.conf the install phase wrote, as the
# users it grants roles to (and root, which is admin).
dbus_roles() {
    local d=/run/systest-dbus nonce alg out uid_app uid_reader f
    uid_app=$(id -u "$APP")
    uid_reader=$(id -u "$READER")
    install -d -m 0755 "$d"

    say "D-Bus: the members served are those of dbus/org.fleetid.Agent1.xml; GetAll as a reader ($READER)"
    busctl --system introspect --xml-interface org.fleetid.Agent1 /org/fleetid/Agent1 >"$d/introspect.xml" ||
        fail "cannot introspect /org/fleetid/Agent1"
    as "$READER" busctl --system --json=short call org.fleetid.Agent1 /org/fleetid/Agent1 \
        org.freedesktop.DBus.Properties GetAll s org.fleetid.Agent1 >"$d/getall.json" 2>&1 ||
        fail "$READER cannot read the properties (GetAll): $(cat "$d/getall.json")"
    python3 "$P/introspect-compare.py" "$d/introspect.xml" "$P/org.fleetid.Agent1.xml" org.fleetid.Agent1 ||
        fail "the live introspection of org.fleetid.Agent1 differs from dbus/org.fleetid.Agent1.xml"
    python3 - "$P/org.fleetid.Agent1.xml" "$d/getall.json" "$(serial_of)" <<'PY' ||
import json, sys
import xml.etree.ElementTree as ET

want = {p.get("name") for i in ET.parse(sys.argv[1]).getroot().iter("interface")
        if i.get("name") == "org.fleetid.Agent1" for p in i.iter("property")}
props = {k: v["data"] for k, v in json.load(open(sys.argv[2]))["data"][0].items()}
if not want or set(props) != want:
    sys.exit("GetAll: %s, not %s" % (sorted(props), sorted(want)))
if (props["State"] != "enrolled" or props["Enrolled"] is not True or not props["Version"]
        or props["Serial"].lstrip("0").upper() != sys.argv[3].lstrip("0").upper()
        or not 0 < props["NotBefore"] < props["RenewDue"] < props["NotAfter"] or props["LastError"] != ""):
    sys.exit("GetAll: %s" % props)
print("SYSTEST: GetAll: the %d properties of the file; State %s, Serial %s, Version %s"
      % (len(want), props["State"], props["Serial"], props["Version"]))
PY
        fail "GetAll of org.fleetid.Agent1 as $READER"
    as "$READER" fleetidctl chain >"$d/reader-chain.pem" 2>"$d/err" || fail "$READER: fleetidctl chain: $(cat "$d/err")"
    [ "$(openssl x509 -in "$d/reader-chain.pem" -noout -fingerprint -sha256)" = \
        "$(openssl x509 -in "$STATE/operational.pem" -noout -fingerprint -sha256)" ] ||
        fail "fleetidctl chain as $READER does not print the operational certificate"
    nonce=$(openssl rand -hex 32)
    denied "$READER" "sign a challenge" fleetidctl sign-challenge --nonce "$nonce" --purpose systest.login

    say "D-Bus: $APP (role attest by its group) has a nonce signed (fleetidctl sign-challenge), verified with openssl"
    install -d -m 0700 -o "$APP" -g "$(id -g "$APP")" "$d/app"
    as "$APP" fleetidctl sign-challenge --nonce "$nonce" --purpose systest.login --out "$d/app/chain.pem" \
        >"$d/app/sign.out" 2>"$d/app/err" || fail "$APP: fleetidctl sign-challenge: $(cat "$d/app/err")"
    alg=$(sed -n 's/^algorithm: //p' "$d/app/sign.out")
    sed -n 's/^signature: //p' "$d/app/sign.out" | openssl base64 -d -A >"$d/app/sig.bin"
    [ -s "$d/app/sig.bin" ] || fail "no signature from fleetidctl sign-challenge: $(cat "$d/app/sign.out")"
    openssl verify -CAfile "$LAB/pki/est-ca.pem" -untrusted "$d/app/chain.pem" "$d/app/chain.pem" >/dev/null ||
        fail "the chain SignChallenge returned does not lead to the EST CA"
    [ "$(openssl x509 -in "$d/app/chain.pem" -noout -fingerprint -sha256)" = \
        "$(openssl x509 -in "$STATE/operational.pem" -noout -fingerprint -sha256)" ] ||
        fail "SignChallenge's chain does not begin with the operational certificate"
    verify_signature "$d/app" "$alg" systest.login "$nonce" || fail "SignChallenge as $APP: the signature"
    say "  $alg signature by the operational key verified, and refused for another purpose"
    out=$(as "$APP" fleetidctl sign-challenge --nonce "$nonce" --purpose systest.login --birth 2>&1) &&
        fail "$APP had the birth key sign without the role attest-birth"
    grep -q "AccessDenied: SignChallenge with identity=birth needs the role 'attest-birth'" <<<"$out" ||
        fail "$APP, SignChallenge with identity=birth: $out"

    say "D-Bus: root has the birth key sign (busctl SignChallenge, identity=birth), verified to the manufacturer CA"
    install -d -m 0700 "$d/birth"
    nonce=$(openssl rand -hex 16)
    # shellcheck disable=SC2046 # one word per byte
    busctl --system --json=short call "${AGENT[@]}" SignChallenge 'aysa{sv}' 16 $(hex_to_decimal_bytes "$nonce") \
        systest.birth 1 identity s birth >"$d/birth/answer.json" 2>&1 ||
        fail "root: SignChallenge with identity=birth: $(cat "$d/birth/answer.json")"
    alg=$(python3 - "$d/birth" <<'PY'
import base64, json, sys
d = sys.argv[1]
sig, alg, chain = json.load(open(d + "/answer.json"))["data"]
open(d + "/sig.bin", "wb").write(bytes(sig))
with open(d + "/chain.pem", "w") as f:
    for der in chain:
        b = base64.b64encode(bytes(der)).decode()
        f.write("-----BEGIN CERTIFICATE-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
                + "\n-----END CERTIFICATE-----\n")
print(alg)
PY
    ) || fail "SignChallenge's answer does not parse: $(cat "$d/birth/answer.json")"
    openssl verify -CAfile "$LAB/pki/mfg-ca.pem" -untrusted "$d/birth/chain.pem" "$d/birth/chain.pem" >/dev/null ||
        fail "the birth chain SignChallenge returned does not lead to the manufacturer CA"
    [ "$(openssl x509 -in "$d/birth/chain.pem" -noout -pubkey)" = "$(tpm_pubkey "$BIRTH_HANDLE")" ] ||
        fail "the birth certificate SignChallenge returned is not for the TPM's key at $BIRTH_HANDLE"
    verify_signature "$d/birth" "$alg" systest.birth "$nonce" || fail "SignChallenge with identity=birth: the signature"

    say "D-Bus: Renew, FactoryReset refused to $APP (not admin)"
    denied "$APP" "call Renew" busctl --system call "${AGENT[@]}" Renew
    denied "$APP" "call FactoryReset" busctl --system call "${AGENT[@]}" FactoryReset 'a{sv}' 0
    [ ! -e "$STATE/factory-reset" ] || fail "a factory reset marker after a refused FactoryReset"
    status_is enrolled || fail "state after the refused calls: $(status_get state)"

    say "D-Bus: a sensor's certificate through the broker ($BROKER: fleetidctl sensor request; the EST server as an RA)"
    openssl x509 -in "$STATE/operational.pem" -noout -ext extendedKeyUsage |
        grep -qE "CMC Registration Authority|1\.3\.6\.1\.5\.5\.7\.3\.28" || fail "the gateway's certificate lacks id-kp-cmcRA"
    local s=$d/sensor
    install -d -m 0700 -o "$BROKER" -g "$(id -g "$BROKER")" "$s"
    install -m 0600 -o "$BROKER" "$LAB/pki/sensor-birth-01.key" "$LAB/pki/sensor-birth-01.pem" "$s/"
    as "$BROKER" python3 "$LAB/sensor-client.py" make-csr --id temp-01 --key "$s/temp-01.key" --csr "$s/temp-01.csr" ||
        fail "sensor-client.py make-csr failed"
    out=$(as "$BROKER" busctl --system call "${AGENT[@]}" GetSensorChallenge s temp-01 2>&1) ||
        fail "$BROKER: GetSensorChallenge: $out"
    read -r -a f <<<"$out"
    [ "${f[0]}" = ay ] && [ "${f[1]}" = 32 ] && [ "${#f[@]}" = 34 ] || fail "GetSensorChallenge: $out"
    printf '%b' "$(printf '\\x%02x' "${f[@]:2}")" >"$s/temp-01.nonce"
    as "$BROKER" python3 "$LAB/sensor-client.py" evidence --nonce "$s/temp-01.nonce" --csr "$s/temp-01.csr" \
        --birth-key "$s/sensor-birth-01.key" --birth-cert "$s/sensor-birth-01.pem" --out "$s/temp-01.ev" \
        2>"$s/evidence.err" || fail "sensor-client.py evidence failed: $(cat "$s/evidence.err")"
    as "$BROKER" timeout 150 fleetidctl --timeout 120 sensor request --id temp-01 --csr "$s/temp-01.csr" \
        --evidence "$s/temp-01.ev" --out "$s/temp-01.chain" >"$s/request.out" 2>&1 ||
        fail "$BROKER: fleetidctl sensor request: $(cat "$s/request.out")"
    openssl verify -CAfile "$LAB/pki/est-ca.pem" -untrusted "$s/temp-01.chain" "$s/temp-01.chain" >/dev/null ||
        fail "the sensor's chain does not lead to the EST CA"
    [ "$(openssl x509 -in "$s/temp-01.chain" -noout -pubkey)" = "$(openssl pkey -in "$s/temp-01.key" -pubout)" ] ||
        fail "the sensor's certificate does not hold its key"
    out=$(openssl x509 -in "$s/temp-01.chain" -noout -subject -nameopt RFC2253)
    [ "$out" = "subject=CN=temp-01" ] || fail "the sensor's certificate: $out"
    grep -qx "state=issued" "$STATE/sensors/temp-01" || fail "no issued record for temp-01 in $STATE/sensors"
    as "$BROKER" fleetidctl sensor list >"$s/list.out" 2>&1 || fail "$BROKER: fleetidctl sensor list: $(cat "$s/list.out")"
    grep -qE "^temp-01 +issued " "$s/list.out" || fail "fleetidctl sensor list: $(cat "$s/list.out")"
    denied "$APP" "list the sensors" busctl --system call "${AGENT[@]}" ListSensors
    as "$BROKER" fleetidctl sensor forget temp-01 >/dev/null || fail "$BROKER: fleetidctl sensor forget failed"
    [ ! -e "$STATE/sensors/temp-01" ] || fail "the record of temp-01 is still there after ForgetSensor"
    out=$(as "$BROKER" fleetidctl sensor forget temp-01 2>&1) && fail "ForgetSensor of a forgotten sensor succeeded"
    grep -q "NoSuchSensor" <<<"$out" || fail "ForgetSensor of a forgotten sensor: $out"
    [ "$(est_count op=simpleenroll label=sensors auth=tls-ra status=200)" = 1 ] ||
        fail "not exactly one RA enrollment at the label sensors in the EST log"
    [ "$(est_count op=simplereenroll)" = 0 ] || fail "a renewal was sent (after a refused Renew?)"

    # Each refusal is in the journal, with the uid and the role (one wait: the
    # journal takes the last of them a moment later).
    wait_until 10 "the refusals in the journal" refusal_logged "$uid_app" FactoryReset || fail "the refusals are not logged"
    refusal_logged "$uid_app" Renew || fail "no refusal of Renew to uid $uid_app in the journal"
    refusal_logged "$uid_app" "SignChallenge with identity=birth" ||
        fail "no refusal of SignChallenge with identity=birth to uid $uid_app in the journal"
    refusal_logged "$uid_reader" SignChallenge || fail "no refusal of SignChallenge to uid $uid_reader in the journal"
}

phase_install() {
    [ -c /dev/tpmrm0 ] || fail "the guest kernel offers no /dev/tpmrm0"
    say "apt install the .deb"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$P"/fleetid_*.deb ||
        fail "apt-get install of the .deb failed"
    id fleetid >/dev/null || fail "the package created no user fleetid"

    say "lab EST server on 127.0.0.1:$EST_PORT (a registration authority for sensor CSRs at the label sensors)"
    mkdir -p "$LAB"
    cp -a "$P/lab/." "$LAB/"
    # ra_eku: the gateway's certificate carries id-kp-cmcRA, so that it may
    # enroll its sensors (tests/lab/README.md).
    echo '{"ra_eku": true}' >"$LAB/control.json"
    cat >/etc/systemd/system/fleetid-lab-est.service <<UNIT
[Unit]
Description=fleetid lab EST server (system test)
Before=fleetidd.service
[Service]
ExecStart=/usr/bin/python3 $LAB/est_server.py --pki $LAB/pki --port $EST_PORT --log $EST_LOG --control $LAB/control.json --cert-lifetime 3600 --label sensors
[Install]
WantedBy=multi-user.target
UNIT
    # The second owner's, for the factory reset in the recover phase (started there).
    cat >/etc/systemd/system/fleetid-lab-est-b.service <<UNIT
[Unit]
Description=fleetid lab EST server of a second owner (system test)
[Service]
ExecStart=/usr/bin/python3 $LAB/est_server.py --pki $LAB/pki-b --port $EST_B_PORT --log $EST_B_LOG --cert-lifetime 3600
UNIT
    systemctl daemon-reload
    systemctl enable --now fleetid-lab-est.service || fail "cannot start the lab EST server"
    wait_until 120 "the lab EST server" grep -q '"event": "listening"' "$EST_LOG" ||
        fail "the lab EST server did not come up"

    say "factory provisioning over $TCTI"
    local prov=(fleetid-provision --tcti "$TCTI")
    "${prov[@]}" create-key || fail "fleetid-provision create-key failed"
    "${prov[@]}" csr --serial "$SERIAL" --out /root/birth-csr.pem || fail "fleetid-provision csr failed"
    python3 "$LAB/pki.py" sign-birth "$LAB/pki" /root/birth-csr.pem /root/idevid.pem >/dev/null ||
        fail "the lab manufacturer CA refused the birth CSR"
    "${prov[@]}" install-cert --cert /root/idevid.pem --ca "$LAB/pki/mfg-ca.pem" --lock ||
        fail "fleetid-provision install-cert failed"
    "${prov[@]}" status || fail "fleetid-provision status failed"

    install -m 0644 "$LAB/pki/est-ca.pem" /etc/fleetid/est-trust-anchors.pem
    # The sensors' maker: the lab manufacturer CA signs their birth certificates.
    install -m 0644 "$LAB/pki/mfg-ca.pem" /etc/fleetid/sensor-mfg-ca.pem
    cat >/etc/fleetid/fleetid.conf <<CONF
tpm: { tcti = "$TCTI"; };
est: { url = "https://localhost:$EST_PORT/.well-known/est"; trust_anchors = "/etc/fleetid/est-trust-anchors.pem"; };
retry: { initial = 2; max = 10; };
broker: { sensor_manufacturer_ca = "/etc/fleetid/sensor-mfg-ca.pem"; est_label = "sensors"; };
CONF

    say "test users and their roles in /etc/fleetid/access.conf (the shipped file, grants added)"
    groupadd -r fleetid-readers && groupadd -r fleetid-attest || fail "groupadd failed"
    useradd -r -M -s /usr/sbin/nologin -G fleetid-readers "$READER" &&
        useradd -r -M -s /usr/sbin/nologin -G fleetid-attest "$APP" &&
        useradd -r -M -s /usr/sbin/nologin "$BROKER" || fail "useradd failed"
    [ "$(stat -c '%U:%G %a' /etc/fleetid/access.conf)" = "root:root 644" ] ||
        fail "the package's /etc/fleetid/access.conf: $(stat -c '%U:%G %a' /etc/fleetid/access.conf 2>&1)"
    grep -qx 'grants = ( );' /etc/fleetid/access.conf || fail "the shipped access.conf grants something"
    { grep -vx 'grants = ( );' /etc/fleetid/access.conf
        cat <<ACCESS
grants = (
        { group = "fleetid-readers"; roles = [ "reader" ]; },
        { group = "fleetid-attest"; roles = [ "attest" ]; },
        { user = "$BROKER"; roles = [ "sensor-broker" ]; }
);
ACCESS
    } >/etc/fleetid/access.conf.new && chmod 0644 /etc/fleetid/access.conf.new &&
        mv /etc/fleetid/access.conf.new /etc/fleetid/access.conf ||
        fail "cannot write /etc/fleetid/access.conf"

    say "systemd-analyze verify"
    local unit exposure
    unit=$(systemctl show -P FragmentPath fleetidd.service)
    # --man=no: the guest, like most gateways, has no man-db to open man: links.
    systemd-analyze verify --man=no "$unit" "$(systemctl show -P FragmentPath fleetid-wait-enrolled.service)" \
        >/root/verify.out 2>&1 ||
        { cat /root/verify.out; fail "systemd-analyze verify failed"; }
    [ ! -s /root/verify.out ] || { cat /root/verify.out; fail "systemd-analyze verify is not clean"; }

    say "systemd-analyze security"
    systemd-analyze security --no-pager fleetidd.service >/root/security.out 2>&1
    exposure=$(sed -n 's/.*Overall exposure level for fleetidd.service: \([0-9.]*\).*/\1/p' /root/security.out)
    [ -n "$exposure" ] || { cat /root/security.out; fail "no exposure level from systemd-analyze security"; }
    echo "SYSTEST-EXPOSURE: $exposure"
    grep -v '^  ✓' /root/security.out | head -n 40
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 2.0 else 1)" "$exposure" ||
        fail "systemd-analyze security: exposure $exposure is above 2.0"

    journalctl --list-catalog | grep -q "^$MSG_ENROLLED " ||
        fail "the fleetid catalog is not in journalctl --list-catalog"

    say "systemctl start fleetidd"
    # READY=1 comes once the configuration is loaded, not after enrollment:
    # the start returns before it; fleetid-wait-enrolled.service is the wait.
    timeout 180 systemctl start fleetidd.service || fail "systemctl start fleetidd failed (state: $(status_get state))"
    systemctl -q is-active fleetidd.service || fail "fleetidd.service is not active"
    systemctl show -P StatusText fleetidd.service | grep -q . || fail "fleetidd.service has no STATUS= text"
    say "systemctl start fleetid-wait-enrolled"
    timeout 330 systemctl start fleetid-wait-enrolled.service ||
        fail "fleetid-wait-enrolled.service failed (state: $(status_get state))"
    systemctl -q is-active fleetid-wait-enrolled.service || fail "fleetid-wait-enrolled.service is not active"
    say "fleetidd status: $(systemctl show -P StatusText fleetidd.service)"
    systemctl show -P StatusText fleetidd.service | grep -q "^enrolled; renewal due " ||
        fail "STATUS= after enrollment: $(systemctl show -P StatusText fleetidd.service)"
    local pid user
    pid=$(systemctl show -P MainPID fleetidd.service)
    user=$(stat -c %U "/proc/$pid")
    [ "$user" = fleetid ] || fail "fleetidd runs as '$user', not fleetid"
    say "fleetidd (pid $pid) runs as $user"
    status_is enrolled || fail "state is '$(status_get state)', not enrolled"
    [ "$(est_count op=simpleenroll status=200)" = 1 ] || fail "not exactly one /simpleenroll in the EST log"
    identity_intact || fail "the enrolled identity is not intact"
    # In the default mode no other way to the TPM runs in this guest
    # (tpm2-abrmd masked, no swtpm): the key was made and used through the
    # kernel resource manager.
    grep -q "tcti = \"$TCTI\"" /etc/fleetid/fleetid.conf || fail "the TCTI is not $TCTI"
    [ "$TCTI_MODE" = tabrmd ] || ! systemctl -q is-active tpm2-abrmd.service ||
        fail "tpm2-abrmd runs in the guest"
    fleetidctl status || fail "fleetidctl status failed"
    fleetidctl check || fail "fleetidctl check is not OK"

    say "D-Bus: org.fleetid.Agent1 on the system bus, with the shipped policy"
    local i out
    for ((i = 0; i < 60; i++)); do
        busctl --system status org.fleetid.Agent1 >/dev/null 2>&1 && break
        sleep 0.5
    done
    busctl --system status org.fleetid.Agent1 >/root/busctl.out 2>&1 ||
        { cat /root/busctl.out; fail "nobody owns org.fleetid.Agent1 on the system bus"; }
    grep -Eq "^E?UID=$(id -u fleetid)( |\$)" /root/busctl.out ||
        { cat /root/busctl.out; fail "org.fleetid.Agent1 is not owned by user fleetid"; }
    out=$(busctl --system get-property org.fleetid.Agent1 /org/fleetid/Agent1 org.fleetid.Agent1 State) ||
        fail "root cannot read the State property"
    [ "$out" = 's "enrolled"' ] || fail "State over D-Bus: $out"
    out=$(busctl --system call org.fleetid.Agent1 /org/fleetid/Agent1 org.fleetid.Agent1 GetCertificateChain) ||
        fail "root cannot call GetCertificateChain"
    grep -q '^aay [1-9]' <<<"$out" || fail "GetCertificateChain as root: ${out:0:80}"
    # An unprivileged user with no grant: the trust bundle only.
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
        busctl --system call org.fleetid.Agent1 /org/fleetid/Agent1 org.fleetid.Agent1 GetTrustBundle >/dev/null ||
        fail "user nobody cannot call GetTrustBundle"
    if out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
        busctl --system call org.fleetid.Agent1 /org/fleetid/Agent1 org.fleetid.Agent1 GetCertificateChain 2>&1); then
        fail "user nobody got the certificate chain without a grant"
    fi
    grep -qi "access denied\|AccessDenied" <<<"$out" || fail "user nobody, GetCertificateChain: $out"
    # The bus policy: nobody but fleetid may own the name.
    if setpriv --reuid=nobody --regid=nogroup --clear-groups \
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus RequestName su \
        org.fleetid.Agent1 0 >/dev/null 2>&1; then
        fail "user nobody may request the name org.fleetid.Agent1"
    fi

    dbus_roles

    say "journal: MESSAGE_ID and catalog"
    journalctl -u fleetidd.service MESSAGE_ID=$MSG_ENROLLED --no-pager | grep -q fleetidd ||
        fail "no MESSAGE_ID=$MSG_ENROLLED (enrolled) in the journal"
    journalctl -x -u fleetidd.service MESSAGE_ID=$MSG_ENROLLED --no-pager >/root/catalog.out
    grep -q "Operational certificate enrolled" /root/catalog.out &&
        grep -q "leaves the TPM" /root/catalog.out || { cat /root/catalog.out; fail "journalctl -x shows no catalog text"; }

    systemctl enable fleetidd.service || fail "systemctl enable fleetidd failed"
    finish PASS "installed, provisioned, enrolled over $TCTI as user fleetid; exposure $exposure"
}

phase_reboot() {
    say "after the reboot"
    wait_active 180 || fail "fleetidd.service did not become active after the reboot"
    timeout 200 fleetidctl wait-enrolled --timeout 180 || fail "not enrolled after the reboot (state: $(status_get state))"
    status_is enrolled || fail "state after the reboot is '$(status_get state)'"
    identity_intact || fail "the identity did not survive the reboot"
    [ "$(est_count op=simpleenroll client_kind=birth)" = 1 ] || fail "a second /simpleenroll after the reboot"
    [ "$(est_count op=simplereenroll)" = 0 ] || fail "a renewal after the reboot, none was due"
    fleetidctl check || fail "fleetidctl check is not OK after the reboot"

    say "a renewal, held by the EST server, then the power cut"
    serial_of >/root/serial-before-cut
    echo '{"faults": [{"match": "simplereenroll", "delay": 120}]}' >"$LAB/control.json.tmp"
    mv "$LAB/control.json.tmp" "$LAB/control.json"
    fleetidctl renew >/dev/null 2>&1 &
    wait_until 60 "state renewing" status_is renewing || fail "fleetidctl renew did not start a renewal"
    sync
    sleep 3
    echo "SYSTEST-CUT-POWER"
    sleep 300
    fail "still running 300 s after asking for the power cut"
}

# reset_and_clear: a factory reset to a second owner, then TPM2_Clear
# (docs/factory-reset.md, docs/provisioning.md), on the kernel's resource
# manager and with systemd running fleetidd.
reset_and_clear() {
    local pki_b=$LAB/pki-b requests_a enrolls_b inv srk ek out
    say "factory reset: fleetidctl factory-reset --owner (the second owner's EST server and CA)"
    wait_until 120 "the second owner's EST server" grep -q '"event": "listening"' "$EST_B_LOG" ||
        fail "the second owner's EST server did not come up"
    install -m 0644 "$pki_b/est-ca.pem" /etc/fleetid/owner-b-est-ca.pem
    cat >/root/owner-b.conf <<CONF
est: {
        url = "https://localhost:$EST_B_PORT/.well-known/est";
        trust_anchors = "/etc/fleetid/owner-b-est-ca.pem";
};
CONF
    tpm2_readpublic -T "$TCTI" -c "$BIRTH_HANDLE" -o /root/birth-before.pub >/dev/null ||
        fail "tpm2_readpublic of the birth key failed"
    requests_a=$(est_count)
    timeout 300 fleetidctl factory-reset --owner /root/owner-b.conf --yes --timeout 240 >/root/reset.out 2>&1 ||
        { cat /root/reset.out; fail "fleetidctl factory-reset failed"; }
    cat /root/reset.out
    grep -q "^factory reset done: enrolled with https://localhost:$EST_B_PORT/" /root/reset.out ||
        fail "fleetidctl factory-reset did not say it enrolled with the second owner"
    [ ! -e "$STATE/factory-reset" ] || fail "the reset marker is still there: $(cat "$STATE/factory-reset")"
    cmp -s /root/owner-b.conf /etc/fleetid/fleetid.conf.d/owner.conf || fail "owner.conf is not the owner file given"
    identity_intact "$pki_b/est-ca.pem" || fail "the identity after the factory reset"
    ! openssl verify -CAfile "$LAB/pki/est-ca.pem" "$STATE/operational.pem" >/dev/null 2>&1 ||
        fail "the certificate after the factory reset is from the first owner's CA"
    [ "$(est_count)" = "$requests_a" ] || fail "requests to the first owner's EST server after the factory reset"
    [ "$(est_count_in "$EST_B_LOG" op=simpleenroll client_kind=birth status=200)" = 1 ] ||
        fail "not exactly one /simpleenroll with the birth certificate at the second owner"
    journalctl -b MESSAGE_ID="$MSG_FACTORY_RESET" -o cat --no-pager |
        grep -q "new owner https://localhost:$EST_B_PORT/.*; wiped; enrolling with the new owner next" ||
        fail "no factory reset record (MESSAGE_ID=$MSG_FACTORY_RESET) in the journal"
    journalctl -b MESSAGE_ID="$MSG_FACTORY_RESET_ENROLLED" -o cat --no-pager |
        grep -q "finished: enrolled with the new owner https://localhost:$EST_B_PORT/" ||
        fail "no record of the enrollment after the reset (MESSAGE_ID=$MSG_FACTORY_RESET_ENROLLED) in the journal"

    say "TPM2_Clear: fleetidd stopped, tpm2_clear over $TCTI, fleetidd started again"
    srk=$(sed -n 's/^srk=//p' "$STATE/tpm-fingerprint")
    ek=$(sed -n 's/^ek=//p' "$STATE/tpm-fingerprint")
    [ -n "$srk" ] && [ -n "$ek" ] || fail "no tpm-fingerprint after the enrollment with the second owner"
    enrolls_b=$(est_count_in "$EST_B_LOG" op=simpleenroll client_kind=birth status=200)
    systemctl stop fleetidd.service || fail "systemctl stop fleetidd failed"
    tpm2_clear -T "$TCTI" -c l || fail "tpm2_clear failed"
    out=$(tpm2_getcap -T "$TCTI" handles-persistent) || fail "tpm2_getcap failed after the clear"
    ! grep -qiE "$BIRTH_HANDLE|$SRK_HANDLE|0x8102000[23]" <<<"$out" || fail "keys left after tpm2_clear: $out"
    systemctl start fleetidd.service || fail "systemctl start fleetidd after the clear failed"
    inv=$(systemctl show -P InvocationID fleetidd.service)
    timeout 200 fleetidctl wait-enrolled --timeout 180 ||
        fail "not enrolled again after the clear (state: $(status_get state), $(status_get last_error))"
    journalctl -b _SYSTEMD_INVOCATION_ID="$inv" -o cat --no-pager >/root/clear.journal
    grep -qE "^state: [a-z-]+ -> tpm-cleared$" /root/clear.journal || fail "fleetidd did not go through tpm-cleared"
    grep -qx "state: tpm-cleared -> enrolling" /root/clear.journal || fail "fleetidd did not enroll from tpm-cleared"
    grep -E "^state: |TPM was cleared|birth key was gone" /root/clear.journal | sed 's/^/SYSTEST:   /'
    journalctl -b _SYSTEMD_INVOCATION_ID="$inv" MESSAGE_ID="$MSG_TPM_CLEARED" -o cat --no-pager |
        grep -q "the TPM was cleared (TPM2_Clear)" || fail "no MESSAGE_ID=$MSG_TPM_CLEARED (TPM cleared) in the journal"
    journalctl -b _SYSTEMD_INVOCATION_ID="$inv" MESSAGE_ID="$MSG_BIRTH_KEY_RECREATED" -o cat --no-pager |
        grep -q "was made again from its template (fleetid.s: the TCG IDevID template plus noDA)" ||
        fail "no MESSAGE_ID=$MSG_BIRTH_KEY_RECREATED (birth key made again) in the journal"
    tpm2_readpublic -T "$TCTI" -c "$BIRTH_HANDLE" -o /root/birth-after.pub >/dev/null ||
        fail "no birth key at $BIRTH_HANDLE after the clear"
    cmp -s /root/birth-before.pub /root/birth-after.pub ||
        fail "the birth key made again is not bit-identical to the one before the clear (tpm2_readpublic)"
    tpm2_getcap -T "$TCTI" handles-persistent | grep -qi "$SRK_HANDLE" || fail "no SRK at $SRK_HANDLE after the clear"
    [ "$(sed -n 's/^srk=//p' "$STATE/tpm-fingerprint")" != "$srk" ] || fail "the recorded SRK did not change with the clear"
    [ "$(sed -n 's/^ek=//p' "$STATE/tpm-fingerprint")" = "$ek" ] || fail "the recorded EK changed with the clear"
    identity_intact "$pki_b/est-ca.pem" || fail "the identity after the clear"
    [ "$(est_count_in "$EST_B_LOG" op=simpleenroll client_kind=birth status=200)" = $((enrolls_b + 1)) ] ||
        fail "not one more /simpleenroll with the birth certificate at the second owner after the clear"
    [ "$(est_count)" = "$requests_a" ] || fail "requests to the first owner's EST server after the clear"
    status_is enrolled || fail "state after the clear: $(status_get state)"
    fleetidctl check || fail "fleetidctl check is not OK after the clear"
}

phase_recover() {
    say "after the power cut during a renewal"
    rm -f "$LAB/control.json"
    # Up by the time of the factory reset (python under TCG starts slowly).
    systemctl start --no-block fleetid-lab-est-b.service || fail "cannot start the second owner's EST server"
    wait_active 180 || fail "fleetidd.service did not become active after the power cut"
    timeout 200 fleetidctl wait-enrolled --timeout 180 || fail "not enrolled after the power cut (state: $(status_get state))"
    identity_intact || fail "the identity is not intact after the power cut"
    [ "$(est_count op=simpleenroll client_kind=birth)" = 1 ] || fail "fell back to a /simpleenroll with the birth identity"
    fleetidctl check || fail "fleetidctl check is not OK after the power cut"
    say "serial before the cut $(cat /root/serial-before-cut), now $(serial_of)"
    local before=$(est_count op=simplereenroll status=200) out job serial monitor
    # As root through the bus: a Renew job; CertificateChanged when it is stored.
    busctl --system monitor --match "type='signal',interface='org.fleetid.Agent1',member='CertificateChanged'" \
        >/root/monitor.out 2>&1 &
    monitor=$!
    wait_until 30 "busctl monitor" grep -q "Monitoring bus message stream" /root/monitor.out ||
        fail "busctl monitor did not start: $(cat /root/monitor.out)"
    out=$(timeout 180 fleetidctl renew) || fail "fleetidctl renew after the power cut failed: $out"
    echo "$out"
    [ "$(est_count op=simplereenroll status=200)" -gt "$before" ] || fail "no /simplereenroll for fleetidctl renew"
    identity_intact || fail "the identity is not intact after the renewal"
    job=$(sed -n 's|^renewal requested from fleetidd (job \(/org/fleetid/Agent1/job/[0-9]*\)).*|\1|p' <<<"$out")
    [ -n "$job" ] || fail "fleetidctl renew did not go through Renew() on the bus: $out"
    out=$(busctl --system get-property org.fleetid.Agent1 "$job" org.fleetid.Agent1.Job State) ||
        fail "root cannot read the State of $job"
    [ "$out" = 's "done"' ] || fail "the renew job $job: State $out"
    busctl --system call org.fleetid.Agent1 "$job" org.fleetid.Agent1.Job GetResult | grep -q '^aay [1-9]' ||
        fail "the renew job $job: GetResult holds no chain"
    denied "$APP" "read root's job" busctl --system get-property org.fleetid.Agent1 "$job" org.fleetid.Agent1.Job State
    serial=$(busctl --system get-property "${AGENT[@]}" Serial) || fail "root cannot read Serial"
    serial=${serial#s }
    wait_until 10 "CertificateChanged $serial" grep -qF "$serial" /root/monitor.out ||
        fail "no CertificateChanged with the new serial $serial: $(cat /root/monitor.out)"
    kill "$monitor"
    say "renew job $job done; CertificateChanged $serial"
    journalctl -b -u fleetidd.service MESSAGE_ID=$MSG_RENEWED --no-pager | grep -q fleetidd ||
        fail "no MESSAGE_ID=$MSG_RENEWED (renewed) in the journal"

    say "the clock jumps forward past the renewal due time"
    local first due true_now renewed_sum requests
    first=$(serial_of)
    due=$(status_get renew_due)
    [ -n "$due" ] || fail "no renew_due in the status"
    true_now=$(date +%s)
    before=$(est_count op=simplereenroll status=200)
    date -s "@$((due + 30))" >/dev/null || fail "cannot set the clock"
    wait_until 90 "a renewal after the jump" eval '[ "$(est_count op=simplereenroll status=200)" -gt "$before" ]' ||
        fail "no renewal after the clock passed the due time"
    wait_until 30 "the renewed certificate" eval '[ "$(serial_of)" != "$first" ]' ||
        fail "the renewed certificate was not stored"
    wait_until 30 "state enrolled" status_is enrolled || fail "not enrolled again after the jump"
    systemctl -q is-active fleetidd.service || fail "fleetidd is not active after the forward jump"
    renewed_sum=$(sha256sum <"$STATE/operational.pem")

    say "the clock jumps back: the fresh certificate's notBefore is in the future"
    date -s "@$((true_now + 5))" >/dev/null || fail "cannot set the clock back"
    requests=$(est_count)
    sleep 5
    [ "$(est_count)" = "$requests" ] || fail "EST requests after the backward jump"
    status_is enrolled || fail "state after the backward jump: $(status_get state)"
    [ "$(sha256sum <"$STATE/operational.pem")" = "$renewed_sum" ] || fail "operational.pem changed after the backward jump"
    systemctl -q is-active fleetidd.service || fail "fleetidd is not active after the backward jump"

    say "a start with the clock in 1970 (a gateway without RTC battery): fleetidd waits for the clock"
    local up0 up1 nb now
    systemctl stop fleetidd.service || fail "cannot stop fleetidd"
    requests=$(est_count)
    true_now=$(date +%s)
    up0=$(cut -d. -f1 /proc/uptime)
    date -s "@86400" >/dev/null || fail "cannot set the clock to 1970"
    systemctl start fleetidd.service || fail "fleetidd did not start with the clock in 1970"
    wait_until 60 "state waiting-clock" status_is waiting-clock ||
        fail "state with the clock in 1970: $(status_get state)"
    [ "$(est_count)" = "$requests" ] || fail "EST requests with the clock in 1970"
    # Back to the time before, or, if that lies before the stored certificate's
    # notBefore (the backward jump above put it there), a minute after it: a
    # fresh start rightly distrusts a clock behind the certificate it holds.
    up1=$(cut -d. -f1 /proc/uptime)
    nb=$(date -d "$(openssl x509 -in "$STATE/operational.pem" -noout -startdate | cut -d= -f2)" +%s)
    now=$((true_now + up1 - up0 + 1))
    [ "$now" -gt $((nb + 60)) ] || now=$((nb + 60))
    date -s "@$now" >/dev/null || fail "cannot set the clock back from 1970"
    wait_until 90 "state enrolled after the clock was set" status_is enrolled ||
        fail "not enrolled once the clock was set: $(status_get state)"
    [ "$(est_count)" = "$requests" ] || fail "EST requests after the clock was set: the identity was already there"
    [ "$(sha256sum <"$STATE/operational.pem")" = "$renewed_sum" ] || fail "operational.pem changed over the 1970 start"
    journalctl -b -u fleetidd.service --no-pager -o cat | grep -q "waiting-clock" ||
        fail "the journal does not show the wait for the clock"

    reset_and_clear

    say "dpkg --purge"
    dpkg --purge fleetid || fail "dpkg --purge fleetid failed"
    ! systemctl -q is-active fleetidd.service || fail "fleetidd still runs after the purge"
    ! dpkg-query -W fleetid >/dev/null 2>&1 || fail "dpkg still knows fleetid after the purge"
    local left
    left=$(ls -d /etc/fleetid/fleetid.conf /usr/sbin/fleetidd /usr/bin/fleetidctl /usr/sbin/fleetid-provision \
        /usr/libexec/fleetid/fleetid-worker /usr/libexec/fleetid \
        /usr/lib/systemd/system/fleetidd.service /lib/systemd/system/fleetidd.service \
        /usr/lib/systemd/system/fleetid-wait-enrolled.service /lib/systemd/system/fleetid-wait-enrolled.service 2>/dev/null)
    [ -z "$left" ] || fail "left after the purge: $left"
    # dpkg keeps what the administrator added: here the trust anchors. The
    # owner file fleetidctl factory-reset --owner installed in the drop-in
    # directory is fleetid's, and goes with it (postrm purge,
    # docs/packaging.md "Removal"); the directory, then empty, too.
    [ ! -e /etc/fleetid/fleetid.conf.d/owner.conf ] ||
        fail "the owner file fleetidctl factory-reset installed is left after the purge"
    left=$(ls -A /etc/fleetid 2>/dev/null | grep -vx 'est-trust-anchors.pem\|owner-b-est-ca.pem\|sensor-mfg-ca.pem')
    [ -z "$left" ] || fail "left in /etc/fleetid after the purge: $left"
    [ ! -e "$STATE" ] || say "note: $STATE is kept after the purge: $(ls -A "$STATE" | tr '\n' ' ')"
    finish PASS "identity intact after reboot and power cut; clock forward renews, back keeps, 1970 waits; factory reset to a second owner; TPM cleared, birth key made again, enrolled; purged"
}

# Only the chosen way to the TPM is there.
if [ "$TCTI_MODE" = tabrmd ]; then
    mkdir -p /etc/systemd/system/tpm2-abrmd.service.d
    printf '[Service]\nExecStart=\nExecStart=/usr/sbin/tpm2-abrmd --tcti=device:/dev/tpm0\n' \
        >/etc/systemd/system/tpm2-abrmd.service.d/tcti.conf
    systemctl daemon-reload
    systemctl start tpm2-abrmd.service || fail "cannot start tpm2-abrmd"
else
    systemctl mask --now tpm2-abrmd.service >/dev/null 2>&1
fi

# The agent's and the EST servers' journal, live on the console.
journalctl -f -n 0 -o short-monotonic -u fleetidd.service -u fleetid-lab-est.service \
    -u fleetid-lab-est-b.service &
[ -e "$P/shell" ] || guard

case $phase in
install) phase_install ;;
reboot) phase_reboot ;;
recover) phase_recover ;;
*) fail "unknown phase '$phase'" ;;
esac
