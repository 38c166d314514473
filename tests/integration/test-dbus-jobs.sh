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
#   - fleetidctl renew over the bus: renewed (exit 0, the new serial), pending
#     on a 202 (exit 3, "pending: the CA deferred the request, retry after"),
#     the wait bounded by --timeout (exit 2), a reader refused (exit 1);
#     fleetidctl chain (PEM) for a reader, refused without a grant;
#     fleetidctl status over the bus: as from the files for root, and the
#     live state for a reader who may not read the state directory;
#   - the bus driver is asked for a caller's credentials once per connection
#     (busctl monitor counts GetConnectionCredentials: 2 for 2 connections
#     of 20 calls each);
#   - JobNew and JobRemoved exactly once per job, ids counting up from 1;
#   - CertificateChanged once per enrollment or renewal that stored a certificate, naming
#     the one in force; TrustGeneration counts up when /cacerts offers a
#     rollover (TrustBundleChanged), is stored, and is the same after a
#     restart;
#   - without fleetidd on the bus: fleetidctl chain reads the state
#     directory, fleetidctl renew (SIGUSR1 fallback) says it is not running;
#   - the live introspection of a job equals dbus/org.fleetid.Agent1.Job.xml.
# Needs root; skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_require --python-dbus busctl gdbus
/usr/bin/python3 -c 'import dbus.mainloop.glib, gi' 2>/dev/null ||
    { echo "SKIP: python3-gi is missing"; exit 77; }
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
lab_on_exit "_lab_kill $MON_PID python3"
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
    # GetAll("") is every interface's properties to sd-bus: refused the same.
    agent_expect_error "$user" "org.freedesktop.DBus.Error.AccessDenied: " "GetAll ''" \
        call --dest "$AGENT_NAME" --object-path "$JOB2" --method org.freedesktop.DBus.Properties.GetAll "''"
done
agent_expect_error fleetid-test-nogrant "org.freedesktop.DBus.Error.AccessDenied: " "GetAll '' on the agent" \
    call --dest "$AGENT_NAME" --object-path "$AGENT_OBJ" --method org.freedesktop.DBus.Properties.GetAll "''"
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
# A call that expects no reply (dbus-send's default) gets no refusal on the
# wire: it must still go no further than the access check (with libsystemd
# 252 the refusal's reply function returns 0 for it, which a filter must not
# pass on: the call would reach the vtable and cancel the job). busctl has
# written it to the bus when it exits; root's call after it connects, says
# Hello and is queued to fleetidd behind it, so its answer comes after.
agent_busctl fleetid-test-nogrant --expect-reply=no call "$AGENT_NAME" "$JOB7" "$JOB_IFACE" Cancel ||
    lab_fail "Cancel without a reply could not be sent: $(cat "$AGENT_OUT")"
fleetid_expect_eq "$(job_prop "$JOB7" State)" 's "running"' "the held job after a no-reply Cancel by a user with no grant"
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

step "fleetidctl renew over the bus: renewed, pending on a 202, the wait bounded, refused for a reader"
ctl() { # USER ARGS...: fleetidctl as USER; output in $CTL_OUT, returns its status
    local user=$1 rc=0
    shift
    if [ "$user" = root ]; then
        "$FLEETIDCTL" --config "$FLEETID_CONF" "$@" >"$CTL_OUT" 2>&1 || rc=$?
    else
        run_as "$user" "$FLEETIDCTL" --config "$FLEETID_CONF" "$@" >"$CTL_OUT" 2>&1 || rc=$?
    fi
    return $rc
}
CTL_OUT=$LAB_TMPDIR/fleetidctl.out
rc=0; ctl root renew || rc=$?
fleetid_expect_eq "$rc" 0 "fleetidctl renew exit status ($(cat "$CTL_OUT"))"
grep -q "^renewal requested from fleetidd (job $AGENT_OBJ/job/10)" "$CTL_OUT" || lab_fail "fleetidctl renew: $(cat "$CTL_OUT")"
grep -q '^renewed$' "$CTL_OUT" || lab_fail "fleetidctl renew: $(cat "$CTL_OUT")"
serial=$(openssl x509 -in "$PEM" -noout -serial | sed 's/^serial=//')
grep -qi "^operational certificate serial 0*${serial#0}, valid until " "$CTL_OUT" ||
    lab_fail "fleetidctl renew does not name the new serial $serial: $(cat "$CTL_OUT")"
