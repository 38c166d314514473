#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-subject.sh: the CSR subject of a first enrollment, against the lab EST
# server, which (like a real CA) refuses a CSR whose subject does not carry
# the serialNumber of the birth certificate the client authenticated with.
#  - no operational.subject_cn / subject_serial: the birth certificate's
#    subject, unchanged;
#  - subject_cn alone: that CN, and the serialNumber of the birth certificate
#    (docs/configuration.md: an empty subject_serial is taken from it);
#  - subject_serial alone: the birth certificate's CN and that serialNumber;
#    the birth one: accepted; another one: refused by the CA (400), reported,
#    nothing stored.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

step() {
    echo "== $*"
}

# enroll_with LINE: forget the operational certificate, enroll with LINE
# added to the config (the EST log starts empty); returns fleetidd's status.
enroll_with() {
    fleetid_write_config "$@"
    rm -f "$FLEETID_STATE/operational.pem"
    : >"$EST_LOG"
    fleetid_enroll_once
}

# expect_subject SUBJECT: the stored certificate and the logged CSR name SUBJECT (RFC 4514).
expect_subject() {
    fleetid_expect_eq "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -subject \
        -nameopt RFC2253,sname | sed 's/^subject=//')" "$1" "subject of the operational certificate"
    fleetid_expect_eq "$(est_log_count op=simpleenroll status=200 csr_subject="$1")" 1 \
        "accepted /simpleenroll requests with the CSR subject $1"
}

fleetid_lab_up
fleetid_provision SN-SUBJ-7
[ "$(openssl x509 -in "$LAB_TMPDIR/idevid.pem" -noout -subject -nameopt RFC2253,sname)" = \
    "subject=serialNumber=SN-SUBJ-7,CN=SN-SUBJ-7" ] ||
    lab_fail "unexpected birth certificate subject: $(openssl x509 -in "$LAB_TMPDIR/idevid.pem" -noout -subject)"

step "no subject configured: the birth certificate's"
enroll_with || lab_fail "enrollment with the birth certificate's subject failed"
expect_subject "serialNumber=SN-SUBJ-7,CN=SN-SUBJ-7"

step "subject_cn alone: that CN with the birth certificate's serialNumber"
enroll_with 'operational: { subject_cn = "gw-renamed.example.net"; };' ||
    lab_fail "enrollment with subject_cn alone failed"
expect_subject "serialNumber=SN-SUBJ-7,CN=gw-renamed.example.net"

step "subject_serial alone, the birth one: the birth certificate's CN with it"
enroll_with 'operational: { subject_serial = "SN-SUBJ-7"; };' ||
    lab_fail "enrollment with subject_serial alone failed"
expect_subject "serialNumber=SN-SUBJ-7,CN=SN-SUBJ-7"

step "subject_serial naming another device: refused by the CA, reported"
fleetid_write_config 'operational: { subject_cn = "gw-7"; subject_serial = "SN-OTHER-1"; };'
rm -f "$FLEETID_STATE/operational.pem"
: >"$EST_LOG"
fleetid_expect_oneshot_failure "another serialNumber" "HTTP 400.*lacks serialNumber=SN-SUBJ-7"
fleetid_expect_eq "$(est_log_count op=simpleenroll status=400 csr_subject=serialNumber=SN-OTHER-1,CN=gw-7)" 1 \
    "refused /simpleenroll requests"

echo "PASS: the CSR subject keeps the device's serialNumber"
