#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-http-status.sh: what fleetidd does with the EST server's HTTP answers
# to /simpleenroll other than 200: 503 and 500 fail with the server's own
# text; 401 fails with "no HTTP Basic configured" unless Basic is configured,
# in which case the challenge is answered and enrollment succeeds; a
# world-readable password file is refused naming its mode; a server slower
# than est.timeout gives a timeout error; 202 (Retry-After in seconds or as an
# HTTP-date) is retried when the server asked, in daemon mode. Every failure
# stores no operational certificate.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
OPERATIONAL=$LAB_TMPDIR/state/operational.pem

# config_est [EXTRA est SETTINGS] [OTHER LINES...]: $FLEETID_CONF with a full
# est group for the running EST server.
config_est() {
    local extra=$1
    shift
    FLEETID_CONF_NO_EST=1 fleetid_write_config \
        "est: { url = \"$EST_URL\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; $extra };" "$@"
}

config_est "timeout = 20;"

echo "== 503 with a text"
est_control '{"faults": [{"match": "simpleenroll", "status": 503, "body": "maintenance window until 04:00 (lab)"}]}'
fleetid_expect_oneshot_failure "503" "busy \(HTTP 503\): maintenance window until 04:00 \(lab\)"

echo "== 500 with a text"
est_control '{"faults": [{"match": "simpleenroll", "status": 500, "body": "CA backend unreachable (lab)"}]}'
fleetid_expect_oneshot_failure "500" "HTTP 500: CA backend unreachable \(lab\)"

echo "== 401 without HTTP Basic configured"
est_control '{"faults": [{"match": "simpleenroll", "status": 401, "body": "who are you (lab)"}]}'
fleetid_expect_oneshot_failure "401" "not authorized \(HTTP 401, no HTTP Basic configured\): who are you \(lab\)"
[ "$(est_log_count op=simpleenroll status=401)" -eq 1 ] ||
    lab_fail "401 without Basic: expected exactly 1 /simpleenroll answered 401 (no second try)"

echo "== server slower than est.timeout"
config_est "timeout = 2;"
est_control '{"faults": [{"match": "simpleenroll", "delay": 5}]}'
n0=$(est_log_count op=simpleenroll)
fleetid_expect_oneshot_failure "timeout" "[Tt]ime(d)? ?out"
# The server logs the request once its delay is over.
simpleenroll_logged() { [ "$(est_log_count op=simpleenroll)" -eq "$1" ]; }
lab_wait_until 10 "the delayed /simpleenroll in the EST log" simpleenroll_logged $((n0 + 1)) ||
    lab_fail "timeout: the request never reached the EST server"
est_control ''

