#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/run.sh: the one command that checks fleetid on a fresh Debian 12.
#  1. installs every build and test dependency from Debian's archive (apt-get
#     when root; otherwise prints the exact command and stops);
#  2. checks formatting;
#  3. builds with -Werror and runs the unit and integration tests;
#  4. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs
#     the tests under it;
#  5. builds the libFuzzer harnesses with clang in build-fuzz and runs them for
#     60 s in all (tests/fuzz/README.md); skipped, saying so, without clang;
#  6. the booted-OS system test (tests/system/run.sh: a Debian guest in QEMU
#     with a TPM installs the .deb, provisions, enrolls, reboots, survives a
#     power cut and clock jumps). Its guest image and .deb are prepared in the
#     background while steps 2-5 run; the boots come last. Skipped (exit 77,
#     saying why) where QEMU or mmdebstrap cannot run.
# Idempotent. FLEETID_SKIP_ASAN=1 skips step 4, FLEETID_SKIP_FUZZ=1 step 5,
# FLEETID_SKIP_SYSTEM_TEST=1 step 6 (quick local runs).
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
    bash tests/system/run.sh --prepare "$systest_prep/deb" >"$systest_prep/log" 2>&1 &
    systest_prep_pid=$!
    # A failing step ends run.sh: the preparation goes with it.
    trap '[ -z "$systest_prep_pid" ] || kill "$systest_prep_pid" 2>/dev/null || true' EXIT
fi

if [ -x tests/check-format.sh ] || [ -f tests/check-format.sh ]; then
    echo "run.sh: checking formatting"
    bash tests/check-format.sh
fi

run_suite() {
    local dir=$1
    shift
    echo "run.sh: building in $dir"
    if [ ! -d "$dir" ]; then
        meson setup "$dir" --werror "$@"
    else
        meson setup --reconfigure "$dir" --werror "$@" >/dev/null
    fi
    ninja -C "$dir"
    echo "run.sh: testing in $dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2 --suite unit --suite integration
}

run_suite build

if [ -z "${FLEETID_SKIP_ASAN:-}" ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
fi

# The fuzz build needs clang with libFuzzer (Debian 12: clang, libclang-rt-14-dev).
fuzz_clang_works() {
    command -v clang >/dev/null &&
        echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1
}

if [ -n "${FLEETID_SKIP_FUZZ:-}" ]; then
    echo "run.sh: fuzzing skipped (FLEETID_SKIP_FUZZ is set)"
elif ! fuzz_clang_works; then
    echo "run.sh: fuzzing SKIPPED: clang with libFuzzer (-fsanitize=fuzzer) is not installed;" \
        "apt-get install clang libclang-rt-14-dev"
else
    echo "run.sh: building the fuzz harnesses in build-fuzz (clang)"
    # No --werror here: clang warns about things gcc does not, and the -Werror
    # gate is the gcc build above.
    if [ ! -d build-fuzz ]; then
        CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized
    else
        CC=clang meson setup --reconfigure build-fuzz -Dfuzz=true -Dtests=false \
            -Dbuildtype=debugoptimized >/dev/null
    fi
    ninja -C build-fuzz fuzzers
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
