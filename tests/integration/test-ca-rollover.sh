#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-ca-rollover.sh: the EST CA rolls over to a new root key (RFC 7030
# 4.1.3) while a device is enrolled; fleetidd follows through its periodic
# /cacerts refresh (est.cacerts_refresh = 10 s):
#  - enrollment and a restart of the enrolled daemon announce no CA change;
#    the restart keeps the renewal due time (the jitter is the certificate's)
#    and the last success (finding the identity in place is none);
#  - an impostor root in /cacerts, next to a NewWithOld look-alike signed by
#    another key, is not adopted: a warning names it, and the anchors, the EST
#    CA set and the operational identity stay as they were;
#  - the real rollover (/cacerts = OldWithOld, NewWithNew, NewWithOld,
#    OldWithNew) is adopted: est-adopted-anchors.pem holds the new root, the
#    EST CA set (est-trust-anchors.pem) gains it, the change is logged and the
#    hook gets ca-changed with FLEETID_CA_ADOPTED; identity and state untouched;
#  - the CA then issues from the new root and its TLS certificate comes from
#    it: a renewal gets a certificate chaining to the new root, accepted;
#  - the old root (made to live OLD_ROOT_LIFETIME seconds) expires: it is
#    retired from the EST CA set (logged, ca-changed with FLEETID_CA_RETIRED)
#    and a further renewal works with the new root alone;
#  - a failing periodic refresh is a warning and changes nothing.
# Exit status: 0 pass, 1 fail, 77 skipped (a tool is missing).
set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
source "$(dirname "$0")/../lib/fleetid.sh"

# Long enough for enrollment, the impostor check, adoption and one renewal.
OLD_ROOT_LIFETIME=100

step() {
    echo "== $*"
}

lab_require_tools swtpm swtpm_setup tpm2-abrmd dbus-daemon tpm2_getcap openssl
lab_tmpdir
tpm_env_start "$LAB_TMPDIR"
# The lab PKI with a short-lived EST root, made just before the EST server starts.
"$LAB_PYTHON" "$LAB_PKI_PY" init "$LAB_TMPDIR/pki" --est-ca-lifetime "$OLD_ROOT_LIFETIME" >/dev/null ||
    lab_fail "cannot create the lab PKI"
est_env_start "$LAB_TMPDIR" --cert-lifetime 3600
fleetid_provision SN-ROLLOVER-1
"$LAB_PYTHON" "$LAB_PKI_PY" rollover "$EST_PKI" >/dev/null || lab_fail "pki.py rollover failed"

fleetid_event_hook
hook=$FLEETID_HOOK
events=$FLEETID_EVENTS
FLEETID_CONF_NO_EST=1 fleetid_write_config \
    "est: { url = \"$EST_URL\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; timeout = 20; cacerts_refresh = 10; };" \
    "retry: { initial = 1; max = 5; };" \
    "monitoring: { hook = \"$hook\"; hook_timeout = 5; };"

ADOPTED=$FLEETID_STATE/est-adopted-anchors.pem
CASET=$FLEETID_STATE/est-trust-anchors.pem
fp() { "$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$1"; }
OLD_FP=$(fp "$EST_PKI/est-ca.pem")
NEW_FP=$(fp "$EST_PKI/est-ca-new.pem")
IMPOSTOR_FP=$(fp "$EST_PKI/est-ca-impostor.pem")
OLD_NOT_AFTER=$(date -d "$(openssl x509 -in "$EST_PKI/est-ca.pem" -noout -enddate | cut -d= -f2)" +%s)

# pem_fingerprints FILE: sha256:<hex> of each certificate in FILE, one a line.
pem_fingerprints() {
    [ -e "$1" ] || return 0
    "$LAB_PYTHON" - "$1" <<'PY'
import base64, hashlib, re, sys
text = open(sys.argv[1]).read()
for b64 in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S):
    print("sha256:" + hashlib.sha256(base64.b64decode("".join(b64.split()))).hexdigest())
