#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-lab-smoke.sh: proves the test lab works with plain tools and no fleetid
# code: swtpm + tpm2-abrmd answer and hold an EK certificate; the lab EST
# server enrolls a software-key client with curl + openssl over TLS 1.2 and
# 1.3, with and without a CA label; its authentication, fault switches and
# TLS options behave as documented in tests/lab/README.md.
# Exit status: 0 pass, 1 fail, 77 skipped (a tool is missing).

set -euo pipefail
# shellcheck source=tests/lib/tpm-env.sh
. "$(dirname "$0")/../lib/tpm-env.sh"

lab_require_tools swtpm swtpm_setup swtpm_localca tpm2-abrmd dbus-daemon \
    tpm2_getcap tpm2_nvread curl openssl base64
lab_tmpdir
T=$LAB_TMPDIR
LIFETIME=600

step() {
    echo "== $*"
}

expect_eq() {
    [ "$1" = "$2" ] || lab_fail "$3: expected '$2', got '$1'"
}

# check_operational CERT KEY SUBJECT: CERT chains to the EST CA (not to the
# manufacturer CA), is a clientAuth cert for KEY's public key with SUBJECT,
# and is valid for exactly LIFETIME + 60 seconds (notBefore = now - 60 s).
check_operational() {
    local cert=$1 key=$2 subject=$3
    openssl verify -CAfile "$EST_PKI/est-ca.pem" -purpose sslclient "$cert" >/dev/null ||
        lab_fail "$cert does not chain to the EST CA as a TLS client certificate"
    if openssl verify -CAfile "$EST_PKI/mfg-ca.pem" "$cert" >/dev/null 2>&1; then
        lab_fail "$cert chains to the manufacturer CA"
    fi
    expect_eq "$(openssl x509 -in "$cert" -noout -pubkey)" \
        "$(openssl pkey -in "$key" -pubout)" "public key of $cert"
    expect_eq "$(openssl x509 -in "$cert" -noout -subject -nameopt compat)" \
        "subject=$subject" "subject of $cert"
    local start end
    start=$(openssl x509 -in "$cert" -noout -startdate)
    end=$(openssl x509 -in "$cert" -noout -enddate)
    expect_eq $(($(date -u -d "${end#notAfter=}" +%s) - $(date -u -d "${start#notBefore=}" +%s))) \
        $((LIFETIME + 60)) "validity of $cert in seconds"
}

# http_post URL OUTPUT CURL_ARGS...: POST the CSR of the first enrollment;
# prints the HTTP status; headers go to OUTPUT.h.
http_post() {
    local url=$1 out=$2
    shift 2
    curl --silent --show-error --max-time 20 --cacert "$EST_PKI/est-ca.pem" "$@" \
        -H 'Content-Type: application/pkcs10' --data-binary @"$T/enroll-1.2/csr.b64" \
        -D "$out.h" -o "$out" -w '%{http_code}' "$url"
}

step "TPM: swtpm with EK certificate behind tpm2-abrmd"
tpm_env_start "$T/tpm"
tpm2_getcap properties-fixed | grep -q TPM2_PT_MANUFACTURER ||
    lab_fail "tpm2_getcap through $TPM2TOOLS_TCTI did not list TPM properties"
tpm2_nvread 0x01c00002 -o "$T/ek-cert.der" >/dev/null 2>&1 ||
    lab_fail "no EK certificate at NV index 0x01c00002"
openssl x509 -inform DER -in "$T/ek-cert.der" -noout -issuer | grep -q swtpm-localca ||
    lab_fail "the NV index 0x01c00002 does not hold an EK certificate from swtpm-localca"

step "EST server: /cacerts and /csrattrs"
printf 'lab-secret\n' >"$T/basic.pw"
est_args=(--cert-lifetime "$LIFETIME" --basic-user lab --basic-password-file "$T/basic.pw" --label lab-ca)
est_env_start "$T/est" "${est_args[@]}"
"$LAB_PYTHON" "$LAB_PKI_PY" software-client "$EST_PKI" gw-0001 >/dev/null
BIRTH=$EST_PKI/gw-0001.pem
BIRTH_KEY=$EST_PKI/gw-0001.key
BIRTH_SUBJECT=/O=fleetid-lab/CN=gw-0001/serialNumber=gw-0001
CURL=(curl --silent --show-error --max-time 20 --cacert "$EST_PKI/est-ca.pem")

