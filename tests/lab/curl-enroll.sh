#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# curl-enroll.sh: one complete software-key EST enrollment with curl + openssl,
# no fleetid code: generate a key, build a CSR, POST /simpleenroll (mutual TLS
# with a birth certificate, or HTTP Basic), decode the PKCS#7 answer. The
# baseline the benchmarks compare fleetid's enrollment with.
#
# usage: curl-enroll.sh --url EST_URL --cacert CA.pem --out DIR
#            [--cert BIRTH.pem --key BIRTH.key] [--basic USER:PASSWORD]
#            [--subject /O=../CN=..] [--label LABEL] [--tls 1.2|1.3]
#            [--keyalg ec-p256|ec-p384|rsa2048|rsa3072] [--reenroll]
#            [--challenge-password PW] [--full]
#
# EST_URL is the .../.well-known/est prefix. The subject defaults to the one
# of --cert; --reenroll also copies its subjectAltName. The CSR carries a
# challengePassword (default "curl-enroll", as the lab's /csrattrs asks for
# one; --challenge-password '' leaves it out). --full first GETs /cacerts and
# /csrattrs, then POSTs, all in one curl run on one TLS connection (what a
# complete EST client does; the benchmarks' baseline B'); curl makes at most
# one connection then, and a second one is an error. Writes DIR/req.cnf (the
# openssl config of the CSR), DIR/key.pem, DIR/csr.b64, DIR/response.b64 and
# DIR/cert.pem; prints the certificate path. Exit status: 0 enrolled, 2 the
# server answered with another HTTP status than 200 (printed), 1 other
# failures.

set -euo pipefail

die() {
    echo "curl-enroll: $*" >&2
    exit 1
}

url='' cacert='' out='' cert='' key='' basic='' subject='' label='' tls=''
keyalg=ec-p256
challenge=curl-enroll
op=simpleenroll
full=false
while [ $# -gt 0 ]; do
    case $1 in
        --url) url=$2; shift ;;
        --cacert) cacert=$2; shift ;;
        --out) out=$2; shift ;;
        --cert) cert=$2; shift ;;
        --key) key=$2; shift ;;
        --basic) basic=$2; shift ;;
        --subject) subject=$2; shift ;;
        --label) label=$2; shift ;;
        --tls) tls=$2; shift ;;
        --keyalg) keyalg=$2; shift ;;
        --reenroll) op=simplereenroll ;;
        --full) full=true ;;
        --challenge-password) challenge=$2; shift ;;
        *) die "unknown argument '$1' (see the usage at the top of $0)" ;;
    esac
    shift
done
if [ -z "$url" ] || [ -z "$cacert" ] || [ -z "$out" ]; then
    die "--url, --cacert and --out are required"
fi
[ -n "$cert" ] || [ -n "$basic" ] || die "give --cert/--key (mutual TLS) or --basic"
[ -z "$cert" ] || [ -n "$key" ] || die "--cert needs --key"

curl_args=(--silent --show-error --max-time 30 --cacert "$cacert")
[ -z "$cert" ] || curl_args+=(--cert "$cert" --key "$key")
[ -z "$basic" ] || curl_args+=(--user "$basic")
case $tls in
    "") ;;
    1.2) curl_args+=(--tlsv1.2 --tls-max 1.2) ;;
    1.3) curl_args+=(--tlsv1.3 --tls-max 1.3) ;;
    *) die "--tls must be 1.2 or 1.3" ;;
esac
case $keyalg in
    ec-p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    ec-p384) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
    rsa2048) newkey=(-newkey rsa:2048) ;;
    rsa3072) newkey=(-newkey rsa:3072) ;;
    *) die "--keyalg must be ec-p256, ec-p384, rsa2048 or rsa3072" ;;
