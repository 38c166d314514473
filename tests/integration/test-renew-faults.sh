#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-renew-faults.sh: the renewal fault matrix (issue 3). A running fleetidd
# holding a valid operational certificate is asked to renew (fleetidctl renew)
# while /simplereenroll misbehaves: a connection reset, a short read, a timeout, 500,
# 503, 401, 202 with and without Retry-After, garbage bodies (not base64,
# truncated DER, not PKCS#7), and certificates for another key, with another
# subject, from a rogue CA, or already expired. For each case:
#  - fleetidctl renew and the log report the failure, naming what was wrong;
#  - the stored certificate stays byte for byte and its key stays in the TPM;
#    no enrollment with the birth identity is tried;
#  - the status (fleetidctl status --json and the status file: state
#    waiting-retry, last_error, failures, next attempt) and the metrics file
#    (consecutive failures, state, next attempt) show the failure;
#  - once the server behaves, the scheduled retry, authenticated with the kept
#    certificate and no earlier than the announced next attempt, renews; status
#    and metrics are back to 0 failures.
# A 202 with Retry-After is retried when the server asked, counted from its
# answer; without Retry-After, on the renewal retry ladder; either way with
# the key of the deferred request. Retry-After: 0 means the ladder. A missing
# trust anchors file is retried like a server fault, without the birth fallback.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

EST_TIMEOUT=8
HANDLES=(0x81020002 0x81020003)

# Certificates live an hour (the lab's default): no scheduled renewal during the
# test. renew.retry_max = 60 s (the smallest allowed) makes the first retry after
# a failure come within 4..7 s (an eighth of the retry period, jittered), and
# any later one within 60 s (on the certificate's 60-second grid).
fleetid_lab_up
fleetid_provision
METRICS=$LAB_TMPDIR/fleetid.prom
FLEETID_CONF_NO_EST=1 fleetid_write_config \
    "est: { url = \"$EST_URL\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; timeout = $EST_TIMEOUT; };" \
    "retry: { initial = 1; max = 5; };" \
    "renew: { retry_max = 60; };" \
    "monitoring: { metrics_file = \"$METRICS\"; };"
OPERATIONAL=$FLEETID_STATE/operational.pem
STATUS=$FLEETID_RUNTIME/status

cert_serial() { openssl x509 -in "$OPERATIONAL" -noout -serial | cut -d= -f2; }
cert_pubkey() { openssl x509 -in "$OPERATIONAL" -noout -pubkey | openssl pkey -pubin; }
cert_fingerprint() { echo "sha256:$(openssl x509 -in "$OPERATIONAL" -outform der | sha256sum | cut -d' ' -f1)"; }

# The operational handle holding the stored certificate's key; empty if none.
cert_key_handle() { fleetid_cert_key_handle "$OPERATIONAL" "${HANDLES[@]}"; }

# status_field KEY: a value of the status file (as stored, escaped).
status_field() { sed -n "s/^$1=//p" "$STATUS"; }
# metric NAME: the value of a metrics file line (NAME with its labels).
metric() { awk -v n="$1" '$1 == n { print $2 }' "$METRICS"; }
# The daemon's log since the current case started.
case_log() { tail -n "+$((LOG_MARK + 1))" "$FLEETIDD_LOG"; }

# est_request_field KEY N [FIELD=VALUE...]: KEY of the N-th request the EST
# server logged whose fields match ("time": seconds since the epoch); empty if
# there is none.
est_request_field() {
    "$LAB_PYTHON" - "$EST_LOG" "$@" <<'EOF'
import datetime
import json
import sys

want = {"event": "request"}
for arg in sys.argv[4:]:
    key, _, value = arg.partition("=")
    want[key] = value
field, n = sys.argv[2], int(sys.argv[3])
for line in open(sys.argv[1], encoding="utf-8"):
    rec = json.loads(line)
    if all((v if isinstance(v, str) else json.dumps(v)) == want[k]
           for k, v in ((k, rec.get(k)) for k in want)):
        n -= 1
        if n == 0:
            if field == "time":
                t = datetime.datetime.fromisoformat(rec["time"].rstrip("Z"))
                print("%.3f" % t.replace(tzinfo=datetime.timezone.utc).timestamp())
            else:
                print(rec.get(field, ""))
            break
EOF
}
est_request_time() { est_request_field time "$@"; }

