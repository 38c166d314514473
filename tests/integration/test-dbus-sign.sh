#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-dbus-sign.sh: SignChallenge of org.fleetid.Agent1 (docs/dbus-api.md),
# on a private dbus-daemon configured like the system bus (as test-dbus-api),
# with fleetidd enrolled against the lab EST server:
#   - callers granted attest (by access.conf) sign with the operational key,
#     with busctl, gdbus and python3-dbus; every signature verifies with the
#     openssl CLI and with python3-cryptography (tests/lab/verify_challenge.py)
#     from nothing but the chain returned, which leads to the lab EST CA; the
#     signature for purpose A does not verify for purpose B;
#   - identity=birth: allowed to attest-birth (the chain is the IDevID, to the
#     manufacturer CA), refused to attest (AccessDenied, logged with the uid
#     as the filter's refusals are); reader and no grant: AccessDenied;
#   - bad input: nonce of 15 and 65 bytes, empty/long/uppercase/'/' purpose,
#     an unknown option, identity="foo", identity of the wrong type:
#     InvalidArgs naming what was wrong;
#   - the loop stays responsive: with the signer stopped (SIGSTOP) and 64
#     calls queued, GetTrustBundle is answered and more calls get Busy; all
#     64 are signed once it runs again, each with its own call's signature;
#   - the signer killed (SIGKILL) with calls in flight: they fail, naming it;
#     the next call works (a new signer);
#   - tpm2-abrmd restarted: the next call is signed (the signer reconnects);
#     swtpm killed: TpmUnavailable; back once swtpm is;
#   - a renewal gives the next call the new key; the signer exits when idle;
#   - fleetidctl sign-challenge (the operational and birth key, --out);
#   - the rate limit: RateLimited; not enrolled: NotEnrolled.
# Needs root (callers run as other uids); skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_require --python-dbus busctl gdbus
agent_bus_namespace "$0" fleetid-test-attest fleetid-test-birth fleetid-test-reader fleetid-test-nogrant

# ---- inside the namespace ----
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"

step() { echo "== $*"; }
VERIFY_PY=$SRCDIR/tests/lab/verify_challenge.py
ANSWER_PY=$SRCDIR/tests/lib/sign-answer.py

fleetid_lab_up
fleetid_provision
chmod 0711 "$LAB_TMPDIR"
cat >"$LAB_TMPDIR/access.conf" <<'EOF'
grants = (
        { user = "fleetid-test-attest"; roles = [ "attest" ]; },
        { user = "fleetid-test-birth"; roles = [ "attest-birth" ]; },
        { user = "fleetid-test-reader"; roles = [ "reader" ]; }
);
EOF
chmod 0644 "$LAB_TMPDIR/access.conf"
# The rate limit out of the way until its own step.
# The signer stays for the whole test (signer_idle): on a loaded machine the
# default 10 s could pass between two steps that need the same signer.
fleetid_write_config "access: { file = \"$LAB_TMPDIR/access.conf\"; sign_burst = 10000; sign_per_minute = 60000; signer_idle = 3600; };"
CONF_BASE=$(cat "$FLEETID_CONF")

# ---- the bus ----
agent_bus_start
BUSDIR=$AGENT_BUS_DIR
ADDR=$AGENT_BUS_ADDR
NAME=org.fleetid.Agent1
OBJ=/org/fleetid/Agent1

_serving() { grep -q "D-Bus: serving $NAME" "$FLEETIDD_LOG"; }
start_daemon() {
    fleetid_daemon_start
    lab_wait_until 30 "fleetidd to own $NAME" _serving
}
start_daemon
fleetid_wait_state 90 enrolled

OUT=$LAB_TMPDIR/call.out
N=0 # calls made, for fresh file names
NONCE=00112233445566778899aabbccddeeff0123456789abcdef
# busctl's arguments for an ay of the bytes of a hex string
ay_args() { "$LAB_PYTHON" -c 'import sys; b = bytes.fromhex(sys.argv[1]); print(len(b), *b)' "$1"; }

