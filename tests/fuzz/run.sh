#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/fuzz/run.sh [-b BUILD_DIR] [SECONDS] [HARNESS...]: run the libFuzzer
# harnesses of a -Dfuzz=true build (default build-fuzz) for SECONDS in all
# (default 60), shared equally between the harnesses named (default: all).
# The checked-in seeds in tests/fuzz/corpus/<harness>/ are read, never
# written: what the fuzzer finds goes to BUILD_DIR/fuzz/corpus/<harness>/,
# which later runs start from too. A crash, leak, UB report or timeout stops
# the run with exit status 1 and prints the input that caused it (saved in
# BUILD_DIR/fuzz/artifacts/) and the command that reproduces it.
# See tests/fuzz/README.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
src=$PWD

build=build-fuzz
if [ "${1:-}" = -b ]; then
    build=$2
    shift 2
fi
total=${1:-60}
shift || true
case "$total" in
'' | *[!0-9]*)
    echo "usage: $0 [-b BUILD_DIR] [SECONDS] [HARNESS...]" >&2
    exit 2
    ;;
esac

harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
    for d in tests/fuzz/corpus/*/; do
        harnesses+=("$(basename "$d")")
    done
fi
each=$((total / ${#harnesses[@]}))
[ "$each" -ge 1 ] || each=1

# LeakSanitizer is on, with the project's suppressions. No abort_on_error:
# libFuzzer's own handler reports the error and saves the input.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export LSAN_OPTIONS=suppressions=$src/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

mkdir -p "$build/fuzz/artifacts"
# fuzz-config writes its input to a file in a temporary directory of its own;
# even one a crash leaves behind stays inside the build directory.
case "$build" in
/*) export TMPDIR=$build/fuzz/tmp ;;
*) export TMPDIR=$PWD/$build/fuzz/tmp ;;
esac
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
for h in "${harnesses[@]}"; do
    bin=$build/tests/fuzz/$h
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is not built; run: CC=clang meson setup $build -Dfuzz=true -Dtests=false" \
            "-Dbuildtype=debugoptimized && ninja -C $build fuzzers" >&2
        exit 2
    fi
    [ -d "tests/fuzz/corpus/$h" ] || { echo "fuzz: no seed corpus tests/fuzz/corpus/$h" >&2; exit 2; }
    mkdir -p "$build/fuzz/corpus/$h"
    log=$build/fuzz/$h.log
    echo "fuzz: $h for ${each}s (log: $log)"
    # -timeout: one input taking 10 s is a hang, reported like a crash.
    if "$bin" -max_total_time="$each" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz/artifacts/$h-" \
        "$build/fuzz/corpus/$h" "tests/fuzz/corpus/$h" >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" |
            sed "s/^/fuzz: $h: /" || true
        continue
    fi
    # The report: from the sanitizer's or the check's first line, else the tail.
    first=$(grep -n -m 1 -E '^==[0-9]+== ?ERROR:|check failed:|runtime error:' \
        "$log" | cut -d: -f1)
    echo "fuzz: $h FAILED; its report (whole log: $log):" >&2
    if [ -n "$first" ]; then
        tail -n "+$first" "$log" | head -n 150 >&2
    else
        tail -n 60 "$log" >&2
    fi
    artifact=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -n 1)
    if [ -n "$artifact" ] && [ -f "$artifact" ]; then
        echo "fuzz: the input that failed ($artifact, $(stat -c %s "$artifact") bytes), as base64:" >&2
        base64 -w 76 "$artifact" >&2
        echo "fuzz: reproduce with: $bin $artifact" >&2
    fi
    exit 1
done
echo "fuzz: ${#harnesses[@]} harnesses ran ${each}s each, no crash, leak or hang"
