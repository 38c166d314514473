#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Renewal for life, with certificates that live 30 seconds:
#  - the daemon renews several times while it stays up; each renewal brings a
#    new serial AND a new TPM key (alternating handles), the old key is evicted,
#    and every stored certificate chains to the EST CA;
#  - /simplereenroll is authenticated with the current operational certificate
#    and asks for exactly the current subject and subjectAltName (the one the
#    CA assigned), a new key each time, bound to its TLS 1.3 connection by
#    tls-exporter;
#  - SIGUSR1 renews now;
#  - the status shows the renewal due time and the next /cacerts refresh, a
#    full period after the enrollment's own /cacerts;
#  - a failing renewal (HTTP 500 once) leaves the current certificate in force,
#    is retried, and then succeeds;
#  - a device that was off until its certificate expired falls back to
#    /simpleenroll with the birth identity, with a new key; the expired
#    identity's key is evicted.
set -euo pipefail
source "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up --cert-lifetime 30 --backdate 0
fleetid_provision
# 30-second certificates on purpose: no renewal floor, no lifetime minimum.
fleetid_write_config "retry: { initial = 1; max = 5; };" "renew: { min_interval = 0; min_lifetime = 0; };"

serial_of() { openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial | cut -d= -f2; }
pubkey_of() { openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -pubkey; }
count_reenroll() { est_log_count op=simplereenroll status=200; }
# Predicates for lab_wait_until (re-evaluated on every try).
reenrolls_above() { [ "$(count_reenroll)" -gt "$1" ]; }
serial_differs() { [ "$(serial_of)" != "$1" ]; }
birth_enrolls_above() { [ "$(est_log_count op=simpleenroll status=200 client_kind=birth)" -gt "$1" ]; }
expired() { [ "$(date +%s)" -gt "$(date -d "$1" +%s)" ]; }

fleetid_daemon_start
fleetid_wait_state 30 enrolled
first_serial=$(serial_of)
first_key=$(pubkey_of)

# fleetidctl status shows when the renewal is due: within the certificate's
# lifetime, at 62..72 % of it (67 % +- 5 %; whole seconds of a 30 s lifetime,
# so 55..80 % is accepted), and the last attempt.
due=$(date -d "$(fleetid_status_get renew_due)" +%s) || lab_fail "status --json has no renew_due"
nb=$(date -d "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -enddate | cut -d= -f2)" +%s)
share=$(( (due - nb) * 100 / (na - nb) ))
[ "$share" -ge 55 ] && [ "$share" -le 80 ] ||
    lab_fail "renew_due lies at $share % of the lifetime, expected about 62..72 %"
[ "$(fleetid_status_get last_attempt)" != null ] || lab_fail "status --json has no last_attempt"
"$FLEETIDCTL" --config "$FLEETID_CONF" status | grep -q "^Renewal due:" ||
    lab_fail "fleetidctl status does not show the renewal due time"

# The enrollment fetched /cacerts, so the periodic refresh comes a full
# est.cacerts_refresh (default one day) later, not at once.
checked=$(date -d "$(fleetid_status_get cacerts_checked)" +%s) || lab_fail "status --json has no cacerts_checked"
next=$(date -d "$(fleetid_status_get cacerts_next)" +%s) || lab_fail "status --json has no cacerts_next"
fleetid_expect_eq "$((next - checked))" 86400 "seconds from the enrollment's /cacerts to the next periodic refresh"
"$FLEETIDCTL" --config "$FLEETID_CONF" status | grep -q "^Next CA certs check:" ||
    lab_fail "fleetidctl status does not show the next /cacerts refresh"

# Two scheduled renewals: due at 67 % +- 5 % of 30 s, i.e. about every 20 s.
lab_wait_until 70 "two renewals" reenrolls_above 1 ||
    lab_fail "expected 2 renewals within 70 s, saw $(count_reenroll); log: $(tail -n 5 "$FLEETIDD_LOG")"
lab_wait_until 10 "the daemon to store the renewed certificate" serial_differs "$first_serial"
[ "$(pubkey_of)" != "$first_key" ] || lab_fail "the renewed certificate kept the old key"
openssl verify -CAfile "$EST_PKI/est-ca.pem" -purpose sslclient "$FLEETID_STATE/operational.pem" >/dev/null ||
    lab_fail "the renewed certificate does not chain to the EST CA"

# Every re-enrollment was authenticated by an operational certificate, with the same subject.
n_op=$(est_log_count op=simplereenroll client_kind=operational)
[ "$n_op" -eq "$(est_log_count op=simplereenroll)" ] ||
    lab_fail "a /simplereenroll was not authenticated with the operational certificate"
