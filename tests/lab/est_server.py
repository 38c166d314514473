#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Lab EST server (RFC 7030, RFC 8951 clarifications) over HTTPS, for fleetid
tests and demos. Never installed. Listens on 127.0.0.1 only.

Serves /.well-known/est/[<label>/]{cacerts,csrattrs,simpleenroll,simplereenroll}
with certificates from a lab PKI made by pki.py. A JSON control file, re-read
on every request, injects faults (status codes, Retry-After, delays, broken
bodies, wrong certificates). One JSON line per request and per failed TLS
handshake goes to --log, so tests can assert what reached the server.
See README.md in this directory.
"""

import argparse
import base64
import binascii
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pki  # noqa: E402  (lab module next to this file)
import csr_policy  # noqa: E402
import tls_binding  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs7  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

MAX_BODY = 64 * 1024
MAX_DRAIN = 1024 * 1024
MAX_CONTROL = 64 * 1024
SOCKET_TIMEOUT = 10.0
EST_PREFIX = "/.well-known/est/"
LABEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OPERATIONS = ("cacerts", "csrattrs", "simpleenroll", "simplereenroll")
UNSUPPORTED_OPERATIONS = ("serverkeygen", "fullcmc")
REALM = "fleetid-lab"

OID_CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_SECP256R1 = "1.2.840.10045.3.1.7"

SERVER_CERTS = {"server": "server", "otherhost": "server-otherhost", "rogue": "rogue-server"}
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

# body_mode values, and the operations each applies to.
BODY_MODES = {
    "truncated": OPERATIONS,          # DER cut in half, correctly base64-encoded
    "short_read": OPERATIONS,         # full Content-Length announced, half sent, closed
    "not_base64": OPERATIONS,         # body is not base64 at all
    "not_pkcs7": ("cacerts", "simpleenroll", "simplereenroll"),  # a bare cert DER
    "rogue_ca": ("cacerts", "simpleenroll", "simplereenroll"),   # signed by / is rogue CA
    "other_key": ("simpleenroll", "simplereenroll"),
    "expired": ("simpleenroll", "simplereenroll"),
    "wrong_subject": ("simpleenroll", "simplereenroll"),
    "with_ca": ("simpleenroll", "simplereenroll"),  # issued cert + EST CA cert
    "reset": OPERATIONS,              # no answer: the TCP connection is reset (RST)
    "drop": OPERATIONS,               # request read, connection closed, no answer: a server's
                                      # idle timeout racing the request (libcurl resends a
                                      # request on a reused connection on a fresh one)
    "with_extras": ("simpleenroll", "simplereenroll"),  # issued cert + EST CA + rogue CA +
                                                        # a cert for another key
    "cut_headers": OPERATIONS,        # status line and part of the headers, then closed
    "huge_length": OPERATIONS,        # Content-Length of HUGE_LENGTH announced, a few bytes, closed
    "continue_100": OPERATIONS,       # an interim "100 Continue" response, then the real one
}
HUGE_LENGTH = 1 << 30
FAULT_KEYS = {"match", "status", "retry_after", "body", "delay", "body_mode", "count",
              "retry_after_date_in", "pad_headers",
              "label"}
CONTROL_KEYS = {"faults", "response_encoding", "csrattrs", "require_channel_binding", "send_cte",
                "close_after", "cacerts", "issuer", "server_cert",
                "date_offset",
                "validity_offset",
                "close_silently_after",
                "csrattrs_trailing_nul",
                "binding_refusal_status",
                "csrattrs_key",
                "ra_eku"}
ENCODINGS = ("base64-lines", "base64-crlf", "base64-oneline", "pem")
CSRATTRS_MODES = ("normal", "no_challenge", "empty204", "notfound404")
# control "csrattrs_key": the key and hash /csrattrs asks for (see csrattrs_key_items).
CSRATTRS_KEYS = ("p256", "p384", "rsa2048", "rsa3072", "p521")
# Root CA key update (pki.py rollover): what /cacerts holds, which root issues.
CACERTS_MODES = ("current", "rollover", "new", "impostor")
ISSUERS = ("current", "new")
NEW_SERVER_CERT = "new"  # control "server_cert": the TLS certificate from the new root


# date_offset / validity_offset bound: ten years, in seconds.
MAX_OFFSET = 10 * 366 * 86400


class ConnectionReset(Exception):
    """The request is answered by resetting the connection."""


class ConnectionDropped(Exception):
    """The request is answered by closing the connection without a word."""


class RawAnswer(Exception):
    """The request is answered with these raw bytes, then the connection is
    closed (body modes that break HTTP framing)."""

    def __init__(self, status, data):
        super().__init__(status)
        self.status = status
        self.data = data


class ControlError(Exception):
    """The control file is unreadable or malformed; requests get a 500."""


class HttpError(Exception):
    """Ends a request with this status and text body."""

    def __init__(self, status, text, headers=None):
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


# --- A tiny DER encoder, enough for the CsrAttrs of RFC 7030 4.5.2 ---

def der_tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def der_oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1]] + arcs[2:]:
        chunk = [arc & 0x7f]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7f))
            arc >>= 7
        out += bytes(reversed(chunk))
    return der_tlv(0x06, bytes(out))


def der_sequence(*items):
    return der_tlv(0x30, b"".join(items))


def der_set(*items):
    return der_tlv(0x31, b"".join(items))


def der_integer(n):
    return der_tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def csrattrs_key_items(choice):
    """The AttrOrOIDs asking for a key and a hash, each in a form servers use
    (RFC 7030 4.5.2, RFC 8951, RFC 9908): the curve as an attribute value of
    id-ecPublicKey, the RSA size as an INTEGER attribute value of
    rsaEncryption, the hash as a signature algorithm or a bare hash OID."""
    def ec_key(curve):
        return der_sequence(der_oid(OID_EC_PUBLIC_KEY), der_set(der_oid(curve)))

    def rsa_key(bits):
        return der_sequence(der_oid("1.2.840.113549.1.1.1"), der_set(der_integer(bits)))

    return {
        "p256": [der_oid(OID_ECDSA_WITH_SHA256), ec_key(OID_SECP256R1)],
        "p384": [ec_key("1.3.132.0.34"), der_oid("2.16.840.1.101.3.4.2.2")],  # id-sha384, bare
        "rsa2048": [rsa_key(2048), der_oid("1.2.840.113549.1.1.11")],  # sha256WithRSAEncryption
        "rsa3072": [rsa_key(3072), der_oid("1.2.840.113549.1.1.12")],  # sha384WithRSAEncryption
        "p521": [ec_key("1.3.132.0.35"), der_oid("1.2.840.10045.4.3.4")],  # ecdsa-with-SHA512
    }[choice]


def csrattrs_answer(ctl):
    """The DER CsrAttrs /csrattrs answers with under this control file, or
    None when it asks for nothing (204, 404). Enrollment CSRs are held to it."""
    mode = ctl.get("csrattrs", "normal")
    if mode in ("empty204", "notfound404"):
        return None
    return csrattrs_der(mode != "no_challenge", ctl.get("csrattrs_key", "p256"))


def csrattrs_der(challenge=True, key="p256"):
    """CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID: ask for a
    challengePassword (unless challenge is False) and the key and hash of
    csrattrs_key_items(key) (by default an ecdsa-with-SHA256 signature and a
    P-256 key)."""
    return der_sequence(
        *([der_oid(OID_CHALLENGE_PASSWORD)] if challenge else []),
        *csrattrs_key_items(key))


def csr_key_type(public_key):
    """A CSR's key in fleetid's words: ecc-p256, ecc-p384, rsa-2048, ..."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ecc-p%d" % public_key.curve.key_size
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa-%d" % public_key.key_size
    return type(public_key).__name__


