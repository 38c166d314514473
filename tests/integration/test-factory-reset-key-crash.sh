#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-factory-reset-key-crash.sh: an operational key is fleetid's from the
# instant it is persistent in the TPM (issue 12, docs/factory-reset.md). The
# test-only FLEETID_TEST_KEY_CRASH_AFTER=persisted makes the process making a
# key SIGKILL itself right after TPM2_EvictControl made the key persistent,
# the point at which fleetid used to note the key only afterwards:
#  - an enrollment killed there leaves its key at operational.key_handle and
#    no certificate; a foreign object is put at the spare handle. The factory
#    reset (fleetidctl, fleetidd not running) evicts the killed enrollment's
#    key as fleetid's own, and reports the foreign object, which stays byte
#    for byte; once its owner removed it, the reset goes through;
#  - a renewal (fleetidd running, fleetidctl renew over the lab's private
#    bus) killed there leaves its new key at the spare handle; after fleetidd
#    is stopped, the reset evicts it and the certified key, reports nothing
#    foreign, and no persistent object but the SRK and the birth key is left.
#    Before it, operational-keys is made full (the certified key, then two
#    keys that exist nowhere): the renewal keeps the certified key, drops the
#    two others and adds its new key.
# No timing is asserted. Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

[ "$(id -u)" -eq 0 ] || lab_skip "fleetidctl factory-reset runs as root only"
lab_require_tools tpm2_readpublic tpm2_createprimary tpm2_evictcontrol tpm2_getcap
fleetid_lab_up
fleetid_provision SN-KEY-CRASH
fleetid_write_config "renew: { min_interval = 0; };"
OP=0x81020002 SPARE=0x81020003
handles_provisioned=$(fleetid_persistent_handles)
ctl() { DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS "$FLEETIDCTL" --config "$FLEETID_CONF" "$@"; }
reset_no_enroll() { "$FLEETIDCTL" --config "$FLEETID_CONF" factory-reset --yes --no-enroll; }
present() { tpm2_readpublic -c "$1" >/dev/null 2>&1; }
# spki_hash PEM-FILE: "sha256:" and the SHA-256 of the public key's DER SubjectPublicKeyInfo.
spki_hash() { echo "sha256:$(openssl pkey -pubin -in "$1" -outform der | sha256sum | cut -d' ' -f1)"; }

echo "== an enrollment killed right after its key became persistent"
rc=0
FLEETID_TEST_KEY_CRASH_AFTER=persisted fleetid_enroll_once >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || lab_fail "the enrollment with the crash point set succeeded"
present $OP || lab_fail "the killed enrollment left no key at $OP"
[ ! -e "$FLEETID_STATE/operational.pem" ] || lab_fail "the killed enrollment stored a certificate"
tpm2_readpublic -c $OP -o "$LAB_TMPDIR/killed-key.pub" >/dev/null

echo "== the reset evicts that key, and still refuses a foreign object"
tpm2_createprimary -C o -g sha256 -G ecc -c "$LAB_TMPDIR/foreign.ctx" >/dev/null
tpm2_evictcontrol -C o -c "$LAB_TMPDIR/foreign.ctx" $SPARE >/dev/null
tpm2_readpublic -c $SPARE -o "$LAB_TMPDIR/foreign-before.pub" >/dev/null
rc=0
reset_no_enroll >"$LAB_TMPDIR/out" 2>&1 || rc=$?
cat "$LAB_TMPDIR/out" >&2
! present $OP || lab_fail "the key of the killed enrollment at $OP was not evicted"
fleetid_expect_grep "$LAB_TMPDIR/out" "evicted: $OP; foreign objects left: $SPARE;" \
    "the reset record: the killed enrollment's key evicted, the foreign object left"
fleetid_expect_eq "$rc" 1 "a foreign object at $SPARE: exit status"
fleetid_expect_grep "$LAB_TMPDIR/out" "TPM handle $SPARE holds an object fleetid did not certify.*not evicted" \
    "the foreign object"
