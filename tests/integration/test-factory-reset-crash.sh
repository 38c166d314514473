#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-factory-reset-crash.sh: a factory reset killed with SIGKILL after any
# of its steps is finished by the next start (docs/factory-reset.md, "Crash
# safety"). The test-only FLEETID_TEST_RESET_CRASH_AFTER=STEP makes the
# process running the reset SIGKILL itself right after STEP: fleetidctl
# (marker, owner, keys, certificate, trust, status, sensors, phase), or
# fleetidd's reset worker, which kills the daemon first (keys ... phase), as
# a power cut would. The device alternates between two lab owners (A, B); in
# each round it is enrolled with one, the reset to the other is killed, and
# then:
#  - after "marker" (the new owner file not installed yet) fleetidd does not
#    enroll (the old owner is never used again) and fleetidctl factory-reset,
#    run again, finishes the installation; after any other step a plain
#    fleetidd --oneshot finishes the reset;
#  - the certificate is then from the new owner's CA, the marker is gone, the
#    old owner saw no request after the reset began, the TPM holds no key more
#    than before, and the birth key's public area is the same.
# Rounds run for about 60 s (at most 100); the number of kills is printed.
# No timing is asserted.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

[ "$(id -u)" -eq 0 ] || lab_skip "fleetidctl factory-reset runs as root only"
fleetid_lab_up
lab_require_tools tpm2_readpublic
fleetid_provision
fleetid_write_config
fleetid_second_est B
URL=([0]="$EST_URL" [1]="$B_URL")
PKI=([0]="$EST_PKI" [1]="$B_PKI")
LOG=([0]="$EST_LOG" [1]="$B_LOG")
for i in 0 1; do
    printf 'est: { url = "%s"; trust_anchors = "%s"; };\n' "${URL[i]}" "${PKI[i]}/est-ca.pem" \
        >"$LAB_TMPDIR/owner-$i.conf"
done
CTL_STEPS=(marker owner keys certificate trust status sensors phase)
DAEMON_STEPS=(keys certificate trust status sensors phase)

fleetid_enroll_once >/dev/null 2>&1 || lab_fail "the first enrollment failed"
tpm2_readpublic -c 0x81020000 -o "$LAB_TMPDIR/birth-before.pub" >/dev/null
handles_before=$(fleetid_persistent_handles)
reset_cmd() { "$FLEETIDCTL" --config "$FLEETID_CONF" factory-reset --yes "$@"; }

owner=0 kills=0 round=0 start=$SECONDS
while ((round < 100 && SECONDS - start < 60)); do
    next=$((1 - owner))
    before=$(fleetid_requests_in "${LOG[owner]}")
    if ((round % 2 == 0)); then
        step=${CTL_STEPS[(round / 2) % ${#CTL_STEPS[@]}]}
        how="fleetidctl killed after '$step'"
        rc=0
        FLEETID_TEST_RESET_CRASH_AFTER=$step reset_cmd --owner "$LAB_TMPDIR/owner-$next.conf" \
            >"$LAB_TMPDIR/out" 2>&1 || rc=$?
        fleetid_expect_eq "$rc" 137 "round $round, $how: fleetidctl's exit status"
    else
        step=${DAEMON_STEPS[(round / 2) % ${#DAEMON_STEPS[@]}]}
        how="fleetidd's reset worker killed (with the daemon) after '$step'"
        FLEETID_TEST_RESET_CRASH_AFTER=$step fleetid_daemon_start
        # Its PID recorded: its signal handlers are in place (the status in
        # the state directory may be the --oneshot run's before it).
        lab_wait_until 30 "fleetidd to record its PID" test -s "$FLEETID_RUNTIME/fleetidd.pid" ||
            lab_fail "round $round: the daemon did not start"
        fleetid_wait_state 60 enrolled || lab_fail "round $round: the daemon did not start enrolled"
        # Counted again now: a daemon started enrolled makes its first /cacerts
        # refresh at a random time within 600 s, which may fall before the reset.
        before=$(fleetid_requests_in "${LOG[owner]}")
        rc=0
        reset_cmd --owner "$LAB_TMPDIR/owner-$next.conf" --timeout 60 >"$LAB_TMPDIR/out" 2>&1 || rc=$?
        fleetid_expect_eq "$rc" 1 "round $round, $how: fleetidctl's exit status"
        fleetid_expect_grep "$LAB_TMPDIR/out" "fleetidd exited before the reset finished" "round $round, $how"
        rc=0
        wait "$FLEETIDD_PID" || rc=$?
        fleetid_expect_eq "$rc" 137 "round $round, $how: fleetidd's exit status"
    fi
    kills=$((kills + 1))
    [ -e "$FLEETID_STATE/factory-reset" ] || lab_fail "round $round, $how: no marker left"
    if [ "$step" = marker ]; then
        rc=0
        fleetid_enroll_once >/dev/null 2>&1 || rc=$?
        fleetid_expect_eq "$rc" 75 "round $round, $how: fleetidd without the new owner installed"
        fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "not enrolling \(the old owner is not used again\)" \
            "round $round, $how"
        reset_cmd --owner "$LAB_TMPDIR/owner-$next.conf" >"$LAB_TMPDIR/out" 2>&1 ||
            lab_fail "round $round, $how: factory-reset run again failed: $(cat "$LAB_TMPDIR/out")"
    fi
    fleetid_enroll_once >"$LAB_TMPDIR/finish.log" 2>&1 ||
        lab_fail "round $round, $how: the next start did not finish the reset: $(tail -n 5 "$LAB_TMPDIR/finish.log")"
    [ ! -e "$FLEETID_STATE/factory-reset" ] || lab_fail "round $round, $how: the marker stayed"
    openssl verify -CAfile "${PKI[next]}/est-ca.pem" "$FLEETID_STATE/operational.pem" >/dev/null 2>&1 ||
        lab_fail "round $round, $how: the certificate is not from the new owner's CA"
    fleetid_expect_eq "$(fleetid_requests_in "${LOG[owner]}")" "$before" \
        "round $round, $how: requests to the old owner after the reset began"
    fleetid_expect_eq "$(fleetid_persistent_handles)" "$handles_before" "round $round, $how: persistent TPM objects"
    owner=$next round=$((round + 1))
done
tpm2_readpublic -c 0x81020000 -o "$LAB_TMPDIR/birth-after.pub" >/dev/null
cmp -s "$LAB_TMPDIR/birth-before.pub" "$LAB_TMPDIR/birth-after.pub" || lab_fail "the birth key's public area changed"
((kills >= ${#CTL_STEPS[@]} + ${#DAEMON_STEPS[@]})) || lab_fail "only $kills kills ran; every step needs one"
echo "PASS: $kills resets killed with SIGKILL (fleetidctl and fleetidd's worker, every step) in $((SECONDS - start)) s, each finished by the next start"
