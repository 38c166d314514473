#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-packaging.sh: builds the .deb (packaging/build-deb.sh) and the RPM
# (packaging/build-rpm.sh, a test build on Debian: see docs/packaging.md) and
# INSPECTS them without installing anything: their file lists (programs, unit,
# sysusers entry, journal catalog, man pages, docs, the D-Bus policy, the
# configuration and access.conf as conffiles / %config(noreplace), access.conf
# 0644 root:root, the owner file fleetidctl writes as a %ghost), that both
# ship the same files, the .deb's control data and maintainer scripts (postrm
# removes that owner file on purge), the RPM's scriptlets, requires and
# provides (rpm -qp), the unit (systemd-analyze verify), that the packaged man
# pages render, and lintian and rpmlint: no error and no warning.
#
# Slow (two package builds, each running the unit tests), so it runs only when
# FLEETID_TEST_PACKAGING=1 or CI is set. Needs no root and changes nothing on
# the machine.
#
# FLEETID_TEST_PACKAGING_INSTALL=1 (root only) then also installs the .deb with
# dpkg, runs the installed programs and purges it again (fleetid's owner file
# goes, an administrator's drop-in stays): this CHANGES THE
# MACHINE (packages, the user fleetid) and is meant for throwaway machines
# only; the booted-OS test (tests/system/) does it in a guest instead.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
PKG=fleetid
PROGRAMS=(/usr/sbin/fleetidd /usr/sbin/fleetid-provision /usr/bin/fleetidctl /usr/libexec/fleetid/fleetid-worker)
# Written by fleetidctl factory-reset --owner, removed on purge / erase.
OWNER_FILE=/etc/fleetid/fleetid.conf.d/owner.conf
MANPAGES=(man8/fleetidd.8 man8/fleetid-provision.8 man1/fleetidctl.1 man5/fleetid.conf.5 man5/org.fleetid.Agent1.5)
# Installed by both packages, wherever the unit and the docs go.
COMMON=(/etc/fleetid/fleetid.conf /etc/fleetid/access.conf /usr/share/dbus-1/system.d/org.fleetid.Agent1.conf
        /usr/lib/sysusers.d/fleetid.conf
        /usr/lib/systemd/catalog/fleetid.catalog "${PROGRAMS[@]}")

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
    skip "builds both packages (slow); set FLEETID_TEST_PACKAGING=1 to run it"
# The packages are built from the source tree, not from the build directory
# this run tests: in tests/run.sh's second (sanitizer) build they would only
# be built again, at the same cost.
if [ -n "${FLEETID_BUILD_DIR:-}" ] &&
    meson introspect --buildoptions "$FLEETID_BUILD_DIR" 2>/dev/null |
    python3 -c 'import json, sys; o = {x["name"]: x["value"] for x in json.load(sys.stdin)}; sys.exit(0 if o.get("b_sanitize", "none") != "none" else 1)'; then
    skip "a sanitizer build; the packages are checked once, with the plain build"
fi
for tool in dpkg-buildpackage dh dpkg-deb lintian rpmbuild rpm rpmlint groff; do
    command -v "$tool" >/dev/null ||
        skip "$tool is missing (tests/lib/deps.sh installs it: dpkg-dev debhelper lintian rpm rpmlint groff-base)"
done
install=${FLEETID_TEST_PACKAGING_INSTALL:-}
if [ "$install" = 1 ]; then
    [ "$(id -u)" -eq 0 ] || skip "FLEETID_TEST_PACKAGING_INSTALL=1 installs the .deb: needs root"
    if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "ok installed"; then
        skip "$PKG is already installed on this system; not touching it"
    fi
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
SECONDS=0

# has LIST PATH...: each PATH is a line of the file LIST.
has() {
    local list=$1 f
    shift
    for f in "$@"; do
        grep -qxF "$f" "$list" || fail "$(basename "$list" .list) does not contain $f"
    done
}

