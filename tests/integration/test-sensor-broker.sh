#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-sensor-broker.sh: fleetidd's sensor broker end to end (docs/dbus-api.md,
# "The sensor broker"), on a private dbus-daemon configured like the system
# bus (tests/lib/system-bus.sh), against the lab EST server as a registration
# authority (the gateway's operational certificate carries id-kp-cmcRA:
# control "ra_eku"; sensor CSRs go to the label "sensors"). A python client
# (tests/integration/sensor-client.py) acts as the sensor application, as a
# user granted the role sensor-broker:
#   - a sensor key and CSR, a challenge, evidence signed by the sensor's birth
#     key (a lab birth certificate from the manufacturer CA, which is
#     broker.sensor_manufacturer_ca); fleetidctl sensor request waits for the
#     job and writes the chain, which leads to the EST CA and holds the
#     sensor's key; the record is in the state directory, ListSensors shows it;
#   - refusals, each with its error and a message naming what was wrong: a
#     wrong subject, a replayed nonce, an expired nonce, a forged evidence
#     signature, evidence made for another CSR's key, evidence from an untrusted CA, garbage and oversized (> 16 KiB)
#     CSRs, bad sensor ids, unknown options;
#   - a user without the role gets AccessDenied for every sensor method;
#   - a flood of 10,000 requests from one uid: RateLimited, the daemon's
#     memory bounded, nothing stored changed;
#   - jobs: a 202 with Retry-After, then issued; a daemon restart while the CA
#     defers it (the request resumes as a new job and is issued); a client that
#     disconnects mid-job; Cancel (while enrolling, and 503/429, unreachable
#     servers and the request timeout: test-sensor-jobs.sh);
#   - ForgetSensor removes the record; NoSuchSensor for an unknown one.
# Needs root (callers run as other uids); skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_require --python-dbus
agent_bus_namespace "$0" fleetid-test-broker fleetid-test-nogrant

# ---- inside the namespace ----
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"

step() { echo "== $*"; }
CLIENT=$SRCDIR/tests/integration/sensor-client.py
BROKER=fleetid-test-broker
client() { run_as "$BROKER" "$LAB_PYTHON" "$CLIENT" "$@"; }
# expect_error OUTPUT NAME ERE: the client printed the error NAME with a message matching ERE.
expect_error() {
    grep -qE "^error org\.(fleetid\.Agent1\.Error|freedesktop\.DBus\.Error)\.$2: .*$3" <<<"$1" ||
        lab_fail "expected $2 /$3/, got: $1"
    echo "   $2: $(sed 's/^error [^:]*: //' <<<"$1")"
}

