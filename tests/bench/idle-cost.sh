#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# idle-cost.sh: what fleetidd costs while it waits, next to certmonger doing
# the same on the same machine. Three daemons, measured at the same time:
#
#   fleetidd A         the lab's: enrolls in this run through tpm2-abrmd (the
#                      tabrmd TCTI, which brings GLib and two threads), with a
#                      certificate of one day, so that the next scheduled
#                      event (the renewal, at about 67 % of the lifetime) is
#                      hours away
#   fleetidd B         started already enrolled, on a copy of A's state
#                      directory, talking to swtpm directly (swtpm TCTI, no
#                      GLib): as on a gateway with /dev/tpmrm0 after a reboot
#   certmonger         on a private session bus with private state
#                      directories, tracking nothing (only its built-in CAs)
#
# After they have settled, two windows, each covering all three at once:
#
#   1  no tracer: context switches summed over all threads (wakeups), schedstat
#      (times scheduled, CPU time), from /proc before and after; memory at the
#      end (VmRSS, smaps_rollup Pss, Private_Clean + Private_Dirty, Anonymous)
#   2  strace -f -tt attached to each: every system call made. Attaching
#      pulls each blocked thread out of its wait (the kernel restarts poll;
#      epoll_wait returns EINTR and the event loop goes round once); the few
#      calls that makes are listed apart and not counted
#      (idle-cost-report.py, classify()).
#
# No goal is asserted: the exit status only says whether the measurement ran.
#
#   BENCH_IDLE_SECONDS   length of each window (default 60, 5..3600)
#   BENCH_IDLE_SETTLE    seconds to wait before measuring (default 5); then,
#                        up to 900 s more until both fleetidd have made their
#                        first /cacerts refresh (see below): a run takes 3 to
#                        13 minutes
#   BENCH_IDLE_LIFETIME  certificate lifetime the EST server gives, seconds
#                        (default 86400); a short one (90) puts renewals inside
#                        the windows, which shows that they are seen (below
#                        3600 s there is no waiting for the /cacerts refresh)
#   BENCH_INSTALL=1      apt-get install strace and certmonger if missing
#                        (certmonger's package enables certmonger.service);
#                        without it a missing certmonger is unpacked from its
#                        Debian package (apt-get download, dpkg -x: no
#                        service enabled, nothing installed) into
#   BENCH_CERTMONGER_DIR (default $TMPDIR/fleetid-bench-certmonger)
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/idle-cost.md (the table) and keeps the raw data (/proc
# snapshots, strace output, logs) in BENCH_OUT/idle-cost/.
# Exit status: 0 done, 1 a step failed, 77 strace or certmonger is missing.

set -euo pipefail
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

SECONDS_IDLE=${BENCH_IDLE_SECONDS:-60}
SETTLE=${BENCH_IDLE_SETTLE:-5}
if ! [[ $SECONDS_IDLE =~ ^[0-9]{1,4}$ ]] || [ "$SECONDS_IDLE" -lt 5 ] || [ "$SECONDS_IDLE" -gt 3600 ]; then
    lab_fail "BENCH_IDLE_SECONDS must be a number of seconds in 5..3600 (got '$SECONDS_IDLE')"
fi
[[ $SETTLE =~ ^[0-9]{1,3}$ ]] || lab_fail "BENCH_IDLE_SETTLE must be a number of seconds (got '$SETTLE')"
LIFETIME=${BENCH_IDLE_LIFETIME:-86400}
if ! [[ $LIFETIME =~ ^[0-9]{1,9}$ ]] || [ "$LIFETIME" -lt 30 ]; then
    lab_fail "BENCH_IDLE_LIFETIME must be a number of seconds, at least 30 (got '$LIFETIME')"
fi
REPORT=$BENCH_DIR/idle-cost-report.py
CERTMONGER=/usr/sbin/certmonger

GETCERT=getcert
CM_LIBS=

# certmonger_extract DIR: certmonger's Debian package and the libraries it
# lacks here, unpacked into DIR with dpkg -x: no maintainer script runs, so
# no certmonger.service is enabled or started and nothing outside DIR
# changes (what apt-get install would do). Its helpers for fetching CA roots
# are looked for at their installed paths and are missing then: certmonger
# logs that and goes idle, which is what is measured.
certmonger_extract() {
    local dir=$1 deb missing_libs pkgs
    command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || return 1
    mkdir -p "$dir/debs" "$dir/root"
    (cd "$dir/debs" && apt-get download certmonger >/dev/null 2>&1) || return 1
    for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root" || return 1; done
    # The libraries ldd does not find, by their package (libtalloc2, libtevent0 here).
    missing_libs=$(ldd "$dir/root/usr/sbin/certmonger" | sed -n 's/^\s*\(\S*\) => not found$/\1/p')
    pkgs=()
    for lib in $missing_libs; do
        case $lib in
            libtalloc.so.2) pkgs+=(libtalloc2) ;;
            libtevent.so.0) pkgs+=(libtevent0) ;;
            *) echo "certmonger needs $lib, which is not installed" >&2; return 1 ;;
        esac
    done
    if [ ${#pkgs[@]} -gt 0 ]; then
        (cd "$dir/debs" && apt-get download "${pkgs[@]}" >/dev/null 2>&1) || return 1
        for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root" || return 1; done
    fi
    CERTMONGER=$dir/root/usr/sbin/certmonger
    GETCERT=$dir/root/usr/bin/getcert
    CM_LIBS=$dir/root/usr/lib/x86_64-linux-gnu
    ! LD_LIBRARY_PATH=$CM_LIBS ldd "$CERTMONGER" | grep -q "not found"
}

missing=()
command -v strace >/dev/null 2>&1 || missing+=(strace)
if ! { [ -x "$CERTMONGER" ] && command -v getcert >/dev/null 2>&1; }; then
    if [ "${BENCH_INSTALL:-}" = 1 ] || ! certmonger_extract "${BENCH_CERTMONGER_DIR:-${TMPDIR:-/tmp}/fleetid-bench-certmonger}"; then
        missing+=(certmonger)
    fi
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${BENCH_INSTALL:-}" = 1 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
            lab_skip "apt-get install ${missing[*]} failed"
    else
        lab_skip "needs ${missing[*]}: apt-get install ${missing[*]} (or run with BENCH_INSTALL=1 as root)"
    fi
fi

lab_require_tools dbus-daemon dbus-send
bench_out_dir
RAW=$BENCH_OUT/idle-cost
rm -rf -- "$RAW"
mkdir -p "$RAW"

# fleetidd A, enrolled for a day by default: renewal due in about 16 hours.
fleetid_lab_up --cert-lifetime "$LIFETIME"
fleetid_provision "SN-IDLE-$RANDOM"
fleetid_write_config
fleetid_daemon_start
fleetid_wait_state 60 enrolled || lab_fail "fleetidd did not enroll; see $FLEETIDD_LOG"

# certmonger: its own session bus, its own state, started as its man page
# says (-s session bus, -n no fork).
CM=$LAB_TMPDIR/certmonger
mkdir -p "$CM"/{requests,cas,local,tmp,config,home}
bus=$(dbus-daemon --session --fork --print-address=1 --print-pid=1) ||
    lab_fail "cannot start a session dbus-daemon for certmonger"
CM_BUS=$(sed -n 1p <<<"$bus")
CM_BUS_PID=$(sed -n 2p <<<"$bus")
lab_on_exit "_lab_kill $CM_BUS_PID dbus-daemon"
env HOME="$CM/home" DBUS_SESSION_BUS_ADDRESS="$CM_BUS" \
    CERTMONGER_REQUESTS_DIR="$CM/requests" CERTMONGER_CAS_DIR="$CM/cas" \
    CERTMONGER_LOCAL_CA_DIR="$CM/local" CERTMONGER_TMPDIR="$CM/tmp" \
    CERTMONGER_CONFIG_DIR="$CM/config" CERTMONGER_SYSTEM_LOCK_FILE="$CM/lock" \
    ${CM_LIBS:+LD_LIBRARY_PATH=$CM_LIBS} "$CERTMONGER" -s -n -p "$CM/pid" >"$CM/certmonger.log" 2>&1 &
CM_PID=$!
lab_on_exit "_lab_kill $CM_PID certmonger"

cm_getcert() {
    env DBUS_SESSION_BUS_ADDRESS="$CM_BUS" ${CM_LIBS:+LD_LIBRARY_PATH="$CM_LIBS"} "$GETCERT" "$@" -s
}
# Asks the bus, not certmonger: a getcert call made before certmonger owns its
# name would have the session bus start another one (D-Bus activation of
# certmonger-session), and ours would then lose the name.
cm_owns_name() {
    _lab_alive "$CM_PID" || lab_fail "certmonger exited; see $CM/certmonger.log"
    DBUS_SESSION_BUS_ADDRESS=$CM_BUS dbus-send --session --print-reply --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.fedorahosted.certmonger 2>/dev/null |
        grep -q "boolean true"
}
# At start certmonger runs a helper per CA to fetch its roots; wait for them.
cm_no_children() {
    [ -z "$(cat /proc/"$CM_PID"/task/*/children 2>/dev/null | tr -d ' ')" ]
}
lab_wait_until 30 "certmonger to own its name on its bus" cm_owns_name || lab_fail "certmonger did not come up"
lab_wait_until 60 "certmonger's start-up helpers to finish" cm_no_children || lab_fail "certmonger stays busy"
tracked=$(cm_getcert list | sed -n 's/^Number of certificates and requests being tracked: //p')
cas=$(cm_getcert list-cas | sed -n "s/^CA '\(.*\)':\$/\1/p" | paste -sd, - | sed 's/,/, /g')
[ "$tracked" = "0." ] || lab_fail "certmonger is tracking something ($tracked); it must be idle"

# fleetidd B: A's enrollment, its own state directory, no resource manager.
# Already enrolled, it only reads the key's public area (no EST traffic). Its
# only TPM connection is its own, so its configuration's tpm.tcti is all it
# takes (no provider with a TCTI of its own to point elsewhere).
cp -a -- "$FLEETID_STATE" "$LAB_TMPDIR/state-direct"
DIRECT_TCTI=swtpm:host=127.0.0.1,port=$TPM_ENV_PORT
sed -e "s|tcti = \"[^\"]*\"|tcti = \"$DIRECT_TCTI\"|" -e "s|\"$FLEETID_STATE\"|\"$LAB_TMPDIR/state-direct\"|" \
    -e "s|\"$FLEETID_RUNTIME\"|\"$LAB_TMPDIR/run-direct\"|" \
    "$FLEETID_CONF" >"$LAB_TMPDIR/fleetid-direct.conf"
grep -q "$DIRECT_TCTI" "$LAB_TMPDIR/fleetid-direct.conf" || lab_fail "cannot write the configuration of fleetidd B"
FLEETIDD_DIRECT_LOG=$LAB_TMPDIR/fleetidd-direct.log
"$FLEETIDD" --config "$LAB_TMPDIR/fleetid-direct.conf" >"$FLEETIDD_DIRECT_LOG" 2>&1 &
FLEETIDD_DIRECT_PID=$!
lab_on_exit "_lab_kill $FLEETIDD_DIRECT_PID fleetidd"
direct_enrolled() {
    _lab_alive "$FLEETIDD_DIRECT_PID" || lab_fail "fleetidd B exited; see $FLEETIDD_DIRECT_LOG"
    grep -q "fleetidd: already enrolled" "$FLEETIDD_DIRECT_LOG" && grep -q "renewal due at" "$FLEETIDD_DIRECT_LOG"
}
lab_wait_until 30 "fleetidd B to find its enrollment" direct_enrolled || lab_fail "fleetidd B did not start enrolled"

echo "Tracked: 0 certificates and requests; CAs: $cas (its built-in defaults, asked before settling)." \
    >"$RAW/certmonger.info"
{
    echo "Enrolled with a certificate valid until $(openssl x509 -in "$FLEETID_STATE/operational.pem" -noout -enddate | cut -d= -f2);"
    echo "state $(fleetid_status_get state), next attempt $(fleetid_status_get next_attempt) (fleetidctl status, before settling)."
} >"$RAW/fleetidd.info"
echo "Started on a copy of A's state directory with TCTI $DIRECT_TCTI: $(grep -o 'renewal due at [^ ]*' "$FLEETIDD_DIRECT_LOG")." \
    >"$RAW/fleetidd-direct.info"

lab_log "settling for ${SETTLE}s"
sleep "$SETTLE"
# No scheduled event may fall in the windows. The renewal is hours away, but
# a fleetidd that starts already enrolled (the direct one here) makes its
# first periodic /cacerts refresh at a random time within 600 s of starting
# (manager-cacerts.c, CACERTS_FIRST_MAX_SEC), the next ones a day apart; one
# that has just enrolled waits the full day. Wait (up to 900 s) until no timerfd of either
# fleetidd expires within 660 s, nor before both windows are over: then both
# have made their first refresh, and are measured in the state they keep
# between scheduled events.
need=$((2 * SECONDS_IDLE + 60))
[ "$need" -ge 660 ] || need=660
deadline=$((SECONDS + 900))
if [ "$LIFETIME" -lt 3600 ]; then
    lab_log "certificate lifetime ${LIFETIME}s: renewals are expected inside the windows"
fi
while [ "$LIFETIME" -ge 3600 ]; do
    next=$("$LAB_PYTHON" "$REPORT" next-timer "$FLEETIDD_PID" "$FLEETIDD_DIRECT_PID")
    if [ "$next" = none ] || [ "$next" -gt "$need" ]; then
        break
    fi
    [ "$SECONDS" -lt "$deadline" ] || lab_fail "a timer of fleetidd is still due within ${need}s after 900s of waiting"
    lab_log "a fleetidd timer expires in ${next}s (the first /cacerts refresh): waiting for it"
    sleep $((next < 5 ? 5 : next > 60 ? 60 : next + 2))
done
targets=("fleetidd=$FLEETIDD_PID" "fleetidd-direct=$FLEETIDD_DIRECT_PID" "certmonger=$CM_PID")

lab_log "window 1: ${SECONDS_IDLE}s, no tracer"
"$LAB_PYTHON" "$REPORT" snapshot "$RAW" quiet0 "${targets[@]}"
sleep "$SECONDS_IDLE"
"$LAB_PYTHON" "$REPORT" snapshot "$RAW" quiet1 "${targets[@]}"

lab_log "window 2: ${SECONDS_IDLE}s, strace attached to each"
strace_attached() {
    grep -q "attached" "$RAW/$1.strace.stderr" 2>/dev/null
}
declare -A STRACE_PID
for t in "${targets[@]}"; do
    name=${t%%=*}
    strace -f -tt -o "$RAW/$name.strace" -p "${t#*=}" 2>"$RAW/$name.strace.stderr" &
    STRACE_PID[$name]=$!
    lab_on_exit "_lab_kill ${STRACE_PID[$name]} strace"
done
for t in "${targets[@]}"; do
    name=${t%%=*}
    lab_wait_until 10 "strace to attach to $name" strace_attached "$name" ||
        lab_fail "strace cannot attach to $name: $(cat "$RAW/$name.strace.stderr")"
done
"$LAB_PYTHON" "$REPORT" snapshot "$RAW" traced0 "${targets[@]}"
sleep "$SECONDS_IDLE"
"$LAB_PYTHON" "$REPORT" snapshot "$RAW" traced1 "${targets[@]}"
for name in "${!STRACE_PID[@]}"; do
    _lab_kill "${STRACE_PID[$name]}" strace # SIGTERM: strace detaches
done

for t in "${targets[@]}"; do
    _lab_alive "${t#*=}" || lab_fail "${t%%=*} exited during the measurement"
done
echo "State after the windows: $(fleetid_status_get state)." >>"$RAW/fleetidd.info"
cp "$FLEETIDD_LOG" "$FLEETIDD_DIRECT_LOG" "$CM/certmonger.log" "$RAW/"

{
    echo "Run: $(bench_machine_note); certmonger $(env ${CM_LIBS:+LD_LIBRARY_PATH="$CM_LIBS"} "$CERTMONGER" -v 2>&1 | head -n 1 | awk '{print $NF}');" \
        "${SECONDS_IDLE} s per window after ${SETTLE} s of settling."
    echo
    "$LAB_PYTHON" "$REPORT" report --dir "$RAW" --seconds "$SECONDS_IDLE"
} >"$BENCH_OUT/idle-cost.md"
cat "$BENCH_OUT/idle-cost.md"