# check_unit FILE: the packaged unit runs /usr/sbin/fleetidd as fleetid, and
# systemd-analyze verify accepts it (pointed at the extracted binary ROOT);
# the same for fleetid-wait-enrolled.service beside it.
check_unit() {
    local u=$1 root=$2 line w
    w=$(dirname "$u")/fleetid-wait-enrolled.service
    grep -qx "ExecStart=/usr/sbin/fleetidd" "$u" || fail "ExecStart in $u does not run /usr/sbin/fleetidd"
    for line in Type=notify User=fleetid SupplementaryGroups=tss StateDirectory=fleetid RuntimeDirectory=fleetid \
                RestartPreventExitStatus=78 "DeviceAllow=/dev/tpmrm0 rw" WatchdogSec=1min; do
        grep -qx "$line" "$u" || fail "$u lacks '$line'"
    done
    ! grep -q "^TimeoutStartSec=" "$u" || fail "$u sets TimeoutStartSec=; READY=1 does not wait for enrollment"
    grep -qx "ExecStart=/usr/bin/fleetidctl wait-enrolled --timeout 300" "$w" ||
        fail "ExecStart in $w does not run /usr/bin/fleetidctl wait-enrolled"
    for line in Type=oneshot RemainAfterExit=yes BindsTo=fleetidd.service After=fleetidd.service User=fleetid; do
        grep -qx "$line" "$w" || fail "$w lacks '$line'"
    done
    if command -v systemd-analyze >/dev/null; then
        mkdir -p "$TMP/units"
        sed "s|^ExecStart=/usr/sbin/|ExecStart=$root/usr/sbin/|" "$u" >"$TMP/units/fleetidd.service"
        sed "s|^ExecStart=/usr/bin/|ExecStart=$root/usr/bin/|" "$w" >"$TMP/units/fleetid-wait-enrolled.service"
        # --man=no: the man page a Documentation= names is in the package, not
        # on this machine (check_man below renders it).
        systemd-analyze verify --man=no "$TMP/units/fleetidd.service" "$TMP/units/fleetid-wait-enrolled.service" ||
            fail "systemd-analyze verify rejects $u or $w"
    fi
}

# check_man ROOT MANDIR: every page is there, gzipped, and renders with its NAME.
check_man() {
    local root=$1 mandir=$2 p
    for p in "${MANPAGES[@]}"; do
        [ -f "$root$mandir/$p.gz" ] || fail "$mandir/$p.gz is not in the package"
        zcat "$root$mandir/$p.gz" | groff -man -T ascii -P -cbou -ww >"$TMP/page.txt" 2>"$TMP/page.err" ||
            fail "$mandir/$p.gz does not render: $(cat "$TMP/page.err")"
        [ ! -s "$TMP/page.err" ] || fail "groff warns on $mandir/$p.gz: $(cat "$TMP/page.err")"
        grep -q "^NAME" "$TMP/page.txt" || fail "$mandir/$p.gz renders without NAME"
    done
}

# ---- Debian ----

# build_package KIND GLOB: runs packaging/build-KIND.sh into $TMP/KIND (its log
# in $TMP/build-KIND.log, shown on failure) and prints the package matching GLOB.
build_package() {
    local kind=$1 glob=$2 t0=$SECONDS pkg
    "$SRCDIR/packaging/build-$kind.sh" "$TMP/$kind" >"$TMP/build-$kind.log" 2>&1 ||
        { tail -n 40 "$TMP/build-$kind.log" >&2; fail "packaging/build-$kind.sh failed (log above)"; }
    echo "   $((SECONDS - t0)) s" >&2
    pkg=$(compgen -G "$TMP/$kind/$glob" | head -n 1) || true
    [ -n "$pkg" ] || fail "no $glob in $TMP/$kind"
    echo "$pkg"
}

step "building the .deb"
DEB=$(build_package deb "${PKG}_*.deb") || exit 1

step "contents of $(basename "$DEB") (dpkg-deb -c)"
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\.||; s|/$||' >"$TMP/deb.list"
has "$TMP/deb.list" "${COMMON[@]}" /etc/fleetid/fleetid.conf.d /lib/systemd/system/fleetidd.service \
    /lib/systemd/system/fleetid-wait-enrolled.service /usr/share/doc/fleetid/copyright