# sign_busctl USER NONCE_HEX PURPOSE [OPTIONS...]: busctl; the answer in
# $OUT (--json=short), or the error; returns busctl's status.
sign_busctl() {
    local user=$1 nonce=$2 purpose=$3 rc=0
    shift 3
    local opts=("$@")
    [ ${#opts[@]} -gt 0 ] || opts=(0)
    # shellcheck disable=SC2046 # ay_args prints the words of the ay
    run_as "$user" busctl --address="$ADDR" --timeout=60 --json=short call "$NAME" "$OBJ" "$NAME" SignChallenge \
        'aysa{sv}' $(ay_args "$nonce") "$purpose" "${opts[@]}" >"$OUT" 2>&1 || rc=$?
    return $rc
}
# answer_files PREFIX: sig.bin, alg, chain.pem of the busctl answer in $OUT.
answer_files() { "$LAB_PYTHON" "$ANSWER_PY" busctl "$OUT" "$1" || lab_fail "cannot read the answer: $(cat "$OUT")"; }
# verify PREFIX CA NONCE_HEX PURPOSE: openssl and python3-cryptography both
# accept the signature and the chain (nothing but the chain, the CA, the formula).
verify() {
    local p=$1 ca=$2 nonce=$3 purpose=$4 alg
    alg=$(cat "$p.alg")
    openssl verify -CAfile "$ca" -untrusted "$p.chain.pem" "$p.chain.pem" >/dev/null 2>"$p.err" ||
        { echo "openssl: the chain does not lead to $ca: $(cat "$p.err")"; return 1; }
    openssl x509 -in "$p.chain.pem" -noout -pubkey >"$p.pub.pem"
    "$LAB_PYTHON" -c 'import sys; sys.stdout.buffer.write(b"fleetid-challenge-v1\0" + sys.argv[1].encode() + b"\0" + bytes.fromhex(sys.argv[2]))' \
        "$purpose" "$nonce" >"$p.msg"
    openssl dgst -sha256 -verify "$p.pub.pem" -signature "$p.sig" "$p.msg" >"$p.err" 2>&1 ||
        { echo "openssl: the $alg signature does not verify for purpose '$purpose': $(cat "$p.err")"; return 1; }
    "$LAB_PYTHON" "$VERIFY_PY" --chain "$p.chain.pem" --ca "$ca" --nonce "$nonce" --purpose "$purpose" \
        --alg "$alg" --sig "$p.sig" >"$p.err" 2>&1 ||
        { echo "python3-cryptography: $(cat "$p.err")"; return 1; }
}
# expect_error WHAT ERROR_NAME ERE USER NONCE PURPOSE [OPTIONS...]: busctl
# fails with ERROR_NAME; the message (python3-dbus shows it; busctl only
# the text) matches ERE.
expect_error() {
    local what=$1 name=$2 ere=$3 out
    shift 3
    out=$(sign_py "$@") && lab_fail "$what: signed: $out"
    grep -q "^error $name: " <<<"$out" || lab_fail "$what: not $name: $out"
    grep -qE "$ere" <<<"$out" || lab_fail "$what: the message does not say /$ere/: $out"
    echo "   $what: $out"
}
# sign_py USER NONCE_HEX PURPOSE [IDENTITY-VARIANT-PYTHON]: python3-dbus;
# prints "ok ALG" (the answer in $LAB_TMPDIR/py.*) or "error NAME: MESSAGE".
sign_py() {
    run_as "$1" "$LAB_PYTHON" "$ANSWER_PY" call "$ADDR" "$2" "$3" "${4:-}" "$LAB_TMPDIR/py"
}
# The signing process (named fleetid-signer), the newest: one retired by a
# renewal may still be finishing.
signer_pid() {
    ps -o pid=,comm= --ppid "$FLEETIDD_PID" --sort=start_time | awk '$2 == "fleetid-signer" { print $1 }' | tail -n 1
}
EST_CA=$EST_PKI/est-ca.pem
MFG_CA=$EST_PKI/mfg-ca.pem

step "attest (root as admin) signs with busctl: the chain leads to the EST CA, both verifiers accept"
sign_busctl root "$NONCE" login.v1 || lab_fail "SignChallenge failed: $(cat "$OUT")"
answer_files "$LAB_TMPDIR/a"
fleetid_expect_eq "$(cat "$LAB_TMPDIR/a.alg")" ecdsa-with-SHA256 "the algorithm of the P-256 operational key"
err=$(verify "$LAB_TMPDIR/a" "$EST_CA" "$NONCE" login.v1) || lab_fail "$err"
# The chain is the operational one: its leaf is operational.pem's.
cmp -s <(openssl x509 -in "$LAB_TMPDIR/a.chain.pem" -outform DER) \
    <(openssl x509 -in "$FLEETID_STATE/operational.pem" -outform DER) ||
    lab_fail "the chain's leaf is not the operational certificate"
echo "   verified with openssl and python3-cryptography"

step "a signature for purpose A does not verify for purpose B, nor for another nonce"
verify "$LAB_TMPDIR/a" "$EST_CA" "$NONCE" login.v2 >/dev/null && lab_fail "the signature for login.v1 verifies for login.v2"
verify "$LAB_TMPDIR/a" "$EST_CA" "${NONCE%??}00" login.v1 >/dev/null && lab_fail "the signature verifies for another nonce"
echo "   refused by both"

step "the attest user signs with gdbus and python3-dbus"
run_as fleetid-test-attest gdbus call --address "$ADDR" --dest "$NAME" --object-path "$OBJ" \
    --method "$NAME.SignChallenge" "$("$LAB_PYTHON" -c 'import sys; print("[" + ", ".join("byte 0x%02x" % b for b in bytes.fromhex(sys.argv[1])) + "]")' "$NONCE")" \
    "gdbus-test" "{}" >"$OUT" 2>&1 || lab_fail "gdbus: SignChallenge failed: $(cat "$OUT")"
"$LAB_PYTHON" "$ANSWER_PY" gdbus "$OUT" "$LAB_TMPDIR/g" || lab_fail "cannot read gdbus's answer: $(cat "$OUT")"
err=$(verify "$LAB_TMPDIR/g" "$EST_CA" "$NONCE" gdbus-test) || lab_fail "gdbus: $err"
out=$(sign_py root "$NONCE" python.test) || lab_fail "python3-dbus (root): $out"
out=$(sign_py fleetid-test-attest "$NONCE" python.test) || lab_fail "python3-dbus (attest): $out"
fleetid_expect_eq "$out" "ok ecdsa-with-SHA256" "python3-dbus as the attest user"
sign_py root "$NONCE" python.test >/dev/null
err=$(verify "$LAB_TMPDIR/py" "$EST_CA" "$NONCE" python.test) || lab_fail "python3-dbus: $err"
echo "   gdbus and python3-dbus answers verify"

step "identity=birth: attest-birth signs with the birth key (chain to the manufacturer CA)"
sign_busctl fleetid-test-birth "$NONCE" device.attest 1 identity s birth ||
    lab_fail "birth: SignChallenge failed: $(cat "$OUT")"
answer_files "$LAB_TMPDIR/b"
err=$(verify "$LAB_TMPDIR/b" "$MFG_CA" "$NONCE" device.attest) || lab_fail "birth: $err"
cmp -s <(openssl x509 -in "$LAB_TMPDIR/b.chain.pem" -outform DER) <(openssl x509 -in "$LAB_TMPDIR/idevid.pem" -outform DER) ||
    lab_fail "the birth chain's leaf is not the IDevID"
verify "$LAB_TMPDIR/b" "$EST_CA" "$NONCE" device.attest >/dev/null && lab_fail "the birth chain leads to the EST CA"
# identity=operational is the default, said explicitly
sign_busctl fleetid-test-attest "$NONCE" device.attest 1 identity s operational ||
    lab_fail "identity=operational: $(cat "$OUT")"
echo "   the IDevID chain, verified"

step "refusals: attest asking for birth, reader, no grant"
ATTEST_UID=$(id -u fleetid-test-attest)
expect_error "attest asking for the birth key" org.freedesktop.DBus.Error.AccessDenied \
    "SignChallenge with identity=birth needs the role 'attest-birth', which uid $ATTEST_UID does not hold" \
    fleetid-test-attest "$NONCE" device.attest '{"identity": "birth"}'
fleetid_expect_grep "$FLEETIDD_LOG" "refused SignChallenge with identity=birth to uid $ATTEST_UID: it needs the role 'attest-birth'" \
    "the birth refusal logged as the filter logs"
expect_error "reader" org.freedesktop.DBus.Error.AccessDenied "SignChallenge needs the role 'attest'" \
    fleetid-test-reader "$NONCE" x
expect_error "no grant" org.freedesktop.DBus.Error.AccessDenied "SignChallenge needs the role 'attest'" \
    fleetid-test-nogrant "$NONCE" x
expect_error "no grant, birth" org.freedesktop.DBus.Error.AccessDenied "SignChallenge needs the role 'attest'" \
    fleetid-test-nogrant "$NONCE" x '{"identity": "birth"}'

step "bad input: InvalidArgs naming what was wrong"
IA=org.freedesktop.DBus.Error.InvalidArgs
expect_error "a nonce of 15 bytes" $IA "the nonce is 15 bytes; it must be 16 to 64" root "$(printf '%030d' 0)" x
expect_error "a nonce of 65 bytes" $IA "the nonce is 65 bytes; it must be 16 to 64" root "$(printf '%0130d' 0)" x
expect_error "an empty purpose" $IA "the purpose is empty" root "$NONCE" ""
expect_error "a purpose of 65 characters" $IA "the purpose is longer than 64" root "$NONCE" "$(printf 'a%.0s' $(seq 65))"
expect_error "an uppercase purpose" $IA "the purpose has the character 0x4c at offset 0" root "$NONCE" "Login"
expect_error "a purpose with /" $IA "the purpose has the character 0x2f at offset 1" root "$NONCE" "a/b"
expect_error "the sensor evidence purpose" $IA "the purpose prefix 'sensor-spki.' is reserved for sensors' evidence" \
    root "$NONCE" "sensor-spki.aaaa"
expect_error "an unknown option" $IA "unknown option 'hash'" root "$NONCE" x '{"hash": "sha1"}'
expect_error "identity=foo" $IA "the option 'identity' is 'foo'; it must be 'operational'" root "$NONCE" x '{"identity": "foo"}'
expect_error "identity of type i" $IA "the option 'identity' must be a string \(s\), not 'i'" root "$NONCE" x \
    '{"identity": dbus.Int32(1)}'
# Valid edges pass: 16 and 64 bytes, 64 characters.
sign_busctl root "$(printf '%032d' 0)" "$(printf 'a%.0s' $(seq 64))" || lab_fail "16-byte nonce, 64-character purpose: $(cat "$OUT")"
sign_busctl root "$(printf '%0128d' 0)" "a.b_c-9" || lab_fail "64-byte nonce: $(cat "$OUT")"

step "the loop stays responsive: signer stopped, 64 calls queued, GetTrustBundle answered, more get Busy"
sign_busctl root "$NONCE" burst >/dev/null || lab_fail "SignChallenge failed: $(cat "$OUT")"
SPID=$(signer_pid)
[ -n "$SPID" ] || lab_fail "no signing process after a call"
kill -STOP "$SPID"
mkdir -p "$LAB_TMPDIR/burst"
sign_bg() { # I: a call in the background, its outcome in burst/I.ok or .err
    OUT=$LAB_TMPDIR/burst/$1.out
    if sign_busctl root "$NONCE" "burst.$1"; then mv "$OUT" "$LAB_TMPDIR/burst/$1.ok"; else mv "$OUT" "$LAB_TMPDIR/burst/$1.err"; fi
}
BURST_PIDS=()
for i in $(seq 70); do
    sign_bg "$i" &
    BURST_PIDS+=($!)
done
# 64 calls queued for the stopped signer: the other 6 are answered Busy at once.
_busy6() { [ "$(cat "$LAB_TMPDIR"/burst/*.err 2>/dev/null | grep -c "calls are in flight" || true)" -ge 6 ]; }
lab_wait_until 60 "6 of 70 calls to get Busy" _busy6 ||
    lab_fail "no Busy with the signer stopped: $(cat "$LAB_TMPDIR"/burst/*.err 2>/dev/null | head -n 3)"
grep -q "64 calls are in flight" "$LAB_TMPDIR"/burst/*.err || lab_fail "Busy's message: $(cat "$LAB_TMPDIR"/burst/*.err | head -n 2)"
busctl --address="$ADDR" --timeout=10 call "$NAME" "$OBJ" "$NAME" GetTrustBundle >/dev/null ||
    lab_fail "GetTrustBundle not answered while SignChallenge calls are queued"
ls "$LAB_TMPDIR/burst/" | grep -q '\.ok$' && lab_fail "a call was signed with the signer stopped"
kill -CONT "$SPID"
for p in "${BURST_PIDS[@]}"; do wait "$p" || true; done
oks=$(ls "$LAB_TMPDIR/burst/" | grep -c '\.ok$' || true)
[ "$oks" -eq 64 ] || lab_fail "$oks of the 64 queued calls were signed: $(cat "$LAB_TMPDIR"/burst/*.err 2>/dev/null | head -n 3)"
# 64 calls queued at once: each answer must carry its own call's signature
# (the purpose names the call), not a neighbour's. Four of them,
# spread over the burst, are verified (each verification costs ~0.3 s).
for ok in $(ls "$LAB_TMPDIR/burst/" | grep '\.ok$' | sed -n '1p;21p;42p;64p'); do
    OUT=$LAB_TMPDIR/burst/$ok answer_files "$LAB_TMPDIR/burst.v"
    err=$(verify "$LAB_TMPDIR/burst.v" "$EST_CA" "$NONCE" "burst.${ok%.ok}") || lab_fail "queued call ${ok%.ok}: $err"
done
OUT=$LAB_TMPDIR/call.out
echo "   GetTrustBundle answered with 64 calls queued, the 65th Busy; all 64 signed after SIGCONT, 4 verified"

step "the signer killed with calls in flight: they fail naming it, the next call works"
SPID=$(signer_pid)
kill -STOP "$SPID"
OUT=$LAB_TMPDIR/inflight.out sign_busctl root "$NONCE" inflight &
INFLIGHT=$!
sleep 0.5 # the call reaches fleetidd (no event to wait for: the signer is stopped)
kill -KILL "$SPID"
wait "$INFLIGHT" && lab_fail "the call in flight was answered by a killed signer"
grep -q "the signing process was killed by signal 9 before it answered" "$LAB_TMPDIR/inflight.out" || lab_fail "the call in flight: $(cat "$LAB_TMPDIR/inflight.out")"
sign_busctl root "$NONCE" after.kill || lab_fail "the call after the kill: $(cat "$OUT")"
answer_files "$LAB_TMPDIR/k"
err=$(verify "$LAB_TMPDIR/k" "$EST_CA" "$NONCE" after.kill) || lab_fail "after the kill: $err"
[ "$(signer_pid)" != "$SPID" ] || lab_fail "the same signer pid $SPID after SIGKILL"
echo "   in flight: $(cat "$LAB_TMPDIR/inflight.out")"

step "tpm2-abrmd restarted: the signer connects again, the next call is signed"
sign_busctl root "$NONCE" before.abrmd || lab_fail "$(cat "$OUT")"
SPID=$(signer_pid)
tpm_env_restart_abrmd
sign_busctl root "$NONCE" after.abrmd || lab_fail "the call after tpm2-abrmd restarted: $(cat "$OUT")"
answer_files "$LAB_TMPDIR/m"
err=$(verify "$LAB_TMPDIR/m" "$EST_CA" "$NONCE" after.abrmd) || lab_fail "after the tpm2-abrmd restart: $err"
fleetid_expect_eq "$(signer_pid)" "$SPID" "the signer after the restart (the same process, a new connection)"
echo "   signed through the new tpm2-abrmd by the same signer (pid $SPID)"

step "the TPM gone: TpmUnavailable; back when it is"
tpm_env_kill_swtpm
expect_error "swtpm killed" org.fleetid.Agent1.Error.TpmUnavailable "TPM unavailable" root "$NONCE" tpm.down
tpm_env_start_swtpm
_signs() { sign_busctl root "$NONCE" tpm.back; }
lab_wait_until 30 "SignChallenge to work again after swtpm restarted" _signs || lab_fail "no signature after swtpm came back: $(cat "$OUT")"
answer_files "$LAB_TMPDIR/t"
err=$(verify "$LAB_TMPDIR/t" "$EST_CA" "$NONCE" tpm.back) || lab_fail "after the TPM restart: $err"
echo "   TpmUnavailable, then signed again"

step "fleetidctl sign-challenge"
"$FLEETIDCTL" --config "$FLEETID_CONF" sign-challenge --nonce "$NONCE" --purpose cli.test --out "$LAB_TMPDIR/cli.chain.pem" \
    >"$LAB_TMPDIR/cli.out" 2>&1 || lab_fail "fleetidctl sign-challenge failed: $(cat "$LAB_TMPDIR/cli.out")"
sed -n 's/^signature: //p' "$LAB_TMPDIR/cli.out" | base64 -d >"$LAB_TMPDIR/cli.sig"
sed -n 's/^algorithm: //p' "$LAB_TMPDIR/cli.out" >"$LAB_TMPDIR/cli.alg"
err=$(verify "$LAB_TMPDIR/cli" "$EST_CA" "$NONCE" cli.test) || lab_fail "fleetidctl: $err"
"$FLEETIDCTL" --config "$FLEETID_CONF" sign-challenge --nonce "$NONCE" --purpose cli.test --birth \
    >"$LAB_TMPDIR/clib.out" 2>&1 || lab_fail "fleetidctl sign-challenge --birth failed: $(cat "$LAB_TMPDIR/clib.out")"
sed -n 's/^signature: //p' "$LAB_TMPDIR/clib.out" | base64 -d >"$LAB_TMPDIR/clib.sig"
sed -n 's/^algorithm: //p' "$LAB_TMPDIR/clib.out" >"$LAB_TMPDIR/clib.alg"
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$LAB_TMPDIR/clib.out" >"$LAB_TMPDIR/clib.chain.pem"
err=$(verify "$LAB_TMPDIR/clib" "$MFG_CA" "$NONCE" cli.test) || lab_fail "fleetidctl --birth: $err"
out=$("$FLEETIDCTL" --config "$FLEETID_CONF" sign-challenge --nonce 0011 --purpose cli.test 2>&1) &&
    lab_fail "fleetidctl signed a 2-byte nonce: $out"
grep -q "the nonce is 2 bytes" <<<"$out" || lab_fail "fleetidctl, short nonce: $out"
out=$("$FLEETIDCTL" --config "$FLEETID_CONF" sign-challenge --nonce xyz --purpose cli.test 2>&1) &&
    lab_fail "fleetidctl took a nonce that is not hex: $out"
echo "   signature and chain (--out, PEM on stdout for --birth) verify"

step "a renewal: the next call signs with the new key and returns its chain"
sign_busctl root "$NONCE" before.renew || lab_fail "$(cat "$OUT")"
old_serial=$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial)
kill -USR1 "$FLEETIDD_PID"
_renewed() { [ "$(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -serial)" != "$old_serial" ] && grep -q "state: renewing -> enrolled" "$FLEETIDD_LOG"; }
lab_wait_until 90 "the renewal" _renewed
sign_busctl root "$NONCE" after.renew || lab_fail "after the renewal: $(cat "$OUT")"
answer_files "$LAB_TMPDIR/r"
cmp -s <(openssl x509 -in "$LAB_TMPDIR/r.chain.pem" -outform DER) <(openssl x509 -in "$FLEETID_STATE/operational.pem" -outform DER) ||
    lab_fail "after the renewal the chain is not the new certificate"
err=$(verify "$LAB_TMPDIR/r" "$EST_CA" "$NONCE" after.renew) || lab_fail "after the renewal: $err"
echo "   the new certificate's chain, and its key signed"

step "the rate limit: RateLimited"
_lab_kill "$FLEETIDD_PID" fleetidd
printf '%s\n' "${CONF_BASE//sign_burst = 10000; sign_per_minute = 60000; signer_idle = 3600;/sign_burst = 2; sign_per_minute = 1; signer_idle = 2;}" >"$FLEETID_CONF"
start_daemon
# Not the status file (the last daemon's): this one's Enrolled property.
_enrolled_prop() { [ "$(busctl --address="$ADDR" get-property "$NAME" "$OBJ" "$NAME" Enrolled 2>&1)" = "b true" ]; }
lab_wait_until 60 "the restarted fleetidd to hold its certificate" _enrolled_prop
sign_busctl fleetid-test-attest "$NONCE" rate.1 || lab_fail "rate 1: $(cat "$OUT")"
sign_busctl fleetid-test-attest "$NONCE" rate.2 || lab_fail "rate 2: $(cat "$OUT")"
expect_error "a third call in the burst of 2" org.fleetid.Agent1.Error.RateLimited "over its rate limit for 'sign' calls" \
    fleetid-test-attest "$NONCE" rate.3
# Another uid has its own bucket.
sign_busctl fleetid-test-birth "$NONCE" rate.other || lab_fail "another uid: $(cat "$OUT")"

step "the signer exits when idle (access.signer_idle = 2)"
SPID=$(signer_pid)
[ -n "$SPID" ] || lab_fail "no signer right after a call"
_idle_gone() { [ -z "$(signer_pid)" ]; }
lab_wait_until 40 "the idle signer (pid $SPID) to exit" _idle_gone
sign_busctl fleetid-test-birth "$NONCE" after.idle || lab_fail "the call after the idle exit: $(cat "$OUT")"
[ -n "$(signer_pid)" ] && [ "$(signer_pid)" != "$SPID" ] || lab_fail "no new signer for the call after the idle exit"
echo "   gone after the idle time; the next call starts a new one"

step "not enrolled: NotEnrolled (the birth key still signs)"
_lab_kill "$FLEETIDD_PID" fleetidd
printf '%s\n' "$CONF_BASE" >"$FLEETID_CONF"
rm -f "$FLEETID_STATE/operational.pem"
est_control '{"faults": [{"match": "*", "status": 503}]}'
start_daemon
expect_error "no operational certificate" org.fleetid.Agent1.Error.NotEnrolled "no operational certificate in force" \
    fleetid-test-attest "$NONCE" not.enrolled
out=$(sign_py fleetid-test-birth "$NONCE" birth.only '{"identity": "birth"}') || lab_fail "birth while not enrolled: $out"
est_control ''

step "SIGTERM stops the signer with the daemon"
SPID=$(signer_pid)
[ -n "$SPID" ] || lab_fail "no signer after the birth call"
fleetid_stop_daemon_bounded 10
_lab_alive "$SPID" && lab_fail "the signer (pid $SPID) outlived fleetidd"
fleetid_expect_eq "$FLEETIDD_EXIT" 0 "fleetidd's exit status after SIGTERM"
grep -q "Sanitizer" "$FLEETIDD_LOG" && lab_fail "a sanitizer report in the daemon's log: $(grep -m1 -A5 Sanitizer "$FLEETIDD_LOG")"
echo "PASS: test-dbus-sign"
