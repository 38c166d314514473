# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tests/lib/fleetid.sh: fleetid-specific helpers on top of tpm-env.sh, for the
# integration tests, the benchmarks and the demo.
#
#   FLEETID_BUILD_DIR   the meson build directory (default: build)
#   fleetid_lab_up [est_server options]   tmpdir + swtpm/abrmd + EST server
#   fleetid_provision [SERIAL] [ALG]      "manufacture" the device (birth key + IDevID in NV)
#   fleetid_write_config [EXTRA LINES]    $FLEETID_CONF for this lab (extra lines appended)
#   fleetid_enroll_once                   fleetidd --oneshot, output in $LAB_TMPDIR/fleetidd.log
#   fleetid_daemon_start                  fleetidd in the background ($FLEETIDD_PID, $FLEETIDD_LOG)
#   fleetid_status_get KEY / fleetid_wait_state SECS STATE   fleetidctl status --json
#   fleetid_cert_key_handle PEM HANDLE...   the TPM handle holding the key of a certificate

# shellcheck source=tests/lib/tpm-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/tpm-env.sh"

FLEETID_SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FLEETID_BUILD_DIR=$(cd "${FLEETID_BUILD_DIR:-$FLEETID_SOURCE_DIR/build}" && pwd) ||
    lab_fail "no build directory; set FLEETID_BUILD_DIR"
FLEETIDD=$FLEETID_BUILD_DIR/agent/fleetidd/fleetidd
FLEETIDCTL=$FLEETID_BUILD_DIR/agent/fleetidctl/fleetidctl
FLEETID_PROVISION=$FLEETID_BUILD_DIR/agent/provision/fleetid-provision
# fleetidd runs its work in fleetid-worker (docs/architecture.md), at the
# installed path unless FLEETIDD_WORKER names another: the build tree's.
export FLEETIDD_WORKER=$FLEETID_BUILD_DIR/agent/worker/fleetid-worker
# The manufactured TPM and the lab PKI each test copies (lab_cache in
# tpm-env.sh); LAB_CACHE_DIR= (empty) makes every test make its own.
LAB_CACHE_DIR=${LAB_CACHE_DIR-$FLEETID_BUILD_DIR/lab-cache}
for _b in "$FLEETIDD" "$FLEETIDD_WORKER" "$FLEETIDCTL" "$FLEETID_PROVISION"; do
    [ -x "$_b" ] || lab_fail "$_b is not built (FLEETID_BUILD_DIR=$FLEETID_BUILD_DIR)"
done

fleetid_lab_up() {
    lab_require_tools swtpm swtpm_setup tpm2-abrmd dbus-daemon tpm2_getcap openssl
    lab_tmpdir
    tpm_env_start "$LAB_TMPDIR"
    est_env_start "$LAB_TMPDIR" "$@"
}