subj=$(openssl x509 -in "$LAB_TMPDIR/idevid.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
[ "$(est_log_count op=simplereenroll "csr_subject=$subj")" -eq "$n_op" ] ||
    lab_fail "a renewal CSR did not carry the current subject $subj"
# Each renewal asked for a new key (renew.new_key = true): never the key of the
# certificate it authenticated with, never one an earlier renewal used. And it
# asked for the subjectAltName the CA had assigned at enrollment (the lab
# server refuses a CSR whose subjectAltName differs from the client
# certificate's, RFC 7030 4.2.2): every issued renewal carried one. And each
# was bound to its TLS 1.3 connection by tls-exporter.
"$LAB_PYTHON" - "$EST_LOG" <<'EOF' || lab_fail "the renewal CSRs' keys or subjectAltNames are wrong (above)"
import json
import sys

recs = [r for r in map(json.loads, open(sys.argv[1], encoding="utf-8"))
        if r.get("event") == "request" and r.get("op") == "simplereenroll" and r.get("status") == 200]
keys = [r["csr_pubkey_fingerprint"] for r in recs]
bad = [r for r in recs if r["csr_pubkey_fingerprint"] == r["client_pubkey_fingerprint"]]
no_san = [r for r in recs if r.get("csr_san", "none") == "none"]
# Over TLS 1.3 (the lab's default), each CSR carried its connection's
# tls-exporter value (RFC 9266) in its challengePassword.
unbound = [r for r in recs if r.get("channel_binding_type") != "tls-exporter"
           or r.get("challenge_password") != r.get("channel_binding")]
if len(recs) < 2 or bad or len(set(keys)) != len(keys) or no_san or unbound:
    sys.exit("renewals %d, with the client's own key %d, distinct keys %d, without a SAN %d, "
             "not bound by tls-exporter %d"
             % (len(recs), len(bad), len(set(keys)), len(no_san), len(unbound)))
EOF

# The current key is at one handle of the pair, the other is free: old keys are evicted.
handles=$(tpm2_getcap handles-persistent)
cur=$(pubkey_of)
if echo "$handles" | grep -qi 0x81020002 && echo "$handles" | grep -qi 0x81020003; then
    lab_fail "both operational handles are occupied after renewals: the old key was not evicted"
fi
h=0x81020002
echo "$handles" | grep -qi 0x81020003 && h=0x81020003
[ "$(fleetid_tpm_pubkey $h)" = "$(openssl pkey -pubin <<<"$cur")" ] ||
    lab_fail "the stored certificate is not for the key at $h"

# fleetidctl renew (SIGUSR1 to the daemon): renews now and reports the outcome.
before=$(count_reenroll)
out=$("$FLEETIDCTL" --config "$FLEETID_CONF" renew) || lab_fail "fleetidctl renew failed: $out"
echo "$out" | grep -q '^renewed$' || lab_fail "fleetidctl renew did not report success: $out"
reenrolls_above "$before" || lab_fail "fleetidctl renew reported success but no renewal reached the server"
fleetid_expect_grep "$FLEETIDD_LOG" "renewal requested now" "the daemon log"

# A failing renewal keeps the current certificate and is retried.
lab_wait_until 10 "the daemon to settle" grep -q '^state=enrolled' "$FLEETID_RUNTIME/status"
est_control '{"faults": [{"match": "simplereenroll", "status": 500, "body": "CA on fire", "count": 1}]}'
kept=$(serial_of)
kill -USR1 "$FLEETIDD_PID"
lab_wait_until 20 "the failed renewal to be logged" grep -q "renewal failed: .*CA on fire" "$FLEETIDD_LOG" ||
    lab_fail "the renewal failure with the server's text was not logged"
lab_wait_until 20 "the retried renewal" serial_differs "$kept" ||
    lab_fail "the renewal was not retried after the failure"
fleetid_expect_grep "$FLEETIDD_LOG" "the current certificate stays in force" "the failure message"
est_control ''

# Off until expiry: stop, let the certificate expire, start again.
_lab_kill "$FLEETIDD_PID" fleetidd
na=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -enddate | cut -d= -f2)
LAB_WAIT_POLL=0.1 lab_wait_until 40 "the certificate to expire" expired "$na"
sleep 1
expired_key=$(pubkey_of)
enroll_before=$(est_log_count op=simpleenroll status=200)
fleetid_daemon_start
lab_wait_until 30 "re-enrollment with the birth identity" birth_enrolls_above "$enroll_before" ||
    lab_fail "an expired device did not fall back to /simpleenroll with its birth identity"
fleetid_wait_state 20 enrolled
openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -checkend 0 >/dev/null ||
    lab_fail "after the fallback the stored certificate is not valid"
# A new identity, a new key (renew.new_key): the expired certificate's key is
# not reused, and it is gone from the TPM once the new certificate is stored.
[ "$(pubkey_of)" != "$expired_key" ] || lab_fail "the fallback enrollment reused the expired certificate's key"
handles=$(tpm2_getcap handles-persistent)
if echo "$handles" | grep -qi 0x81020002 && echo "$handles" | grep -qi 0x81020003; then
    lab_fail "both operational handles are occupied after the fallback: the expired identity's key was not evicted"
fi
echo "PASS: renewals, key rotation, SIGUSR1, failure kept the certificate, fallback after expiry with a new key"
