# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tests/lib/tpm-env.sh: the fleetid test lab, sourced by integration tests,
# benchmarks and the demo. Starts real components on 127.0.0.1 only:
#   - a fresh swtpm with EK certificates (like a real TPM), behind tpm2-abrmd
#     on a private D-Bus bus (tpm_env_start / tpm_env_stop), either of which
#     can be restarted (tpm_env_restart_abrmd, tpm_env_kill_swtpm +
#     tpm_env_start_swtpm);
#   - the lab EST server over HTTPS with a fresh lab PKI (est_env_start /
#     est_env_stop), see tests/lab/README.md.
# Every process is stopped by PID on exit, also on failure. Fresh ports and
# directories each time, so tests can run in parallel.
#
# Sourcing installs an EXIT trap; register extra cleanup with lab_on_exit
# instead of replacing the trap. LAB_KEEP=1 keeps the temporary directories.

# shellcheck disable=SC2034  # LAB_* paths are for the scripts that source this file
LAB_PYTHON=/usr/bin/python3
LAB_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_PKI_PY=$LAB_TESTS_DIR/lab/pki.py
LAB_EST_SERVER=$LAB_TESTS_DIR/lab/est_server.py
LAB_CURL_ENROLL=$LAB_TESTS_DIR/lab/curl-enroll.sh
LAB_WAIT_EVENTS=$LAB_TESTS_DIR/lib/wait-events.py
LAB_TABRMD_TCTI=tabrmd:bus_type=session

_lab_cleanups=()
_lab_rc=0

# lab_on_exit COMMAND...: run COMMAND (eval'ed) at exit; last registered runs first.
lab_on_exit() {
    _lab_cleanups+=("$*")
}