# --- Control file and fault selection ---

def validate_control(ctl):
    if not isinstance(ctl, dict):
        raise ControlError("top level must be a JSON object")
    unknown = set(ctl) - CONTROL_KEYS
    if unknown:
        raise ControlError("unknown key(s) %s" % ", ".join(sorted(unknown)))
    if ctl.get("response_encoding", "base64-lines") not in ENCODINGS:
        raise ControlError("response_encoding must be one of %s" % ", ".join(ENCODINGS))
    if ctl.get("csrattrs", "normal") not in CSRATTRS_MODES:
        raise ControlError("csrattrs must be one of %s" % ", ".join(CSRATTRS_MODES))
    if ctl.get("csrattrs_key", "p256") not in CSRATTRS_KEYS:
        raise ControlError("csrattrs_key must be one of %s" % ", ".join(CSRATTRS_KEYS))
    if ctl.get("cacerts", "current") not in CACERTS_MODES:
        raise ControlError("cacerts must be one of %s" % ", ".join(CACERTS_MODES))
    if ctl.get("issuer", "current") not in ISSUERS:
        raise ControlError("issuer must be one of %s" % ", ".join(ISSUERS))
    if ctl.get("server_cert", "server") not in tuple(SERVER_CERTS) + (NEW_SERVER_CERT,):
        raise ControlError("server_cert must be one of %s"
                           % ", ".join(tuple(SERVER_CERTS) + (NEW_SERVER_CERT,)))
    validate_offsets(ctl)
    close_after = ctl.get("close_after", [])
    if not isinstance(close_after, list) or any(op not in OPERATIONS for op in close_after):
        raise ControlError("close_after must be a list of %s" % ", ".join(OPERATIONS))
    validate_interop_control(ctl)
    faults = ctl.get("faults", [])
    if not isinstance(faults, list):
        raise ControlError("faults must be a list")
    for i, f in enumerate(faults):
        where = "faults[%d]" % i
        if not isinstance(f, dict):
            raise ControlError("%s must be an object" % where)
        unknown = set(f) - FAULT_KEYS
        if unknown:
            raise ControlError("%s: unknown key(s) %s" % (where, ", ".join(sorted(unknown))))
        if f.get("match") not in OPERATIONS + ("*",):
            raise ControlError("%s: match must be '*' or one of %s" % (where, ", ".join(OPERATIONS)))
        if "status" in f and (not isinstance(f["status"], int) or not 100 <= f["status"] <= 599):
            raise ControlError("%s: status must be an integer 100..599" % where)
        if "body_mode" in f and f["body_mode"] not in BODY_MODES:
            raise ControlError("%s: body_mode must be one of %s" % (where, ", ".join(BODY_MODES)))
        if "status" in f and "body_mode" in f:
            raise ControlError("%s: status and body_mode are exclusive" % where)
        if ("retry_after" in f or "body" in f) and "status" not in f:
            raise ControlError("%s: retry_after and body need a status" % where)
        if "pad_headers" in f and (not isinstance(f["pad_headers"], int) or isinstance(f["pad_headers"], bool)
                                   or not 1 <= f["pad_headers"] <= 1000 or "status" not in f):
            raise ControlError("%s: pad_headers must be 1..1000 (header lines of 1000 bytes), with a status" % where)
        if "delay" in f and (not isinstance(f["delay"], (int, float)) or not 0 <= f["delay"] <= 300):
            raise ControlError("%s: delay must be 0..300 seconds" % where)
        if "count" in f and (not isinstance(f["count"], int) or f["count"] < 0):
            raise ControlError("%s: count must be a non-negative integer" % where)
        validate_retry_after_date_in(where, f)
        if "label" in f and not (isinstance(f["label"], str) and LABEL_RE.match(f["label"])):
            raise ControlError("%s: label must be a CA label ([A-Za-z0-9_-]{1,64})" % where)
    if not isinstance(ctl.get("ra_eku", False), bool):
        raise ControlError("ra_eku must be true or false")


