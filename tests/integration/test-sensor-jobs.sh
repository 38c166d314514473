#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-sensor-jobs.sh: how a sensor request's job meets a slow, busy or
# unreachable EST server (docs/dbus-api.md, "RequestSensorCertificate"), on a
# private dbus-daemon configured like the system bus, against the lab EST
# server as a registration authority (label "sensors"; no evidence needed:
# test-sensor-broker.sh covers it):
#   - 503 with Retry-After (RFC 7030 4.2.3, RFC 8951): the job waits in
#     waiting-ca with RetryAfter set, is asked again, and is issued;
#   - 429 and then a connection reset (the server unreachable for a while):
#     asked again after the backoff, issued;
#   - a server busy for good, or one that never answers: the job fails after
#     broker.retry_limit retries with ServerUnreachable naming the bound;
#     Cancel while it waits works;
#   - Cancel (and ForgetSensor) while the CSR is with the EST server: refused
#     with Busy, and the certificate the CA issues is recorded and is the
#     job's result (nothing the CA issued is lost);
#   - a sensor POST the server stalls: meanwhile the loop answers
#     GetCertificateChain and the gateway renews (fleetidctl renew) before the
#     stalled request is answered; past broker.request_timeout the sensor
#     worker is killed, the job fails naming the timeout, and the next request
#     is issued by a new worker.
# Needs root (callers run as other uids); skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_require --python-dbus
agent_bus_namespace "$0" fleetid-test-broker

# ---- inside the namespace ----
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"

step() { echo "== $*"; }
CLIENT=$SRCDIR/tests/integration/sensor-client.py
BROKER=fleetid-test-broker
JOB_IFACE=org.fleetid.Agent1.Job
client() { run_as "$BROKER" "$LAB_PYTHON" "$CLIENT" "$@"; }
# faults JSON-LIST: the EST server's faults for the sensors' label (ra_eku stays on).
faults() { est_control "{\"ra_eku\": true, \"faults\": $1}"; }

fleetid_lab_up --label sensors
fleetid_provision
est_control '{"ra_eku": true}'
S=$LAB_TMPDIR/sensor
mkdir -p "$S"
chmod 0777 "$S"
cat >"$LAB_TMPDIR/access.conf" <<EOF
grants = ( { user = "$BROKER"; roles = [ "sensor-broker" ]; } );
EOF
chmod 0644 "$LAB_TMPDIR/access.conf"
# retry: the waits between attempts (the gateway's own and a sensor request's).
# est.timeout (each HTTP request) above broker.request_timeout, so that a
# stalled POST is ended by the request timeout and not by libcurl's.
FLEETID_CONF_NO_EST=1 fleetid_write_config \
    "est: { url = \"$EST_URL\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; timeout = 120; };" \
    "access: { file = \"$LAB_TMPDIR/access.conf\"; sensor_burst = 60; sensor_per_minute = 600; };" \
    "retry: { initial = 1; max = 10; };" \
    "broker: { est_label = \"sensors\"; retry_limit = 2; request_timeout = 45; };"

agent_bus_start
fleetid_daemon_start
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving org.fleetid.Agent1" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own org.fleetid.Agent1" _serving