"${CURL[@]}" -D "$T/cacerts.h" -o "$T/cacerts.b64" "$EST_URL/cacerts"
grep -qi '^content-type: application/pkcs7-mime' "$T/cacerts.h" ||
    lab_fail "/cacerts has no application/pkcs7-mime Content-Type"
base64 -d <"$T/cacerts.b64" | openssl pkcs7 -inform DER -print_certs -out "$T/cacerts.pem" ||
    lab_fail "/cacerts is not a base64 certs-only PKCS#7"
expect_eq "$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$T/cacerts.pem")" \
    "$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$EST_PKI/est-ca.pem")" "/cacerts certificate"

"${CURL[@]}" -D "$T/csrattrs.h" -o "$T/csrattrs.b64" "$EST_URL/csrattrs"
grep -qi '^content-type: application/csrattrs' "$T/csrattrs.h" ||
    lab_fail "/csrattrs has no application/csrattrs Content-Type"
base64 -d <"$T/csrattrs.b64" | openssl asn1parse -inform DER >"$T/csrattrs.txt" ||
    lab_fail "/csrattrs is not base64 DER"
for oid in challengePassword ecdsa-with-SHA256; do
    grep -q ":$oid" "$T/csrattrs.txt" || lab_fail "/csrattrs lacks $oid: $(cat "$T/csrattrs.txt")"
done

step "errors on a fresh connection reach the client: 404, 405 with Allow, 501, 500"
# Each curl opens a new connection. An error the server logs but never sends
# shows here as status 000 (curl: empty reply from server).
http_get() {
    local path=$1 out=$2
    shift 2
    "${CURL[@]}" "$@" -D "$out.h" -o "$out" -w '%{http_code}' "$EST_URL/$path" || true
}
expect_eq "$(http_get nosuchop "$T/e404")" 404 "status of an unknown operation"
grep -q "unknown EST operation nosuchop" "$T/e404" || lab_fail "the 404 has no body naming the operation"
expect_eq "$("${CURL[@]}" -o "$T/e404p" -w '%{http_code}' "https://localhost:$EST_PORT/nowhere" || true)" \
    404 "status of a path outside /.well-known/est/"
grep -q "not an EST path" "$T/e404p" || lab_fail "the 404 outside the EST prefix has no body"
expect_eq "$(http_get cacerts "$T/e405" -X POST --data-binary x)" 405 "status of POST /cacerts"
grep -qi '^allow: GET' "$T/e405.h" || lab_fail "the 405 has no Allow: GET header"
for op in serverkeygen fullcmc; do
    expect_eq "$(http_get "$op" "$T/e501" -H 'Content-Type: application/pkcs10' --data-binary x)" \
        501 "status of $op"
    grep -q "$op is not implemented" "$T/e501" || lab_fail "the 501 for $op has no body"
done
est_control '{"no_such_switch": true}'
expect_eq "$(http_get cacerts "$T/e500")" 500 "status with a malformed control file"
grep -q "unknown key(s) no_such_switch" "$T/e500" || lab_fail "the 500 does not name the bad key"
est_control ''
expect_eq "$(est_log_count status=404)" 2 "404s logged"

step "simpleenroll with a software birth key over TLS 1.2 and 1.3, with and without a label"
for tls in 1.2 1.3; do
    for label in "" lab-ca; do
        out=$T/enroll-$tls${label:+-$label}
        "$LAB_CURL_ENROLL" --url "$EST_URL" --cacert "$EST_PKI/est-ca.pem" --cert "$BIRTH" \
            --key "$BIRTH_KEY" --tls "$tls" ${label:+--label "$label"} --out "$out" >/dev/null ||
            lab_fail "enrollment over TLS $tls ${label:+with label $label }failed"
        check_operational "$out/cert.pem" "$out/key.pem" "$BIRTH_SUBJECT"
        expect_eq "$(est_log_count op=simpleenroll status=200 auth=tls-birth \
            tls_version="TLSv$tls" label="${label:-null}" \
            issued_fingerprint="$("$LAB_PYTHON" "$LAB_PKI_PY" fingerprint "$out/cert.pem")")" \
            1 "EST log entries for the TLS $tls ${label:+label $label }enrollment"
    done
