#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-fleet.sh [--devices N] [--seed S] [--runs K] [--outage-hours H]:
# renewal requests per minute and per hour of a simulated fleet (default one
# million devices enrolled within one hour, 365-day certificates, seeds 1..5),
# computed with fleetid's own scheduling code by tests/bench/fleet-sim.c:
# peak minute with and without jitter, peak hour against the mean hour, and
# the recovery after an EST outage of H hours (default 6), and the same outage
# against a server at capacity (--capacity C requests a minute, default twice
# the mean rate) that answers 503 with Retry-After beyond it. No lab, no TPM;
# takes about 10 seconds.
#
# Builds fleet-sim in FLEETID_BUILD_DIR (default build-bench; set up as a
# release build when missing), prints markdown tables, and with BENCH_OUT set
# also writes them to BENCH_OUT/bench-fleet.md. The plot of the first seed's
# outage (tests/bench/fleet-plot.py, plain SVG) goes to FLEET_SVG, by default
# docs/fleet-capacity.svg in the source tree for the documented run (no
# options), else fleet-capacity.svg beside its per-minute figures,
# BENCH_OUT/fleet-capacity.csv (or in a new temporary directory, named).
#
# Exit status: 0 ran (the goals are reported, never asserted), 1 the build
# failed, the simulation's own bookkeeping did not add up, a device expired or
# the server at capacity took on more than its capacity, 2 bad arguments.

set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${FLEETID_BUILD_DIR:-$src/build-bench}

if [ ! -f "$build/build.ninja" ]; then
    echo "bench-fleet: setting up a release build in $build" >&2
    meson setup "$build" "$src" --buildtype=release >&2 ||
        { echo "bench-fleet: meson setup of $build failed" >&2; exit 1; }
fi
ninja -C "$build" tests/bench/fleet-sim >&2 ||
    { echo "bench-fleet: cannot build fleet-sim in $build (configured with -Dtests=false?)" >&2; exit 1; }

csv_dir=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/fleetid-fleet.XXXXXXXX")}
mkdir -p "$csv_dir"
csv=$csv_dir/fleet-capacity.csv
# The documented run (no options) draws the figure in docs/; any other run
# beside its figures, so that it does not replace the documented one.
if [ $# -eq 0 ]; then
    svg=${FLEET_SVG:-$src/docs/fleet-capacity.svg}
else
    svg=${FLEET_SVG:-$csv_dir/fleet-capacity.svg}
fi

rc=0
out=$("$build/tests/bench/fleet-sim" --runs 5 --csv "$csv" "$@") || rc=$?
if [ "$rc" -ne 0 ]; then
    [ -n "$out" ] && printf '%s\n' "$out"
    [ "$rc" -eq 2 ] && exit 2
    echo "bench-fleet: fleet-sim failed (exit $rc); its figures cannot be trusted" >&2
    exit 1
fi
if [ -s "$csv" ]; then
    python3 "$src/tests/bench/fleet-plot.py" "$csv" "$svg" ||
        { echo "bench-fleet: cannot plot $csv into $svg" >&2; exit 1; }
    echo "bench-fleet: plot in $svg, its figures in $csv" >&2
fi
[ -n "${BENCH_OUT:-}" ] || [ "$svg" = "$csv_dir/fleet-capacity.svg" ] || rm -rf "$csv_dir"
if [ -n "${BENCH_OUT:-}" ]; then
    mkdir -p "$BENCH_OUT"
    printf '%s\n' "$out" >"$BENCH_OUT/bench-fleet.md"
fi
printf '%s\n' "$out"
