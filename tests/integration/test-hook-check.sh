#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-hook-check.sh: the monitoring building blocks of docs/monitoring.md,
# with real processes and real certificates, without TPM or EST server:
#   - the hook (agent/common/hook.c, run by tests/integration/hook-runner on an
#     sd-event loop): clean environment, no leaked file descriptors, exit status
#     and missing program logged, timeout kills the whole process group (SIGTERM,
#     then SIGKILL after 5 s) within a bound, leftovers of a finished hook are
#     killed, the concurrency limit, and a loop that keeps running meanwhile;
#   - "fleetidctl check": the Nagios exit code and line for each severity and
#     for every kind of unreadable input, on self-signed certificates with
#     chosen validity periods (python3-cryptography);
#   - systemd/fleetid.catalog: journalctl accepts it, and it has an entry for
#     every MESSAGE_ID in agent/ (and none without one).
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

RUNNER=$FLEETID_BUILD_DIR/tests/integration/hook-runner
[ -x "$RUNNER" ] || lab_fail "$RUNNER is not built"
"$LAB_PYTHON" -c "import cryptography" 2>/dev/null || lab_skip "python3-cryptography is missing"

lab_tmpdir
T=$LAB_TMPDIR

step() {
    echo "== $*"
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# gone PID: the process no longer exists (or is a zombie nobody reaped yet).
gone() {
    [ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# run_hook NAME [RUNNER ARGS...]: hook-runner with its stdout in $T/NAME.out,
# its stderr (the log, and the hook's own output) in $T/NAME.err; sets $rc
# and $elapsed_ms. Bounded: 60 s.
run_hook() {
    local name=$1 start
    shift
    start=$(now_ms)
    rc=0
    timeout 60 "$RUNNER" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    elapsed_ms=$(($(now_ms) - start))
    cat "$T/$name.out" "$T/$name.err"
}

out_value() { # out_value NAME KEY: KEY=VALUE from the last line of $T/NAME.out starting with KEY=
    sed -n "s/^$2=\([^ ]*\).*/\1/p" "$T/$1.out" | tail -n 1
}

# hook SCRIPTNAME BODY: an executable /bin/sh hook at $T/SCRIPTNAME.
hook() {
    printf '#!/bin/sh\n%s\n' "$2" >"$T/$1"
    chmod 0755 "$T/$1"
}

expect_no_zombies() {
    fleetid_expect_eq "$(out_value "$1" unreaped)" 0 "$1: children left unreaped by the hook code"
}

# ---------------------------------------------------------------- the hook

step "hook: environment, arguments, file descriptors, success"
hook env.sh "env >$T/env.txt
echo \"\$#:\$1\" >$T/args.txt
ls -l /proc/\$\$/fd/ >$T/fds.txt
ls -l /proc/\$PPID/fd/ >$T/runner-fds.txt"
echo canary >"$T/leak-canary"
SECRET_TOKEN=s3cr3t FLEETID_INHERITED=no run_hook env --leak-fd "$T/leak-canary" "$T/env.sh" 10 renewed \
    FLEETID_STATE=enrolled "FLEETID_ERROR=two
lines" FLEETID_NOT_AFTER=1831536000
fleetid_expect_eq "$rc" 0 "hook-runner exit status"
fleetid_expect_grep "$T/env.out" "^result event=renewed pid=[0-9]+ code=exited status=0 timed_out=0$" "env hook result"
fleetid_expect_grep "$T/env.err" "hook $T/env.sh for event renewed started \(pid [0-9]+\)" "start logged"
fleetid_expect_grep "$T/env.err" "hook $T/env.sh for event renewed \(pid [0-9]+\) succeeded" "success logged"
expect_no_zombies env
# Exactly these variables; the shell adds PWD (and nothing else of the runner's).
sort "$T/env.txt" | grep -v '^PWD=/$' >"$T/env.sorted"
printf '%s\n' "FLEETID_ERROR=two" "FLEETID_EVENT=renewed" "FLEETID_NOT_AFTER=1831536000" \
    "FLEETID_STATE=enrolled" "PATH=/usr/sbin:/usr/bin:/sbin:/bin" "lines" | sort >"$T/env.expected"
diff -u "$T/env.expected" "$T/env.sorted" || lab_fail "the hook's environment is not exactly the documented one"
fleetid_expect_eq "$(cat "$T/args.txt")" "1:renewed" "the hook's arguments"
# The runner holds the canary open without O_CLOEXEC (so the check can see a
# leak); the hook must have only stdin (/dev/null), stdout and stderr (the
# runner's stderr), and what dash opens itself (the script, the redirection).
grep -q "leak-canary" "$T/runner-fds.txt" || lab_fail "the runner did not hold the canary fd: the check would prove nothing"
if grep -q "leak-canary" "$T/fds.txt"; then
    cat "$T/fds.txt"
    lab_fail "a file descriptor of the daemon leaked into the hook"
fi
grep -qE " 0 -> /dev/null$" "$T/fds.txt" || lab_fail "the hook's stdin is not /dev/null: $(cat "$T/fds.txt")"
grep -qE " 2 -> $T/env.err$" "$T/fds.txt" || lab_fail "the hook's stderr is not the daemon's: $(cat "$T/fds.txt")"
while read -r target; do
    case $target in
        /dev/null | "$T/env.err" | "$T/env.sh" | "$T/fds.txt") ;;
        *) lab_fail "unexpected file descriptor in the hook: $target" ;;
    esac
done < <(awk 'NR > 1 { print $NF }' "$T/fds.txt")

step "hook: a failing hook's exit status is logged"
hook fail.sh 'echo "hook output on stdout"; echo "hook output on stderr" >&2; exit 3'
run_hook fail "$T/fail.sh" 10 renewal-failed
fleetid_expect_eq "$rc" 0 "hook-runner exit status"
fleetid_expect_grep "$T/fail.out" "^result event=renewal-failed pid=[0-9]+ code=exited status=3 timed_out=0$" "result"
fleetid_expect_grep "$T/fail.err" "hook $T/fail.sh for event renewal-failed \(pid [0-9]+\) failed with exit status 3" \
    "the failure log line"
# The hook's stdout and stderr both go to the daemon's stderr (the journal).
fleetid_expect_grep "$T/fail.err" "^hook output on stdout$" "the hook's stdout"
fleetid_expect_grep "$T/fail.err" "^hook output on stderr$" "the hook's stderr"
! grep -q "hook output" "$T/fail.out" || lab_fail "the hook's output went to the runner's stdout"
expect_no_zombies fail

step "hook: a missing or non-executable program is reported"
run_hook missing "$T/does-not-exist" 10 renewed
fleetid_expect_eq "$rc" 2 "hook-runner exit status for a missing program"
fleetid_expect_grep "$T/missing.out" "^started=0 dropped=1$" "nothing started"
fleetid_expect_grep "$T/missing.err" "hook $T/does-not-exist for event renewed cannot be run: No such file or directory" \
    "the missing program"
printf '#!/bin/sh\nexit 0\n' >"$T/noexec.sh"
chmod 0644 "$T/noexec.sh"
run_hook noexec "$T/noexec.sh" 10 renewed
fleetid_expect_eq "$rc" 2 "hook-runner exit status for a non-executable program"
fleetid_expect_grep "$T/noexec.err" "cannot be run: Permission denied" "the non-executable program"
# It runs with the daemon's access to the TPM keys: a program others may write
# to, or that another user owns, is not run.
printf '#!/bin/sh\nexit 0\n' >"$T/groupw.sh"
chmod 0775 "$T/groupw.sh"
run_hook groupw "$T/groupw.sh" 10 renewed
fleetid_expect_eq "$rc" 2 "hook-runner exit status for a group-writable program"
fleetid_expect_grep "$T/groupw.err" "not run: mode 0775 lets group or others write it; chmod go-w" "the group-writable program"
if [ "$(id -u)" -eq 0 ]; then
    chmod 0755 "$T/groupw.sh"
    chown 65534 "$T/groupw.sh"
    run_hook othuser "$T/groupw.sh" 10 renewed
    fleetid_expect_eq "$rc" 2 "hook-runner exit status for another user's program"
    fleetid_expect_grep "$T/othuser.err" "not run: owned by uid 65534, neither root nor fleetidd's uid 0" \
        "another user's program"
fi

step "hook: invalid details are refused before anything runs"
for bad in PATH=/tmp LD_PRELOAD=/tmp/x.so FLEETID_EVENT=other FLEETID_=x fleetid_lower=1 FLEETID_NOEQUALS; do
    run_hook bad "$T/env.sh" 10 renewed "$bad"
    fleetid_expect_eq "$rc" 2 "hook-runner exit status for the detail '$bad'"
    fleetid_expect_grep "$T/bad.err" "not run: detail 1 \(\"${bad%%=*}\"\) is not FLEETID_<A-Z0-9_>=VALUE" \
        "the detail '$bad'"
done
run_hook toomany "$T/env.sh" 10 renewed $(seq -f "FLEETID_X%g=1" 1 33)
fleetid_expect_eq "$rc" 2 "hook-runner exit status for 33 details"
fleetid_expect_grep "$T/toomany.err" "not run: more than 32 details" "33 details"
run_hook badevent "$T/env.sh" 10 "Renewed!"
fleetid_expect_eq "$rc" 2 "hook-runner exit status for a bad event name"
fleetid_expect_grep "$T/badevent.err" "not run: invalid event name \"Renewed!\"" "a bad event name"
run_hook relative "env.sh" 10 renewed
fleetid_expect_eq "$rc" 2 "hook-runner exit status for a relative program path"
fleetid_expect_grep "$T/relative.err" "not run: the program \"env.sh\" is not an absolute path" "a relative path"
run_hook zero "$T/env.sh" 0 renewed
fleetid_expect_eq "$rc" 2 "hook-runner exit status for a timeout of 0"

step "hook: the timeout kills the process group (SIGTERM), the loop keeps running"
hook slow.sh "sleep 100 &
echo \$! >$T/slow-grandchild.pid
sleep 100"
run_hook slow "$T/slow.sh" 2 renewed
fleetid_expect_eq "$rc" 0 "hook-runner exit status"
fleetid_expect_grep "$T/slow.out" "^result event=renewed pid=[0-9]+ code=killed status=15 timed_out=1$" "result"
fleetid_expect_grep "$T/slow.err" "still running after its timeout of 2 s: sending SIGTERM to its process group" \
    "the timeout log line"
fleetid_expect_grep "$T/slow.err" "was killed \(SIGTERM\) after its timeout of 2 s" "the outcome log line"
[ "$elapsed_ms" -lt $(((2 + 5 + 3) * 1000)) ] || lab_fail "the slow hook took ${elapsed_ms} ms to end (timeout 2 s)"
gc=$(cat "$T/slow-grandchild.pid")
lab_wait_until 5 "the slow hook's grandchild $gc to be gone" gone "$gc"
# The runner's 100 ms timer kept firing while the hook slept: about 20 ticks.
ticks=$(out_value slow ticks)
[ "$ticks" -ge 10 ] || lab_fail "the event loop was blocked while the hook ran: $ticks ticks in ${elapsed_ms} ms"
expect_no_zombies slow

step "hook: a hook that ignores SIGTERM gets SIGKILL 5 s later, grandchild included"
hook stubborn.sh "trap '' TERM
sleep 100 &
echo \$! >$T/stubborn-grandchild.pid
wait"
run_hook stubborn "$T/stubborn.sh" 1 renewed
fleetid_expect_eq "$rc" 0 "hook-runner exit status"
fleetid_expect_grep "$T/stubborn.out" "^result event=renewed pid=[0-9]+ code=killed status=9 timed_out=1$" "result"
fleetid_expect_grep "$T/stubborn.err" "did not exit 5 s after SIGTERM: sending SIGKILL to its process group" \
    "the SIGKILL log line"
fleetid_expect_grep "$T/stubborn.err" "was killed \(SIGKILL\) after its timeout of 1 s" "the outcome log line"
[ "$elapsed_ms" -ge 5500 ] || lab_fail "SIGKILL came before the 5 s grace period: ${elapsed_ms} ms"
[ "$elapsed_ms" -lt $(((1 + 5 + 3) * 1000)) ] || lab_fail "the stubborn hook took ${elapsed_ms} ms to end"
gc=$(cat "$T/stubborn-grandchild.pid")
lab_wait_until 5 "the stubborn hook's grandchild $gc to be gone" gone "$gc"
expect_no_zombies stubborn

step "hook: what a finished hook leaves running in its group is killed"
hook leaver.sh "(trap '' TERM; exec sleep 100) &
echo \$! >$T/leaver-grandchild.pid
exit 0"
run_hook leaver "$T/leaver.sh" 30 enrolled
fleetid_expect_eq "$rc" 0 "hook-runner exit status"
fleetid_expect_grep "$T/leaver.out" "^result event=enrolled pid=[0-9]+ code=exited status=0 timed_out=0$" "result"
[ "$elapsed_ms" -lt 10000 ] || lab_fail "the runner waited for the hook's background process (${elapsed_ms} ms)"
gc=$(cat "$T/leaver-grandchild.pid")
lab_wait_until 5 "the finished hook's background process $gc to be gone" gone "$gc"

step "hook: at most --max hooks run at once, the others are dropped with a warning"
hook nap.sh "sleep 1"
run_hook busy --count 6 --max 4 "$T/nap.sh" 10 expiring
fleetid_expect_eq "$rc" 0 "hook-runner exit status"
fleetid_expect_grep "$T/busy.out" "^started=4 dropped=2$" "started and dropped hooks"
fleetid_expect_eq "$(grep -c "dropped: 4 hooks are still running" "$T/busy.err")" 2 "warnings about dropped hooks"
fleetid_expect_eq "$(grep -c "^result .*code=exited status=0" "$T/busy.out")" 4 "hooks that ran"
expect_no_zombies busy

# ---------------------------------------------------------------- fleetidctl check

DAY=86400
STATE=$T/state
mkdir -m 0750 "$STATE"
# runtime_dir in the test's own directory: never the machine's /run/fleetid.
printf 'paths: { state_dir = "%s"; runtime_dir = "%s"; };\nest: { url = "https://est.example.net/.well-known/est"; };\n' \
    "$STATE" "$T/run" >"$T/check.conf"

# cert NOT_BEFORE_OFFSET NOT_AFTER_OFFSET [self-signed]: a certificate valid
# from now + the first offset to now + the second (seconds), as operational.pem,
# issued by a test CA that is the state directory's EST CA set
# (est-trust-anchors.pem, as fleetidd stores it); or self-signed.
cert() {
    "$LAB_PYTHON" - "$1" "$2" "$STATE/operational.pem" "$T/check-ca" "$STATE/est-trust-anchors.pem" \
        "${3:-}" <<'EOF'
import datetime, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
ca_key_path, ca_cert_path = sys.argv[4] + ".key", sys.argv[4] + ".pem"
if not os.path.exists(ca_key_path):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "check-test EST CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=400))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    with open(ca_key_path, "wb") as f:
        f.write(ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    with open(ca_cert_path, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
with open(ca_key_path, "rb") as f:
    ca_key = serialization.load_pem_private_key(f.read(), None)
with open(ca_cert_path, "rb") as f:
    ca = x509.load_pem_x509_certificate(f.read())
with open(sys.argv[5], "wb") as f:
    f.write(ca.public_bytes(serialization.Encoding.PEM))
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "check-test")])
issuer, signer = (name, key) if sys.argv[6] == "self-signed" else (ca.subject, ca_key)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(seconds=int(sys.argv[1])))
        .not_valid_after(now + datetime.timedelta(seconds=int(sys.argv[2])))
        .sign(signer, hashes.SHA256()))