for p in "${MANPAGES[@]}"; do has "$TMP/deb.list" "/usr/share/man/$p.gz"; done
# dh_compress leaves documents under 4 KiB uncompressed.
for d in "$SRCDIR"/README.md "$SRCDIR"/docs/*.md; do
    grep -qx "/usr/share/doc/fleetid/$(basename "$d")\(\.gz\)\?" "$TMP/deb.list" ||
        fail "the .deb does not contain /usr/share/doc/fleetid/$(basename "$d")[.gz]"
done
if grep -q "^/var/lib/fleetid" "$TMP/deb.list"; then
    fail "the .deb ships /var/lib/fleetid; StateDirectory= creates it"
fi

step "control data (dpkg-deb -I)"
dpkg-deb -I "$DEB" >"$TMP/deb.info"
dpkg-deb --ctrl-tarfile "$DEB" | tar -C "$TMP" -xf - ./conffiles ./postinst ./prerm ./postrm
for f in /etc/fleetid/fleetid.conf /etc/fleetid/access.conf; do
    grep -qx "$f" "$TMP/conffiles" || fail "$f is not a conffile"
done
depends=$(dpkg-deb -f "$DEB" Depends)
echo "   Depends: $depends"
for dep in tpm-udev libtss2-esys libssl3 libcurl libsystemd0 libconfig; do
    grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep"
done
# TPM signatures go through fleetid's own OpenSSL provider (docs/tpm-openssl.md).
! grep -q "tpm2-openssl" <<<"$depends" || fail "Depends names tpm2-openssl, which fleetid no longer uses"
grep -q "systemd-sysusers" <<<"$depends" || fail "Depends lacks systemd-sysusers (needed by postinst)"
grep -q "systemd-sysusers.*fleetid.conf" "$TMP/postinst" || fail "postinst does not create the user (systemd-sysusers)"
grep -q "try-restart --no-block fleetidd.service" "$TMP/postinst" || fail "postinst does not restart fleetidd on upgrade"
if grep -Eq "systemctl( --[a-z-]+)* (enable|start) |deb-systemd-invoke start" "$TMP/postinst"; then
    fail "postinst enables or starts fleetidd; it must not (docs/packaging.md)"
fi
grep -q "deb-systemd-invoke stop fleetidd.service" "$TMP/prerm" || fail "prerm does not stop fleetidd on removal"
# What fleetidctl factory-reset --owner writes goes on purge (docs/packaging.md, "Removal").
grep -q "^ *rm -f $OWNER_FILE " "$TMP/postrm" || fail "postrm does not remove $OWNER_FILE on purge"

step "the unit and the man pages in the .deb"
dpkg-deb -x "$DEB" "$TMP/deb-root"
# check_access ROOT TAR-LIKE-LISTING: access.conf is 0644 root:root (docs/dbus-api.md)
# and the bus policy is the one in dbus/ (test-bus-policy checks what it allows).
check_access() {
    local root=$1 listing=$2
    grep -Eq '^-rw-r--r-- +root[ /]+root .*/etc/fleetid/access.conf$' "$listing" ||
        fail "/etc/fleetid/access.conf is not -rw-r--r-- root root: $(grep access.conf "$listing")"
    cmp -s "$root/usr/share/dbus-1/system.d/org.fleetid.Agent1.conf" "$SRCDIR/dbus/org.fleetid.Agent1.conf" ||
        fail "the packaged org.fleetid.Agent1.conf differs from dbus/org.fleetid.Agent1.conf"
}
dpkg-deb -c "$DEB" >"$TMP/deb.ls"
check_access "$TMP/deb-root" "$TMP/deb.ls"
check_unit "$TMP/deb-root/lib/systemd/system/fleetidd.service" "$TMP/deb-root"
check_man "$TMP/deb-root" /usr/share/man

step "lintian"
t0=$SECONDS
lintian --pedantic --info --fail-on none "${DEB%.deb}.changes" >"$TMP/lintian.log" 2>&1 || true
grep -v "^N:" "$TMP/lintian.log" | grep -v "^running with root privileges" || true
if grep -q "^[EW]:" "$TMP/lintian.log"; then
    fail "lintian reports errors or warnings (above); fix them, or override one in packaging/debian/fleetid.lintian-overrides with its reason"
fi
echo "   no error, no warning ($((SECONDS - t0)) s)"

# ---- RPM ----

step "building the RPM"
RPM=$(build_package rpm "${PKG}-[0-9]*.rpm") || exit 1
q() { rpm -qp --nosignature "$@" "$RPM" 2>/dev/null; }

step "contents of $(basename "$RPM") (rpm -qp --list)"
# Without %ghost files: they are in no payload (owner.conf, checked below).
q --list --noghost | grep -v '^/usr/lib/.build-id' >"$TMP/rpm.list"
version=$(q --qf '%{VERSION}')
has "$TMP/rpm.list" "${COMMON[@]}" /etc/fleetid/fleetid.conf.d /usr/lib/systemd/system/fleetidd.service \
    /usr/lib/systemd/system/fleetid-wait-enrolled.service \
    "/usr/share/doc/fleetid-$version/README.md"
