#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/system/run.sh: the booted-OS system test. A Debian 12 guest (QEMU,
# TCG) with a TPM (swtpm behind tpm-tis: the guest kernel's /dev/tpmrm0) and
# no network installs the fleetid .deb built from this tree, provisions the
# TPM and enrolls against the lab EST server running inside the guest. Three
# boots of one disk, several checks each (guest/systest.sh):
#   1 install   install, provision, enroll; unit, user, TCTI, systemd-analyze
#               verify and security (exposure <= 2.0), MESSAGE_IDs, catalog;
#               org.fleetid.Agent1 on the system bus as root and as users
#               granted roles in access.conf (reader, attest, sensor-broker);
#   2 reboot    identity kept, no re-enrollment; a renewal starts and QEMU is
#               killed while the EST server holds it (power cut);
#   3 recover   identity intact after the power cut and renewable (Renew
#               job); clock forward past the due time renews, back keeps;
#               factory reset to a second owner, tpm2_clear (the birth key
#               made again, enrolled anew); dpkg --purge.
# The guest image is cached, keyed by its inputs, in FLEETID_SYSTEST_CACHE
# (default ${XDG_CACHE_HOME:-~/.cache}/fleetid-system-test). Budget: 10 minutes
# with a cold image cache on a quiet CI machine (measured times in README.md).
# README.md says how to run it and get a shell.
# `run.sh --prepare DIR` only builds (or reuses) the cached image and builds
# the .deb into DIR, for tests/run.sh to overlap that with the other suites;
# FLEETID_SYSTEST_DEB=DIR/fleetid_*.deb then skips the .deb build.
# Exit status: 0 pass, 1 fail, 77 skipped (no qemu/mmdebstrap/root).
set -euo pipefail

prepare_dir=''
if [ "${1:-}" = --prepare ]; then
    [ -n "${2:-}" ] || { echo "usage: run.sh [--prepare DIR]" >&2; exit 2; }
    mkdir -p "$2"
    prepare_dir=$(cd "$2" && pwd)
fi

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
t0=$(date +%s)