with open(sys.argv[3], "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
EOF
}

# check_expect NAME CODE ERE [FLEETIDCTL OPTIONS...]: fleetidctl check exits
# CODE and prints exactly one line, matching ERE.
check_expect() {
    local name=$1 code=$2 ere=$3 out=$T/check-$1.out rc=0
    shift 3
    [ $# -gt 0 ] || set -- --config "$T/check.conf"
    timeout 20 "$FLEETIDCTL" "$@" check >"$out" 2>"$T/check-$name.err" || rc=$?
    echo "$name: $(cat "$out") (exit $rc)"
    fleetid_expect_eq "$rc" "$code" "fleetidctl check exit status ($name)"
    fleetid_expect_eq "$(wc -l <"$out")" 1 "lines printed by fleetidctl check ($name)"
    fleetid_expect_grep "$out" "$ere" "fleetidctl check ($name)"
}

# No fleetidd runs in this test: every result says so after its message.
step "check: no certificate, unreadable inputs, bad usage: UNKNOWN (3)"
check_expect no-cert 3 "^FLEETID UNKNOWN - no operational certificate in $STATE \(state unknown"
printf 'state=enrolling\nfailures=0\n' >"$STATE/status"
check_expect no-cert-enrolling 3 "^FLEETID UNKNOWN - no operational certificate in $STATE \(state enrolling\); fleetidd is not running$"
echo "not a certificate" >"$STATE/operational.pem"
check_expect garbage-cert 3 "^FLEETID UNKNOWN - .*operational.pem.*no PEM certificate"
cert $((-10 * DAY)) $((90 * DAY + 3600))
printf 'this is no status line\n' >"$STATE/status"
check_expect bad-status 3 "^FLEETID UNKNOWN - .*line 1"
rm -f "$STATE/status"
check_expect missing-config 3 "^FLEETID UNKNOWN - .*$T/nonexistent.conf" --config "$T/nonexistent.conf"
printf 'est: { url = "http://plain"; };\n' >"$T/bad.conf"
check_expect bad-config 3 "^FLEETID UNKNOWN - $T/bad.conf:1: est.url must start with https://" --config "$T/bad.conf"
check_expect missing-state-dir 3 "^FLEETID UNKNOWN - .*$T/nowhere" --state-dir "$T/nowhere"
chmod 0777 "$STATE"
check_expect writable-state-dir 3 "^FLEETID UNKNOWN - .*$STATE" --config "$T/check.conf"
chmod 0750 "$STATE"
check_expect bad-option 3 "^FLEETID UNKNOWN - invalid command line" --config "$T/check.conf" --bogus
rc=0
"$FLEETIDCTL" --config "$T/check.conf" check extra >"$T/extra.out" 2>/dev/null || rc=$?
fleetid_expect_eq "$rc" 3 "fleetidctl check with an extra argument"
rc=0
"$FLEETIDCTL" --config "$T/check.conf" status --bogus >/dev/null 2>&1 || rc=$?
fleetid_expect_eq "$rc" 1 "fleetidctl status with a bad option (unchanged)"

# Defaults: renew at 67 % +- 5 %, warning 20 %, error 10 %, critical 3 %. A
# lifetime of 100 days makes one percent a day.
step "check: OK (0) before renewal is due"
cert $((-10 * DAY)) $((90 * DAY + 3600))
check_expect ok 0 "^FLEETID OK - operational certificate valid until [0-9-]{10}T[0-9:]{8}Z, 90 days left; fleetidd is not running \| days_left=90;20:;10: failures=0$"
# 70 % used: within the jitter window (62-72 %), so not due for every device yet
cert $((-70 * DAY)) $((30 * DAY + 3600))
check_expect in-jitter 0 "^FLEETID OK - operational certificate valid until .*, 30 days left; fleetidd is not running \|"

step "check: OK (0) with a notice once renewal is due, with the failures from the status"
cert $((-75 * DAY)) $((25 * DAY + 3600))
check_expect notice 0 "^FLEETID OK - renewal due since .*, not renewed yet; operational certificate valid until .*, 25 days left; fleetidd is not running \| days_left=25;20:;10: failures=0$"
printf 'state=waiting-retry\nlast_error=EST server returned 503: busy | try\\nlater\nfailures=2\n' >"$STATE/status"
check_expect notice-failures 0 "^FLEETID OK - renewal due since .*, 25 days left; 2 consecutive failures \(state waiting-retry\), last error: EST server returned 503: busy / try later; fleetidd is not running \| days_left=25;20:;10: failures=2$"
rm -f "$STATE/status"

step "check: WARNING (1), CRITICAL (2) for error, critical and expired"
cert $((-85 * DAY)) $((15 * DAY + 3600))
check_expect warning 1 "^FLEETID WARNING - operational certificate expires .*, 15 days left \(warning: at most 20% of its lifetime\); fleetidd is not running \|"
cert $((-95 * DAY)) $((5 * DAY + 3600))
check_expect error 2 "^FLEETID CRITICAL - operational certificate expires .*, 5 days left \(error: at most 10% of its lifetime\); fleetidd is not running \| days_left=5;20:;10:"
cert $((-99 * DAY)) $((10 * 3600 + 1800))
check_expect critical 2 "^FLEETID CRITICAL - operational certificate expires .*, 10 hours left \(critical: at most 3% of its lifetime\); fleetidd is not running \| days_left=0;"
cert $((-100 * DAY)) $((-2 * DAY))
check_expect expired 2 "^FLEETID CRITICAL - operational certificate expired on .*, 2 days ago; fleetidd is not running \| days_left=-2;"

step "check: the thresholds come from the configuration"
cert $((-75 * DAY)) $((25 * DAY + 3600))
cp "$T/check.conf" "$T/check30.conf"
echo 'renew: { share_percent = 60; }; monitoring: { warning_percent = 30; error_percent = 20; critical_percent = 5; };' \
    >>"$T/check30.conf"
check_expect conf-warning 1 "^FLEETID WARNING - .*25 days left \(warning: at most 30% of its lifetime\); fleetidd is not running \| days_left=25;30:;20:" \
    --config "$T/check30.conf"
# --state-dir alone: the built-in defaults
check_expect state-dir-defaults 0 "^FLEETID OK - renewal due since" --state-dir "$STATE"

step "check: never OK for what is no working fleetid identity"
# Not valid yet (a server's Date far ahead once let one be stored): critical,
# beyond est.max_clock_skew; within it, a warning.
cert $((300 * DAY)) $((399 * DAY))
check_expect not-yet-valid 2 "^FLEETID CRITICAL - operational certificate not valid yet: valid from .*, (299|300) days from now \(more than est.max_clock_skew\)"
cert 150 $((90 * DAY))
check_expect not-yet-valid-skew 1 "^FLEETID WARNING - operational certificate not valid yet: valid from .*, 2 minutes from now; fleetidd is not running \|"
# Not issued by the EST CA set: self-signed, or no EST CA set to tell.
cert $((-10 * DAY)) $((90 * DAY)) self-signed
check_expect self-signed 2 "^FLEETID CRITICAL - operational certificate not issued by the EST CA set"
cert $((-10 * DAY)) $((90 * DAY))
mv "$STATE/est-trust-anchors.pem" "$T/anchors.saved"
check_expect no-ca-set 3 "^FLEETID UNKNOWN - cannot tell who issued the operational certificate: no EST CA set"
mv "$T/anchors.saved" "$STATE/est-trust-anchors.pem"
# A status file fleetidd never writes.
printf 'state=all-good\nfailures=0\n' >"$STATE/status"
check_expect unknown-state 3 "^FLEETID UNKNOWN - the status file has an unknown state 'all-good'"
printf 'state=enrolled\nfailures=4294967295\n' >"$STATE/status"
check_expect absurd-failures 3 "^FLEETID UNKNOWN - the status file says 4294967295 consecutive failures"
rm -f "$STATE/status"
# Shorter than renew.min_lifetime (default 1 hour): a server problem, a warning.
cert -60 1800
check_expect short-lifetime 1 "^FLEETID WARNING - operational certificate lives only 31 minutes \(renew.min_lifetime is 1 hour\)"

step "check --json"
cert $((-85 * DAY)) $((15 * DAY + 3600))
rc=0
"$FLEETIDCTL" --config "$T/check.conf" --json check >"$T/check.json" || rc=$?
fleetid_expect_eq "$rc" 1 "fleetidctl --json check exit status"
"$LAB_PYTHON" - "$T/check.json" <<'EOF' || lab_fail "fleetidctl --json check: unexpected output: $(cat "$T/check.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["status"] == "WARNING" and j["exit_code"] == 1 and j["severity"] == "warning", j
assert j["days_left"] == 15 and j["thresholds_percent"] == {"warning": 20, "error": 10, "critical": 3}, j
assert j["message"].startswith("operational certificate expires "), j
assert j["state"] is None and j["failures"] is None, j
EOF
rm -f "$STATE/operational.pem"
rc=0
"$FLEETIDCTL" --config "$T/check.conf" --json check >"$T/check.json" || rc=$?
fleetid_expect_eq "$rc" 3 "fleetidctl --json check exit status without a certificate"
"$LAB_PYTHON" -c 'import json, sys; j = json.load(open(sys.argv[1])); assert j["status"] == "UNKNOWN" and j["severity"] is None, j' \
    "$T/check.json" || lab_fail "fleetidctl --json check without a certificate: $(cat "$T/check.json")"

# ---------------------------------------------------------------- the journal catalog

step "catalog: an entry for every MESSAGE_ID fleetid uses, and journalctl accepts it"
CATALOG=$FLEETID_SOURCE_DIR/systemd/fleetid.catalog
sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$CATALOG" | sort >"$T/catalog.ids"
[ -s "$T/catalog.ids" ] || lab_fail "no entries in $CATALOG"
fleetid_expect_eq "$(sort -u "$T/catalog.ids" | wc -l)" "$(wc -l <"$T/catalog.ids")" "duplicate IDs in the catalog"
sed -n 's/^#define FLEETID_MESSAGE_[A-Z_]* "\([0-9a-f]\{32\}\)"$/\1/p' \
    "$FLEETID_SOURCE_DIR/agent/common/message-ids.h" | sort >"$T/header.ids"
diff -u "$T/header.ids" "$T/catalog.ids" || lab_fail "agent/common/message-ids.h and $CATALOG list different IDs"
# IDs written as literals anywhere in agent/ (log_struct() calls, local defines)
grep -rhoE '"[0-9a-f]{32}"' "$FLEETID_SOURCE_DIR/agent" | tr -d '"' | sort -u >"$T/used.ids"
missing=$(comm -23 "$T/used.ids" "$T/catalog.ids")
[ -z "$missing" ] || lab_fail "MESSAGE_IDs used in agent/ without a catalog entry: $missing"
if command -v journalctl >/dev/null; then
    mkdir -p "$T/root/usr/lib/systemd/catalog"
    cp "$CATALOG" "$T/root/usr/lib/systemd/catalog/"
    journalctl --root="$T/root" --update-catalog || lab_fail "journalctl --update-catalog rejects $CATALOG"
    journalctl --root="$T/root" --list-catalog >"$T/catalog.list"
    cat "$T/catalog.list"
    while read -r id; do
        grep -qE "^$id fleetid: [A-Z]" "$T/catalog.list" || lab_fail "journalctl does not list $id with a subject"
    done <"$T/catalog.ids"
else
    echo "journalctl is missing: format not checked by journalctl"
fi

echo "PASS"