est_control '{"faults": [{"match": "simplereenroll", "status": 202, "retry_after": "3", "count": 1}]}'
rc=0; ctl root renew || rc=$?
fleetid_expect_eq "$rc" 3 "fleetidctl renew exit status on a 202 ($(cat "$CTL_OUT"))"
grep -q "^pending: the CA deferred the request, retry after 20[0-9-]*T[0-9:]*Z; fleetidd asks again by itself (job $AGENT_OBJ/job/11)" "$CTL_OUT" ||
    lab_fail "fleetidctl renew on a 202: $(cat "$CTL_OUT")"
wait_job_state 90 "$AGENT_OBJ/job/11" done
est_control '{"faults": [{"match": "simplereenroll", "delay": 8, "count": 1}]}'
rc=0; ctl root --timeout 2 renew || rc=$?
fleetid_expect_eq "$rc" 2 "fleetidctl renew --timeout 2 against a held server ($(cat "$CTL_OUT"))"
grep -q "^no outcome within 2s; the renewal goes on in fleetidd (job $AGENT_OBJ/job/12)" "$CTL_OUT" ||
    lab_fail "fleetidctl renew --timeout 2: $(cat "$CTL_OUT")"
wait_job_state 90 "$AGENT_OBJ/job/12" done
est_control ''
rc=0; ctl fleetid-test-reader renew || rc=$?
fleetid_expect_eq "$rc" 1 "fleetidctl renew as a reader ($(cat "$CTL_OUT"))"
grep -q "fleetidctl: fleetidd refused the renewal: Renew needs the role 'admin'.*\[org.freedesktop.DBus.Error.AccessDenied\]" "$CTL_OUT" ||
    lab_fail "fleetidctl renew as a reader: $(cat "$CTL_OUT")"
echo "   renewed (job 10), pending (job 11), no outcome within 2s (job 12), refused for the reader"

step "fleetidctl chain over the bus"
ctl fleetid-test-reader chain || lab_fail "fleetidctl chain as the reader: $(cat "$CTL_OUT")"
pem_der_hex "$CTL_OUT" >"$LAB_TMPDIR/ctl-chain"
expect_chain "$LAB_TMPDIR/ctl-chain" "fleetidctl chain as the reader"
rc=0; ctl fleetid-test-nogrant chain || rc=$?
fleetid_expect_eq "$rc" 1 "fleetidctl chain as a user with no grant ($(cat "$CTL_OUT"))"
grep -q "GetCertificateChain needs the role 'reader'" "$CTL_OUT" || lab_fail "fleetidctl chain as nogrant: $(cat "$CTL_OUT")"

step "fleetidctl status over the bus: the same as the files for root, the live state for a reader"
ctl root status --json || lab_fail "fleetidctl status: $(cat "$CTL_OUT")"
cp "$CTL_OUT" "$LAB_TMPDIR/status-bus.json"
ctl root --state-dir "$FLEETID_STATE" status --json || lab_fail "fleetidctl status --state-dir: $(cat "$CTL_OUT")"
cp "$CTL_OUT" "$LAB_TMPDIR/status-files.json"
"$LAB_PYTHON" - "$LAB_TMPDIR/status-bus.json" "$LAB_TMPDIR/status-files.json" "$FLEETIDD_PID" <<'PY' ||
import json, sys
bus, files = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert bus["daemon_running"] is True and bus["daemon_pid"] == int(sys.argv[3]), bus
for k in ("state", "last_error", "last_success", "renew_due"):
    assert bus[k] == files[k], "%s: bus %r, files %r" % (k, bus[k], files[k])
for k in ("serial", "subject", "issuer", "not_before", "not_after"):
    assert bus["operational_certificate"][k] == files["operational_certificate"][k], "operational %s: %r, %r" % (k, bus["operational_certificate"][k], files["operational_certificate"][k])