def validate_retry_after_date_in(where, f):
    """retry_after_date_in: whole seconds, with a status, instead of retry_after."""
    if "retry_after_date_in" not in f:
        return
    v = f["retry_after_date_in"]
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 86400:
        raise ControlError("%s: retry_after_date_in must be 0..86400 seconds" % where)
    if "status" not in f or "retry_after" in f:
        raise ControlError("%s: retry_after_date_in needs a status and no retry_after" % where)


def retry_after_date(seconds, date_offset=0):
    """The HTTP-date (RFC 9110 5.6.7) that many seconds from now, on the same
    clock as the Date header (moved by date_offset)."""
    return email.utils.formatdate(time.time() + date_offset + seconds, usegmt=True)


def validate_offsets(ctl):
    """date_offset, validity_offset: whole seconds, at most ten years either way."""
    for key in ("date_offset", "validity_offset"):
        v = ctl.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or abs(v) > MAX_OFFSET:
            raise ControlError("%s must be an integer number of seconds, |n| <= %d" % (key, MAX_OFFSET))


def validate_interop_control(ctl):
    """The switches that imitate a stricter EST server's habits."""
    silent = ctl.get("close_silently_after", [])
    if not isinstance(silent, list) or any(not isinstance(s, int) or not 100 <= s <= 599 for s in silent):
        raise ControlError("close_silently_after must be a list of HTTP status codes")
    if not isinstance(ctl.get("csrattrs_trailing_nul", False), bool):
        raise ControlError("csrattrs_trailing_nul must be true or false")
    if ctl.get("binding_refusal_status", 400) not in (400, 401, 403):
        raise ControlError("binding_refusal_status must be 400, 401 or 403")


