#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-dbus-api.sh: org.fleetid.Agent1 as fleetidd serves it on a private
# dbus-daemon configured like the system bus (type system, EXTERNAL auth,
# the default policy of dbus's system.conf, the shipped policy
# dbus/org.fleetid.Agent1.conf, and a test-only rule letting root own the
# name, since fleetidd runs as root here rather than as the user fleetid),
# found through DBUS_SYSTEM_BUS_ADDRESS. fleetidd enrolls against the lab
# EST server, then, with busctl:
#   - root (admin) reads every property: State, Enrolled, Serial, NotAfter,
#     Version... match the certificate and fleetidd; GetCertificateChain
#     equals operational.pem in DER, GetTrustBundle the stored EST CA set;
#   - a user granted reader by name, and one granted it through a
#     supplementary group, read the properties and the chain;
#   - a user with no grant gets AccessDenied (naming the member and the role)
#     for the chain and the properties, and a log line with its uid, but
#     GetTrustBundle;
#   - a flood of refused calls logs at most the rate limit's share;
#   - bad input: extra arguments (InvalidArgs), an unknown member
#     (UnknownMethod), for root and the user with no grant; a call that names
#     no interface (tests/lib/dbus-call-no-interface.py) is AccessDenied;
#   - PropertiesChanged (State) arrives on a renewal (SIGUSR1);
#   - a policy file that group or others may write is rejected as a whole:
#     the reader is refused, root is still admin;
#   - the live introspection of the interface equals dbus/org.fleetid.Agent1.xml;
#   - when the bus goes away, fleetidd logs it and runs on; without a bus at
#     start, it logs it and enrolls all the same.
# The test users exist only in a private mount namespace (as in
# test-bus-policy.sh). Needs root; skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_require dbus-send busctl
agent_bus_namespace "$0" fleetid-test-reader fleetid-test-grouped fleetid-test-nogrant \
    fleetid-test-readers=fleetid-test-grouped

# ---- inside the namespace ----
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"

step() { echo "== $*"; }

fleetid_lab_up
fleetid_provision
cat >"$LAB_TMPDIR/access.conf" <<'EOF'
grants = (
        { user = "fleetid-test-reader"; roles = [ "reader" ]; },
        { group = "fleetid-test-readers"; roles = [ "reader" ]; }
);
EOF
chmod 0644 "$LAB_TMPDIR/access.conf"
fleetid_write_config "access: { file = \"$LAB_TMPDIR/access.conf\"; };"

agent_bus_start
ADDR=$AGENT_BUS_ADDR
BUSDIR=$AGENT_BUS_DIR
BUS_PID=$AGENT_BUS_PID
NAME=$AGENT_NAME
OBJ=$AGENT_OBJ

fleetid_daemon_start
DAEMON_STARTED=$SECONDS
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving $NAME" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own $NAME" _serving
fleetid_expect_grep "$FLEETIDD_LOG" "access policy $LAB_TMPDIR/access.conf: 2 grant" "the access policy loaded"

OUT=$AGENT_OUT
# bus AS USER ARGS...: busctl as USER (root: as is); output in $OUT, returns its status.
bus() { agent_busctl "$@"; }
prop() { # USER NAME: the property's value as busctl prints it ("s \"...\"")
    bus "$1" get-property "$NAME" "$OBJ" "$NAME" "$2" || lab_fail "$1: get-property $2 failed: $(cat "$OUT")"
    cat "$OUT"
}
expect_denied() { # USER WHAT ARGS...
    local user=$1 what=$2
    shift 2
    bus "$user" "$@" && lab_fail "$user: $what was allowed: $(cat "$OUT")"
    grep -q "Access denied\|AccessDenied" "$OUT" || lab_fail "$user: $what: not AccessDenied: $(cat "$OUT")"
    echo "   $user: $what refused: $(cat "$OUT")"
}
# aay_hex USER METHOD: the aay a method returns, hex, one element a line.
aay_hex() {
    bus "$1" --json=short call "$NAME" "$OBJ" "$NAME" "$2" || lab_fail "$1: $2 failed: $(cat "$OUT")"
    aay_json_hex "$OUT"
}

