#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# dbus-calls.sh: how many GetCertificateChain() calls fleetidd answers a
# second, from one client on one connection, and their latency while an EST
# request is stalled; beside what the same client does against a server that
# does nothing (the ratio is the honest number: the client and dbus-daemon
# cost their share).
#
# On a private dbus-daemon configured like the system bus
# (tests/lib/agent-bus.sh), fleetidd enrolled against the lab EST server;
# tests/bench/dbus-calls (C, sd-bus) calls one after the other for
# BENCH_SECONDS (default 5) each:
#   E  the echo server (dbus-calls echo): GetCertificateChain() -> aay of a
#      fixed 700-byte blob, nothing else
#   F  fleetidd: GetCertificateChain() as root (access check, the chain)
#   B  optional, with BENCH_BASELINE_BUILD=DIR: fleetidd built in DIR (e.g.
#      the commit before the credentials cache), the same calls
#   S  fleetidd while a renewal is stalled: the lab server holds
#      /simplereenroll for 60 s (fault "delay"), Renew() started it; the
#      calls run meanwhile (p99 is the number of interest)
# E, F (and B) run BENCH_ROUNDS times (default 3), interleaved; S once.
# No timing is asserted: the exit status says whether every run worked.
#
#   BENCH_SECONDS, BENCH_ROUNDS, BENCH_BASELINE_BUILD   see above
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/dbus-calls.md (the table) and dbus-calls.txt (every run).
# Needs root (fleetidd owns its name on the system-like bus as root, as in
# the tests). Exit status: 0 done, 1 a run failed, 77 skipped.

set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root: fleetidd owns org.fleetid.Agent1 on the test bus as root"
    exit 77
fi
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
# shellcheck source=tests/lib/agent-bus.sh
. "$_bench_src/tests/lib/agent-bus.sh"

SECS=${BENCH_SECONDS:-5}
[[ $SECS =~ ^[0-9]{1,3}$ ]] && [ "$SECS" -ge 1 ] && [ "$SECS" -le 60 ] || lab_fail "BENCH_SECONDS must be 1..60"
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
bench_rounds
CALLS=$FLEETID_BUILD_DIR/tests/bench/dbus-calls
[ -x "$CALLS" ] || lab_fail "$CALLS is not built (meson setup with -Dtests=true)"
ECHO_NAME=org.fleetid.BenchEcho

bench_out_dir
fleetid_lab_up
fleetid_provision "SN-BENCH-$RANDOM"
fleetid_write_config
AGENT_BUS_EXTRA_CONF="<policy user=\"root\"><allow own=\"$ECHO_NAME\"/></policy>
<policy context=\"default\"><allow send_destination=\"$ECHO_NAME\"/></policy>" agent_bus_start

_serving() { grep -q "D-Bus: serving $AGENT_NAME" "$FLEETIDD_LOG"; }
# daemon_up [FLEETIDD]: fleetidd (this build's, or the one given) enrolled and on the bus.
daemon_up() {
    local keep=$FLEETIDD
    FLEETIDD=${1:-$FLEETIDD}
    fleetid_daemon_start
    FLEETIDD=$keep
    fleetid_wait_state 90 enrolled
    lab_wait_until 30 "fleetidd to own $AGENT_NAME" _serving
}
daemon_down() {
    fleetid_stop_daemon_bounded 60
}

RAW=$BENCH_OUT/dbus-calls.txt
: >"$RAW"
# calls VARIANT ROUND DEST INTERFACE: one run, its line appended to $RAW.
calls() {
    local out
    out=$("$CALLS" call "$AGENT_BUS_ADDR" "$3" "$AGENT_OBJ" "$4" GetCertificateChain "$SECS") ||
        lab_fail "variant $1: dbus-calls failed: $out"
    echo "$1 $2 $out" >>"$RAW"
    lab_log "$1 round $2: $out"
}