# fleetid_provision [SERIAL] [ALGORITHM] [CREATE-KEY OPTION...]: birth key in
# the TPM, CSR signed by it, certificate from the lab manufacturer CA,
# installed in NV and locked. The options go to create-key (e.g. --template
# tcg, --hierarchy owner); with --force among them, the device is provisioned
# again: the certificate replaces the locked one too.
fleetid_provision() {
    local serial=${1:-SN-$RANDOM$RANDOM} alg=${2:-ecc-p256} force=()
    local p=("$FLEETID_PROVISION" --tcti "$FLEETID_TEST_TCTI")
    shift $(($# < 2 ? $# : 2))
    [[ " $* " != *" --force "* ]] || force=(--force --remove-lock)
    "${p[@]}" create-key --algorithm "$alg" "$@" >/dev/null || lab_fail "create-key $* failed"
    "${p[@]}" csr --serial "$serial" --out "$LAB_TMPDIR/birth-csr.pem" || lab_fail "csr failed"
    "$LAB_PYTHON" "$LAB_PKI_PY" sign-birth "$EST_PKI" "$LAB_TMPDIR/birth-csr.pem" \
        "$LAB_TMPDIR/idevid.pem" >/dev/null || lab_fail "the lab manufacturer CA refused the CSR"
    "${p[@]}" install-cert --cert "$LAB_TMPDIR/idevid.pem" --ca "$EST_PKI/mfg-ca.pem" --lock "${force[@]}" \
        >/dev/null || lab_fail "install-cert failed"
    FLEETID_SERIAL=$serial
    export FLEETID_SERIAL
}

# fleetid_write_config [LINES...]: a config for this lab at $FLEETID_CONF.
# Without lines: explicit trust anchor = the lab EST CA. Lines are appended
# verbatim (libconfig groups must then not repeat: pass a full "est: {...};"
# with FLEETID_CONF_NO_EST=1 to replace the est group). The runtime directory
# (the status copy) is $FLEETID_RUNTIME, in the lab's tmpdir, never /run.
fleetid_write_config() {
    FLEETID_CONF=$LAB_TMPDIR/fleetid.conf
    FLEETID_STATE=$LAB_TMPDIR/state
    FLEETID_RUNTIME=$LAB_TMPDIR/run
    {
        echo "tpm: { tcti = \"$FLEETID_TEST_TCTI\"; };"
        echo "paths: { state_dir = \"$FLEETID_STATE\"; runtime_dir = \"$FLEETID_RUNTIME\"; };"
        if [ -z "${FLEETID_CONF_NO_EST:-}" ]; then
            echo "est: { url = \"$EST_URL\"; trust_anchors = \"$EST_PKI/est-ca.pem\"; timeout = 20; };"
        fi
        local l
        for l in "$@"; do echo "$l"; done
    } >"$FLEETID_CONF"
    export FLEETID_CONF FLEETID_STATE FLEETID_RUNTIME
}

# fleetid_worker_of DAEMON: the fleetid-worker of the build tree DAEMON
# (.../agent/fleetidd/fleetidd) comes from, so that a benchmark's baseline
# daemon runs with its own; $FLEETIDD_WORKER for anything else.
fleetid_worker_of() {
    case $1 in
    */agent/fleetidd/fleetidd) printf '%s\n' "${1%/agent/fleetidd/fleetidd}/agent/worker/fleetid-worker" ;;
    *) printf '%s\n' "$FLEETIDD_WORKER" ;;
    esac
}

# fleetid_enroll_once: runs fleetidd --oneshot; returns its exit status.
fleetid_enroll_once() {
    local rc=0
    FLEETIDD_WORKER=$(fleetid_worker_of "$FLEETIDD") timeout 120 "$FLEETIDD" --config "$FLEETID_CONF" --oneshot >"$LAB_TMPDIR/fleetidd.log" 2>&1 || rc=$?
    cat "$LAB_TMPDIR/fleetidd.log" >&2
    return $rc
}

# fleetid_event_hook: an event hook script at $FLEETID_HOOK that records each
# event as a file in $FLEETID_EVENTS named <nanoseconds>-<event>, holding the
# FLEETID_* environment it was given. Use it in monitoring { hook = ... }.
fleetid_event_hook() {
    FLEETID_HOOK=$LAB_TMPDIR/hook.sh
    FLEETID_EVENTS=$LAB_TMPDIR/events
    mkdir -p "$FLEETID_EVENTS"
    cat >"$FLEETID_HOOK" <<HOOK
#!/bin/sh
env | grep '^FLEETID_' | sort > "$FLEETID_EVENTS/\$(date +%s%N)-\$FLEETID_EVENT"
HOOK
    chmod 0755 "$FLEETID_HOOK"
}

