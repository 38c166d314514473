#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-dbus-matrix.sh: who may call what on org.fleetid.Agent1, for 100 % of
# its methods (docs/dbus-api.md, "Access control"). On a private dbus-daemon
# configured like the system bus (tests/lib/agent-bus.sh), with fleetidd
# enrolled against the lab EST server and one test user per role (reader,
# attest, attest-birth, sensor-broker, admin) plus one with no grant,
# tests/integration/dbus-matrix.py:
#   - takes the methods from dbus/org.fleetid.Agent1.xml and
#     dbus/org.fleetid.Agent1.Job.xml (and Properties Get/GetAll/Set on each
#     interface): a member without a row in its table fails the test;
#   - calls each with busctl, gdbus and python3-dbus (one process per user),
#     as a user holding the role (the answer, or the handler's own error for
#     arguments chosen to fail harmlessly after the access check: InvalidArgs,
#     NoSuchSensor, PropertyReadOnly) and as one that does not hold it
#     (AccessDenied naming its uid); Job members on the job of the admin's
#     Renew(): its owner, and a reader who is not;
# then every refusal is in fleetidd's log with the uid, one line each or
# counted in the uid's "N refusal(s) of uid U not logged" line (the refusal
# log's rate limit; a last refusal per uid after the refill reports the
# count), and every log call that reports a refusal in agent/ carries the
# MESSAGE_ID of systemd/fleetid.catalog (FLEETID_MESSAGE_BUS_ACCESS_DENIED);
# fleetidd then stops cleanly (exit 0, and no sanitizer report in the ASan
# build).
# The test users exist only in a private mount namespace. Needs root;
# skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_require --python-dbus busctl gdbus
agent_bus_namespace "$0" fleetid-test-reader fleetid-test-attest fleetid-test-birth fleetid-test-broker \
    fleetid-test-admin fleetid-test-nogrant

# ---- inside the namespace ----
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"

step() { echo "== $*"; }
MATRIX=$SRCDIR/tests/integration/dbus-matrix.py
XMLS=("$SRCDIR/dbus/org.fleetid.Agent1.xml" "$SRCDIR/dbus/org.fleetid.Agent1.Job.xml")

step "the table covers every method of the introspection XML"
"$LAB_PYTHON" "$MATRIX" check "${XMLS[@]}" || lab_fail "dbus-matrix.py's table does not match the XML"

fleetid_lab_up
fleetid_provision
cat >"$LAB_TMPDIR/access.conf" <<'EOF'
grants = (
        { user = "fleetid-test-reader"; roles = [ "reader" ]; },
        { user = "fleetid-test-attest"; roles = [ "attest" ]; },
        { user = "fleetid-test-birth"; roles = [ "attest-birth" ]; },
        { user = "fleetid-test-broker"; roles = [ "sensor-broker" ]; },
        { user = "fleetid-test-admin"; roles = [ "admin" ]; }
);
EOF
chmod 0644 "$LAB_TMPDIR/access.conf"
fleetid_write_config "access: { file = \"$LAB_TMPDIR/access.conf\"; sign_burst = 100; sensor_burst = 100; };"
agent_bus_start
fleetid_daemon_start
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving $AGENT_NAME" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own $AGENT_NAME" _serving

step "every method, allowed and denied, with busctl, gdbus and python3-dbus"
"$LAB_PYTHON" "$MATRIX" run "$AGENT_BUS_ADDR" "${XMLS[@]}" | tee "$LAB_TMPDIR/matrix.out" ||
    lab_fail "the access matrix failed (above)"
grep -q '^denied ' "$LAB_TMPDIR/matrix.out" || lab_fail "the matrix reported no refusals"

step "every refusal is logged with the uid (alone, or counted)"
# The refusal log allows 6 a minute per uid (manager-bus.c): once a token is
# back (10 s), one more refusal per uid reports the uid's count of those not
# logged.
sleep 11
while read -r _ uid n; do
    user=$(getent passwd "$uid" | cut -d: -f1)
    agent_busctl "$user" call "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" FactoryReset 'a{sv}' 0 &&
        lab_fail "$user: FactoryReset was allowed"
    logged=$(grep -c "D-Bus: refused .* to uid $uid: " "$FLEETIDD_LOG" || true)
    counted=$(sed -nE "s/.*D-Bus: ([0-9]+) refusal\(s\) of uid $uid not logged .*/\1/p" "$FLEETIDD_LOG" |
        awk '{ s += $1 } END { print s + 0 }')
    [ $((logged + counted)) -eq $((n + 1)) ] ||
        lab_fail "uid $uid ($user) was refused $((n + 1)) times; the log has $logged line(s) and counts $counted more"
    echo "   uid $uid ($user): $((n + 1)) refusals: $logged logged alone, $counted counted"
done < <(grep '^denied ' "$LAB_TMPDIR/matrix.out")

step "every log call that reports a refusal carries the MESSAGE_ID"
"$LAB_PYTHON" - "$SRCDIR/agent" <<'PY' || lab_fail "a refusal is logged without FLEETID_MESSAGE_BUS_ACCESS_DENIED"
import pathlib, re, sys
bad, n = [], 0
for f in pathlib.Path(sys.argv[1]).rglob("*.c"):
    text = f.read_text()
    # Each log call (up to its ';') whose text reports a refusal.
    for m in re.finditer(r"\blog_\w+\((?:[^;\"]|\"(?:[^\"\\]|\\.)*\")*\);", text):
        call = m.group(0)
        if "D-Bus: refused" in call or "refusal(s)" in call:
            n += 1
            if not call.startswith("log_struct(") or "FLEETID_MESSAGE_BUS_ACCESS_DENIED" not in call:
                bad.append("%s: %s" % (f.name, call[:100]))
print("   %d log call(s) report refusals; without the MESSAGE_ID: %d" % (n, len(bad)))
for b in bad:
    print("   " + b)
sys.exit(1 if bad or n == 0 else 0)
PY
step "fleetidd stops cleanly after the matrix (in the ASan build: no leak, no error)"
fleetid_stop_daemon_bounded 60
[ "$FLEETIDD_EXIT" -eq 0 ] || lab_fail "fleetidd exited with $FLEETIDD_EXIT: $(tail -n 5 "$FLEETIDD_LOG")"
! grep -q "Sanitizer" "$FLEETIDD_LOG" || lab_fail "a sanitizer report: $(grep -A5 Sanitizer "$FLEETIDD_LOG" | head -20)"
echo "PASS: test-dbus-matrix"
