#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A TPM that goes away and comes back is used again by the running fleetidd,
# without restarting it (the tpm2 OpenSSL provider keeps a TPM connection of
# its own, which a restart of the resource manager or of the TPM breaks for
# good; fleetidd loads it afresh for each attempt, see docs/tpm-openssl.md):
#  - tpm2-abrmd restarted (SIGTERM, as `systemctl restart tpm2-abrmd` does)
#    while fleetidd is idle: the next renewal (fleetidctl renew) succeeds;
#  - swtpm killed (SIGKILL) and started again on the same state while fleetidd
#    is idle: the next renewal succeeds;
#  - swtpm dead while a renewal is asked for: it fails with "TPM unavailable",
#    is retried, and the first retry after swtpm is back succeeds;
#  - swtpm killed in the middle of a renewal, right before the provider signs
#    the CSR with the TPM key (the lab server holds the /csrattrs answer):
#    that renewal fails with "TPM unavailable" and what failed, and the first
#    retry after swtpm is back succeeds.
set -euo pipefail
source "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 5; };" "renew: { retry_max = 60; };"

serial_of() { openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial | cut -d= -f2; }
serial_differs() { [ "$(serial_of)" != "$1" ]; }
renewal_failures() { grep -c "renewal failed: " "$FLEETIDD_LOG" || true; }
failures_above() { [ "$(renewal_failures)" -gt "$1" ]; }
delayed() { [ "$(est_log_count event=delay op="$1")" -gt 0 ]; }

# fleetidctl renew must report "renewed" at once (the first attempt after the
# TPM came back), and a new certificate must be stored.
renew_now_succeeds() {
    local what=$1 before out
    before=$(serial_of)
    out=$("$FLEETIDCTL" --config "$FLEETID_CONF" renew) ||
        lab_fail "$what: fleetidctl renew failed: $out"
    grep -q '^renewed$' <<<"$out" || lab_fail "$what: fleetidctl renew did not report success: $out"
    serial_differs "$before" || lab_fail "$what: no new certificate was stored"
    openssl verify -CAfile "$EST_PKI/est-ca.pem" "$FLEETID_STATE/operational.pem" >/dev/null ||
        lab_fail "$what: the renewed certificate does not chain to the EST CA"
}

# swtpm is started again after the renewal failed $1 times: the next retry
# (at most one more failure, of an attempt under way meanwhile) renews.
retry_after_swtpm_back_succeeds() {
    local what=$1 kept=$2 failed
    tpm_env_start_swtpm
    failed=$(renewal_failures)
    lab_wait_until 90 "$what: the retry after swtpm is back" serial_differs "$kept" ||
        lab_fail "$what: no renewal succeeded after swtpm came back; log: $(tail -n 3 "$FLEETIDD_LOG")"
    [ "$(renewal_failures)" -le $((failed + 1)) ] ||
        lab_fail "$what: $(($(renewal_failures) - failed)) renewals failed after swtpm came back"
    fleetid_wait_state 20 enrolled
}

fleetid_daemon_start
fleetid_wait_state 30 enrolled

# 1. The resource manager restarts while fleetidd is idle.
tpm_env_restart_abrmd
renew_now_succeeds "after tpm2-abrmd restarted"

# 2. The TPM restarts while fleetidd is idle.
tpm_env_kill_swtpm
tpm_env_start_swtpm
renew_now_succeeds "after swtpm restarted"

# 3. The TPM is down when a renewal is asked for.
tpm_env_kill_swtpm
kept=$(serial_of)
failed=$(renewal_failures)
out=$("$FLEETIDCTL" --config "$FLEETID_CONF" renew) && lab_fail "fleetidctl renew succeeded without a TPM: $out"
grep -q "TPM unavailable: " <<<"$out" || lab_fail "fleetidctl renew without a TPM: expected 'TPM unavailable', got: $out"
fleetid_expect_grep "$FLEETIDD_LOG" "renewal failed: TPM unavailable: .*retrying in [0-9]+s" \
    "a renewal without a TPM"
[ "$(serial_of)" = "$kept" ] || lab_fail "the certificate changed while the TPM was down"
retry_after_swtpm_back_succeeds "swtpm down at the renewal" "$kept"

# 4. The TPM dies in the middle of a renewal, while the attempt holds the tpm2
# provider's connection (the TLS handshake signed with the operational key is
# done): the server holds the /csrattrs answer for 10 s, ample for the kill
# even under load. The next TPM operation is the new key's creation (the key
# type is chosen from /csrattrs first) and fails; the retry after swtpm is back
# must not reuse the provider's dead connection.
est_control '{"faults": [{"match": "csrattrs", "delay": 10, "count": 1}]}'
kept=$(serial_of)
failed=$(renewal_failures)
kill -USR1 "$FLEETIDD_PID"
lab_wait_until 30 "the lab server to hold the /csrattrs answer" delayed csrattrs ||
    lab_fail "the renewal did not reach /csrattrs"
tpm_env_kill_swtpm
lab_wait_until 30 "the renewal to fail without its TPM" failures_above "$failed" ||
    lab_fail "the renewal whose TPM died did not fail; log: $(tail -n 3 "$FLEETIDD_LOG")"
# Why it failed (the TPM is gone) is named.
fleetid_expect_grep "$FLEETIDD_LOG" "renewal failed: TPM unavailable: .*retrying in [0-9]+s" \
    "a renewal whose TPM died in the middle"
est_control ''
retry_after_swtpm_back_succeeds "swtpm killed during a renewal" "$kept"
echo "PASS: test-tpm-restart"