done
OP=$T/enroll-1.3

step "curl-enroll.sh --full (the benchmarks' baseline B'): three requests on one TLS connection"
FULL_FROM=$(wc -l <"$EST_LOG")
"$LAB_CURL_ENROLL" --url "$EST_URL" --cacert "$EST_PKI/est-ca.pem" --cert "$BIRTH" --key "$BIRTH_KEY" \
    --out "$T/enroll-full" --full >/dev/null || lab_fail "curl-enroll.sh --full failed"
expect_eq "$(tail -n +"$((FULL_FROM + 1))" "$EST_LOG" | "$LAB_PYTHON" -c '
import json, sys
reqs = [json.loads(l) for l in sys.stdin]
reqs = [r for r in reqs if r.get("event") == "request"]
print(" ".join(r["op"] for r in reqs), len({r["peer"] for r in reqs}))')" \
    "cacerts csrattrs simpleenroll 1" "requests of curl-enroll.sh --full, and the client ports they came from"

step "strict by default: subject bound to the birth certificate, challengePassword, key type, CA label"
# enroll_status NAME CURL_ENROLL_ARGS...: the HTTP status curl-enroll.sh got
# for an enrollment with the birth certificate; the answer is in $T/NAME/err.
enroll_status() {
    local name=$1 rc=0
    shift
    "$LAB_CURL_ENROLL" --url "$EST_URL" --cacert "$EST_PKI/est-ca.pem" --cert "$BIRTH" \
        --key "$BIRTH_KEY" --out "$T/$name" "$@" >/dev/null 2>"$T/$name.err" || rc=$?
    case $rc in
        0) echo 200 ;;
        2) sed -n 's/.* answered HTTP \([0-9]*\):.*/\1/p' "$T/$name.err" ;;
        *) lab_fail "curl-enroll.sh $name failed: $(cat "$T/$name.err")" ;;
    esac
}
# expect_refused NAME STATUS TEXT CURL_ENROLL_ARGS...
expect_refused() {
    local name=$1 status=$2 text=$3
    shift 3
    expect_eq "$(enroll_status "$name" "$@")" "$status" "status of the $name enrollment"
    grep -q -- "$text" "$T/$name.err" || lab_fail "$name: the answer does not say '$text': $(cat "$T/$name.err")"
}
expect_refused other-subject 400 "lacks serialNumber=gw-0001" --subject /O=fleetid-lab/CN=gw-0001
expect_refused other-serial 400 "lacks serialNumber=gw-0001" --subject /CN=gw-0001/serialNumber=gw-0002
expect_refused no-challenge 400 "no challengePassword, which /csrattrs asks for" --challenge-password ''
expect_refused p384 400 "key is EC secp384r1; /csrattrs asks for EC (secp256r1)" --keyalg ec-p384
expect_refused rsa 400 "key is RSA-2048" --keyalg rsa2048
expect_refused unknown-label 404 "unknown CA label other-ca" --label other-ca
expect_eq "$(enroll_status own-subject --subject /CN=renamed/serialNumber=gw-0001)" 200 \
    "status of an enrollment with another CN and the birth certificate's serialNumber"
est_control '{"csrattrs": "no_challenge"}'
expect_eq "$(enroll_status not-asked --challenge-password '')" 200 \
    "status without challengePassword when /csrattrs does not ask for it"
expect_refused not-asked-p384 400 "key is EC secp384r1" --keyalg ec-p384
est_control '{"csrattrs": "empty204"}'
expect_eq "$(enroll_status nothing-asked --challenge-password '' --keyalg ec-p384)" 200 \
    "status of a P-384 CSR without challengePassword when /csrattrs asks for nothing"
est_control ''

