#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-dbus-factory-reset.sh: FactoryReset(a{sv}) of org.fleetid.Agent1
# (docs/dbus-api.md, docs/factory-reset.md) on a private dbus-daemon
# configured like the system bus (tests/lib/agent-bus.sh), with two lab EST
# owners:
#   - it needs the role admin: AccessDenied for a reader;
#   - an unknown option, or two owner files in the drop-in directory, are
#     refused and nothing changes (the certificate stays);
#   - with owner B's file in the drop-in directory (placed as an installer
#     would; fleetidd cannot write /etc), root's FactoryReset returns a job of
#     kind factory-reset that ends done, its result the new operational.pem,
#     from B's CA; the marker is gone and owner A saw no request after. It is
#     asked while a Renew() job's renewal is held by A's server (a delay):
#     that job ends canceled (GetResult: Canceled, saying a factory reset
#     stopped it), and A's late answer is not stored.
# Needs root; skipped (77) otherwise.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/lib/agent-bus.sh
. "$SRCDIR/tests/lib/agent-bus.sh"
agent_bus_require busctl gdbus
agent_bus_namespace "$0" fleetid-test-admin fleetid-test-reader

# ---- inside the namespace ----
# shellcheck source=tests/lib/fleetid.sh
. "$SRCDIR/tests/lib/fleetid.sh"

step() { echo "== $*"; }
JOB_IFACE=org.fleetid.Agent1.Job

fleetid_lab_up
fleetid_provision
cat >"$LAB_TMPDIR/access.conf" <<'EOT'
grants = (
        { user = "fleetid-test-admin"; roles = [ "admin" ]; },
        { user = "fleetid-test-reader"; roles = [ "reader" ]; }
);
EOT
chmod 0644 "$LAB_TMPDIR/access.conf"
fleetid_write_config "access: { file = \"$LAB_TMPDIR/access.conf\"; };"
fleetid_second_est B
agent_bus_start
fleetid_daemon_start
fleetid_wait_state 90 enrolled
_serving() { grep -q "D-Bus: serving $AGENT_NAME" "$FLEETIDD_LOG"; }
lab_wait_until 30 "fleetidd to own $AGENT_NAME" _serving
PEM=$FLEETID_STATE/operational.pem
serial0=$(openssl x509 -in "$PEM" -noout -serial)

_job_state_is() { # PATH STATE
    agent_busctl root get-property "$AGENT_NAME" "$1" "$JOB_IFACE" State || return 1
    LAB_WAIT_SEEN=$(cat "$AGENT_OUT")
    [ "$LAB_WAIT_SEEN" = "s \"$2\"" ]
}

step "FactoryReset needs the role admin"
agent_expect_error fleetid-test-reader "org.freedesktop.DBus.Error.AccessDenied: .*FactoryReset needs the role 'admin'" \
    FactoryReset call --dest "$AGENT_NAME" --object-path "$AGENT_OBJ" --method "$AGENT_NAME.FactoryReset" '{}'

step "an unknown option, two owner files: refused, nothing changes"
agent_expect_error root "InvalidArgs: .*unknown option 'owner'" "FactoryReset with an unknown option" \
    call --dest "$AGENT_NAME" --object-path "$AGENT_OBJ" --method "$AGENT_NAME.FactoryReset" "{'owner': <'x'>}"
mkdir -p "$FLEETID_CONF.d"
printf 'est: { url = "%s"; trust_anchors = "%s"; };\n' "$B_URL" "$B_PKI/est-ca.pem" >"$FLEETID_CONF.d/owner.conf"
cp "$FLEETID_CONF.d/owner.conf" "$FLEETID_CONF.d/other.conf"
agent_expect_error root "Failed: .*holds 2 owner files" "FactoryReset with two owner files" \
    call --dest "$AGENT_NAME" --object-path "$AGENT_OBJ" --method "$AGENT_NAME.FactoryReset" '{}'
rm "$FLEETID_CONF.d/other.conf"
[ ! -e "$FLEETID_STATE/factory-reset" ] || lab_fail "a refused FactoryReset left a marker"
fleetid_expect_eq "$(openssl x509 -in "$PEM" -noout -serial)" "$serial0" "the certificate after refused calls"

step "a renewal (Renew) held by owner A's server"
est_control '{"faults": [{"match": "simplereenroll", "delay": 8}]}'
agent_busctl root call "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" Renew || lab_fail "Renew failed: $(cat "$AGENT_OUT")"
RJOB=$(sed -n 's/^o "\(.*\)"$/\1/p' "$AGENT_OUT")
[ -n "$RJOB" ] || lab_fail "Renew returned no job: $(cat "$AGENT_OUT")"
_held() { [ "$(est_log_count event=delay op=simplereenroll)" -ge 1 ]; }
lab_wait_until 30 "A's server to hold the renewal" _held || lab_fail "the renewal did not reach A's server"

step "root's FactoryReset with owner B in the drop-in directory, during the renewal: a job, done with B's certificate"
a_before=$(fleetid_requests_in "$EST_LOG")
agent_busctl root call "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" FactoryReset 'a{sv}' 1 enroll b true ||
    lab_fail "FactoryReset failed: $(cat "$AGENT_OUT")"
JOB=$(sed -n 's/^o "\(.*\)"$/\1/p' "$AGENT_OUT")
[ -n "$JOB" ] || lab_fail "FactoryReset returned no job: $(cat "$AGENT_OUT")"
agent_busctl root get-property "$AGENT_NAME" "$JOB" "$JOB_IFACE" Kind
fleetid_expect_eq "$(cat "$AGENT_OUT")" 's "factory-reset"' "the job's kind"
LAB_WAIT_PATHS=$LAB_TMPDIR lab_wait_until 90 "job $JOB to be done" _job_state_is "$JOB" done
agent_busctl root --json=short call "$AGENT_NAME" "$JOB" "$JOB_IFACE" GetResult ||
    lab_fail "GetResult: $(cat "$AGENT_OUT")"
aay_json_hex "$AGENT_OUT" >"$LAB_TMPDIR/result"
pem_der_hex "$PEM" >"$LAB_TMPDIR/want"
cmp -s "$LAB_TMPDIR/want" "$LAB_TMPDIR/result" || lab_fail "the job's result differs from operational.pem"
openssl verify -CAfile "$B_PKI/est-ca.pem" "$PEM" >/dev/null || lab_fail "the certificate is not from B's CA"
[ ! -e "$FLEETID_STATE/factory-reset" ] || lab_fail "the marker stayed"
_job_state_is "$RJOB" canceled || lab_fail "the renewal job is not canceled: $LAB_WAIT_SEEN"
agent_expect_error root "org.fleetid.Agent1.Error.Canceled: a factory reset was asked for while this renewal ran" \
    "GetResult of the renewal job" call --dest "$AGENT_NAME" --object-path "$RJOB" --method "$JOB_IFACE.GetResult"
_answered() { [ "$(est_log_count op=simplereenroll)" -ge 1 ]; }
lab_wait_until 40 "A's server to answer the held renewal" _answered || lab_fail "A never answered the renewal"
openssl verify -CAfile "$B_PKI/est-ca.pem" "$PEM" >/dev/null || lab_fail "A's late answer replaced B's certificate"
fleetid_expect_eq "$(fleetid_requests_in "$EST_LOG")" "$((a_before + 1))" \
    "requests to the old owner A after the reset (the held renewal only)"
fleetid_expect_grep "$FLEETIDD_LOG" "factory reset asked by uid 0 over D-Bus" "the daemon's log"
echo "PASS"
