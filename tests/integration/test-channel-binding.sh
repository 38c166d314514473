#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Proof of possession by channel binding (RFC 7030 3.5, RFC 9266), against the
# lab EST server, which computes each connection's binding on its own side
# (tls-unique from Python's ssl module, tls-exporter from OpenSSL through
# tests/lab/tls_binding.py) and, with require_channel_binding, refuses any CSR
# whose challengePassword does not carry the binding of the connection the
# CSR arrived on. So an accepted CSR proves it was built for, and sent over,
# the connection its binding came from. Cases:
#  - est.channel_binding = "required", TLS 1.3 (tls-exporter) and TLS 1.2
#    (tls-unique): enrollment accepted; /csrattrs and the POST share the
#    connection (same client port);
#  - the server closes the connection after /cacerts: the binding comes from
#    the connection that then carries the POST, not from the closed one;
#  - the server closes after every response: no CSR is sent, the error says why;
#  - the server drops the first POST unanswered (an idle timeout racing it):
#    libcurl resends it on a fresh connection, where its binding is stale and
#    refused; fleetidd rebuilds the CSR on that connection and is accepted;
#  - "auto": bound when /csrattrs asks for challengePassword, not otherwise;
#  - "off" against a server that requires it: refused (400), reported;
#  - renewal by the running daemon: /simplereenroll bound the same way.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

step() {
    echo "== $*"
}

# bound_requests OP: requests for OP whose challengePassword equals the binding
# of the connection they came on; prints "<count> <distinct peers>".
bound_requests() {
    "$LAB_PYTHON" - "$EST_LOG" "$1" <<'EOF'
import json, sys
n, peers = 0, set()
for line in open(sys.argv[1], encoding="utf-8"):
    rec = json.loads(line)
    if rec.get("event") != "request" or rec.get("op") != sys.argv[2] or rec.get("status") != 200:
        continue
    if rec.get("channel_binding") and rec.get("challenge_password") == rec["channel_binding"]:
        n += 1
        peers.add(rec["peer"])
print(n, len(peers))
EOF
}

# peer_of OP: the client address:port of the last request for OP.
peer_of() {
    "$LAB_PYTHON" - "$EST_LOG" "$1" <<'EOF'
import json, sys
peer = ""
for line in open(sys.argv[1], encoding="utf-8"):
    rec = json.loads(line)
    if rec.get("event") == "request" and rec.get("op") == sys.argv[2]:
        peer = rec["peer"]
print(peer)
EOF
}

# first_peer_of OP: the client address:port of the first request for OP.
first_peer_of() {
    "$LAB_PYTHON" - "$EST_LOG" "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    rec = json.loads(line)
    if rec.get("event") == "request" and rec.get("op") == sys.argv[2]:
        print(rec["peer"])
        break
EOF
}

# enroll_fresh MODE: forget the operational certificate and enroll once more
# with est.channel_binding = MODE; the EST log starts empty.
enroll_fresh() {
    FLEETID_CONF_NO_EST=1 fleetid_write_config \
        "est: { url = \"$EST_URL\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; timeout = 20; channel_binding = \"$1\"; };"
    rm -f "$FLEETID_STATE/operational.pem"
    : >"$EST_LOG"
    fleetid_enroll_once
}

fleetid_lab_up
fleetid_provision

step "required, TLS 1.3: the CSR carries the connection's tls-exporter value"
est_control '{"require_channel_binding": true}'
enroll_fresh required || lab_fail "enrollment with a required tls-exporter binding failed"
fleetid_expect_eq "$(bound_requests simpleenroll)" "1 1" "bound /simpleenroll requests (count, connections)"
fleetid_expect_eq "$(est_log_count op=simpleenroll channel_binding_type=tls-exporter status=200)" 1 \
    "/simpleenroll over TLS 1.3 bound by tls-exporter"
fleetid_expect_eq "$(peer_of csrattrs)" "$(peer_of simpleenroll)" \
    "client port of /csrattrs and /simpleenroll (one connection)"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "CSR channel binding: tls-exporter" "fleetidd output"

