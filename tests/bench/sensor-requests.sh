#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# sensor-requests.sh: the sensor broker under load (docs/benchmarks.md,
# "Sensor broker"):
#   1. BENCH_SENSORS (default 1000) sensor requests at once: one client makes
#      the keys and CSRs first, then calls RequestSensorCertificate for each
#      as fast as the bus answers (each call returns its job at once; all are
#      pending together), and the time runs until the last certificate is
#      recorded. None may be lost: every request accepted, every sensor
#      recorded as issued, as many RA enrollments in the EST log;
#   2. memory per tracked sensor: fleetidd's RSS and USS (Private_Clean +
#      Private_Dirty of /proc/PID/smaps_rollup) with BENCH_RECORDS (default
#      10000) sensor records in the state directory, against none, once the
#      D-Bus API serves (the records are loaded at start).
# The lab: the EST server as RA (control ra_eku, label "sensors"), fleetidd as
# root on a private system bus, no manufacturer CA (no evidence), rate limits
# and broker.max_pending raised for the load.
# No timing is asserted: the exit status says whether every request came through.
#
#   BENCH_SENSORS, BENCH_RECORDS   see above
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/sensor-requests.md. Exit status: 0 done, 1 a request was
# lost or a run failed, 77 a tool is missing.

set -euo pipefail
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
# shellcheck source=tests/lib/agent-bus.sh
. "$FLEETID_SOURCE_DIR/tests/lib/agent-bus.sh"

N=${BENCH_SENSORS:-1000}
RECORDS=${BENCH_RECORDS:-10000}
[[ $N =~ ^[0-9]{1,5}$ ]] && [ "$N" -ge 1 ] || lab_fail "BENCH_SENSORS must be 1..99999"
[[ $RECORDS =~ ^[0-9]{1,6}$ ]] && [ "$RECORDS" -ge 1 ] && [ "$RECORDS" -le 100000 ] ||
    lab_fail "BENCH_RECORDS must be 1..100000"
[ "$(id -u)" -eq 0 ] || lab_skip "needs root (fleetidd owns org.fleetid.Agent1 on a private system bus)"
/usr/bin/python3 -c "import dbus" 2>/dev/null || lab_skip "python3-dbus is missing"
CLIENT=$FLEETID_SOURCE_DIR/tests/integration/sensor-client.py

bench_out_dir
fleetid_lab_up --label sensors
fleetid_provision "SN-BENCH-$RANDOM"
est_control '{"ra_eku": true}'
max=$((RECORDS > N ? RECORDS : N))
fleetid_write_config \
    "access: { sensor_burst = 10000; sensor_per_minute = 60000; };" \
    "broker: { est_label = \"sensors\"; max_pending = $((N + 10)); max_sensors = $max; };"
agent_bus_start
_serving() { grep -q "D-Bus: serving org.fleetid.Agent1" "$FLEETIDD_LOG"; }

# ---- 1. N requests at once ----
fleetid_daemon_start
fleetid_wait_state 90 enrolled
lab_wait_until 30 "fleetidd to own org.fleetid.Agent1" _serving
t0=$EPOCHREALTIME
"$LAB_PYTHON" "$CLIENT" submit --prefix bench --count "$N" >"$BENCH_OUT/sensor-submit.txt" ||
    lab_fail "the client failed: $(cat "$BENCH_OUT/sensor-submit.txt")"
t_csr=$(awk '$1 == "seconds" { print $2 }' "$BENCH_OUT/sensor-submit.txt")
grep -q "^accepted $N$" "$BENCH_OUT/sensor-submit.txt" ||
    lab_fail "not every request was accepted: $(cat "$BENCH_OUT/sensor-submit.txt")"
