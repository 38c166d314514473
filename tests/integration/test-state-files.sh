#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What fleetidd leaves in its state directory besides the identity:
#  - temporary files of the write protocol (".#name.XXXXXX") that a crash
#    between writing and renaming left behind are removed when the daemon
#    starts; nothing else is: other names, a symlink with such a name (nor
#    its target), a directory with such a name;
#  - fleetidd --oneshot, run while the daemon is up, leaves the daemon's PID
#    file (in the runtime directory) alone (and removes no temporary files),
#    so `fleetidctl renew` still reaches the daemon afterwards;
#  - the state directory's status file is not rewritten at every state
#    change: against a refusing EST server the first failure is written
#    there, the retries after it change only the runtime copy; the renewal
#    that then succeeds (new due time, last success) rewrites it once.
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
fleetid_expect_eq "$(cat "$FLEETID_RUNTIME/fleetidd.pid")" "$FLEETIDD_PID" "fleetidd.pid before --oneshot"
echo "half-written" >"$FLEETID_STATE/.#status.OneSht"
fleetid_enroll_once || lab_fail "fleetidd --oneshot failed on an enrolled device"
fleetid_expect_eq "$(cat "$FLEETID_RUNTIME/fleetidd.pid")" "$FLEETIDD_PID" "fleetidd.pid after --oneshot"
[ -e "$FLEETID_STATE/.#status.OneSht" ] ||
    lab_fail "fleetidd --oneshot removed a temporary file (it may belong to the running daemon's write)"
rc=0
out=$(timeout 150 "$FLEETIDCTL" --config "$FLEETID_CONF" renew 2>&1) || rc=$?
[ "$rc" -eq 0 ] || lab_fail "fleetidctl renew after a --oneshot run exited $rc: $out"
kill -0 "$FLEETIDD_PID" || lab_fail "the daemon is gone"
[ ! -e "$FLEETID_STATE/fleetidd.pid" ] || lab_fail "a PID file in the state directory, with a runtime directory"

# Flash is not written at every state change: of four refused renewals only
# the first (attempts start failing) reaches the state directory.
inode() { stat -c %i "$1"; }
est_control '{"faults": [{"match": "simplereenroll", "status": 503, "body": "busy (lab)", "retry_after": "1", "count": 4}]}'
"$FLEETIDCTL" --config "$FLEETID_CONF" renew >/dev/null 2>&1 || true
failures_at_least() { [ "$(fleetid_status_get failures)" -ge "$1" ] 2>/dev/null; }
lab_wait_until 60 "a refused renewal in the runtime status" failures_at_least 1 ||
    lab_fail "the refused renewal did not show in the runtime status"
lab_wait_until 10 "the first failure in the state directory's status file" \
    grep -q '^failures=[1-9]' "$FLEETID_STATE/status" || lab_fail "the first failure was not persisted"
persisted=$(inode "$FLEETID_STATE/status")
runtime_before=$(inode "$FLEETID_RUNTIME/status")
lab_wait_until 60 "four refused renewals in the runtime status" failures_at_least 4 ||
    lab_fail "the refused renewals did not show in the runtime status"
[ "$(inode "$FLEETID_RUNTIME/status")" != "$runtime_before" ] || lab_fail "the runtime status was not rewritten"
fleetid_expect_eq "$(inode "$FLEETID_STATE/status")" "$persisted" \
    "the state directory's status file (inode) during the retries after the first failure"
# The renewal that then succeeds changes the due time: written once.
fleetid_wait_state 60 enrolled || lab_fail "not enrolled after the refusals"
lab_wait_until 30 "the state directory's status file rewritten after the renewal" \
    test "$(inode "$FLEETID_STATE/status")" != "$persisted" ||
    lab_fail "the state directory's status file was not rewritten after a successful renewal"
fleetid_expect_eq "$(sed -n 's/^renew_due=//p' "$FLEETID_STATE/status")" \
    "$(sed -n 's/^renew_due=//p' "$FLEETID_RUNTIME/status")" "renew_due persisted"
echo "PASS"
