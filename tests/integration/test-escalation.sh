#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Escalation when renewal stalls, with 30-second certificates:
#  - the metrics file (Prometheus textfile) shows the certificate's expiry and
#    the state, written atomically;
#  - the event hook runs for "enrolled", "renewal-failed" and "expiring" with
#    the details in FLEETID_* variables (the certificate's subject, serial and
#    notAfter, the error, the severity and the one before);
#  - while every /simplereenroll fails, the severity rises (notice, then
#    critical once expired) in the journal/log and in the hook;
#  - the device then falls back to its birth identity and is enrolled again;
#  - a server that answers 503 with Retry-After: 3600: fleetidd makes no
#    further attempt, yet the severity rises on time (warning, error, then
#    critical at expiry: a timer, not the next attempt), and the wait ends
#    when the certificate expires, with the fallback to the birth identity.
set -euo pipefail
source "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up --cert-lifetime 30 --backdate 0
fleetid_provision
fleetid_event_hook
hook=$FLEETID_HOOK
events=$FLEETID_EVENTS
metrics=$LAB_TMPDIR/fleetid.prom
# 30-second certificates on purpose: no renewal floor, no lifetime minimum.
fleetid_write_config "retry: { initial = 1; max = 5; };" \
    "renew: { min_interval = 0; min_lifetime = 0; };" \
    "monitoring: { metrics_file = \"$metrics\"; hook = \"$hook\"; hook_timeout = 5; };"

has_event() { ls "$events" | grep -q -- "-$1\$"; }
log_has() { grep -qE -- "$1" "$FLEETIDD_LOG"; }
reenrolls_ok_above() { [ "$(est_log_count op=simplereenroll status=200)" -gt "$1" ]; }
birth_enrolls_above() { [ "$(est_log_count op=simpleenroll status=200 client_kind=birth)" -gt "$1" ]; }
event_with() { grep -l -- "$2" "$events"/*-"$1" >/dev/null 2>&1; }

fleetid_daemon_start
fleetid_wait_state 30 enrolled
lab_wait_until 10 "the enrolled hook" has_event enrolled || lab_fail "the hook did not run for 'enrolled'"
event_with enrolled "FLEETID_STATE=enrolled" || lab_fail "the enrolled hook lacks FLEETID_STATE"
event_with enrolled "FLEETID_CERT_NOT_AFTER=" || lab_fail "the enrolled hook lacks FLEETID_CERT_NOT_AFTER"
subject=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
serial=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial | cut -d= -f2)
first_enrolled=$(ls "$events"/*-enrolled | head -1)
grep -qxF "FLEETID_CERT_SUBJECT=$subject" "$first_enrolled" ||
    lab_fail "the enrolled hook lacks FLEETID_CERT_SUBJECT=$subject: $(grep CERT "$first_enrolled" | tr '\n' ' ')"
grep -qxF "FLEETID_CERT_SERIAL=$serial" "$first_enrolled" ||
    lab_fail "the enrolled hook lacks FLEETID_CERT_SERIAL=$serial: $(grep CERT "$first_enrolled" | tr '\n' ' ')"

na=$(date -d "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -enddate | cut -d= -f2)" +%s)
grep -q "^fleetid_certificate_expiry_timestamp_seconds $na\$" "$metrics" ||
    lab_fail "metrics: expiry $na not found in $(grep expiry "$metrics")"
grep -q '^fleetid_state{state="enrolled"} 1$' "$metrics" || lab_fail "metrics: state enrolled not set"

# From now on every renewal fails.
est_control '{"faults": [{"match": "simplereenroll", "status": 500, "body": "CA down"}]}'
lab_wait_until 40 "a renewal-failed hook" has_event renewal-failed || lab_fail "no renewal-failed hook"
event_with renewal-failed "FLEETID_ERROR=.*CA down" || lab_fail "the renewal-failed hook lacks the error"
grep -qE '^fleetid_renewal_consecutive_failures [1-9]' "$metrics" || lab_fail "metrics: no consecutive failures"
lab_wait_until 90 "severity critical" event_with expiring "FLEETID_SEVERITY=critical" ||
    lab_fail "the severity never reached critical; events: $(ls "$events" | tr '\n' ' ')"
event_with expiring "FLEETID_PREVIOUS_SEVERITY=" || lab_fail "the expiring hook lacks FLEETID_PREVIOUS_SEVERITY"
fleetid_expect_grep "$FLEETIDD_LOG" "without a successful renewal: severity critical" "the escalation message"

# Expired: falls back to the birth identity (the fault is only on /simplereenroll).
lab_wait_until 60 "re-enrollment after expiry" \
    sh -c "ls '$events' | grep -c -- '-enrolled\$' | grep -qv '^1\$'" ||
    lab_fail "no second 'enrolled' event after the certificate expired"
est_control ''

# The server asks for an hour's pause: one attempt, then the timer escalates.
lab_wait_until 60 "a successful renewal" reenrolls_ok_above "$(est_log_count op=simplereenroll status=200)" ||
    lab_fail "no successful renewal once the faults were cleared"
mkdir -p "$LAB_TMPDIR/events-before" && mv "$events"/* "$LAB_TMPDIR/events-before/"
births=$(est_log_count op=simpleenroll status=200 client_kind=birth)
na=$(date -d "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -enddate | cut -d= -f2)" +%s)
est_control '{"faults": [{"match": "simplereenroll", "status": 503, "retry_after": 3600}]}'
lab_wait_until 40 "the 503 answered by Retry-After" log_has "retrying in [0-9]+s as the server asked" ||
    lab_fail "the renewal was not answered by 503 with Retry-After"
lab_wait_until 40 "severity critical without an attempt" event_with expiring "FLEETID_SEVERITY=critical" ||
    lab_fail "the severity never reached critical; events: $(ls "$events" | tr '\n' ' ')"
for sev in warning error; do
    event_with expiring "FLEETID_SEVERITY=$sev" || lab_fail "no 'expiring' event with severity $sev: $(ls "$events" | tr '\n' ' ')"
done
first_warning=$(grep -l "FLEETID_SEVERITY=warning" "$events"/*-expiring | head -1)
[ "$(basename "$first_warning" | cut -d- -f1)" -lt "${na}000000000" ] ||
    lab_fail "the warning came after the certificate expired"
fleetid_expect_eq "$(est_log_count op=simplereenroll status=503)" 1 \
    "renewal attempts while the server asked for an hour's pause"
lab_wait_until 30 "the fallback at expiry" birth_enrolls_above "$births" ||
    lab_fail "the Retry-After wait did not end at the certificate's expiry"
est_control ''
echo "PASS: metrics, hook events and severity escalation while renewal stalls; fallback re-enrollment; escalation on time under a long Retry-After"
