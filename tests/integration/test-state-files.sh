#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What fleetidd leaves in its state directory besides the identity:
#  - temporary files of the write protocol (".#name.XXXXXX") that a crash
#    between writing and renaming left behind are removed when the daemon
#    starts; nothing else is: other names, a symlink with such a name (nor
#    its target), a directory with such a name;
#  - fleetidd --oneshot, run while the daemon is up, leaves the daemon's PID
#    file alone (and removes no temporary files), so `fleetidctl renew` still
#    reaches the daemon afterwards.
set -euo pipefail
source "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 5; };"

# A state directory as a crash at the rename leaves it.
mkdir -m 0750 "$FLEETID_STATE"
stale=(".#operational.pem.AbC123" ".#status.x9Y8z7" ".#fleetidd.pid.000000")
for f in "${stale[@]}"; do echo "half-written" >"$FLEETID_STATE/$f"; done
kept=(".#operational.pem" ".#status.short" "notes.txt")
for f in "${kept[@]}"; do echo "not ours" >"$FLEETID_STATE/$f"; done
echo "outside" >"$LAB_TMPDIR/outside"
ln -s "$LAB_TMPDIR/outside" "$FLEETID_STATE/.#birth.pem.QWERTY"
mkdir "$FLEETID_STATE/.#status.dirdir"

fleetid_daemon_start
fleetid_wait_state 60 enrolled

for f in "${stale[@]}"; do
    [ ! -e "$FLEETID_STATE/$f" ] || lab_fail "the stale temporary file $f was not removed at start"
done
for f in "${kept[@]}"; do
    [ -f "$FLEETID_STATE/$f" ] || lab_fail "$f does not have the write protocol's temporary name, yet was removed"
done
[ -L "$FLEETID_STATE/.#birth.pem.QWERTY" ] || lab_fail "a symlink with a temporary name was removed"
fleetid_expect_eq "$(cat "$LAB_TMPDIR/outside")" "outside" "the symlink's target"
[ -d "$FLEETID_STATE/.#status.dirdir" ] || lab_fail "a directory with a temporary name was removed"
fleetid_expect_grep "$FLEETIDD_LOG" "removed 3 stale temporary files" "the daemon's log"

# --oneshot beside the running daemon: the PID file still names the daemon.
fleetid_expect_eq "$(cat "$FLEETID_STATE/fleetidd.pid")" "$FLEETIDD_PID" "fleetidd.pid before --oneshot"
echo "half-written" >"$FLEETID_STATE/.#status.OneSht"
fleetid_enroll_once || lab_fail "fleetidd --oneshot failed on an enrolled device"
fleetid_expect_eq "$(cat "$FLEETID_STATE/fleetidd.pid")" "$FLEETIDD_PID" "fleetidd.pid after --oneshot"
[ -e "$FLEETID_STATE/.#status.OneSht" ] ||
    lab_fail "fleetidd --oneshot removed a temporary file (it may belong to the running daemon's write)"
rc=0
out=$(timeout 150 "$FLEETIDCTL" --config "$FLEETID_CONF" renew 2>&1) || rc=$?
[ "$rc" -eq 0 ] || lab_fail "fleetidctl renew after a --oneshot run exited $rc: $out"
kill -0 "$FLEETIDD_PID" || lab_fail "the daemon is gone"
echo "PASS"
