#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/system/build-image.sh OUT: build the system test's Debian 12 guest
# image: a raw ext4 file system (no partition table) OUT, with its kernel and
# initrd next to it as OUT.vmlinuz and OUT.initrd. mmdebstrap minbase from the
# mirror the host uses (FLEETID_SYSTEST_SOURCES, default
# /etc/apt/sources.list.d/debian.sources), plus tests/system/packages.txt.
# The guest runs /usr/local/sbin/fleetid-systest-boot once multi-user.target
# is reached: it unpacks the payload disk (/dev/vdb, a tar) and runs the test
# script in it. Root has no password (serial console login, for debugging).
# Needs root, mmdebstrap and mke2fs. Exit status: 0 built, 1 failed.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$1
here=$(cd "$(dirname "$0")" && pwd)
sources=${FLEETID_SYSTEST_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[ -r "$sources" ] || { echo "build-image.sh: cannot read the apt sources $sources" >&2; exit 1; }

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$here/packages.txt")
include=$(IFS=,; echo "${packages[*]}")

work=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-systest-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# The unit and script that start the test. Type=simple after multi-user.target:
# a oneshot that powers the machine off would deadlock on its own ordering.
cat >"$work/fleetid-systest.service" <<'UNIT'
[Unit]
Description=fleetid system test (payload on /dev/vdb)
After=multi-user.target
ConditionPathExists=/dev/vdb

[Service]
Type=simple
ExecStart=/usr/local/sbin/fleetid-systest-boot
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
cat >"$work/fleetid-systest-boot" <<'BOOT'
#!/bin/bash
# Unpack the payload disk and run the test script it carries.
set -u
rm -rf /run/systest && mkdir -p /run/systest
if ! tar -xf /dev/vdb -C /run/systest; then
    echo "SYSTEST-VERDICT: FAIL cannot read the payload disk /dev/vdb"
    systemctl poweroff
    exit 1
fi
exec /bin/bash /run/systest/guest/systest.sh
BOOT

mmdebstrap --variant=minbase --include="$include" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='echo fleetid-systest >"$1/etc/hostname"' \
    --customize-hook='echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" >"$1/etc/fstab"' \
    --customize-hook='chroot "$1" passwd -d root' \
    --customize-hook="install -m 0644 '$work/fleetid-systest.service' \"\$1/etc/systemd/system/\"" \
    --customize-hook="install -m 0755 '$work/fleetid-systest-boot' \"\$1/usr/local/sbin/\"" \
    --customize-hook='chroot "$1" systemctl enable fleetid-systest.service' \
    bookworm "$root" - <"$sources"

cp "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/initrd"
size_mb=$(( $(du -sm "$root" | cut -f1) + 768 ))
mke2fs -q -t ext4 -L fleetid-systest -d "$root" "$work/image" "${size_mb}M"
mv "$work/vmlinuz" "$out.vmlinuz"
mv "$work/initrd" "$out.initrd"
mv "$work/image" "$out"
