#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/run.sh: the one command that checks fleetid on a fresh Debian 12.
#  1. installs every build and test dependency from Debian's archive (apt-get
#     when root; otherwise prints the exact command and stops);
#  2. checks formatting;
#  3. builds with -Werror (build), and again with AddressSanitizer +
#     UndefinedBehaviorSanitizer (build-asan);
#  4. runs the unit and integration tests of both builds at the same time
#     (their outputs are printed one after the other when both are done),
#     while the libFuzzer harnesses are built with clang in build-fuzz, at
#     low priority (nice); the tests mostly wait on the TPM simulator, the
#     lab server and timers, so they run FLEETID_TEST_JOBS at once per build
#     (default: 3 per core), longest first (tests/integration/meson.build);
#  5. runs the harnesses for 60 s in all (tests/fuzz/README.md), alone;
#     skipped, saying so, without clang;
#  6. the booted-OS system test (tests/system/run.sh: a Debian guest in QEMU
#     with a TPM installs the .deb, provisions, enrolls, reboots, survives a
#     power cut and clock jumps). Its guest image and .deb are prepared in the
#     background while steps 2-5 run; the boots come last. Skipped (exit 77,
#     saying why) where QEMU or mmdebstrap cannot run.
# Idempotent. FLEETID_SKIP_ASAN=1 skips the ASan build and tests,
# FLEETID_SKIP_FUZZ=1 the fuzzing, FLEETID_SKIP_SYSTEM_TEST=1 the system test
# (quick local runs); FLEETID_TEST_SERIAL=1 runs the two test passes one after
# the other, output as it comes (as does FLEETID_TEST_SET_CLOCK=1, see
# test-clock-jump.sh).
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=tests/lib/deps.sh
source tests/lib/deps.sh
deps_install
if [ -z "${FLEETID_SKIP_SYSTEM_TEST:-}" ] && [ "$(id -u)" -eq 0 ]; then
    deps_install "${FLEETID_SYSTEM_PACKAGES[@]}"
fi

# Step 6's image (mmdebstrap: mostly download and unpack) and .deb are built
# while the suites run; its boots wait until the end.
systest_prep=''
systest_prep_pid=''
if [ -z "${FLEETID_SKIP_SYSTEM_TEST:-}" ]; then
    systest_prep=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-systest-prep.XXXXXX")
    echo "run.sh: preparing the system test's guest image and .deb in the background ($systest_prep/log)"
    nice -n 10 bash tests/system/run.sh --prepare "$systest_prep/deb" >"$systest_prep/log" 2>&1 &
    systest_prep_pid=$!
    # A failing step ends run.sh: the preparation goes with it.
    trap '[ -z "$systest_prep_pid" ] || kill "$systest_prep_pid" 2>/dev/null || true' EXIT
fi

if [ -x tests/check-format.sh ] || [ -f tests/check-format.sh ]; then
    echo "run.sh: checking formatting"
    bash tests/check-format.sh
fi

# build DIR [MESON OPTIONS...]: configure (once) and build DIR with -Werror.
build() {
    local dir=$1
    shift
    echo "run.sh: building in $dir"
    if [ ! -d "$dir" ]; then
        meson setup "$dir" --werror "$@"
    else
        meson setup --reconfigure "$dir" --werror "$@" >/dev/null
    fi
    ninja -C "$dir"
}

TEST_JOBS=${FLEETID_TEST_JOBS:-$((3 * $(nproc)))}

# test_suite DIR: the unit and integration tests of DIR; the ASan build's
# with the sanitizer options.
test_suite() {
    local dir=$1
    if [ "$dir" = build-asan ]; then
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
        export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    fi
    meson test -C "$dir" --print-errorlogs --num-processes "$TEST_JOBS" --suite unit --suite integration
}

suites=(build)
build build
if [ -z "${FLEETID_SKIP_ASAN:-}" ]; then
    suites+=(build-asan)
    build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
fi

# The fuzz build needs clang with libFuzzer (Debian 12: clang, libclang-rt-14-dev).
fuzz_clang_works() {
    command -v clang >/dev/null &&
        echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1
}

fuzz=
if [ -n "${FLEETID_SKIP_FUZZ:-}" ]; then
    echo "run.sh: fuzzing skipped (FLEETID_SKIP_FUZZ is set)"
