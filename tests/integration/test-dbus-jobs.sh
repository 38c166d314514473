#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-dbus-jobs.sh: Renew() and the jobs of org.fleetid.Agent1
# (docs/dbus-api.md, "Jobs"), on a private dbus-daemon configured like the
# system bus (tests/lib/agent-bus.sh), against the lab EST server, with
# busctl, gdbus and python3-dbus (tests/lib/agent-job.py):
#   - Renew needs admin: AccessDenied for a reader and a user with no grant;
#   - root's Renew (busctl): a job with Id, Kind, OwnerUid, State, RetryAfter;
#     done, GetResult equals the new operational.pem (DER, leaf first);
#   - an admin's Renew (python3-dbus, subscribed to JobRemoved first): done,
#     the chain; the job is not visible to a reader nor to a user with no
#     grant (AccessDenied, naming neither its kind nor its owner), but to root;
#   - NoSuchJob for a job that never was and for paths that are no job;
#   - a held EST server (gdbus): the job is running, GetResult is Busy, a
#     second Renew joins it (same path); then done;
#   - a 202 with Retry-After: waiting-ca with RetryAfter, then done once the
#     server issues;
#   - a 403: failed with EnrollRejected;
#   - Cancel while running (the worker is killed, operational.pem unchanged,
#     back to enrolled) and while waiting-ca: canceled, GetResult Canceled;
#   - a client that disconnects right after Renew: the job goes on to done,
#     fleetidd's open descriptors are as before;
#   - a job not finished when fleetidd stops: JobRemoved canceled;
#   - JobNew and JobRemoved exactly once per job, ids counting up from 1;
#   - the live introspection of a job equals dbus/org.fleetid.Agent1.Job.xml.
# Needs root; skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root: callers run as other uids (setpriv), and the test users exist only in a private mount namespace"
    exit 77
fi
for tool in dbus-daemon busctl gdbus setpriv unshare mount getent openssl; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done
/usr/bin/python3 -c 'import dbus, dbus.mainloop.glib, gi' 2>/dev/null ||
    { echo "SKIP: python3-dbus or python3-gi is missing"; exit 77; }

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_namespace "$0" fleetid-test-admin fleetid-test-reader fleetid-test-nogrant

# ---- inside the namespace ----
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"

step() { echo "== $*"; }
JOB_IFACE=org.fleetid.Agent1.Job
ADMIN_UID=$(id -u fleetid-test-admin)

fleetid_lab_up
fleetid_provision
cat >"$LAB_TMPDIR/access.conf" <<'EOF'
grants = (
        { user = "fleetid-test-admin"; roles = [ "admin" ]; },
        { user = "fleetid-test-reader"; roles = [ "reader" ]; }
);
EOF
chmod 0644 "$LAB_TMPDIR/access.conf"
fleetid_write_config "access: { file = \"$LAB_TMPDIR/access.conf\"; };"
agent_bus_start

# Every JobNew and JobRemoved, as a plain client sees them.
MON=$LAB_TMPDIR/jobs-monitor.out
"$LAB_PYTHON" "$SRCDIR/tests/lib/agent-job.py" "$AGENT_BUS_ADDR" monitor >"$MON" 2>&1 &
MON_PID=$!
lab_on_exit "_lab_kill $MON_PID agent-job.py"
_mon_ready() { grep -q '^ready$' "$MON"; }
lab_wait_until 30 "the signal monitor to subscribe" _mon_ready

fleetid_daemon_start
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving $AGENT_NAME" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own $AGENT_NAME" _serving
PEM=$FLEETID_STATE/operational.pem