# fleetid_assert_no_private_keys DIR...: no plaintext private key in any file below DIR.
fleetid_assert_no_private_keys() {
    local hits
    hits=$(grep -rlE -- "-----BEGIN (ENCRYPTED |EC |RSA )?PRIVATE KEY-----" "$@" 2>/dev/null || true)
    [ -z "$hits" ] || lab_fail "plaintext private key material found: $hits"
}

# fleetid_status_get KEY: a top-level field of `fleetidctl status --json` (text
# as is, other values as JSON); empty if the status cannot be read.
fleetid_status_get() {
    "$FLEETIDCTL" --config "$FLEETID_CONF" status --json 2>/dev/null | "$LAB_PYTHON" -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$1" 2>/dev/null || true
}

# _fleetid_state_is STATE: true if fleetidctl status shows STATE; what it
# shows goes to LAB_WAIT_SEEN (for lab_wait_until's timeout message).
_fleetid_state_is() {
    local json rc=0 seen
    json=$("$FLEETIDCTL" --config "$FLEETID_CONF" status --json 2>/dev/null) || rc=$?
    seen=$("$LAB_PYTHON" -I -S -c '
import json, sys
try:
    s = json.loads(sys.argv[1])
    print("state=%s last_error=%s" % (s.get("state"), json.dumps(s.get("last_error"))))
except ValueError:
    print("no status (fleetidctl status --json exited %s)" % sys.argv[2])' "$json" "$rc") || true
    LAB_WAIT_SEEN=$seen
    [[ $seen == "state=$1 last_error="* ]]
}

# fleetid_wait_state SECONDS STATE: bounded wait until fleetidctl status shows
# STATE, checked each time the daemon writes its status record (into
# $FLEETID_STATE or $FLEETID_RUNTIME) or exits; on timeout, says what it last
# showed.
fleetid_wait_state() {
    local paths=${FLEETID_STATE:-} pids=
    [ -z "${FLEETID_RUNTIME:-}" ] || paths+=" $FLEETID_RUNTIME"
    [ -z "${FLEETIDD_PID:-}" ] || ! _lab_alive "$FLEETIDD_PID" || pids=$FLEETIDD_PID
    LAB_WAIT_PATHS=${paths# } LAB_WAIT_PIDS=$pids \
        lab_wait_until "$1" "fleetidctl status to show state '$2'" _fleetid_state_is "$2"
}

# fleetid_daemon_start: fleetidd (not --oneshot) in the background with
# $FLEETID_CONF; output in $FLEETIDD_LOG, PID in $FLEETIDD_PID; stopped at exit.
fleetid_daemon_start() {
    _lab_require_main_shell fleetid_daemon_start
    FLEETIDD_LOG=$LAB_TMPDIR/fleetidd-daemon.log
    # Emptied here, not by the background job's redirection: a wait for a
    # line right after this must not find the previous daemon's.
    : >"$FLEETIDD_LOG"
    # A fresh runtime directory, as systemd's RuntimeDirectory= gives each start:
    # a status copy left by an earlier run (a --oneshot) must not stand for
    # this daemon's state before it writes its own.
    [ -z "${FLEETID_RUNTIME:-}" ] || rm -rf "$FLEETID_RUNTIME"
    # Never the machine's system bus: a test's own (test-dbus-api exports
    # one), else an address where no bus is, and fleetidd runs without one.
    DBUS_SYSTEM_BUS_ADDRESS=${DBUS_SYSTEM_BUS_ADDRESS:-unix:path=$LAB_TMPDIR/no-system-bus} \
        FLEETIDD_WORKER=$(fleetid_worker_of "$FLEETIDD") "$FLEETIDD" --config "$FLEETID_CONF" >>"$FLEETIDD_LOG" 2>&1 &
    FLEETIDD_PID=$!
    lab_on_exit "_lab_kill $FLEETIDD_PID fleetidd"
}

# fleetid_expect_grep FILE ERE WHAT: fail unless FILE has a line matching ERE.
fleetid_expect_grep() {
    grep -qE -- "$2" "$1" ||
        lab_fail "$3: expected a line matching /$2/ in $1, got: $(tail -n 3 "$1" | tr '\n' ' ')"
}

# fleetid_expect_eq ACTUAL EXPECTED WHAT: fail naming WHAT unless ACTUAL = EXPECTED.
fleetid_expect_eq() {
    [ "$1" = "$2" ] || lab_fail "$3: expected '$2', got '$1'"
}

# fleetid_cert_key_handle PEM HANDLE...: the first HANDLE whose TPM key is the
# public key of the certificate PEM; empty if none is.
fleetid_cert_key_handle() {
    local pub h pem=$1
    shift
    pub=$(openssl x509 -in "$pem" -noout -pubkey | openssl pkey -pubin)
    for h in "$@"; do
        if [ "$(fleetid_tpm_pubkey "$h" 2>/dev/null)" = "$pub" ]; then
            echo "$h"
            return 0
        fi
    done
}

# fleetid_tpm_pubkey HANDLE: the public key of the TPM object at HANDLE, PEM
# as openssl writes it (comparable with `openssl x509 -noout -pubkey`).
fleetid_tpm_pubkey() {
    { tpm2_readpublic -c "$1" -f pem -o /dev/fd/3 >/dev/null; } 3>&1 | openssl pkey -pubin
}

# fleetid_tpm_attributes HANDLE: the object attributes of the TPM object at
# HANDLE as tpm2_readpublic names them, e.g. fixedtpm|fixedparent|...|sign.
fleetid_tpm_attributes() {
    tpm2_readpublic -c "$1" | sed -n '/^attributes:/{n;s/^ *value: //p}'
}

# fleetid_expect_oneshot_failure WHAT ERE: `fleetidd --oneshot` exits 75, its
# output and the status file's last_error match ERE, no operational.pem stored.
fleetid_expect_oneshot_failure() {
    local what=$1 ere=$2 rc=0 v
    fleetid_enroll_once || rc=$?
    fleetid_expect_eq "$rc" 75 "$what: fleetidd --oneshot exit status"
    fleetid_expect_grep "$LAB_TMPDIR/fleetidd.log" "enrollment failed: .*$ere" "$what: fleetidd output"
    fleetid_expect_eq "$(fleetid_status_get state)" failed "$what: status state"
    v=$(fleetid_status_get last_error)
    grep -qE -- "$ere" <<<"$v" || lab_fail "$what: status last_error: expected /$ere/, got '$v'"
    [ ! -e "$FLEETID_STATE/operational.pem" ] || lab_fail "$what: $FLEETID_STATE/operational.pem was stored"
}

# fleetid_requests_of OP: "status:connection" of each request for OP in the EST
# log, in order, the connections (client ports) named A, B, ... in order of
# appearance.
fleetid_requests_of() {
    "$LAB_PYTHON" - "$EST_LOG" "$1" <<'EOF'
import json, sys
names, out = {}, []
for line in open(sys.argv[1], encoding="utf-8"):
    rec = json.loads(line)
    if rec.get("event") == "request" and rec.get("op") == sys.argv[2]:
        name = names.setdefault(rec["peer"], chr(ord("A") + len(names)))
        out.append("%s:%s" % (rec.get("status"), name))
print(" ".join(out))
EOF
}

# fleetid_notify_listen: a private sd_notify socket for a daemon started with
# NOTIFY_SOCKET=$FLEETID_NOTIFY_SOCKET (a unix datagram socket in the lab's
# tmpdir, never systemd's). Each datagram is appended to $FLEETID_NOTIFY_LOG,
# one "N FIELD=VALUE" line per field, N counting the datagrams from 1. The
# listener stops at exit, after 900 s, or after 100000 datagrams.
fleetid_notify_listen() {
    _lab_require_main_shell fleetid_notify_listen
    FLEETID_NOTIFY_SOCKET=$LAB_TMPDIR/notify.sock
    FLEETID_NOTIFY_LOG=$LAB_TMPDIR/notify.log
    rm -f "$FLEETID_NOTIFY_SOCKET"
    : >"$FLEETID_NOTIFY_LOG"
    "$LAB_PYTHON" -c '
import socket, sys, time
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
end = time.monotonic() + 900
with open(log, "a", buffering=1) as f:
    for n in range(1, 100001):
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        for field in data.decode("utf-8", "replace").split("\n"):
            if field:
                f.write("%d %s\n" % (n, field))
' "$FLEETID_NOTIFY_SOCKET" "$FLEETID_NOTIFY_LOG" &
    FLEETID_NOTIFY_PID=$!
    lab_on_exit "_lab_kill $FLEETID_NOTIFY_PID python3"
    lab_wait_until 10 "the notify listener's socket" test -S "$FLEETID_NOTIFY_SOCKET" ||
        lab_fail "the notify listener did not start"
    export FLEETID_NOTIFY_SOCKET FLEETID_NOTIFY_LOG
}

# fleetid_notify_first ERE: the number of the first datagram with a field
# matching ERE (anchored at the field's start), empty if none.
fleetid_notify_first() {
    sed -nE "s/^([0-9]+) $1.*/\1/p" "$FLEETID_NOTIFY_LOG" | head -n 1
}

_fleetid_notify_has() {
    [ -n "$(fleetid_notify_first "$1")" ]
}

# fleetid_notify_wait SECS ERE: bounded wait until a field matches ERE.
fleetid_notify_wait() {
    lab_wait_until "$1" "an sd_notify field matching '$2'" _fleetid_notify_has "$2"
}

# fleetid_ping [SECONDS]: the daemon loop's answer on its probe socket
# $FLEETID_RUNTIME/ping ("pong STATE"); fails if none comes within SECONDS
# (default 5). Connecting succeeds even when the loop is stuck (the kernel
# queues the connection): only the answer shows that the loop runs.
fleetid_ping() {
    "$LAB_PYTHON" - "$FLEETID_RUNTIME/ping" "${1:-5}" <<'EOF2'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[2]))
s.connect(sys.argv[1])
data = b""
while len(data) < 256:
    chunk = s.recv(256 - len(data))
    if not chunk:
        break
    data += chunk
print(data.decode("ascii", "replace").strip())
EOF2
}

