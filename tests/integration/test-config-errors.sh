#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-config-errors.sh: a bad fleetid.conf stops fleetidd before it does
# anything, with exit status 78 (the unit does not restart on it) and one line
# naming FILE:LINE and what is wrong (docs/configuration.md, "What happens on
# bad input"); fleetidctl refuses it too. `fleetidd --check-config` accepts a
# good file. A metrics_file that is a symlink gets one clear warning at run
# time. Needs no TPM and no EST server.
# Exit status: 0 pass, 1 fail, 77 skipped.

set -euo pipefail
# shellcheck source=tests/lib/fleetid.sh
. "$(dirname "$0")/../lib/fleetid.sh"

lab_tmpdir
T=$LAB_TMPDIR
URL=https://est.example.net/.well-known/est

step() {
    echo "== $*"
}

URL_LINE="url = \"$URL\";"
ANCHORS_LINE="trust_anchors = \"$T/anchors.pem\";"

# conf EST_LINE... [-- LINE...]: a configuration whose line 1 sets the state
# directory, line 2 opens the est group, lines 3.. are the EST_LINEs; the other
# LINEs follow the group, from line 4 + the number of EST_LINEs.
conf() {
    printf 'paths: { state_dir = "%s"; runtime_dir = "%s"; };\nest: {\n' "$T/state" "$T/run"
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        printf '        %s\n' "$1"
        shift
    done
    echo "};"
    [ $# -eq 0 ] || shift
    [ $# -eq 0 ] || printf '%s\n' "$@"
}

# expect_rejected NAME LOCATION ERE: the configuration on stdin is written to
# $T/NAME.conf (not written if stdin is empty: a missing file). fleetidd
# --oneshot and --check-config must exit 78 with exactly one line of output
# containing "$T/NAME.conf$LOCATION: " followed by text matching ERE, and
# create nothing; fleetidctl must fail naming the same place.
expect_rejected() {
    local name=$1 location=$2 ere=$3 file=$T/$1.conf out=$T/$1.out mode rc lines
    local content
    content=$(cat)
    [ -z "$content" ] || printf '%s\n' "$content" >"$file"
    for mode in --oneshot --check-config; do
        rc=0
        (cd "$T" && timeout 20 "$FLEETIDD" --config "$file" "$mode") >"$out" 2>&1 || rc=$?
        fleetid_expect_eq "$rc" 78 "fleetidd $mode exit status for the $name config ($(head -c 300 "$out"))"
        lines=$(wc -l <"$out")
        fleetid_expect_eq "$lines" 1 "lines printed by fleetidd $mode for the $name config"
        grep -qF -- "$file$location: " "$out" ||
            lab_fail "$name: expected fleetidd $mode to name '$file$location', got: $(cat "$out")"
        fleetid_expect_grep "$out" "$ere" "fleetidd $mode on the $name config"
    done
    [ ! -e "$T/state" ] || lab_fail "$name: fleetidd created its state directory despite the bad config"

    rc=0
    "$FLEETIDCTL" --config "$file" status >"$out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || lab_fail "$name: fleetidctl status accepted the config"
    grep -qF -- "$file$location: " "$out" ||
        lab_fail "$name: expected fleetidctl status to name '$file$location', got: $(cat "$out")"
}

step "a good file passes --check-config"
cat >"$T/good.conf" <<EOF
# a complete, valid configuration
tpm: { tcti = "swtpm:host=127.0.0.1,port=1"; srk_handle = 0x81000001; };
birth: { key_handle = 0x81020000; nv_index = 0x01C90000; };
operational: { key_handle = 0x81020002; key_algorithm = "ecc-p384"; };
est: {
        url = "$URL";
        label = "gw";
        trust_anchors = "$T/anchors.pem";
        timeout = 30;
        connect_timeout = 10;
};
paths: { state_dir = "$T/state"; runtime_dir = "$T/run"; };
retry: { initial = 5; max = 600; };
EOF
"$FLEETIDD" --config "$T/good.conf" --check-config >"$T/good.out" 2>&1 ||
    lab_fail "fleetidd --check-config rejected a valid file: $(cat "$T/good.out")"
fleetid_expect_eq "$(cat "$T/good.out")" "$T/good.conf: OK" "fleetidd --check-config output"
[ ! -e "$T/state" ] || lab_fail "fleetidd --check-config created the state directory"

step "missing file"
expect_rejected missing "" 'no such file' </dev/null

step "syntax error"
expect_rejected syntax :4 'syntax error' < <(conf "$URL_LINE" 'timeout = = 5;' "$ANCHORS_LINE")

step "unknown key and unknown group"
expect_rejected unknown-key :5 "unknown key 'est.tiemout'" < <(conf "$URL_LINE" "$ANCHORS_LINE" 'tiemout = 5;')
expect_rejected unknown-group :6 "unknown group 'logging'" \
    < <(conf "$URL_LINE" "$ANCHORS_LINE" -- 'logging: { level = "debug"; };')

step "wrong types"
expect_rejected type-int :6 'retry\.initial must be an integer' \
    < <(conf "$URL_LINE" "$ANCHORS_LINE" -- 'retry: { initial = "30"; };')
expect_rejected type-string :3 'est\.url must be a string' < <(conf 'url = 443;' "$ANCHORS_LINE")

step "values out of range"
expect_rejected range-timeout :5 'est\.timeout must be between 1 and 600 \(got 0\)' \
    < <(conf "$URL_LINE" "$ANCHORS_LINE" 'timeout = 0;')
expect_rejected range-handle :6 'operational\.key_handle' \
    < <(conf "$URL_LINE" "$ANCHORS_LINE" -- 'operational: { key_handle = 0x01020002; };')
expect_rejected range-negative :6 'negative' \
    < <(conf "$URL_LINE" "$ANCHORS_LINE" -- 'retry: { initial = -5; };')

step "bad URLs"
expect_rejected url-http :3 "est\\.url must start with https:// \\(got 'http://est\\.example\\.net" \
    < <(conf 'url = "http://est.example.net/.well-known/est";' "$ANCHORS_LINE")
expect_rejected url-port :3 'est\.url.*port' \
    < <(conf 'url = "https://est.example.net:99999/.well-known/est";' "$ANCHORS_LINE")
expect_rejected url-missing "" 'est\.url is required' < <(conf "$ANCHORS_LINE")

step "keys that do not fit together"
expect_rejected no-trust :4 'trust_anchors.*bootstrap_fingerprint|bootstrap_fingerprint.*trust_anchors' \
    < <(conf "$URL_LINE" 'trust_anchors = "";')

step "threshold relation with only monitoring.error_percent set names its line"
expect_rejected thresholds :6 'critical_percent \(3\) < error_percent \(50\) < warning_percent \(20\)' \
    < <(conf "$URL_LINE" "$ANCHORS_LINE" -- 'monitoring: { error_percent = 50; };')

step "strings must be UTF-8 and hold no NUL"
# Latin-1 "Gerät" would pass --check-config and then fail every enrollment attempt.
expect_rejected cn-latin1 :6 'operational\.subject_cn is not valid UTF-8' \
    < <(conf "$URL_LINE" "$ANCHORS_LINE" -- $'operational: { subject_cn = "Ger\xe4t"; };')
expect_rejected cn-escape :6 'operational\.subject_cn is not valid UTF-8' \
    < <(conf "$URL_LINE" "$ANCHORS_LINE" -- 'operational: { subject_cn = "\xff\xfe"; };')
# libconfig would drop the \x00 and connect to https://localhostevil
expect_rejected url-nul :3 'escape \\x00 \(a NUL byte\)' \
    < <(conf 'url = "https://localhost\x00evil/";' "$ANCHORS_LINE")

step "a UTF-8 byte order mark is skipped, and line numbers stay right"
printf '\xef\xbb\xbf' >"$T/bom.conf"
conf "$URL_LINE" "$ANCHORS_LINE" >>"$T/bom.conf"
"$FLEETIDD" --config "$T/bom.conf" --check-config >"$T/bom.out" 2>&1 ||
    lab_fail "fleetidd --check-config rejected a valid file that starts with a BOM: $(cat "$T/bom.out")"
expect_rejected bom-error :3 'est\.url must start with https://' \
    < <(printf '\xef\xbb\xbf'; conf 'url = "http://est.example.net/";' "$ANCHORS_LINE")

step "not a regular file"
mkfifo "$T/fifo.conf"
expect_rejected fifo "" 'cannot read: not a regular file' </dev/null
ln -s /dev/zero "$T/zero.conf"
expect_rejected zero "" 'cannot read: not a regular file' </dev/null

# libconfig 1.5 leaks the string token on this syntax error; under ASan
# (tests/run.sh) this checks that tests/lsan.supp keeps the exit status 78.
step "syntax error right after a string"
expect_rejected syntax-string :3 'syntax error' < <(conf 'url "https://est.example.net/";' "$ANCHORS_LINE")

# A path the configuration names that cannot be used at run time: one clear
# warning, and fleetidd goes on (here to an enrollment that fails at once, as
# the TCTI names no TPM).
step "monitoring.metrics_file that is a symlink"
ln -s "$T/elsewhere.prom" "$T/metrics.prom"
conf 'url = "https://127.0.0.1:1/.well-known/est";' "$ANCHORS_LINE" -- 'tpm: { tcti = "device:/nonexistent/tpmrm0"; };' \
    "monitoring: { metrics_file = \"$T/metrics.prom\"; };" >"$T/metrics.conf"
rc=0
timeout 20 "$FLEETIDD" --config "$T/metrics.conf" --oneshot >"$T/metrics.out" 2>&1 || rc=$?
fleetid_expect_eq "$rc" 75 "fleetidd --oneshot exit status without a TPM ($(cat "$T/metrics.out"))"
fleetid_expect_grep "$T/metrics.out" \
    "^fleetidd: cannot write the metrics file $T/metrics\.prom: it is a symlink, which is never followed; " \
    "fleetidd's warning about the metrics file"
fleetid_expect_eq "$(grep -o 'cannot write the metrics file' "$T/metrics.out" | wc -l)" \
    "$(grep -c 'cannot write the metrics file' "$T/metrics.out")" "times the warning's prefix appears on its line"
[ ! -e "$T/elsewhere.prom" ] || lab_fail "fleetidd wrote the metrics through the symlink"
rm -rf "$T/state"

echo "PASS: configuration errors are reported in one line and stop fleetidd"