# at_least T1 T0 SECONDS: true if T1 - T0 >= SECONDS (decimals allowed; T1, T0 set).
at_least() { awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { exit !(a != "" && b != "" && a - b >= m) }'; }
# utc T: the time T (seconds since the epoch) as HH:MM:SS.mmm UTC.
utc() { date -u -d "@$1" +%T.%3N; }

# Predicates for lab_wait_until.
settled() {
    # Enrolled, and the status written in an earlier second than now, so that
    # fleetidctl renew (which compares whole seconds) sees only what follows.
    [ "$(status_field state)" = enrolled ] && [ "$(status_field updated)" -lt "$(date +%s)" ]
}
serial_differs() { [ "$(cert_serial)" != "$1" ]; }
metrics_show_failure() {
    [ "$(metric 'fleetid_state{state="waiting-retry"}')" = 1 ] &&
        [ "$(metric fleetid_renewal_consecutive_failures)" -ge 1 ] 2>/dev/null &&
        [ -n "$(metric fleetid_renewal_next_attempt_timestamp_seconds)" ]
}
metrics_show_success() {
    [ "$(metric 'fleetid_state{state="enrolled"}')" = 1 ] &&
        [ "$(metric fleetid_renewal_consecutive_failures)" = 0 ]
}

fleetid_daemon_start
fleetid_wait_state 30 enrolled || lab_fail "fleetidd did not enroll"
[ -n "$(cert_key_handle)" ] || lab_fail "the enrolled certificate's key is in no operational handle"

# A fault on the gateway, not the server: the EST trust anchors file is gone.
# A retry may cure that; it is no reason to give the identity up (the birth
# fallback is for an identity that is unusable: none, key gone, expired).
ANCHORS="$EST_PKI/est-ca.pem"
fault_on() {
    case $1 in
    local:no-anchors) mv "$ANCHORS" "$ANCHORS.away" ;;
    *) est_control "{\"faults\": [$1]}" ;;
    esac
}
fault_off() {
    [ ! -e "$ANCHORS.away" ] || mv "$ANCHORS.away" "$ANCHORS"
    est_control ''
}

