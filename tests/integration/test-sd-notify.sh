#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-sd-notify.sh: what fleetidd tells systemd, read from a private
# NOTIFY_SOCKET (a unix datagram listener in the lab's tmpdir):
#  - READY=1 comes once the configuration is valid and the loop runs, before
#    any enrollment: with an EST server nobody listens for, it still comes,
#    and the device is not enrolled;
#  - STATUS= names the state and the next event ("waiting-retry: <error>;
#    next attempt <time> UTC (in ...)"), and changes with the state: after
#    the EST server stops refusing, "enrolled; renewal due <the status
#    file's renew_due>";
#  - with WATCHDOG_USEC in the environment, WATCHDOG=1 arrives from the event
#    loop again and again, also while the EST server holds a renewal for
#    three watchdog periods (the attempt runs in a worker, not on the loop).
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
fleetid_notify_listen

# ---- READY=1 before enrollment, the EST server unreachable ----

dead_port=$(free_port) # nothing listens there: connections are refused
FLEETID_CONF_NO_EST=1 fleetid_write_config \
    "est: { url = \"https://localhost:$dead_port/.well-known/est\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; timeout = 20; };" \
    "retry: { initial = 1; max = 3; };"
NOTIFY_SOCKET=$FLEETID_NOTIFY_SOCKET WATCHDOG_USEC=2000000 fleetid_daemon_start

fleetid_notify_wait 30 "READY=1" || lab_fail "no READY=1 from fleetidd (log: $(cat "$FLEETIDD_LOG"))"
ready=$(fleetid_notify_first "READY=1")
grep -qx "$ready STATUS=starting; checking the stored identity" "$FLEETID_NOTIFY_LOG" ||
    lab_fail "READY=1 did not come with the starting STATUS=: $(cat "$FLEETID_NOTIFY_LOG")"
fleetid_notify_wait 60 "STATUS=waiting-retry: " || lab_fail "no STATUS=waiting-retry: $(cat "$FLEETID_NOTIFY_LOG")"
retry=$(fleetid_notify_first "STATUS=waiting-retry: ")
[ "$ready" -lt "$retry" ] || lab_fail "READY=1 (datagram $ready) came after the first failed attempt ($retry)"
[ ! -e "$FLEETID_STATE/operational.pem" ] || lab_fail "enrolled against an EST server nobody listens for?"
[ -z "$(fleetid_notify_first "STATUS=enrolled")" ] || lab_fail "STATUS=enrolled without an EST server"
# The error and the next attempt, with its time.
grep -E "^$retry STATUS=waiting-retry: .*(onnect|refused).*; next attempt (now|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC \(in [0-9]+ seconds?\))$" \
    "$FLEETID_NOTIFY_LOG" >/dev/null ||
    lab_fail "STATUS= does not name the state, the error and the next attempt: $(grep "^$retry " "$FLEETID_NOTIFY_LOG")"

# The watchdog: pings from the loop, not one.
pings_at_least() { [ "$(grep -c " WATCHDOG=1$" "$FLEETID_NOTIFY_LOG")" -ge "$1" ]; }
lab_wait_until 60 "three WATCHDOG=1 pings" pings_at_least 3 ||
    lab_fail "WATCHDOG=1 does not keep coming with WATCHDOG_USEC set: $(grep -c WATCHDOG "$FLEETID_NOTIFY_LOG") pings"
_lab_kill "$FLEETIDD_PID" fleetidd
fleetid_notify_wait 10 "STOPPING=1" || lab_fail "no STOPPING=1 at SIGTERM"

# Without WATCHDOG_USEC there is no watchdog (and no warning).
: >"$FLEETID_NOTIFY_LOG"
NOTIFY_SOCKET=$FLEETID_NOTIFY_SOCKET fleetid_daemon_start
fleetid_notify_wait 60 "STATUS=waiting-retry: " || lab_fail "no STATUS=waiting-retry: $(cat "$FLEETID_NOTIFY_LOG")"
_lab_kill "$FLEETIDD_PID" fleetidd
! grep -q "WATCHDOG=1" "$FLEETID_NOTIFY_LOG" || lab_fail "WATCHDOG=1 without WATCHDOG_USEC"
! grep -q "watchdog" "$FLEETIDD_LOG" || lab_fail "a watchdog warning without a watchdog: $(grep watchdog "$FLEETIDD_LOG")"

