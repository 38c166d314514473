#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-packaging.sh: builds the .deb with packaging/build-deb.sh, checks what
# it contains and depends on, installs it with dpkg, runs the installed
# fleetidd against the shipped configuration, then purges it again.
# Slow (a full package build) and changes the system, so it runs only as root
# and only when FLEETID_TEST_PACKAGING=1 or CI is set.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
PKG=fleetid

skip() {
    echo "SKIP: $*"
    exit 77
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() {
    echo "== $*"
}

[ -n "${FLEETID_TEST_PACKAGING:-}${CI:-}" ] ||
    skip "builds and installs the package; set FLEETID_TEST_PACKAGING=1 to run it"
[ "$(id -u)" -eq 0 ] || skip "installs a package: needs root"
for tool in dpkg-buildpackage dh dpkg-deb; do
    command -v "$tool" >/dev/null || skip "$tool is missing (apt-get install dpkg-dev debhelper)"
done
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "ok installed"; then
    skip "$PKG is already installed on this system; not touching it"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-test-packaging.XXXXXX")
installed=0
cleanup() {
    if [ "$installed" = 1 ]; then
        dpkg --purge "$PKG" >/dev/null 2>&1 || echo "WARNING: could not purge $PKG" >&2
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

step "building the package"
"$SRCDIR/packaging/build-deb.sh" "$TMP/out" >"$TMP/build.log" 2>&1 ||
    { tail -n 40 "$TMP/build.log" >&2; fail "packaging/build-deb.sh failed (log above)"; }
DEB=$(compgen -G "$TMP/out/${PKG}_*.deb" | head -n 1) || true
[ -n "$DEB" ] || fail "no ${PKG}_*.deb in $TMP/out"

step "contents of $(basename "$DEB")"
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\.||' >"$TMP/contents"
unit=""
for d in /lib/systemd/system /usr/lib/systemd/system; do
    grep -qx "$d/fleetidd.service" "$TMP/contents" && unit=$d/fleetidd.service
done
[ -n "$unit" ] || fail "the package has no fleetidd.service"
for f in /usr/sbin/fleetidd /usr/sbin/fleetid-provision /usr/bin/fleetidctl \
         /etc/fleetid/fleetid.conf /usr/lib/sysusers.d/fleetid.conf; do
    grep -qx "$f" "$TMP/contents" || fail "the package does not contain $f"
done
dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles >"$TMP/conffiles"
grep -qx /etc/fleetid/fleetid.conf "$TMP/conffiles" || fail "/etc/fleetid/fleetid.conf is not a conffile"

step "metadata"
depends=$(dpkg-deb -f "$DEB" Depends)
echo "Depends: $depends"
for dep in tpm2-openssl tpm-udev libtss2-esys libssl3 libcurl libsystemd0 libconfig; do
    grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep"
done
grep -q "systemd-sysusers" <<<"$depends" || fail "Depends lacks systemd-sysusers (needed by postinst)"

step "the shipped unit"
dpkg-deb -x "$DEB" "$TMP/root"
u=$TMP/root$unit
grep -qx "ExecStart=/usr/sbin/fleetidd" "$u" || fail "ExecStart in $unit does not run /usr/sbin/fleetidd"
for line in Type=notify User=fleetid SupplementaryGroups=tss StateDirectory=fleetid RuntimeDirectory=fleetid \
            RestartPreventExitStatus=78 "DeviceAllow=/dev/tpmrm0 rw" TimeoutStartSec=infinity; do
    grep -qx "$line" "$u" || fail "$unit lacks '$line'"
done
if command -v systemd-analyze >/dev/null; then
    # Pointed at the extracted binary: verify checks that ExecStart exists.
    sed "s|^ExecStart=/usr/sbin/|ExecStart=$TMP/root/usr/sbin/|" "$u" >"$TMP/fleetidd.service"
    systemd-analyze verify "$TMP/fleetidd.service" || fail "systemd-analyze verify rejects $unit"
fi

step "installing"
installed=1
if ! dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1; then
    # Missing dependencies: let apt bring them and finish the configuration.
    DEBIAN_FRONTEND=noninteractive apt-get install -f -y -q >>"$TMP/dpkg.log" 2>&1 ||
        { cat "$TMP/dpkg.log" >&2; fail "dpkg -i / apt-get -f could not install $DEB"; }
fi
dpkg-query -W -f='${Status}' "$PKG" | grep -q "install ok installed" ||
    { cat "$TMP/dpkg.log" >&2; fail "$PKG is not configured after dpkg -i"; }

getent passwd fleetid >/dev/null || fail "postinst did not create the user fleetid"
id -nG fleetid | tr ' ' '\n' | grep -qx tss || fail "the user fleetid is not in the group tss"
[ "$(getent passwd fleetid | cut -d: -f6)" = /var/lib/fleetid ] || fail "fleetid's home is not /var/lib/fleetid"

step "running the installed programs"
out=$(/usr/sbin/fleetidd --version) || fail "fleetidd --version failed"
grep -q "^fleetidd [0-9]" <<<"$out" || fail "unexpected fleetidd --version output: $out"
dpkg_version=$(dpkg-query -W -f='${Version}' "$PKG")
grep -q "^fleetidd ${dpkg_version%%-*}\$" <<<"$out" ||
    fail "fleetidd --version says '$out', the package is $dpkg_version"
/usr/bin/fleetidctl --help >/dev/null || fail "fleetidctl --help failed"
/usr/sbin/fleetid-provision --help >/dev/null || fail "fleetid-provision --help failed"
out=$(/usr/sbin/fleetidd --check-config --config /etc/fleetid/fleetid.conf 2>&1) ||
    fail "the shipped configuration does not load: $out"
echo "$out"
# As the service user, as the unit runs it: the configuration must be readable.
out=$(setpriv --reuid=fleetid --regid=fleetid --init-groups /usr/sbin/fleetidd --check-config 2>&1) ||
    fail "fleetidd --check-config as the user fleetid failed: $out"

step "purging"
dpkg --purge "$PKG" >"$TMP/purge.log" 2>&1 || { cat "$TMP/purge.log" >&2; fail "dpkg --purge failed"; }
installed=0
for f in /usr/sbin/fleetidd /etc/fleetid/fleetid.conf /usr/lib/sysusers.d/fleetid.conf; do
    [ ! -e "$f" ] || fail "$f is still there after purge"
done
[ ! -e "$unit" ] || fail "$unit is still there after purge"

echo "PASS: test-packaging"
