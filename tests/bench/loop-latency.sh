#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# loop-latency.sh: how fast fleetidd's event loop answers while an EST request
# is stalled, and how fast SIGTERM ends it then, side by side:
#
#   W  this build as it runs: the enrollment in a worker process
#   I  the same binary with FLEETIDD_INLINE_WORKERS=1: the attempt runs on
#      the loop itself, as fleetidd did before the workers (the blocking
#      behaviour; the switch exists for this benchmark only)
#   B  optional, with BENCH_BASELINE_BUILD=DIR: fleetidd of the commit before
#      the workers, built in DIR (e.g. `git archive` of it into a temporary
#      directory, then meson setup + ninja there); it has no probe socket, so
#      only its exit after SIGTERM is measured, which checks that I behaves
#      as the old code did
#
# Per variant, fresh state, the lab server holds the answer to /simpleenroll
# for 60 s (fault "delay"), and fleetidd's est.timeout is 20 s (the lab
# configuration), so a blocked loop is blocked for those 20 s:
#   1. once the server holds the request, loop-probe.py opens a connection to
#      the probe socket ($FLEETID_RUNTIME/ping) every BENCH_INTERVAL ms
#      (default 50) for BENCH_WINDOW s (default 5) and times each "pong"
#      (waiting up to 40 s for late answers): p50, p99 (nearest rank), max;
#   2. the daemon is started again with the same stall, and 1 s after the
#      server holds the request it gets SIGTERM: the time until it is gone
#      (bounded by 60 s).
# No timing is asserted: the exit status says whether every run worked.
#
#   BENCH_WINDOW, BENCH_INTERVAL, BENCH_BASELINE_BUILD   see above
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/loop-latency.md (the table) and loop-latency-<V>.txt (the samples).
# Exit status: 0 done, 1 a run failed, 77 a tool is missing.

set -euo pipefail
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

WINDOW=${BENCH_WINDOW:-5}
INTERVAL=${BENCH_INTERVAL:-50}
[[ $WINDOW =~ ^[0-9]{1,2}$ ]] && [ "$WINDOW" -ge 1 ] || lab_fail "BENCH_WINDOW must be 1..99 seconds"
[[ $INTERVAL =~ ^[0-9]{1,4}$ ]] && [ "$INTERVAL" -ge 5 ] || lab_fail "BENCH_INTERVAL must be 5..9999 ms"

bench_out_dir
fleetid_lab_up
fleetid_provision "SN-BENCH-$RANDOM"
fleetid_write_config "retry: { initial = 1; max = 5; };"

held() { [ "$(est_log_count event=delay op=simpleenroll)" -gt "$1" ]; }

# stalled_start VARIANT: fresh state, the server holding /simpleenroll, fleetidd
# started and its request held.
stalled_start() {
    local before
    rm -rf "$FLEETID_STATE"
    before=$(est_log_count event=delay op=simpleenroll)
    est_control '{"faults": [{"match": "simpleenroll", "delay": 60, "count": 1}]}'
    if [ "$1" = I ]; then
        FLEETIDD_INLINE_WORKERS=1 fleetid_daemon_start
    else
        fleetid_daemon_start
    fi
    lab_wait_until 60 "the lab server to hold /simpleenroll ($1)" held "$before" ||
        lab_fail "variant $1: the enrollment did not reach /simpleenroll"
}

VARIANTS=(W I)
if [ -n "${BENCH_BASELINE_BUILD:-}" ]; then
    [ -x "$BENCH_BASELINE_BUILD/agent/fleetidd/fleetidd" ] ||
        lab_fail "BENCH_BASELINE_BUILD: no agent/fleetidd/fleetidd in $BENCH_BASELINE_BUILD"
    VARIANTS+=(B)
fi

declare -A STOP_MS
for v in "${VARIANTS[@]}"; do
    if [ "$v" = B ]; then
        FLEETIDD_CURRENT=$FLEETIDD
        FLEETIDD=$BENCH_BASELINE_BUILD/agent/fleetidd/fleetidd
        stalled_start "$v"
        sleep 1
        fleetid_stop_daemon_bounded 60
        STOP_MS[$v]=$FLEETIDD_STOP_MS
        FLEETIDD=$FLEETIDD_CURRENT
        est_control ''
        : >"$BENCH_OUT/loop-latency-$v.txt"
        continue
    fi
    stalled_start "$v"
    "$LAB_PYTHON" "$BENCH_DIR/loop-probe.py" "$FLEETID_RUNTIME/ping" --window "$WINDOW" \
        --interval "$INTERVAL" --deadline 40 >"$BENCH_OUT/loop-latency-$v.txt" ||
        lab_fail "variant $v: loop-probe.py failed"
    fleetid_stop_daemon_bounded 60

    stalled_start "$v"
    sleep 1
    fleetid_stop_daemon_bounded 60
    STOP_MS[$v]=$FLEETIDD_STOP_MS
    est_control ''
done

{
    echo "Run: $(bench_machine_note); probes every ${INTERVAL} ms for ${WINDOW} s while /simpleenroll is held" \
        "(est.timeout = 20 s)."
    echo
    echo "| variant | probes | answered | p50 ms | p99 ms | max ms | exit after SIGTERM ms |"
    echo "|---|---|---|---|---|---|---|"
    for v in "${VARIANTS[@]}"; do
        "$LAB_PYTHON" - "$BENCH_OUT/loop-latency-$v.txt" "$v" "${STOP_MS[$v]}" <<'PY'
import math, sys
names = {"W": "W worker process (this build)", "I": "I inline on the loop (as before the workers)",
         "B": "B the commit before the workers (no probe socket)"}
lat, n = [], 0
for line in open(sys.argv[1], encoding="utf-8"):
    n += 1
    f = line.split()
    if f[1] != "unanswered":
        lat.append(float(f[1]))
lat.sort()
if sys.argv[2] == "B":
    print("| %s | - | - | - | - | - | %s |" % (names["B"], sys.argv[3]))
    sys.exit(0)
def rank(p):
    return lat[max(0, math.ceil(p / 100 * len(lat)) - 1)] if lat else float("nan")
print("| %s | %d | %d | %.1f | %.1f | %.1f | %s |" % (names[sys.argv[2]], n, len(lat), rank(50), rank(99),
                                                     lat[-1] if lat else float("nan"), sys.argv[3]))
PY
    done
} >"$BENCH_OUT/loop-latency.md"
cat "$BENCH_OUT/loop-latency.md"