step "root reads every property"
PEM=$FLEETID_STATE/operational.pem
serial=$(openssl x509 -in "$PEM" -noout -serial | sed 's/^serial=//')
not_after=$(date -d "$(openssl x509 -in "$PEM" -noout -enddate | sed 's/^notAfter=//')" +%s)
not_before=$(date -d "$(openssl x509 -in "$PEM" -noout -startdate | sed 's/^notBefore=//')" +%s)
fleetid_expect_eq "$(prop root State)" 's "enrolled"' "State"
fleetid_expect_eq "$(prop root Enrolled)" 'b true' "Enrolled"
prop root Serial | grep -qiE "^s \"(0x)?0*${serial#0}\"$" || lab_fail "Serial $(prop root Serial), certificate $serial"
fleetid_expect_eq "$(prop root NotAfter)" "t ${not_after}000000" "NotAfter"
fleetid_expect_eq "$(prop root NotBefore)" "t ${not_before}000000" "NotBefore"
subject=$(prop root Subject)
grep -q "CN=" <<<"$subject" || lab_fail "Subject without a CN: $subject"
renew_due=$(prop root RenewDue | sed 's/^t //')
if [ "$renew_due" -le "${not_before}000000" ] || [ "$renew_due" -ge "${not_after}000000" ]; then
    lab_fail "RenewDue $renew_due not within the certificate's validity"
fi
last_success=$(prop root LastSuccess | sed 's/^t //')
[ "$last_success" -gt 0 ] || lab_fail "LastSuccess is 0 after an enrollment"
fleetid_expect_eq "$(prop root LastError)" 's ""' "LastError"
prop root Severity | grep -qE '^s "[a-z]+"$' || lab_fail "Severity: $(prop root Severity)"
fleetid_expect_eq "$(prop root Version)" "s \"$("$FLEETIDD" --version | sed 's/^fleetidd //')\"" "Version"
echo "   State enrolled, Serial $serial, NotAfter $not_after, Subject $subject"

step "GetCertificateChain equals operational.pem, GetTrustBundle the EST CA set"
pem_der_hex "$PEM" >"$LAB_TMPDIR/chain.want"
[ -s "$LAB_TMPDIR/chain.want" ] || lab_fail "no certificate in $PEM"
aay_hex root GetCertificateChain >"$LAB_TMPDIR/chain.root"
cmp -s "$LAB_TMPDIR/chain.want" "$LAB_TMPDIR/chain.root" || lab_fail "GetCertificateChain differs from $PEM"
pem_der_hex "$FLEETID_STATE/est-trust-anchors.pem" >"$LAB_TMPDIR/trust.want"
[ -s "$LAB_TMPDIR/trust.want" ] || lab_fail "no certificate in est-trust-anchors.pem"
aay_hex root GetTrustBundle >"$LAB_TMPDIR/trust.root"
cmp -s "$LAB_TMPDIR/trust.want" "$LAB_TMPDIR/trust.root" || lab_fail "GetTrustBundle differs from est-trust-anchors.pem"
echo "   $(wc -l <"$LAB_TMPDIR/chain.want") certificate(s) in the chain, $(wc -l <"$LAB_TMPDIR/trust.want") in the bundle"

step "readers: granted by name, and through a supplementary group"
for user in fleetid-test-reader fleetid-test-grouped; do
    fleetid_expect_eq "$(prop "$user" State)" 's "enrolled"' "State read by $user"
    bus "$user" introspect "$NAME" "$OBJ" "$NAME" || lab_fail "$user: GetAll/introspect failed: $(cat "$OUT")"
    grep -q '^\.Serial .*"' "$OUT" || lab_fail "$user: introspect shows no Serial value: $(cat "$OUT")"
    aay_hex "$user" GetCertificateChain >"$LAB_TMPDIR/chain.$user"
    cmp -s "$LAB_TMPDIR/chain.want" "$LAB_TMPDIR/chain.$user" || lab_fail "$user: GetCertificateChain differs"
    echo "   $user reads the properties and the chain"
done

step "no grant: AccessDenied for the chain and the properties, not for the trust bundle"
NOGRANT_UID=$(id -u fleetid-test-nogrant)
expect_denied fleetid-test-nogrant GetCertificateChain call "$NAME" "$OBJ" "$NAME" GetCertificateChain
expect_denied fleetid-test-nogrant "get-property State" get-property "$NAME" "$OBJ" "$NAME" State
# busctl shows only the error's name; dbus-send shows its message.
denied_message() { # WHAT ERE DBUS-SEND ARGS...
    local what=$1 ere=$2 out
    shift 2
    out=$(run_as fleetid-test-nogrant dbus-send --system --print-reply --reply-timeout=20000 --dest="$NAME" "$OBJ" "$@" 2>&1) &&
        lab_fail "dbus-send $what as fleetid-test-nogrant succeeded: $out"
    grep -qE "$ere" <<<"$out" || lab_fail "the refusal of $what does not say /$ere/: $out"
}
denied_message GetCertificateChain \
    "org.freedesktop.DBus.Error.AccessDenied: GetCertificateChain needs the role 'reader', which uid $(id -u fleetid-test-nogrant) does not hold" \
    "$NAME.GetCertificateChain"