fleetid_lab_up --label sensors
fleetid_provision
est_control '{"ra_eku": true}'
S=$LAB_TMPDIR/sensor
mkdir -p "$S"
chmod 0777 "$S"
# The sensors' birth certificates: from the lab manufacturer CA (the one
# broker.sensor_manufacturer_ca names), and one from the rogue CA.
"$LAB_PYTHON" "$LAB_PKI_PY" software-client "$EST_PKI" sensor-rogue --ca rogue >/dev/null
cp "$EST_PKI"/sensor-rogue.* "$S/"
chmod 0644 "$S"/*
cat >"$LAB_TMPDIR/access.conf" <<EOF
grants = ( { user = "$BROKER"; roles = [ "sensor-broker" ]; } );
EOF
chmod 0644 "$LAB_TMPDIR/access.conf"
# write_config MAX_SENSORS
write_config() {
    fleetid_write_config \
        "access: { file = \"$LAB_TMPDIR/access.conf\"; sensor_burst = 60; sensor_per_minute = 600; };" \
        "broker: { sensor_manufacturer_ca = \"$EST_PKI/mfg-ca.pem\"; est_label = \"sensors\"; challenge_lifetime = 10; max_sensors = $1; };"
}
write_config 50

agent_bus_start
fleetid_daemon_start
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving org.fleetid.Agent1" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own org.fleetid.Agent1" _serving
openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -ext extendedKeyUsage | grep -qE "CMC Registration Authority|1.3.6.1.5.5.7.3.28" ||
    lab_fail "the gateway's operational certificate lacks id-kp-cmcRA"

# sensor_birth ID: sensor ID's own birth certificate and key from the lab
# manufacturer CA, made once: $S/birth-ID.pem and .key (the broker binds a
# sensor_id to one birth certificate, and one birth certificate to one id)
sensor_birth() {
    [ ! -e "$S/birth-$1.pem" ] || return 0
    "$LAB_PYTHON" "$LAB_PKI_PY" software-client "$EST_PKI" "birth-$1" >/dev/null
    cp "$EST_PKI/birth-$1".* "$S/"
    chmod 0644 "$S/birth-$1".*
}

# sensor_evidence ID [ARGS]: a fresh challenge for ID, signed by ID's birth
# key (or $BIRTH's: $BIRTH.key, $BIRTH.pem) for the CSR $S/ID.csr (or $CSR),
# in $S/ID.ev
sensor_evidence() {
    local out birth=${BIRTH:-$S/birth-$1}
    sensor_birth "$1"
    out=$(client challenge --id "$1" --out "$S/$1.nonce")
    [[ $out == "nonce 32 bytes" ]] || lab_fail "GetSensorChallenge $1: $out"
    client evidence --nonce "$S/$1.nonce" --csr "${CSR:-$S/$1.csr}" --birth-key "$birth.key" \
        --birth-cert "$birth.pem" --out "$S/$1.ev" "${@:2}"
}

# sensor_submit ID: a key and CSR for ID, a challenge, evidence, and the
# request (the client exits once it has the job): the job's path in $JOB.
sensor_submit() {
    local out
    client make-csr --id "$1" --key "$S/$1.key" --csr "$S/$1.csr"
    sensor_evidence "$1"
    out=$(client request --id "$1" --csr "$S/$1.csr" --evidence "$S/$1.ev")
    [[ $out == "job "* ]] || lab_fail "the request of $1 was refused: $out"
    JOB=${out#job }
}

step "a sensor gets a certificate: challenge, evidence, request, chain"
client make-csr --id temp-01 --key "$S/temp-01.key" --csr "$S/temp-01.csr"
sensor_evidence temp-01
run_as "$BROKER" "$FLEETIDCTL" sensor request --id temp-01 --csr "$S/temp-01.csr" --evidence "$S/temp-01.ev" \
    --out "$S/temp-01.chain" >"$S/request.out" 2>&1 || lab_fail "fleetidctl sensor request failed: $(cat "$S/request.out")"
"$LAB_PYTHON" "$CLIENT" verify --chain "$S/temp-01.chain" --ca "$EST_PKI/est-ca.pem" --key "$S/temp-01.key" --id temp-01 ||
    lab_fail "the sensor's chain does not verify"
[ "$(est_log_count op=simpleenroll label=sensors auth=tls-ra status=200)" -eq 1 ] ||
    lab_fail "the EST server saw no RA enrollment at the label sensors"
grep -q "^state=issued$" "$FLEETID_STATE/sensors/temp-01" || lab_fail "no issued record: $(cat "$FLEETID_STATE/sensors/temp-01")"
serial=$(openssl x509 -in "$S/temp-01.chain" -noout -serial | sed 's/^serial=//')
grep -qi "^serial=0*${serial#0}$" "$FLEETID_STATE/sensors/temp-01" || lab_fail "the record's serial is not $serial"
list=$(client call ListSensors)
grep -qE "^temp-01 issued [0-9A-F]+ [0-9]+ [0-9]+ [0-9]+$" <<<"$list" || lab_fail "ListSensors: $list"
echo "   $list"

step "refusals"
client make-csr --id temp-02 --cn other-name --key "$S/bad.key" --csr "$S/wrong-subject.csr"
CSR=$S/wrong-subject.csr sensor_evidence temp-02
expect_error "$(client request --id temp-02 --csr "$S/wrong-subject.csr" --evidence "$S/temp-02.ev")" \
    PolicyViolation "subject"
sensor_submit temp-02
# The same evidence again: the challenge was used up.
_issued() { grep -q "^state=issued$" "$FLEETID_STATE/sensors/$1" 2>/dev/null; }
lab_wait_until 60 "temp-02 to be issued" _issued temp-02
expect_error "$(client request --id temp-02 --csr "$S/temp-02.csr" --evidence "$S/temp-02.ev")" \
    InvalidEvidence "no outstanding challenge"
sensor_evidence temp-02
sleep 11 # broker.challenge_lifetime = 10
expect_error "$(client request --id temp-02 --csr "$S/temp-02.csr" --evidence "$S/temp-02.ev")" \
    InvalidEvidence "expired"
sensor_evidence temp-02 --sign-key "$S/bad.key"
expect_error "$(client request --id temp-02 --csr "$S/temp-02.csr" --evidence "$S/temp-02.ev")" \
    InvalidEvidence "signature"
# Genuine evidence for this nonce, made for another CSR (another key): it vouches for that key only.
CSR=$S/wrong-subject.csr sensor_evidence temp-02
expect_error "$(client request --id temp-02 --csr "$S/temp-02.csr" --evidence "$S/temp-02.ev")" \
    InvalidEvidence "binding the nonce to this CSR's key"
out=$(client challenge --id temp-02 --out "$S/temp-02.nonce")
client evidence --nonce "$S/temp-02.nonce" --csr "$S/temp-02.csr" --birth-key "$S/sensor-rogue.key" --birth-cert "$S/sensor-rogue.pem" \
    --out "$S/temp-02.ev"
expect_error "$(client request --id temp-02 --csr "$S/temp-02.csr" --evidence "$S/temp-02.ev")" \
    InvalidEvidence "chain|trusted|verify"
expect_error "$(client request --id temp-02 --csr "$S/temp-02.csr")" InvalidEvidence "needs evidence"
head -c 300 /dev/urandom >"$S/garbage.csr"
expect_error "$(client request --id temp-02 --csr "$S/garbage.csr" --evidence "$S/temp-02.ev")" InvalidCsr ""
head -c 17000 /dev/urandom >"$S/huge.csr"
expect_error "$(client request --id temp-02 --csr "$S/huge.csr" --evidence "$S/temp-02.ev")" InvalidCsr "16384|larger|bytes"
for bad in "a/b" "../x" ".hidden" "-dash" "" "x y" "$(printf 'a%.0s' {1..65})"; do
    expect_error "$(client request --id="$bad" --csr "$S/temp-02.csr" --evidence "$S/temp-02.ev")" InvalidArgs "sensor_id"
    expect_error "$(client call GetSensorChallenge -- "$bad")" InvalidArgs "sensor_id"
done
expect_error "$(client request --id temp-02 --csr "$S/temp-02.csr" --evidence "$S/temp-02.ev" --option color=red)" \
    InvalidArgs "unknown option 'color'"
client make-csr --id temp-03 --curve p521 --key "$S/p521.key" --csr "$S/p521.csr"
CSR=$S/p521.csr sensor_evidence temp-03
expect_error "$(client request --id temp-03 --csr "$S/p521.csr" --evidence "$S/temp-03.ev")" PolicyViolation "key|curve"

step "the birth binding: a sensor keeps its birth certificate, one birth certificate one sensor"
grep -q "^birth=sha256:[0-9a-f]\{64\}$" "$FLEETID_STATE/sensors/temp-01" ||
    lab_fail "temp-01's record lacks its birth certificate: $(cat "$FLEETID_STATE/sensors/temp-01")"
sensor_birth other-01
BIRTH=$S/birth-other-01 sensor_evidence temp-01
expect_error "$(client request --id temp-01 --csr "$S/temp-01.csr" --evidence "$S/temp-01.ev")" \
    PolicyViolation "sensor 'temp-01' was enrolled with the birth key sha256:[0-9a-f]{64}, the evidence shows"
client make-csr --id bind-02 --key "$S/bind-02.key" --csr "$S/bind-02.csr"
BIRTH=$S/birth-temp-01 sensor_evidence bind-02
expect_error "$(client request --id bind-02 --csr "$S/bind-02.csr" --evidence "$S/bind-02.ev")" \
    PolicyViolation "vouches for sensor 'temp-01' already"

step "no role: AccessDenied for every sensor method"
for call in "call ListSensors" "call ForgetSensor temp-01" "call GetSensorChallenge temp-01" \
    "request --id temp-01 --csr $S/temp-01.csr"; do
    # shellcheck disable=SC2086
    out=$(run_as fleetid-test-nogrant "$LAB_PYTHON" "$CLIENT" $call)
    expect_error "$out" AccessDenied "needs the role 'sensor-broker'"
done

step "a flood of 10,000 requests from one uid: RateLimited, memory bounded, nothing stored changed"
state_sum() { find "$FLEETID_STATE/sensors" "$FLEETID_STATE/sensors-pending" -type f -exec sha256sum {} + | sort; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$FLEETIDD_PID/status"; }
before_state=$(state_sum)
before_rss=$(rss)
out=$(client flood --id flood-01 --csr "$S/garbage.csr" --count 10000)
echo "$out" | sed 's/^/   /'
limited=$(awk '$1 == "RateLimited" { print $2 }' <<<"$out")
[ "${limited:-0}" -ge 9000 ] || lab_fail "only ${limited:-0} of 10000 flood requests were RateLimited: $out"
! grep -q "^job " <<<"$out" || lab_fail "a garbage CSR was accepted in the flood: $out"
after_rss=$(rss)
# Under AddressSanitizer, its quarantine holds freed memory (256 MiB by
# default): the bound means something only in a normal build; ASan checks leaks.
# (grep without -q: with pipefail, ldd killed by SIGPIPE would make it false)
if ldd "$FLEETIDD" | grep libasan >/dev/null; then
    echo "   (AddressSanitizer build: the RSS bound is not checked)"
else
    [ $((after_rss - before_rss)) -lt 4096 ] ||
        lab_fail "fleetidd's RSS grew from ${before_rss} kB to ${after_rss} kB in the flood"
fi
[ "$(state_sum)" = "$before_state" ] || lab_fail "the flood changed the sensor state files"
echo "   RSS ${before_rss} kB -> ${after_rss} kB; sensor files unchanged"
sleep 7 # the bucket refills: access.sensor_per_minute = 600, one call in 0.1 s

step "SensorCertificateDue at a sensor's renewal point"
dbus-monitor --address "$DBUS_SYSTEM_BUS_ADDRESS" "type='signal',interface='org.fleetid.Agent1',member='SensorCertificateDue'" \
    >"$S/monitor.out" 2>&1 &
MON_PID=$!
lab_on_exit "_lab_kill $MON_PID dbus-monitor"
sleep 1 # dbus-monitor has no "ready" line
# A certificate whose renewal point has passed: valid from 3000 s ago, for 3660 s.
est_control '{"ra_eku": true, "validity_offset": -3000}'
sensor_submit due-01
lab_wait_until 60 "due-01 to be issued" _issued due-01
_due_signalled() { grep -q '"due-01"' "$S/monitor.out"; }
lab_wait_until 30 "SensorCertificateDue for due-01" _due_signalled
grep -q "temp-01" "$S/monitor.out" && lab_fail "SensorCertificateDue for temp-01, which is not due"
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'due-01': its certificate .* is due for renewal" "the due sensor logged"
echo "   $(grep -A2 "member=SensorCertificateDue" "$S/monitor.out" | tr -s ' \n' ' ' | head -c 200)"
est_control '{"ra_eku": true}'

step "the CA defers a request (202, Retry-After 4): waiting-ca with RetryAfter, then issued"
est_control '{"ra_eku": true, "faults": [{"match": "simpleenroll", "label": "sensors", "status": 202, "retry_after": "4", "count": 1}]}'
client make-csr --id later-01 --key "$S/later-01.key" --csr "$S/later-01.csr"
sensor_evidence later-01
run_as "$BROKER" "$FLEETIDCTL" sensor request --id later-01 --csr "$S/later-01.csr" --evidence "$S/later-01.ev" \
    --out "$S/later-01.chain" >"$S/later-01.out" 2>&1 &
REQ_PID=$!
_pending_file() { [ -s "$FLEETID_STATE/sensors-pending/$1" ]; }
lab_wait_until 30 "later-01's deferred request in sensors-pending/" _pending_file later-01
job=$(sed -n 's/.*request accepted as \(\/org\/fleetid\/Agent1\/job\/[0-9]*\).*/\1/p' "$S/later-01.out")
[ -n "$job" ] || lab_fail "fleetidctl did not name the job: $(cat "$S/later-01.out")"
agent_busctl "$BROKER" get-property "$AGENT_NAME" "$job" org.fleetid.Agent1.Job State ||
    lab_fail "the job's State: $(cat "$AGENT_OUT")"
