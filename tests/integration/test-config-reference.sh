#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-config-reference.sh: the configuration reference does not drift from
# the code. The keys the loader accepts are read from its key table
# (key_specs in lib/config/config.c, by tests/lib/config-keys.py, which fails
# if an entry of the table is not of the form it reads) and must each be
# documented in docs/man/fleetid.conf.5, in docs/configuration.md and in the
# installed example etc/fleetid.conf; every key documented in any of them must
# be one the loader accepts. Both directions are also checked against the real
# loader: fleetidd --check-config on a file that sets the key must not say
# "unknown key" (and does say it for a key that does not exist, so the check
# can fail). Each failure names the key and the file to fix.
# Needs python3 and the built fleetidd; no TPM, network or root.
# Exit status: 0 pass, 1 fail.

set -uo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FLEETID_BUILD_DIR:-$SRCDIR/build}
FLEETIDD=$BUILD/agent/fleetidd/fleetidd
KEYS=$SRCDIR/tests/lib/config-keys.py
[ -x "$FLEETIDD" ] || { echo "FAIL: $FLEETIDD is not built (FLEETID_BUILD_DIR=$BUILD)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-test-config-reference.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

python3 "$KEYS" loader "$SRCDIR/lib/config/config.c" >"$TMP/loader" || exit 1
echo "== the loader's table (lib/config/config.c) has $(wc -l <"$TMP/loader") keys"

# loader_knows KEY: does the real loader accept KEY as a name? Its value may be
# of the wrong type (the message then says so); only "unknown" matters here.
loader_knows() {
    local group=${1%%.*} name=${1#*.} conf=$TMP/probe.conf out
    if [ "$1" = est.url ]; then
        echo 'est: { url = "https://est.example.net"; };' >"$conf"
    elif [ "$group" = est ]; then
        echo "est: { url = \"https://est.example.net\"; $name = 0; };" >"$conf"
    else
        printf 'est: { url = "https://est.example.net"; };\n%s: { %s = 0; };\n' "$group" "$name" >"$conf"
    fi
    out=$("$FLEETIDD" --check-config --config "$conf" 2>&1)
    ! grep -q "unknown key\|unknown group" <<<"$out"
}

# The probe itself can tell: a key that does not exist is refused.
loader_knows est.no_such_key_for_the_test && fail "the loader probe accepts a key that does not exist"

while read -r key; do
    loader_knows "$key" ||
        fail "$key is in the key table of lib/config/config.c but the loader (fleetidd --check-config) calls it unknown"
done <"$TMP/loader"

check_doc() { # KIND FILE HOWTO
    local kind=$1 file=$2 howto=$3 rel=${2#"$SRCDIR"/}
    python3 "$KEYS" "$kind" "$file" >"$TMP/$kind" || { fail "$rel cannot be read for its keys (above)"; return; }
    echo "== $rel documents $(wc -l <"$TMP/$kind") keys"
    comm -23 "$TMP/loader" "$TMP/$kind" | while read -r key; do
        echo "FAIL: $key is accepted by the loader (lib/config/config.c) but not documented in $rel; $howto" >&2
        echo x
    done >"$TMP/missing"
    comm -13 "$TMP/loader" "$TMP/$kind" | while read -r key; do
        if loader_knows "$key"; then
            echo "FAIL: $key is documented in $rel and accepted by the loader, but not read from its key table (update tests/lib/config-keys.py)" >&2
        else
            echo "FAIL: $key is documented in $rel but the loader does not know it; remove it from $rel or add it to lib/config/config.c" >&2
        fi
        echo x
    done >>"$TMP/missing"
    failures=$((failures + $(wc -l <"$TMP/missing")))
}

check_doc man "$SRCDIR/docs/man/fleetid.conf.5" "add an entry '.TP' then '.B group.key' under its GROUP section"
check_doc markdown "$SRCDIR/docs/configuration.md" "add a row '| \`key\` | ...' to the table of its group under '## Keys'"
check_doc conf "$SRCDIR/etc/fleetid.conf" "add the key with its default and a comment to its group"

if [ "$failures" -ne 0 ]; then
    echo "FAIL: test-config-reference: $failures problem(s)" >&2
    exit 1
fi
echo "PASS: test-config-reference"