elif ! fuzz_clang_works; then
    echo "run.sh: fuzzing SKIPPED: clang with libFuzzer (-fsanitize=fuzzer) is not installed;" \
        "apt-get install clang libclang-rt-14-dev"
else
    fuzz=1
fi

# build_fuzz: the fuzz harnesses in build-fuzz (clang). No --werror here:
# clang warns about things gcc does not, and the -Werror gate is the gcc
# build above.
build_fuzz() {
    if [ ! -d build-fuzz ]; then
        CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized
    else
        CC=clang meson setup --reconfigure build-fuzz -Dfuzz=true -Dtests=false \
            -Dbuildtype=debugoptimized >/dev/null
    fi
    ninja -C build-fuzz fuzzers
}

fuzz_pid=
if [ -n "$fuzz" ]; then
    echo "run.sh: building the fuzz harnesses in build-fuzz (clang), at low priority, while the tests run"
    (
        renice -n 10 -p "$BASHPID" >/dev/null || true
        build_fuzz
    ) >build/meson-logs/build-fuzz.txt 2>&1 &
    fuzz_pid=$!
fi

# test-clock-jump (only with FLEETID_TEST_SET_CLOCK=1) sets the clock: meson
# runs it alone in its build's pass, so the passes must not overlap then.
failed=()
if [ -n "${FLEETID_TEST_SERIAL:-}" ] || [ "${FLEETID_TEST_SET_CLOCK:-}" = 1 ] || [ ${#suites[@]} -eq 1 ]; then
    for dir in "${suites[@]}"; do
        echo "run.sh: testing in $dir, $TEST_JOBS tests at once"
        (test_suite "$dir") || failed+=("$dir")
    done
else
    # Both builds' tests at once; each output goes to its build directory and
    # is printed, whole, when both are done.
    pids=()
    for dir in "${suites[@]}"; do
        echo "run.sh: testing in $dir, $TEST_JOBS tests at once (output in $dir/meson-logs/run-sh.txt)"
        (test_suite "$dir") >"$dir/meson-logs/run-sh.txt" 2>&1 &
        pids+=($!)
    done
    for i in "${!suites[@]}"; do
        rc=0
        wait "${pids[i]}" || rc=$?
        echo "run.sh: ---- tests in ${suites[i]} (exit status $rc) ----"
        cat "${suites[i]}/meson-logs/run-sh.txt"
        [ "$rc" -eq 0 ] || failed+=("${suites[i]}")
    done
fi

if [ -n "$fuzz_pid" ]; then
    rc=0
    wait "$fuzz_pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat build/meson-logs/build-fuzz.txt
        echo "run.sh: building the fuzz harnesses failed" >&2
        failed+=(build-fuzz)
    fi
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: FAILED in ${failed[*]}" >&2
    exit 1
fi

if [ -n "$fuzz" ]; then
    echo "run.sh: fuzzing, 60 s in all"
    bash tests/fuzz/run.sh -b build-fuzz 60
fi

if [ -n "${FLEETID_SKIP_SYSTEM_TEST:-}" ]; then
    echo "run.sh: system test skipped (FLEETID_SKIP_SYSTEM_TEST is set)"
else
    rc=0
    wait "$systest_prep_pid" || rc=$?
    systest_prep_pid=''
    cat "$systest_prep/log"
    if [ $rc -eq 77 ]; then
        echo "run.sh: the system test was SKIPPED (reason above)"
    elif [ $rc -ne 0 ]; then
        echo "run.sh: preparing the system test failed" >&2
        exit $rc
    else
        echo "run.sh: system test (tests/system/run.sh)"
        deb=$(find "$systest_prep/deb" -maxdepth 1 -name 'fleetid_*.deb' | head -n 1)
        FLEETID_SYSTEST_DEB=$deb bash tests/system/run.sh || rc=$?
        if [ $rc -eq 77 ]; then
            echo "run.sh: the system test was SKIPPED (reason above)"
        elif [ $rc -ne 0 ]; then
            echo "run.sh: the system test failed" >&2
            exit $rc
        fi
    fi
    rm -rf "$systest_prep"
fi
echo "run.sh: all checks passed"
