#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# tpm-commands.sh: how many TPM commands, of which kind, fleetid needs for
#   provision  fleetid-provision create-key + csr + install-cert
#   first      the first enrollment (fleetidd --oneshot, creates the key)
#   repeat     fleetidd --oneshot again, when already enrolled
# Two counts per phase:
#   - what reached the TPM: tests/lib/tpm-count-proxy.py sits between the
#     client side and swtpm and logs every command (tests/lib/tpm-count.sh);
#   - what fleetid sent: every fleetid program runs under esys-traced.sh,
#     whose ESYS trace has one line per command. All of fleetid's TPM
#     commands, the signatures of its OpenSSL provider included, go through
#     its own ESYS connection. Reached minus sent is what the resource manager
#     added (ContextSave/ContextLoad/FlushContext).
# Paths, in this order:
#   abrmd   fleetid -> tpm2-abrmd -> proxy -> swtpm: provision, first, repeat
#           (as in the lab; /dev/tpmrm0 on a gateway does the same kind of
#           swapping). The lab's own tpm2-abrmd stays idle: a second one on
#           the same private bus, under another D-Bus name, uses the proxy.
#   direct  fleetid -> proxy -> swtpm with the swtpm TCTI, no resource
#           manager: repeat (same TPM state), then provision and first from
#           scratch. Here ESYS and the wire must agree command by command,
#           which checks both counts. swtpm holds 3 transient objects, so a
#           step that needed more would fail with TPM_RC_OBJECT_MEMORY: that
#           is reported, with the commands up to the failure.
# Before each "provision", every persistent object and NV index created since
# the lab started is removed, so both paths start from the same TPM. Set-up
# steps talk to swtpm directly and are not counted.
#
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/tpm-commands.md (the tables), tpm-commands.log (the proxy's
# JSON lines, copied at the end), tpm-trace-<path>-<phase>.txt (each phase's commands in order)
# and esys-<path>-<phase>/ (the ESYS traces, one file per process).
# Exit status: 0 done, 1 a step failed, 77 a tool is missing.

set -euo pipefail
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

lab_require_tools tpm2_evictcontrol tpm2_nvundefine tpm2_flushcontext
bench_out_dir
fleetid_lab_up
RESULT=$BENCH_OUT/tpm-commands.md

# The lab's persistent objects and NV indices before fleetid touched the TPM.
snapshot_handles() {
    bench_tpm_direct tpm2_getcap handles-persistent
    bench_tpm_direct tpm2_getcap handles-nv-index
}
snapshot_handles | sort >"$LAB_TMPDIR/handles.before"

tpm_count_start
PLOG=$TPM_COUNT_LOG
DIRECT_TCTI=$TPM_COUNT_DIRECT_TCTI
ABRMD_TCTI=$TPM_COUNT_ABRMD_TCTI
log_lines() { tpm_count_lines; }
settle() { tpm_count_settle; }

# The proxy counts what it forwards: one GetRandom in each framing, two lines.
from=$(log_lines)
"$LAB_PYTHON" "$BENCH_PROXY" probe --port "$TPM_COUNT_PORT" || lab_fail "no TPM through the proxy"
settle
got=$(tpm_count_trace "$from" "$(log_lines)" | awk '!/^#/ {print $3}' | xargs)
[ "$got" = "GetRandom GetRandom" ] || lab_fail "the proxy counted '$got' for two GetRandom"

# reset_tpm: remove what fleetid created (persistent objects, NV indices) and
# anything a process without a resource manager left loaded.
reset_tpm() {
    local h created
    mapfile -t created < <(snapshot_handles | sort | comm -13 "$LAB_TMPDIR/handles.before" - |
        sed -n 's/^- //p')
    for h in "${created[@]}"; do
        case $h in
            0x81*) bench_tpm_direct tpm2_evictcontrol -C o -c "$h" >/dev/null ;;
            *) bench_tpm_direct tpm2_nvundefine -C o "$h" >/dev/null ;;
        esac || lab_fail "cannot remove $h from the TPM"
    done
    for h in -t -l -s; do
        bench_tpm_direct tpm2_flushcontext "$h" >/dev/null 2>&1 || true
    done
    rm -rf -- "$LAB_TMPDIR/state"
}

