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