class Control:
    """The --control file, re-read on every request. Fault "count"s are kept
    in memory by entry index and re-armed whenever the file is rewritten."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.generation = None
        self.used = {}

    def load(self):
        if self.path is None:
            return {}
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read(MAX_CONTROL + 1)
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise ControlError("cannot read %s: %s" % (self.path, e))
        if len(data) > MAX_CONTROL:
            raise ControlError("%s is larger than %d bytes" % (self.path, MAX_CONTROL))
        if not data.strip():
            return {}
        generation = (st.st_ino, st.st_mtime_ns, hashlib.sha256(data).digest())
        try:
            ctl = json.loads(data)
        except ValueError as e:
            raise ControlError("%s is not valid JSON: %s" % (self.path, e))
        validate_control(ctl)
        with self.lock:
            if generation != self.generation:
                self.generation = generation
                self.used = {}
        return ctl

    def take_faults(self, ctl, op, label=None):
        """Consume the faults that apply to this request. Returns (delay, entry):
        the sum of the delays of matching entries up to and including the first
        one with a status or body_mode, and that entry (or None)."""
        delay = 0.0
        with self.lock:
            for i, f in enumerate(ctl.get("faults", [])):
                if f["match"] not in ("*", op) or ("label" in f and f["label"] != label):
                    continue
                if "count" in f and self.used.get(i, 0) >= f["count"]:
                    continue
                self.used[i] = self.used.get(i, 0) + 1
                delay += f.get("delay", 0)
                if "status" in f or "body_mode" in f:
                    return delay, dict(f, index=i)
        return delay, None


# --- Logging ---

class JsonLog:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8") if path else None

    def write(self, **fields):
        if self.file is None:
            return
        fields["time"] = datetime.datetime.utcnow().isoformat(timespec="milliseconds") + "Z"
        line = json.dumps(fields, sort_keys=True)
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()


# --- The lab: PKI material and options shared by all requests ---

class Lab:
    def __init__(self, args):
        d = args.pki
        self.est = pki.Ca(d, "est-ca")
        self.rogue = pki.Ca(d, "rogue-ca")
        self.mfg_cert = pki.load_cert(os.path.join(d, "mfg-ca.pem"))
        self.cert_lifetime = args.cert_lifetime
        self.backdate = args.backdate
        self.label_required = args.label_required
        self.no_labels = args.no_labels
        self.distrust_mfg_ca = args.distrust_mfg_ca
        self.ecdh_curve = args.ecdh_curve
        self.control = Control(args.control)
        self.log = JsonLog(args.log)
        self.basic = None
        if args.basic_user is not None:
            with open(args.basic_password_file, "rb") as f:
                password = f.read(4096).rstrip(b"\r\n")
            self.basic = args.basic_user.encode() + b":" + password

        self.pki_dir = d
        self.server_cert = args.server_cert
        self.tls_versions = (TLS_VERSIONS[args.tls_min], TLS_VERSIONS[args.tls_max])
        self.ssl_contexts = {}
        self.rollover_cache = (None, None)
        self.ssl_ctx = self.ssl_context({})
        self.labels = args.label or []
        self.lenient_label = args.lenient_label
        self.lenient_subject = args.lenient_subject
        self.lenient_challenge_password = args.lenient_challenge_password
        self.lenient_key_type = args.lenient_key_type
        self.split_writes = args.split_writes

    def rollover(self, required=True):
        """The material of pki.py rollover (re-read when est-ca-new.pem changes),
        or None if there is none and required is False."""
        path = os.path.join(self.pki_dir, "est-ca-new.pem")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if required:
                raise ControlError("the control file needs a rolled-over EST CA: run "
                                   "pki.py rollover %s first" % self.pki_dir)
            return None
        stamp = (st.st_ino, st.st_mtime_ns)
        with self.control.lock:
            if self.rollover_cache[0] != stamp:
                load = lambda base: pki.load_cert(os.path.join(self.pki_dir, base + ".pem"))  # noqa: E731
                self.rollover_cache = (stamp, {
                    "new": pki.Ca(self.pki_dir, "est-ca-new"),
                    "new_with_old": load("est-ca-new-with-old"),
                    "old_with_new": load("est-ca-old-with-new"),
                    "impostor": load("est-ca-impostor"),
                    "impostor_with_old": load("est-ca-impostor-with-old"),
                })
            return self.rollover_cache[1]

    def ssl_context(self, ctl):
        """The TLS context for a new connection: the server certificate the
        control file names (else --server-cert); client certificates may come
        from the manufacturer CA, the EST CA or, once rolled over, its new root."""
        choice = ctl.get("server_cert", self.server_cert)
        base = "server-new" if choice == NEW_SERVER_CERT else SERVER_CERTS[choice]
        ro = self.rollover(required=choice == NEW_SERVER_CERT)
        key = (base, self.rollover_cache[0] if ro is not None else None)
        with self.control.lock:
            ctx = self.ssl_contexts.get(key)
        if ctx is not None:
            return ctx
        d = self.pki_dir
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d, base + ".pem"), os.path.join(d, base + ".key"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        if not self.distrust_mfg_ca:
            ctx.load_verify_locations(os.path.join(d, "mfg-ca.pem"))
        if self.ecdh_curve:
            ctx.set_ecdh_curve(self.ecdh_curve)
        ctx.load_verify_locations(os.path.join(d, "est-ca.pem"))
        if ro is not None:
            ctx.load_verify_locations(os.path.join(d, "est-ca-new.pem"))
        ctx.minimum_version, ctx.maximum_version = self.tls_versions
        with self.control.lock:
            self.ssl_contexts[key] = ctx
        return ctx

    def client_kind(self, cert):
        if pki.signed_by(cert, self.mfg_cert):
            return "birth"
        ro = self.rollover(required=False)
        if pki.signed_by(cert, self.est.cert) or (ro and pki.signed_by(cert, ro["new"].cert)):
            return "operational"
        return "unknown"

    def issuing_ca(self, ctl):
        return self.rollover()["new"] if ctl.get("issuer", "current") == "new" else self.est

    def cacerts(self, ctl):
        """/cacerts per the control file: the current root; during a rollover
        OldWithOld, NewWithNew, NewWithOld, OldWithNew; the new root alone; or
        an impostor root with a forged NewWithOld next to the current root."""
        mode = ctl.get("cacerts", "current")
        if mode == "current":
            return [self.est.cert]
        ro = self.rollover()
        if mode == "rollover":
            return [self.est.cert, ro["new"].cert, ro["new_with_old"], ro["old_with_new"]]
        if mode == "new":
            return [ro["new"].cert]
        return [self.est.cert, ro["impostor"], ro["impostor_with_old"]]

    def issue(self, csr, mode, ctl, rec=None):
        """Issue an operational certificate for a verified CSR from the root the
        control file names, broken as the body_mode asks (other_key, expired,
        wrong_subject, rogue_ca)."""
        now = pki.utcnow()
        not_before = now - datetime.timedelta(seconds=self.backdate)
        not_after = now + datetime.timedelta(seconds=self.cert_lifetime)
        subject, public_key, ca = csr.subject, csr.public_key(), self.issuing_ca(ctl)
        if mode == "other_key":
            public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        elif mode == "expired":
            not_before = now - datetime.timedelta(days=2)
            not_after = now - datetime.timedelta(days=1)
        elif mode == "wrong_subject":
            subject = pki.name("not-the-requested-subject", "WRONG-SUBJECT")
        elif mode == "rogue_ca":
            ca = self.rogue
        shift = datetime.timedelta(seconds=ctl.get("validity_offset", 0))
        not_before, not_after = not_before + shift, not_after + shift
        return pki.issue_end_entity(ca.cert, ca.key, subject, public_key, not_before,
                                    not_after, issued_eku(ctl, rec), lab_san(csr))


def with_extras(lab, csr, cert, ctl):
    """body_mode with_extras: the issued certificate, then certificates that are
    no part of its chain: the issuing CA's (the trust anchor), the rogue CA's,
    and one from the same CA for another key."""
    return [cert, lab.issuing_ca(ctl).cert, lab.rogue.cert, lab.issue(csr, "other_key", ctl)]


def san_of(obj):
    """The subjectAltName (a SubjectAlternativeName) of a CSR or a
    certificate, or None."""
    try:
        return obj.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def lab_san(csr):
    """The subjectAltName to issue: the one the CSR asks for, else (a first
    enrollment) one the CA assigns, as PKIs commonly do: a DNS name derived from
    the subject and a URN. A renewal must ask for it unchanged (RFC 7030
    4.2.2); the server checks that."""
    san = san_of(csr)
    if san is not None:
        return list(san)
    tag = hashlib.sha256(csr.subject.public_bytes()).hexdigest()[:12]
    return [x509.DNSName("device-%s.devices.fleetid.lab" % tag),
            x509.UniformResourceIdentifier("urn:fleetid-lab:ldevid:%s" % tag)]


def san_text(san):
    return "none" if san is None else ", ".join(
        "%s:%s" % (type(g).__name__, g.value) for g in san)


def encode_body(der, encoding, pkcs7_body):
    b64 = base64.b64encode(der).decode()
    if encoding == "base64-oneline":
        return b64.encode()
    eol = "\r\n" if encoding == "base64-crlf" else "\n"
    lines = eol.join(b64[i:i + 64] for i in range(0, len(b64), 64)) + eol
    if encoding == "pem" and pkcs7_body:
        return ("-----BEGIN PKCS7-----\n" + lines + "-----END PKCS7-----\n").encode()
    return lines.encode()


def dn(name):
    return name.rfc4514_string({NameOID.SERIAL_NUMBER: "serialNumber"})


def certs_only(certs):
    return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)


class EstHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fleetid-lab-est/1"
    sys_version = ""
    timeout = SOCKET_TIMEOUT

    def log_message(self, fmt, *args):
        pass  # one JSON line per request instead, see dispatch()

    def date_time_string(self, timestamp=None):
        """The Date header, moved by the control file's date_offset."""
        if timestamp is None:
            try:
                offset = self.server.lab.control.load().get("date_offset", 0)
            except ControlError:
                offset = 0
            timestamp = time.time() + offset
        return super().date_time_string(timestamp)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        lab = self.server.lab
        conn = self.connection
        rec = {"event": "request", "method": method, "path": self.path,
               "peer": "%s:%d" % self.client_address[:2],
               "tls_version": conn.version(), "cipher": conn.cipher()[0]}
        self.client_cert = None
        der = conn.getpeercert(binary_form=True)
        if der:
            self.client_cert = x509.load_der_x509_certificate(der)
            rec["client_subject"] = dn(self.client_cert.subject)
            rec["client_issuer"] = dn(self.client_cert.issuer)
            rec["client_fingerprint"] = pki.fingerprint(self.client_cert)
            rec["client_pubkey_fingerprint"] = pki.public_key_fingerprint(
                self.client_cert.public_key())
        # Per request, and before route() can raise: an error on a fresh
        # connection must still be sent (the answer below reads it).
        self.close_after = []
        try:
            status, headers, body, cut = self.route(method, rec)
        except ConnectionReset:
            rec["status"] = "reset"
            lab.log.write(**rec)
            self.reset_connection()
            return
        except ConnectionDropped:
            rec["status"] = "dropped"
            lab.log.write(**rec)
            self.close_connection = True
            return
        except RawAnswer as e:
            rec["status"] = e.status
            lab.log.write(**rec)
            self.close_connection = True
            self.wfile.write(e.data)
            self.wfile.flush()
            return
        except HttpError as e:
            status, headers, body, cut = e.status, e.headers, (e.text + "\n").encode(), None
        except ControlError as e:
            status, headers, body, cut = 500, {}, ("lab control file: %s\n" % e).encode(), None
        except Exception:
            traceback.print_exc()
            status, headers, body, cut = 500, {}, b"lab server internal error\n", None
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        rec["status"] = status
        lab.log.write(**rec)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if cut is not None or rec.get("op") in self.close_after:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.send_head_and_body(body if cut is None else body[:cut])
        self.close_silently(status)

    def send_head_and_body(self, data):
        """The answer in one write (one TLS record, one TCP send); with
        --split-writes, the header and then the body in two writes, without
        TCP_NODELAY, as some servers do (Nagle then holds the body until the
        client ACKs the header)."""
        if self.server.lab.split_writes:
            self.end_headers()
            self.wfile.write(data)
        else:
            head = getattr(self, "_headers_buffer", [])
            if self.request_version != "HTTP/0.9":
                head.append(b"\r\n")
            self.wfile.write(b"".join(head) + data)
            self._headers_buffer = []
        self.wfile.flush()

    def close_silently(self, status):
        """control close_silently_after: close the connection after an answer
        with this status although it did not say "Connection: close"."""
        try:
            silent = self.server.lab.control.load().get("close_silently_after", [])
        except ControlError:
            return
        if status in silent:
            self.close_connection = True

    def broken_framing(self, mode):
        """body modes cut_headers and huge_length answer with raw bytes and
        close; continue_100 sends an interim 100 response and goes on."""
        if mode == "cut_headers":
            raise RawAnswer("cut_headers", b"HTTP/1.1 200 OK\r\nContent-Type: application/pk")
        if mode == "huge_length":
            raise RawAnswer("huge_length", b"HTTP/1.1 200 OK\r\nContent-Type: application/pkcs7-mime\r\n"
                            b"Content-Length: %d\r\n\r\nMIIB" % HUGE_LENGTH)
        if mode == "continue_100":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()

    def hold(self, op, delay):
        """A fault's delay: logged as it starts (a test can act while the
        client waits for the answer), then slept."""
        self.server.lab.log.write(event="delay", op=op, seconds=delay)
        time.sleep(delay)

    def route(self, method, rec):
        """Returns (status, headers, body bytes, cut): cut is None, or the
        number of bytes to send before closing (short_read)."""
        lab = self.server.lab
        path = urlsplit(self.path).path
        if not path.startswith(EST_PREFIX):
            raise HttpError(404, "not an EST path (expected %s...)" % EST_PREFIX)
        parts = path[len(EST_PREFIX):].split("/")
        if len(parts) == 2 and LABEL_RE.match(parts[0]):
            rec["label"], op = parts
        elif len(parts) == 1:
            op = parts[0]
        else:
            raise HttpError(404, "no such EST path (label must match [A-Za-z0-9_-]{1,64})")
        rec["op"] = op
        if op in UNSUPPORTED_OPERATIONS:
            raise HttpError(501, "%s is not implemented by the lab server" % op)
        if op not in OPERATIONS:
            raise HttpError(404, "unknown EST operation %s" % op)
        if lab.no_labels and "label" in rec:
            raise HttpError(404, "this server has no CA labels: %s%s" % (EST_PREFIX, op))
        if lab.label_required and "label" not in rec:
            raise HttpError(404, "this server requires a CA label: %s<label>/%s" % (EST_PREFIX, op))
        check_label(lab, rec)
        wanted = "GET" if op in ("cacerts", "csrattrs") else "POST"
        if method != wanted:
            raise HttpError(405, "%s needs %s" % (op, wanted), {"Allow": wanted})

        ctl = lab.control.load()
        self.close_after = ctl.get("close_after", [])
        csr = None
        if wanted == "POST":
            csr = self.read_csr(op, rec)
            self.check_channel_binding(ctl, csr, rec)
            self.check_policy(ctl, op, csr, rec)

        delay, fault = lab.control.take_faults(ctl, op, rec.get("label"))
        if fault is not None:
            rec["fault"] = fault
        if delay:
            self.hold(op, delay)
        mode = None
        if fault is not None:
            if "status" in fault:
                headers = {}
                if "retry_after" in fault:
                    headers["Retry-After"] = str(fault["retry_after"])
                if "retry_after_date_in" in fault:
                    headers["Retry-After"] = rec["retry_after"] = retry_after_date(
                        fault["retry_after_date_in"], ctl.get("date_offset", 0))
                for i in range(fault.get("pad_headers", 0)):
                    headers["X-Lab-Pad-%d" % i] = "x" * 1000
                text = fault.get("body", "lab fault: status %d" % fault["status"])
                return fault["status"], headers, (text + "\n").encode(), None
            mode = fault["body_mode"]
            if op not in BODY_MODES[mode]:
                raise ControlError("body_mode %s does not apply to %s" % (mode, op))
            if mode == "reset":
                raise ConnectionReset()
            if mode == "drop":
                raise ConnectionDropped()
            self.broken_framing(mode)

        encoding = ctl.get("response_encoding", "base64-lines")
        headers = {}
        if ctl.get("send_cte", True):
            headers["Content-Transfer-Encoding"] = "base64"
        if op == "csrattrs":
            if ctl.get("csrattrs", "normal") == "empty204":
                return 204, {}, b"", None
            if ctl.get("csrattrs", "normal") == "notfound404":
                raise HttpError(404, "no CSR attributes for this CA")
            headers["Content-Type"] = "application/csrattrs"
            rec["csrattrs_key"] = ctl.get("csrattrs_key", "p256")
            der = csrattrs_answer(ctl)
        elif op == "cacerts":
            headers["Content-Type"] = "application/pkcs7-mime"
            rec["cacerts"] = ctl.get("cacerts", "current")
            cas = [lab.rogue.cert] if mode == "rogue_ca" else lab.cacerts(ctl)
            der = certs_only(cas) if mode != "not_pkcs7" else cas[0].public_bytes(
                serialization.Encoding.DER)
        else:
            headers["Content-Type"] = "application/pkcs7-mime; smime-type=certs-only"
            cert = lab.issue(csr, mode, ctl, rec)
            rec["issued_serial"] = "%x" % cert.serial_number
            rec["issued_fingerprint"] = pki.fingerprint(cert)
            rec["issuer"] = ctl.get("issuer", "current")
            certs = [cert, lab.issuing_ca(ctl).cert] if mode == "with_ca" else [cert]
            if mode == "with_extras":
                certs = with_extras(lab, csr, cert, ctl)
            der = certs_only(certs) if mode != "not_pkcs7" else cert.public_bytes(
                serialization.Encoding.DER)

        if mode == "truncated":
            der = der[:len(der) // 2]
        if mode == "not_base64":
            body = b"this is *not* base64 !@#$%\r\n"
        else:
            body = encode_body(der, encoding, op != "csrattrs")
        if op == "csrattrs" and ctl.get("csrattrs_trailing_nul", False):
            body += b"\0"
        cut = len(body) // 2 if mode == "short_read" else None
        return 200, headers, body, cut

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise HttpError(411, "chunked request bodies are not accepted; send Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HttpError(411, "Content-Length required")
        try:
            n = int(length)
        except ValueError:
            raise HttpError(400, "bad Content-Length %r" % length)
        if n < 0:
            raise HttpError(400, "bad Content-Length %r" % length)
        if n > MAX_BODY:
            # Read (up to MAX_DRAIN) and drop the body so the client sees the 413.
            self.close_connection = True
            left = min(n, MAX_DRAIN)
            while left > 0:
                chunk = self.rfile.read(min(left, 16384))
                if not chunk:
                    break
                left -= len(chunk)
            raise HttpError(413, "request body of %d bytes exceeds %d" % (n, MAX_BODY))
        data = self.rfile.read(n)
        if len(data) != n:
            self.close_connection = True
            raise HttpError(400, "request body ended after %d of %d bytes" % (len(data), n))
        return data

    def authenticate(self, op, rec):
        lab = self.server.lab
        kind = lab.client_kind(self.client_cert) if self.client_cert else None
        rec["client_kind"] = kind
        if op == "simplereenroll":
            if kind == "operational":
                return "tls-operational"
            why = "simplereenroll needs a TLS client certificate issued by the EST CA"
        else:
            if kind == "birth":
                return "tls-birth"
            if kind == "operational" and is_ra(self.client_cert):
                return "tls-ra"
            auth = self.headers.get("Authorization", "")
            if lab.basic is not None and auth[:6].lower() == "basic ":
                try:
                    given = base64.b64decode(auth[6:].strip(), validate=True)
                except binascii.Error:
                    given = b""
                if hmac.compare_digest(given, lab.basic):
                    return "basic"
                why = "HTTP Basic credentials rejected"
            else:
                why = ("simpleenroll needs a TLS client certificate from the manufacturer CA"
                       " or HTTP Basic credentials")
        raise HttpError(401, why, {"WWW-Authenticate": 'Basic realm="%s"' % REALM})

    def read_csr(self, op, rec):
        body = self.read_body()
        rec["auth"] = self.authenticate(op, rec)
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/pkcs10":
            raise HttpError(415, "Content-Type must be application/pkcs10, got %r" % ctype)
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except binascii.Error as e:
            raise HttpError(400, "request body is not base64: %s" % e)
        try:
            csr = x509.load_der_x509_csr(der)
        except ValueError as e:
            raise HttpError(400, "request body is not a DER PKCS#10 CSR: %s" % e)
        rec["csr_subject"] = dn(csr.subject)
        rec["csr_pubkey_fingerprint"] = pki.public_key_fingerprint(csr.public_key())
        rec["csr_key_type"] = csr_key_type(csr.public_key())
        rec["csr_signature_algorithm"] = getattr(csr.signature_algorithm_oid, "_name",
                                                 csr.signature_algorithm_oid.dotted_string)
        try:
            cp = csr.attributes.get_attribute_for_oid(
                x509.ObjectIdentifier(OID_CHALLENGE_PASSWORD))
            rec["challenge_password"] = cp.value.decode("utf-8", "replace")
        except x509.AttributeNotFound:
            pass
        if not csr.is_signature_valid:
            raise HttpError(400, "CSR signature does not verify")
        try:
            pki.check_key_type(csr.public_key())
        except pki.PkiError as e:
            raise HttpError(400, "CSR key refused: %s" % e)
        if op == "simplereenroll" and csr.subject != self.client_cert.subject:
            raise HttpError(400, "simplereenroll CSR subject %s differs from the client "
                            "certificate subject %s (RFC 7030 4.2.2)"
                            % (rec["csr_subject"], rec["client_subject"]))
        rec["csr_san"] = san_text(san_of(csr))
        if op == "simplereenroll" and san_of(csr) != san_of(self.client_cert):
            raise HttpError(400, "simplereenroll CSR subjectAltName (%s) differs from the client "
                            "certificate's (%s) (RFC 7030 4.2.2)"
                            % (rec["csr_san"], san_text(san_of(self.client_cert))))
        return csr

    def reset_connection(self):
        """Abort the TCP connection: SO_LINGER 0 makes close() send a RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw = socket.socket(fileno=self.connection.detach())
            raw.close()
        except OSError:
            pass

    def check_policy(self, ctl, op, csr, rec):
        """Holds an enrollment CSR to what a real CA enforces (csr_policy.py),
        each rule unless its --lenient-* option relaxes it."""
        lab = self.server.lab
        try:
            if op == "simpleenroll" and rec["auth"] == "tls-birth" and not lab.lenient_subject:
                csr_policy.check_subject(csr, self.client_cert)
            if rec["auth"] == "tls-ra":
                check_ra_subject(csr, self.client_cert)
                return  # the sensor's CSR: the RA's /csrattrs and channel binding are not its
            der = csrattrs_answer(ctl)
            want = csr_policy.asked(der) if der is not None else None
            if want is not None and not lab.lenient_challenge_password:
                csr_policy.check_challenge(want, csr)
            if want is not None and not lab.lenient_key_type:
                csr_policy.check_key(want, csr)
        except csr_policy.Refused as e:
            raise HttpError(400, str(e))

    def check_channel_binding(self, ctl, csr, rec):
        """Logs this connection's channel binding (tls-unique under TLS 1.2,
        tls-exporter under TLS 1.3) and, if required, checks that the CSR's
        challengePassword carries it, base64-encoded (RFC 7030 3.5, RFC 9266)."""
        try:
            kind, value = tls_binding.channel_binding(self.connection)
        except tls_binding.BindingError as e:
            if ctl.get("require_channel_binding", False):
                raise HttpError(500, "lab cannot compute the channel binding: %s" % e)
            return
        expected = base64.b64encode(value).decode()
        rec["channel_binding_type"] = kind
        rec["channel_binding"] = expected
        if not ctl.get("require_channel_binding", False):
            return
        if rec.get("challenge_password") != expected:
            raise HttpError(ctl.get("binding_refusal_status", 400), "challengePassword does not carry this connection's "
                            "%s value" % kind)


OID_CMC_RA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.28")  # id-kp-cmcRA (RFC 6402)
RA_CN_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def issued_eku(ctl, rec):
    """clientAuth; with control ra_eku, a gateway's own certificate (issued to
    a birth-authenticated client, or renewed) also gets id-kp-cmcRA: it may
    then act as a registration authority for its sensors (RFC 7030 3.7)."""
    if ctl.get("ra_eku", False) and rec is not None and rec.get("auth") in ("tls-birth", "tls-operational"):
        return [ExtendedKeyUsageOID.CLIENT_AUTH, OID_CMC_RA]
    return ExtendedKeyUsageOID.CLIENT_AUTH


def is_ra(cert):
    try:
        return OID_CMC_RA in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False


def check_ra_subject(csr, ra_cert):
    """The subject rule for a request an RA makes for another entity: a
    subject other than the RA's own, of O, OU and exactly one CN, each
    single-valued, the CN a sensor id ([A-Za-z0-9._-]{1,64})."""
    if csr.subject == ra_cert.subject:
        raise csr_policy.Refused("an RA request must be for another subject than the RA's own (%s)"
                                 % dn(csr.subject))
    allowed = {NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME}
    cns = []
    for rdn in csr.subject.rdns:
        if len(rdn) != 1:
            raise csr_policy.Refused("an RA request's subject has a multi-valued RDN: %s" % dn(csr.subject))
        attr = next(iter(rdn))
        if attr.oid not in allowed:
            raise csr_policy.Refused("an RA request's subject may hold only O, OU and CN, not %s"
                                     % attr.oid.dotted_string)
        if attr.oid == NameOID.COMMON_NAME:
            cns.append(attr.value)
    if len(cns) != 1 or not RA_CN_RE.match(cns[0]):
        raise csr_policy.Refused("an RA request's subject needs exactly one CN of [A-Za-z0-9._-]{1,64}: %s"
                                 % dn(csr.subject))


def check_label(lab, rec):
    """A CA label the server does not serve answers 404, as on a real server
    (--label names those it serves; --lenient-label accepts any)."""
    label = rec.get("label")
    if label is None or lab.lenient_label or label in lab.labels:
        return
    raise HttpError(404, "unknown CA label %s (this server serves: %s)"
                    % (label, ", ".join(lab.labels) or "no label"))


class EstServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, lab):
        self.lab = lab
        super().__init__(address, EstHandler)

    def server_bind(self):
        # HTTPServer.server_bind resolves the host name; avoid the DNS lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "localhost"
        self.server_port = self.server_address[1]

    def finish_request(self, request, client_address):
        """Runs in the connection's own thread: the TLS handshake is bounded by
        the socket timeout and cannot stall the accept loop."""
        request.settimeout(SOCKET_TIMEOUT)
        if not self.lab.split_writes:
            # Without it, Nagle holds the first answer until the client ACKs
            # the TLS 1.3 session tickets sent just before it (a small
            # segment): one delayed ACK, about 40 ms, on every connection's
            # first answer, for curl as for fleetidd (docs/benchmarks.md).
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            ctx = self.lab.ssl_context(self.lab.control.load())
        except (ControlError, OSError, ValueError, ssl.SSLError):
            ctx = self.lab.ssl_ctx  # the request itself will answer 500 with the reason
        try:
            tls = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.lab.log.write(event="tls_handshake_failed",
                               peer="%s:%d" % client_address[:2],
                               reason=getattr(e, "reason", None), error=str(e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except OSError:
            pass  # peer went away or timed out mid-request
        finally:
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tls.close()


class Terminated(Exception):
    pass


def label_arg(text):
    if not LABEL_RE.match(text):
        raise argparse.ArgumentTypeError("a label is 1-64 characters of A-Z a-z 0-9 _ -")
    return text


def parse_args(argv):
    p = argparse.ArgumentParser(description="fleetid lab EST server (RFC 7030/8951)")
    p.add_argument("--pki", required=True, help="lab PKI directory (pki.py init)")
    p.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1; 0 = any")
    p.add_argument("--port-file", help="write the listening port here once ready")
    p.add_argument("--pid-file")
    p.add_argument("--log", help="append one JSON line per request / failed handshake")
    p.add_argument("--control", help="JSON control file with fault switches")
    p.add_argument("--cert-lifetime", type=int, default=3600,
                   help="operational certificate lifetime in seconds (default 3600)")
    p.add_argument("--backdate", type=int, default=60,
                   help="seconds notBefore lies before the issuing time, as CAs do for clock skew "
                        "(default 60; 0 for short-lived renewal tests)")
    p.add_argument("--tls-min", choices=sorted(TLS_VERSIONS), default="1.2")
    p.add_argument("--tls-max", choices=sorted(TLS_VERSIONS), default="1.3")
    p.add_argument("--server-cert", choices=sorted(SERVER_CERTS), default="server")
    p.add_argument("--basic-user")
    p.add_argument("--basic-password-file")
    p.add_argument("--label-required", action="store_true",
                   help="refuse paths without a CA label")
    p.add_argument("--label", action="append", type=label_arg,
                   help="a CA label this server serves (repeatable); other labels answer 404")
    p.add_argument("--lenient-label", action="store_true",
                   help="serve any well-formed CA label")
    p.add_argument("--lenient-subject", action="store_true",
                   help="do not bind the /simpleenroll CSR subject to the birth certificate's "
                        "serialNumber")
    p.add_argument("--lenient-challenge-password", action="store_true",
                   help="accept CSRs without the challengePassword /csrattrs asks for")
    p.add_argument("--lenient-key-type", action="store_true",
                   help="accept CSR key types and signature algorithms /csrattrs does not ask for")
    p.add_argument("--no-labels", action="store_true",
                   help="refuse paths with a CA label (404)")
    p.add_argument("--distrust-mfg-ca", action="store_true",
                   help="do not trust the manufacturer CA for client certificates: a birth "
                        "certificate is refused in the TLS handshake")
    p.add_argument("--ecdh-curve", metavar="NAME",
                   help="the only ECDHE group offered (OpenSSL name, e.g. prime256v1)")
    p.add_argument("--split-writes", action="store_true",
                   help="write each answer's header and body in two writes, without TCP_NODELAY")
    args = p.parse_args(argv)
    if (args.basic_user is None) != (args.basic_password_file is None):
        p.error("--basic-user and --basic-password-file go together")
    if args.label_required and args.no_labels:
        p.error("--label-required and --no-labels exclude each other")
    if args.tls_min > args.tls_max:
        p.error("--tls-min is above --tls-max")
    if not 0 <= args.port <= 65535:
        p.error("--port must be 0..65535")
    if args.port == 0 and not args.port_file:
        p.error("--port 0 needs --port-file to tell where it listens")
    if args.cert_lifetime <= 0:
        p.error("--cert-lifetime must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)

    def on_signal(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        lab = Lab(args)
        server = EstServer(("127.0.0.1", args.port), lab)
    except (OSError, ValueError, ssl.SSLError) as e:
        print("est_server.py: cannot start: %s" % e, file=sys.stderr)
        return 1
    port = server.server_address[1]
    if args.pid_file:
        pki.write_file(args.pid_file, b"%d\n" % os.getpid())
    lab.log.write(event="listening", port=port, server_cert=args.server_cert,
                  tls_min=args.tls_min, tls_max=args.tls_max,
                  cert_lifetime=args.cert_lifetime)
    if args.port_file:
        pki.write_file(args.port_file, b"%d\n" % port)
    try:
        server.serve_forever(poll_interval=0.2)
    except Terminated:
        pass
    finally:
        server.server_close()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