ECHO_PID=
echo_up() {
    "$CALLS" echo "$AGENT_BUS_ADDR" "$ECHO_NAME" 3600 >"$LAB_TMPDIR/echo.out" 2>&1 &
    ECHO_PID=$!
    lab_on_exit "_lab_kill $ECHO_PID dbus-calls"
    _owned() { grep -q '^owned$' "$LAB_TMPDIR/echo.out"; }
    lab_wait_until 10 "the echo server to own $ECHO_NAME" _owned
}

CURRENT=F
measure() { # ROUND VARIANT
    case $2 in
    E) calls E "$1" "$ECHO_NAME" "$ECHO_NAME" ;;
    F | B)
        if [ "$CURRENT" != "$2" ]; then
            daemon_down
            if [ "$2" = B ]; then daemon_up "$BENCH_BASELINE_BUILD/agent/fleetidd/fleetidd"; else daemon_up; fi
            CURRENT=$2
        fi
        calls "$2" "$1" "$AGENT_NAME" "$AGENT_NAME"
        ;;
    esac
}

echo_up
daemon_up
VARIANTS=(E F)
if [ -n "${BENCH_BASELINE_BUILD:-}" ]; then
    [ -x "$BENCH_BASELINE_BUILD/agent/fleetidd/fleetidd" ] ||
        lab_fail "BENCH_BASELINE_BUILD: no agent/fleetidd/fleetidd in $BENCH_BASELINE_BUILD"
    VARIANTS+=(B)
fi
bench_interleave "$ROUNDS" "${VARIANTS[@]}"

# S: this build, a renewal held by the server.
if [ "$CURRENT" != F ]; then
    daemon_down
    daemon_up
fi
held_before=$(est_log_count event=delay op=simplereenroll)
est_control '{"faults": [{"match": "simplereenroll", "delay": 60, "count": 1}]}'
busctl --address="$AGENT_BUS_ADDR" call "$AGENT_NAME" "$AGENT_OBJ" "$AGENT_NAME" Renew >/dev/null ||
    lab_fail "Renew failed"
_held() { [ "$(est_log_count event=delay op=simplereenroll)" -gt "$held_before" ]; }
lab_wait_until 60 "the EST server to hold the renewal" _held
calls S 1 "$AGENT_NAME" "$AGENT_NAME"
est_control ''
daemon_down

{
    echo "Run: $(bench_machine_note); one client, one connection, calls one after the other for ${SECS} s" \
        "per run; E, F$([ -n "${BENCH_BASELINE_BUILD:-}" ] && echo ", B") $ROUNDS rounds interleaved (median of the rounds), S once."
    echo
    echo "| variant | calls/s | p50 µs | p99 µs | max µs | calls/s vs E |"
    echo "|---|---|---|---|---|---|"
    "$LAB_PYTHON" - "$RAW" <<'PY'
import statistics, sys
names = {"E": "E echo server (does nothing)", "F": "F fleetidd GetCertificateChain",
         "B": "B baseline fleetidd (BENCH_BASELINE_BUILD)",
         "S": "S fleetidd GetCertificateChain, renewal stalled at the EST server"}
runs = {}
for line in open(sys.argv[1], encoding="utf-8"):
    w = line.split()
    kv = dict(zip(w[2::2], w[3::2]))
    if w[1] != "0":
        runs.setdefault(w[0], []).append(kv)
def med(v, k):
    return statistics.median(float(r[k]) for r in runs[v])
echo = med("E", "per_second") if "E" in runs else float("nan")
for v in "EFBS":
    if v in runs:
        print("| %s | %.0f | %.0f | %.0f | %.0f | %.2f |" % (names[v], med(v, "per_second"), med(v, "p50_us"),
              med(v, "p99_us"), med(v, "max_us"), med(v, "per_second") / echo))
PY
} >"$BENCH_OUT/dbus-calls.md"
cat "$BENCH_OUT/dbus-calls.md"
