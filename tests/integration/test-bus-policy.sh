#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-bus-policy.sh: the shipped bus policy, dbus/org.fleetid.Agent1.conf
# (installed in /usr/share/dbus-1/system.d/), on a private dbus-daemon whose
# configuration is the system bus's (type system, EXTERNAL auth, the default
# policy of dbus's system.conf: nobody may own a name, method calls denied
# unless a policy allows them) with an <includedir> holding only that file:
#   - without the file, not even the user fleetid may own org.fleetid.Agent1
#     (so what follows is the file's doing);
#   - with it, an unprivileged user and root may not own the name, neither
#     through bus-echo (sd-bus) nor through dbus-send's own RequestName;
#   - the user fleetid may; then an unprivileged user, nobody and root can
#     call the owner (dbus-send and busctl), and the owner sees each caller's
#     own uid (sd_bus_query_sender_creds()).
# Callers run as other uids with setpriv. The users fleetid (unless the
# system has it) and fleetid-test-other exist only in a private mount
# namespace (unshare), where copies of /etc/passwd and /etc/group with them
# are bind-mounted: dbus-daemon resolves user="fleetid" there. Nothing on the
# machine changes. Needs root (setpriv, unshare, mount); skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FLEETID_BUILD_DIR:-$SRCDIR/build}
ECHO=$BUILD/tests/integration/bus-echo
# shellcheck source=tests/lib/system-bus.sh
. "$SRCDIR/tests/lib/system-bus.sh"
POLICY=$SRCDIR/dbus/org.fleetid.Agent1.conf
NAME=org.fleetid.Agent1

