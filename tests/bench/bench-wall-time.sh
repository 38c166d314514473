#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# bench-wall-time.sh: wall time of one first enrollment (fleetidd --oneshot,
# state deleted and the operational key evicted before each run) against the
# lab EST server answering in one write, and against a second lab EST server
# on the same PKI with --split-writes (header and body in two writes, no
# TCP_NODELAY: Nagle holds each body until the client ACKs the header):
#
#   O  this build, one-write server
#   S  this build, split-write server (the client arms TCP_QUICKACK)
#   P  the previous build (BENCH_BASE_BUILD), split-write server: the same
#      three requests without the client fix (a build of the commit before
#      it rather than curl, so that only the fix differs)
#   Q  the previous build, one-write server (what the client fix costs when
#      there is nothing to save)
#
# Rounds are interleaved (O S P Q, then S P Q O, ...) after one warm-up
# round that is not counted; medians and p90 per variant, ratios to O, and
# the median time between the lab server's answers (from its log). No
# timing is asserted: the exit status only says whether every run enrolled.
#
#   BENCH_ROUNDS       counted rounds (default 10, at most 200)
#   BENCH_BASE_BUILD   build directory of the commit before the client fix
#                      (variants P and Q are skipped, and said so, without it)
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/bench-wall-time.md (the table), bench-wall-time.tsv.
# Exit status: 0 done, 1 a run failed, 77 a tool is missing.

set -euo pipefail
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_rounds
VARIANTS=(O S)
BASE_FLEETIDD=
if [ -n "${BENCH_BASE_BUILD:-}" ]; then
    BASE_FLEETIDD=$BENCH_BASE_BUILD/agent/fleetidd/fleetidd
    [ -x "$BASE_FLEETIDD" ] || lab_fail "BENCH_BASE_BUILD: no $BASE_FLEETIDD"
    VARIANTS+=(P Q)
else
    lab_log "BENCH_BASE_BUILD not set: variants P and Q (the previous build) skipped"
fi

lab_require_tools tpm2_evictcontrol
bench_out_dir
fleetid_lab_up
fleetid_provision "SN-BENCH-$RANDOM"
fleetid_write_config
OP_KEY=0x81020002 # the default operational.key_handle (docs/tpm-handles.md)
ONE_CONF=$FLEETID_CONF

# The split-write server: same PKI, its own port, log and control file.
SPLIT_DIR=$LAB_TMPDIR/split
mkdir -p "$SPLIT_DIR"
"$LAB_PYTHON" "$LAB_EST_SERVER" --pki "$EST_PKI" --port 0 --port-file "$SPLIT_DIR/est.port" \
    --log "$SPLIT_DIR/est.log" --split-writes >"$SPLIT_DIR/est.stderr" 2>&1 &
SPLIT_PID=$!
split_stop() { _lab_kill "$SPLIT_PID" python3; }
lab_on_exit split_stop
lab_wait_until 10 "the split-write EST server to listen" test -s "$SPLIT_DIR/est.port" ||
    lab_fail "the split-write EST server did not start; see $SPLIT_DIR/est.stderr"
SPLIT_CONF=$LAB_TMPDIR/fleetid-split.conf
sed "s|https://localhost:$EST_PORT/|https://localhost:$(cat "$SPLIT_DIR/est.port")/|" "$ONE_CONF" >"$SPLIT_CONF"
grep -q "localhost:$(cat "$SPLIT_DIR/est.port")/" "$SPLIT_CONF" || lab_fail "cannot write $SPLIT_CONF"

SAMPLES=$BENCH_OUT/bench-wall-time.tsv
printf 'round\tvariant\tus\test_log\test_from\test_to\n' >"$SAMPLES"

# run VARIANT: the timed part; output goes to $LAB_TMPDIR/run.log.
run() {
    local bin=$FLEETIDD conf=$ONE_CONF
    case $1 in
        S) conf=$SPLIT_CONF ;;
        P) bin=$BASE_FLEETIDD conf=$SPLIT_CONF ;;
        Q) bin=$BASE_FLEETIDD ;;
    esac
    timeout 120 "$bin" --config "$conf" --oneshot
} >"$LAB_TMPDIR/run.log" 2>&1

measure() {
    local round=$1 v=$2 t0 t1 log=$EST_LOG from
    [[ $v == [SP] ]] && log=$SPLIT_DIR/est.log
    rm -rf -- "$FLEETID_STATE"
    bench_evict_if_present "$OP_KEY"
    from=$(wc -l <"$log")
    t0=$EPOCHREALTIME
    if ! run "$v"; then
        cat "$LAB_TMPDIR/run.log" >&2
        lab_fail "variant $v failed in round $round"
    fi
    t1=$EPOCHREALTIME
    grep -q "fleetidd: enrolled: operational certificate" "$LAB_TMPDIR/run.log" ||
        lab_fail "variant $v: fleetidd did not enroll; see $LAB_TMPDIR/run.log"
    [ "$round" -gt 0 ] || return 0
    printf '%d\t%s\t%d\t%s\t%d\t%d\n' "$round" "$v" "$(bench_us_between "$t0" "$t1")" \
        "$log" "$from" "$(wc -l <"$log")" >>"$SAMPLES"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_interleave "$ROUNDS" "${VARIANTS[@]}"

{
    echo "Run: $(bench_machine_note) (load before: $LOAD_BEFORE); $ROUNDS rounds, interleaved, after 1 warm-up round."
    echo
    "$LAB_PYTHON" - "$SAMPLES" <<'PY'
import csv, json, statistics, sys
from datetime import datetime

NAMES = {"O": "this build, one-write server", "S": "this build, split-write server",
         "P": "previous build, split-write server", "Q": "previous build, one-write server"}
us, gaps = {}, {}
for row in csv.DictReader(open(sys.argv[1], encoding="utf-8"), delimiter="\t"):
    us.setdefault(row["variant"], []).append(int(row["us"]) / 1000)
    with open(row["est_log"], encoding="utf-8") as f:
        lines = f.readlines()[int(row["est_from"]):int(row["est_to"])]
    t = {}
    for line in lines:
        rec = json.loads(line)
        if rec.get("event") == "request" and rec.get("status") == 200:
            t[rec["op"]] = datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).timestamp() * 1000
    g = gaps.setdefault(row["variant"], ([], []))
    g[0].append(t["csrattrs"] - t["cacerts"])
    g[1].append(t["simpleenroll"] - t["csrattrs"])

def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.9 * len(xs)))]

base = statistics.median(us["O"])
print("| variant | what | runs | median ms | p90 ms | median / O | /cacerts → /csrattrs ms | /csrattrs → /simpleenroll ms |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for v in "OSPQ":
    if v in us:
        m = statistics.median(us[v])
        print("| %s | %s | %d | %.0f | %.0f | %.2f | %.1f | %.1f |" % (
            v, NAMES[v], len(us[v]), m, p90(us[v]), m / base,
            statistics.median(gaps[v][0]), statistics.median(gaps[v][1])))
print()
print("The two last columns: medians of the time between the lab server logging two answers"
      " (it logs each just before sending it), so they hold the client's wait for the body.")
PY
} >"$BENCH_OUT/bench-wall-time.md"
cat "$BENCH_OUT/bench-wall-time.md"