grep -q '"waiting-ca"' "$AGENT_OUT" || lab_fail "the job is not waiting-ca: $(cat "$AGENT_OUT")"
agent_busctl "$BROKER" get-property "$AGENT_NAME" "$job" org.fleetid.Agent1.Job RetryAfter ||
    lab_fail "the job's RetryAfter: $(cat "$AGENT_OUT")"
retry_after=$(sed 's/^t //' "$AGENT_OUT")
[ "$retry_after" -gt "$(date +%s)000000" ] || [ -e "$FLEETID_STATE/sensors/later-01" ] ||
    lab_fail "RetryAfter $retry_after is not in the future"
expect_error "$(client request --id later-01 --csr "$S/later-01.csr" --evidence "$S/later-01.ev")" Busy \
    "sensor 'later-01' has a request in progress \((waiting-ca|running)\)"
grep -qE "^later-01 pending " <<<"$(client call ListSensors)" || [ -e "$FLEETID_STATE/sensors/later-01" ] ||
    lab_fail "ListSensors does not show later-01 pending"
wait "$REQ_PID" || lab_fail "fleetidctl sensor request after a 202 failed: $(cat "$S/later-01.out")"
"$LAB_PYTHON" "$CLIENT" verify --chain "$S/later-01.chain" --ca "$EST_PKI/est-ca.pem" --key "$S/later-01.key" \
    --id later-01 || lab_fail "the chain of later-01 does not verify"
