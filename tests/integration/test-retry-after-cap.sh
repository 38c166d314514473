#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# retry.max is the longest wait at first enrollment, whatever the server's
# Retry-After says: 99999999999 seconds, or a date in 2031, are cut to
# retry.max with a log line saying so; a malformed Retry-After is ignored with
# a log line too; then the enrollment succeeds.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
source "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 3; };"

# A busy /cacerts (503, the first request of an attempt) is waited for as the
# server asks, too.
est_control '{"faults": [
    {"match": "cacerts", "status": 503, "retry_after": "2", "count": 1},
    {"match": "simpleenroll", "status": 503, "retry_after": "99999999999", "count": 1},
    {"match": "simpleenroll", "status": 503, "retry_after": "Wed, 01 Jan 2031 00:00:00 GMT", "count": 1},
    {"match": "simpleenroll", "status": 503, "retry_after": "soon", "count": 1}]}'

fleetid_daemon_start
# Three waits of at most retry.max (3 s) each; the server asked for years.
fleetid_wait_state 60 enrolled ||
    lab_fail "not enrolled within 60 s: a Retry-After beyond retry.max was obeyed: $(grep 'retrying in' "$FLEETIDD_LOG" | tail -n 3)"
cat "$FLEETIDD_LOG"
fleetid_expect_eq "$(est_log_count op=simpleenroll status=503)" 3 "503 answers"

fleetid_expect_grep "$FLEETIDD_LOG" \
    "the EST server asked to wait longer than retry.max \(Retry-After: 99999999999\); waiting 3s" \
    "the capped delta-seconds Retry-After"
fleetid_expect_grep "$FLEETIDD_LOG" \
    "the EST server asked to wait longer than retry.max \(Retry-After: Wed, 01 Jan 2031 00:00:00 GMT\); waiting 3s" \
    "the capped HTTP-date Retry-After"
fleetid_expect_grep "$FLEETIDD_LOG" \
    "the EST server sent a Retry-After that is neither seconds nor an HTTP-date \(\"soon\"\); ignored" \
    "the malformed Retry-After"
fleetid_expect_grep "$FLEETIDD_LOG" \
    "enrollment failed: /cacerts: EST server is busy \(HTTP 503\).*retrying in 2s as the server asked" \
    "the busy /cacerts's Retry-After"
fleetid_expect_eq "$(grep -cE "retrying in .*as the server asked" "$FLEETIDD_LOG")" 1 \
    "waits announced as the server's (only the /cacerts one: the others were capped or ignored)"
fleetid_expect_eq "$(grep -cE "enrollment failed: .*retrying in [1-3]s$" "$FLEETIDD_LOG")" 3 \
    "retries within retry.max"

echo "PASS: Retry-After capped at retry.max, and logged when capped or malformed"
