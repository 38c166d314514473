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
#   dbus-N   sign-client COUNT N (N from BENCH_SIGN_WINDOWS, default "1 4 16"):
#            one client, one connection, N calls in flight, as N callers at
#            once would be; fleetidd writes each call to its signer as it
#            comes, so the hops client -> dbus-daemon -> fleetidd -> signer
#            overlap with the TPM's work on the call before
# The TPM signs one digest at a time whatever the number of callers, so a
# fair comparison is calls/s against signatures/s of the same TPM; several
# calls in flight only keep it busy. The variants run in interleaved rounds
# (bench_interleave: raw and the D-Bus runs seconds apart, the order rotated
# each round). Each D-Bus run is preceded by one untimed call, so that a
# signer that idled out is started before the clock.
# With each run the script records what the machine's load does to it: the
# share of the CPUs' time the hypervisor stole and left idle (/proc/stat),
# and the CPU time (and run-queue wait) of swtpm, tpm2-abrmd, dbus-daemon,
# fleetidd, its signer and the client (bench_task_ns; the client reports its
# own). CPU time per call hardly moves with steal time or other load: it is
# fleetid's real cost per call, beside the raw process's.
# fleetidd runs as root on a private system-like bus (as in test-dbus-sign),
# with the rate limit raised out of the way.
#
#   BENCH_ROUNDS (default 10), BENCH_SIGN_COUNT calls per run (default 200),
#   BENCH_SIGN_WINDOWS calls in flight of the D-Bus variants (default "1 4 16"),
#   BENCH_SIGN_PIN=1 swtpm alone on one CPU, the rest on the other (below),
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/sign-rate.md (the tables: rates with their medians and the
# median of the ratios to raw taken round by round, which the machine's load
# shifts less; CPU per call by process) and sign-rate.tsv (every run).
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
if ! [[ $COUNT =~ ^[0-9]{1,4}$ ]] || [ "$COUNT" -lt 10 ]; then
    lab_fail "BENCH_SIGN_COUNT must be 10..9999 (got '$COUNT')"
fi
read -r -a WINDOWS <<<"${BENCH_SIGN_WINDOWS:-1 4 16}"
[ "${#WINDOWS[@]}" -ge 1 ] || lab_fail "BENCH_SIGN_WINDOWS is empty; give calls in flight, e.g. '1 4 16'"
VARIANTS=(raw)
for w in "${WINDOWS[@]}"; do
    if ! [[ $w =~ ^[0-9]{1,2}$ ]] || [ "$w" -lt 1 ] || [ "$w" -gt 64 ]; then
        lab_fail "BENCH_SIGN_WINDOWS: '$w' is not a number of calls in flight in 1..64"
    fi
    VARIANTS+=("dbus-$w")
done
RAW=$FLEETID_BUILD_DIR/tests/bench/raw-sign
CLIENT=$FLEETID_BUILD_DIR/tests/bench/sign-client
for b in "$RAW" "$CLIENT"; do
    [ -x "$b" ] || lab_fail "$b is not built (configure with -Dtests=true)"
done

bench_out_dir
fleetid_lab_up
fleetid_provision "SN-BENCH-$RANDOM"
fleetid_write_config "access: { sign_burst = 10000; sign_per_minute = 60000; };"
system_bus_start "$LAB_TMPDIR/system-bus"
fleetid_daemon_start
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving org.fleetid.Agent1" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own org.fleetid.Agent1" _serving
# BENCH_SIGN_PIN=1: swtpm alone on CPU 1, everything else (tpm2-abrmd,
# dbus-daemon, fleetidd and the signer it starts, raw-sign, sign-client) on
# CPU 0, in every variant: a TPM chip computes beside the host's CPUs, not on
# them, so neither variant's processes then take CPU time from the TPM.
PIN=()
if [ "${BENCH_SIGN_PIN:-0}" = 1 ]; then
    [ "$(nproc)" -ge 2 ] || lab_fail "BENCH_SIGN_PIN=1 needs two CPUs (this machine has $(nproc))"
    taskset -a -p -c 1 "$TPM_ENV_SWTPM_PID" >/dev/null
    for p in "$TPM_ENV_ABRMD_PID" "$SYSTEM_BUS_PID" "$FLEETIDD_PID"; do taskset -a -p -c 0 "$p" >/dev/null; done
    PIN=(taskset -c 0)
    lab_log "pinned: swtpm on CPU 1; tpm2-abrmd, dbus-daemon, fleetidd, the signer and the clients on CPU 0"
fi
HANDLE=$(fleetid_cert_key_handle "$FLEETID_STATE/operational.pem" 0x81020002 0x81020003)
[ -n "$HANDLE" ] || lab_fail "the operational certificate's key is at neither handle"
# Every call within the rate limit's bucket, without counting on its refill:
# the warm-up round and ROUNDS rounds, each D-Bus run with its untimed call.
[ $(((ROUNDS + 1) * ${#WINDOWS[@]} * (COUNT + 1))) -le 10000 ] ||
    lab_fail "BENCH_ROUNDS+1 x BENCH_SIGN_COUNT+1 x the windows exceeds the rate limit's bucket (10000 calls)"

SAMPLES=$BENCH_OUT/sign-rate.tsv
PROCS=(swtpm abrmd bus fleetidd signer)
{
    printf 'round\tvariant\tcount\tseconds\tclient_cpu_s\tjiffies\tsteal_jiffies\tidle_jiffies'
    for p in "${PROCS[@]}"; do printf '\t%s_cpu_ns\t%s_wait_ns' "$p" "$p"; done
    printf '\n'
} >"$SAMPLES"
# signer_pid: fleetidd's signing process (0 if none runs): the newest child
# whose name says so (fleetid-signer).
signer_pid() {
    ps -o pid=,comm= --ppid "$FLEETIDD_PID" --sort=start_time | awk '$2 ~ /sign/ { p = $1 } END { print p + 0 }'
}
# snapshot PID...: the machine's jiffies (total, steal, idle), then each PID's
# CPU and wait ns, on one line; a run's row holds the differences.
snapshot() {
    local pid line
    line=$(bench_cpu_jiffies)
    for pid in "$@"; do line+=" $(bench_task_ns "$pid")"; done
    echo "$line"
}
measure() { # ROUND VARIANT
    local out pids before after
    # The order of PROCS; the signer's pid is known once it runs.
    pids=("$TPM_ENV_SWTPM_PID" "$TPM_ENV_ABRMD_PID" "$SYSTEM_BUS_PID" "$FLEETIDD_PID" 0)
    case $2 in
        raw)
            before=$(snapshot "${pids[@]}")
            out=$("${PIN[@]}" "$RAW" "$FLEETID_TEST_TCTI" "$HANDLE" "$COUNT") || lab_fail "raw-sign failed"
            ;;
        dbus-*)
            "${PIN[@]}" "$CLIENT" 1 1 >/dev/null || lab_fail "sign-client (warm-up) failed"
            pids[4]=$(signer_pid)
            [ "${pids[4]}" -ne 0 ] ||
                lab_log "no child of fleetidd (pid $FLEETIDD_PID) is named like the signer: its CPU is not counted (0)"
            before=$(snapshot "${pids[@]}")
            out=$("${PIN[@]}" "$CLIENT" "$COUNT" "${2#dbus-}") || lab_fail "sign-client failed; log: $(tail -n 3 "$FLEETIDD_LOG")"
            ;;
    esac
    after=$(snapshot "${pids[@]}")
    [ "$1" -eq 0 ] && return
    local i n secs cpu row b a
    read -r -a b <<<"$before"
    read -r -a a <<<"$after"
    read -r n secs cpu <<<"$out"
    row="$1\t$2\t$n\t$secs\t$cpu"
    for i in "${!a[@]}"; do row+="\t$((a[i] - b[i]))"; done
    printf '%b\n' "$row" >>"$SAMPLES"
}
START_NOTE=$(bench_machine_note)
lab_log "machine at the start: $START_NOTE; $(uptime)"
bench_interleave "$ROUNDS" "${VARIANTS[@]}"
END_NOTE=$(bench_machine_note)
lab_log "machine at the end: $END_NOTE; $(uptime)"

"$LAB_PYTHON" - "$SAMPLES" "$BENCH_OUT/sign-rate.md" "$COUNT" "$ROUNDS" "$(bench_buildtype)" "$HANDLE" \
    "$START_NOTE" "$END_NOTE" "${VARIANTS[@]}" <<'EOF'
import csv
import statistics
import sys

samples, out, count, rounds, buildtype, handle, start, end = sys.argv[1:9]
variants = sys.argv[9:]
procs = ["swtpm", "abrmd", "bus", "fleetidd", "signer"]
runs = {v: [] for v in variants}
by_round = {}
for row in csv.DictReader(open(samples, encoding="utf-8"), delimiter="\t"):
    row["rate"] = int(row["count"]) / float(row["seconds"])
    runs[row["variant"]].append(row)
    by_round.setdefault(row["round"], {})[row["variant"]] = row["rate"]


def share(r, k):
    return int(r[k + "_jiffies"]) / max(int(r["jiffies"]), 1)


raw = statistics.median(r["rate"] for r in runs["raw"])
lines = [
    "SignChallenge vs raw TPM2_Sign (%s calls per run, %s rounds interleaved, %s build, key 0x%s)"
    % (count, rounds, buildtype, handle[2:]),
    "",
    "Start: %s. End: %s." % (start, end),
    "",
    "| variant | median /s | min /s | max /s | median / raw median | median of per-round ratios"
    " | per-round ratios | steal % (median) | idle % (median) |",
    "|---|---:|---:|---:|---:|---:|---|---:|---:|",
]
for v in variants:
    rates = [r["rate"] for r in runs[v]]
    ratios = [x[v] / x["raw"] for _, x in sorted(by_round.items(), key=lambda kv: int(kv[0]))]
    lines.append("| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %s | %.0f | %.0f |" % (
        v, statistics.median(rates), min(rates), max(rates), statistics.median(rates) / raw,
        statistics.median(ratios), " ".join("%.2f" % x for x in ratios),
        100 * statistics.median(share(r, "steal") for r in runs[v]),
        100 * statistics.median(share(r, "idle") for r in runs[v])))
lines += [
    "",
    "CPU µs per call, by process (all rounds' CPU time over all their calls; schedstat, which does not",
    "count stolen time); fleetid = fleetidd + signer; client = raw-sign itself for raw, sign-client for",
    "D-Bus; TPM chain = swtpm + tpm2-abrmd + the process that calls ESYS (raw-sign, or the signer): the",
    "work one signature waits for, one step after the other, whatever the calls in flight, so raw's chain",
    "over a variant's is the ratio it reaches when no step waits for a CPU; swtpm busy = swtpm's CPU time",
    "over the runs' wall time; swtpm waited = its run-queue wait per call:",
    "",
    "| variant | swtpm | tpm2-abrmd | dbus-daemon | fleetidd | signer | client | fleetid | all"
    " | TPM chain | raw's chain / chain | swtpm busy % | swtpm waited µs |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
chain = {}
for v in variants:
    calls = sum(int(r["count"]) for r in runs[v])
    wall = sum(float(r["seconds"]) for r in runs[v])
    us = {p: sum(int(r[p + "_cpu_ns"]) for r in runs[v]) / calls / 1000 for p in procs}
    us["client"] = sum(float(r["client_cpu_s"]) for r in runs[v]) / calls * 1e6
    wait = sum(int(r["swtpm_wait_ns"]) for r in runs[v]) / calls / 1000
    busy = 100 * sum(int(r["swtpm_cpu_ns"]) for r in runs[v]) / 1e9 / wall
    chain[v] = us["swtpm"] + us["abrmd"] + (us["client"] if v == "raw" else us["signer"])
    lines.append("| %s | %s | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f |" % (
        v, " | ".join("%.0f" % us[p] for p in procs + ["client"]), us["fleetidd"] + us["signer"],
        sum(us.values()), chain[v], chain["raw"] / chain[v], busy, wait))
text = "\n".join(lines) + "\n"
open(out, "w", encoding="utf-8").write(text)
print(text)
EOF
