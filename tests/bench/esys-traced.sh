#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# esys-traced.sh PROGRAM [ARGS...]: run PROGRAM with tpm2-tss's ESYS trace on
# (TSS2_LOG=esys+trace) and keep, in a new file in $BENCH_ESYS_DIR, the one
# trace line ESYS writes per TPM command it sends ("Esys_<Command>_Async()
# context=0x..."): fleetid's programs send every TPM command, their OpenSSL
# provider's signatures included, on their own ESYS connection, so this is
# all they send. The rest of PROGRAM's stderr is passed on. One
# file per process, named so that they sort in start order. Exits with
# PROGRAM's status.

set -uo pipefail

if [ -z "${BENCH_ESYS_DIR:-}" ] || [ ! -d "$BENCH_ESYS_DIR" ]; then
    echo "esys-traced: BENCH_ESYS_DIR is not a directory" >&2
    exit 1
fi
[ $# -ge 1 ] || { echo "usage: esys-traced.sh PROGRAM [ARGS...]" >&2; exit 1; }

out=$BENCH_ESYS_DIR/${EPOCHREALTIME/[.,]/}-$$.esys
TSS2_LOG=esys+trace "$@" 2>"$out.raw"
rc=$?
grep -E '^trace:esys:.*Esys_[A-Za-z0-9_]+_Async\(\) context=' "$out.raw" >"$out"
grep -v '^trace:esys:' "$out.raw" >&2
rm -f -- "$out.raw"
exit "$rc"