_issued later-01 || lab_fail "later-01 is not recorded as issued"
[ ! -e "$FLEETID_STATE/sensors-pending/later-01" ] || lab_fail "the deferred request stays after the issue"
[ "$(est_log_count op=simpleenroll label=sensors status=202)" -eq 1 ] || lab_fail "no 202 in the EST log"
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'later-01': the CA deferred the request \(HTTP 202\); asking again in 4s \(Retry-After\)" \
    "the 202 logged"
echo "   $job: waiting-ca (RetryAfter $retry_after), then done; the chain verifies"

step "Cancel while the CA defers: canceled, the deferred request forgotten"
est_control '{"ra_eku": true, "faults": [{"match": "simpleenroll", "label": "sensors", "status": 202, "retry_after": "60", "count": 1}]}'
sensor_submit later-03
job=$JOB
lab_wait_until 30 "later-03's deferred request in sensors-pending/" _pending_file later-03
agent_busctl "$BROKER" call "$AGENT_NAME" "$job" org.fleetid.Agent1.Job Cancel || lab_fail "Cancel: $(cat "$AGENT_OUT")"
agent_expect_error "$BROKER" "org.fleetid.Agent1.Error.Canceled" "GetResult of the canceled sensor job" \
    call --dest "$AGENT_NAME" --object-path "$job" --method org.fleetid.Agent1.Job.GetResult