_all_issued() {
    local n
    n=$(grep -l "^state=issued$" "$FLEETID_STATE"/sensors/bench-* 2>/dev/null | wc -l)
    LAB_WAIT_SEEN="$n of $N issued"
    [ "$n" -eq "$N" ]
}
LAB_WAIT_POLL=0.2 lab_wait_until 1800 "all $N sensors to be issued" _all_issued
t1=$EPOCHREALTIME
enrolls=$(est_log_count op=simpleenroll label=sensors auth=tls-ra status=200)
[ "$enrolls" -eq "$N" ] || lab_fail "$enrolls RA enrollments in the EST log for $N sensors"
failed=$(grep -c "request of uid .* failed" "$FLEETIDD_LOG" || true)
[ "$failed" -eq 0 ] || lab_fail "$failed sensor requests failed: $(grep -m3 "request of uid .* failed" "$FLEETIDD_LOG")"
handshakes=$(est_log_count op=cacerts label=sensors)
total_us=$(bench_us_between "$t0" "$t1")
_lab_kill "$FLEETIDD_PID" fleetidd

# ---- 2. memory per tracked sensor ----
# memory: RSS and USS (kB) of the running fleetidd
memory() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$FLEETIDD_PID/status"
    awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s }' "/proc/$FLEETIDD_PID/smaps_rollup"
}
measure() { # RECORDS: fleetidd with that many records, serving; "rss uss" into $LAB_TMPDIR/memory.RECORDS
    rm -rf "$FLEETID_STATE/sensors" "$FLEETID_STATE/sensors-pending"
    mkdir -m 0750 "$FLEETID_STATE/sensors"
    "$LAB_PYTHON" - "$FLEETID_STATE/sensors" "$1" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
now = int(time.time())
for i in range(n):
    sid = "mem-%06d" % i
    text = ("fleetid-sensor-record-v1\nid=%s\nstate=issued\nserial=%032X\nnot_before=%d\n"
            "not_after=%d\n" % (sid, i + 1, now - 3600, now + 365 * 86400))
    fd = os.open(os.path.join(d, sid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    os.write(fd, text.encode())
    os.close(fd)
PY
    : >"$LAB_TMPDIR/fleetidd-daemon.log"
    fleetid_daemon_start
    lab_wait_until 60 "fleetidd to own org.fleetid.Agent1" _serving
    fleetid_wait_state 60 enrolled
    grep -q "sensor broker: $1 sensor(s) tracked" "$FLEETIDD_LOG" || lab_fail "fleetidd did not load $1 records"
    sleep 2 # the start's allocations settle
    echo $(memory) >"$LAB_TMPDIR/memory.$1"
    _lab_kill "$FLEETIDD_PID" fleetidd
}
measure 0
measure "$RECORDS"
read -r rss0 uss0 <"$LAB_TMPDIR/memory.0"
read -r rss1 uss1 <"$LAB_TMPDIR/memory.$RECORDS"

per_rss=$(( (rss1 - rss0) * 1024 / RECORDS ))
per_uss=$(( (uss1 - uss0) * 1024 / RECORDS ))
{
    echo "### Sensor broker (\`sensor-requests.sh\`)"
    echo
    bench_machine_note
    echo
    echo "| measure | value |"
    echo "| --- | --- |"
    echo "| requests at once | $N (all accepted, all issued, none lost) |"
    echo "| calls RequestSensorCertificate (client side, CSRs made before) | ${t_csr} s |"
    echo "| first call to last certificate recorded | $(awk -v u="$total_us" 'BEGIN { printf "%.1f", u / 1e6 }') s |"
    echo "| rate | $(awk -v u="$total_us" -v n="$N" 'BEGIN { printf "%.0f", n / (u / 1e6) }') sensors/s |"
    echo "| sensor worker starts (GET /sensors/cacerts, one per TLS session) | $handshakes |"
    echo "| fleetidd RSS / USS, 0 records | ${rss0} / ${uss0} kB |"
    echo "| fleetidd RSS / USS, $RECORDS records | ${rss1} / ${uss1} kB |"
    echo "| per tracked sensor (RSS / USS) | ${per_rss} / ${per_uss} bytes |"
} >"$BENCH_OUT/sensor-requests.md"
cat "$BENCH_OUT/sensor-requests.md"
[ "$per_uss" -le 2048 ] || lab_fail "more than 2 KB per tracked sensor: $per_uss bytes"
