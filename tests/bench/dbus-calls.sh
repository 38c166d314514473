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
# tests/bench/dbus-calls (C, sd-bus) calls for BENCH_SECONDS (default 5)
# each:
#   E  the echo server (dbus-calls echo): GetCertificateChain() -> aay of a
#      fixed 700-byte blob, nothing else; one call after the other
#   F  fleetidd: GetCertificateChain() as root (access check, the chain),
#      one call after the other
#   EW, FW  the same with BENCH_WINDOW (default 16) calls in flight on the
#      one connection (an asynchronous client: a new call as each reply
#      comes): what the server and the bus can do when the client does not
#      wait a round trip between calls
#   B  optional, with BENCH_BASELINE_BUILD=DIR: fleetidd built in DIR (e.g.
#      the commit before the credentials cache), the same calls as F
#   S  fleetidd while a renewal is stalled: the lab server holds
#      /simplereenroll for 60 s (fault "delay"), Renew() started it; the
#      calls run meanwhile, one after the other (p99 is the number of
#      interest)
# E, F, EW, FW (and B) run BENCH_ROUNDS times (default 3), interleaved; S once.
# Then, unless BENCH_CALLGRIND=0 (or valgrind is missing), the instructions
# per call, which the machine's load does not change: the echo server and
# fleetidd (this build; and B's with BENCH_BASELINE_BUILD) under valgrind
# --tool=callgrind, counters zeroed after a warm-up, BENCH_IR_CALLS (default
# 2000) calls, dumped: every instruction the server's process ran for them
# (sd-event, sd-bus, the access check, the reply), divided by the calls.
# No timing is asserted: the exit status says whether every run worked.
#
#   BENCH_SECONDS, BENCH_ROUNDS, BENCH_WINDOW, BENCH_BASELINE_BUILD,
#   BENCH_CALLGRIND, BENCH_IR_CALLS   see above
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
WINDOW=${BENCH_WINDOW:-16}
[[ $WINDOW =~ ^[0-9]{1,3}$ ]] && [ "$WINDOW" -ge 2 ] && [ "$WINDOW" -le 256 ] || lab_fail "BENCH_WINDOW must be 2..256"
IR_CALLS=${BENCH_IR_CALLS:-2000}
[[ $IR_CALLS =~ ^[0-9]{1,6}$ ]] && [ "$IR_CALLS" -ge 100 ] || lab_fail "BENCH_IR_CALLS must be 100..999999"
CALLGRIND=${BENCH_CALLGRIND:-1}
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || CALLGRIND=0
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
    case ${1:-} in */callgrind-*.sh) lab_on_exit "_lab_kill $FLEETIDD_PID callgrind-amd64" ;; esac
    fleetid_wait_state 180 enrolled
    lab_wait_until 120 "fleetidd to own $AGENT_NAME" _serving
}
daemon_down() {
    fleetid_stop_daemon_bounded 60
}

RAW=$BENCH_OUT/dbus-calls.txt
: >"$RAW"
# cpu_us PID: the CPU time (user and system) PID has used, µs.
cpu_us() {
    local stat
    stat=$(cat "/proc/$1/stat") || lab_fail "cannot read /proc/$1/stat"
    stat=${stat##*) }
    # Fields 14 and 15 (utime, stime) are the 12th and 13th after "(comm) ".
    # shellcheck disable=SC2086 # the fields, split on purpose
    set -- $stat
    echo $(((${12} + ${13}) * 1000000 / $(getconf CLK_TCK)))
}
# calls VARIANT ROUND DEST INTERFACE [WINDOW]: one run, its line appended to
# $RAW, with the CPU time dbus-daemon and the server used during it.
calls() {
    local out server bus0 srv0
    case $1 in E | EW) server=$ECHO_PID ;; *) server=$FLEETIDD_PID ;; esac
    bus0=$(cpu_us "$AGENT_BUS_PID")
    srv0=$(cpu_us "$server")
    out=$("$CALLS" call "$AGENT_BUS_ADDR" "$3" "$AGENT_OBJ" "$4" GetCertificateChain "$SECS" "${5:-1}") ||
        lab_fail "variant $1: dbus-calls failed: $out"
    out="$out bus_cpu_us $(($(cpu_us "$AGENT_BUS_PID") - bus0)) server_cpu_us $(($(cpu_us "$server") - srv0))"
    echo "$1 $2 $out" >>"$RAW"
    lab_log "$1 round $2: $out"
}

