#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2119  # the lab functions' arguments are optional
#
# bench-enroll.sh: wall time of one first enrollment, fleetid against a plain
# curl + openssl client with a software key, measured side by side in one lab
# (swtpm behind tpm2-abrmd, the lab EST server, loopback only):
#
#   A  fleetidd --oneshot, fresh state: the state directory is deleted and the
#      operational key evicted before each run (the provisioned birth key and
#      certificate stay), so the run creates the key in the TPM
#   B  tests/lab/curl-enroll.sh with a software birth certificate and key
#      (pki.py software-client): openssl makes the key and CSR, curl POSTs it
#   C  fleetidd --oneshot, fresh state but the operational key already in the
#      TPM (it is reused): A - C is what creating and persisting the key costs
#   D  fleetidd --oneshot when already enrolled: no EST traffic, only starting
#      up, the TPM stack and the check of the stored certificate (fixed costs)
#   E  baseline B': curl-enroll.sh --full, the software key of B, but the
#      three requests fleetidd makes (/cacerts, /csrattrs, /simpleenroll) on
#      one TLS connection: like compared with like
#
# (Variants V and W, openssl verify with and without the tpm2-openssl provider,
# measured what a signature verification done in the TPM cost. fleetid's own
# provider verifies nothing in the TPM, and tpm2-openssl is no longer
# installed: they are gone. docs/benchmarks.md keeps their last numbers.)
#
# Rounds are interleaved (A B C D E, then B C D E A, ...) after one warm-up
# round that is not counted. Reports median and p90 per variant and ratios to
# B; the machine is shared, so only the ratios mean something. No timing is
# asserted: the exit status only says whether every enrollment succeeded.
#
#   BENCH_ROUNDS     counted rounds (default 10, at most 200)
#   BENCH_VARIANTS   which to run (default "A B C D E"; B is always run)
#   BENCH_OUT, FLEETID_BUILD_DIR: see bench-lib.sh
# Writes BENCH_OUT/bench-enroll.md (the tables), bench-enroll.tsv (the samples).
# Exit status: 0 done, 1 a run failed, 77 a tool is missing.

set -euo pipefail
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_rounds
read -ra VARIANTS <<<"${BENCH_VARIANTS:-A B C D E}"
for v in "${VARIANTS[@]}"; do
    case $v in A | B | C | D | E) ;; *) lab_fail "BENCH_VARIANTS: unknown variant '$v' (A B C D E)" ;; esac
done
[[ " ${VARIANTS[*]} " == *" B "* ]] || VARIANTS+=(B)

lab_require_tools curl tpm2_evictcontrol
bench_out_dir
fleetid_lab_up
fleetid_provision "SN-BENCH-$RANDOM"
fleetid_write_config
OP_KEY=0x81020002 # the default operational.key_handle (docs/tpm-handles.md)

"$LAB_PYTHON" "$LAB_PKI_PY" software-client "$EST_PKI" bench-sw >/dev/null ||
    lab_fail "pki.py software-client failed"
SW_CERT=$EST_PKI/bench-sw.pem
SW_KEY=$EST_PKI/bench-sw.key

SAMPLES=$BENCH_OUT/bench-enroll.tsv
printf 'round\tvariant\tus\tstart_us\test_from\test_to\n' >"$SAMPLES"

# prepare VARIANT: untimed set-up of the next run.
prepare() {
    case $1 in
        A)
            rm -rf -- "$FLEETID_STATE"
            bench_evict_if_present "$OP_KEY"
            ;;
        C)
            rm -rf -- "$FLEETID_STATE"
            if ! bench_tpm_direct tpm2_getcap handles-persistent | grep -qi -- "- $OP_KEY\$"; then
                # Only without A: let fleetidd create the key it is to reuse.
                run C || lab_fail "cannot create the operational key for variant C"
                rm -rf -- "$FLEETID_STATE"
            fi
            ;;
        D)
            if [ ! -s "$FLEETID_STATE/operational.pem" ]; then
                # Only after B or D: enroll (untimed) so that D finds it done.
                run C || lab_fail "cannot enroll for variant D"
            fi
            ;;
        B | E)
            rm -rf -- "$LAB_TMPDIR/sw-enroll"
            ;;
    esac
}

# run VARIANT: the timed part; output goes to $LAB_TMPDIR/run.log.
run() {
    case $1 in
        A | C | D)
            timeout 120 "$FLEETIDD" --config "$FLEETID_CONF" --oneshot
            ;;
        B)
            timeout 120 "$LAB_CURL_ENROLL" --url "$EST_URL" --cacert "$EST_PKI/est-ca.pem" \
                --cert "$SW_CERT" --key "$SW_KEY" --out "$LAB_TMPDIR/sw-enroll"
            ;;
        E)
            timeout 120 "$LAB_CURL_ENROLL" --url "$EST_URL" --cacert "$EST_PKI/est-ca.pem" \
                --cert "$SW_CERT" --key "$SW_KEY" --out "$LAB_TMPDIR/sw-enroll" --full
            ;;
    esac
} >"$LAB_TMPDIR/run.log" 2>&1

# check VARIANT: the run did enroll.
check() {
    case $1 in
        A | C)
            grep -q "fleetidd: enrolled: operational certificate" "$LAB_TMPDIR/run.log" ||
                lab_fail "variant $1: fleetidd did not enroll; see $LAB_TMPDIR/run.log"
            ;;
        D)
            grep -q "fleetidd: already enrolled: operational certificate" "$LAB_TMPDIR/run.log" ||
                lab_fail "variant D: fleetidd did not find its enrollment; see $LAB_TMPDIR/run.log"
            ;;
        B | E)
            [ -s "$LAB_TMPDIR/sw-enroll/cert.pem" ] || lab_fail "variant $1: no certificate"
            ;;
    esac
}

# measure ROUND VARIANT: prepare, run (timed), check, record.
measure() {
    local round=$1 v=$2 t0 t1 from to
    prepare "$v"
    from=$(wc -l <"$EST_LOG")
    t0=$EPOCHREALTIME
    if ! run "$v"; then
        cat "$LAB_TMPDIR/run.log" >&2
        lab_fail "variant $v failed in round $round"
    fi
    t1=$EPOCHREALTIME
    to=$(wc -l <"$EST_LOG")
    check "$v"
    [ "$round" -gt 0 ] || return 0
    printf '%d\t%s\t%d\t%s\t%d\t%d\n' "$round" "$v" "$(bench_us_between "$t0" "$t1")" \
        "${t0/[.,]/}" "$from" "$to" >>"$SAMPLES"
}

bench_interleave "$ROUNDS" "${VARIANTS[@]}"

{
    echo "Run: $(bench_machine_note); $ROUNDS rounds, interleaved, after 1 warm-up round."
    echo
    "$LAB_PYTHON" "$BENCH_STATS" enroll --samples "$SAMPLES" --est-log "$EST_LOG"
} >"$BENCH_OUT/bench-enroll.md"
cat "$BENCH_OUT/bench-enroll.md"