# job_prop PATH NAME: a job's property as root reads it with busctl ("s \"done\"").
job_prop() {
    agent_busctl root get-property "$AGENT_NAME" "$1" "$JOB_IFACE" "$2" || lab_fail "get-property $2 of $1: $(cat "$AGENT_OUT")"
    cat "$AGENT_OUT"
}
_job_state_is() { # PATH STATE
    LAB_WAIT_SEEN=$(job_prop "$1" State)
    [ "$LAB_WAIT_SEEN" = "s \"$2\"" ]
}
wait_job_state() { # SECS PATH STATE
    LAB_WAIT_PATHS=$LAB_TMPDIR lab_wait_until "$1" "job $2 to be $3" _job_state_is "$2" "$3"
}
# renew_busctl USER: Renew() with busctl; prints the job path.
renew_busctl() {
    agent_busctl "$1" call "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" Renew || lab_fail "$1: Renew failed: $(cat "$AGENT_OUT")"
    sed -n 's/^o "\(.*\)"$/\1/p' "$AGENT_OUT"
}
# result_hex PATH: GetResult() as root, hex, one certificate a line.
result_hex() {
    agent_busctl root --json=short call "$AGENT_NAME" "$1" "$JOB_IFACE" GetResult || lab_fail "GetResult of $1: $(cat "$AGENT_OUT")"
    aay_json_hex "$AGENT_OUT"
}
expect_chain() { # FILE-OF-HEX WHAT
    pem_der_hex "$PEM" >"$LAB_TMPDIR/chain.want"
    [ -s "$LAB_TMPDIR/chain.want" ] || lab_fail "no certificate in $PEM"
    cmp -s "$LAB_TMPDIR/chain.want" "$1" || lab_fail "$2: the result differs from $PEM"
}
gdbus_call() { # USER PATH METHOD
    agent_gdbus "$1" call --dest "$AGENT_NAME" --object-path "$2" --method "$3"
}

step "Renew needs the role admin"
for user in fleetid-test-reader fleetid-test-nogrant; do
    agent_expect_error "$user" "org.freedesktop.DBus.Error.AccessDenied: .*Renew needs the role 'admin'" Renew \
        call --dest "$AGENT_NAME" --object-path "$AGENT_OBJ" --method "$AGENT_NAME.Renew"
done

step "root's Renew (busctl): a job; done with the new chain"
serial0=$(openssl x509 -in "$PEM" -noout -serial)
JOB1=$(renew_busctl root)
fleetid_expect_eq "$JOB1" "$AGENT_OBJ/job/1" "the first job's path"
fleetid_expect_eq "$(job_prop "$JOB1" Id)" "u 1" "Id"
fleetid_expect_eq "$(job_prop "$JOB1" Kind)" 's "renew"' "Kind"
fleetid_expect_eq "$(job_prop "$JOB1" OwnerUid)" "u 0" "OwnerUid"
fleetid_expect_eq "$(job_prop "$JOB1" RetryAfter)" "t 0" "RetryAfter"
wait_job_state 90 "$JOB1" done
[ "$(openssl x509 -in "$PEM" -noout -serial)" != "$serial0" ] || lab_fail "job 1 is done but operational.pem is the same certificate"
result_hex "$JOB1" >"$LAB_TMPDIR/result1"
expect_chain "$LAB_TMPDIR/result1" "job 1"
echo "   $JOB1 done, GetResult = operational.pem ($(wc -l <"$LAB_TMPDIR/result1") certificate(s))"

step "an admin's Renew (python3-dbus): JobRemoved done, then GetResult"
run_as fleetid-test-admin "$LAB_PYTHON" "$SRCDIR/tests/lib/agent-job.py" "$AGENT_BUS_ADDR" renew --timeout 90 \
    >"$LAB_TMPDIR/admin.out" 2>&1 || lab_fail "the admin's Renew: $(cat "$LAB_TMPDIR/admin.out")"