skip() {
    echo "SKIP: system test: $*" >&2
    exit 77
}
fail() {
    echo "FAIL: system test: $*" >&2
    exit 1
}
say() { echo "system test [$(($(date +%s) - t0))s]: $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (mmdebstrap builds the guest image as root)"
for tool in qemu-system-x86_64 qemu-img mmdebstrap mke2fs swtpm tar python3 dpkg-buildpackage; do
    command -v "$tool" >/dev/null ||
        skip "$tool is missing (apt-get install qemu-system-x86 qemu-utils mmdebstrap e2fsprogs swtpm dpkg-dev)"
done
python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is missing"

sources=${FLEETID_SYSTEST_SOURCES:-/etc/apt/sources.list.d/debian.sources}
export FLEETID_SYSTEST_SOURCES=$sources
[ -r "$sources" ] || skip "no apt sources at $sources to build the guest from (set FLEETID_SYSTEST_SOURCES)"

cache=${FLEETID_SYSTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetid-system-test}
case $cache in "$src"/*) fail "the image cache $cache must be outside the source tree" ;; esac
key=$(cat "$here/packages.txt" "$here/build-image.sh" "$sources" | sha256sum | cut -c1-16)
image=$cache/image-$key/rootfs.ext4
mkdir -p "$cache"

work=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-systest.XXXXXX")
qemu_pid='' swtpm_pid=''
cleanup() {
    [ -z "$qemu_pid" ] || kill -9 "$qemu_pid" 2>/dev/null || true
    [ -z "$swtpm_pid" ] || kill "$swtpm_pid" 2>/dev/null || true
    if [ -n "${FLEETID_SYSTEST_KEEP:-}" ]; then echo "system test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The image, built once per key (flock: parallel runs build it once).
(
    flock 9
    if [ ! -f "$image" ]; then
        say "building the guest image $image (cold cache)"
        rm -rf "$cache/image-$key.tmp"
        mkdir -p "$cache/image-$key.tmp"
        "$here/build-image.sh" "$cache/image-$key.tmp/rootfs.ext4" >"$work/image.log" 2>&1 ||
            { tail -n 40 "$work/image.log" >&2; exit 1; }
        rm -rf "$cache/image-$key"
        mv "$cache/image-$key.tmp" "$cache/image-$key"
        # Images of other keys are stale.
        find "$cache" -maxdepth 1 -name 'image-*' ! -name "image-$key" -exec rm -rf {} +
    fi
) 9>"$cache/lock" || fail "cannot build the guest image"
say "guest image ready"

if [ -n "$prepare_dir" ]; then
    say "building the .deb into $prepare_dir"
    DEB_BUILD_OPTIONS=nocheck "$src/packaging/build-deb.sh" "$prepare_dir" >"$work/deb.log" 2>&1 ||
        { tail -n 40 "$work/deb.log" >&2; fail "packaging/build-deb.sh failed"; }
    say "prepared: the image is cached, the .deb is in $prepare_dir"
    exit 0
fi

# The payload: the .deb, the lab (PKI made here, EST server), the guest script.
mkdir -p "$work/payload/lab" "$work/payload/guest"
if [ -n "${FLEETID_SYSTEST_DEB:-}" ]; then
    cp "$FLEETID_SYSTEST_DEB" "$work/payload/"
else
    say "building the .deb (packaging/build-deb.sh; its unit tests are left to the suite)"
    DEB_BUILD_OPTIONS=nocheck "$src/packaging/build-deb.sh" "$work/deb" >"$work/deb.log" 2>&1 ||
        { tail -n 40 "$work/deb.log" >&2; fail "packaging/build-deb.sh failed"; }
    cp "$work"/deb/fleetid_*.deb "$work/payload/"
fi
cp "$src"/tests/lab/*.py "$src/tests/integration/sensor-client.py" "$work/payload/lab/"
python3 "$src/tests/lab/pki.py" init "$work/payload/lab/pki" >/dev/null || fail "tests/lab/pki.py init failed"
# A sensor's birth certificate from the manufacturer CA (the broker checks it).
python3 "$src/tests/lab/pki.py" software-client "$work/payload/lab/pki" sensor-birth-01 >/dev/null ||
    fail "tests/lab/pki.py software-client failed"
# The second owner (factory reset): its own EST CA and server certificate; it
# trusts the same manufacturer CA (the device's maker stays, its owner changes).
python3 "$src/tests/lab/pki.py" init "$work/payload/lab/pki-b" >/dev/null || fail "tests/lab/pki.py init failed"
cp "$work/payload/lab/pki/mfg-ca.pem" "$work/payload/lab/pki/mfg-ca.key" "$work/payload/lab/pki-b/"
cp "$here/guest/systest.sh" "$work/payload/guest/"
cp "$src/dbus/org.fleetid.Agent1.xml" "$src/tests/lib/introspect-compare.py" "$work/payload/"
for id in ENROLLED RENEWED BUS_ACCESS_DENIED FACTORY_RESET FACTORY_RESET_ENROLLED TPM_CLEARED BIRTH_KEY_RECREATED; do
    sed -n "s/^#define FLEETID_MESSAGE_$id \"\([0-9a-f]\{32\}\)\"$/\1/p" "$src/agent/common/message-ids.h" \
        >"$work/payload/msg-${id,,}"
    [ -s "$work/payload/msg-${id,,}" ] || fail "no FLEETID_MESSAGE_$id in agent/common/message-ids.h"
done
[ -z "${FLEETID_SYSTEST_SHELL:-}" ] || : >"$work/payload/shell"
case ${FLEETID_SYSTEST_TCTI:-device} in
device | tabrmd) echo "${FLEETID_SYSTEST_TCTI:-device}" >"$work/payload/tcti" ;;
*) fail "FLEETID_SYSTEST_TCTI must be device or tabrmd, not '$FLEETID_SYSTEST_TCTI'" ;;
esac

qemu-img create -q -f qcow2 -b "$image" -F raw "$work/root.qcow2" || fail "qemu-img create failed"
mkdir -p "$work/tpm"

# boot PHASE TIMEOUT: one boot of the guest running PHASE. 0 when the guest
# reports PASS, 2 when it asks for the power cut (QEMU is then killed), else 1.
# The guest ends its checks with a FAIL verdict and its journal 25 s before
# TIMEOUT (payload "deadline"), so that a hung check still brings the journal.
boot() {
    local phase=$1 limit=$2 console=$work/console-$1.log rc=1 i
    echo "$phase" >"$work/payload/phase"
    echo "$limit" >"$work/payload/deadline"
    tar -cf "$work/payload.tar" -C "$work/payload" .
    rm -f "$work/swtpm.sock"
    # Same state directory every boot: the TPM keeps its contents.
    swtpm socket --tpm2 --tpmstate dir="$work/tpm" --ctrl type=unixio,path="$work/swtpm.sock" \
        --flags not-need-init --terminate --log file="$work/swtpm.log" &
    swtpm_pid=$!
    for ((i = 0; i < 100; i++)); do [ -S "$work/swtpm.sock" ] && break; sleep 0.1; done
    [ -S "$work/swtpm.sock" ] || fail "swtpm did not create its socket"
    local serial=(-serial "file:$console")
    [ -z "${FLEETID_SYSTEST_SHELL:-}" ] || serial=(-serial mon:stdio)
    qemu-system-x86_64 -accel tcg,thread=multi -smp 2 -m 1024 -display none -vga none -no-reboot \
        -nic none "${serial[@]}" \
        -kernel "$image.vmlinuz" -initrd "$image.initrd" \
        -append "root=/dev/vda rw console=ttyS0 loglevel=4 systemd.show_status=error" \
        -drive file="$work/root.qcow2",if=virtio,format=qcow2 \
        -drive file="$work/payload.tar",if=virtio,format=raw,readonly=on \
        -chardev socket,id=chrtpm,path="$work/swtpm.sock" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 &
    qemu_pid=$!
    if [ -n "${FLEETID_SYSTEST_SHELL:-}" ]; then
        wait "$qemu_pid" || true
        qemu_pid=
        exit 0
    fi
    for ((i = 0; i < limit * 2; i++)); do
        if grep -q "SYSTEST-CUT-POWER" "$console" 2>/dev/null; then
            say "power cut: QEMU killed (SIGKILL) during the renewal"
            kill -9 "$qemu_pid"
            rc=2
            break
        fi
        if grep -q "SYSTEST-VERDICT:" "$console" 2>/dev/null; then
            grep -q "SYSTEST-VERDICT: PASS" "$console" && rc=0
            break
        fi
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.5
    done
    # After the verdict the guest powers off: give it 60 s, then pull the plug.
    for ((i = 0; i < 120; i++)); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
    wait "$swtpm_pid" 2>/dev/null || true
    swtpm_pid=
    grep -a "SYSTEST" "$console" | sed -n '/SYSTEST-JOURNAL-BEGIN/,/SYSTEST-JOURNAL-END/!p' || true
    if [ $rc -eq 1 ]; then
        grep -q "SYSTEST-VERDICT:" "$console" || echo "system test: no verdict from the guest within ${limit}s"
        echo "---- guest console ($phase) ----"
        cat "$console"
        echo "---- end of guest console ----"
        echo "---- swtpm log ----"
        tail -n 20 "$work/swtpm.log" 2>/dev/null || true
    fi
    return $rc
}

rc=0
say "boot 1: install, provision, enroll"
boot install 600 || fail "boot 1 (install) failed"
say "boot 2: reboot, then a power cut during a renewal"
boot reboot 300 || rc=$?
[ $rc -eq 2 ] || fail "boot 2 (reboot) failed or did not reach the power cut"
say "boot 3: after the power cut; Renew job; clock jumps; factory reset; tpm2_clear; purge"
boot recover 480 || fail "boot 3 (recover) failed"
say "PASS in $(($(date +%s) - t0))s (budget 600s)"