[ ! -e "$FLEETID_STATE/sensors-pending/later-03" ] || lab_fail "the canceled request stays in sensors-pending/"
grep -q "^later-03 " <<<"$(client call ListSensors)" && lab_fail "ListSensors still shows the canceled later-03"

step "a client that disconnects mid-job"
est_control '{"ra_eku": true, "faults": [{"match": "simpleenroll", "label": "sensors", "delay": 3}]}'
sensor_submit gone-01
job=$JOB # the client has exited: its connection is gone
lab_wait_until 60 "gone-01 to be issued after its client left" _issued gone-01
agent_busctl "$BROKER" --json=short call "$AGENT_NAME" "$job" org.fleetid.Agent1.Job GetResult ||
    lab_fail "GetResult of gone-01's job: $(cat "$AGENT_OUT")"
aay_json_hex "$AGENT_OUT" | head -n 1 | "$LAB_PYTHON" -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' |
    openssl x509 -inform DER -noout -subject | grep -q "CN *= *gone-01" ||
    lab_fail "GetResult of gone-01's job does not hold its certificate"
est_control '{"ra_eku": true}'

step "a daemon restart while the CA defers a request: it resumes and is issued"
est_control '{"ra_eku": true, "faults": [{"match": "simpleenroll", "label": "sensors", "status": 202, "retry_after": "8", "count": 1}]}'
sensor_submit later-02
lab_wait_until 30 "later-02's deferred request in sensors-pending/" _pending_file later-02
grep -q "^uid=$(id -u "$BROKER")$" "$FLEETID_STATE/sensors-pending/later-02" || lab_fail "the pending file lacks the uid"
_lab_kill "$FLEETIDD_PID" fleetidd
fleetid_daemon_start
lab_wait_until 30 "fleetidd to own org.fleetid.Agent1 again" _serving
fleetid_expect_grep "$FLEETIDD_LOG" "sensor 'later-02': the request the CA deferred is resumed as /org/fleetid/Agent1/job/[0-9]+ \(uid $(id -u "$BROKER")\)" \
    "the resumed request logged"
