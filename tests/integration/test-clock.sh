#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Clock sanity: a clock earlier than the birth certificate's notBefore (or than
# the build date: a gateway booting in 1970) must not be used to judge or
# renew certificates. The birth certificate's public copy in the state
# directory is replaced by one whose notBefore lies a year ahead, which makes
# the true clock "too early" without touching the machine's clock:
#  - fleetidd --oneshot refuses (75) naming the clock and the notBefore;
#  - the daemon reports "waiting-clock" and sends nothing to the EST server;
#  - with a plausible clock again, it enrolls.
# Waking up when the clock is set (timerfd TFD_TIMER_CANCEL_ON_SET, timesyncd's
# flag file) needs CAP_SYS_TIME on the machine, which a test must not use.
set -euo pipefail
source "$(dirname "$0")/../lib/fleetid.sh"

fleetid_lab_up
fleetid_provision
fleetid_write_config "retry: { initial = 1; max = 2; };"
mkdir -p -m 0750 "$FLEETID_STATE"

"$LAB_PYTHON" - "$FLEETID_STATE/birth.pem" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "from-the-future")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now + datetime.timedelta(days=365))
        .not_valid_after(now + datetime.timedelta(days=730)).sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
PY
chmod 0640 "$FLEETID_STATE/birth.pem"

rc=0
"$FLEETIDD" --config "$FLEETID_CONF" --oneshot >"$LAB_TMPDIR/oneshot.log" 2>&1 || rc=$?
fleetid_expect_eq "$rc" 75 "fleetidd --oneshot exit status with the clock before the birth certificate"
fleetid_expect_grep "$LAB_TMPDIR/oneshot.log" "not trusting the clock: the clock says .* before the birth certificate's notBefore" "the clock message"

fleetid_daemon_start
lab_wait_until 20 "state waiting-clock" grep -q '^state=waiting-clock' "$FLEETID_RUNTIME/status" ||
    lab_fail "the daemon did not report waiting-clock; log: $(tail -n 3 "$FLEETIDD_LOG")"
sleep 2
fleetid_expect_eq "$(est_log_count)" 0 "EST requests made with an untrustworthy clock"
fleetid_expect_eq "$(est_log_count event=tls_handshake_failed)" 0 "TLS handshakes with an untrustworthy clock"
_lab_kill "$FLEETIDD_PID" fleetidd

# A plausible clock again (the real birth certificate): enrolls.
rm -f "$FLEETID_STATE/birth.pem"
fleetid_enroll_once || lab_fail "enrollment with a plausible clock failed"
echo "PASS: an implausible clock is detected, nothing is sent; a plausible one enrolls"