step "authentication: 401 without credentials, Basic accepted, reenroll needs an operational cert"
expect_eq "$(http_post "$EST_URL/simpleenroll" "$T/noauth")" 401 "status without credentials"
grep -qi '^www-authenticate: basic realm="fleetid-lab"' "$T/noauth.h" ||
    lab_fail "401 without WWW-Authenticate: Basic"
expect_eq "$(http_post "$EST_URL/simpleenroll" "$T/badpw" --user lab:wrong)" 401 \
    "status with a wrong Basic password"
"$LAB_CURL_ENROLL" --url "$EST_URL" --cacert "$EST_PKI/est-ca.pem" --basic lab:lab-secret \
    --subject /CN=basic-client --out "$T/basic" >/dev/null || lab_fail "Basic enrollment failed"
check_operational "$T/basic/cert.pem" "$T/basic/key.pem" /CN=basic-client
expect_eq "$(est_log_count op=simpleenroll status=200 auth=basic)" 1 "Basic enrollments logged"
"$LAB_CURL_ENROLL" --url "$EST_URL" --cacert "$EST_PKI/est-ca.pem" --cert "$OP/cert.pem" \
    --key "$OP/key.pem" --reenroll --out "$T/reenroll" >/dev/null || lab_fail "simplereenroll failed"
check_operational "$T/reenroll/cert.pem" "$T/reenroll/key.pem" "$BIRTH_SUBJECT"
# The CA assigned a subjectAltName at enrollment; a renewal must ask for it
# unchanged (RFC 7030 4.2.2): curl-enroll copied it, a CSR without it is refused.
san=$(openssl x509 -in "$OP/cert.pem" -noout -ext subjectAltName | sed -n 2p)
grep -q "DNS:device-.*\.devices\.fleetid\.lab, URI:urn:fleetid-lab:ldevid:" <<<"$san" ||
    lab_fail "the enrolled certificate has no lab-assigned subjectAltName: $san"
expect_eq "$(openssl x509 -in "$T/reenroll/cert.pem" -noout -ext subjectAltName | sed -n 2p)" "$san" \
    "the renewed certificate's subjectAltName"
expect_eq "$(http_post "$EST_URL/simplereenroll" "$T/reenroll-nosan" --cert "$OP/cert.pem" \
    --key "$OP/key.pem")" 400 "simplereenroll with a CSR that drops the subjectAltName"
grep -q "subjectAltName" "$T/reenroll-nosan" || lab_fail "the 400 does not name the subjectAltName"
expect_eq "$(http_post "$EST_URL/simplereenroll" "$T/reenroll-birth" --cert "$BIRTH" \
    --key "$BIRTH_KEY")" 401 "simplereenroll with a birth certificate"

step "fault switches: 202 + Retry-After (once), 503, truncated body, tls-unique required"
est_control '{"faults": [{"match": "simpleenroll", "status": 202, "retry_after": "3", "count": 1}]}'
expect_eq "$(http_post "$EST_URL/simpleenroll" "$T/f202" --cert "$BIRTH" --key "$BIRTH_KEY")" \
    202 "status with the 202 fault"
grep -qi '^retry-after: 3' "$T/f202.h" || lab_fail "202 without Retry-After: 3"
expect_eq "$(http_post "$EST_URL/simpleenroll" "$T/f202b" --cert "$BIRTH" --key "$BIRTH_KEY")" \
    200 "status after the count=1 fault was used"

est_control '{"faults": [{"match": "simpleenroll", "status": 503, "body": "busy"}]}'
expect_eq "$(http_post "$EST_URL/simpleenroll" "$T/f503" --cert "$BIRTH" --key "$BIRTH_KEY")" \
    503 "status with the 503 fault"
expect_eq "$(cat "$T/f503")" busy "body of the 503 fault"

est_control '{"faults": [{"match": "simpleenroll", "body_mode": "truncated"}]}'
expect_eq "$(http_post "$EST_URL/simpleenroll" "$T/ftrunc" --cert "$BIRTH" --key "$BIRTH_KEY")" \
    200 "status with the truncated fault"
