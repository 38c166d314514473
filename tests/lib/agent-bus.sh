# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tests/lib/agent-bus.sh: what a test of org.fleetid.Agent1 needs around
# fleetidd (tests/lib/fleetid.sh): test users that exist only in a private
# mount namespace, a private dbus-daemon configured like the system bus, and
# callers as those users.
#
#   agent_bus_namespace SCRIPT USER...   outside the namespace: makes the
#       users (each with a group of its name) in copies of /etc/passwd and
#       /etc/group (GROUP=MEMBER,MEMBER... makes a group with those members),
#       then runs SCRIPT again in a private mount namespace where the copies
#       are bind-mounted, and exits with its status. Inside (AGENT_BUS_INNER
#       set) it returns at once after the mounts. Needs root.
#   agent_bus_start        the bus (system_bus_start of tests/lib/system-bus.sh: the shipped policy
#       dbus/org.fleetid.Agent1.conf and a test-only rule letting root own
#       the name), in $LAB_TMPDIR/system-bus; exports DBUS_SYSTEM_BUS_ADDRESS;
#       sets AGENT_BUS_ADDR, AGENT_BUS_DIR, AGENT_BUS_PID. Call after
#       fleetid_lab_up; stopped at exit. AGENT_BUS_EXTRA_CONF, if set, is
#       one more policy file (its <busconfig> content), e.g. for a
#       benchmark's own server.
#   run_as USER CMD...     CMD as USER, with USER's groups, no capabilities
#       (root: CMD as it is)
#   agent_busctl USER ARGS...   busctl as USER (root: as is) on the bus;
#       output in $AGENT_OUT, returns busctl's status
#   agent_gdbus USER ARGS...    gdbus as USER on the bus (--address given);
#       output in $AGENT_OUT (gdbus names a failed call's D-Bus error, busctl
#       only its message)
#   pem_der_hex FILE       the DER of each certificate of a PEM file, hex, one a line
#   aay_json_hex FILE      the aay of a `busctl --json=short call` answer in
#       FILE, hex, one element a line
#   agent_expect_error USER ERE WHAT ARGS...   gdbus as USER must fail with
#       output matching ERE (e.g. the error name)

AGENT_NAME=org.fleetid.Agent1
AGENT_OBJ=/org/fleetid/Agent1

agent_bus_namespace() {
    local script=$1 u users next_id=61100 rc=0
    shift
    [ -z "${AGENT_BUS_INNER:-}" ] || {
        mount --bind "$AGENT_BUS_USERS/passwd" /etc/passwd
        mount --bind "$AGENT_BUS_USERS/group" /etc/group
        return 0
    }
    users=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-agent-bus.XXXXXX")
    cp /etc/passwd "$users/passwd"
    cp /etc/group "$users/group"
    for u in "$@"; do
        if getent passwd "${u%%=*}" >/dev/null || getent group "${u%%=*}" >/dev/null; then
            rm -rf "$users"
            echo "FAIL: the system has a user or group ${u%%=*}; this test makes its own" >&2
            exit 1
        fi
        while getent passwd "$next_id" >/dev/null || getent group "$next_id" >/dev/null; do
            next_id=$((next_id + 1))
        done
        if [[ $u == *=* ]]; then
            echo "${u%%=*}:x:$next_id:${u#*=}" >>"$users/group"
        else
            echo "$u:x:$next_id:$next_id:fleetid test:/nonexistent:/usr/sbin/nologin" >>"$users/passwd"
            echo "$u:x:$next_id:" >>"$users/group"
        fi
        next_id=$((next_id + 1))
    done
    AGENT_BUS_INNER=1 AGENT_BUS_USERS=$users unshare --mount --propagation private bash "$script" || rc=$?
    rm -rf "$users"
    exit "$rc"
}

run_as() {
    local user=$1
    shift
    if [ "$user" = root ]; then
        "$@"
    else
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
    fi
}

agent_bus_start() {
    AGENT_BUS_DIR=$LAB_TMPDIR/system-bus
    mkdir -p "$AGENT_BUS_DIR/system.d"
    # The callers (other uids) reach the bus socket below the lab directory.
    chmod 0711 "$LAB_TMPDIR"
    if [ -n "${AGENT_BUS_EXTRA_CONF:-}" ]; then
        printf '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n %s\n<busconfig>\n%s\n</busconfig>\n' \
            '"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">' "$AGENT_BUS_EXTRA_CONF" \
            >"$AGENT_BUS_DIR/system.d/zz-extra.conf"
    fi
    system_bus_start "$AGENT_BUS_DIR"
    AGENT_BUS_ADDR=$SYSTEM_BUS_ADDR
    AGENT_BUS_PID=$SYSTEM_BUS_PID
    AGENT_OUT=$LAB_TMPDIR/busctl.out
}

agent_busctl() {
    local user=$1 rc=0
    shift
    if [ "$user" = root ]; then
        busctl --address="$AGENT_BUS_ADDR" --timeout=30 "$@" >"$AGENT_OUT" 2>&1 || rc=$?
    else
        run_as "$user" busctl --address="$AGENT_BUS_ADDR" --timeout=30 "$@" >"$AGENT_OUT" 2>&1 || rc=$?
    fi
    return $rc
}

agent_gdbus() {
    local user=$1 rc=0
    shift
    if [ "$user" = root ]; then
        gdbus "$1" --address "$AGENT_BUS_ADDR" "${@:2}" >"$AGENT_OUT" 2>&1 || rc=$?
    else
        run_as "$user" gdbus "$1" --address "$AGENT_BUS_ADDR" "${@:2}" >"$AGENT_OUT" 2>&1 || rc=$?
    fi
    return $rc
}

agent_expect_error() {
    local user=$1 ere=$2 what=$3
    shift 3
    agent_gdbus "$user" "$@" && lab_fail "$user: $what succeeded: $(cat "$AGENT_OUT")"
    grep -qE -- "$ere" "$AGENT_OUT" || lab_fail "$user: $what: not /$ere/: $(cat "$AGENT_OUT")"
    echo "   $user: $what refused: $(cat "$AGENT_OUT")"
}

pem_der_hex() {
    "$LAB_PYTHON" -c '
import base64, re, sys
for b in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", open(sys.argv[1]).read(), re.S):
    print(base64.b64decode("".join(b.split())).hex())' "$1"
}

aay_json_hex() {
    "$LAB_PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["type"] == "aay", r["type"]
for c in r["data"][0]:
    print(bytes(c).hex())' "$1"
}

# shellcheck source=tests/lib/system-bus.sh
source "$(dirname "${BASH_SOURCE[0]}")/system-bus.sh"

# agent_bus_require [--python-dbus] [TOOL...]: exit 77 (skipped, saying why)
# unless running as root (callers run as other uids with setpriv, and the test
# users exist only in a private mount namespace) with the tools every D-Bus
# test needs, the TOOLs given, and python3-dbus if asked for.
agent_bus_require() {
    local tool python=0
    if [ "${1:-}" = --python-dbus ]; then
        python=1
        shift
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root: callers run as other uids (setpriv), and the test users exist only in a private mount namespace"
        exit 77
    fi
    for tool in dbus-daemon setpriv unshare mount getent openssl "$@"; do
        command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
    done
    if [ "$python" = 1 ] && ! /usr/bin/python3 -c 'import dbus' 2>/dev/null; then
        echo "SKIP: python3-dbus is missing"
        exit 77
    fi
}