PY
    lab_fail "fleetidctl status over the bus and from the files differ: $(cat "$LAB_TMPDIR/status-bus.json" "$LAB_TMPDIR/status-files.json")"
ctl root status || lab_fail "fleetidctl status: $(cat "$CTL_OUT")"
grep -q "^Daemon: *running (pid $FLEETIDD_PID)" "$CTL_OUT" || lab_fail "fleetidctl status: $(cat "$CTL_OUT")"
# The reader may not read the state directory (0750 root), but reads the API.
run_as fleetid-test-reader test -r "$FLEETID_STATE/status" && lab_fail "the reader can read the state directory: the next check means nothing"
ctl fleetid-test-reader status || lab_fail "fleetidctl status as the reader: $(cat "$CTL_OUT")"
grep -q "^State: *enrolled$" "$CTL_OUT" || lab_fail "fleetidctl status as the reader: $(cat "$CTL_OUT")"
serial=$(openssl x509 -in "$PEM" -noout -serial | sed 's/^serial=//')
grep -qi "serial.*${serial#0}" "$CTL_OUT" || lab_fail "fleetidctl status as the reader shows no serial $serial: $(cat "$CTL_OUT")"
echo "   root: the bus and the files agree; the reader sees State and the serial without the directory"

step "the access check asks the bus driver once per connection (the credentials cache)"
busctl --address="$AGENT_BUS_ADDR" monitor --match "type='method_call',member='GetConnectionCredentials'" \
    >"$LAB_TMPDIR/creds.out" 2>&1 &
CREDS_MON=$!
lab_on_exit "_lab_kill $CREDS_MON busctl"
creds_asked() { grep -c "Member=GetConnectionCredentials" "$LAB_TMPDIR/creds.out" || true; }
_creds_at_least() { [ "$(creds_asked)" -ge "$1" ]; }
# A marker call (a new connection: one question) shows the monitor is listening.
for _ in $(seq 30); do
    ctl root chain || lab_fail "fleetidctl chain: $(cat "$CTL_OUT")"
    LAB_WAIT_PATHS=$LAB_TMPDIR lab_wait_until 2 "busctl monitor to show a GetConnectionCredentials" _creds_at_least 1 && break
done
_creds_at_least 1 || lab_fail "busctl monitor shows no GetConnectionCredentials: $(cat "$LAB_TMPDIR/creds.out")"
base=$(creds_asked)
for user in fleetid-test-reader fleetid-test-admin; do
    out=$(run_as "$user" "$LAB_PYTHON" "$SRCDIR/tests/lib/agent-job.py" "$AGENT_BUS_ADDR" calls 20) ||
        lab_fail "$user: 20 calls on one connection: $out"
done
ctl root chain || lab_fail "fleetidctl chain: $(cat "$CTL_OUT")"
LAB_WAIT_PATHS=$LAB_TMPDIR lab_wait_until 30 "the monitor to see the last marker" _creds_at_least $((base + 3))
fleetid_expect_eq "$(creds_asked)" $((base + 3)) \
    "GetConnectionCredentials calls for 2 connections of 20 calls each and one marker (after $base)"
_lab_kill "$CREDS_MON" busctl
echo "   40 calls on 2 connections: the bus driver asked twice"

step "TrustGeneration counts the changes of the EST CA set (TrustBundleChanged)"
trust_gen() { agent_busctl root get-property "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" TrustGeneration ||
    lab_fail "TrustGeneration: $(cat "$AGENT_OUT")"; sed 's/^t //' "$AGENT_OUT"; }
gen0=$(trust_gen)
[ "$gen0" -ge 1 ] || lab_fail "TrustGeneration $gen0 after the first enrollment stored an EST CA set"
fleetid_expect_eq "$(cat "$FLEETID_STATE/trust-generation")" "$gen0" "the stored trust generation"
"$LAB_PYTHON" "$LAB_PKI_PY" rollover "$EST_PKI" >/dev/null || lab_fail "pki.py rollover failed"
est_control '{"cacerts": "rollover"}'
JOB13=$(renew_busctl root)
wait_job_state 90 "$JOB13" done
gen1=$(trust_gen)
[ "$gen1" -gt "$gen0" ] || lab_fail "TrustGeneration $gen1 after /cacerts offered a rollover (before: $gen0)"
_seen_gen() { grep -q "^TrustBundleChanged $gen1$" "$MON"; }
lab_wait_until 10 "TrustBundleChanged $gen1" _seen_gen
echo "   TrustGeneration $gen0 -> $gen1"

