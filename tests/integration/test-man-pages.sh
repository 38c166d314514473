#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-man-pages.sh: the man pages in docs/man/ are valid roff, render, are
# installed by meson, and match the programs. For each page:
#  * "mandoc -T lint" and "groff -man -ww -z" report nothing;
#  * it renders (groff -T ascii, as man(1) does) with NAME, SYNOPSIS and
#    DESCRIPTION sections;
#  * meson installs it to share/man/manN (meson introspect --installed).
# For fleetidd(8), fleetidctl(1) and fleetid-provision(8): every long option
# the program's --help names is described in the page's OPTIONS section, every
# option the page names is one --help names, and the commands of --help are
# the entries of the page's COMMANDS section. fleetid.conf(5) is checked
# against the loader's keys by test-config-reference.sh. org.fleetid.Agent1(5)
# names every method, signal and property of the introspection XML in
# dbus/ (which test-dbus-api compares with the live object).
# Needs mandoc, groff-base and the built programs; no TPM, network or root.
# Exit status: 0 pass, 1 fail, 77 skipped (mandoc missing).

set -uo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FLEETID_BUILD_DIR:-$SRCDIR/build}
MAN=$SRCDIR/docs/man
PAGES=(fleetidd.8 fleetidctl.1 fleetid-provision.8 fleetid.conf.5 org.fleetid.Agent1.5)