esac
if [ -z "$subject" ]; then
    [ -n "$cert" ] || die "--subject is required with --basic and no --cert"
    subject=$(openssl x509 -in "$cert" -noout -subject -nameopt compat) ||
        die "cannot read the subject of $cert"
    subject=${subject#subject=}
fi
endpoint=$url/${label:+$label/}$op
# A renewal asks for the current certificate's subjectAltName too (RFC 7030 4.2.2).
addext=()
if [ "$op" = simplereenroll ] && [ -n "$cert" ]; then
    san=$(openssl x509 -in "$cert" -noout -ext subjectAltName 2>/dev/null | sed -n '2{s/^ *//;s/, /,/g;p}')
    [ -z "$san" ] || addext=(-addext "subjectAltName=$san")
fi

# The subject and challengePassword go in an openssl config: with -subj,
# openssl req leaves the attributes out.
case $subject$challenge in
    *'$'* | *'\'* | *'#'* | *'"'* | *'+'*) die "the subject and challengePassword may not contain \$ \\ # \" +" ;;
esac
[ "${subject#/}" != "" ] || die "empty subject"
mkdir -p "$out"
{
    printf '[req]\nprompt = no\ndistinguished_name = dn\n'
    [ -z "$challenge" ] || printf 'attributes = attrs\n[attrs]\nchallengePassword = %s\n' "$challenge"
    printf '[dn]\n'
    IFS=/ read -ra rdns <<<"${subject#/}"
    for i in "${!rdns[@]}"; do
        [[ ${rdns[$i]} == ?*=?* ]] || die "subject '$subject': '${rdns[$i]}' is not TYPE=VALUE"
        printf '%d.%s\n' "$i" "${rdns[$i]}"
    done
} >"$out/req.cnf"
openssl req -new "${newkey[@]}" -nodes -keyout "$out/key.pem" -config "$out/req.cnf" "${addext[@]}" \
    -outform DER 2>"$out/openssl.err" | openssl base64 >"$out/csr.b64" ||
    die "cannot create a key and CSR: $(cat "$out/openssl.err")"

post=(-H 'Content-Type: application/pkcs10' --data-binary @"$out/csr.b64" -o "$out/response.b64")
if $full; then
    # Three transfers in one curl run: --next keeps the connection cache, so
    # the POST reuses the connection of the GETs. %{num_connects} is per
    # transfer: 1, 0, 0 when the connection was reused.
    prefix=$url/${label:+$label/}
    status=$(curl "${curl_args[@]}" -o "$out/cacerts.b64" -w '%{http_code} %{num_connects}\n' "${prefix}cacerts" \
        --next "${curl_args[@]}" -o "$out/csrattrs.b64" -w '%{http_code} %{num_connects}\n' "${prefix}csrattrs" \
        --next "${curl_args[@]}" "${post[@]}" -w '%{http_code} %{num_connects}\n' "$endpoint") ||
        die "GET /cacerts, /csrattrs and POST $endpoint failed (curl exit $?)"
    read -r -d '' s1 c1 s2 c2 s3 c3 <<<"$status" || true
    [ "$s1" = 200 ] || die "${prefix}cacerts answered HTTP $s1"
    [[ $s2 == 200 || $s2 == 204 || $s2 == 404 ]] || die "${prefix}csrattrs answered HTTP $s2"
    [ "$((c1 + c2 + c3))" -le 1 ] || die "curl made $((c1 + c2 + c3)) TLS connections for the three requests, not one"
    status=$s3
else
    status=$(curl "${curl_args[@]}" "${post[@]}" -w '%{http_code}' "$endpoint") ||
        die "POST $endpoint failed (curl exit $?)"
fi
if [ "$status" != 200 ]; then
    echo "curl-enroll: $endpoint answered HTTP $status: $(head -c 300 "$out/response.b64")" >&2
    exit 2
fi

tr -d ' \t\r\n' <"$out/response.b64" | base64 -d |
    openssl pkcs7 -inform DER -print_certs -out "$out/cert.pem" 2>"$out/openssl.err" ||
    die "the answer from $endpoint is not a base64 PKCS#7: $(cat "$out/openssl.err")"
grep -q -- '-----BEGIN CERTIFICATE-----' "$out/cert.pem" ||
    die "the PKCS#7 from $endpoint holds no certificate"
echo "$out/cert.pem"