# renew_fault NAME FAULT ERROR_ERE [RETRY_ERE]: one renewal, asked for with
# fleetidctl renew while FAULT (a faults[] entry, or local:no-anchors) is in force, must fail with
# an error matching ERROR_ERE and announce a retry matching RETRY_ERE (default:
# on the ladder, not as the server asked). The fault stays until the failure
# has been checked, then the scheduled retry must renew.
renew_fault() {
    local name=$1 fault=$2 ere=$3 retry_ere=${4:-"retrying in [0-9]+s$"}
    local serial fp new_fp handle pub enrolls out rc=0 json v next
    echo "== $name"
    LAB_WAIT_POLL=0.1 lab_wait_until 30 "fleetidd to be enrolled" settled ||
        lab_fail "$name: fleetidd is not back to enrolled: $(cat "$STATUS")"
    cp "$OPERATIONAL" "$LAB_TMPDIR/kept.pem"
    serial=$(cert_serial)
    fp=$(cert_fingerprint)
    pub=$(cert_pubkey)
    handle=$(cert_key_handle)
    [ -n "$handle" ] || lab_fail "$name: the stored certificate's key is in no operational handle"
    enrolls=$(est_log_count op=simpleenroll)
    LOG_MARK=$(wc -l <"$FLEETIDD_LOG")
    fault_on "$fault"

    out=$(timeout 60 "$FLEETIDCTL" --config "$FLEETID_CONF" renew) || rc=$?
    fleetid_expect_eq "$rc" 1 "$name: fleetidctl renew exit status (output: $out)"
    grep -qE -- "^renewal did not succeed: waiting-retry: .*($ere)" <<<"$out" ||
        lab_fail "$name: fleetidctl renew: expected /$ere/, got: $out"

    # The current certificate stays in force.
    cmp -s "$OPERATIONAL" "$LAB_TMPDIR/kept.pem" || lab_fail "$name: a failed renewal changed $OPERATIONAL"
    [ "$(fleetid_tpm_pubkey "$handle")" = "$pub" ] ||
        lab_fail "$name: the stored certificate's key is no longer at $handle"

    # The failure is visible: log, status, metrics.
    case_log | grep -qE -- "renewal failed: .*($ere).* \(attempt 1\); the current certificate stays in force; ($retry_ere)" ||
        lab_fail "$name: no 'renewal failed' log line matching /$ere/ and /$retry_ere/: $(case_log | tr '\n' ' ')"
    json=$("$FLEETIDCTL" --config "$FLEETID_CONF" status --json) || lab_fail "$name: fleetidctl status failed"
    v=$("$LAB_PYTHON" -c '
import json, sys
s = json.loads(sys.argv[1])
print("%s|%s|%s|%s" % (s["state"], s["failures"], s["next_attempt"] is not None, s["last_error"]))' "$json")
    grep -qE -- "^waiting-retry\|[1-9][0-9]*\|True\|.*($ere)" <<<"$v" ||
        lab_fail "$name: fleetidctl status --json: expected waiting-retry, failures >= 1, a next attempt and /$ere/; got $json"
    next=$(status_field next_attempt)
    [ "$(status_field state)" = waiting-retry ] && [ "$(status_field failures)" -ge 1 ] &&
        [ "$next" -gt "$(status_field updated)" ] ||
        lab_fail "$name: status file: expected waiting-retry, failures >= 1, next_attempt after updated; got $(cat "$STATUS")"
    lab_wait_until 5 "the metrics file to show the failure" metrics_show_failure ||
        lab_fail "$name: metrics file: $(grep -v '^#' "$METRICS" | tr '\n' ' ')"
    [ "$(metric fleetid_renewal_next_attempt_timestamp_seconds)" = "$next" ] ||
        lab_fail "$name: metrics next attempt $(metric fleetid_renewal_next_attempt_timestamp_seconds), status $next"

    # The fault is over: the scheduled retry renews.
    fault_off
    # (When the checks above outlast the first retry, it fails too, and the
    # next comes on the 60-second grid: up to a minute later.)
    lab_wait_until 90 "the scheduled retry to renew" serial_differs "$serial" ||
        lab_fail "$name: no renewal within 90 s of the fault's end: $(case_log | tail -n 5 | tr '\n' ' ')"
    fleetid_wait_state 10 enrolled || lab_fail "$name: renewed, but the status is $(cat "$STATUS")"
    [ "$(status_field failures)" = 0 ] && [ -z "$(status_field last_error)" ] ||
        lab_fail "$name: after the renewal the status file still shows a failure: $(cat "$STATUS")"
    lab_wait_until 5 "the metrics file to show the renewal" metrics_show_success ||
        lab_fail "$name: metrics file after the renewal: $(grep -v '^#' "$METRICS" | tr '\n' ' ')"
    case_log | grep -qE -- "^fleetidd: renewed: operational certificate serial" ||
        lab_fail "$name: no 'renewed' log line"
    new_fp=$(cert_fingerprint)
    [ "$(est_log_count op=simplereenroll client_fingerprint="$fp" issued_fingerprint="$new_fp")" -eq 1 ] ||
        lab_fail "$name: the renewed certificate was not issued to a request authenticated with the kept one, $fp"
    # The retry came no earlier than the announced next attempt (whole seconds,
    # rounded down by the daemon).
    RETRY_AT=$(est_request_time 1 op=simplereenroll issued_fingerprint="$new_fp")
    at_least "$RETRY_AT" "$next" 0 ||
        lab_fail "$name: the retry (its /simplereenroll at $(utc "$RETRY_AT")) came before the next attempt the status announced ($(utc "$next"))"
    [ "$(est_log_count op=simpleenroll)" -eq "$enrolls" ] ||
        lab_fail "$name: a /simpleenroll with the birth identity was tried"
    [ -n "$(cert_key_handle)" ] || lab_fail "$name: the renewed certificate's key is in no operational handle"
    openssl verify -CAfile "$EST_PKI/est-ca.pem" -purpose sslclient "$OPERATIONAL" >/dev/null ||
        lab_fail "$name: the renewed certificate does not chain to the EST CA"
}

reenroll() { echo "{\"match\": \"simplereenroll\", $1}"; }

# Transport.
renew_fault "connection reset" "$(reenroll '"body_mode": "reset"')" "Connection reset by peer"
renew_fault "short read" "$(reenroll '"body_mode": "short_read"')" "transfer closed with [0-9]+ bytes remaining"
renew_fault "timeout" "$(reenroll "\"delay\": $((EST_TIMEOUT + 4))")" "Operation timed out"
# A slow 202 (answered after 3 s): Retry-After counts from the answer.
renew_fault "slow 202 with Retry-After: 10" "$(reenroll '"status": 202, "retry_after": "10", "delay": 3')" \
    "HTTP 202" "retrying in 10s as the server asked$"

# On the gateway: the EST trust anchors file is missing (-ENOENT, like a
# certificate that is gone, but no reason to enroll anew).
renew_fault "trust anchors file missing" local:no-anchors "cannot load the trust anchors from $ANCHORS"

# HTTP status.
renew_fault "500" "$(reenroll '"status": 500, "body": "CA backend unreachable (lab)"')" \
    "HTTP 500: CA backend unreachable \(lab\)"
