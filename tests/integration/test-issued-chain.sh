#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# operational.pem holds only the chain fleetid verified: the issued
# certificate, then the intermediates its verification used, never the trust
# anchor, and nothing else the EST answer carried. The lab server's body_mode
# with_extras adds the EST CA (the anchor), the rogue CA and a certificate for
# another key behind the issued certificate, on enrollment and on renewal.
# (The lab EST CA issues directly: the verified chain is the leaf alone.)
set -euo pipefail
source "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 5; };"

certs_in() { grep -c -- "-----BEGIN CERTIFICATE-----" "$1"; }
fingerprint_of() {
    echo "sha256:$(openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')"
}
# The stored chain: exactly one certificate, the one the server issued just now.
expect_only_issued() {
    local what=$1 op=$2 fp
    fleetid_expect_eq "$(certs_in "$FLEETID_STATE/operational.pem")" 1 "certificates in operational.pem after $what"
    fp=$(fingerprint_of "$FLEETID_STATE/operational.pem")
    [ "$(est_log_count op="$op" status=200 issued_fingerprint="$fp")" -eq 1 ] ||
        lab_fail "operational.pem after $what does not hold the certificate the server issued"
    openssl verify -CAfile "$EST_PKI/est-ca.pem" -purpose sslclient "$FLEETID_STATE/operational.pem" >/dev/null ||
        lab_fail "operational.pem after $what does not chain to the EST CA"
}

est_control '{"faults": [{"match": "simpleenroll", "body_mode": "with_extras"},
                         {"match": "simplereenroll", "body_mode": "with_extras"}]}'

# Enrollment.
fleetid_enroll_once || lab_fail "enrollment with extra certificates in the answer failed"
[ "$(est_log_count op=simpleenroll status=200)" -eq 1 ] || lab_fail "expected one /simpleenroll"
expect_only_issued enrollment simpleenroll

# Renewal (fleetidctl renew asks the daemon).
fleetid_daemon_start
fleetid_wait_state 30 enrolled
rc=0
out=$(timeout 150 "$FLEETIDCTL" --config "$FLEETID_CONF" renew 2>&1) || rc=$?
[ "$rc" -eq 0 ] || lab_fail "fleetidctl renew exited $rc: $out"
[ "$(est_log_count op=simplereenroll status=200)" -eq 1 ] || lab_fail "expected one /simplereenroll"
expect_only_issued renewal simplereenroll

# The next renewal authenticates with what was stored: it still works.
rc=0
out=$(timeout 150 "$FLEETIDCTL" --config "$FLEETID_CONF" renew 2>&1) || rc=$?
[ "$rc" -eq 0 ] || lab_fail "the second fleetidctl renew exited $rc: $out"
[ "$(est_log_count op=simplereenroll status=200 client_kind=operational)" -eq 2 ] ||
    lab_fail "the second renewal was not authenticated with the stored operational certificate"
echo "PASS"