step "a job not finished when fleetidd stops ends as canceled"
est_control '{"faults": [{"match": "simplereenroll", "delay": 30, "count": 1}]}'
delays=$(est_log_count event=delay)
JOB14=$(renew_busctl root)
lab_wait_until 60 "the EST server to hold the renewal" _held
kill "$FLEETIDD_PID"
_gone() { ! _lab_alive "$FLEETIDD_PID"; }
lab_wait_until 30 "fleetidd to stop" _gone
est_control ''

step "JobNew and JobRemoved exactly once per job"
_seen_last() { grep -q "^JobRemoved ${JOB14##*/} " "$MON"; }
lab_wait_until 10 "the monitor to see the last JobRemoved" _seen_last
_lab_kill "$MON_PID" python3
"$LAB_PYTHON" - "$MON" "${JOB14##*/}" <<'PY' || lab_fail "the signals: $(cat "$MON")"
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
        9: "done", 10: "done", 11: "done", 12: "done", 13: "done", 14: "canceled"}
assert last == 14, "the last job is %d, not 14" % last
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

step "CertificateChanged once per new certificate; TrustBundleChanged counting up"
"$LAB_PYTHON" - "$MON" "$(openssl x509 -in "$PEM" -noout -serial | sed 's/^serial=//')" \
    "$(date -d "$(openssl x509 -in "$PEM" -noout -enddate | sed 's/^notAfter=//')" +%s)" <<'PY' ||
import sys
certs, gens = [], []
for line in open(sys.argv[1]):
    w = line.split()
    if w[:1] == ["CertificateChanged"]:
        certs.append((w[1], int(w[2])))
    elif w[:1] == ["TrustBundleChanged"]:
        gens.append(int(w[1]))
# the first enrollment, and the renew jobs that ended done: 1, 2, 3, 4, 6, 9, 10, 11, 12, 13
assert len(certs) == 11, "%d CertificateChanged, want 11: %s" % (len(certs), certs)
assert len(set(c[0] for c in certs)) == 11, "a serial announced twice: %s" % certs
assert int(certs[-1][0], 16) == int(sys.argv[2], 16), "the last CertificateChanged %s, in force %s" % (certs[-1], sys.argv[2])
assert certs[-1][1] == int(sys.argv[3]) * 1000000, "not_after %d, want %s s" % (certs[-1][1], sys.argv[3])
assert gens and gens == list(range(gens[0], gens[0] + len(gens))), "TrustBundleChanged generations %s" % gens
print("   %d CertificateChanged, TrustBundleChanged %s" % (len(certs), gens))
PY
    lab_fail "the signals: $(cat "$MON")"
gen_last=$(sed -n 's/^TrustBundleChanged //p' "$MON" | tail -n 1)

step "TrustGeneration does not go back across a restart"
fleetid_daemon_start
lab_wait_until 30 "fleetidd to own $AGENT_NAME again" _serving
fleetid_expect_eq "$(trust_gen)" "$gen_last" "TrustGeneration after a restart"
fleetid_stop_daemon_bounded 30
step "without fleetidd on the bus: fleetidctl chain reads the state directory, renew says it is not running"
ctl root chain || lab_fail "fleetidctl chain without fleetidd: $(cat "$CTL_OUT")"
pem_der_hex "$CTL_OUT" >"$LAB_TMPDIR/ctl-chain-files"
expect_chain "$LAB_TMPDIR/ctl-chain-files" "fleetidctl chain from the state directory"
rc=0; ctl root renew || rc=$?
fleetid_expect_eq "$rc" 1 "fleetidctl renew without fleetidd ($(cat "$CTL_OUT"))"
grep -q "fleetidd is not running" "$CTL_OUT" || lab_fail "fleetidctl renew without fleetidd: $(cat "$CTL_OUT")"
echo "PASS: test-dbus-jobs"
