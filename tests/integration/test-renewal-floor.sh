#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A CA that issues 2-second certificates must not drive a renewal storm (each
# renewal or re-enrollment creates and evicts a persistent TPM key: NV wear).
# With renew.min_interval = 10 s, a 25-second window holds at most three
# certificate requests after the first enrollment; the certificate shorter
# than renew.min_lifetime is reported as a server problem (severity warning).
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
source "$(dirname "$0")/../lib/fleetid.sh"

WINDOW=25
FLOOR=10

fleetid_lab_up --cert-lifetime 2 --backdate 0
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 5; };" "renew: { min_interval = $FLOOR; };"
issued() {
    echo $(($(est_log_count op=simpleenroll status=200) + $(est_log_count op=simplereenroll status=200)))
}
issued_at_least() { [ "$(issued)" -ge "$1" ]; }

fleetid_daemon_start
lab_wait_until 30 "the first enrollment" issued_at_least 1 || lab_fail "fleetidd did not enroll"
first=$(issued)
sleep "$WINDOW"
n=$(($(issued) - first))
echo "certificates issued in ${WINDOW}s after the first enrollment: $n"
kill -0 "$FLEETIDD_PID" || lab_fail "fleetidd died"
[ "$n" -ge 1 ] || lab_fail "no renewal or re-enrollment at all within ${WINDOW}s: $(tail -n 5 "$FLEETIDD_LOG")"
# At most one per renew.min_interval: WINDOW / FLOOR rounded up.
[ "$n" -le $(((WINDOW + FLOOR - 1) / FLOOR)) ] ||
    lab_fail "$n certificates in ${WINDOW}s with renew.min_interval = ${FLOOR}s: a renewal storm"

fleetid_expect_grep "$FLEETIDD_LOG" \
    "renewals are held to one per renew.min_interval \(${FLOOR}s\): renewing at" "the held renewal"
fleetid_expect_grep "$FLEETIDD_LOG" \
    "operational certificate lives only 2s, less than renew.min_lifetime \(3600s\): the EST CA issues certificates too short to renew safely \(a server problem\).*severity warning" \
    "the short-lifetime report"

echo "PASS: no renewal storm from 2-second certificates, and the CA is reported"
