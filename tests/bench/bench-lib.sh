# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tests/bench/bench-lib.sh: what the benchmarks share, on top of
# tests/lib/fleetid.sh (sourced from here).
#
#   FLEETID_BUILD_DIR   build to measure (default: build-bench, a release build)
#   BENCH_OUT           where results go (default: a fresh directory in /tmp);
#                       each bench writes BENCH_OUT/<name>.md and keeps its raw data
#   bench_tpm_direct CMD...    run a tpm2-tools command on swtpm itself, bypassing
#                              resource managers and proxies (set-up steps, never counted)
#   bench_evict_if_present H   evict the persistent object at H if there is one
#   bench_us_between T0 T1     microseconds between two $EPOCHREALTIME values
#   bench_rounds               BENCH_ROUNDS checked, into ROUNDS
#   bench_interleave R V...    warm-up round, then R rounds of the variants, rotated
#   bench_cpu_jiffies          the machine's CPU time so far: "total steal idle"
#   bench_task_ns PID          a process's CPU time and run-queue wait so far, in ns

_bench_src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${FLEETID_BUILD_DIR:-}" ]; then
    FLEETID_BUILD_DIR=$_bench_src/build-bench
    if [ ! -d "$FLEETID_BUILD_DIR" ]; then
        echo "bench: no $FLEETID_BUILD_DIR; build it first:" >&2
        echo "  meson setup build-bench --buildtype=release && ninja -C build-bench" >&2
        echo "or set FLEETID_BUILD_DIR to another build directory" >&2
        exit 1
    fi
fi
export FLEETID_BUILD_DIR

# shellcheck source=tests/lib/fleetid.sh
source "$_bench_src/tests/lib/fleetid.sh"
# shellcheck source=tests/lib/tpm-count.sh
source "$_bench_src/tests/lib/tpm-count.sh"

# shellcheck disable=SC2034  # used by the scripts that source this file
BENCH_DIR=$_bench_src/tests/bench
# shellcheck disable=SC2034
BENCH_PROXY=$TPM_COUNT_PROXY
# shellcheck disable=SC2034
BENCH_STATS=$BENCH_DIR/bench-stats.py

# bench_out_dir: create (if needed) and export BENCH_OUT.
bench_out_dir() {
    if [ -z "${BENCH_OUT:-}" ]; then
        BENCH_OUT=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-bench.XXXXXXXX") ||
            lab_fail "cannot create a results directory"
    fi
    mkdir -p "$BENCH_OUT" || lab_fail "cannot create $BENCH_OUT"
    BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
    export BENCH_OUT
}

# bench_buildtype: meson's buildtype of FLEETID_BUILD_DIR ("unknown" if unreadable).
bench_buildtype() {
    "$LAB_PYTHON" - "$FLEETID_BUILD_DIR/meson-info/intro-buildoptions.json" <<'EOF' 2>/dev/null || echo unknown
import json
import sys

for opt in json.load(open(sys.argv[1], encoding="utf-8")):
    if opt["name"] == "buildtype":
        print(opt["value"])
EOF
}

# bench_machine_note: one line saying where and on what this ran.
bench_machine_note() {
    local cpu
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs (${cpu:-unknown CPU}), load $(cut -d' ' -f1-3 /proc/loadavg)," \
        "build $(basename "$FLEETID_BUILD_DIR") ($(bench_buildtype)), fleetid $(git -C "$_bench_src" rev-parse --short HEAD 2>/dev/null || echo '?')"
}

bench_tpm_direct() {
    TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$TPM_ENV_PORT" "$@"
}

bench_evict_if_present() {
    if bench_tpm_direct tpm2_getcap handles-persistent | grep -qi -- "- $1\$"; then
        bench_tpm_direct tpm2_evictcontrol -C o -c "$1" >/dev/null ||
            lab_fail "cannot evict the persistent object at $1"
    fi
}

bench_us_between() {
    local a=${1/[.,]/} b=${2/[.,]/}
    echo $((10#$b - 10#$a))
}

# bench_rounds: BENCH_ROUNDS (default 10) checked to be 1..200, into ROUNDS.
bench_rounds() {
    ROUNDS=${BENCH_ROUNDS:-10}
    if ! [[ $ROUNDS =~ ^[0-9]{1,3}$ ]] || [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 200 ]; then
        lab_fail "BENCH_ROUNDS must be a number of rounds in 1..200 (got '$ROUNDS')"
    fi
}

# bench_interleave ROUNDS VARIANT...: calls the script's "measure ROUND
# VARIANT" for one warm-up round 0 (A B C), then ROUNDS rounds, each starting
# one variant later (B C A, C A B, ...).
bench_interleave() {
    local rounds=$1 round i n v
    shift
    n=$#
    lab_log "warm-up round (not counted): $*"
    for v in "$@"; do
        measure 0 "$v"
    done
    local vs=("$@")
    for ((round = 1; round <= rounds; round++)); do
        for ((i = 0; i < n; i++)); do
            measure "$round" "${vs[(round - 1 + i) % n]}"
        done
    done
}

# bench_cpu_jiffies: the first line of /proc/stat (all CPUs) as "TOTAL STEAL
# IDLE" clock ticks; the difference of two gives the share of the machine's
# time the hypervisor took (steal) and left unused (idle + iowait) meanwhile.
bench_cpu_jiffies() {
    awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; printf "%.0f %.0f %.0f\n", t, $9, $5 + $6; exit }' /proc/stat
}

# bench_task_ns PID: "CPU_NS WAIT_NS" of PID so far, summed over its threads
# (/proc/PID/task/*/schedstat: the time on a CPU, and the time runnable but
# waiting for one), in nanoseconds; "0 0" when PID is 0 or gone. Unlike the
# clock ticks of /proc/PID/stat, precise enough for a few hundred calls; on a
# kernel with CONFIG_PARAVIRT_TIME_ACCOUNTING, the time the hypervisor steals
# is not counted as the task's.
bench_task_ns() {
    if [ "${1:-0}" -eq 0 ] || [ ! -d "/proc/$1/task" ]; then
        echo "0 0"
        return
    fi
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ c += $1; w += $2 } END { printf "%.0f %.0f\n", c, w }'
}