_issued() { grep -q "^state=issued$" "$FLEETID_STATE/sensors/$1" 2>/dev/null; }
# request_bg ID: a key and CSR for ID, then fleetidctl sensor request in the
# background (it waits for the job's end): its pid in $REQ_PID, output in $S/ID.out.
request_bg() {
    client make-csr --id "$1" --key "$S/$1.key" --csr "$S/$1.csr"
    run_as "$BROKER" "$FLEETIDCTL" sensor request --id "$1" --csr "$S/$1.csr" --out "$S/$1.chain" \
        >"$S/$1.out" 2>&1 &
    REQ_PID=$!
}
# job_of ID: the job path fleetidctl named for ID (once it did).
_named() { grep -q "request accepted as /org/fleetid/Agent1/job/" "$S/$1.out"; }
job_of() {
    lab_wait_until 30 "fleetidctl to name the job of $1" _named "$1"
    sed -n 's/.*request accepted as \(\/org\/fleetid\/Agent1\/job\/[0-9]*\).*/\1/p' "$S/$1.out"
}
# sensor_submit ID: a key and CSR for ID and the request (the client exits once it has the job): the path in $JOB.
sensor_submit() {
    local out
    client make-csr --id "$1" --key "$S/$1.key" --csr "$S/$1.csr"
    out=$(client request --id "$1" --csr "$S/$1.csr")
    [[ $out == "job "* ]] || lab_fail "the request of $1 was refused: $out"
    JOB=${out#job }
}
job_prop() { # PATH PROPERTY: busctl's answer
    agent_busctl "$BROKER" get-property "$AGENT_NAME" "$1" "$JOB_IFACE" "$2" || lab_fail "$2 of $1: $(cat "$AGENT_OUT")"
    cat "$AGENT_OUT"
}
verify_chain() { # ID
    "$LAB_PYTHON" "$CLIENT" verify --chain "$S/$1.chain" --ca "$EST_PKI/est-ca.pem" --key "$S/$1.key" --id "$1" ||
        lab_fail "the chain of $1 does not verify"
}
count() { est_log_count op=simpleenroll label=sensors "$@"; }
_held() { [ "$(est_log_count event=delay op=simpleenroll)" -gt "$HELD_BEFORE" ]; }

step "503 with Retry-After 4, twice: waiting-ca with RetryAfter, asked again, issued"
faults '[{"match": "simpleenroll", "label": "sensors", "status": 503, "retry_after": "4", "count": 2}]'
request_bg busy-01
job=$(job_of busy-01)
_job_waiting() { LAB_WAIT_SEEN=$(job_prop "$1" State); [ "$LAB_WAIT_SEEN" = 's "waiting-ca"' ]; }
lab_wait_until 30 "busy-01's job to wait for the CA" _job_waiting "$job"
retry_after=$(job_prop "$job" RetryAfter | sed 's/^t //')
[ "$retry_after" -gt 0 ] || lab_fail "RetryAfter of the waiting job is $retry_after"
echo "   $job: waiting-ca, RetryAfter $retry_after"
wait "$REQ_PID" || lab_fail "the request after two 503s failed: $(cat "$S/busy-01.out")"
verify_chain busy-01
_issued busy-01 || lab_fail "busy-01 is not recorded as issued"
[ "$(count status=503)" -eq 2 ] && [ "$(count status=200)" -eq 1 ] ||
    lab_fail "the EST server saw $(count status=503) 503s and $(count status=200) issues, not 2 and 1"
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'busy-01': the EST server is busy: .*503.*; asking again in 4s \(Retry-After\) \(retry 1 of 2, broker.retry_limit\)" \
    "the first 503 logged"
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'busy-01': .*\(retry 2 of 2, broker.retry_limit\)" "the second 503 logged"
[ ! -e "$FLEETID_STATE/sensors-pending/busy-01" ] || lab_fail "a request the server was busy for is kept in sensors-pending/"

step "429, then the connection reset twice (no answer): asked again after the backoff, issued"
faults '[{"match": "simpleenroll", "label": "sensors", "status": 429, "count": 1},
         {"match": "simpleenroll", "label": "sensors", "body_mode": "reset", "count": 2}]'