# fleetid_persistent_handles: how many persistent objects the TPM holds.
fleetid_persistent_handles() {
    tpm2_getcap handles-persistent | grep -c '^- 0x' || true
}

# fleetid_stop_daemon_bounded SECONDS: SIGTERM to $FLEETIDD_PID, then a wait
# bounded by SECONDS; fails if it still runs then. Sets $FLEETIDD_STOP_MS (the
# measured time, for the log) and $FLEETIDD_EXIT (its exit status).
fleetid_stop_daemon_bounded() {
    _lab_require_main_shell fleetid_stop_daemon_bounded
    local limit=$1 t0 t1
    t0=$(date +%s%N)
    kill -TERM "$FLEETIDD_PID"
    while _lab_alive "$FLEETIDD_PID"; do
        (($(date +%s%N) - t0 < limit * 1000000000)) ||
            lab_fail "fleetidd (pid $FLEETIDD_PID) still runs ${limit}s after SIGTERM"
        sleep 0.01
    done
    t1=$(date +%s%N)
    FLEETIDD_EXIT=0
    wait "$FLEETIDD_PID" || FLEETIDD_EXIT=$?
    FLEETIDD_STOP_MS=$(((t1 - t0) / 1000000))
}

# fleetid_second_est NAME: a second lab EST server for a second owner, on
# 127.0.0.1: its own lab PKI (its own EST CA, server certificate and keys)
# that trusts the first lab PKI's manufacturer CA (the device's maker stays,
# its owner changes). Sets and exports NAME_URL, NAME_PKI, NAME_LOG (its
# request log, as EST_LOG) and NAME_PID; stopped at exit. The first server's
# EST_* stay as they are.
fleetid_second_est() {
    _lab_require_main_shell fleetid_second_est
    local name=$1 dir=$LAB_TMPDIR/est-$1 pid
    [ -n "${EST_PKI:-}" ] || lab_fail "fleetid_second_est: start the first EST server first"
    mkdir -p "$dir"
    "$LAB_PYTHON" "$LAB_PKI_PY" init "$dir/pki" >/dev/null || lab_fail "cannot create the lab PKI in $dir/pki"
    cp "$EST_PKI/mfg-ca.pem" "$EST_PKI/mfg-ca.key" "$dir/pki/"
    : >"$dir/est.log"
    "$LAB_PYTHON" "$LAB_EST_SERVER" --pki "$dir/pki" --port 0 --port-file "$dir/est.port" \
        --pid-file "$dir/est.pid" --log "$dir/est.log" --control "$dir/est-control.json" \
        >>"$dir/est.stderr" 2>&1 &
    pid=$!
    lab_on_exit "_lab_kill $pid python3"
    lab_wait_until 10 "the second EST server to write $dir/est.port" test -s "$dir/est.port" ||
        lab_fail "the second EST server did not start; see $dir/est.stderr"
    printf -v "${name}_URL" 'https://localhost:%s/.well-known/est' "$(cat "$dir/est.port")"
    printf -v "${name}_PKI" '%s' "$dir/pki"
    printf -v "${name}_LOG" '%s' "$dir/est.log"
    printf -v "${name}_PID" '%s' "$pid"
    export "${name}_URL" "${name}_PKI" "${name}_LOG" "${name}_PID"
}

