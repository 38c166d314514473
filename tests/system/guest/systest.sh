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
#             only fleetid owns the name), journal and catalog.
#   reboot    identity kept, no second /simpleenroll; then a renewal is
#             started and held by the EST server, and the host cuts the power
#             when the console says SYSTEST-CUT-POWER.
#   recover   after the power cut: identity intact and renewable; the clock
#             jumps forward past the due time (renewal) and back (the fresh
#             certificate is kept); dpkg --purge removes the package.
set -uo pipefail

P=/run/systest
LAB=/var/lib/fleetid-lab
STATE=/var/lib/fleetid
EST_PORT=8443
EST_LOG=$LAB/est.log
SERIAL=SN-SYSTEST-0001
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
phase=$(cat "$P/phase")

say() { echo "SYSTEST: [$phase] $*"; }

finish() {
    local verdict=$1
    shift
    if [ "$verdict" = FAIL ]; then
        echo "SYSTEST-JOURNAL-BEGIN"
        journalctl -b --no-pager -o short-monotonic -u fleetidd.service -u fleetid-lab-est.service | tail -n 150
        echo "SYSTEST: warnings and errors of this boot:"
        journalctl -b --no-pager -o short-monotonic -p warning | tail -n 50
        echo "SYSTEST-JOURNAL-END"
        [ -f "$EST_LOG" ] && { echo "SYSTEST: EST log:"; tail -n 20 "$EST_LOG"; }
    fi
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

# est_count [K=V...]: request lines of the lab EST server's log matching all K=V.
est_count() {
    python3 - "$EST_LOG" "$@" <<'PY'
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

# identity_intact: the operational certificate is valid now, chains to the EST
# CA, and its key is the TPM's object at one of the two operational key
# handles (operational.key_handle and spare_key_handle alternate at renewals).
identity_intact() {
    openssl verify -CAfile "$LAB/pki/est-ca.pem" "$STATE/operational.pem" >/dev/null ||
        { say "operational.pem does not verify against the EST CA"; return 1; }
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

phase_install() {
    [ -c /dev/tpmrm0 ] || fail "the guest kernel offers no /dev/tpmrm0"
    say "apt install the .deb"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$P"/fleetid_*.deb ||
        fail "apt-get install of the .deb failed"
    id fleetid >/dev/null || fail "the package created no user fleetid"

    say "lab EST server on 127.0.0.1:$EST_PORT"
    mkdir -p "$LAB"
    cp -a "$P/lab/." "$LAB/"
    cat >/etc/systemd/system/fleetid-lab-est.service <<UNIT
[Unit]
Description=fleetid lab EST server (system test)
Before=fleetidd.service
[Service]
ExecStart=/usr/bin/python3 $LAB/est_server.py --pki $LAB/pki --port $EST_PORT --log $EST_LOG --control $LAB/control.json --cert-lifetime 3600
[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable --now fleetid-lab-est.service || fail "cannot start the lab EST server"
    wait_until 60 "the lab EST server" grep -q '"event": "listening"' "$EST_LOG" ||
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
    cat >/etc/fleetid/fleetid.conf <<CONF
tpm: { tcti = "$TCTI"; };
est: { url = "https://localhost:$EST_PORT/.well-known/est"; trust_anchors = "/etc/fleetid/est-trust-anchors.pem"; };
retry: { initial = 2; max = 10; };
CONF

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
    [ "$(est_count op=simpleenroll)" = 1 ] || fail "a second /simpleenroll after the reboot"
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

phase_recover() {
    say "after the power cut during a renewal"
    rm -f "$LAB/control.json"
    wait_active 180 || fail "fleetidd.service did not become active after the power cut"
    timeout 200 fleetidctl wait-enrolled --timeout 180 || fail "not enrolled after the power cut (state: $(status_get state))"
    identity_intact || fail "the identity is not intact after the power cut"
    [ "$(est_count op=simpleenroll)" = 1 ] || fail "fell back to a /simpleenroll with the birth identity"
    fleetidctl check || fail "fleetidctl check is not OK after the power cut"
    say "serial before the cut $(cat /root/serial-before-cut), now $(serial_of)"
    local before=$(est_count op=simplereenroll status=200)
    timeout 180 fleetidctl renew || fail "fleetidctl renew after the power cut failed"
    [ "$(est_count op=simplereenroll status=200)" -gt "$before" ] || fail "no /simplereenroll for fleetidctl renew"
    identity_intact || fail "the identity is not intact after the renewal"
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

    say "dpkg --purge"
    dpkg --purge fleetid || fail "dpkg --purge fleetid failed"
    ! systemctl -q is-active fleetidd.service || fail "fleetidd still runs after the purge"
    ! dpkg-query -W fleetid >/dev/null 2>&1 || fail "dpkg still knows fleetid after the purge"
    local left
    left=$(ls -d /etc/fleetid/fleetid.conf /usr/sbin/fleetidd /usr/bin/fleetidctl /usr/sbin/fleetid-provision \
        /usr/lib/systemd/system/fleetidd.service /lib/systemd/system/fleetidd.service \
        /usr/lib/systemd/system/fleetid-wait-enrolled.service /lib/systemd/system/fleetid-wait-enrolled.service 2>/dev/null)
    [ -z "$left" ] || fail "left after the purge: $left"
    # dpkg keeps what the administrator added: here only the trust anchors.
    left=$(ls -A /etc/fleetid 2>/dev/null | grep -vx est-trust-anchors.pem)
    [ -z "$left" ] || fail "left in /etc/fleetid after the purge: $left"
    [ ! -e "$STATE" ] || say "note: $STATE is kept after the purge: $(ls -A "$STATE" | tr '\n' ' ')"
    finish PASS "identity intact after reboot and power cut; clock forward renews, back keeps; purged"
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

# The agent's and the EST server's journal, live on the console.
journalctl -f -n 0 -o short-monotonic -u fleetidd.service -u fleetid-lab-est.service &

case $phase in
install) phase_install ;;
reboot) phase_reboot ;;
recover) phase_recover ;;
*) fail "unknown phase '$phase'" ;;
esac