lab_wait_until 60 "later-02 to be issued after the restart" _issued later-02
[ ! -e "$FLEETID_STATE/sensors-pending/later-02" ] || lab_fail "the deferred request stays after the issue"
grep -q "^birth=sha256:" "$FLEETID_STATE/sensors/later-02" || lab_fail "the resumed request lost its birth certificate"
grep -q "^temp-01 issued " <<<"$(client call ListSensors)" || lab_fail "the records were not loaded after the restart"

step "an unreadable record counts to broker.max_sensors; a limit below the records keeps them all"
# restart_with MAX_SENSORS
restart_with() {
    _lab_kill "$FLEETIDD_PID" fleetidd
    write_config "$1"
    fleetid_daemon_start
    lab_wait_until 30 "fleetidd to own org.fleetid.Agent1 again" _serving
}
tracked=$(client call ListSensors | grep -c " issued ")
printf 'not a sensor record\n' >"$FLEETID_STATE/sensors/junk-01"
chmod 0600 "$FLEETID_STATE/sensors/junk-01"
restart_with $((tracked + 1))
fleetid_expect_grep "$FLEETIDD_LOG" "1 sensor record\(s\) in .* cannot be read and are left as they are" "the unreadable record"
client make-csr --id extra-01 --key "$S/extra-01.key" --csr "$S/extra-01.csr"
sensor_evidence extra-01
expect_error "$(client request --id extra-01 --csr "$S/extra-01.csr" --evidence "$S/extra-01.ev")" \
    PolicyViolation "$((tracked + 1)) sensors are tracked, the limit \(broker.max_sensors\)"
restart_with 1
fleetid_expect_grep "$FLEETIDD_LOG" "$((tracked + 1)) sensor record\(s\) in .*, more than broker.max_sensors \(1\): all are kept" \
    "the limit below the records"
fleetid_expect_eq "$(client call ListSensors | grep -c " issued ")" "$tracked" "sensors listed under a limit of 1"
out=$(client call ForgetSensor junk-01)
[ ! -e "$FLEETID_STATE/sensors/junk-01" ] || lab_fail "ForgetSensor left the unreadable record: $out"
restart_with 50