# fleetid_owner_file FILE URL anchors|fingerprint VALUE: an owner drop-in
# (docs/factory-reset.md) for the EST server at URL, with its trust anchor
# file, or pinned by a bootstrap fingerprint (pki.py fingerprint).
fleetid_owner_file() {
    if [ "$3" = anchors ]; then
        printf 'est: {\n        url = "%s";\n        trust_anchors = "%s";\n};\n' "$2" "$4" >"$1"
    else
        printf 'est: {\n        url = "%s";\n        bootstrap_fingerprint = "%s";\n};\n' "$2" "$4" >"$1"
    fi
}

# fleetid_issued_by PKI: true if the stored operational certificate chains to
# the EST CA of the lab PKI directory PKI.
fleetid_issued_by() {
    openssl verify -CAfile "$1/est-ca.pem" "$FLEETID_STATE/operational.pem" >/dev/null 2>&1
}

# fleetid_requests_in LOG: the number of requests an EST server's log holds.
fleetid_requests_in() {
    grep -c '"event": "request"' "$1" || true
}

# fleetid_tpm_lockout: puts the lab's TPM into dictionary-attack lockout (at
# most 2 failures, 600 s to recover one): three wrong passwords for an NV
# index of the test's own (0x01000100). Nothing of fleetid's is used.
fleetid_tpm_lockout() {
    tpm2_dictionarylockout --setup-parameters --max-tries=2 --recovery-time=600 --lockout-recovery-time=600 ||
        lab_fail "tpm2_dictionarylockout --setup-parameters failed"
    tpm2_nvdefine -C o -s 8 -a "authread|authwrite" -p right 0x01000100 >/dev/null || lab_fail "tpm2_nvdefine failed"
    local i
    for i in 1 2 3; do
        ! tpm2_nvread -P wrong 0x01000100 >/dev/null 2>&1 || lab_fail "tpm2_nvread with a wrong password succeeded"
    done
    tpm2_getcap properties-variable | grep -qE '^ *inLockout: *1' ||
        lab_fail "the TPM is not in lockout: $(tpm2_getcap properties-variable | grep -i lockout)"
}
