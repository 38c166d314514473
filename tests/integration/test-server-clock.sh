#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An EST server whose Date is far ahead (350 days), issuing certificates valid
# from far ahead (300 days). Certificates are judged on the local clock only:
#  - first enrollment: the certificate is refused with a clear error naming the
#    server's Date; nothing is stored; --oneshot exits 75;
#  - within est.max_clock_skew (a CA clock two minutes ahead) the first
#    enrollment accepts it; restarted with a tighter est.max_clock_skew, that
#    stored certificate is from the clock's future: the daemon waits for the
#    clock (waiting-clock) instead of enrolling anew;
#  - renewal: the new certificate is refused, the working identity is kept
#    byte for byte and its key stays in the TPM; a restarted daemon is "already
#    enrolled" with it, and fleetidctl check says OK.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
source "$(dirname "$0")/../lib/fleetid.sh"

DAY=86400
AHEAD="{\"date_offset\": $((350 * DAY)), \"validity_offset\": $((300 * DAY))}"
HANDLES=(0x81020002 0x81020003)

# 100-day certificates: moved 300 days ahead, one is valid at the server's
# Date (350 days ahead), as in the report that found this.
fleetid_lab_up --cert-lifetime $((100 * DAY))
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 5; };"
OPERATIONAL=$FLEETID_STATE/operational.pem

step() { echo "== $*"; }
cert_pubkey() { openssl x509 -in "$OPERATIONAL" -noout -pubkey | openssl pkey -pubin; }
# The operational handle holding the stored certificate's key; empty if none.
cert_key_handle() { fleetid_cert_key_handle "$OPERATIONAL" "${HANDLES[@]}"; }

step "first enrollment, server Date and certificate far ahead: refused, nothing stored"
est_control "$AHEAD"
rc=0
fleetid_enroll_once || rc=$?
fleetid_expect_eq "$rc" 75 "fleetidd --oneshot exit status"
[ "$(est_log_count op=simpleenroll status=200)" = 1 ] || lab_fail "the server did not issue a certificate"
[ ! -e "$OPERATIONAL" ] || lab_fail "a certificate valid only in 300 days was stored as the identity"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" \
    "enrollment failed: the EST server's Date is [0-9]+s ahead of the local clock \(more than est.max_clock_skew = 300s\).*not valid before" \
    "the refusal"

step "first enrollment, certificate valid in two minutes (within est.max_clock_skew): accepted"
est_control '{"validity_offset": 180}'
fleetid_enroll_once || lab_fail "a certificate valid in two minutes was refused at first enrollment"
nb=$(date -d "$(openssl x509 -in "$OPERATIONAL" -noout -startdate | cut -d= -f2)" +%s)
[ "$nb" -gt "$(date +%s)" ] || lab_fail "the lab did not issue a certificate from the future"

step "that stored certificate beyond a tighter est.max_clock_skew: the clock went back, wait for it"
# As after a boot whose RTC lost time: the certificate was valid when it was
# stored, so a notBefore now beyond the skew says the clock is behind, not that
# the certificate is bad. (No timesyncd on the machine to vouch for the clock;
# if there is one, the check is skipped below.)
if [ -e /run/systemd/timesync/synchronized ]; then
    echo "timesyncd vouches for this machine's clock: the waiting-clock check does not apply here"
else
    n0=$(est_log_count op=simpleenroll)
    FLEETID_CONF_NO_EST=1 fleetid_write_config \
        "est: { url = \"$EST_URL\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; timeout = 20; max_clock_skew = 60; };" \
        "retry: { initial = 1; max = 5; };"
    fleetid_daemon_start
    fleetid_wait_state 30 waiting-clock || lab_fail "a stored certificate from the clock's future: not waiting-clock"
    fleetid_expect_grep "$FLEETIDD_LOG" "not trusting the clock: .*before the notBefore of the operational certificate stored earlier" \
        "the reason to wait for the clock"
    sleep 2 # a wrong daemon would enroll anew at once
    fleetid_expect_eq "$(est_log_count op=simpleenroll)" "$n0" "/simpleenroll while waiting for the clock"
    _lab_kill "$FLEETIDD_PID" fleetidd
    fleetid_write_config "retry: { initial = 1; max = 5; };"
fi
rm -f "$OPERATIONAL"

step "normal enrollment"
est_control ''
fleetid_enroll_once || lab_fail "enrollment failed"
openssl x509 -in "$OPERATIONAL" -noout -checkend 0 >/dev/null || lab_fail "the enrolled certificate is not valid"
cp "$OPERATIONAL" "$LAB_TMPDIR/kept.pem"
handle=$(cert_key_handle)
[ -n "$handle" ] || lab_fail "the enrolled certificate's key is in no operational handle"
pub=$(cert_pubkey)

step "renewal from the server far ahead: refused, the identity and its key kept"
fleetid_daemon_start
fleetid_wait_state 30 enrolled || lab_fail "the daemon did not start enrolled"
# fleetidctl renew compares whole seconds of the status file.
sleep 1
est_control "$AHEAD"
rc=0
out=$(timeout 60 "$FLEETIDCTL" --config "$FLEETID_CONF" renew) || rc=$?
echo "$out"
fleetid_expect_eq "$rc" 1 "fleetidctl renew exit status"
grep -qE "^renewal did not succeed: waiting-retry: .*EST server's Date is [0-9]+s ahead.*not valid before" <<<"$out" ||
    lab_fail "fleetidctl renew does not name the refusal: $out"
[ "$(est_log_count op=simplereenroll status=200)" -ge 1 ] || lab_fail "the server issued no renewal"
cmp -s "$OPERATIONAL" "$LAB_TMPDIR/kept.pem" || lab_fail "the refused renewal replaced the working identity"
[ "$(fleetid_tpm_pubkey "$handle")" = "$pub" ] || lab_fail "the working identity's key was evicted from $handle"
fleetid_expect_grep "$FLEETIDD_LOG" "renewal failed: .*not valid before.*the current certificate stays in force" \
    "the renewal failure"
est_control ''
_lab_kill "$FLEETIDD_PID" fleetidd

step "restarted: already enrolled with the kept identity; check OK"
fleetid_daemon_start
lab_wait_until 30 "the restarted daemon to schedule the renewal" grep -q "renewal due at" "$FLEETIDD_LOG" ||
    lab_fail "the restarted daemon did not schedule a renewal: $(tail -n 3 "$FLEETIDD_LOG")"
fleetid_expect_grep "$FLEETIDD_LOG" "already enrolled" "the restarted daemon's log"
cmp -s "$OPERATIONAL" "$LAB_TMPDIR/kept.pem" || lab_fail "the identity changed across the restart"
rc=0
check=$("$FLEETIDCTL" --config "$FLEETID_CONF" check) || rc=$?
echo "$check"
fleetid_expect_eq "$rc" 0 "fleetidctl check exit status"
grep -q "^FLEETID OK - operational certificate valid until" <<<"$check" || lab_fail "fleetidctl check: $check"

echo "PASS: a server's Date and certificates far ahead change no identity"