PY
}
serial_of() { openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial | cut -d= -f2; }
# Predicates for lab_wait_until.
holds() { pem_fingerprints "$1" | grep -x -- "$2" >/dev/null; } # not -q: no SIGPIPE under pipefail
lacks() { ! holds "$1" "$2"; }
# Both files: the adopted anchors are written first, then the EST CA set.
adopted() { holds "$ADOPTED" "$NEW_FP" && holds "$CASET" "$NEW_FP"; }
log_has() { grep -qE -- "$1" "$FLEETIDD_LOG"; }
status_written_since() { [ "$(sed -n 's/^updated=//p' "$FLEETID_RUNTIME/status")" -ge "$1" ]; }
log_count() { grep -cE -- "$1" "$FLEETIDD_LOG" || true; }
event_with() { grep -l -- "$2" "$events"/*-"$1" >/dev/null 2>&1; }
event_count() { find "$events" -name "*-$1" | wc -l; }
cacerts_served() { [ "$(est_log_count op=cacerts status=200 "cacerts=$1")" -ge "$2" ]; }
past() { [ "$(date +%s)" -gt "$1" ]; }

expect_untouched() {
    fleetid_expect_eq "$(serial_of)" "$serial" "$1: the operational certificate's serial"
    fleetid_expect_eq "$(fleetid_status_get state)" enrolled "$1: fleetidctl status"
}

renew_now() {
    local out
    out=$("$FLEETIDCTL" --config "$FLEETID_CONF" renew) || lab_fail "$1: fleetidctl renew failed: $out"
    grep -q '^renewed$' <<<"$out" || lab_fail "$1: fleetidctl renew did not report success: $out"
    [ "$(serial_of)" != "$serial" ] || lab_fail "$1: the certificate was not replaced"
    serial=$(serial_of)
}

step "enrolled under the old root"
fleetid_daemon_start
fleetid_wait_state 30 enrolled
serial=$(serial_of)
fleetid_expect_eq "$(pem_fingerprints "$CASET")" "$OLD_FP" "the EST CA set after enrollment"
[ ! -e "$ADOPTED" ] || lab_fail "$ADOPTED exists before any rollover"

step "a restart of the enrolled daemon announces no CA change, and keeps the renewal due time"
due_before=$(grep -oE "renewal due at [^ ]+" "$FLEETIDD_LOG" | tail -n 1)
[ -n "$due_before" ] || lab_fail "no 'renewal due at' line before the restart"
success_before=$(fleetid_status_get last_success)
[ -n "$success_before" ] && [ "$success_before" != null ] ||
    lab_fail "no last success in the status after enrollment"
_lab_kill "$FLEETIDD_PID" fleetidd
sleep 1 # the old daemon's last status write is from an earlier second than the restart
restart_at=$(date +%s)
fleetid_daemon_start
lab_wait_until 30 "the restarted daemon to schedule the renewal" log_has "renewal due at" ||
    lab_fail "the restarted daemon did not schedule a renewal; log: $(tail -n 3 "$FLEETIDD_LOG")"
lab_wait_until 10 "the restarted daemon to write its status" status_written_since "$restart_at" ||
    lab_fail "the restarted daemon did not write its status file"
fleetid_expect_grep "$FLEETIDD_LOG" "already enrolled" "the restarted daemon's log"
! log_has "EST CA certificates changed" || lab_fail "a restart announced an EST CA change: $(grep CA "$FLEETIDD_LOG")"
# The jitter belongs to the certificate: a restart does not draw it again.
fleetid_expect_eq "$(grep -oE "renewal due at [^ ]+" "$FLEETIDD_LOG" | tail -n 1)" "$due_before" \
    "the renewal due time after a restart"
# Finding the identity in place is no success: the enrollment's stays.
fleetid_expect_eq "$(fleetid_status_get last_success)" "$success_before" "the last success after a restart"
cp "$CASET" "$LAB_TMPDIR/caset-before"
caset_inode=$(stat -c %i "$CASET") # every write is a rename: a new inode

step "an impostor root with a forged NewWithOld is not adopted"
est_control '{"cacerts": "impostor"}'
lab_wait_until 30 "a refresh that sees the impostor" cacerts_served impostor 1 ||
    lab_fail "no periodic /cacerts refresh within 30 s"
lab_wait_until 10 "the refusal to be logged" log_has "trust unchanged: the root CA certificate" ||
    lab_fail "the impostor root was not reported"
fleetid_expect_grep "$FLEETIDD_LOG" "\($IMPOSTOR_FP\) in /cacerts is not adopted: its NewWithOld certificate does not verify" \
    "the reason for refusing the impostor"
[ ! -e "$ADOPTED" ] || lab_fail "the impostor was adopted: $(pem_fingerprints "$ADOPTED")"
cmp -s "$CASET" "$LAB_TMPDIR/caset-before" || lab_fail "the EST CA set changed for an impostor"
fleetid_expect_eq "$(stat -c %i "$CASET")" "$caset_inode" "the EST CA set's inode (rewritten though unchanged?)"
expect_untouched "after the impostor"
fleetid_expect_eq "$(event_count ca-changed)" 0 "ca-changed hook events for an impostor"
refusals=$(log_count "trust unchanged: the root CA certificate")

step "the rollover is adopted by the periodic refresh"
left=$((OLD_NOT_AFTER - $(date +%s)))
[ "$left" -gt 25 ] || lab_fail "only ${left}s left of the old root: this machine is too slow for the test's " \
    "timeline (raise OLD_ROOT_LIFETIME)"
est_control '{"cacerts": "rollover"}'
lab_wait_until 30 "the new root to be adopted" adopted ||
    lab_fail "the new root was not adopted; log: $(tail -n 5 "$FLEETIDD_LOG")"
fleetid_expect_eq "$(pem_fingerprints "$ADOPTED")" "$NEW_FP" "the adopted anchors"
fleetid_expect_eq "$(stat -c %a "$ADOPTED")" 640 "the mode of $ADOPTED"
holds "$CASET" "$OLD_FP" || lab_fail "the EST CA set lost the old root while it is still valid"
fleetid_expect_grep "$FLEETIDD_LOG" "adopted the EST root CA certificate .*$NEW_FP" "the adoption log line"
lab_wait_until 10 "the ca-changed hook" event_with ca-changed "FLEETID_CA_ADOPTED=$NEW_FP" ||
    lab_fail "no ca-changed hook event naming the adopted root"
[ -z "$(find "$FLEETID_STATE" -name '.#*')" ] || lab_fail "temporary files left in $FLEETID_STATE"
expect_untouched "after the adoption"

step "the new root issues; its TLS certificate is accepted; a renewal chains to it"
est_control '{"cacerts": "rollover", "issuer": "new", "server_cert": "new"}'
renew_now "renewal under the new root"
openssl verify -CAfile "$EST_PKI/est-ca-new.pem" -purpose sslclient "$FLEETID_STATE/operational.pem" >/dev/null ||
    lab_fail "the renewed certificate does not chain to the new root"
[ "$(est_log_count op=simplereenroll status=200 issuer=new)" -ge 1 ] ||
    lab_fail "the EST server did not issue from the new root"

step "the old root expires and is retired; the new root carries on alone"
LAB_WAIT_POLL=0.1 lab_wait_until $((OLD_ROOT_LIFETIME + 10)) "the old root to expire" past "$OLD_NOT_AFTER" ||
    lab_fail "the old root did not expire"
lab_wait_until 30 "the old root to leave the EST CA set" lacks "$CASET" "$OLD_FP" ||
    lab_fail "the expired old root was not retired; log: $(tail -n 5 "$FLEETIDD_LOG")"
fleetid_expect_eq "$(pem_fingerprints "$CASET")" "$NEW_FP" "the EST CA set after the old root expired"
fleetid_expect_eq "$(pem_fingerprints "$ADOPTED")" "$NEW_FP" "the adopted anchors after the old root expired"
fleetid_expect_grep "$FLEETIDD_LOG" "retired the EST root CA certificate .*$OLD_FP" "the retirement log line"
lab_wait_until 10 "the ca-changed hook" event_with ca-changed "FLEETID_CA_RETIRED=$OLD_FP" ||
    lab_fail "no ca-changed hook event naming the retired root"
fleetid_expect_eq "$(log_count "trust unchanged: the root CA certificate")" "$refusals" \
    "refusals logged since the genuine rollover"
renew_now "renewal after the old root expired"
openssl verify -CAfile "$EST_PKI/est-ca-new.pem" -purpose sslclient "$FLEETID_STATE/operational.pem" >/dev/null ||
    lab_fail "the certificate renewed after the expiry does not chain to the new root"

step "a failing refresh is a warning and changes nothing"
est_control '{"cacerts": "new", "issuer": "new", "server_cert": "new",
              "faults": [{"match": "cacerts", "status": 503, "body": "CA maintenance", "count": 1}]}'
cp "$CASET" "$LAB_TMPDIR/caset-before"
lab_wait_until 30 "the failed refresh to be logged" log_has "periodic /cacerts refresh failed: .*CA maintenance" ||
    lab_fail "the failed refresh was not logged"
cmp -s "$CASET" "$LAB_TMPDIR/caset-before" || lab_fail "a failed refresh changed the EST CA set"
fleetid_expect_eq "$(pem_fingerprints "$ADOPTED")" "$NEW_FP" "the adopted anchors after a failed refresh"
expect_untouched "after a failed refresh"
echo "PASS: impostor refused, new root adopted, renewal under it, old root retired, failed refresh harmless"