JOB2=$(sed -n 's/^job //p' "$LAB_TMPDIR/admin.out")
fleetid_expect_eq "$JOB2" "$AGENT_OBJ/job/2" "the admin's job"
grep -q '^removed done$' "$LAB_TMPDIR/admin.out" || lab_fail "the admin's job: $(cat "$LAB_TMPDIR/admin.out")"
sed -n '/^result /,$p' "$LAB_TMPDIR/admin.out" | tail -n +2 >"$LAB_TMPDIR/result2"
expect_chain "$LAB_TMPDIR/result2" "the admin's job"
fleetid_expect_eq "$(job_prop "$JOB2" OwnerUid)" "u $ADMIN_UID" "OwnerUid of the admin's job"
echo "   $JOB2 done for uid $ADMIN_UID"

step "the admin's job is not visible to a reader nor to a user with no grant"
for user in fleetid-test-reader fleetid-test-nogrant; do
    for how in "call --dest $AGENT_NAME --object-path $JOB2 --method $JOB_IFACE.GetResult" \
        "call --dest $AGENT_NAME --object-path $JOB2 --method $JOB_IFACE.Cancel" \
        "call --dest $AGENT_NAME --object-path $JOB2 --method org.freedesktop.DBus.Properties.Get $JOB_IFACE State" \
        "call --dest $AGENT_NAME --object-path $JOB2 --method org.freedesktop.DBus.Properties.GetAll $JOB_IFACE"; do
        # shellcheck disable=SC2086 # the words of $how are the arguments
        agent_expect_error "$user" "org.freedesktop.DBus.Error.AccessDenied: " "${how#*--method }" $how
        if grep -q "renew\|$ADMIN_UID" "$AGENT_OUT"; then
            lab_fail "the refusal tells $user about the job: $(cat "$AGENT_OUT")"
        fi
    done
done
fleetid_expect_grep "$FLEETIDD_LOG" "refused GetResult on $JOB2 to uid $(id -u fleetid-test-reader)" "the refusal logged"
fleetid_expect_eq "$(job_prop "$JOB2" State)" 's "done"' "root reads the admin's job"

step "NoSuchJob"
for path in "$AGENT_OBJ/job/99999" "$AGENT_OBJ/job/0" "$AGENT_OBJ/job/01" "$AGENT_OBJ/job/abc"; do
    for user in root fleetid-test-nogrant; do
        agent_expect_error "$user" "org.fleetid.Agent1.Error.NoSuchJob: no job $path" "GetResult of $path" \
            call --dest "$AGENT_NAME" --object-path "$path" --method "$JOB_IFACE.GetResult"
    done
done

step "a held EST server (gdbus): running, GetResult Busy, a second Renew joins"
est_control '{"faults": [{"match": "simplereenroll", "delay": 6, "count": 1}]}'
gdbus_call root "$AGENT_OBJ" "$AGENT_NAME.Renew" || lab_fail "gdbus Renew: $(cat "$AGENT_OUT")"
JOB3=$(sed -n "s/^(objectpath '\(.*\)',)$/\1/p" "$AGENT_OUT")
fleetid_expect_eq "$JOB3" "$AGENT_OBJ/job/3" "the third job (gdbus)"
wait_job_state 60 "$JOB3" running
agent_expect_error root "org.fleetid.Agent1.Error.Busy: job 3 is running" "GetResult while running" \
    call --dest "$AGENT_NAME" --object-path "$JOB3" --method "$JOB_IFACE.GetResult"
fleetid_expect_eq "$(renew_busctl fleetid-test-admin)" "$JOB3" "a Renew while job 3 runs"
wait_job_state 90 "$JOB3" done
est_control ''

step "a 202 with Retry-After: waiting-ca, then done"
est_control '{"faults": [{"match": "simplereenroll", "status": 202, "retry_after": "4", "count": 1}]}'
JOB4=$(renew_busctl root)
wait_job_state 60 "$JOB4" waiting-ca
retry_after=$(job_prop "$JOB4" RetryAfter | sed 's/^t //')
now_us=$(($(date +%s) * 1000000))
[ "$retry_after" -gt $((now_us - 10000000)) ] && [ "$retry_after" -le $((now_us + 5000000)) ] ||
    lab_fail "RetryAfter $retry_after is not about 4 s after the 202 (now $now_us)"