tpm2_readpublic -c $SPARE -o "$LAB_TMPDIR/foreign-after.pub" >/dev/null
cmp -s "$LAB_TMPDIR/foreign-before.pub" "$LAB_TMPDIR/foreign-after.pub" || lab_fail "the foreign object was changed"
tpm2_evictcontrol -C o -c $SPARE >/dev/null
reset_no_enroll >"$LAB_TMPDIR/out" 2>&1 || lab_fail "the reset after the foreign object went failed: $(cat "$LAB_TMPDIR/out")"
[ ! -e "$FLEETID_STATE/factory-reset" ] || lab_fail "the marker stayed after a finished --no-enroll reset"

echo "== a renewal killed right after its new key became persistent"
fleetid_enroll_once >/dev/null 2>&1 || lab_fail "the enrollment after the reset failed"
[ "$(fleetid_cert_key_handle "$FLEETID_STATE/operational.pem" $OP $SPARE)" = $OP ] ||
    lab_fail "the operational key is not at $OP"
! present $SPARE || lab_fail "something sits at $SPARE before the renewal"
# A full record (docs/state-directory.md): the certified key, then two newer
# ones that exist nowhere (killed between their note and their persistence).
# The new key drops those two and keeps the certified key, the oldest.
printf '%s\nsha256:%s\nsha256:%s\n' "$(spki_hash <(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -pubkey))" \
    "$(printf gone-1 | sha256sum | cut -d' ' -f1)" "$(printf gone-2 | sha256sum | cut -d' ' -f1)" \
    >"$FLEETID_STATE/operational-keys"
cp "$FLEETID_STATE/operational-keys" "$LAB_TMPDIR/keys-before"
# The lab's private bus (it lets anyone own any name) stands for the system bus.
FLEETID_TEST_KEY_CRASH_AFTER=persisted DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS fleetid_daemon_start
# Enrolled in the daemon's own words: the status file still says "enrolled"
# from the --oneshot run before it.
_ready() { grep -q "D-Bus: serving org.fleetid.Agent1" "$FLEETIDD_LOG" && grep -q "state: none -> enrolled" "$FLEETIDD_LOG"; }
lab_wait_until 60 "fleetidd to serve org.fleetid.Agent1, enrolled" _ready ||
    lab_fail "fleetidd did not start enrolled and on the bus"
rc=0
ctl renew --timeout 60 >"$LAB_TMPDIR/renew.out" 2>&1 || rc=$?
cat "$LAB_TMPDIR/renew.out" >&2
[ "$rc" -ne 0 ] || lab_fail "the renewal with the crash point set succeeded"
fleetid_stop_daemon_bounded 30
present $SPARE || lab_fail "the killed renewal left no key at $SPARE"
# (fleetidd may have retried, and been killed again, before it stopped: the
# record may hold an earlier attempt's key too.)
keys=$FLEETID_STATE/operational-keys
cat "$keys" >&2
grep -qxF "$(sed -n 1p "$LAB_TMPDIR/keys-before")" "$keys" || lab_fail "operational-keys lost the certified key"
grep -qxF "$(spki_hash <(fleetid_tpm_pubkey $SPARE))" "$keys" || lab_fail "operational-keys lacks the key at $SPARE"
! grep -qxF -f <(sed 1d "$LAB_TMPDIR/keys-before") "$keys" || lab_fail "operational-keys kept a key that exists nowhere"
rc=0
reset_no_enroll >"$LAB_TMPDIR/out" 2>&1 || rc=$?
cat "$LAB_TMPDIR/out" >&2
fleetid_expect_eq "$rc" 0 "the reset after the killed renewal: exit status"
! grep -q "did not certify" "$LAB_TMPDIR/out" || lab_fail "the reset reports a foreign object"
! present $SPARE || lab_fail "the key of the killed renewal at $SPARE was not evicted"
! present $OP || lab_fail "the certified key at $OP was not evicted"
fleetid_expect_eq "$(fleetid_persistent_handles)" "$handles_provisioned" "persistent TPM objects after the reset"

echo "PASS"
