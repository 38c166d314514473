#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# packaging/build-rpm.sh OUTDIR: build the fleetid binary RPM from this source
# tree with packaging/rpm/fleetid.spec. The working tree (copy_source_tree in
# copy-tree.sh) becomes Source0, fleetid-VERSION.tar.gz, in a temporary
# rpmbuild top directory; "rpmbuild -bb" runs there, unit tests included, and
# the RPM lands in OUTDIR.
#
# On an RPM distribution with meson and systemd-rpm-macros installed this is a
# real build. Where rpm lacks those macros (Debian's rpm package), it loads
# packaging/rpm/debian-stand-in.macros and passes --nodeps (Debian's rpm
# database knows none of the BuildRequires): a TEST build that checks the spec,
# the file list and the scriptlets; the RPM it makes is not installable
# anywhere. It also makes fleetid-debuginfo, as on Fedora (find-debuginfo
# needs eu-strip: apt-get install rpm elfutils). Exit status: 0 built,
# 1 failed, 2 usage.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
mkdir -p "$1"
outdir=$(cd "$1" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
spec=$srcdir/packaging/rpm/fleetid.spec
# shellcheck source=packaging/copy-tree.sh
source "$srcdir/packaging/copy-tree.sh"

command -v rpmbuild >/dev/null || { echo "build-rpm.sh: rpmbuild is missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT
args=(--define "_topdir $work")
nodeps=()
if [ "$(rpm --eval '%{?meson_build:yes}%{?systemd_post:yes}')" != "yesyes" ]; then
    echo "build-rpm.sh: rpm has no meson/systemd macros: TEST build with" \
         "packaging/rpm/debian-stand-in.macros and --nodeps; the RPM is not installable" >&2
    args+=(--load "$srcdir/packaging/rpm/debian-stand-in.macros")
    nodeps=(--nodeps)
fi
version=$(rpmspec "${args[@]}" -q --srpm --qf '%{version}' "$spec")

mkdir -p "$work/SOURCES" "$work/src"
copy_source_tree "$srcdir" "$work/src/fleetid-$version"
tar -C "$work/src" -czf "$work/SOURCES/fleetid-$version.tar.gz" "fleetid-$version"
cp "$srcdir/systemd/fleetid.sysusers.conf" "$work/SOURCES/"

rpmbuild "${args[@]}" "${nodeps[@]}" -bb "$spec" || { echo "build-rpm.sh: rpmbuild failed" >&2; exit 1; }

compgen -G "$work/RPMS/*/fleetid-$version-*.rpm" >/dev/null ||
    { echo "build-rpm.sh: rpmbuild produced no RPM" >&2; exit 1; }
for f in "$work"/RPMS/*/*.rpm; do
    cp "$f" "$outdir/"
    echo "build-rpm.sh: $outdir/$(basename "$f")"
done