ECHO_PID=
ECHO_COMM=dbus-calls
echo_up() { # [WRAPPER...]: e.g. valgrind (its process name is then the tool's)
    "$@" "$CALLS" echo "$AGENT_BUS_ADDR" "$ECHO_NAME" 3600 >"$LAB_TMPDIR/echo.out" 2>&1 &
    ECHO_PID=$!
    ECHO_COMM=dbus-calls
    [ $# -eq 0 ] || ECHO_COMM=callgrind-amd64
    lab_on_exit "_lab_kill $ECHO_PID $ECHO_COMM"
    _owned() { grep -q '^owned$' "$LAB_TMPDIR/echo.out"; }
    lab_wait_until 60 "the echo server to own $ECHO_NAME" _owned
}
echo_down() {
    _lab_kill "$ECHO_PID" "$ECHO_COMM"
    while _lab_alive "$ECHO_PID"; do sleep 0.05; done
}

CURRENT=F
measure() { # ROUND VARIANT
    case $2 in
    E) calls E "$1" "$ECHO_NAME" "$ECHO_NAME" ;;
    EW) calls EW "$1" "$ECHO_NAME" "$ECHO_NAME" "$WINDOW" ;;
    F | B | FW)
        local want=${2/FW/F}
        if [ "$CURRENT" != "$want" ]; then
            daemon_down
            if [ "$want" = B ]; then daemon_up "$BENCH_BASELINE_BUILD/agent/fleetidd/fleetidd"; else daemon_up; fi
            CURRENT=$want
        fi
        if [ "$2" = FW ]; then
            calls FW "$1" "$AGENT_NAME" "$AGENT_NAME" "$WINDOW"
        else
            calls "$2" "$1" "$AGENT_NAME" "$AGENT_NAME"
        fi
        ;;
    esac
}

echo_up
daemon_up
VARIANTS=(E F EW FW)
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

# I: instructions per call under callgrind. ir_per_call LABEL PID DEST
# INTERFACE: zero the counters after a warm-up, make the calls, dump.
ir_per_call() {
    local label=$1 pid=$2 dump total i
    # The count is the server's own process: wait (at most 60 s) until it
    # has no child (a worker, e.g. the /cacerts refresh at start, slow under
    # valgrind), whose work is not the calls'.
    for ((i = 0; i < 600; i++)); do
        pgrep -P "$pid" >/dev/null || break
        sleep 0.1
    done
    "$CALLS" call "$AGENT_BUS_ADDR" "$3" "$AGENT_OBJ" "$4" GetCertificateChain 600 1 200 >/dev/null ||
        lab_fail "$label: the warm-up calls failed"
    callgrind_control -z "$pid" >/dev/null || lab_fail "$label: callgrind_control -z failed"
    "$CALLS" call "$AGENT_BUS_ADDR" "$3" "$AGENT_OBJ" "$4" GetCertificateChain 600 1 "$IR_CALLS" >/dev/null ||
        lab_fail "$label: the calls failed"
    callgrind_control -d "$pid" >/dev/null || lab_fail "$label: callgrind_control -d failed"
    # The dump of that process (not of a child it forked since: those have their pid).
    dump=$(ls -t "$LAB_TMPDIR/callgrind.$label.$pid".* | head -n 1)
    pgrep -P "$pid" >/dev/null && lab_log "$label: a child process ran during the count (pid $(pgrep -P "$pid" | tr '\n' ' '))"
    total=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$dump")
    [ -n "$total" ] || lab_fail "$label: no totals in $dump"
    cp "$dump" "$BENCH_OUT/callgrind.$label"
    echo "I-$label 1 calls $IR_CALLS instructions $total per_call $((total / IR_CALLS))" >>"$RAW"
    lab_log "instructions per call, $label: $((total / IR_CALLS)) ($BENCH_OUT/callgrind.$label)"
}
# callgrind_wrapper LABEL BINARY: a script that runs BINARY under callgrind.
callgrind_wrapper() {
    printf '#!/bin/sh\nexec valgrind -q --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file=%s "%s" "$@"\n' \
        "$LAB_TMPDIR/callgrind.$1.%p" "$2" >"$LAB_TMPDIR/callgrind-$1.sh"
    chmod 0755 "$LAB_TMPDIR/callgrind-$1.sh"
    echo "$LAB_TMPDIR/callgrind-$1.sh"
}
if [ "$CALLGRIND" = 1 ]; then
    echo_down
    echo_up valgrind -q --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file="$LAB_TMPDIR/callgrind.echo.%p"
    ir_per_call echo "$ECHO_PID" "$ECHO_NAME" "$ECHO_NAME"
    echo_down
    daemon_up "$(callgrind_wrapper fleetidd "$FLEETIDD")"
    ir_per_call fleetidd "$FLEETIDD_PID" "$AGENT_NAME" "$AGENT_NAME"
    daemon_down
    if [ -n "${BENCH_BASELINE_BUILD:-}" ]; then
        daemon_up "$(callgrind_wrapper baseline "$BENCH_BASELINE_BUILD/agent/fleetidd/fleetidd")"
        ir_per_call baseline "$FLEETIDD_PID" "$AGENT_NAME" "$AGENT_NAME"
        daemon_down
    fi