step "the server closes the connection after /cacerts: the binding is the POST's connection's"
est_control '{"require_channel_binding": true, "close_after": ["cacerts"]}'
enroll_fresh required || lab_fail "enrollment failed when /cacerts closed its connection"
fleetid_expect_eq "$(bound_requests simpleenroll)" "1 1" "bound /simpleenroll requests"
[ "$(peer_of cacerts)" != "$(peer_of simpleenroll)" ] ||
    lab_fail "the server closed the /cacerts connection, yet /simpleenroll came on the same client port"

step "the server closes after every response: no CSR is sent, the reason is given"
est_control '{"require_channel_binding": true, "close_after": ["cacerts", "csrattrs"]}'
rc=0
enroll_fresh required || rc=$?
fleetid_expect_eq "$rc" 75 "fleetidd --oneshot exit status"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "closes the connection after every response" "fleetidd output"
fleetid_expect_eq "$(est_log_count op=simpleenroll)" 0 "/simpleenroll requests sent"

step "the first POST is dropped unanswered: resent on a new connection, refused, rebuilt there, accepted"
est_control '{"require_channel_binding": true, "faults": [{"match": "simpleenroll", "body_mode": "drop", "count": 1}]}'
enroll_fresh required || lab_fail "enrollment failed after the server dropped the first POST"
fleetid_expect_eq "$(fleetid_requests_of simpleenroll)" "dropped:A 400:B 200:B" \
    "/simpleenroll requests (status:connection), in order"
fleetid_expect_eq "$(peer_of csrattrs)" "$(first_peer_of simpleenroll)" \
    "client port of /csrattrs and the dropped POST (one connection)"
fleetid_expect_eq "$(bound_requests simpleenroll)" "1 1" "bound /simpleenroll requests"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "CSR channel binding: tls-exporter" "fleetidd output"

step "auto: bound when /csrattrs asks for challengePassword, not otherwise"
est_control '{"require_channel_binding": true}'
enroll_fresh auto || lab_fail "auto: enrollment failed although /csrattrs asked for challengePassword"
fleetid_expect_eq "$(bound_requests simpleenroll)" "1 1" "auto: bound /simpleenroll requests"
est_control '{"csrattrs": "no_challenge"}'
enroll_fresh auto || lab_fail "auto: enrollment failed with a server that does not ask for challengePassword"
fleetid_expect_eq "$(est_log_count op=simpleenroll status=200 challenge_password=null)" 1 \
    "auto, not asked: /simpleenroll without a challengePassword"

step "required although /csrattrs does not ask: still bound"
est_control '{"csrattrs": "no_challenge", "require_channel_binding": true}'
enroll_fresh required || lab_fail "required: enrollment failed"
fleetid_expect_eq "$(bound_requests simpleenroll)" "1 1" "required, not asked: bound /simpleenroll requests"

step "off against a server that requires it: refused, and said so"
est_control '{"require_channel_binding": true}'
rc=0
enroll_fresh off || rc=$?
fleetid_expect_eq "$rc" 75 "off: fleetidd --oneshot exit status"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "HTTP 400.*challengePassword" "off: fleetidd output"
[ ! -e "$FLEETID_STATE/operational.pem" ] || lab_fail "off: a certificate was stored"

step "TLS 1.2: tls-unique, first enrollment and renewal by the daemon"
est_env_stop
est_env_start "$EST_DIR" --tls-max 1.2 --cert-lifetime 3600
est_control '{"require_channel_binding": true}'
enroll_fresh required || lab_fail "enrollment with a required tls-unique binding failed"
fleetid_expect_eq "$(est_log_count op=simpleenroll channel_binding_type=tls-unique status=200)" 1 \
    "/simpleenroll over TLS 1.2 bound by tls-unique"
fleetid_expect_eq "$(bound_requests simpleenroll)" "1 1" "bound /simpleenroll requests over TLS 1.2"

fleetid_daemon_start
fleetid_wait_state 30 enrolled || lab_fail "the daemon did not reach 'enrolled'"
"$FLEETIDCTL" --config "$FLEETID_CONF" renew >/dev/null || lab_fail "fleetidctl renew failed"
fleetid_expect_eq "$(bound_requests simplereenroll)" "1 1" "bound /simplereenroll requests over TLS 1.2"
fleetid_expect_grep "$FLEETIDD_LOG" "renewed: .*CSR channel binding: tls-unique" "fleetidd log"

echo "PASS: channel binding (tls-unique, tls-exporter) proves possession on the enrollment connection"