renew_fault "503" "$(reenroll '"status": 503, "body": "maintenance (lab)"')" \
    "busy \(HTTP 503\): maintenance \(lab\)"
renew_fault "401" "$(reenroll '"status": 401, "body": "who are you (lab)"')" \
    "not authorized \(HTTP 401, no HTTP Basic configured\): who are you \(lab\)"
renew_fault "202 without Retry-After" "$(reenroll '"status": 202')" "HTTP 202"
# Retry-After: 0 is no instruction to wait: the ladder, or a fleet would come
# back every second.
renew_fault "503 with Retry-After: 0" "$(reenroll '"status": 503, "retry_after": "0"')" "busy \(HTTP 503\)"
renew_fault "202 with Retry-After: 10" "$(reenroll '"status": 202, "retry_after": "10"')" \
    "HTTP 202" "retrying in 10s as the server asked$"
n=$(est_log_count op=simplereenroll status=202)
t=$(est_request_time "$n" op=simplereenroll status=202)
at_least "$RETRY_AT" "$t" 9 ||
    lab_fail "Retry-After: 10 answered at $(utc "$t"), the retry came at $(utc "$RETRY_AT")"
# The retry repeats the deferred request (RFC 7030 4.2.3): the same key, which
# a CA holding the request for approval would issue for.
deferred_key=$(est_request_field csr_pubkey_fingerprint "$n" op=simplereenroll status=202)
[ -n "$deferred_key" ] || lab_fail "the 202 request's CSR key is not in the EST log"
fleetid_expect_eq "$(est_request_field csr_pubkey_fingerprint 1 op=simplereenroll \
    issued_fingerprint="$(cert_fingerprint)")" "$deferred_key" "the CSR key of the retry after a 202"

echo "== a 202, then a 403 for the deferred request: the next attempt is a new request"
# A 4xx is the CA's answer to the deferred request (denied): repeating it
# would never get a certificate; the next attempt sends a new request.
LAB_WAIT_POLL=0.1 lab_wait_until 30 "fleetidd to be enrolled" settled || lab_fail "not enrolled: $(cat "$STATUS")"
serial=$(cert_serial)
n202=$(est_log_count op=simplereenroll status=202)
n403=$(est_log_count op=simplereenroll status=403)
fault_on "$(reenroll '"status": 202, "retry_after": "2", "count": 1'), $(reenroll '"status": 403, "body": "denied (lab)", "count": 1')"
kill -USR1 "$FLEETIDD_PID"
_denied() { [ "$(est_log_count op=simplereenroll status=403)" -gt "$n403" ]; }
lab_wait_until 60 "the deferred request's retry to be denied" _denied ||
    lab_fail "no 403 for the deferred request: $(case_log | tail -n 3 | tr '\n' ' ')"
denied_key=$(est_request_field csr_pubkey_fingerprint "$((n202 + 1))" op=simplereenroll status=202)
fleetid_expect_eq "$(est_request_field csr_pubkey_fingerprint "$((n403 + 1))" op=simplereenroll status=403)" \
    "$denied_key" "the CSR key of the denied retry (the deferred request repeated)"
fault_off
kill -USR1 "$FLEETIDD_PID"
lab_wait_until 60 "the next attempt to renew" serial_differs "$serial" ||
    lab_fail "no renewal after the denied request: $(case_log | tail -n 3 | tr '\n' ' ')"
new_key=$(est_request_field csr_pubkey_fingerprint 1 op=simplereenroll issued_fingerprint="$(cert_fingerprint)")
[ -n "$new_key" ] && [ "$new_key" != "$denied_key" ] ||
    lab_fail "the renewal after a denied deferred request repeated it (CSR key $new_key)"

# Garbage bodies.
renew_fault "not base64" "$(reenroll '"body_mode": "not_base64"')" "not base64"
renew_fault "truncated DER" "$(reenroll '"body_mode": "truncated"')" "truncated"
renew_fault "not PKCS#7" "$(reenroll '"body_mode": "not_pkcs7"')" "not (DER )?PKCS#7"

# Bad certificates.
renew_fault "another key" "$(reenroll '"body_mode": "other_key"')" "another key"
renew_fault "another subject" "$(reenroll '"body_mode": "wrong_subject"')" "another subject"
renew_fault "rogue CA" "$(reenroll '"body_mode": "rogue_ca"')" "does not chain"
renew_fault "expired" "$(reenroll '"body_mode": "expired"')" "not currently valid: .*expired on"

_lab_alive "$FLEETIDD_PID" || lab_fail "fleetidd exited"
echo "PASS"
