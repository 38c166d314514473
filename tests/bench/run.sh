#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run.sh: the lab benchmarks, one after the other, each in its own fresh lab:
#   bench-enroll.sh   wall time of a first enrollment, fleetid vs curl + openssl
#   tpm-commands.sh   TPM commands per provisioning / enrollment, by command
#   idle-cost.sh      system calls, wakeups and memory over 60 s idle, fleetidd
#                     vs certmonger, 3 to 13 minutes (skipped, and said so,
#                     without strace or certmonger: apt-get install strace
#                     certmonger)
#   loop-latency.sh   the event loop's probe latency and the SIGTERM exit time
#                     while an EST request is stalled, worker vs inline
# then bench-fleet.sh (no lab). Results go to BENCH_OUT (default: a new
# directory in /tmp): bench-enroll.md, tpm-commands.md, idle-cost.md,
# loop-latency.md, and
# together in results.md, which is also printed. The raw data (samples, proxy
# log, per-phase command traces, ESYS traces, /proc snapshots, strace output)
# stays next to them. Measure a release build (FLEETID_BUILD_DIR, default
# build-bench):
#
#   meson setup build-bench --buildtype=release && ninja -C build-bench
#   tests/bench/run.sh                    # BENCH_ROUNDS=10 by default
#
# Exit status: 0 all ran (idle-cost may have been skipped), 77 a tool is
# missing, else the first failure.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${BENCH_OUT:-}" ]; then
    BENCH_OUT=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-bench.XXXXXXXX")
fi
mkdir -p "$BENCH_OUT"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
export BENCH_OUT

for b in bench-enroll tpm-commands idle-cost loop-latency; do
    echo "== $b" >&2
    rc=0
    "$here/$b.sh" >"$BENCH_OUT/$b.stdout" 2>"$BENCH_OUT/$b.stderr" || rc=$?
    if [ "$rc" -eq 77 ] && [ "$b" = idle-cost ]; then
        # Needs strace and certmonger, which the lab does not: say so in the results.
        echo "Skipped: $(sed -n 's/^SKIP: //p' "$BENCH_OUT/$b.stderr")" >"$BENCH_OUT/$b.md"
        echo "run.sh: $b skipped: $(cat "$BENCH_OUT/$b.md")" >&2
    elif [ "$rc" -ne 0 ]; then
        tail -n 30 "$BENCH_OUT/$b.stderr" >&2
        echo "run.sh: $b failed (exit $rc); its output is in $BENCH_OUT/$b.stdout and .stderr" >&2
        exit "$rc"
    fi
done

{
    echo "## Wall time of a first enrollment"
    echo
    cat "$BENCH_OUT/bench-enroll.md"
    echo
    echo "## TPM commands"
    echo
    cat "$BENCH_OUT/tpm-commands.md"
    echo
    echo "## Idle cost"
    echo
    cat "$BENCH_OUT/idle-cost.md"
    echo
    echo "## Event loop latency while a request is stalled"
    echo
    cat "$BENCH_OUT/loop-latency.md"
} >"$BENCH_OUT/results.md"
"$here/bench-fleet.sh" >>"$BENCH_OUT/results.md" 2>"$BENCH_OUT/bench-fleet.stderr"
cat "$BENCH_OUT/results.md"
echo "run.sh: results and raw data in $BENCH_OUT" >&2
