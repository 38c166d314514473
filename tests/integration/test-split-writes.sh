#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-split-writes.sh: the lab EST server answers in one write by default
# (so that a benchmark measures the client, not delayed ACKs), and its
# --split-writes switch writes each answer's header and body separately, as
# some real servers do. Seen from a TLS client, a write is a TLS record and
# one read returns at most one record, so:
#  - default server: the first read of a /cacerts answer holds the header and
#    the body;
#  - --split-writes: the first read holds the header only;
#  - fleetidd enrolls against both (against the split writes it arms
#    TCP_QUICKACK, lib/est/tcp-quickack.h; what that saves is measured by
#    tests/bench/bench-wall-time.sh, never asserted here).
# Exit status: 0 pass, 1 fail, 77 skipped.
# shellcheck disable=SC2119  # the lab functions' arguments are optional
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

# first_read: what the first TLS read of a GET /cacerts answer held,
# "head" (the header only) or "head+body".
first_read() {
    "$LAB_PYTHON" - "$EST_PORT" "$EST_PKI/est-ca.pem" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20) as raw:
    with ctx.wrap_socket(raw) as s:
        s.sendall(b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while not data:  # TLS 1.3 session tickets are no application data
            data = s.recv(65536)
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            sys.exit("the first read did not hold the whole header: %r" % data[:80])
        print("head+body" if body else "head")
PY
}

fleetid_lab_up
fleetid_provision
fleetid_write_config

echo "== one write (default)"
got=$(first_read) || lab_fail "cannot read /cacerts from the lab server"
fleetid_expect_eq "$got" head+body "the default server's first record"
fleetid_enroll_once || lab_fail "fleetidd did not enroll against the one-write server"

echo "== --split-writes"
est_env_stop
est_env_start "$LAB_TMPDIR" --split-writes
fleetid_write_config
got=$(first_read) || lab_fail "cannot read /cacerts from the split-writes server"
fleetid_expect_eq "$got" head "the split-writes server's first record"
rm -f "$FLEETID_STATE/operational.pem"
fleetid_enroll_once || lab_fail "fleetidd did not enroll against the split-writes server"
fleetid_expect_eq "$(est_log_count op=simpleenroll status=200)" 1 "simpleenroll answered 200"
echo "PASS"
