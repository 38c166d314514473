#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-birth-expired.sh: a birth certificate that has expired (issue 12). The
# device's birth certificate is a file (birth.cert_file) whose notAfter is
# past (the lab manufacturer CA's sign-birth --expired, for the device's own
# birth key; fleetid-provision install-cert refuses an expired certificate, so
# this is a certificate that expired in the field). fleetidd, which needs the
# birth identity to enroll:
#   - sends nothing to the EST server (no TLS handshake, no request), and
#     says why: the error names the certificate, its notAfter, the clock, and
#     both ways out (a new certificate, or a clock set right);
#   - is in the state birth-expired (fleetidctl status, the status record,
#     the D-Bus property State on the lab's private bus, the metrics file),
#     and fleetidctl check says so;
#   - does not loop: the next attempt is retry.max away (one attempt, one
#     error line while it waits), not the fast retry.initial;
#   - once a valid birth certificate is in the file, the attempt after
#     retry.max enrolls, saying why it tried again.
# (The attempt at once when the clock is set is not tested here: tests never
# set the machine's clock. test-clock-jump covers that wake-up for
# waiting-clock, which uses the same watch.)
# Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

lab_require_tools busctl
fleetid_lab_up
fleetid_provision SN-EXPIRED-1
BIRTH_FILE=$LAB_TMPDIR/birth-cert.pem
"$LAB_PYTHON" "$LAB_PKI_PY" sign-birth "$EST_PKI" "$LAB_TMPDIR/birth-csr.pem" "$BIRTH_FILE" --expired \
    >/dev/null || lab_fail "the lab manufacturer CA refused the CSR"
not_after=$(openssl x509 -in "$BIRTH_FILE" -noout -enddate | cut -d= -f2)
[ "$(date -d "$not_after" +%s)" -lt "$(date +%s)" ] || lab_fail "the lab's birth certificate is not expired: $not_after"
METRICS=$LAB_TMPDIR/fleetid.prom
RETRY_MAX=12
fleetid_write_config "retry: { initial = 1; max = $RETRY_MAX; };" "monitoring: { metrics_file = \"$METRICS\"; };" \
    "birth: { cert_file = \"$BIRTH_FILE\"; };"

echo "== an expired birth certificate: birth-expired, nothing sent"
DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS fleetid_daemon_start
fleetid_wait_state 60 birth-expired || lab_fail "fleetidd did not reach the state birth-expired"
last_error=$(fleetid_status_get last_error)
grep -qE "the birth certificate \(serial [0-9A-F]+, issuer .*\) expired on [0-9T:-]+Z, and the clock says [0-9T:-]+Z: an EST server would refuse it, so it is not sent\. If the clock is right, the device needs a new birth certificate .*; if the clock is ahead, setting it right ends this" <<<"$last_error" ||
    lab_fail "the error does not say what expired and what helps: '$last_error'"
fleetid_expect_grep "$FLEETIDD_LOG" \
    "enrollment impossible: .*expired on .*nothing was sent to the EST server; trying again in ${RETRY_MAX}s \(retry.max\), or at once when the system clock is set" \
    "the log line"
fleetid_expect_grep "$METRICS" '^fleetid_state\{state="birth-expired"\} 1$' "the metric"
fleetid_expect_grep "$METRICS" '^fleetid_severity 4$' "the severity (critical: no identity, none to be had)"
! grep -q "operational certificate .*without a successful renewal" "$FLEETIDD_LOG" ||
    lab_fail "the birth certificate's expiry was reported as the operational certificate's"
state=$(busctl --address="$DBUS_SESSION_BUS_ADDRESS" --timeout=20 get-property org.fleetid.Agent1 \
    /org/fleetid/Agent1 org.fleetid.Agent1 State 2>&1) || lab_fail "busctl get-property State: $state"
fleetid_expect_eq "$state" 's "birth-expired"' "the D-Bus property State"
rc=0
"$FLEETIDCTL" --config "$FLEETID_CONF" check >"$LAB_TMPDIR/check.out" 2>&1 || rc=$?
fleetid_expect_eq "$rc" 3 "fleetidctl check without an operational certificate (UNKNOWN)"
fleetid_expect_grep "$LAB_TMPDIR/check.out" "state birth-expired" "fleetidctl check names the state"
"$FLEETIDCTL" --config "$FLEETID_CONF" status >"$LAB_TMPDIR/status.out" 2>&1 || true
fleetid_expect_grep "$LAB_TMPDIR/status.out" "birth-expired" "fleetidctl status"

echo "== no loop: one attempt, nothing sent, the next one retry.max away"
# retry.initial is 1 s: an ordinary failure would have been retried several
# times in this window; birth-expired waits retry.max (12 s).
sleep 4
fleetid_expect_eq "$(grep -c "enrollment impossible: " "$FLEETIDD_LOG" || true)" 1 "attempts while waiting"
fleetid_expect_eq "$(fleetid_requests_in "$EST_LOG")" 0 "requests to the EST server"
fleetid_expect_eq "$(est_log_count event=tls_handshake_failed)" 0 "TLS handshakes refused by the EST server"
next=$(fleetid_status_get next_attempt)
last=$(fleetid_status_get last_attempt)
[ -n "$next" ] && [ "$next" != null ] || lab_fail "no next attempt in the status"
[ "$(date -d "$next" +%s)" -ge "$(($(date -d "$last" +%s) + RETRY_MAX - 1))" ] ||
    lab_fail "the next attempt ($next) is not retry.max after the last one ($last)"

echo "== a valid birth certificate in the file: the next attempt enrolls"
cp "$LAB_TMPDIR/idevid.pem" "$BIRTH_FILE.tmp" && mv -f "$BIRTH_FILE.tmp" "$BIRTH_FILE"
fleetid_wait_state 60 enrolled || lab_fail "fleetidd did not enroll with the new birth certificate"
fleetid_expect_grep "$FLEETIDD_LOG" "the birth certificate had expired; retry.max has passed, trying again" \
    "why it tried again"
fleetid_expect_eq "$(est_log_count op=simpleenroll status=200 client_kind=birth)" 1 "enrollments"

echo "PASS"