denied_message "Properties.Get" "org.freedesktop.DBus.Error.AccessDenied: @properties needs the role 'reader'" \
    org.freedesktop.DBus.Properties.Get string:"$NAME" string:State
expect_denied fleetid-test-nogrant "GetAll" call "$NAME" "$OBJ" org.freedesktop.DBus.Properties GetAll s "$NAME"
fleetid_expect_grep "$FLEETIDD_LOG" "refused GetCertificateChain to uid $NOGRANT_UID: it needs the role 'reader'" \
    "the refusal logged with the uid"
aay_hex fleetid-test-nogrant GetTrustBundle >"$LAB_TMPDIR/trust.nogrant"
cmp -s "$LAB_TMPDIR/trust.want" "$LAB_TMPDIR/trust.nogrant" || lab_fail "GetTrustBundle for the user with no grant differs"
echo "   fleetid-test-nogrant gets the trust bundle"

step "a flood of refused calls does not flood the log"
for _ in $(seq 40); do
    bus fleetid-test-nogrant call "$NAME" "$OBJ" "$NAME" GetCertificateChain && lab_fail "GetCertificateChain allowed in the flood"
done
# At most 10 at once and 6 a minute per uid (manager-bus.c): the bound from
# the time the daemon has run, whatever the machine's speed.
logged=$(grep -c "refused .* to uid $NOGRANT_UID:" "$FLEETIDD_LOG" || true)
bound=$((10 + (SECONDS - DAEMON_STARTED) / 10 + 1))
[ "$logged" -le "$bound" ] || lab_fail "$logged refusals of uid $NOGRANT_UID logged, more than the rate limit's $bound"
echo "   $logged refusal(s) of uid $NOGRANT_UID logged after 40 more calls (at most $bound)"

step "bad input"
for user in root fleetid-test-nogrant; do
    bus "$user" call "$NAME" "$OBJ" "$NAME" GetTrustBundle s extra && lab_fail "$user: extra argument accepted"
    grep -q "InvalidArgs\|Invalid argument" "$OUT" || lab_fail "$user: extra argument: $(cat "$OUT")"
    bus "$user" call "$NAME" "$OBJ" "$NAME" NoSuchMember && lab_fail "$user: unknown member accepted"
    grep -q "UnknownMethod\|Unknown method" "$OUT" || lab_fail "$user: unknown member: $(cat "$OUT")"
    bus "$user" get-property "$NAME" "$OBJ" "$NAME" NoSuchProperty && lab_fail "$user: unknown property accepted"
    bus "$user" call "$NAME" "$OBJ" org.freedesktop.DBus.Properties Get u 7 && lab_fail "$user: Properties.Get(u) accepted"
    grep -q "Expected interface and member parameters" "$OUT" || lab_fail "$user: Properties.Get(u): $(cat "$OUT")"
    echo "   $user: extra argument, unknown member and property refused"
done
out=$(run_as fleetid-test-nogrant "$LAB_PYTHON" "$SRCDIR/tests/lib/dbus-call-no-interface.py" "$BUSDIR/bus.sock" \
    "$NAME" "$OBJ" GetCertificateChain) || lab_fail "the call without an interface got no answer: $out"
fleetid_expect_eq "$out" \
    "error org.freedesktop.DBus.Error.AccessDenied: a call to $OBJ must name its interface (member GetCertificateChain)" \
    "a call without an interface"
echo "   a call without an interface: refused"
bus root call "$NAME" "$OBJ" "$NAME" GetCertificateChain s extra && lab_fail "extra argument accepted"
grep -q "InvalidArgs\|Invalid argument" "$OUT" || lab_fail "GetCertificateChain with an argument: $(cat "$OUT")"

step "the introspection equals dbus/org.fleetid.Agent1.xml"
bus root introspect --xml-interface "$NAME" "$OBJ" || lab_fail "introspect failed: $(cat "$OUT")"
"$LAB_PYTHON" "$SRCDIR/tests/lib/introspect-compare.py" "$OUT" "$SRCDIR/dbus/org.fleetid.Agent1.xml" "$NAME" ||
    lab_fail "the live introspection and dbus/org.fleetid.Agent1.xml differ"