base64 -d <"$T/ftrunc" >"$T/ftrunc.der" || lab_fail "truncated fault body is not base64"
if openssl pkcs7 -inform DER -in "$T/ftrunc.der" -print_certs >/dev/null 2>&1; then
    lab_fail "the truncated fault body parses as PKCS#7"
fi

est_control '{"require_channel_binding": true}'
before=$(est_log_count op=simpleenroll channel_binding_type=tls-exporter status=400)
expect_eq "$(http_post "$EST_URL/simpleenroll" "$T/funique" --cert "$BIRTH" --key "$BIRTH_KEY" \
    --tlsv1.2 --tls-max 1.2)" 400 "status of a CSR without tls-unique when it is required"
expect_eq "$(http_post "$EST_URL/simpleenroll" "$T/fexporter" --cert "$BIRTH" --key "$BIRTH_KEY" \
    --tlsv1.3)" 400 "status of a CSR without tls-exporter when it is required"
expect_eq "$(est_log_count op=simpleenroll channel_binding_type=tls-exporter status=400)" $((before + 1)) \
    "TLS 1.3 requests logged with their tls-exporter value"

step "the reset fault aborts the connection without an answer"
est_control '{"faults": [{"match": "cacerts", "body_mode": "reset"}]}'
rc=0
"${CURL[@]}" -o /dev/null "$EST_URL/cacerts" 2>/dev/null || rc=$?
expect_eq "$rc" 56 "curl exit status for a connection reset (56: failure receiving data)"
expect_eq "$(est_log_count op=cacerts status=reset)" 1 "reset requests logged"
est_control ''

step "a refused TLS handshake is logged and no request reaches the server"
before=$(est_log_count)
if curl --silent --max-time 20 --cacert "$EST_PKI/mfg-ca.pem" -o /dev/null "$EST_URL/cacerts"; then
    lab_fail "curl trusted the EST server with only the manufacturer CA as anchor"
fi
handshake_failure_logged() {
    [ "$(est_log_count event=tls_handshake_failed)" -ge 1 ]
}
lab_wait_until 5 "the EST log to record the failed handshake" handshake_failure_logged ||
    lab_fail "the failed handshake was not logged"
expect_eq "$(est_log_count)" "$before" "requests logged after the refused handshake"

step "server options: the --lenient-* switches each relax one rule"
est_env_stop
est_env_start "$T/est" "${est_args[@]}" --lenient-subject --lenient-challenge-password \
    --lenient-key-type --lenient-label
expect_eq "$(enroll_status lenient-subject --subject /O=fleetid-lab/CN=gw-0001)" 200 \
    "status of a CSR without the birth serialNumber, --lenient-subject"
expect_eq "$(enroll_status lenient-challenge --challenge-password '')" 200 \
    "status of a CSR without challengePassword, --lenient-challenge-password"
expect_eq "$(enroll_status lenient-key --keyalg rsa2048)" 200 \
    "status of an RSA CSR, --lenient-key-type"
expect_eq "$(enroll_status lenient-label --label other-ca)" 200 \
    "status of an enrollment with an unknown CA label, --lenient-label"

step "server options: --tls-max 1.2 and --server-cert otherhost"
est_env_stop
est_env_start "$T/est" "${est_args[@]}" --tls-max 1.2 --server-cert otherhost
if "${CURL[@]}" --tlsv1.3 -o /dev/null "$EST_URL/cacerts" 2>/dev/null; then
    lab_fail "TLS 1.3 worked against --tls-max 1.2"
fi
rc=0
"${CURL[@]}" -o /dev/null "$EST_URL/cacerts" 2>/dev/null || rc=$?
expect_eq "$rc" 60 "curl exit status for a server certificate naming another host"
"${CURL[@]}" --resolve "other.example:$EST_PORT:127.0.0.1" -o /dev/null \
    "https://other.example:$EST_PORT/.well-known/est/cacerts" ||
    lab_fail "the otherhost server certificate is not valid for other.example"
expect_eq "$(est_log_count op=cacerts status=200 tls_version=TLSv1.2)" 1 "cacerts over TLS 1.2"

echo "PASS: test lab smoke test"