fi

{
    echo "Run: $(bench_machine_note); one client, one connection, calls one after the other for ${SECS} s" \
        "per run; E, F, EW, FW$([ -n "${BENCH_BASELINE_BUILD:-}" ] && echo ", B") $ROUNDS rounds interleaved (median of the rounds), S once;" \
        "W = $WINDOW calls in flight."
    echo
    echo "| variant | calls/s | p50 µs | p99 µs | max µs | calls/s vs echo | CPU µs/call: client, dbus-daemon, server |"
    echo "|---|---|---|---|---|---|---|"
    "$LAB_PYTHON" - "$RAW" <<'PY'
import statistics, sys
names = {"E": "E echo server (does nothing)", "F": "F fleetidd GetCertificateChain",
         "EW": "EW echo server, W calls in flight", "FW": "FW fleetidd, W calls in flight",
         "B": "B baseline fleetidd (BENCH_BASELINE_BUILD)",
         "S": "S fleetidd GetCertificateChain, renewal stalled at the EST server"}
runs, ir = {}, {}
for line in open(sys.argv[1], encoding="utf-8"):
    w = line.split()
    kv = dict(zip(w[2::2], w[3::2]))
    if w[0].startswith("I-"):
        ir[w[0][2:]] = int(kv["per_call"])
    elif w[1] != "0":
        runs.setdefault(w[0], []).append(kv)
def med(v, k):
    return statistics.median(float(r[k]) for r in runs[v])
for v in ("E", "F", "B", "S", "EW", "FW"):
    if v not in runs:
        continue
    echo = "EW" if v == "FW" or v == "EW" else "E"
    ratio = med(v, "per_second") / med(echo, "per_second") if echo in runs else float("nan")
    def cpu(k):
        return statistics.median(float(r[k]) / float(r["calls"]) for r in runs[v])
    print("| %s | %.0f | %.0f | %.0f | %.0f | %.2f (vs %s) | %.1f, %.1f, %.1f |" % (
          names[v], med(v, "per_second"), med(v, "p50_us"), med(v, "p99_us"), med(v, "max_us"), ratio, echo,
          cpu("client_cpu_us"), cpu("bus_cpu_us"), cpu("server_cpu_us")))
if ir:
    print()
    print("| server (callgrind) | instructions per call | vs echo |")
    print("|---|---|---|")
    for k in ("echo", "fleetidd", "baseline"):
        if k in ir:
            print("| %s | %d | %.2f |" % (k, ir[k], ir[k] / ir["echo"] if "echo" in ir else float("nan")))
PY
} >"$BENCH_OUT/dbus-calls.md"
cat "$BENCH_OUT/dbus-calls.md"