echo "   identical"

step "PropertiesChanged on a state change (a renewal)"
busctl --address="$ADDR" monitor --match "type='signal',path='$OBJ',interface='org.freedesktop.DBus.Properties'" \
    >"$LAB_TMPDIR/monitor.out" 2>&1 &
MON_PID=$!
lab_on_exit "_lab_kill $MON_PID busctl"
sleep 1 # busctl monitor has no "ready" line; the signals of the renewal come later anyway
kill -USR1 "$FLEETIDD_PID"
_renewed() { grep -q "renewed\|state: renewing -> enrolled" "$FLEETIDD_LOG"; }
lab_wait_until 90 "fleetidd to renew" _renewed
# State and Serial may come in two signals (the state changes first, the new
# certificate is read after): wait for both.
_signalled() { grep -q '"State"' "$LAB_TMPDIR/monitor.out" && grep -q '"Serial"' "$LAB_TMPDIR/monitor.out"; }
lab_wait_until 30 "a PropertiesChanged naming State and one naming Serial" _signalled
grep -q "PropertiesChanged" "$LAB_TMPDIR/monitor.out" || lab_fail "no PropertiesChanged: $(cat "$LAB_TMPDIR/monitor.out")"
_lab_kill "$MON_PID" busctl
grep -q '"Serial"' "$LAB_TMPDIR/monitor.out" || lab_fail "no PropertiesChanged naming Serial: $(cat "$LAB_TMPDIR/monitor.out")"
fleetid_wait_state 60 enrolled
new_serial=$(openssl x509 -in "$PEM" -noout -serial | sed 's/^serial=//')
[ "$new_serial" != "$serial" ] || lab_fail "the renewal kept the serial $serial"
prop root Serial | grep -qiE "^s \"(0x)?0*${new_serial#0}\"$" || lab_fail "Serial $(prop root Serial) after the renewal, certificate $new_serial"
echo "   PropertiesChanged (invalidated State, Serial) seen; Serial now $new_serial"

step "a policy file others may write is rejected as a whole: no grants, root still admin"
_lab_kill "$FLEETIDD_PID" fleetidd
chmod 0666 "$LAB_TMPDIR/access.conf"
fleetid_daemon_start
lab_wait_until 30 "fleetidd to own $NAME again" _serving
fleetid_expect_grep "$FLEETIDD_LOG" "D-Bus: access policy rejected: .*access.conf.*; no grants until it is fixed" \
    "the rejected policy logged"
expect_denied fleetid-test-reader "GetCertificateChain under a rejected policy" call "$NAME" "$OBJ" "$NAME" GetCertificateChain
pem_der_hex "$PEM" >"$LAB_TMPDIR/chain.want2" # renewed above
aay_hex root GetCertificateChain >"$LAB_TMPDIR/chain.root2"
cmp -s "$LAB_TMPDIR/chain.want2" "$LAB_TMPDIR/chain.root2" || lab_fail "root: GetCertificateChain differs under a rejected policy"
aay_hex fleetid-test-reader GetTrustBundle >/dev/null
echo "   root reads the chain, fleetid-test-reader only the trust bundle"

step "the bus goes away: fleetidd logs it and keeps its identity"
_lab_kill "$BUS_PID" dbus-daemon
_lost() { grep -q "D-Bus: the bus connection was lost; the D-Bus API is off" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to notice the lost bus" _lost
_lab_alive "$FLEETIDD_PID" || lab_fail "fleetidd exited when the bus went away: $(tail -n 3 "$FLEETIDD_LOG")"
fleetid_expect_eq "$(fleetid_status_get state)" enrolled "the state after the bus went away"
echo "   fleetidd runs on, enrolled"

step "without a bus, fleetidd enrolls all the same"
_lab_kill "$FLEETIDD_PID" fleetidd
rm -f "$FLEETID_STATE/operational.pem"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$BUSDIR/absent.sock
fleetid_daemon_start
# The state directory's status still says enrolled: wait for the new certificate.
_enrolled_again() { [ -s "$PEM" ] && grep -q "state: enrolling -> enrolled" "$FLEETIDD_LOG"; }
lab_wait_until 90 "fleetidd to enroll again without a bus" _enrolled_again
fleetid_expect_grep "$FLEETIDD_LOG" "D-Bus: cannot connect to the system bus: .*the D-Bus API is off, the identity work goes on" \
    "the missing bus logged"
echo "PASS: test-dbus-api"
