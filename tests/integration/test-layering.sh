#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-layering.sh: lib/'s modules depend on lower layers only (no upward or
# circular includes; the layers are in docs/architecture.md and
# tests/lib/layering.py), and lib/ has no sd-bus or sd-event code. A
# self-check first: an upward include planted in a copy of lib/ must be
# reported, so the check can fail.
# Needs python3; no TPM, network or root. Exit status: 0 pass, 1 fail.
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-test-layering.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

cp -a "$SRCDIR/lib" "$TMP/lib"
echo '#include "enroll/enroll.h"' >>"$TMP/lib/exchange/request.c"
if python3 "$SRCDIR/tests/lib/layering.py" "$TMP" 2>"$TMP/out"; then
    echo "FAIL: an upward include (exchange -> enroll) was not reported" >&2
    exit 1
fi
grep -q "exchange includes enroll/enroll.h: an upward dependency" "$TMP/out" ||
    { cat "$TMP/out" >&2; echo "FAIL: the planted include was not named" >&2; exit 1; }

python3 "$SRCDIR/tests/lib/layering.py" "$SRCDIR"
