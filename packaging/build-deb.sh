#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# packaging/build-deb.sh OUTDIR: build the fleetid binary .deb from this source
# tree. The working tree (copy_source_tree in copy-tree.sh) is copied to a
# temporary directory, packaging/debian becomes debian/, and "dpkg-buildpackage -b -us -uc" runs there, unit tests
# included. The .deb, .buildinfo and .changes land in OUTDIR; the temporary
# tree is removed. Needs: dpkg-dev, debhelper, build-essential and the
# Build-Depends of packaging/debian/control (dpkg-checkbuilddeps names any
# that are missing). Exit status: 0 built, 1 failed, 2 usage.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
mkdir -p "$1"
outdir=$(cd "$1" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=packaging/copy-tree.sh
source "$srcdir/packaging/copy-tree.sh"

for tool in dpkg-buildpackage dh; do
    command -v "$tool" >/dev/null ||
        { echo "build-deb.sh: $tool is missing; apt-get install dpkg-dev debhelper build-essential" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
version=$(dpkg-parsechangelog -l "$srcdir/packaging/debian/changelog" -S Version)
tree=$work/fleetid-$version

copy_source_tree "$srcdir" "$tree"
rm -rf "$tree/debian"
cp -a "$tree/packaging/debian" "$tree/debian"

(cd "$tree" && dpkg-checkbuilddeps) ||
    { echo "build-deb.sh: install the missing build dependencies named above" >&2; exit 1; }
(cd "$tree" && dpkg-buildpackage -b -us -uc) || { echo "build-deb.sh: dpkg-buildpackage failed" >&2; exit 1; }

compgen -G "$work/fleetid_${version}_*.deb" >/dev/null ||
    { echo "build-deb.sh: dpkg-buildpackage produced no .deb" >&2; exit 1; }
for f in "$work"/fleetid_"$version"_*.deb "$work"/fleetid-dbgsym_"$version"_*.deb \
         "$work"/fleetid_"$version"_*.buildinfo "$work"/fleetid_"$version"_*.changes; do
    [ -e "$f" ] || continue
    cp "$f" "$outdir/"
    echo "build-deb.sh: $outdir/$(basename "$f")"
done