echo "   waiting-ca, RetryAfter $retry_after"
wait_job_state 90 "$JOB4" done
[ "$(est_log_count op=simplereenroll status=202)" -eq 1 ] || lab_fail "not one 202 in the EST log"
result_hex "$JOB4" >"$LAB_TMPDIR/result4"
expect_chain "$LAB_TMPDIR/result4" "the deferred job"
est_control ''

step "a 403: failed with EnrollRejected"
est_control '{"faults": [{"match": "simplereenroll", "status": 403, "count": 1}]}'
run_as fleetid-test-admin "$LAB_PYTHON" "$SRCDIR/tests/lib/agent-job.py" "$AGENT_BUS_ADDR" renew --timeout 90 \
    >"$LAB_TMPDIR/rejected.out" 2>&1 || lab_fail "the rejected Renew: $(cat "$LAB_TMPDIR/rejected.out")"
grep -q '^removed failed$' "$LAB_TMPDIR/rejected.out" || lab_fail "the rejected job: $(cat "$LAB_TMPDIR/rejected.out")"
grep -q '^error org.fleetid.Agent1.Error.EnrollRejected: renewal failed: .*403' "$LAB_TMPDIR/rejected.out" ||
    lab_fail "the rejected job's result: $(cat "$LAB_TMPDIR/rejected.out")"
est_control ''
# The daemon retries by itself later; a Renew now brings it back to enrolled.
JOB6=$(renew_busctl root)
wait_job_state 90 "$JOB6" done
fleetid_wait_state 30 enrolled

step "Cancel while running: the worker is killed, the identity stays"
est_control '{"faults": [{"match": "simplereenroll", "delay": 30, "count": 1}]}'
before=$(sha256sum <"$PEM")
delays=$(est_log_count event=delay)
JOB7=$(renew_busctl root)
_held() { [ "$(est_log_count event=delay)" -gt "$delays" ]; }
lab_wait_until 60 "the EST server to hold the renewal" _held
fleetid_expect_eq "$(job_prop "$JOB7" State)" 's "running"' "the held job"
agent_busctl fleetid-test-admin call "$AGENT_NAME" "$JOB7" "$JOB_IFACE" Cancel || lab_fail "Cancel: $(cat "$AGENT_OUT")"
wait_job_state 30 "$JOB7" canceled
agent_expect_error root "org.fleetid.Agent1.Error.Canceled: canceled by uid $ADMIN_UID" "GetResult of a canceled job" \
    call --dest "$AGENT_NAME" --object-path "$JOB7" --method "$JOB_IFACE.GetResult"
fleetid_wait_state 30 enrolled
fleetid_expect_eq "$(sha256sum <"$PEM")" "$before" "operational.pem after the Cancel"
est_control ''

step "Cancel while waiting-ca: canceled, back to enrolled"
est_control '{"faults": [{"match": "simplereenroll", "status": 202, "retry_after": "600", "count": 1}]}'
JOB8=$(renew_busctl root)
wait_job_state 60 "$JOB8" waiting-ca
agent_busctl root call "$AGENT_NAME" "$JOB8" "$JOB_IFACE" Cancel || lab_fail "Cancel: $(cat "$AGENT_OUT")"
fleetid_expect_eq "$(job_prop "$JOB8" State)" 's "canceled"' "the job after Cancel in waiting-ca"
fleetid_wait_state 30 enrolled
fleetid_expect_eq "$(sha256sum <"$PEM")" "$before" "operational.pem after the Cancel in waiting-ca"
est_control ''

step "a client that disconnects mid-job: the job goes on"
fds_before=$(find "/proc/$FLEETIDD_PID/fd" -mindepth 1 | wc -l)
est_control '{"faults": [{"match": "simplereenroll", "delay": 3, "count": 1}]}'
run_as fleetid-test-admin "$LAB_PYTHON" "$SRCDIR/tests/lib/agent-job.py" "$AGENT_BUS_ADDR" renew --disconnect \
    >"$LAB_TMPDIR/gone.out" 2>&1 || lab_fail "the disconnecting client: $(cat "$LAB_TMPDIR/gone.out")"