skip() {
    echo "SKIP: $*"
    exit 77
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() {
    echo "== $*"
}

[ "$(id -u)" -eq 0 ] ||
    skip "needs root: callers run as other uids (setpriv), and the test users exist only in a private mount namespace (unshare, mount --bind)"
for tool in dbus-daemon dbus-send busctl setpriv unshare mount getent; do
    command -v "$tool" >/dev/null || skip "$tool is missing (tests/lib/deps.sh installs dbus, systemd and util-linux)"
done
[ -x "$ECHO" ] || fail "$ECHO is not built (FLEETID_BUILD_DIR=$BUILD)"

# ---- outside: make the users, then run the rest in a private mount namespace ----

if [ -z "${FLEETID_BUS_POLICY_INNER:-}" ]; then
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-test-bus-policy.XXXXXX")
    trap '[ -n "${FLEETID_TEST_KEEP:-}" ] || rm -rf "$TMP"' EXIT
    # The callers run as other users: they must reach the socket and bus-echo.
    chmod 0755 "$TMP"
    cp /etc/passwd "$TMP/passwd"
    cp /etc/group "$TMP/group"
    next_id=61000
    add_user() { # NAME
        while getent passwd "$next_id" >/dev/null || getent group "$next_id" >/dev/null; do
            next_id=$((next_id + 1))
        done
        echo "$1:x:$next_id:$next_id:fleetid test-bus-policy:/nonexistent:/usr/sbin/nologin" >>"$TMP/passwd"
        echo "$1:x:$next_id:" >>"$TMP/group"
        next_id=$((next_id + 1))
    }
    getent passwd fleetid >/dev/null || add_user fleetid
    getent passwd fleetid-test-other >/dev/null && fail "the system has a user fleetid-test-other; this test makes its own"
    add_user fleetid-test-other
    cp "$ECHO" "$TMP/bus-echo"
    rc=0
    FLEETID_BUS_POLICY_INNER=1 TMP=$TMP unshare --mount --propagation private bash "$0" || rc=$?
    exit "$rc"
fi

# ---- inside the namespace ----

mount --bind "$TMP/passwd" /etc/passwd
mount --bind "$TMP/group" /etc/group
FLEETID_UID=$(id -u fleetid)
OTHER_UID=$(id -u fleetid-test-other)
NOBODY_UID=$(id -u nobody)
echo "   fleetid is uid $FLEETID_UID, fleetid-test-other uid $OTHER_UID, nobody uid $NOBODY_UID"

BUS_PID=
OWNER_PID=
cleanup_inner() {
    [ -z "$OWNER_PID" ] || kill "$OWNER_PID" 2>/dev/null || true
    [ -z "$BUS_PID" ] || kill "$BUS_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup_inner EXIT

# run_as USER CMD...: CMD as USER, with USER's groups and no capabilities.
run_as() {
    local user=$1
    shift
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
}

# start_bus DIR: a dbus-daemon with the system bus's configuration and
# <includedir>DIR</includedir>; sets BUS_PID and ADDR.
start_bus() {
    local dir=$1 _
    ADDR=unix:path=$TMP/bus.sock
    rm -f "$TMP/bus.sock"
    system_bus_config "$ADDR" "$dir" >"$TMP/bus.conf"
    dbus-daemon --config-file="$TMP/bus.conf" --nofork --nopidfile --nosyslog 2>"$TMP/bus.log" &
    BUS_PID=$!
    for _ in $(seq 100); do
        [ -S "$TMP/bus.sock" ] && return 0
        kill -0 "$BUS_PID" 2>/dev/null || { cat "$TMP/bus.log" >&2; fail "dbus-daemon exited at start"; }
        sleep 0.1
    done
    fail "dbus-daemon did not create $TMP/bus.sock within 10 s"
}

stop_bus() {
    kill "$BUS_PID"
    wait "$BUS_PID" || true
    BUS_PID=
}

# expect_refused USER: USER cannot own the name (bus-echo exits 3, AccessDenied).
expect_refused() {
    local user=$1 out rc=0
    out=$(run_as "$user" "$TMP/bus-echo" "$ADDR" "$NAME" 1) || rc=$?
    [ "$rc" -eq 3 ] || fail "$user could own $NAME (bus-echo exit $rc: $out)"
    grep -q "^refused: org.freedesktop.DBus.Error.AccessDenied" <<<"$out" ||
        fail "$user: refused, but not with AccessDenied: $out"
    echo "   $user may not own $NAME: $out"
}

# call_as USER TOOL: USER calls Echo through TOOL (dbus-send or busctl); the reply names USER's uid.
call_as() {
    local user=$1 tool=$2 uid out
    uid=$(id -u "$user")
    if [ "$tool" = dbus-send ]; then
        out=$(run_as "$user" dbus-send --bus="$ADDR" --print-reply --reply-timeout=10000 --dest="$NAME" \
            /org/fleetid/Agent1 org.fleetid.BusPolicyTest.Echo string:"from-$user" 2>&1) ||
            fail "$user could not call $NAME with dbus-send: $out"
        grep -qF "string \"uid=$uid from-$user\"" <<<"$out" || fail "dbus-send as $user: unexpected reply: $out"
    else
        out=$(run_as "$user" busctl --address="$ADDR" --timeout=10 call "$NAME" /org/fleetid/Agent1 \
            org.fleetid.BusPolicyTest Echo s "from-$user" 2>&1) ||
            fail "$user could not call $NAME with busctl: $out"
        [ "$out" = "s \"uid=$uid from-$user\"" ] || fail "busctl as $user: unexpected reply: $out"
    fi
    echo "   $user ($tool) called $NAME; the owner saw uid $uid"
}

step "control: a system-like bus without the policy file"
mkdir -p "$TMP/empty.d" "$TMP/system.d"
start_bus "$TMP/empty.d"
expect_refused fleetid
stop_bus

step "with dbus/org.fleetid.Agent1.conf: who may own $NAME"
cp "$POLICY" "$TMP/system.d/"
start_bus "$TMP/system.d"
expect_refused fleetid-test-other
expect_refused nobody
expect_refused root
out=$(run_as fleetid-test-other dbus-send --bus="$ADDR" --print-reply --dest=org.freedesktop.DBus \
    /org/freedesktop/DBus org.freedesktop.DBus.RequestName string:"$NAME" uint32:4 2>&1) &&
    fail "dbus-send RequestName as fleetid-test-other succeeded: $out"
grep -q "AccessDenied" <<<"$out" || fail "dbus-send RequestName as fleetid-test-other: not AccessDenied: $out"
echo "   dbus-send RequestName as fleetid-test-other: AccessDenied"

run_as fleetid "$TMP/bus-echo" "$ADDR" "$NAME" 120 >"$TMP/owner.out" 2>&1 &
OWNER_PID=$!
for _ in $(seq 100); do
    grep -q . "$TMP/owner.out" && break
    sleep 0.1
done
[ "$(head -n 1 "$TMP/owner.out")" = owned ] || fail "fleetid could not own $NAME: $(cat "$TMP/owner.out")"
echo "   fleetid owns $NAME"

step "everyone may call the owner"
for user in fleetid-test-other nobody root; do
    call_as "$user" dbus-send
    call_as "$user" busctl
done

kill "$OWNER_PID"
wait "$OWNER_PID" 2>/dev/null || true
OWNER_PID=
stop_bus
echo "PASS: test-bus-policy"