for p in "${MANPAGES[@]}"; do has "$TMP/rpm.list" "/usr/share/man/$p.gz"; done
for d in "$SRCDIR"/docs/*.md; do has "$TMP/rpm.list" "/usr/share/doc/fleetid-$version/$(basename "$d")"; done
q --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' >"$TMP/rpm.flags"
for f in /etc/fleetid/fleetid.conf /etc/fleetid/access.conf; do
    grep -qx "cn $f" "$TMP/rpm.flags" || fail "$f is not %config(noreplace): $(grep "$f" "$TMP/rpm.flags")"
done
# fleetidctl factory-reset --owner writes it: owned as %ghost (not %config,
# which rpm would leave on erase), so that the erase removes it.
grep -qx "g $OWNER_FILE" "$TMP/rpm.flags" ||
    fail "$OWNER_FILE is not a plain %ghost (the erase would leave it): $(grep -F "$OWNER_FILE" "$TMP/rpm.flags")"

step "the .deb and the RPM ship the same files"
# The same tree but for the unit directory (Debian 12: /lib) and the
# distributions' documentation conventions (gzip, doc dir name, copyright).
normalize() {
    sed -e 's|^/lib/systemd/system|/usr/lib/systemd/system|' -e 's|^/usr/share/doc/fleetid-[^/]*|/usr/share/doc/fleetid|' \
        -e 's|^\(/usr/share/doc/fleetid/.*\)\.gz$|\1|' "$1" |
        grep -v -e '^/usr/share/doc/fleetid/\(copyright\|changelog\(\.Debian\)\?\)$' -e '^/usr/share/lintian' \
            -e '^/usr/lib/debug' | sort -u
}
# Files only: dpkg lists every parent directory, rpm only those it owns.
files_only() { # ROOT LIST
    while read -r f; do [ -d "$1$f" ] || echo "$f"; done <"$2"
}
rpm2cpio "$RPM" | (mkdir -p "$TMP/rpm-root" && cd "$TMP/rpm-root" && cpio -idm --quiet)
files_only "$TMP/deb-root" "$TMP/deb.list" >"$TMP/deb.raw"
normalize "$TMP/deb.raw" >"$TMP/deb.files"
files_only "$TMP/rpm-root" "$TMP/rpm.list" >"$TMP/rpm.raw"
normalize "$TMP/rpm.raw" >"$TMP/rpm.files"
if ! diff "$TMP/deb.files" "$TMP/rpm.files" >"$TMP/files.diff"; then
    cat "$TMP/files.diff" >&2
    fail "the .deb (<) and the RPM (>) ship different files"
fi
echo "   $(wc -l <"$TMP/deb.files") files"
check_unit "$TMP/rpm-root/usr/lib/systemd/system/fleetidd.service" "$TMP/rpm-root"
q --dump | awk '{ printf "%s %s %s %s\n", $5, $6, $7, $1 }' |
    sed 's/^0*100644 /-rw-r--r-- /' >"$TMP/rpm.ls"
check_access "$TMP/rpm-root" "$TMP/rpm.ls"
check_man "$TMP/rpm-root" /usr/share/man

step "scriptlets (rpm -qp --scripts)"
q --scripts >"$TMP/rpm.scripts"
awk '/^preinstall scriptlet/ { on = 1; next } /scriptlet/ { on = 0 } on' "$TMP/rpm.scripts" >"$TMP/rpm.pre"
grep -q "systemd-sysusers .*fleetid.conf" "$TMP/rpm.pre" || fail "%pre does not run systemd-sysusers"
grep -qx 'u fleetid - "fleetid identity agent" /var/lib/fleetid' "$TMP/rpm.pre" ||
    fail "%pre does not carry systemd/fleetid.sysusers.conf (the user line)"
grep -qx 'm fleetid tss' "$TMP/rpm.pre" || fail "%pre does not put fleetid in tss"
awk '/^postinstall scriptlet/ { on = 1; next } /scriptlet/ { on = 0 } on' "$TMP/rpm.scripts" |
    grep -q "preset fleetidd.service" || fail "%post does not apply the preset (%systemd_post)"
awk '/^preuninstall scriptlet/ { on = 1; next } /scriptlet/ { on = 0 } on' "$TMP/rpm.scripts" |
    grep -q "disable --now fleetidd.service" || fail "%preun does not stop fleetidd on erase (%systemd_preun)"
awk '/^postuninstall scriptlet/ { on = 1; next } /scriptlet/ { on = 0 } on' "$TMP/rpm.scripts" |
    grep -q "try-restart --no-block fleetidd.service" || fail "%postun does not restart fleetidd on upgrade"
if grep -Eq "systemctl( --[a-z-]+)* (enable|start) " "$TMP/rpm.scripts"; then
    fail "a scriptlet enables or starts fleetidd; it must not"
fi

step "requires and provides (rpm -qp --requires / --provides)"
q --requires >"$TMP/rpm.requires"
for r in 'libtss2-esys.so.0()(64bit)' 'libtss2-tctildr.so.0()(64bit)' 'libssl.so.3()(64bit)' \
         'libcurl.so.4()(64bit)' 'libsystemd.so.0()(64bit)' 'libconfig.so.9()(64bit)'; do
    grep -qxF "$r" "$TMP/rpm.requires" || fail "the RPM does not require $r"
done
! grep -q "^tpm2-openssl" "$TMP/rpm.requires" || fail "the RPM requires tpm2-openssl, which fleetid no longer uses"
q --provides >"$TMP/rpm.provides"
release=$(q --qf '%{RELEASE}')
for p in "fleetid = $version-$release" "config(fleetid) = $version-$release"; do
    grep -qxF "$p" "$TMP/rpm.provides" || fail "the RPM does not provide $p"
done

step "rpmlint"
t0=$SECONDS
rpmlint -c "$SRCDIR/packaging/rpm/rpmlint-debian-test.toml" "$RPM" "$SRCDIR/packaging/rpm/fleetid.spec" \
    >"$TMP/rpmlint.log" 2>&1 || true
grep "^$PKG" "$TMP/rpmlint.log" || true
grep -q "^ *1 packages and 1 specfiles checked; 0 errors, 0 warnings" "$TMP/rpmlint.log" || {
    tail -n 3 "$TMP/rpmlint.log" >&2
    fail "rpmlint reports errors or warnings (above); fix them, or filter one in packaging/rpm/rpmlint-debian-test.toml with its reason"
}
echo "   no error, no warning ($((SECONDS - t0)) s)"

# ---- optional: install on this (throwaway) machine ----

if [ "$install" = 1 ]; then
    step "installing (FLEETID_TEST_PACKAGING_INSTALL=1)"
    installed=1
    if ! dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -f -y -q >>"$TMP/dpkg.log" 2>&1 ||
            { cat "$TMP/dpkg.log" >&2; fail "dpkg -i / apt-get -f could not install $DEB"; }
    fi
    dpkg-query -W -f='${Status}' "$PKG" | grep -q "install ok installed" ||
        { cat "$TMP/dpkg.log" >&2; fail "$PKG is not configured after dpkg -i"; }
    getent passwd fleetid >/dev/null || fail "postinst did not create the user fleetid"
    id -nG fleetid | tr ' ' '\n' | grep -qx tss || fail "the user fleetid is not in the group tss"
    out=$(/usr/sbin/fleetidd --version) || fail "fleetidd --version failed"
    grep -q "^fleetidd $(dpkg-query -W -f='${Version}' "$PKG" | cut -d- -f1)\$" <<<"$out" ||
        fail "fleetidd --version says '$out'"
    out=$(setpriv --reuid=fleetid --regid=fleetid --init-groups /usr/sbin/fleetidd --check-config 2>&1) ||
        fail "fleetidd --check-config as the user fleetid failed: $out"
    [ -f /usr/share/man/man5/fleetid.conf.5.gz ] ||
        fail "fleetid.conf(5) is not installed (does /etc/dpkg/dpkg.cfg.d exclude /usr/share/man?)"
    step "purging"
    # As fleetidctl factory-reset --owner leaves it (an owner file, and the
    # temporary file of a write a crash cut short), beside an administrator's
    # own drop-in: purge removes fleetid's, keeps the administrator's.
    dropin=/etc/fleetid/fleetid.conf.d
    echo "# owner" >"$OWNER_FILE"
    echo "# half-written" >"$dropin/.#owner.conf.AbC123"
    echo "# site" >"$dropin/zz-site-test.conf"
    dpkg --purge "$PKG" >"$TMP/purge.log" 2>&1 || { cat "$TMP/purge.log" >&2; fail "dpkg --purge failed"; }
    installed=0
    for f in "${COMMON[@]}" /lib/systemd/system/fleetidd.service "$OWNER_FILE" "$dropin/.#owner.conf.AbC123"; do
        [ ! -e "$f" ] || fail "$f is still there after purge"
    done
    [ -f "$dropin/zz-site-test.conf" ] || fail "purge removed the administrator's $dropin/zz-site-test.conf"
    rm -f "$dropin/zz-site-test.conf"
    rmdir "$dropin" /etc/fleetid 2>/dev/null || true
fi

echo "PASS: test-packaging ($SECONDS s)"