JOB9=$(sed -n 's/^job //p' "$LAB_TMPDIR/gone.out")
wait_job_state 90 "$JOB9" done
est_control ''
fds_after=$(find "/proc/$FLEETIDD_PID/fd" -mindepth 1 | wc -l)
fleetid_expect_eq "$fds_after" "$fds_before" "fleetidd's open descriptors after the job of a client that left"

step "the introspection of a job equals dbus/org.fleetid.Agent1.Job.xml"
agent_busctl root introspect --xml-interface "$AGENT_NAME" "$JOB9" || lab_fail "introspect: $(cat "$AGENT_OUT")"
"$LAB_PYTHON" "$SRCDIR/tests/lib/introspect-compare.py" "$AGENT_OUT" "$SRCDIR/dbus/org.fleetid.Agent1.Job.xml" \
    "$JOB_IFACE" || lab_fail "the live introspection of $JOB9 and dbus/org.fleetid.Agent1.Job.xml differ"
agent_busctl root tree "$AGENT_NAME" || lab_fail "busctl tree: $(cat "$AGENT_OUT")"
grep -q "$JOB9" "$AGENT_OUT" || lab_fail "busctl tree does not list $JOB9: $(cat "$AGENT_OUT")"

step "a job not finished when fleetidd stops ends as canceled"
est_control '{"faults": [{"match": "simplereenroll", "delay": 30, "count": 1}]}'
delays=$(est_log_count event=delay)
JOB10=$(renew_busctl root)
lab_wait_until 60 "the EST server to hold the renewal" _held
kill "$FLEETIDD_PID"
_gone() { ! _lab_alive "$FLEETIDD_PID"; }
lab_wait_until 30 "fleetidd to stop" _gone
est_control ''

step "JobNew and JobRemoved exactly once per job"
_seen_last() { grep -q "^JobRemoved ${JOB10##*/} " "$MON"; }
lab_wait_until 10 "the monitor to see the last JobRemoved" _seen_last
_lab_kill "$MON_PID" agent-job.py
"$LAB_PYTHON" - "$MON" "${JOB10##*/}" <<'PY' || lab_fail "the signals: $(cat "$MON")"
import sys
new, removed = {}, {}
for line in open(sys.argv[1]):
    w = line.split()
    if w[:1] == ["JobNew"]:
        new.setdefault(int(w[1]), []).append(w[2:])
    elif w[:1] == ["JobRemoved"]:
        removed.setdefault(int(w[1]), []).append(w[2:])
last = int(sys.argv[2])
want = {1: "done", 2: "done", 3: "done", 4: "done", 5: "failed", 6: "done", 7: "canceled", 8: "canceled",
        9: "done", 10: "canceled"}
assert last == 10, "the last job is %d, not 10" % last
assert sorted(new) == list(range(1, last + 1)), "JobNew ids %s" % sorted(new)
assert sorted(removed) == list(range(1, last + 1)), "JobRemoved ids %s" % sorted(removed)
for i in range(1, last + 1):
    assert len(new[i]) == 1, "job %d: %d JobNew" % (i, len(new[i]))
    assert len(removed[i]) == 1, "job %d: %d JobRemoved" % (i, len(removed[i]))
    path = "/org/fleetid/Agent1/job/%d" % i
    assert new[i][0] == [path, "renew"], "job %d: JobNew %s" % (i, new[i][0])
    assert removed[i][0] == [path, "renew", want[i]], "job %d: JobRemoved %s, want %s" % (i, removed[i][0], want[i])
print("   %d jobs, one JobNew and one JobRemoved each" % last)
PY
echo "PASS: test-dbus-jobs"
