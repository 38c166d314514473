# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tests/lib/deps.sh: install fleetid's build and test dependencies from
# Debian's archive. Sourced by tests/run.sh.
# deps_install [PACKAGE...]: install PACKAGEs (default: FLEETID_PACKAGES) with
# apt-get when root; otherwise print the exact command and fail.

FLEETID_PACKAGES=(
    build-essential meson ninja-build pkg-config clang-format
    libtss2-dev libssl-dev libcurl4-openssl-dev libsystemd-dev libconfig-dev libcmocka-dev
    tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 swtpm swtpm-tools dbus openssl curl
    python3 python3-cryptography debhelper dpkg-dev
    python3-dbus python3-gi libglib2.0-bin # test-dbus-sign, test-dbus-jobs: python3-dbus clients (on a GLib main loop) and gdbus
    clang libclang-rt-14-dev # the libFuzzer build of tests/fuzz (build-fuzz)
    # test-man-pages (mandoc); test-packaging (lintian; rpm, rpmlint, and elfutils
    # for eu-strip, which the RPM's debuginfo split needs)
    mandoc lintian rpm rpmlint elfutils
    xxd # tests/demo.sh: the hex nonce to bytes, as docs/dbus-api.md verifies a signature
    valgrind # tests/bench/dbus-calls.sh: instructions per D-Bus call (callgrind), the load-independent number
)

# The booted-OS system test (tests/system/run.sh): it builds a Debian guest
# image with mmdebstrap and boots it in QEMU (TCG) with swtpm as the TPM.
FLEETID_SYSTEM_PACKAGES=(
    mmdebstrap qemu-system-x86 qemu-utils e2fsprogs
)

deps_install() {
    local missing=() p wanted=("$@")
    [ $# -gt 0 ] || wanted=("${FLEETID_PACKAGES[@]}")
    for p in "${wanted[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages. Run as root, or install them with:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}