echo "== 202 with Retry-After in seconds, then as an HTTP-date (daemon)"
config_est "timeout = 20;" 'retry: { initial = 1; max = 10; };'
when=$(LC_ALL=C date -u -d "+8 seconds" '+%a, %d %b %Y %H:%M:%S GMT')
est_control "{\"faults\": [
    {\"match\": \"simpleenroll\", \"status\": 202, \"retry_after\": \"2\", \"count\": 1},
    {\"match\": \"simpleenroll\", \"status\": 202, \"retry_after\": \"$when\", \"count\": 1}]}"
n0=$(est_log_count op=simpleenroll)
fleetid_daemon_start
fleetid_wait_state 40 enrolled || lab_fail "fleetidd did not enroll within 40 s after two 202 answers"
fleetid_expect_grep "$FLEETIDD_LOG" "HTTP 202.*\(attempt 1\); retrying in 2s as the server asked" \
    "202 with Retry-After: 2"
fleetid_expect_grep "$FLEETIDD_LOG" "HTTP 202.*\(attempt 2\); retrying in [1-9]s as the server asked" \
    "202 with Retry-After: $when"
n=$(est_log_count op=simpleenroll)
[ $((n - n0)) -eq 3 ] || lab_fail "202 twice: expected 3 /simpleenroll (202, 202, 200), got $((n - n0))"
# Never earlier than the server asked (lower bounds only: the EST log stamps
# an answer before sending it, so the real gaps are longer).
"$LAB_PYTHON" - "$EST_LOG" "$(date -u -d "$when" +%s)" <<'EOF'
import datetime, json, sys
when = int(sys.argv[2])
reqs = []
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    if r["event"] == "request":
        t = datetime.datetime.fromisoformat(r["time"].rstrip("Z"))
        reqs.append((t.replace(tzinfo=datetime.timezone.utc).timestamp(), r))
i202 = [i for i, (_, r) in enumerate(reqs) if r.get("op") == "simpleenroll" and r["status"] == 202]
gap = reqs[i202[0] + 1][0] - reqs[i202[0]][0]
if gap < 1.95:
    sys.exit("FAIL: fleetidd came back %.2f s after 'Retry-After: 2'" % gap)
early = when - reqs[i202[1] + 1][0]
if early > 1:
    sys.exit("FAIL: fleetidd came back %.2f s before the Retry-After date" % early)
EOF
[ -s "$OPERATIONAL" ] || lab_fail "enrolled after 202 but $OPERATIONAL is missing"
_lab_kill "$FLEETIDD_PID" fleetidd

echo "== 401 answered with HTTP Basic"
PASSWORD_FILE=$LAB_TMPDIR/est-password
(umask 077 && printf 'lab-secret-%s\n' "$RANDOM$RANDOM" >"$PASSWORD_FILE")
est_env_stop
est_env_start "$LAB_TMPDIR" --basic-user u --basic-password-file "$PASSWORD_FILE"
rm -rf "$LAB_TMPDIR/state"
config_est "timeout = 20; username = \"u\"; password_file = \"$PASSWORD_FILE\";"
est_control '{"faults": [{"match": "simpleenroll", "status": 401, "count": 1}]}'
fleetid_enroll_once || lab_fail "fleetidd --oneshot did not enroll after a 401 with HTTP Basic configured"
[ -s "$OPERATIONAL" ] || lab_fail "enrolled after 401 + Basic but $OPERATIONAL is missing"
[ "$(est_log_count op=simpleenroll status=401)" -eq 1 ] && [ "$(est_log_count op=simpleenroll status=200)" -eq 1 ] ||
    lab_fail "401 + Basic: expected one /simpleenroll answered 401, then one answered 200"

echo "== a world-readable password file is refused"
rm -rf "$LAB_TMPDIR/state"
chmod 0644 "$PASSWORD_FILE"
est_control '{"faults": [{"match": "simpleenroll", "status": 401, "count": 1}]}'
rc=0
fleetid_enroll_once || rc=$?
[ "$rc" -ne 0 ] || lab_fail "fleetidd enrolled with a password file of mode 0644"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "password file $PASSWORD_FILE .*mode 0644" \
    "refusal of a mode 0644 password file"
[ ! -e "$OPERATIONAL" ] || lab_fail "$OPERATIONAL was stored with a mode 0644 password file"

echo "== a password file reached through a symbolic link is refused"
# The mode is checked on the file that is read (one open, O_NOFOLLOW): a link to
# a private file cannot pass the check for a file that is then swapped.
chmod 0600 "$PASSWORD_FILE"
ln -sf "$PASSWORD_FILE" "$LAB_TMPDIR/est-password-link"
config_est "timeout = 20; username = \"u\"; password_file = \"$LAB_TMPDIR/est-password-link\";"
est_control '{"faults": [{"match": "simpleenroll", "status": 401, "count": 1}]}'
rc=0
fleetid_enroll_once || rc=$?
[ "$rc" -ne 0 ] || lab_fail "fleetidd enrolled with a password file behind a symbolic link"
fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "password file $LAB_TMPDIR/est-password-link: it is a symbolic link" \
    "refusal of a password file behind a symbolic link"
[ ! -e "$OPERATIONAL" ] || lab_fail "$OPERATIONAL was stored with a password file behind a symbolic link"

echo "PASS"
