#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# sign-rate.sh: SignChallenge's rate against the raw TPM signature rate of
# the same swtpm, the same key and the same resource manager:
#   raw      tests/bench/raw-sign: one process, one ESYS connection, the
#            operational key opened once, COUNT TPM2_Sign in a loop (the
#            ceiling: the TPM is serial, nothing can sign faster)
#   dbus-1   tests/bench/sign-client COUNT 1: one D-Bus client, one call after
#            the other (each waits for its answer: the round trip through
#            dbus-daemon and fleetidd is not hidden)
#   dbus-16  sign-client COUNT 16: one client with 16 calls in flight, as 16
#            callers at once would be; fleetidd pipelines them to its signer,
#            so the TPM never waits for the bus
# The TPM signs one digest at a time whatever the number of callers, so a
# fair comparison is calls/s against signatures/s of the same TPM; several
# calls in flight only keep it busy. Each D-Bus run is preceded by one
# untimed call, so that a signer that idled out is started before the clock.
# fleetidd runs as root on a private system-like bus (as in test-dbus-sign),
# with the rate limit raised out of the way.
#
#   BENCH_ROUNDS (default 10), BENCH_SIGN_COUNT calls per run (default 200),
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/sign-rate.md (the table: medians, and the median of the
# ratios to raw taken round by round, which the machine's load shifts less)
# and sign-rate.tsv (every run).
# Needs root (the bus policy lets only root own the name in tests).
# Exit status: 0 done, 1 a step failed, 77 skipped.

set -euo pipefail
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
# shellcheck source=tests/lib/system-bus.sh
. "$_bench_src/tests/lib/system-bus.sh"

[ "$(id -u)" -eq 0 ] || lab_skip "needs root: fleetidd owns org.fleetid.Agent1 on a private system-like bus"
bench_rounds
COUNT=${BENCH_SIGN_COUNT:-200}
[[ $COUNT =~ ^[0-9]{1,4}$ ]] && [ "$COUNT" -ge 10 ] || lab_fail "BENCH_SIGN_COUNT must be 10..9999 (got '$COUNT')"
RAW=$FLEETID_BUILD_DIR/tests/bench/raw-sign
CLIENT=$FLEETID_BUILD_DIR/tests/bench/sign-client
for b in "$RAW" "$CLIENT"; do
    [ -x "$b" ] || lab_fail "$b is not built (configure with -Dtests=true)"
done

bench_out_dir
fleetid_lab_up
fleetid_provision "SN-BENCH-$RANDOM"
# Every call of the run within the bucket: rounds x 2 variants x COUNT, and the warm-ups.
fleetid_write_config "access: { sign_burst = 10000; sign_per_minute = 60000; };"
system_bus_start "$LAB_TMPDIR/system-bus"
fleetid_daemon_start
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving org.fleetid.Agent1" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own org.fleetid.Agent1" _serving
HANDLE=$(fleetid_cert_key_handle "$FLEETID_STATE/operational.pem" 0x81020002 0x81020003)
[ -n "$HANDLE" ] || lab_fail "the operational certificate's key is at neither handle"
[ $((ROUNDS * 2 * (COUNT + 1) + 2)) -le 10000 ] || lab_fail "BENCH_ROUNDS x BENCH_SIGN_COUNT exceeds the rate limit's bucket"

SAMPLES=$BENCH_OUT/sign-rate.tsv
printf 'round\tvariant\tcount\tseconds\n' >"$SAMPLES"
measure() { # ROUND VARIANT
    local out
    case $2 in
        raw) out=$("$RAW" "$FLEETID_TEST_TCTI" "$HANDLE" "$COUNT") || lab_fail "raw-sign failed" ;;
        dbus-*)
            "$CLIENT" 1 1 >/dev/null || lab_fail "sign-client (warm-up) failed"
            out=$("$CLIENT" "$COUNT" "${2#dbus-}") || lab_fail "sign-client failed; log: $(tail -n 3 "$FLEETIDD_LOG")"
            ;;
    esac
    [ "$1" -eq 0 ] || printf '%s\t%s\t%s\t%s\n' "$1" "$2" ${out} >>"$SAMPLES"
}
bench_interleave "$ROUNDS" raw dbus-1 dbus-16

"$LAB_PYTHON" - "$SAMPLES" "$BENCH_OUT/sign-rate.md" "$COUNT" "$ROUNDS" "$(bench_buildtype)" "$HANDLE" <<'EOF'
import csv, statistics, sys
samples, out, count, rounds, buildtype, handle = sys.argv[1:7]
rates, by_round = {}, {}
for row in csv.DictReader(open(samples), delimiter="\t"):
    rate = int(row["count"]) / float(row["seconds"])
    rates.setdefault(row["variant"], []).append(rate)
    by_round.setdefault(row["round"], {})[row["variant"]] = rate
raw = statistics.median(rates["raw"])
lines = [
    "| variant | median /s | min /s | max /s | median / raw median | median of per-round ratios |",
    "|---|---:|---:|---:|---:|---:|",
]
for v in ("raw", "dbus-1", "dbus-16"):
    r = rates[v]
    ratio = statistics.median(x[v] / x["raw"] for x in by_round.values())
    lines.append("| %s | %.0f | %.0f | %.0f | %.2f | %.2f |"
                 % (v, statistics.median(r), min(r), max(r), statistics.median(r) / raw, ratio))
text = ("SignChallenge vs raw TPM2_Sign (%s calls per run, %s rounds, %s build, key 0x%s)\n\n"
        % (count, rounds, buildtype, handle[2:]) + "\n".join(lines) + "\n")
open(out, "w").write(text)
print(text)
EOF

# Where the CPU goes: the CPU time (utime + stime, in clock ticks) each
# process spends on one more run of each kind, in ms per signature (after the
# timed rounds; the client's own is not counted).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_profile() { # VARIANT: one run, then a table row of CPU ms per signature
    local pids=("$TPM_ENV_SWTPM_PID" "$TPM_ENV_ABRMD_PID" "$SYSTEM_BUS_PID" "$FLEETIDD_PID") before=() i spid
    "$CLIENT" 1 1 >/dev/null || lab_fail "sign-client (warm-up) failed"
    spid=$(ps -o pid=,comm= --ppid "$FLEETIDD_PID" --sort=start_time | awk '$2 == "fleetid-signer" { print $1 }' | tail -n 1)
    pids+=("${spid:-0}")
    for i in "${!pids[@]}"; do before[i]=$(cpu_ticks "${pids[i]}"); done
    measure 0 "$1"
    printf '| %s |' "$1"
    for i in "${!pids[@]}"; do
        awk -v t=$(($(cpu_ticks "${pids[i]}") - before[i])) -v hz="$(getconf CLK_TCK)" -v n="$COUNT" \
            'BEGIN { printf " %.2f |", t * 1000 / hz / n }'

    done
    printf '\n'
}
{
    echo
    echo "CPU ms per signature ($COUNT signatures, clock ticks of 1/$(getconf CLK_TCK) s), one more run each:"
    echo
    echo "| run | swtpm | tpm2-abrmd | dbus-daemon | fleetidd | signer |"
    echo "|---|---:|---:|---:|---:|---:|"
    cpu_profile raw
    cpu_profile dbus-16
} | tee -a "$BENCH_OUT/sign-rate.md"