_lab_run_cleanups() {
    _lab_rc=$?
    local i
    for ((i = ${#_lab_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_lab_cleanups[i]}" || true
    done
    _lab_cleanups=()
    return "$_lab_rc"
}

trap _lab_run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

lab_skip() {
    echo "SKIP: $*" >&2
    exit 77
}

lab_log() {
    echo "lab: $*" >&2
}

# Functions that register cleanup at exit must run in the test's own shell.
_lab_require_main_shell() {
    [ "$BASHPID" = "$$" ] ||
        lab_fail "$1 must run in the test's own shell, not in \$(...) or a pipeline"
}

# lab_require_tools TOOL...: exit 77 (skipped) if a tool or the lab's Python
# modules are missing.
lab_require_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || lab_skip "required tool '$t' is not installed"
    done
    "$LAB_PYTHON" -c 'import cryptography.hazmat.primitives.serialization.pkcs7' 2>/dev/null ||
        lab_skip "$LAB_PYTHON with the cryptography module is required"
}

# Milliseconds since boot (/proc/uptime): deadlines must hold while a test
# sets the wall clock (test-clock-jump.sh).
_lab_now_ms() {
    local up rest
    read -r up rest </proc/uptime
    echo $((10#${up/./} * 10))
}

# _lab_ms SECONDS: SECONDS (decimals allowed, e.g. 0.25) in milliseconds.
_lab_ms() {
    local i=${1%%.*} f=000
    [[ $1 != *.* ]] || f=${1#*.}000
    echo $((10#${i:-0} * 1000 + 10#${f:0:3}))
}

# lab_wait_until SECONDS DESCRIPTION COMMAND...: bounded wait until COMMAND
# succeeds; fails naming DESCRIPTION after SECONDS, with what COMMAND last
# saw if it put that in LAB_WAIT_SEEN. COMMAND runs in this shell, at once and
# then each time something changes below $LAB_TMPDIR (a file written,
# created, renamed or removed; inotify, see wait-events.py) or a process in
# $LAB_WAIT_PIDS exits, and in any case after 0.1, 0.15, 0.22 ... up to
# $LAB_WAIT_POLL (default 1) seconds without a change, for what no file shows
# (a bus name, a process that is not ours). COMMAND must not write below the
# watched paths. A COMMAND that waits for the clock (a time to pass) sets
# LAB_WAIT_POLL=0.1: no file change comes then.
# Optional, e.g. as VAR=... lab_wait_until ...:
#   LAB_WAIT_PATHS   what to watch instead of $LAB_TMPDIR (space-separated)
#   LAB_WAIT_PIDS    processes whose exit counts as a change
#   LAB_WAIT_POLL    at most this many seconds between checks; 0.1 or less
#                    polls at that interval and watches nothing (for short
#                    waits on processes and sockets, where starting the
#                    watcher would cost more than it saves)
lab_wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$(($(_lab_now_ms) + timeout * 1000))
    local _lw_max _lw_step _lw_fd='' _lw_pid='' _lw_line _lw_rc _lw_now _lw_t
    _lw_max=$(_lab_ms "${LAB_WAIT_POLL:-1}")
    _lw_step=$((_lw_max < 100 ? _lw_max : 100))
    LAB_WAIT_SEEN=
    "$@" && return 0
    if ((_lw_max > 100)) && [ -n "${LAB_WAIT_PATHS:-${LAB_TMPDIR:-}}" ]; then
        _lab_wait_watch "$timeout"
    fi
    while ! "$@"; do
        _lw_now=$(_lab_now_ms)
        if ((_lw_now >= deadline)); then
            _lab_wait_unwatch
            echo "lab: timed out after ${timeout}s waiting for $what${LAB_WAIT_SEEN:+; last seen: $LAB_WAIT_SEEN}" >&2
            return 1
        fi
        _lw_t=$((deadline - _lw_now < _lw_step ? deadline - _lw_now : _lw_step))
        printf -v _lw_t %d.%03d $((_lw_t / 1000)) $((_lw_t % 1000))
        if [ -z "$_lw_fd" ]; then
            sleep "$_lw_t"
            continue
        fi
        _lw_rc=0
        read -r -t "$_lw_t" -u "$_lw_fd" _lw_line || _lw_rc=$?
        if ((_lw_rc == 0)); then
            # Changes seen while COMMAND ran: one more check covers them all.
            while read -r -t 0 -u "$_lw_fd"; do read -r -u "$_lw_fd" _lw_line || break; done
        elif ((_lw_rc > 128)); then
            _lw_step=$((_lw_step * 3 / 2 < _lw_max ? _lw_step * 3 / 2 : _lw_max))
        else
            lab_log "the change watcher for '$what' ended early; polling every 0.1 s"
            _lab_wait_unwatch
            _lw_step=100
        fi
    done
    _lab_wait_unwatch
}

# _lab_wait_watch SECONDS: start wait-events.py for lab_wait_until (sets its
# _lw_fd and _lw_pid) and return once its watches are in place; on failure,
# _lw_fd stays empty and lab_wait_until polls every 0.1 s.
_lab_wait_watch() {
    local args=(--lifetime $(($1 + 5))) p
    for p in ${LAB_WAIT_PIDS:-}; do args+=(--pid "$p"); done
    # shellcheck disable=SC2206  # a list of paths, split on purpose
    args+=(${LAB_WAIT_PATHS:-$LAB_TMPDIR})
    exec {_lw_fd}< <(exec "$LAB_PYTHON" -I -S "$LAB_WAIT_EVENTS" "${args[@]}")
    _lw_pid=$!
    if ! read -r -t 10 -u "$_lw_fd" _lw_line || [ "$_lw_line" != ready ]; then
        lab_log "no change watcher (wait-events.py did not start); polling every 0.1 s"
        _lab_wait_unwatch
    fi
}

_lab_wait_unwatch() {
    [ -n "$_lw_fd" ] || return 0
    exec {_lw_fd}<&-
    kill "$_lw_pid" 2>/dev/null || true
    wait "$_lw_pid" 2>/dev/null || true
    _lw_fd=
}

_lab_dump_logs() {
    local dir=$1 f
    while IFS= read -r f; do
        echo "---- last lines of $f ----" >&2
        tail -n 15 "$f" >&2
    done < <(find "$dir" -maxdepth 3 -type f \( -name '*.log' -o -name '*.stderr' \) -size +0 2>/dev/null | sort)
}

_lab_tmpdir_cleanup() {
    local dir=$1
    if [ "$_lab_rc" -ne 0 ] && [ "$_lab_rc" -ne 77 ]; then
        _lab_dump_logs "$dir"
    fi
    if [ -n "${LAB_KEEP:-}" ]; then
        lab_log "kept $dir"
    else
        rm -rf -- "$dir"
    fi
}

# lab_tmpdir: create a per-test directory, set and export LAB_TMPDIR (absolute);
# it is removed at exit (after the logs in it are shown if the test failed).
lab_tmpdir() {
    _lab_require_main_shell lab_tmpdir
    LAB_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-lab.XXXXXXXX") ||
        lab_fail "cannot create a temporary directory in ${TMPDIR:-/tmp}"
    export LAB_TMPDIR
    lab_on_exit "_lab_tmpdir_cleanup $(printf %q "$LAB_TMPDIR")"
}

# lab_cache NAME SOURCE MAKE...: print the directory of a cache entry made
# by "MAKE... DIR" (DIR: an empty directory) in $LAB_CACHE_DIR, made once
# (under a lock; parallel tests wait for it) per UTC day and per SOURCE (the
# text that decides what MAKE makes, e.g. the script). Entries are complete or
# absent, read-only by convention: callers copy what they need. Fails (the
# caller then makes its own) if LAB_CACHE_DIR is unset or MAKE fails. Entries
# of another day or source are removed once a day old.
lab_cache() {
    local name=$1 source=$2 key entry
    shift 2
    [ -n "${LAB_CACHE_DIR:-}" ] || return 1
    key=$(date -u +%Y%m%d)-$(sha256sum <<<"$source" | cut -c1-16)
    entry=$LAB_CACHE_DIR/$name-$key
    if [ ! -e "$entry/.complete" ]; then
        mkdir -p "$LAB_CACHE_DIR" || return 1
        (
            flock -w 300 9 || exit 1
            [ ! -e "$entry/.complete" ] || exit 0
            rm -rf "$entry" "$entry.new" && mkdir "$entry.new" || exit 1
            "$@" "$entry.new" || exit 1
            touch "$entry.new/.complete" && mv -T "$entry.new" "$entry" || exit 1
            find "$LAB_CACHE_DIR" -mindepth 1 -maxdepth 1 -name "$name-*" ! -name "$name-$key" \
                -mmin +1440 -exec rm -rf {} + || true
        ) 9>"$LAB_CACHE_DIR/.lock" || {
            lab_log "could not make the $name cache entry in $LAB_CACHE_DIR; making my own"
            return 1
        }
    fi
    echo "$entry"
}

# free_port [N]: print a loopback port P such that P..P+N-1 are all free now.
# Callers must still cope with losing a race (retry on bind failure).
free_port() {
    "$LAB_PYTHON" - "${1:-1}" <<'EOF'
import socket
import sys

n = int(sys.argv[1])
for _ in range(100):
    socks = [socket.socket()]
    try:
        socks[0].bind(("127.0.0.1", 0))
        base = socks[0].getsockname()[1]
        if base + n - 1 > 65535:
            continue
        for p in range(base + 1, base + n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", p))
        print(base)
        sys.exit(0)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
sys.exit("free_port: found no run of %d free loopback ports" % n)
EOF
}

# True while PID exists and is not a zombie.
_lab_alive() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# _lab_kill PID COMM: stop a process we started, if it is still the one named
# COMM: SIGTERM, wait up to 5 s, then SIGKILL.
_lab_kill() {
    local pid=$1 comm=$2 actual
    [ -n "$pid" ] || return 0
    if _lab_alive "$pid"; then
        read -r actual 2>/dev/null <"/proc/$pid/comm" || true
        if [ "$actual" != "$comm" ]; then
            lab_log "not killing pid $pid: it is '$actual', not $comm"
            return 0
        fi
        kill -TERM "$pid" 2>/dev/null || true
        # A short poll (no process forked per check): most exit within a few ms.
        if ! LAB_WAIT_POLL=0.02 lab_wait_until 5 "$comm (pid $pid) to exit" eval "! _lab_alive $pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # Reap it if it is our child (tpm2-abrmd, the EST server); exit status ignored.
    wait "$pid" 2>/dev/null || true
}

_lab_absdir() {
    mkdir -p -- "$1" && (cd -- "$1" && pwd)
}

_tpm_env_write_config() {
    local dir=$1
    mkdir -p "$dir/tpm" "$dir/localca"
    # swtpm_setup and swtpm_localca config private to this TPM, so parallel
    # setups do not share /var/lib/swtpm-localca.
    cat >"$dir/swtpm_setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $dir/swtpm-localca.conf
create_certs_tool_options = $dir/swtpm-localca.options
active_pcr_banks = sha256
EOF
    cat >"$dir/swtpm-localca.conf" <<EOF
statedir = $dir/localca
signingkey = $dir/localca/signkey.pem
issuercert = $dir/localca/issuercert.pem
certserial = $dir/localca/certserial
EOF
    cat >"$dir/swtpm-localca.options" <<EOF
--platform-manufacturer fleetid-lab
--platform-version 2.1
--platform-model swtpm
EOF
    cat >"$dir/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
}

# _tpm_env_manufacture DIR: a fresh TPM state in DIR/tpm, with EK
# certificates and a platform certificate in NV, as swtpm_setup makes them.
_tpm_env_manufacture() {
    local dir=$1 runas=()
    [ -e "$dir/swtpm_setup.conf" ] || _tpm_env_write_config "$dir"
    [ "$(id -u)" -eq 0 ] && runas=(--runas root)
    swtpm_setup --tpm2 --tpmstate "$dir/tpm" --createek --create-ek-cert \
        --create-platform-cert --overwrite --config "$dir/swtpm_setup.conf" \
        "${runas[@]}" --logfile "$dir/swtpm_setup.log" >/dev/null 2>&1
}

_tpm_env_probe() {
    _lab_alive "$TPM_ENV_ABRMD_PID" ||
        lab_fail "tpm2-abrmd exited during startup; see $TPM_ENV_DIR/abrmd.log"
    tpm2_getcap properties-fixed >/dev/null 2>&1
}

# tpm_env_start DIR: fresh swtpm (state in DIR/tpm, EK certificates in NV) +
# private dbus-daemon + tpm2-abrmd. Exports DBUS_SESSION_BUS_ADDRESS,
# FLEETID_TEST_TCTI, TPM2TOOLS_TCTI, TPM_ENV_DIR, TPM_ENV_PORT.
tpm_env_start() {
    local dir
    _lab_require_main_shell tpm_env_start
    dir=$(_lab_absdir "${1:?usage: tpm_env_start DIR}") || lab_fail "cannot create $1"
    [ -z "${TPM_ENV_DIR:-}" ] || lab_fail "tpm_env_start: already running in $TPM_ENV_DIR"
    # sun_path holds 108 bytes.
    [ ${#dir} -le 100 ] || lab_fail "tpm_env_start: $dir is too long for a D-Bus socket path"
    TPM_ENV_DIR=$dir
    lab_on_exit tpm_env_stop
    _tpm_env_write_config "$dir"

    # A copy of a TPM manufactured once per day and lab version (see
    # lab_cache), or else one manufactured here.
    local made key
    key=$( (declare -f _tpm_env_write_config _tpm_env_manufacture; swtpm --version) 2>&1) || true
    if made=$(lab_cache tpm "$key" _tpm_env_manufacture) && rm -rf "$dir/tpm" &&
        cp -a "$made/tpm" "$dir/tpm"; then
        cp "$made/swtpm_setup.log" "$dir/swtpm_setup.log" 2>/dev/null || true
    else
        _tpm_env_manufacture "$dir" ||
            lab_fail "swtpm_setup failed to manufacture the TPM; see $dir/swtpm_setup.log"
    fi

    local attempt port=
    for attempt in 1 2 3 4 5; do
        port=$(free_port 2) || lab_fail "no free loopback ports for swtpm"
        if _tpm_env_swtpm "$dir" "$port"; then
            break
        fi
        lab_log "swtpm could not listen on port $port (attempt $attempt), retrying"
        port=
    done
    [ -n "$port" ] || lab_fail "swtpm did not start after 5 attempts; see $dir/swtpm.log"
    _tpm_env_swtpm_pid "$dir"
    TPM_ENV_PORT=$port

    local out
    out=$(dbus-daemon --config-file="$dir/dbus.conf" --fork --print-address=1 --print-pid=1) ||
        lab_fail "dbus-daemon did not start with $dir/dbus.conf"
    DBUS_SESSION_BUS_ADDRESS=$(sed -n 1p <<<"$out")
    TPM_ENV_DBUS_PID=$(sed -n 2p <<<"$out")
    export DBUS_SESSION_BUS_ADDRESS

    export FLEETID_TEST_TCTI=$LAB_TABRMD_TCTI
    export TPM2TOOLS_TCTI=$LAB_TABRMD_TCTI
    export TPM_ENV_DIR TPM_ENV_PORT
    _tpm_env_abrmd
}

# _tpm_env_swtpm DIR PORT: swtpm on the TPM state in DIR/tpm, commands on
# PORT, control on PORT+1; fails if it cannot listen.
_tpm_env_swtpm() {
    local dir=$1 port=$2
    rm -f "$dir/swtpm.pid"
    swtpm socket --tpm2 --tpmstate dir="$dir/tpm" \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear --daemon \
        --pid file="$dir/swtpm.pid" --log file="$dir/swtpm.log" \
        2>>"$dir/swtpm.stderr"
}

_tpm_env_swtpm_pid() {
    lab_wait_until 5 "swtpm to write $1/swtpm.pid" test -s "$1/swtpm.pid" ||
        lab_fail "swtpm did not start; see $1/swtpm.log"
    TPM_ENV_SWTPM_PID=$(cat "$1/swtpm.pid")
}

# _tpm_env_abrmd: tpm2-abrmd on the private bus, in front of the swtpm on
# $TPM_ENV_PORT; returns once it answers.
_tpm_env_abrmd() {
    local allow_root=()
    [ "$(id -u)" -eq 0 ] && allow_root=(--allow-root)
    tpm2-abrmd --session --tcti="swtpm:host=127.0.0.1,port=$TPM_ENV_PORT" "${allow_root[@]}" \
        >>"$TPM_ENV_DIR/abrmd.log" 2>&1 &
    TPM_ENV_ABRMD_PID=$!
    # No file shows that it answers: poll (tpm2_getcap is cheap).
    LAB_WAIT_POLL=0.05 lab_wait_until 10 "tpm2-abrmd to answer on $DBUS_SESSION_BUS_ADDRESS" _tpm_env_probe ||
        lab_fail "the TPM resource manager did not come up; see $TPM_ENV_DIR/abrmd.log"
}

# tpm_env_restart_abrmd: stop tpm2-abrmd with SIGTERM (as `systemctl restart
# tpm2-abrmd` does) and start it again on the same bus and swtpm. Clients
# connected to the old one lose their connection.
tpm_env_restart_abrmd() {
    _lab_require_main_shell tpm_env_restart_abrmd
    [ -n "${TPM_ENV_DIR:-}" ] || lab_fail "tpm_env_restart_abrmd: no TPM environment"
    _lab_kill "$TPM_ENV_ABRMD_PID" tpm2-abrmd
    _lab_alive "$TPM_ENV_ABRMD_PID" && lab_fail "tpm2-abrmd (pid $TPM_ENV_ABRMD_PID) did not stop"
    _tpm_env_abrmd
}

# tpm_env_kill_swtpm: SIGKILL swtpm (a crashed TPM simulator): every TPM
# command fails until tpm_env_start_swtpm.
tpm_env_kill_swtpm() {
    [ -n "${TPM_ENV_DIR:-}" ] || lab_fail "tpm_env_kill_swtpm: no TPM environment"
    [ "$(cat "/proc/$TPM_ENV_SWTPM_PID/comm" 2>/dev/null)" = swtpm ] ||
        lab_fail "tpm_env_kill_swtpm: pid $TPM_ENV_SWTPM_PID is not swtpm"
    kill -KILL "$TPM_ENV_SWTPM_PID"
    LAB_WAIT_POLL=0.02 lab_wait_until 5 "swtpm (pid $TPM_ENV_SWTPM_PID) to die" eval "! _lab_alive $TPM_ENV_SWTPM_PID" ||
        lab_fail "swtpm did not die"
}

# tpm_env_start_swtpm: start swtpm again on the same state directory and port
# (after tpm_env_kill_swtpm); the TPM keeps its persistent keys and NV.
tpm_env_start_swtpm() {
    [ -n "${TPM_ENV_DIR:-}" ] || lab_fail "tpm_env_start_swtpm: no TPM environment"
    # Retries the start itself (it may find the port still held): a plain poll.
    LAB_WAIT_POLL=0.1 lab_wait_until 10 "swtpm to listen again on port $TPM_ENV_PORT" \
        _tpm_env_swtpm "$TPM_ENV_DIR" "$TPM_ENV_PORT" ||
        lab_fail "swtpm could not listen again on port $TPM_ENV_PORT; see $TPM_ENV_DIR/swtpm.stderr"
    _tpm_env_swtpm_pid "$TPM_ENV_DIR"
}

# tpm_env_stop: stop tpm2-abrmd, dbus-daemon and swtpm (by PID). Idempotent.
tpm_env_stop() {
    [ -n "${TPM_ENV_DIR:-}" ] || return 0
    _lab_kill "${TPM_ENV_ABRMD_PID:-}" tpm2-abrmd
    _lab_kill "${TPM_ENV_DBUS_PID:-}" dbus-daemon
    _lab_kill "${TPM_ENV_SWTPM_PID:-}" swtpm
    unset TPM_ENV_DIR TPM_ENV_PORT TPM_ENV_ABRMD_PID TPM_ENV_DBUS_PID TPM_ENV_SWTPM_PID
    unset DBUS_SESSION_BUS_ADDRESS FLEETID_TEST_TCTI TPM2TOOLS_TCTI
}

# _est_env_pki_init DIR: a fresh lab PKI in DIR/pki.
_est_env_pki_init() {
    "$LAB_PYTHON" "$LAB_PKI_PY" init "$1/pki" >/dev/null
}

_est_env_probe() {
    _lab_alive "$EST_PID" || lab_fail "the EST server exited during startup; see $EST_DIR/est.stderr"
    test -s "$EST_DIR/est.port"
}

# est_env_start DIR [est_server.py options...]: lab PKI in DIR/pki (created if
# missing, kept across restarts) and the EST server on a fresh port. Exports
# EST_PORT, EST_URL, EST_PKI, EST_LOG (truncated at each start), EST_CONTROL,
# EST_DIR, EST_PID. The control file is left as it is (est_control writes it).
est_env_start() {
    local dir
    _lab_require_main_shell est_env_start
    dir=$(_lab_absdir "${1:?usage: est_env_start DIR [est_server options]}") ||
        lab_fail "cannot create $1"
    shift
    [ -z "${EST_PID:-}" ] || lab_fail "est_env_start: an EST server is already running (pid $EST_PID)"
    if [ ! -e "$dir/pki/mfg-ca.pem" ]; then
        # A copy of the lab PKI made once per day and pki.py version (see
        # lab_cache), or else one made here.
        local made
        if ! made=$(lab_cache pki "$(cat "$LAB_PKI_PY")" _est_env_pki_init) ||
            ! cp -a "$made/pki" "$dir/pki"; then
            rm -rf "$dir/pki"
            _est_env_pki_init "$dir" || lab_fail "cannot create the lab PKI in $dir/pki"
        fi
    fi
    EST_DIR=$dir
    EST_PKI=$dir/pki
    EST_LOG=$dir/est.log
    EST_CONTROL=$dir/est-control.json
    rm -f "$dir/est.port"
    : >"$EST_LOG"
    "$LAB_PYTHON" "$LAB_EST_SERVER" --pki "$EST_PKI" --port 0 --port-file "$dir/est.port" \
        --pid-file "$dir/est.pid" --log "$EST_LOG" --control "$EST_CONTROL" "$@" \
        >>"$dir/est.stderr" 2>&1 &
    EST_PID=$!
    if [ -z "${_est_env_registered:-}" ]; then
        lab_on_exit est_env_stop
        _est_env_registered=1
    fi
    lab_wait_until 10 "the EST server to write $dir/est.port" _est_env_probe ||
        lab_fail "the EST server did not start; see $dir/est.stderr"
    EST_PORT=$(cat "$dir/est.port")
    EST_URL=https://localhost:$EST_PORT/.well-known/est
    export EST_PORT EST_URL EST_PKI EST_LOG EST_CONTROL EST_DIR EST_PID
}

# est_env_stop: stop the EST server (by PID). Idempotent; the PKI, log and
# control file stay so the server can be restarted with other options.
est_env_stop() {
    [ -n "${EST_PID:-}" ] || return 0
    _lab_kill "$EST_PID" python3
    unset EST_PID EST_PORT EST_URL
}

# est_control JSON: atomically replace the EST server's control file (fault
# counts re-arm). est_control '' removes it (normal behaviour).
est_control() {
    [ -n "${EST_CONTROL:-}" ] || lab_fail "est_control: no EST environment"
    if [ -z "$1" ]; then
        rm -f "$EST_CONTROL"
        return 0
    fi
    printf '%s\n' "$1" >"$EST_CONTROL.tmp"
    "$LAB_PYTHON" -c 'import json, sys; json.load(open(sys.argv[1]))' "$EST_CONTROL.tmp" ||
        lab_fail "est_control: not valid JSON: $1"
    mv -f "$EST_CONTROL.tmp" "$EST_CONTROL"
}

# est_log_count [FIELD=VALUE...]: number of EST log lines whose fields equal
# the given values (compared as text, non-strings as JSON; FIELD=null matches
# an absent field); only "request" events unless event=... is given.
# Example: est_log_count op=simpleenroll status=200 label=null
est_log_count() {
    "$LAB_PYTHON" - "$EST_LOG" "$@" <<'EOF'
import json
import sys

def text(value):
    return value if isinstance(value, str) else json.dumps(value)


want = {"event": "request"}
for arg in sys.argv[2:]:
    key, _, value = arg.partition("=")
    want[key] = value
n = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        rec = json.loads(line)
        if all(text(rec.get(k)) == v for k, v in want.items()):
            n += 1
print(n)
EOF
}
