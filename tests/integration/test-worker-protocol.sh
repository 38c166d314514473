#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The daemon's side of a worker (agent/fleetidd/worker.c, run by
# tests/integration/worker-check on an sd-event loop): a result travels
# whole (class, -errno, text, Retry-After, deferred key, certificates), a
# state reported on the way arrives first, and whatever a broken worker
# sends, or however it ends, the parent gets one transient failure that says
# what was wrong, and the child is reaped:
#   bad magic, an over-long frame, a frame cut short, an unknown frame type,
#   a state out of range, a result of the wrong size, a class out of range or
#   contradicting the -errno, a frame after the result, more than 1 MiB in
#   all, a crash, an exit without a result, a worker another process reaped
#   (its status unknown, said so), a worker past its deadline, and one that
#   ignores SIGTERM (killed 200 ms later).
set -euo pipefail
source "$(dirname "$0")/../lib/tpm-env.sh"

BUILD=${FLEETID_BUILD_DIR:-$(dirname "$0")/../../build}
CHECK=$BUILD/tests/integration/worker-check
[ -x "$CHECK" ] || lab_fail "$CHECK is not built"
lab_tmpdir
T=$LAB_TMPDIR

# check SCENARIO ERE [PEM]: worker-check's "done" line must match ERE, and
# nothing it started may be left.
check() {
    local name=$1 ere=$2 out
    shift 2
    out=$(timeout 20 "$CHECK" "$name" "$@" 2>"$T/$name.err") ||
        lab_fail "$name: worker-check failed: $(cat "$T/$name.err")"
    echo "$out" >"$T/$name.out"
    grep -qE -- "^done $ere" <<<"$out" || lab_fail "$name: expected /^done $ere/, got: $out"
    [ "$(grep -c '^done ' <<<"$out")" = 1 ] || lab_fail "$name: not exactly one result: $out"
    grep -qx "children=none" <<<"$out" || lab_fail "$name: the worker was not reaped: $out"
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /CN=one \
    -days 2 -out "$T/one.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /CN=two \
    -days 2 -out "$T/two.pem" 2>/dev/null
cat "$T/one.pem" "$T/two.pem" >"$T/two-certs.pem"

check ok "error=0 outcome=ok fetched=1 http=200 retry=0/0 text='' spki=5 adopted=2 refused=0 diag=''$" \
    "$T/two-certs.pem"
grep -qx "state enrolling" "$T/ok.out" || lab_fail "ok: the state reported on the way did not arrive"
# A /cacerts answer with a certificate too large for a frame (refused by the
# trust store), and more adopted ones than a list may carry: left out of the
# report, and the result still arrives (a renewal stored must not look failed).
printf '[req]\ndistinguished_name = dn\n[dn]\n[big]\nnsComment = %s\n' "$(head -c 70000 /dev/zero | tr '\0' x)" \
    >"$T/big.cnf"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /CN=big \
    -days 2 -config "$T/big.cnf" -extensions big -out "$T/big.pem" 2>/dev/null
[ "$(openssl x509 -in "$T/big.pem" -outform DER | wc -c)" -gt 65536 ] || lab_fail "the big certificate is not over 64 KiB"
cat "$T/big.pem" "$T/one.pem" >"$T/big-certs.pem"
check big-certs "error=0 outcome=ok .* adopted=64 refused=1 diag=''$" "$T/big-certs.pem"
grep -q "1 refused CA certificate(s) are too large or too many to report" "$T/big-certs.err" ||
    lab_fail "big-certs: the certificate left out is not said: $(cat "$T/big-certs.err")"
grep -q "6 adopted CA certificate(s) are too large or too many to report" "$T/big-certs.err" ||
    lab_fail "big-certs: the certificates left out are not said: $(cat "$T/big-certs.err")"
check rejected "error=-13 outcome=rejected fetched=0 http=403 retry=1/90 text='90' .*diag='EST server returned 403: go away'$"
check crash "error=-10 outcome=transient .*diag='the renewal worker was killed by signal 6 without a result'$"
grep -qx "state renewing" "$T/crash.out" || lab_fail "crash: the state sent before the crash did not arrive"
check exit "error=-10 outcome=transient .*diag='the renewal worker exited with status 3 without a result'$"
check bad-magic "error=-71 outcome=transient .*bad message \(a frame header that is not fleetid's"
check too-long "error=-71 outcome=transient .*bad message \(a frame header that is not fleetid's \(or too long\)"
check truncated "error=-71 outcome=transient .*bad message \(its message ends within a frame\)"
check unknown-type "error=-71 outcome=transient .*bad message \(an unknown frame type 99\)"
check bad-state "error=-71 outcome=transient .*bad message \(an unknown state 99\)"
check short-result "error=-71 outcome=transient .*bad message \(a result of 8 bytes, not [0-9]+\)"
check bad-outcome "error=-71 outcome=transient .*bad message \(a result with values out of range\)"
check ok-with-error "error=-71 outcome=transient .*bad message \(a result with values out of range\)"
check after-result "error=-71 outcome=transient .*bad message \(a frame after the result\)"
check flood "error=-71 outcome=transient .*bad message \(its message is longer than 1048576 bytes\)"
# The inline mode (FLEETIDD_INLINE_WORKERS=1, for the loop-latency bench)
# blocks the loop on the worker: a worker that floods it must be killed, not
# waited for while it blocks on the full socket.
WORKER_CHECK_INLINE=1 check flood "error=-71 outcome=transient .*bad message \(its message is longer than 1048576 bytes\)"
WORKER_CHECK_INLINE=1 check ok "error=0 outcome=ok fetched=1 http=200 retry=0/0 text='' spki=5 adopted=2 refused=0 diag=''$" \
    "$T/two-certs.pem"

# A tracer holds the worker's exit for 0.5 s (what the LeakSanitizer of an
# ASan build does at every exit): its pidfd reports the exit before the
# daemon may reap it, and the daemon must look again (common/child-watch.h;
# sd-event's own child source never did, and the daemon waited for ever).
out=$(timeout 20 "$CHECK" traced-exit 2>"$T/traced-exit.err") ||
    lab_fail "traced-exit: worker-check failed or hung (the worker's exit was not seen): $(cat "$T/traced-exit.err")"
if grep -q "diag='no-ptrace'" <<<"$out"; then
    echo "traced-exit: not checked, ptrace is not allowed here (kernel.yama.ptrace_scope)"
else
    check traced-exit "error=0 outcome=ok .*diag=''$"
fi
check reaped-elsewhere "error=-10 outcome=transient .*diag='the renewal worker ended with its exit status lost to another waiter without a result'$"
check hang "error=-110 outcome=transient .*diag='the renewal worker did not finish within 1s and was stopped \(it was killed by signal 15\)'$"
check stop "error=-10 outcome=transient .*diag='the renewal worker was killed by signal 15 without a result'$"
check ignore-term "error=-10 outcome=transient .*diag='the renewal worker was killed by signal 9 without a result'$"
grep -q "did not end on SIGTERM within 200ms; killing it" "$T/ignore-term.err" ||
    lab_fail "ignore-term: no warning that SIGKILL followed: $(cat "$T/ignore-term.err")"
echo "PASS: test-worker-protocol"