# (libcurl sends a request again once, on a new connection, when a kept-alive
# one breaks: the second reset is the one fleetidd sees)
request_bg flaky-01
wait "$REQ_PID" || lab_fail "the request after a 429 and a reset failed: $(cat "$S/flaky-01.out")"
verify_chain flaky-01
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'flaky-01': the EST server is busy: .*429.*\(retry 1 of 2" "the 429 logged"
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'flaky-01': no answer from the EST server: .*\(retry 2 of 2" "the reset logged"
[ "$(count status=reset)" -eq 2 ] || lab_fail "the EST server did not reset two requests"

step "a 500 (the server's own failure) is asked again, not taken as a refusal"
faults '[{"match": "simpleenroll", "label": "sensors", "status": 500, "count": 1}]'
request_bg fail500-01
wait "$REQ_PID" || lab_fail "the request after a 500 failed: $(cat "$S/fail500-01.out")"
verify_chain fail500-01
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'fail500-01': the EST server failed: .*500.*\(retry 1 of 2" "the 500 logged"

step "a server busy for good: the job fails after broker.retry_limit retries, naming the bound"
faults '[{"match": "simpleenroll", "label": "sensors", "status": 503, "retry_after": "1"}]'
before=$(count status=503)
request_bg busy-02
wait "$REQ_PID" && lab_fail "busy-02's request succeeded against a server busy for good"
grep -qE "org\.fleetid\.Agent1\.Error\.ServerUnreachable: the EST server is busy: .*503.*given up after 3 attempts \(broker\.retry_limit = 2\)" \
    "$S/busy-02.out" || lab_fail "busy-02: not ServerUnreachable naming the bound: $(cat "$S/busy-02.out")"
echo "   $(grep -o "ServerUnreachable: .*" "$S/busy-02.out")"
[ $(($(count status=503) - before)) -eq 3 ] || lab_fail "$(($(count status=503) - before)) attempts for busy-02, not 3"
[ ! -e "$FLEETID_STATE/sensors/busy-02" ] || lab_fail "busy-02 was recorded"

step "a server that never answers (every connection reset): the job fails after broker.retry_limit retries"
faults '[{"match": "simpleenroll", "label": "sensors", "body_mode": "reset"}]'
request_bg gone-01
wait "$REQ_PID" && lab_fail "gone-01's request succeeded against a server that resets every connection"
grep -qE "org\.fleetid\.Agent1\.Error\.ServerUnreachable: no answer from the EST server: .*given up after 3 attempts \(broker\.retry_limit = 2\)" \
    "$S/gone-01.out" || lab_fail "gone-01: not ServerUnreachable naming the bound: $(cat "$S/gone-01.out")"
echo "   $(grep -o "ServerUnreachable: .*" "$S/gone-01.out")"
[ ! -e "$FLEETID_STATE/sensors/gone-01" ] || lab_fail "gone-01 was recorded"

step "Cancel while the job waits after a 503: canceled"
faults '[{"match": "simpleenroll", "label": "sensors", "status": 503, "retry_after": "60"}]'
sensor_submit busy-03
job=$JOB
lab_wait_until 30 "busy-03's job to wait" _job_waiting "$job"
agent_busctl "$BROKER" call "$AGENT_NAME" "$job" "$JOB_IFACE" Cancel || lab_fail "Cancel of the waiting job: $(cat "$AGENT_OUT")"
agent_expect_error "$BROKER" "org.fleetid.Agent1.Error.Canceled" "GetResult of the canceled job" \
    call --dest "$AGENT_NAME" --object-path "$job" --method "$JOB_IFACE.GetResult"
est_control '{"ra_eku": true}'

step "Cancel and ForgetSensor while the CSR is with the EST server: refused (Busy); the certificate is recorded and returned"
faults '[{"match": "simpleenroll", "label": "sensors", "delay": 15, "count": 1}]'
HELD_BEFORE=$(est_log_count event=delay op=simpleenroll)
sensor_submit held-01
job=$JOB
lab_wait_until 30 "the EST server to hold held-01's request" _held
agent_expect_error "$BROKER" "org.fleetid.Agent1.Error.Busy: job [0-9]+ \(sensor\) cannot be canceled now: .*with the EST server" \
    "Cancel while the POST is out" call --dest "$AGENT_NAME" --object-path "$job" --method "$JOB_IFACE.Cancel"
out=$(client call ForgetSensor held-01)
grep -qE "^error org\.fleetid\.Agent1\.Error\.Busy: sensor 'held-01' cannot be forgotten now: .*EST server" <<<"$out" ||
    lab_fail "ForgetSensor while the POST is out: $out"
lab_wait_until 60 "held-01 to be issued" _issued held-01
agent_busctl "$BROKER" --json=short call "$AGENT_NAME" "$job" "$JOB_IFACE" GetResult ||
    lab_fail "GetResult of held-01's job: $(cat "$AGENT_OUT")"
aay_json_hex "$AGENT_OUT" | head -n 1 | "$LAB_PYTHON" -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' |
    openssl x509 -inform DER -noout -subject | grep -q "CN *= *held-01" ||
    lab_fail "GetResult of held-01's job does not hold its certificate"
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'held-01': certificate issued" "the issue logged"
est_control '{"ra_eku": true}'

step "a stalled sensor POST: the loop answers and the gateway renews meanwhile; the request timeout kills the worker"
faults '[{"match": "simpleenroll", "label": "sensors", "delay": 300, "count": 1}]'
HELD_BEFORE=$(est_log_count event=delay op=simpleenroll)
answered=$(count)
request_bg stall-01
job=$(job_of stall-01)
lab_wait_until 30 "the EST server to hold stall-01's request" _held
agent_busctl root --json=short call "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" GetCertificateChain ||
    lab_fail "GetCertificateChain while a sensor POST stalls: $(cat "$AGENT_OUT")"
[ "$(aay_json_hex "$AGENT_OUT" | head -n 1)" = "$(pem_der_hex "$FLEETID_STATE/operational.pem" | head -n 1)" ] ||
    lab_fail "GetCertificateChain while a sensor POST stalls is not the operational certificate"
old_fp=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -fingerprint -sha256)
"$FLEETIDCTL" --config "$FLEETID_CONF" renew >"$S/renew.out" 2>&1 ||
    lab_fail "fleetidctl renew while a sensor POST stalls: $(cat "$S/renew.out")"
grep -q '^renewed$' "$S/renew.out" || lab_fail "fleetidctl renew: $(cat "$S/renew.out")"
[ "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -fingerprint -sha256)" != "$old_fp" ] ||
    lab_fail "the gateway did not renew"
# The server writes a request's log line with its answer: none yet for stall-01.
[ "$(count)" -eq "$answered" ] || lab_fail "the stalled request was answered before the renewal ended; nothing was shown"
state=$(job_prop "$job" State)
[ "$state" = 's "running"' ] || lab_fail "stall-01's job is $state during the stall, not running"
echo "   GetCertificateChain answered and the gateway renewed while stall-01's POST was held; its job is running"
wait "$REQ_PID" && lab_fail "stall-01's request succeeded although the server stalled it past the timeout"
grep -qE "org\.fleetid\.Agent1\.Error\.ServerUnreachable: the request did not finish within its timeout of 45s \(broker\.request_timeout\), so the sensor worker was killed" \
    "$S/stall-01.out" || lab_fail "stall-01: not ServerUnreachable naming the timeout: $(cat "$S/stall-01.out")"
echo "   $(grep -o "ServerUnreachable: .*" "$S/stall-01.out")"
fleetid_expect_grep "$FLEETIDD_LOG" "the sensor worker \(pid [0-9]+\) has not answered request [0-9]+ within 45s \(broker.request_timeout\); killing it" \
    "the kill logged"
[ ! -e "$FLEETID_STATE/sensors/stall-01" ] || lab_fail "stall-01 was recorded"
est_control '{"ra_eku": true}'
request_bg stall-02
wait "$REQ_PID" || lab_fail "the request after the timeout failed: $(cat "$S/stall-02.out")"
verify_chain stall-02
# The killed worker had the old identity; stall-02 went out on the renewed one: a new worker.
new_fp=sha256:$(openssl x509 -in "$FLEETID_STATE/operational.pem" -outform DER | sha256sum | cut -d' ' -f1)
[ "$(count status=200 client_fingerprint="$new_fp")" -eq 1 ] ||
    lab_fail "stall-02 was not enrolled on the renewed identity (by a new sensor worker)"
echo "   stall-02 issued by a new sensor worker, on the renewed identity"

echo "PASS: test-sensor-jobs"