command -v mandoc >/dev/null || { echo "SKIP: mandoc is missing (apt-get install mandoc)"; exit 77; }
command -v groff >/dev/null || { echo "SKIP: groff is missing (apt-get install groff-base)"; exit 77; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-test-man-pages.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# render PAGE: plain text, wide lines, no hyphenation (so that option names
# are never split), no overstriking.
render() {
    groff -man -T ascii -P -cbou -rLL=200n -rHY=0 "$1" 2>&1
}

# section NAME < text: the lines of one section (from its heading to the next).
section() {
    awk -v s="$1" '/^[A-Z]/ { on = ($0 == s); next } on'
}

meson introspect --installed "$BUILD" >"$TMP/installed.json" 2>/dev/null ||
    fail "meson introspect --installed $BUILD failed"

for page in "${PAGES[@]}"; do
    echo "== $page"
    src=$MAN/$page
    [ -f "$src" ] || { fail "docs/man/$page is missing"; continue; }
    out=$(mandoc -T lint "$src" 2>&1) || true
    [ -z "$out" ] || fail "mandoc -T lint docs/man/$page: $out"
    out=$(groff -man -ww -z "$src" 2>&1) || true
    [ -z "$out" ] || fail "groff -man -ww -z docs/man/$page: $out"
    render "$src" >"$TMP/$page.txt"
    for s in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
        grep -qx "$s" "$TMP/$page.txt" || fail "docs/man/$page renders without a $s section"
    done
    name=${page%.*}
    grep -q "^       $name - ." "$TMP/$page.txt" || fail "docs/man/$page: the NAME line is not '$name - ...'"
    n=${page##*.}
    python3 - "$TMP/installed.json" "$src" "man$n/$page" <<'PY' || fail "meson does not install docs/man/$page to share/man/man$n/$page"
import json, sys
installed = json.load(open(sys.argv[1]))
dest = installed.get(sys.argv[2], "")
sys.exit(0 if dest.endswith("/share/man/" + sys.argv[3]) else 1)
PY
done

# check_program BINARY PAGE: options and commands of --help against the page.
check_program() {
    local bin=$1 page=$2 prog
    prog=$(basename "$bin")
    [ -x "$bin" ] || { fail "$bin is not built"; return; }
    "$bin" --help >"$TMP/$prog.help" || { fail "$prog --help failed"; return; }
    grep -o -- '--[a-z][a-z-]*' "$TMP/$prog.help" | sort -u >"$TMP/$prog.help-opts"
    section OPTIONS <"$TMP/$page.txt" | grep -o -- '--[a-z][a-z-]*' | sort -u >"$TMP/$prog.man-opts"
    grep -o -- '--[a-z][a-z-]*' "$TMP/$page.txt" | sort -u >"$TMP/$prog.man-all-opts"
    [ -s "$TMP/$prog.help-opts" ] || fail "no options found in $prog --help"
    for o in $(comm -23 "$TMP/$prog.help-opts" "$TMP/$prog.man-opts"); do
        fail "$prog --help names $o, but the OPTIONS section of docs/man/$page does not describe it"
    done
    for o in $(comm -13 "$TMP/$prog.help-opts" "$TMP/$prog.man-all-opts"); do
        fail "docs/man/$page names $o, which $prog --help does not know"
    done
    # Commands: the lines of "Commands:" in --help, the entries of COMMANDS.
    awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }' "$TMP/$prog.help" |
        sort >"$TMP/$prog.help-cmds"
    section COMMANDS <"$TMP/$page.txt" | awk '/^       [a-z]/ { print $1 }' | sort >"$TMP/$prog.man-cmds"
    if ! cmp -s "$TMP/$prog.help-cmds" "$TMP/$prog.man-cmds"; then
        fail "the commands of $prog --help ($(tr '\n' ' ' <"$TMP/$prog.help-cmds")) differ from the COMMANDS entries of docs/man/$page ($(tr '\n' ' ' <"$TMP/$prog.man-cmds"))"
    fi
    echo "== $prog: $(wc -l <"$TMP/$prog.help-opts") options, $(wc -l <"$TMP/$prog.help-cmds") commands match docs/man/$page"
}

# check_interface PAGE XML...: every member of the interfaces in the XML
# files is named in the rendered PAGE.
check_interface() {
    local page=$1 member n=0
    shift
    for member in $(sed -n 's/.*<\(method\|signal\|property\) name="\([A-Za-z]*\)".*/\2/p' "$@" | sort -u); do
        n=$((n + 1))
        grep -qw -- "$member" "$TMP/$page.txt" || fail "docs/man/$page does not name $member (from $*)"
    done
    [ "$n" -gt 0 ] || fail "no members found in $*"
    echo "== $page: the $n members of the introspection XML are named"
}

check_interface org.fleetid.Agent1.5 "$SRCDIR/dbus/org.fleetid.Agent1.xml" "$SRCDIR/dbus/org.fleetid.Agent1.Job.xml"

# Every error name fleetidd returns (agent/fleetidd/bus-errors.h) is in the
# man page and in the Errors table of docs/dbus-api.md.
n=0
for err in $(sed -n 's/^#define BUS_ERROR_[A-Z_]* BUS_ERROR_PREFIX "\([A-Za-z]*\)"/\1/p' "$SRCDIR/agent/fleetidd/bus-errors.h"); do
    n=$((n + 1))
    grep -qw -- "$err" "$TMP/org.fleetid.Agent1.5.txt" || fail "docs/man/org.fleetid.Agent1.5 does not name the error $err"
    sed -n '/^## Errors$/,/^## /p' "$SRCDIR/docs/dbus-api.md" | grep -q "org.fleetid.Agent1.Error.$err\b" ||
        fail "the Errors section of docs/dbus-api.md does not list org.fleetid.Agent1.Error.$err"
done
[ "$n" -gt 0 ] || fail "no error names found in agent/fleetidd/bus-errors.h"
echo "== the $n error names of bus-errors.h are in the man page and in docs/dbus-api.md"
check_program "$BUILD/agent/fleetidd/fleetidd" fleetidd.8
check_program "$BUILD/agent/fleetidctl/fleetidctl" fleetidctl.1
check_program "$BUILD/agent/provision/fleetid-provision" fleetid-provision.8

if [ "$failures" -ne 0 ]; then
    echo "FAIL: test-man-pages: $failures problem(s)" >&2
    exit 1
fi
echo "PASS: test-man-pages"
