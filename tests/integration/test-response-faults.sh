#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-response-faults.sh: a broken /simpleenroll answer (truncated, not
# base64, not PKCS#7, a certificate for another key, expired, from a rogue CA)
# makes `fleetidd --oneshot` exit 75 with an error naming what was wrong,
# stores no operational certificate and records the failure in the status
# file; the pending operational key in the TPM is kept and reused once the
# server behaves. A valid stored certificate is never replaced by a bad
# answer. In daemon mode a bad first answer is retried and enrollment ends
# up done.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

OP_HANDLE=0x81020002

fleetid_lab_up
fleetid_provision
fleetid_write_config
OPERATIONAL=$FLEETID_STATE/operational.pem

# The SubjectPublicKeyInfo fingerprint of the TPM operational key, in the
# format of the EST log's csr_pubkey_fingerprint; empty if there is none.
op_key_fingerprint() {
    local der=$LAB_TMPDIR/op-pub.der
    rm -f "$der"
    tpm2_readpublic -c "$OP_HANDLE" -f der -o "$der" >/dev/null 2>&1 || return 0
    echo "sha256:$(sha256sum <"$der" | cut -d' ' -f1)"
}

# bad_answer MODE REASON_ERE: one --oneshot run against body_mode MODE.
KEY_FP=
bad_answer() {
    local mode=$1 reason=$2 before after fp
    echo "== body_mode $mode"
    est_control "{\"faults\": [{\"match\": \"simpleenroll\", \"body_mode\": \"$mode\"}]}"
    before=$(est_log_count op=simpleenroll status=200)
    fleetid_expect_oneshot_failure "$mode" "$reason"
    after=$(est_log_count op=simpleenroll status=200)
    [ "$after" -eq $((before + 1)) ] ||
        lab_fail "$mode: expected 1 new answered /simpleenroll, got $((after - before))"

    fp=$(op_key_fingerprint)
    [ -n "$fp" ] || lab_fail "$mode: no operational key in the TPM at $OP_HANDLE after the attempt"
    [ -z "$KEY_FP" ] || [ "$fp" = "$KEY_FP" ] ||
        lab_fail "$mode: the pending operational key changed: expected $KEY_FP, got $fp"
    KEY_FP=$fp
}

bad_answer truncated "truncated"
bad_answer not_base64 "not base64"
bad_answer not_pkcs7 "not (DER )?PKCS#7"
bad_answer other_key "another key"
bad_answer expired "not currently valid: .*expired on"
bad_answer rogue_ca "does not chain"

echo "== headers without end: refused past 64 KiB, the pending key kept"
est_control '{"faults": [{"match": "simpleenroll", "status": 503, "pad_headers": 100}]}'
fleetid_expect_oneshot_failure pad_headers "more than 65536 bytes of headers for simpleenroll"
[ "$(op_key_fingerprint)" = "$KEY_FP" ] || lab_fail "pad_headers: the pending operational key changed"

echo "== server fixed: enrollment reuses the pending key"
est_control ''
fleetid_enroll_once || lab_fail "fleetidd --oneshot failed once the server answered correctly"
[ -s "$OPERATIONAL" ] || lab_fail "enrolled but $OPERATIONAL is missing"
fp=$(op_key_fingerprint)
[ "$fp" = "$KEY_FP" ] || lab_fail "operational key after success: expected $KEY_FP (the pending one), got $fp"
n=$(est_log_count op=simpleenroll)
m=$(est_log_count op=simpleenroll csr_pubkey_fingerprint="$KEY_FP")
[ "$n" -eq 8 ] && [ "$m" -eq 8 ] ||
    lab_fail "expected all 8 CSRs for the key $KEY_FP, got $m of $n"
[ "$(openssl x509 -in "$OPERATIONAL" -noout -pubkey | openssl pkey -pubin -outform der | sha256sum |
    cut -d' ' -f1)" = "${KEY_FP#sha256:}" ] || lab_fail "$OPERATIONAL is not for the TPM key at $OP_HANDLE"
state=$(fleetid_status_get state)
[ "$state" = enrolled ] || lab_fail "status state: expected 'enrolled', got '$state'"

echo "== a valid stored certificate is kept"
cp "$OPERATIONAL" "$LAB_TMPDIR/good.pem"
est_control '{"faults": [{"match": "simpleenroll", "body_mode": "other_key"}]}'
fleetid_enroll_once || lab_fail "fleetidd --oneshot failed while a valid certificate is stored"
cmp -s "$OPERATIONAL" "$LAB_TMPDIR/good.pem" || lab_fail "the valid $OPERATIONAL was replaced"
n=$(est_log_count op=simpleenroll)
[ "$n" -eq 8 ] || lab_fail "expected no new /simpleenroll with a valid certificate stored, got $((n - 8))"

echo "== daemon: a bad first answer is retried"
rm -rf "$FLEETID_STATE"
fleetid_write_config 'retry: { initial = 1; max = 2; };'
est_control '{"faults": [{"match": "simpleenroll", "body_mode": "other_key", "count": 1}]}'
fleetid_daemon_start
fleetid_wait_state 30 enrolled || lab_fail "fleetidd did not enroll within 30 s after a bad first answer"
fleetid_expect_grep "$FLEETIDD_LOG" "enrollment failed: .*another key.*\(attempt 1\); retrying in" \
    "daemon log of the failed attempt"
n=$(est_log_count op=simpleenroll)
[ "$n" -eq 10 ] || lab_fail "expected 2 /simpleenroll from the daemon (a failure and a retry), got $((n - 8))"
m=$(est_log_count op=simpleenroll csr_pubkey_fingerprint="$KEY_FP")
[ "$m" -eq 10 ] || lab_fail "the daemon's retry did not reuse the operational key $KEY_FP"
[ -s "$OPERATIONAL" ] || lab_fail "daemon enrolled but $OPERATIONAL is missing"
_lab_alive "$FLEETIDD_PID" || lab_fail "fleetidd exited after enrolling; it should keep running"

echo "PASS"
