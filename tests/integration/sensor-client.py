#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A sensor application talking to fleetidd's sensor broker
(org.fleetid.Agent1, docs/dbus-api.md), for tests/integration/test-sensor-broker.sh
and tests/demo.sh.
python3-cryptography and python3-dbus only; the system bus is
DBUS_SYSTEM_BUS_ADDRESS.

  make-csr --id ID --key KEY --csr CSR [--cn CN] [--o O] [--curve p256|p384|p521]
      a new EC key (PEM) and a DER CSR for it, subject O (if given), CN (default ID)
  challenge --id ID --out FILE        GetSensorChallenge: the nonce, raw
  evidence --nonce FILE --csr CSR --birth-key KEY --birth-cert PEM --out FILE [--sign-key KEY]
      the evidence encoding of docs/dbus-api.md for the request of CSR (its
      purpose names the CSR's key); --sign-key signs with another key than
      the birth certificate's (a forged signature)
  request --id ID --csr CSR [--evidence FILE] [--option K=V]... [--wait S --out CHAIN]
      RequestSensorCertificate; prints "job PATH" or "error NAME: MESSAGE";
      --wait: subscribed to JobRemoved before the call, waits at most S
      seconds for that job's, prints "removed RESULT", then writes the
      chain of Job.GetResult() to CHAIN (PEM); exit 1 on a timeout
  call METHOD [ARG]                   ListSensors (one line per sensor) or
                                      ForgetSensor ID / GetSensorChallenge ID; errors as above
  flood --id ID --csr CSR --count N
      N RequestSensorCertificate calls, one after the other; prints how many
      got each answer ("NAME COUNT" lines, "job" for accepted ones)
  submit --prefix P --count N
      N sensors P-00000... each a new key and CSR (made first), then all N
      RequestSensorCertificate calls at once (no evidence); prints
      "accepted N", "refused NAME COUNT" lines and "seconds S" (the calls)
  verify --chain PEM --ca PEM --key KEY --id ID
      the chain leads to the CA, its leaf holds KEY's public key and names CN=ID
Exit status 0 unless a usage error or a failed verification (1); D-Bus errors
are printed, status 0, so a test can match them.
"""

import argparse
import base64
import hashlib
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAME = "org.fleetid.Agent1"
PATH = "/org/fleetid/Agent1"
CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}


def agent():
    import dbus  # only the commands that talk to fleetidd need it
    return dbus, dbus.Interface(dbus.SystemBus().get_object(NAME, PATH, introspect=False), NAME)


def dbus_error(e):
    print("error %s: %s" % (e.get_dbus_name(), e.get_dbus_message()))


def cmd_make_csr(a):
    key = ec.generate_private_key(CURVES[a.curve]())
    attrs = []
    if a.o is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, a.o))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, a.cn if a.cn is not None else a.id))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    with open(a.key, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(a.csr, "wb") as f:
        f.write(csr.public_bytes(serialization.Encoding.DER))


def cmd_challenge(a):
    dbus, iface = agent()
    try:
        nonce = bytes(iface.GetSensorChallenge(a.id))
    except dbus.exceptions.DBusException as e:
        return dbus_error(e)
    with open(a.out, "wb") as f:
        f.write(nonce)
    print("nonce %d bytes" % len(nonce))


def evidence_purpose(csr_der: bytes) -> bytes:
    """docs/dbus-api.md, "Evidence": "sensor-spki." and the base32 (lowercase,
    unpadded) of SHA-256 over the CSR's SubjectPublicKeyInfo."""
    spki = x509.load_der_x509_csr(csr_der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"sensor-spki." + base64.b32encode(hashlib.sha256(spki).digest()).rstrip(b"=").lower()


def cmd_evidence(a):
    nonce = open(a.nonce, "rb").read()
    cert = x509.load_pem_x509_certificate(open(a.birth_cert, "rb").read())
    key = serialization.load_pem_private_key(open(a.sign_key or a.birth_key, "rb").read(), None)
    msg = b"fleetid-challenge-v1\x00" + evidence_purpose(open(a.csr, "rb").read()) + b"\x00" + nonce
    sig = key.sign(msg, ec.ECDSA(hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    alg = b"ecdsa-with-SHA256"
    out = b"fleetid-evidence-v1\x00" + bytes([1]) + struct.pack(">H", len(der)) + der
    out += bytes([len(alg)]) + alg + struct.pack(">H", len(sig)) + sig
    with open(a.out, "wb") as f:
        f.write(out)


def cmd_request(a):
    dbus, iface = agent()
    csr = open(a.csr, "rb").read()
    evidence = open(a.evidence, "rb").read() if a.evidence else b""
    options = {}
    for o in a.option:
        k, _, v = o.partition("=")
        options[k] = dbus.String(v)
    if a.wait is not None:
        return request_wait(a, dbus, csr, evidence, options)
    try:
        job = iface.RequestSensorCertificate(a.id, dbus.ByteArray(csr), dbus.ByteArray(evidence),
                                             dbus.Dictionary(options, signature="sv"))
    except dbus.exceptions.DBusException as e:
        return dbus_error(e)
    print("job %s" % job)


def request_wait(a, dbus, csr, evidence, options):
    import dbus.mainloop.glib
    from gi.repository import GLib
    bus = dbus.SystemBus(private=True, mainloop=dbus.mainloop.glib.DBusGMainLoop())
    iface = dbus.Interface(bus.get_object(NAME, PATH, introspect=False), NAME)
    loop = GLib.MainLoop()
    removed = {}
    want = {}

    def on_removed(jid, path, kind, result):
        removed[str(path)] = str(result)
        if want.get("path") == str(path):
            loop.quit()

    # Subscribed before the call: the JobRemoved of a short job cannot be missed.
    bus.add_signal_receiver(on_removed, "JobRemoved", NAME, None, PATH)
    GLib.timeout_add(int(a.wait * 1000), loop.quit)
    try:
        job = str(iface.RequestSensorCertificate(a.id, dbus.ByteArray(csr), dbus.ByteArray(evidence),
                                                 dbus.Dictionary(options, signature="sv")))
    except dbus.exceptions.DBusException as e:
        return dbus_error(e)
    print("job %s" % job, flush=True)
    want["path"] = job
    if job not in removed:
        loop.run()
    if job not in removed:
        sys.exit("timeout: no JobRemoved for %s in %gs" % (job, a.wait))
    print("removed %s" % removed[job])
    try:
        certs = bus.get_object(NAME, job, introspect=False).GetResult(dbus_interface=NAME + ".Job", timeout=30)
    except dbus.exceptions.DBusException as e:
        return dbus_error(e)
    with open(a.out, "wb") as f:
        for c in certs:
            f.write(x509.load_der_x509_certificate(bytes(c)).public_bytes(serialization.Encoding.PEM))
    print("chain %d certificates in %s" % (len(certs), a.out))


def cmd_call(a):
    dbus, iface = agent()
    try:
        if a.method == "ListSensors":
            for s in iface.ListSensors():
                print(" ".join(str(x) for x in s))
        else:
            r = getattr(iface, a.method)(*a.arg)
            print("ok %s" % (bytes(r).hex() if a.method == "GetSensorChallenge" else ""))
    except dbus.exceptions.DBusException as e:
        return dbus_error(e)


def cmd_flood(a):
    dbus, iface = agent()
    csr = dbus.ByteArray(open(a.csr, "rb").read())
    counts = {}
    for _ in range(a.count):
        try:
            iface.RequestSensorCertificate(a.id, csr, dbus.ByteArray(b""), dbus.Dictionary({}, signature="sv"))
            name = "job"
        except dbus.exceptions.DBusException as e:
            name = e.get_dbus_name().rsplit(".", 1)[-1]
        counts[name] = counts.get(name, 0) + 1
    for name, n in sorted(counts.items()):
        print("%s %d" % (name, n))


def cmd_submit(a):
    import time
    dbus, iface = agent()
    csrs = []
    for i in range(a.count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "%s-%05d" % (a.prefix, i))])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        csrs.append(dbus.ByteArray(csr.public_bytes(serialization.Encoding.DER)))
    refused = {}
    accepted = 0
    start = time.monotonic()
    for i, csr in enumerate(csrs):
        try:
            iface.RequestSensorCertificate("%s-%05d" % (a.prefix, i), csr, dbus.ByteArray(b""),
                                           dbus.Dictionary({}, signature="sv"))
            accepted += 1
        except dbus.exceptions.DBusException as e:
            name = e.get_dbus_name().rsplit(".", 1)[-1]
            refused[name] = refused.get(name, 0) + 1
    print("accepted %d" % accepted)
    for name, n in sorted(refused.items()):
        print("refused %s %d" % (name, n))
    print("seconds %.3f" % (time.monotonic() - start))


def cmd_verify(a):
    import re
    text = open(a.chain, "rb").read()
    certs = [x509.load_pem_x509_certificate(m) for m in
             re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)]
    ca = x509.load_pem_x509_certificate(open(a.ca, "rb").read())
    key = serialization.load_pem_private_key(open(a.key, "rb").read(), None)
    if not certs:
        sys.exit("no certificate in %s" % a.chain)
    spki = lambda k: k.public_bytes(serialization.Encoding.DER,  # noqa: E731
                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    if spki(certs[0].public_key()) != spki(key.public_key()):
        sys.exit("the leaf of %s does not hold the sensor's key" % a.chain)
    cns = certs[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [c.value for c in cns] != [a.id]:
        sys.exit("the leaf names %s, not CN=%s" % (certs[0].subject.rfc4514_string(), a.id))
    chain = certs + [ca]
    for child, parent in zip(chain, chain[1:]):
        # (python3-cryptography 38 of Debian 12 has no verify_directly_issued_by; the lab CAs are EC)
        if child.issuer != parent.subject:
            sys.exit("%s is not issued by %s" % (child.subject.rfc4514_string(), parent.subject.rfc4514_string()))
        parent.public_key().verify(child.signature, child.tbs_certificate_bytes,
                                   ec.ECDSA(child.signature_hash_algorithm))
    print("verified: %s, serial %X, issued by %s" % (certs[0].subject.rfc4514_string(),
                                                     certs[0].serial_number, ca.subject.rfc4514_string()))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("make-csr")
    s.add_argument("--id", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--csr", required=True)
    s.add_argument("--cn")
    s.add_argument("--o")
    s.add_argument("--curve", default="p256", choices=sorted(CURVES))
    s = sub.add_parser("challenge")
    s.add_argument("--id", required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("evidence")
    s.add_argument("--nonce", required=True)
    s.add_argument("--csr", required=True)
    s.add_argument("--birth-key", required=True)
    s.add_argument("--birth-cert", required=True)
    s.add_argument("--sign-key")
    s.add_argument("--out", required=True)
    s = sub.add_parser("request")
    s.add_argument("--id", required=True)
    s.add_argument("--csr", required=True)
    s.add_argument("--evidence")
    s.add_argument("--option", action="append", default=[])
    s.add_argument("--wait", type=float)
    s.add_argument("--out")
    s = sub.add_parser("call")
    s.add_argument("method", choices=["ListSensors", "ForgetSensor", "GetSensorChallenge"])
    s.add_argument("arg", nargs="*")
    s = sub.add_parser("flood")
    s.add_argument("--id", required=True)
    s.add_argument("--csr", required=True)
    s.add_argument("--count", type=int, required=True)
    s = sub.add_parser("submit")
    s.add_argument("--prefix", required=True)
    s.add_argument("--count", type=int, required=True)
    s = sub.add_parser("verify")
    s.add_argument("--chain", required=True)
    s.add_argument("--ca", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--id", required=True)
    a = p.parse_args()
    if a.cmd == "request" and (a.wait is None) != (a.out is None):
        p.error("request: --wait and --out go together")
    {"make-csr": cmd_make_csr, "challenge": cmd_challenge, "evidence": cmd_evidence,
     "request": cmd_request, "call": cmd_call, "flood": cmd_flood, "submit": cmd_submit, "verify": cmd_verify}[a.cmd](a)


if __name__ == "__main__":
    main()
