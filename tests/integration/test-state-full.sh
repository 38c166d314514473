#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A state directory that cannot be written (its file system full) is visible
# outside the journal:
#  - fleetidd keeps a copy of its status in its runtime directory, with the
#    reason it cannot write the state directory, and fleetidctl status shows
#    the failed renewal and that reason (not a stale "enrolled, 0 failures");
#  - fleetidctl check is CRITICAL and says why;
#  - the metrics say fleetid_state_write_error 1;
#  - fleetidctl renew reports the failed renewal instead of waiting for an
#    outcome that never reaches the state directory;
#  - once there is room again, all of it clears with the next renewal.
# The state directory is a small tmpfs filled up, mounted in a private mount
# namespace (unshare -m) so the machine never sees it; without root or
# unshare the test is skipped (77).
set -euo pipefail
source "$(dirname "$0")/../lib/fleetid.sh"

if [ -z "${FLEETID_TEST_MOUNT_NS:-}" ]; then
    [ "$(id -u)" -eq 0 ] || lab_skip "needs root to mount a small tmpfs in a private mount namespace (unshare -m)"
    command -v unshare >/dev/null || lab_skip "unshare (util-linux) is not installed"
    unshare -m --propagation private true 2>/dev/null ||
        lab_skip "unshare -m is not permitted here (container without CAP_SYS_ADMIN?)"
    trap - EXIT
    exec env FLEETID_TEST_MOUNT_NS=1 unshare -m --propagation private bash "$0" "$@"
fi

fleetid_lab_up
fleetid_provision
METRICS=$LAB_TMPDIR/metrics/fleetid.prom
mkdir -p "$(dirname "$METRICS")"
fleetid_write_config "retry: { initial = 1; max = 5; };" "monitoring: { metrics_file = \"$METRICS\"; };"

# The state directory: 256 KiB of tmpfs, in this namespace only.
mkdir -m 0750 "$FLEETID_STATE"
mount -t tmpfs -o size=256k,mode=0750 fleetid-test-state "$FLEETID_STATE" ||
    lab_skip "cannot mount a tmpfs in the private mount namespace"
lab_on_exit "umount -l '$FLEETID_STATE'"

fleetid_daemon_start
fleetid_wait_state 60 enrolled
fleetid_expect_eq "$(fleetid_status_get write_error)" null "write_error while the state directory has room"
rc=0
"$FLEETIDCTL" --config "$FLEETID_CONF" check >/dev/null || rc=$?
fleetid_expect_eq "$rc" 0 "fleetidctl check exit status before the file system is full"
fleetid_expect_grep "$METRICS" '^fleetid_state_write_error 0$' "the metrics before the file system is full"
serial=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial)

# Fill it up, then ask for a renewal: it cannot be stored.
dd if=/dev/zero of="$FLEETID_STATE/filler" bs=4k 2>/dev/null || true
if echo x >"$FLEETID_STATE/probe" 2>/dev/null; then lab_fail "the tmpfs is not full"; fi
kill -USR1 "$FLEETIDD_PID"

# fleetidctl status: the failed renewal, from the runtime copy.
failed() { [ "$(fleetid_status_get failures)" -ge 1 ] 2>/dev/null; }
lab_wait_until 60 "fleetidctl status to show the failed renewal" failed ||
    lab_fail "fleetidctl status still shows state '$(fleetid_status_get state)', failures" \
        "$(fleetid_status_get failures), with a full state directory"
fleetid_expect_eq "$(fleetid_status_get state)" waiting-retry "state with a full state directory"
write_error=$(fleetid_status_get write_error)
grep -q "No space left on device" <<<"$write_error" ||
    lab_fail "status --json write_error does not name the cause: $write_error"
"$FLEETIDCTL" --config "$FLEETID_CONF" status >"$LAB_TMPDIR/status.txt"
fleetid_expect_grep "$LAB_TMPDIR/status.txt" '^Write error: +Could not write .*status: No space left on device' \
    "fleetidctl status"
[ -f "$FLEETID_RUNTIME/status" ] || lab_fail "no status copy in the runtime directory"

# fleetidctl check: CRITICAL, naming the cause.
rc=0
out=$("$FLEETIDCTL" --config "$FLEETID_CONF" check) || rc=$?
fleetid_expect_eq "$rc" 2 "fleetidctl check exit status with a full state directory ($out)"
grep -q "^FLEETID CRITICAL - fleetidd cannot write its state directory: .*No space left on device" <<<"$out" ||
    lab_fail "fleetidctl check does not say that the state directory cannot be written: $out"

# The metrics (in another file system) say so too.
fleetid_expect_grep "$METRICS" '^fleetid_state_write_error 1$' "the metrics with a full state directory"
fleetid_expect_grep "$METRICS" '^fleetid_renewal_consecutive_failures [1-9]' "the metrics' failure count"

# fleetidctl renew gets the outcome: failed (1), not "no outcome" (2) after 120 s.
rc=0
out=$(timeout 150 "$FLEETIDCTL" --config "$FLEETID_CONF" renew 2>&1) || rc=$?
fleetid_expect_eq "$rc" 1 "fleetidctl renew exit status with a full state directory ($out)"
grep -q "renewal did not succeed: waiting-retry" <<<"$out" || lab_fail "fleetidctl renew said: $out"
fleetid_expect_eq "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial)" "$serial" \
    "the stored certificate with a full state directory"

# Room again: the next renewal is stored and everything clears.
rm -f "$FLEETID_STATE/filler"
rc=0
out=$(timeout 150 "$FLEETIDCTL" --config "$FLEETID_CONF" renew 2>&1) || rc=$?
fleetid_expect_eq "$rc" 0 "fleetidctl renew exit status once there is room ($out)"
fleetid_expect_eq "$(fleetid_status_get write_error)" null "write_error once there is room"
rc=0
"$FLEETIDCTL" --config "$FLEETID_CONF" check >/dev/null || rc=$?
fleetid_expect_eq "$rc" 0 "fleetidctl check exit status once there is room"
fleetid_expect_grep "$METRICS" '^fleetid_state_write_error 0$' "the metrics once there is room"
fleetid_expect_grep "$FLEETIDD_LOG" "can be written again" "the daemon's log"
[ "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial)" != "$serial" ] ||
    lab_fail "the renewal once there is room was not stored"
echo "PASS"
