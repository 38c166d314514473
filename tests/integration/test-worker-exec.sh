#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-worker-exec.sh: fleetidd runs its work in a separate executable,
# fleetid-worker (docs/architecture.md, "Worker processes"):
#  - fleetidd maps neither libcurl, nor libssl, nor the tpm2-tss libraries
#    (its NEEDED entries); fleetid-worker does;
#  - fleetidd refuses to start without a worker it can execute, and says so;
#  - a worker that cannot be exec'd makes the attempt fail as a transient
#    failure that says so, and fleetidd goes on;
#  - fleetid-worker started by hand, or with a setup that is not fleetidd's,
#    refuses with a clear message.
# Needs no TPM and no EST server (the worker never gets that far).
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

lab_require_tools readelf python3
lab_tmpdir
T=$LAB_TMPDIR
WORKER=$FLEETIDD_WORKER

step() {
    echo "== $*"
}

step "fleetidd links no libcurl, libssl or tpm2-tss; fleetid-worker does"
readelf -d "$FLEETIDD" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' >"$T/daemon.needed"
readelf -d "$WORKER" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' >"$T/worker.needed"
echo "   fleetidd: $(tr '\n' ' ' <"$T/daemon.needed")"
if grep -E '^(libcurl|libssl|libtss2-)' "$T/daemon.needed"; then
    lab_fail "fleetidd links the libraries above: only fleetid-worker may"
fi
for lib in libcurl.so libssl.so libtss2-esys.so libtss2-tctildr.so; do
    grep -q "^$lib" "$T/worker.needed" || lab_fail "fleetid-worker does not link $lib: $(tr '\n' ' ' <"$T/worker.needed")"
done

mkdir -p "$T/state" "$T/run"
cat >"$T/fleetid.conf" <<CONF
est: { url = "https://127.0.0.1:9/.well-known/est"; trust_anchors = "$T/anchors.pem"; };
paths: { state_dir = "$T/state"; runtime_dir = "$T/run"; };
retry: { initial = 3600; };
CONF

# daemon_refuses WORKER ERE: fleetidd exits 1 at once, with ERE in its log.
daemon_refuses() {
    local rc=0
    FLEETIDD_WORKER=$1 DBUS_SYSTEM_BUS_ADDRESS=unix:path=$T/no-bus \
        timeout 30 "$FLEETIDD" --config "$T/fleetid.conf" >"$T/refuse.log" 2>&1 || rc=$?
    cat "$T/refuse.log"
    [ "$rc" = 1 ] || lab_fail "fleetidd exited $rc with worker $1, not 1"
    grep -qE -- "$2" "$T/refuse.log" || lab_fail "fleetidd did not say why: no /$2/"
}

step "no worker at the path: fleetidd does not start"
daemon_refuses "$T/missing-worker" "the worker executable $T/missing-worker: No such file or directory; not starting"

step "a worker that may not be executed: fleetidd does not start"
cp "$WORKER" "$T/worker-644"
chmod 0644 "$T/worker-644"
daemon_refuses "$T/worker-644" "the worker executable $T/worker-644 cannot be executed: Permission denied"

step "a worker that cannot be exec'd: the attempt fails and says so; fleetidd goes on"
printf 'not a program\n' >"$T/bad-worker"
chmod 0755 "$T/bad-worker"
# Started with SIGCHLD ignored, as a parent may leave it across exec: the
# kernel would reap the worker before fleetidd reads its exit status (127),
# unless fleetidd sets SIGCHLD back to its default.
FLEETIDD_WORKER=$T/bad-worker DBUS_SYSTEM_BUS_ADDRESS=unix:path=$T/no-bus \
    python3 -c 'import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])' \
    "$FLEETIDD" --config "$T/fleetid.conf" >"$T/daemon.log" 2>&1 &
pid=$!
lab_on_exit "_lab_kill $pid fleetidd"
for _ in $(seq 1 100); do
    grep -q "could not be run" "$T/daemon.log" && break
    sleep 0.1
done
cat "$T/daemon.log"
grep -q "cannot execute the worker $T/bad-worker: Exec format error" "$T/daemon.log" ||
    lab_fail "the failed exec is not logged with its reason"
grep -qE "the enrollment worker could not be run \(exit status 127; the log says why\)" "$T/daemon.log" ||
    lab_fail "the attempt's failure does not say that the worker could not be run"
kill -0 "$pid" 2>/dev/null || lab_fail "fleetidd did not go on after the failed attempt"
kill "$pid"
wait "$pid" || lab_fail "fleetidd did not stop cleanly on SIGTERM"

step "fleetid-worker by hand: usage, exit 2"
rc=0
"$WORKER" >"$T/hand.out" 2>&1 || rc=$?
cat "$T/hand.out"
[ "$rc" = 2 ] || lab_fail "fleetid-worker without a role exited $rc, not 2"
grep -q "is started by fleetidd, not by hand" "$T/hand.out" || lab_fail "no usage message"
rc=0
"$WORKER" enroll 3</dev/null >"$T/hand.out" 2>&1 || rc=$?
cat "$T/hand.out"
[ "$rc" = 2 ] || lab_fail "fleetid-worker enroll without its socket exited $rc, not 2"
grep -q "fd 3 is not a socket" "$T/hand.out" || lab_fail "no message about fd 3"

step "a setup that is not fleetidd's: refused, nothing done"
python3 - "$WORKER" "$T/state" >"$T/setup.out" 2>&1 <<'PY' || lab_fail "$(cat "$T/setup.out")"
import os, socket, subprocess, sys

worker, state = sys.argv[1], sys.argv[2]
before = sorted(os.listdir(state))
import struct

# Nothing; garbage; a bad header; a header from another build (as between an
# upgrade's unpacking and the daemon's restart).
bad_config = struct.pack("=IIIIQ", 0x55444946, 8, 0, 0, 0x1234) + b"FCFG\x01\x00\x00\x00"
for setup in (b"", b"garbage" * 10, b"FIDU" + b"\xff" * 8, bad_config):
    a, b = socket.socketpair()
    r = os.memfd_create("setup")  # as fleetidd hands it over
    os.write(r, setup)

    def fds(b=b, r=r):
        os.dup2(b.fileno(), 3)
        os.dup2(r, 4)

    p = subprocess.run([worker, "enroll"], preexec_fn=fds, pass_fds=(3, 4), capture_output=True, text=True,
                       timeout=30)
    b.close()
    os.close(r)
    a.settimeout(5)
    sent = a.recv(65536)
    a.close()
    print(f"{len(setup)} bytes: exit {p.returncode}: {p.stderr.strip()}")
    assert p.returncode == 1, "not refused"
    assert "its setup from fleetidd is unusable" in p.stderr, "no reason given"
    if setup is bad_config:
        assert "a setup from another build of fleetidd" in p.stderr, "the wrong reason"
    assert sent == b"", "the worker sent something"
assert sorted(os.listdir(state)) == before, f"the state directory changed: {os.listdir(state)}"
PY
cat "$T/setup.out"
echo "PASS"
