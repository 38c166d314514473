#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The wall clock moves under a running fleetidd. This test SETS THE MACHINE'S
# CLOCK (CAP_SYS_TIME; skipped without it) and puts it back at exit from
# CLOCK_BOOTTIME, which no clock setting moves. meson runs it alone
# (is_parallel: false), since every other test reads the same clock. A test
# must not change the machine it runs on: it is skipped unless
# FLEETID_TEST_SET_CLOCK=1 says this machine is a throwaway one (a VM). A time
# namespace cannot help: it offsets CLOCK_MONOTONIC and CLOCK_BOOTTIME only.
#  - forward past the renewal due time: the CLOCK_REALTIME timer fires at once
#    and the certificate is renewed, while the daemon stays up;
#  - back again: the fresh certificate's notBefore now lies in the future; the
#    running daemon keeps it and sends nothing; restarted, it does not take a
#    certificate not valid on its clock (beyond est.max_clock_skew) as its
#    identity, and enrolls again;
#  - a clock at 1970 at start: "waiting-clock", nothing sent; when the clock is
#    set right, the daemon wakes up by itself (timerfd TFD_TIMER_CANCEL_ON_SET,
#    no polling) and enrolls.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

step() {
    echo "== $*"
}

# realtime - boottime now, in seconds (a float).
clock_offset() {
    "$LAB_PYTHON" -c 'import time; print(time.clock_gettime(time.CLOCK_REALTIME) - time.clock_gettime(time.CLOCK_BOOTTIME))'
}

# set_clock_offset OFFSET: realtime := boottime + OFFSET.
set_clock_offset() {
    "$LAB_PYTHON" -c '
import sys, time
time.clock_settime(time.CLOCK_REALTIME, time.clock_gettime(time.CLOCK_BOOTTIME) + float(sys.argv[1]))' "$1"
}

[ "${FLEETID_TEST_SET_CLOCK:-}" = 1 ] ||
    lab_skip "sets the machine's clock; run it only in a throwaway machine, with FLEETID_TEST_SET_CLOCK=1"
TRUE_OFFSET=$(clock_offset)
set_clock_offset "$TRUE_OFFSET" 2>/dev/null || lab_skip "cannot set the clock here (needs CAP_SYS_TIME)"
restore_clock() {
    set_clock_offset "$TRUE_OFFSET" || echo "WARNING: could not put the clock back" >&2
}

# jump_to UNIX_SECONDS: set the wall clock there.
jump_to() {
    set_clock_offset "$("$LAB_PYTHON" -c 'import sys, time; print(float(sys.argv[1]) - time.clock_gettime(time.CLOCK_BOOTTIME))' "$1")"
}

serial_of() { openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial | cut -d= -f2; }
serial_differs() { [ "$(serial_of)" != "$1" ]; }
reenrolls_at_least() { [ "$(est_log_count op=simplereenroll status=200)" -ge "$1" ]; }
status_is() { grep -q "^state=$1\$" "$FLEETID_RUNTIME/status"; }

fleetid_lab_up --cert-lifetime 600
lab_on_exit restore_clock
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 5; };"

fleetid_daemon_start
fleetid_wait_state 30 enrolled || lab_fail "the daemon did not enroll"
first_serial=$(serial_of)
due=$(date -d "$(fleetid_status_get renew_due)" +%s) || lab_fail "no renew_due in the status"

step "the clock jumps forward past the renewal due time"
jump_to $((due + 30))
lab_wait_until 60 "a renewal after the jump" reenrolls_at_least 1 ||
    lab_fail "no renewal within 60 s of the clock passing the due time; log: $(tail -n 3 "$FLEETIDD_LOG")"
lab_wait_until 20 "the renewed certificate to be stored" serial_differs "$first_serial" ||
    lab_fail "the renewed certificate was not stored"
lab_wait_until 20 "state enrolled" status_is enrolled || lab_fail "the daemon did not return to 'enrolled'"
fleetid_expect_eq "$(est_log_count op=simplereenroll status=200)" 1 "renewals after the forward jump"
renewed_sum=$(sha256sum <"$FLEETID_STATE/operational.pem")

step "the clock jumps back: the new certificate's notBefore is now in the future"
restore_clock
not_before=$(date -d "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -startdate | cut -d= -f2)" +%s)
[ "$not_before" -gt "$(date +%s)" ] || lab_fail "the renewed certificate's notBefore is not in the future"
requests=$(est_log_count)
# Nothing is due now; give a misbehaving daemon a few seconds to show itself.
sleep 5
fleetid_expect_eq "$(est_log_count)" "$requests" "EST requests after the backward jump"
status_is enrolled || lab_fail "state after the backward jump: $(grep '^state=' "$FLEETID_RUNTIME/status")"
fleetid_expect_eq "$(sha256sum <"$FLEETID_STATE/operational.pem")" "$renewed_sum" \
    "operational.pem after the backward jump"
kill -0 "$FLEETIDD_PID" || lab_fail "fleetidd died after the clock jumped back"
_lab_kill "$FLEETIDD_PID" fleetidd

step "restarted with the clock behind the certificate by more than est.max_clock_skew: enrolled anew"
# A certificate not valid yet on this clock is no working identity at start
# (fleetidctl check says so too); the new one is judged on the same clock.
fleetid_daemon_start
lab_wait_until 30 "the restarted daemon to enroll again" grep -q ": enrolled: operational certificate" "$FLEETIDD_LOG" ||
    lab_fail "the restarted daemon did not enroll again; log: $(tail -n 3 "$FLEETIDD_LOG")"
if grep -q "already enrolled" "$FLEETIDD_LOG"; then
    lab_fail "the restarted daemon took a certificate not valid for another $((not_before - $(date +%s))) s as its identity"
fi
openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -checkend 0 >/dev/null ||
    lab_fail "the certificate enrolled after the restart is not valid now"
_lab_kill "$FLEETIDD_PID" fleetidd

step "a clock at 1970 at start: wait for the clock, then enroll"
rm -f "$FLEETID_STATE/operational.pem"
: >"$EST_LOG"
jump_to 86400
fleetid_daemon_start
lab_wait_until 20 "state waiting-clock" status_is waiting-clock ||
    lab_fail "the daemon did not report waiting-clock at 1970; log: $(tail -n 3 "$FLEETIDD_LOG")"
fleetid_expect_grep "$FLEETIDD_LOG" "not trusting the clock" "the clock warning"
sleep 2
fleetid_expect_eq "$(est_log_count)" 0 "EST requests with the clock at 1970"
restore_clock
lab_wait_until 30 "enrollment once the clock is set" status_is enrolled ||
    lab_fail "the daemon did not enroll after the clock was set; log: $(tail -n 3 "$FLEETIDD_LOG")"
fleetid_expect_grep "$FLEETIDD_LOG" "the clock changed; checking it again" "the clock-set wake-up"
openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -checkend 0 >/dev/null ||
    lab_fail "the certificate enrolled after the clock was set is not valid now"

echo "PASS: clock jumps forward and back, and a clock at 1970 at start"
