# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tests/lib/tpm-count.sh: count the TPM commands that reach the lab's swtpm,
# for tests/integration/test-tpm-command-count.sh and tests/bench/. Sourced
# after tests/lib/fleetid.sh (or tpm-env.sh), once the TPM environment is up.
#
#   tpm_count_start        tpm-count-proxy.py in front of swtpm, and a second
#                          tpm2-abrmd (on the lab's private bus, under another
#                          D-Bus name) that talks to swtpm through it. Sets:
#     TPM_COUNT_LOG          the proxy's log, one JSON line per command
#     TPM_COUNT_PORT         the proxy's command port (control: + 1)
#     TPM_COUNT_DIRECT_TCTI  the proxy itself (swtpm TCTI, no resource manager)
#     TPM_COUNT_ABRMD_TCTI   the second tpm2-abrmd: what reaches the TPM through
#                            a resource manager, its own commands included
#   tpm_count_lines        lines in TPM_COUNT_LOG so far
#   tpm_count_settle       waits until the proxy has logged nothing new for
#                          0.5 s (tpm2-abrmd cleans up after a client has gone)
#   tpm_count_trace FROM TO  the commands of log lines FROM..TO-1, in order
# The lab's own tpm2-abrmd stays as it was: set-up steps that go through it
# are not counted.

TPM_COUNT_PROXY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tpm-count-proxy.py
TPM_COUNT_ABRMD_NAME=com.intel.tss2.Tabrmd.FleetidCount

tpm_count_start() {
    local allow_root=() dir=${TPM_ENV_DIR:?tpm_count_start: no TPM environment}
    _lab_require_main_shell tpm_count_start
    TPM_COUNT_LOG=$dir/tpm-count.log
    : >"$TPM_COUNT_LOG"
    "$LAB_PYTHON" "$TPM_COUNT_PROXY" serve --upstream-port "$TPM_ENV_PORT" --log "$TPM_COUNT_LOG" \
        --port-file "$dir/tpm-count.port" >"$dir/tpm-count.stderr" 2>&1 &
    TPM_COUNT_PROXY_PID=$!
    lab_on_exit "_lab_kill $TPM_COUNT_PROXY_PID python3"
    lab_wait_until 10 "the counting proxy to listen" test -s "$dir/tpm-count.port" ||
        lab_fail "the counting proxy did not start; see $dir/tpm-count.stderr"
    TPM_COUNT_PORT=$(cat "$dir/tpm-count.port")
    TPM_COUNT_DIRECT_TCTI="swtpm:host=127.0.0.1,port=$TPM_COUNT_PORT"
    TPM_COUNT_ABRMD_TCTI="tabrmd:bus_name=$TPM_COUNT_ABRMD_NAME,bus_type=session"

    [ "$(id -u)" -eq 0 ] && allow_root=(--allow-root)
    tpm2-abrmd --session --dbus-name="$TPM_COUNT_ABRMD_NAME" --tcti="$TPM_COUNT_DIRECT_TCTI" \
        "${allow_root[@]}" >"$dir/abrmd-count.log" 2>&1 &
    TPM_COUNT_ABRMD_PID=$!
    lab_on_exit "_lab_kill $TPM_COUNT_ABRMD_PID tpm2-abrmd"
    lab_wait_until 10 "the counting tpm2-abrmd to answer" \
        env TPM2TOOLS_TCTI="$TPM_COUNT_ABRMD_TCTI" tpm2_getcap properties-fixed >/dev/null 2>&1 ||
        lab_fail "the counting tpm2-abrmd did not come up; see $dir/abrmd-count.log"
    tpm_count_settle
    export TPM_COUNT_LOG TPM_COUNT_PORT TPM_COUNT_DIRECT_TCTI TPM_COUNT_ABRMD_TCTI
}

tpm_count_lines() {
    wc -l <"$TPM_COUNT_LOG"
}

tpm_count_settle() {
    local n=-1 m tries=0
    while m=$(tpm_count_lines) && [ "$m" != "$n" ] && ((tries++ < 40)); do
        n=$m
        sleep 0.5
    done
    [ "$m" = "$n" ] || lab_fail "the TPM did not go quiet within 20 s"
}

tpm_count_trace() {
    "$LAB_PYTHON" "$TPM_COUNT_PROXY" trace --log "$TPM_COUNT_LOG" --range "$1:$2"
}