# ---- STATUS= across a state change: refused, then enrolled ----

: >"$FLEETID_NOTIFY_LOG"
fleetid_write_config "retry: { initial = 1; max = 2; };"
est_control '{"faults": [{"match": "*", "status": 503, "body": "maintenance (lab)"}]}'
NOTIFY_SOCKET=$FLEETID_NOTIFY_SOCKET fleetid_daemon_start
fleetid_notify_wait 60 "STATUS=waiting-retry: .*maintenance \(lab\)" ||
    lab_fail "no STATUS= with the server's refusal: $(cat "$FLEETID_NOTIFY_LOG")"
est_control ''
fleetid_notify_wait 60 "STATUS=enrolled" || lab_fail "no STATUS=enrolled after the refusals ended: $(cat "$FLEETID_NOTIFY_LOG")"
fleetid_wait_state 30 enrolled
refused=$(fleetid_notify_first "STATUS=waiting-retry: .*maintenance")
enrolled=$(fleetid_notify_first "STATUS=enrolled")
ready=$(fleetid_notify_first "READY=1")
[ "$ready" -lt "$refused" ] && [ "$refused" -lt "$enrolled" ] ||
    lab_fail "datagrams out of order: READY=1 $ready, refused $refused, enrolled $enrolled"
# The renewal due time of STATUS= is the status file's.
due=$(date -u -d "$(fleetid_status_get renew_due)" '+%Y-%m-%d %H:%M:%S UTC') || lab_fail "no renew_due in the status"
grep -qE "^$enrolled STATUS=enrolled; renewal due $due \(in [0-9]+ (second|minute|hour|day)s?\)$" "$FLEETID_NOTIFY_LOG" ||
    lab_fail "STATUS= after enrollment is not 'enrolled; renewal due $due (in ...)': $(grep "^$enrolled " "$FLEETID_NOTIFY_LOG")"
[ "$(grep -c "READY=1" "$FLEETID_NOTIFY_LOG")" = 1 ] || lab_fail "READY=1 sent more than once"
_lab_kill "$FLEETIDD_PID" fleetidd

# ---- WATCHDOG=1 keeps coming while a renewal is held for 6 s (3 periods) ----

: >"$FLEETID_NOTIFY_LOG"
NOTIFY_SOCKET=$FLEETID_NOTIFY_SOCKET WATCHDOG_USEC=2000000 fleetid_daemon_start
fleetid_notify_wait 30 "STATUS=enrolled" || lab_fail "no STATUS=enrolled: $(cat "$FLEETID_NOTIFY_LOG")"
est_control '{"faults": [{"match": "simplereenroll", "delay": 6}]}'
"$FLEETIDCTL" --config "$FLEETID_CONF" renew >"$LAB_TMPDIR/renew.out" 2>&1 &
renew_pid=$!
fleetid_notify_wait 30 "STATUS=renewing" || lab_fail "no STATUS=renewing: $(cat "$FLEETID_NOTIFY_LOG")"
renewing=$(fleetid_notify_first "STATUS=renewing")
wait "$renew_pid" || lab_fail "fleetidctl renew failed: $(cat "$LAB_TMPDIR/renew.out")"
# Pings between "renewing" and the next "enrolled": the loop was not held.
held=$(awk -v a="$renewing" '$1 > a && $2 ~ /^STATUS=enrolled/ { exit } $1 > a && $2 == "WATCHDOG=1" { n++ } END { print n + 0 }' \
    "$FLEETID_NOTIFY_LOG")
[ "$held" -ge 2 ] || lab_fail "only $held WATCHDOG=1 while the renewal was held 6 s: $(cat "$FLEETID_NOTIFY_LOG")"

cat "$FLEETID_NOTIFY_LOG" >&2
echo "PASS: READY=1 before enrollment, STATUS= with state and next event, WATCHDOG=1 from the loop"