# left_behind: "N transient objects, M sessions" loaded in the TPM now, or nothing.
left_behind() {
    local t s
    t=$(bench_tpm_direct tpm2_getcap handles-transient | grep -c -- '^- ' || true)
    s=$(bench_tpm_direct tpm2_getcap handles-loaded-session | grep -c -- '^- ' || true)
    [ "$t$s" = 00 ] || echo "$t transient objects, $s sessions"
}

PHASES=()
ESYS_ARGS=()
NOTES=()
LEAKS=()

# phase PATH NAME COMMAND...: run COMMAND, the fleetid programs in it traced by
# esys-traced.sh; record the proxy log range and the ESYS traces under
# "PATH:NAME" ("PATH:NAME (failed)" if COMMAND failed). Returns COMMAND's status.
phase() {
    local path=$1 name=$2 from to rc=0 label left
    shift 2
    BENCH_ESYS_DIR=$BENCH_OUT/esys-$path-$name
    rm -rf -- "$BENCH_ESYS_DIR"
    mkdir -p "$BENCH_ESYS_DIR"
    export BENCH_ESYS_DIR
    from=$(log_lines)
    "$@" || rc=$?
    settle
    to=$(log_lines)
    label=$path:$name
    [ "$rc" -eq 0 ] || label="$label (failed)"
    PHASES+=(--phase "$label=$from:$to")
    ESYS_ARGS+=(--esys "$label=$BENCH_ESYS_DIR")
    [ "$path" != direct ] || [ "$rc" -ne 0 ] || ESYS_ARGS+=(--direct "$label")
    tpm_count_trace "$from" "$to" >"$BENCH_OUT/tpm-trace-$path-$name.txt"
    left=$(left_behind)
    [ -z "$left" ] || LEAKS+=("$label left loaded in the TPM: $left")
    return "$rc"
}

# fleetid_provision runs $FLEETID_PROVISION: make that the traced one.
FLEETIDD_REAL=$FLEETIDD
printf '#!/bin/sh\nexec %q %q "$@"\n' "$BENCH_DIR/esys-traced.sh" "$FLEETID_PROVISION" \
    >"$LAB_TMPDIR/fleetid-provision"
chmod +x "$LAB_TMPDIR/fleetid-provision"
FLEETID_PROVISION=$LAB_TMPDIR/fleetid-provision

# enroll_once EXPECT: fleetidd --oneshot, traced; EXPECT is "enrolled" (a new
# certificate) or "already enrolled".
enroll_once() {
    timeout 120 "$BENCH_DIR/esys-traced.sh" "$FLEETIDD_REAL" --config "$FLEETID_CONF" --oneshot \
        >"$LAB_TMPDIR/fleetidd.log" 2>&1 || return 1
    grep -q "fleetidd: $1: operational certificate" "$LAB_TMPDIR/fleetidd.log" ||
        lab_fail "fleetidd did not say '$1'; see $LAB_TMPDIR/fleetidd.log"
}

use_tcti() {
    FLEETID_TEST_TCTI=$1
    export FLEETID_TEST_TCTI
}

# Through tpm2-abrmd, as in the lab (and like /dev/tpmrm0 on a gateway).
use_tcti "$ABRMD_TCTI"
reset_tpm
phase abrmd provision fleetid_provision SN-BENCH-1
fleetid_write_config
phase abrmd first enroll_once enrolled || lab_fail "abrmd: the first enrollment failed"
phase abrmd repeat enroll_once "already enrolled" || lab_fail "abrmd: the repeat failed"

# Without a resource manager: the same TPM state, then from scratch.
use_tcti "$DIRECT_TCTI"
fleetid_write_config
phase direct repeat enroll_once "already enrolled" || lab_fail "direct: the repeat failed"
reset_tpm
phase direct provision fleetid_provision SN-BENCH-2
fleetid_write_config
if ! phase direct first enroll_once enrolled; then
    NOTES+=("direct:first failed: $(grep -v '^trace:' "$LAB_TMPDIR/fleetidd.log" | tail -n 1)")
fi

{
    echo "Run: $(bench_machine_note)."
    echo
    "$LAB_PYTHON" "$BENCH_PROXY" report --log "$PLOG" "${PHASES[@]}" "${ESYS_ARGS[@]}"
    echo
    [ ${#LEAKS[@]} -gt 0 ] || echo "- No phase left transient objects or sessions loaded in the TPM."
    for n in "${LEAKS[@]}" "${NOTES[@]}"; do
        echo "- $n"
    done
} >"$RESULT"
cp -- "$PLOG" "$BENCH_OUT/tpm-commands.log"
cat "$RESULT"
