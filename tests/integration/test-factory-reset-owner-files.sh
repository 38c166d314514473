#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# test-factory-reset-owner-files.sh: `fleetidctl factory-reset --no-enroll`
# without --owner, on a device whose owner lives only in a drop-in file (the
# main file has no est.url, as docs/configuration.md allows): the old owner's
# files inside the drop-in directory (its trust anchors and its HTTP Basic
# password file) go with its drop-in (docs/factory-reset.md). fleetidctl used
# to lose the old configuration on this path and leave them behind.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

[ "$(id -u)" -eq 0 ] || lab_skip "fleetidctl factory-reset runs as root only"
fleetid_lab_up
FLEETID_CONF_NO_EST=1 fleetid_write_config
DROPIN=$FLEETID_CONF.d
mkdir -p "$DROPIN"
cp "$EST_PKI/est-ca.pem" "$DROPIN/owner-anchors.pem"
printf 'lab-password\n' >"$DROPIN/owner.pass"
chmod 0600 "$DROPIN/owner.pass"
cat >"$DROPIN/50-owner.conf" <<EOT
est: {
        url = "$EST_URL";
        trust_anchors = "$DROPIN/owner-anchors.pem";
        username = "gateway";
        password_file = "$DROPIN/owner.pass";
};
EOT
"$FLEETIDCTL" --config "$FLEETID_CONF" factory-reset --yes --no-enroll >"$LAB_TMPDIR/out" 2>&1 ||
    lab_fail "factory-reset --no-enroll failed: $(cat "$LAB_TMPDIR/out")"
for f in 50-owner.conf owner-anchors.pem owner.pass; do
    [ ! -e "$DROPIN/$f" ] || lab_fail "the old owner's $f stayed in the drop-in directory: $(cat "$LAB_TMPDIR/out")"
done
echo "PASS: a --no-enroll reset without --owner removes the old owner's drop-in and its files"