step "the EST server refuses: the job fails with EnrollRejected"
# expect_job_error ID STATUS ERROR ERE: fleetidctl sensor request for ID, the server answering STATUS
expect_job_error() {
    est_control "{\"ra_eku\": true, \"faults\": [{\"match\": \"simpleenroll\", \"label\": \"sensors\", \"status\": $2, \"count\": 1}]}"
    client make-csr --id "$1" --key "$S/$1.key" --csr "$S/$1.csr"
    sensor_evidence "$1"
    run_as "$BROKER" "$FLEETIDCTL" sensor request --id "$1" --csr "$S/$1.csr" --evidence "$S/$1.ev" \
        --out "$S/$1.chain" >"$S/$1.out" 2>&1 && lab_fail "fleetidctl sensor request succeeded against a $2"
    grep -qE "org\.fleetid\.Agent1\.Error\.$3: .*$4" "$S/$1.out" || lab_fail "a $2 is not $3 /$4/: $(cat "$S/$1.out")"
    [ ! -e "$FLEETID_STATE/sensors/$1" ] || lab_fail "$1 was recorded after a $2"
    echo "   HTTP $2: $(grep -o "$3: .*" "$S/$1.out")"
}
expect_job_error refused-01 403 EnrollRejected "HTTP 403.*registration authority"
expect_job_error refused-02 400 EnrollRejected "400"
est_control '{"ra_eku": true}'

step "the sensor worker dies mid-request: that job fails, the next request gets a new worker"
est_control '{"ra_eku": true, "faults": [{"match": "simpleenroll", "label": "sensors", "delay": 30, "count": 1}]}'
client make-csr --id crash-01 --key "$S/crash-01.key" --csr "$S/crash-01.csr"
sensor_evidence crash-01
before=$(est_log_count event=delay op=simpleenroll)
run_as "$BROKER" "$FLEETIDCTL" sensor request --id crash-01 --csr "$S/crash-01.csr" --evidence "$S/crash-01.ev" \
    --out "$S/crash-01.chain" >"$S/crash-01.out" 2>&1 &
REQ_PID=$!
_held() { [ "$(est_log_count event=delay op=simpleenroll)" -gt "$before" ]; }
lab_wait_until 30 "the EST server to hold crash-01's request" _held
worker=$(pgrep -P "$FLEETIDD_PID" -x fleetid-sensors | head -n 1)
[ -n "$worker" ] || lab_fail "no sensor worker process under fleetidd"
kill -KILL "$worker"
wait "$REQ_PID" && lab_fail "crash-01's request succeeded although its worker was killed"
grep -qE "ServerUnreachable: the sensor worker was killed by signal 9" "$S/crash-01.out" ||
    lab_fail "crash-01: not ServerUnreachable naming the kill: $(cat "$S/crash-01.out")"
echo "   $(grep -o "ServerUnreachable: .*" "$S/crash-01.out")"
est_control '{"ra_eku": true}'
sensor_submit crash-02
lab_wait_until 60 "crash-02 to be issued by a new sensor worker" _issued crash-02

step "the gateway renews while sensor requests run: each on one identity, the queue goes on with the new one"
est_control '{"ra_eku": true, "faults": [{"match": "simpleenroll", "label": "sensors", "delay": 2}]}'
for i in 1 2 3 4 5 6; do
    client make-csr --id "swap-0$i" --key "$S/swap-0$i.key" --csr "$S/swap-0$i.csr"
done
old_fp=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -outform DER | sha256sum | cut -d' ' -f1)
for i in 1 2 3 4 5 6; do
    sensor_evidence "swap-0$i"
    out=$(client request --id "swap-0$i" --csr "$S/swap-0$i.csr" --evidence "$S/swap-0$i.ev")
    [[ $out == "job "* ]] || lab_fail "the request of swap-0$i was refused: $out"
    [ "$i" -ne 2 ] || kill -USR1 "$FLEETIDD_PID" # the renewal, while the first sensor request is held
