# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the lab EST server holds an enrollment CSR to, as a real CA does: the
subject is bound to the device identity of the birth certificate the client
authenticated with, and the CSR gives what /csrattrs asked for (a
challengePassword, the key type and curve or size, the signature algorithm).
est_server.py answers a refusal with 400; its --lenient-* options relax each
rule. Stdlib and cryptography only. See README.md in this directory.
"""

import collections

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

OID_CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
KEY_ALGORITHMS = {OID_EC_PUBLIC_KEY: "EC", OID_RSA_ENCRYPTION: "RSA"}
SIGNATURE_ALGORITHMS = {
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
}
MAX_DEPTH = 4

# challenge: challengePassword asked; signatures: signature algorithm OIDs
# asked (empty: any); keys: {key algorithm OID: set of curve OIDs or RSA sizes
# (empty: any)} (empty: any key type).
Asked = collections.namedtuple("Asked", "challenge signatures keys")


class Refused(Exception):
    """The CSR breaks a rule; the message names the rule and what was sent."""


class Malformed(Exception):
    """The lab's own CsrAttrs does not parse (a bug in the lab)."""


def der_items(data):
    """The (tag, content) pairs of a concatenation of DER TLVs."""
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise Malformed("truncated TLV at offset %d" % pos)
        tag, n = data[pos], data[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7f
            if k == 0 or k > 4 or pos + k > len(data):
                raise Malformed("bad length at offset %d" % pos)
            n = int.from_bytes(data[pos:pos + k], "big")
            pos += k
        if pos + n > len(data):
            raise Malformed("content beyond the end at offset %d" % pos)
        yield tag, data[pos:pos + n]
        pos += n


def der_oid_text(content):
    arcs, value = [], 0
    for b in content:
        value = (value << 7) | (b & 0x7f)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise Malformed("empty OBJECT IDENTIFIER")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first] + arcs[1:])


def asked(csrattrs):
    """Parses a DER CsrAttrs (RFC 7030 4.5.2: SEQUENCE OF AttrOrOID) into Asked."""
    top = list(der_items(csrattrs))
    if len(top) != 1 or top[0][0] != 0x30:
        raise Malformed("CsrAttrs is not one SEQUENCE")
    challenge, signatures, keys = False, set(), {}
    for tag, content in der_items(top[0][1]):
        if tag == 0x06:
            oid, values = der_oid_text(content), None
        elif tag == 0x30:
            parts = list(der_items(content))
            if len(parts) != 2 or parts[0][0] != 0x06 or parts[1][0] != 0x31:
                raise Malformed("an Attribute is not SEQUENCE {OID, SET}")
            oid, values = der_oid_text(parts[0][1]), list(der_items(parts[1][1]))
        else:
            raise Malformed("AttrOrOID with tag 0x%02x" % tag)
        if oid == OID_CHALLENGE_PASSWORD:
            challenge = True
        elif oid in SIGNATURE_ALGORITHMS:
            signatures.add(oid)
        elif oid in KEY_ALGORITHMS:
            params = keys.setdefault(oid, set())
            for vtag, v in values or []:
                params.add(der_oid_text(v) if vtag == 0x06 else int.from_bytes(v, "big"))
    return Asked(challenge, signatures, keys)


def serial_numbers(name):
    return [a.value for a in name.get_attributes_for_oid(NameOID.SERIAL_NUMBER)]


def check_subject(csr, birth_cert):
    """A first enrollment authenticated by a birth certificate (IDevID) asks
    for a certificate of the same device: every serialNumber of the birth
    certificate's subject is in the CSR's subject."""
    birth = serial_numbers(birth_cert.subject)
    if not birth:
        raise Refused("the birth certificate's subject (%s) has no serialNumber to bind the "
                      "request to" % birth_cert.subject.rfc4514_string())
    missing = [s for s in birth if s not in serial_numbers(csr.subject)]
    if missing:
        raise Refused("CSR subject (%s) lacks serialNumber=%s of the birth certificate the "
                      "client authenticated with" % (csr.subject.rfc4514_string(),
                                                     ",".join(missing)))


def check_challenge(want, csr):
    """challengePassword present if /csrattrs asked for it (its value is checked
    only when channel binding is required, see est_server.py)."""
    if not want.challenge:
        return
    try:
        csr.attributes.get_attribute_for_oid(x509.ObjectIdentifier(OID_CHALLENGE_PASSWORD))
    except x509.AttributeNotFound:
        raise Refused("CSR has no challengePassword, which /csrattrs asks for")


def describe_key(public_key):
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return OID_EC_PUBLIC_KEY, "EC %s" % public_key.curve.name
    if isinstance(public_key, rsa.RSAPublicKey):
        return OID_RSA_ENCRYPTION, "RSA-%d" % public_key.key_size
    return None, type(public_key).__name__


def param_matches(public_key, param):
    if isinstance(param, int):
        return isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == param
    try:
        curve = ec.get_curve_for_oid(x509.ObjectIdentifier(param))
    except (LookupError, ValueError):
        return False
    return isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == curve.name


def describe_param(param):
    if isinstance(param, int):
        return "%d bits" % param
    try:
        return ec.get_curve_for_oid(x509.ObjectIdentifier(param)).name
    except (LookupError, ValueError):
        return param


def describe_asked_keys(keys):
    return " or ".join("%s%s" % (KEY_ALGORITHMS[oid], " (%s)" % ", ".join(
        sorted(describe_param(p) for p in params)) if params else "")
        for oid, params in sorted(keys.items()))


def check_key(want, csr):
    """Key type, curve or size, and signature algorithm as /csrattrs asked."""
    public_key = csr.public_key()
    oid, text = describe_key(public_key)
    if want.keys:
        params = want.keys.get(oid)
        if params is None or (params and not any(param_matches(public_key, p) for p in params)):
            raise Refused("CSR key is %s; /csrattrs asks for %s" % (text, describe_asked_keys(want.keys)))
    sig = csr.signature_algorithm_oid.dotted_string
    if want.signatures and sig not in want.signatures:
        raise Refused("CSR is signed with %s; /csrattrs asks for %s" % (
            SIGNATURE_ALGORITHMS.get(sig, sig),
            " or ".join(SIGNATURE_ALGORITHMS[s] for s in sorted(want.signatures))))
