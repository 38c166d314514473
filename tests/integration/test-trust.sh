#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-trust.sh: fleetidd talks only to an EST server it can authenticate.
#   - a server certificate that does not chain to est.trust_anchors, or one
#     that names another host, ends the TLS handshake: fleetidd --oneshot exits
#     75 naming the verification failure, and no request reaches the server;
#   - with no trust anchors, est.bootstrap_fingerprint decides: the right EST CA
#     fingerprint enrolls and saves the anchors in the state directory, a wrong
#     one is refused (naming it) before anything but /cacerts is sent;
#   - a first enrollment while the EST CA rolls over to a new root (RFC 7030
#     4.1.3) adopts the new root at once, and logs it with its MESSAGE_ID.
# Not covered: a TLS version floor below 1.2, since the lab server only
# speaks TLS 1.2 and 1.3.
# Exit status: 0 pass, 1 fail, 77 skipped (a tool is missing).

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

step() {
    echo "== $*"
}

restart_est() {
    est_env_stop
    est_env_start "$LAB_TMPDIR" "$@"
}

handshake_refused() {
    [ "$(est_log_count event=tls_handshake_failed)" -ge 1 ]
}

# refused_at_handshake WHAT ERE: fleetidd --oneshot (config already written)
# fails with 75, its output matches ERE, the server saw a failed handshake and
# no request, and nothing was enrolled.
refused_at_handshake() {
    local what=$1 ere=$2 rc=0
    rm -rf "$FLEETID_STATE"
    fleetid_enroll_once || rc=$?
    fleetid_expect_eq "$rc" 75 "fleetidd --oneshot exit status against $what"
    fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "$ere" "fleetidd's reason for refusing $what"
    lab_wait_until 5 "the EST server to log the refused handshake" handshake_refused ||
        lab_fail "$what: expected a tls_handshake_failed event in $EST_LOG (did fleetidd connect at all?)"
    fleetid_expect_eq "$(est_log_count)" 0 "requests that reached $what"
    [ ! -e "$FLEETID_STATE/operational.pem" ] || lab_fail "$what: an operational certificate was stored"
    fleetid_expect_eq "$(fleetid_status_get state)" failed "fleetidctl status after refusing $what"
}

# bootstrap_config FINGERPRINT: no trust anchors, only the bootstrap fingerprint.
bootstrap_config() {
    FLEETID_CONF_NO_EST=1 fleetid_write_config \
        "est: { url = \"$EST_URL\"; trust_anchors = \"\"; bootstrap_fingerprint = \"$1\"; timeout = 20; };"
}

fleetid_lab_up --server-cert rogue
fleetid_provision SN-TRUST-1
fleetid_write_config

step "a server certificate from a CA outside est.trust_anchors"
refused_at_handshake "a server with a rogue certificate" \
    'certificate (problem|verif)|unable to get local issuer|self.signed|unknown ca'

step "a valid server certificate for another host name"
restart_est --server-cert otherhost
fleetid_write_config
refused_at_handshake "a server certificate for other.example" 'hostname|host name|does not match'

step "bootstrap with a fingerprint that is not in /cacerts"
restart_est
rm -rf "$FLEETID_STATE"
wrong=$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$EST_PKI/rogue-ca.pem")
bootstrap_config "$wrong"
rc=0
fleetid_enroll_once || rc=$?
fleetid_expect_eq "$rc" 75 "fleetidd --oneshot exit status with a wrong bootstrap fingerprint"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "fingerprint.*$wrong" \
    "fleetidd's reason for refusing the /cacerts answer"
fleetid_expect_eq "$(est_log_count op=simpleenroll)" 0 "simpleenroll requests with a wrong fingerprint"
fleetid_expect_eq "$(est_log_count op=cacerts)" "$(est_log_count)" \
    "requests other than /cacerts with a wrong fingerprint"
fleetid_expect_eq "$(est_log_count client_fingerprint=null)" "$(est_log_count)" \
    "unauthenticated bootstrap requests that did not present the birth certificate"
[ ! -e "$FLEETID_STATE/est-trust-anchors.pem" ] ||
    lab_fail "trust anchors were saved although the fingerprint matched nothing"
[ ! -e "$FLEETID_STATE/operational.pem" ] || lab_fail "enrolled with a wrong bootstrap fingerprint"

step "bootstrap with the EST CA's fingerprint"
right=$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$EST_PKI/est-ca.pem")
bootstrap_config "$right"
fleetid_enroll_once ||
    lab_fail "fleetidd --oneshot with the EST CA's bootstrap fingerprint: expected exit 0, got $?"
[ -s "$FLEETID_STATE/est-trust-anchors.pem" ] ||
    lab_fail "no $FLEETID_STATE/est-trust-anchors.pem after bootstrapping"
fleetid_expect_eq "$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$FLEETID_STATE/est-trust-anchors.pem")" \
    "$right" "the saved trust anchor"
fleetid_expect_eq "$(est_log_count op=simpleenroll status=200 client_kind=birth)" 1 \
    "simpleenroll requests after bootstrapping"
openssl verify -CAfile "$EST_PKI/est-ca.pem" "$FLEETID_STATE/operational.pem" >/dev/null ||
    lab_fail "the operational certificate enrolled after bootstrapping does not chain to the EST CA"

step "a first enrollment during a root CA rollover adopts the new root"
"$LAB_PYTHON" "$LAB_PKI_PY" rollover "$EST_PKI" >/dev/null || lab_fail "pki.py rollover failed"
new_fp=$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$EST_PKI/est-ca-new.pem")
fleetid_write_config
rm -f "$FLEETID_STATE"/operational.pem "$FLEETID_STATE"/est-trust-anchors.pem "$FLEETID_STATE"/est-adopted-anchors.pem
est_control '{"cacerts": "rollover"}'
fleetid_enroll_once || lab_fail "enrollment during a rollover: expected exit 0, got $?"
fleetid_expect_eq "$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$FLEETID_STATE/est-adopted-anchors.pem")" \
    "$new_fp" "the root adopted at enrollment"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "adopted the EST root CA certificate .*\($new_fp," \
    "fleetidd's report of the adoption"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "the EST CA certificates changed" "fleetidd's report of the new EST CA set"
est_control ''

echo "PASS: EST server authentication and bootstrap; rollover adopted at first enrollment"