done
_swapped() {
    local i
    for i in 1 2 3 4 5 6; do _issued "swap-0$i" || return 1; done
    grep -q "state: renewing -> enrolled" "$FLEETIDD_LOG"
}
lab_wait_until 120 "the six sensors and the renewal" _swapped
new_fp=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -outform DER | sha256sum | cut -d' ' -f1)
[ "$new_fp" != "$old_fp" ] || lab_fail "the gateway did not renew"
grep "request of uid .* failed" "$FLEETIDD_LOG" | grep -q "swap-0" && lab_fail "a swap request failed: $(grep "swap-0.*failed" "$FLEETIDD_LOG")"
"$LAB_PYTHON" - "$EST_LOG" "sha256:$old_fp" "sha256:$new_fp" <<'PY' || lab_fail "the sensor requests did not use the old, then the new identity"
import json, sys
log, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
ra = [r for r in map(json.loads, open(log)) if r.get("auth") == "tls-ra" and "swap-0" in r.get("csr_subject", "")]
fps = [r["client_fingerprint"] for r in ra]
assert len(ra) == 6, "%d RA requests for the six sensors" % len(ra)
assert set(fps) <= {old, new}, "a client certificate that is neither identity: %s" % fps
assert fps[-1] == new, "the last sensor request did not use the renewed identity"
print("   client identities of the six sensor requests, in order: %s" % " ".join("old" if f == old else "new" for f in fps))
PY
fleetid_expect_grep "$FLEETIDD_LOG" "the gateway's own enrollment or renewal starts: the sensor worker ends after its request in flight" \
    "the sensor worker retired for the renewal"
est_control '{"ra_eku": true}'

step "ForgetSensor"
out=$(client call ForgetSensor temp-01)
[ "$out" = "ok " ] || lab_fail "ForgetSensor temp-01: $out"
[ ! -e "$FLEETID_STATE/sensors/temp-01" ] || lab_fail "the record of temp-01 stays"
grep -q "^temp-01 " <<<"$(client call ListSensors)" && lab_fail "ListSensors still shows temp-01"
expect_error "$(client call ForgetSensor temp-01)" NoSuchSensor "no sensor 'temp-01' is tracked"

step "a factory reset while the CA defers a sensor request: the job ends canceled, the records go, the broker serves on"
est_control '{"ra_eku": true, "faults": [{"match": "simpleenroll", "label": "sensors", "status": 202, "retry_after": "60", "count": 1}]}'
sensor_submit reset-01
job=$JOB
lab_wait_until 30 "reset-01's deferred request in sensors-pending/" _pending_file reset-01
ls "$FLEETID_STATE/sensors/" | grep -q . || lab_fail "no sensor record before the reset"
agent_busctl root call "$AGENT_NAME" "$AGENT_OBJ" org.fleetid.Agent1 FactoryReset 'a{sv}' 0 ||
    lab_fail "FactoryReset: $(cat "$AGENT_OUT")"
_reset_done() { [ ! -e "$FLEETID_STATE/factory-reset" ] && [ -s "$FLEETID_STATE/operational.pem" ]; }
lab_wait_until 60 "the factory reset to end enrolled" _reset_done
agent_expect_error "$BROKER" "org.fleetid.Agent1.Error.Canceled: .*factory reset" "GetResult of the sensor job the reset ended" \
    call --dest "$AGENT_NAME" --object-path "$job" --method org.fleetid.Agent1.Job.GetResult
[ ! -e "$FLEETID_STATE/sensors-pending/reset-01" ] || lab_fail "the deferred request stays after the reset"
[ -z "$(ls -A "$FLEETID_STATE/sensors/" 2>/dev/null)" ] || lab_fail "sensor records stay after the reset: $(ls "$FLEETID_STATE/sensors/")"
out=$(client call ListSensors)
[ -z "$(grep -v '^ok' <<<"$out" | grep . || true)" ] || lab_fail "ListSensors after the reset: $out"
est_control '{"ra_eku": true}'
sensor_submit after-reset-01
lab_wait_until 60 "after-reset-01 to be issued after the reset" _issued after-reset-01
echo "   the deferred job ended Canceled, records and deferred requests wiped, a new sensor issued after the reset"

echo "PASS: test-sensor-broker"
