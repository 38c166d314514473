#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Lab PKI for fleetid tests: a manufacturer CA that signs birth certificates
(IEEE 802.1AR IDevIDs), an EST CA that issues operational certificates, the EST
server's TLS certificates, and a rogue CA that nothing trusts.

Test tooling only, never installed. Also imported by est_server.py, which
reuses the loading, issuing and verification helpers below.

    pki.py init DIR [--force] [--est-ca-lifetime SECONDS]
    pki.py rollover DIR [--force] [--days N]
    pki.py sign-birth DIR CSR.pem OUT.pem [--days N] [--ca mfg|rogue]
    pki.py fingerprint CERT.pem
    pki.py software-client DIR NAME [--days N] [--ca mfg|rogue]
"""

import argparse
import datetime
import hashlib
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LAB_ORG = "fleetid-lab"
MAX_INPUT_BYTES = 64 * 1024

# IEEE 802.1AR 8.5: an IDevID with no well-defined expiration uses this notAfter.
NO_EXPIRY = datetime.datetime(9999, 12, 31, 23, 59, 59)

# Which CA signs birth certificates, by --ca value.
BIRTH_CAS = {"mfg": "mfg-ca", "rogue": "rogue-ca"}


class PkiError(Exception):
    """A request the lab PKI refuses; the message says why."""


def utcnow():
    return datetime.datetime.utcnow().replace(microsecond=0)


def random_serial():
    """A positive 16-byte serial number (top bit cleared, never zero)."""
    return (int.from_bytes(os.urandom(16), "big") >> 1) | 1


def name(cn, serial_number=None):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, LAB_ORG),
             x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if serial_number is not None:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number))
    return x509.Name(attrs)


def write_file(path, data, mode=0o644):
    """Write atomically (temporary file + rename) with the given mode."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def read_bounded(path):
    with open(path, "rb") as f:
        data = f.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise PkiError("%s is larger than %d bytes" % (path, MAX_INPUT_BYTES))
    return data


def save_key(path, key):
    write_file(path, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)


def save_cert(path, cert):
    write_file(path, cert.public_bytes(serialization.Encoding.PEM))


def load_key(path):
    return serialization.load_pem_private_key(read_bounded(path), password=None)


def load_cert(path):
    data = read_bounded(path)
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_csr(path):
    data = read_bounded(path)
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_csr(data)
    return x509.load_der_x509_csr(data)


class Ca:
    """A CA certificate and its key, loaded from DIR/<base>.pem and .key."""

    def __init__(self, directory, base):
        self.cert = load_cert(os.path.join(directory, base + ".pem"))
        self.key = load_key(os.path.join(directory, base + ".key"))


def validity(cert):
    """(notBefore, notAfter) as naive UTC datetimes, whatever the cryptography version."""
    if hasattr(cert, "not_valid_after_utc"):
        return (cert.not_valid_before_utc.replace(tzinfo=None),
                cert.not_valid_after_utc.replace(tzinfo=None))
    return cert.not_valid_before, cert.not_valid_after


def fingerprint(cert):
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def public_key_fingerprint(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def check_key_type(public_key):
    """Birth and operational keys the lab accepts: EC P-256/P-384, RSA 2048/3072."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ("secp256r1", "secp384r1"):
            raise PkiError("unsupported EC curve %s (P-256 or P-384 expected)"
                           % public_key.curve.name)
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size not in (2048, 3072):
            raise PkiError("unsupported RSA key size %d (2048 or 3072 expected)"
                           % public_key.key_size)
    else:
        raise PkiError("unsupported key type %s" % type(public_key).__name__)


def signed_by(cert, issuer_cert):
    """True if cert names issuer_cert as issuer and its signature verifies with
    issuer_cert's key (cryptography 38 has no verify_directly_issued_by)."""
    if cert.issuer != issuer_cert.subject:
        return False
    key = issuer_cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       padding.PKCS1v15(), cert.signature_hash_algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _builder(subject, issuer_cert, public_key, not_before, not_after):
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
         .public_key(public_key)
         .serial_number(random_serial())
         .not_valid_before(not_before)
         .not_valid_after(not_after)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                        critical=False))
    if issuer_cert is not None:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
        b = b.add_extension(aki, critical=False)
    return b


def _key_usage(digital_signature=False, key_cert_sign=False):
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=key_cert_sign,
                         crl_sign=key_cert_sign, encipher_only=False,
                         decipher_only=False)


def make_root_ca(cn, years, lifetime=None):
    """A self-signed root; lifetime (a timedelta) overrides years."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    cert = (_builder(name(cn), None, key.public_key(), now - datetime.timedelta(days=1),
                     now + (lifetime or datetime.timedelta(days=365 * years)))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue_ca(issuer_cert, signing_key, subject, public_key, not_before, not_after):
    """A CA certificate for public_key under subject, named as issued by
    issuer_cert (None: self-issued) and signed by signing_key, which need not
    be issuer_cert's (forgeries for negative tests)."""
    return (_builder(subject, issuer_cert, public_key, not_before, not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(key_cert_sign=True), critical=True)
            .sign(signing_key, hashes.SHA256()))


def issue_end_entity(ca_cert, ca_key, subject, public_key, not_before, not_after,
                     eku, san=None):
    """Sign a non-CA certificate with a digitalSignature key usage and one EKU (or a list)."""
    b = (_builder(subject, ca_cert, public_key, not_before, not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(_key_usage(digital_signature=True), critical=True)
         .add_extension(x509.ExtendedKeyUsage(eku if isinstance(eku, list) else [eku]), critical=False))
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(ca_key, hashes.SHA256())


def make_server_cert(ca_cert, ca_key, cn, san):
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    cert = issue_end_entity(ca_cert, ca_key, name(cn), key.public_key(),
                            now - datetime.timedelta(days=1),
                            now + datetime.timedelta(days=825),
                            ExtendedKeyUsageOID.SERVER_AUTH, san)
    return cert, key


def cmd_init(args):
    d = args.dir
    os.makedirs(d, mode=0o700, exist_ok=True)
    if os.path.exists(os.path.join(d, "mfg-ca.pem")) and not args.force:
        raise PkiError("%s already holds a lab PKI; pass --force to replace it" % d)

    local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    mfg = make_root_ca("fleetid-lab Manufacturer Root CA", 25)
    lifetime = None
    if args.est_ca_lifetime is not None:
        lifetime = datetime.timedelta(seconds=args.est_ca_lifetime)
    est = make_root_ca("fleetid-lab EST CA", 10, lifetime)
    rogue = make_root_ca("fleetid-lab Rogue CA", 10)
    outputs = {
        "mfg-ca": mfg,
        "est-ca": est,
        "rogue-ca": rogue,
        "server": make_server_cert(est[0], est[1], "localhost", local),
        "server-otherhost": make_server_cert(est[0], est[1], "other.example",
                                             [x509.DNSName("other.example")]),
        "rogue-server": make_server_cert(rogue[0], rogue[1], "localhost", local),
    }
    for base, (cert, key) in outputs.items():
        save_key(os.path.join(d, base + ".key"), key)
        save_cert(os.path.join(d, base + ".pem"), cert)
    print("lab PKI created in %s" % d)


# Root CA key update (RFC 7030 4.1.3, RFC 4210 4.4), by output name.
NEW_ROOT_CN = "fleetid-lab EST CA G2"
ROLLOVER_FILES = ("est-ca-new", "est-ca-new-with-old", "est-ca-old-with-new", "server-new",
                  "est-ca-impostor", "est-ca-impostor-with-old")


def cmd_rollover(args):
    """A new EST root key next to the old one: NewWithNew (est-ca-new), the new
    key certified by the old root (est-ca-new-with-old) and the old key by the
    new root (est-ca-old-with-new), both valid until the old root expires; a
    TLS server certificate from the new root (server-new). Plus an impostor for
    negative tests: a self-signed root of the same name with another key
    (est-ca-impostor) and a NewWithOld look-alike for it that names the old
    root as issuer but is signed by the rogue CA (est-ca-impostor-with-old)."""
    d = args.dir
    if os.path.exists(os.path.join(d, "est-ca-new.pem")) and not args.force:
        raise PkiError("%s already holds a rolled-over EST CA; pass --force to replace it" % d)
    old = Ca(d, "est-ca")
    rogue = Ca(d, "rogue-ca")
    now = utcnow()
    not_before = now - datetime.timedelta(minutes=1)
    old_not_before, old_not_after = validity(old.cert)
    new_key = ec.generate_private_key(ec.SECP256R1())
    new = issue_ca(None, new_key, name(NEW_ROOT_CN), new_key.public_key(), not_before,
                   now + datetime.timedelta(days=args.days))
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = issue_ca(None, impostor_key, name(NEW_ROOT_CN), impostor_key.public_key(),
                        not_before, now + datetime.timedelta(days=args.days))
    local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    outputs = {
        "est-ca-new": (new, new_key),
        "est-ca-new-with-old": (issue_ca(old.cert, old.key, new.subject, new_key.public_key(),
                                         not_before, old_not_after), None),
        "est-ca-old-with-new": (issue_ca(new, new_key, old.cert.subject, old.cert.public_key(),
                                         old_not_before, old_not_after), None),
        "server-new": make_server_cert(new, new_key, "localhost", local),
        "est-ca-impostor": (impostor, impostor_key),
        "est-ca-impostor-with-old": (issue_ca(old.cert, rogue.key, impostor.subject,
                                              impostor_key.public_key(), not_before,
                                              old_not_after), None),
    }
    for base, (cert, key) in outputs.items():
        if key is not None:
            save_key(os.path.join(d, base + ".key"), key)
        save_cert(os.path.join(d, base + ".pem"), cert)
    print("%s: new EST root %s; old root valid until %sZ"
          % (d, fingerprint(new), old_not_after.isoformat()))


def sign_birth(directory, csr, days, ca_name, expired=False):
    """Sign a birth certificate (IDevID) for a verified CSR; returns the cert.
    expired: valid for a day that ended an hour ago."""
    if not csr.is_signature_valid:
        raise PkiError("CSR signature does not verify; refusing to sign")
    public_key = csr.public_key()
    check_key_type(public_key)
    ca = Ca(directory, BIRTH_CAS[ca_name])
    now = utcnow()
    not_after = NO_EXPIRY if days == 0 else now + datetime.timedelta(days=days)
    not_before = now - datetime.timedelta(seconds=60)
    if expired:
        not_after = now - datetime.timedelta(hours=1)
        not_before = not_after - datetime.timedelta(days=1)
    return issue_end_entity(ca.cert, ca.key, csr.subject, public_key,
                            not_before, not_after,
                            ExtendedKeyUsageOID.CLIENT_AUTH)


def cmd_sign_birth(args):
    cert = sign_birth(args.dir, load_csr(args.csr), args.days, args.ca, args.expired)
    save_cert(args.out, cert)
    print("%s %s" % (args.out, fingerprint(cert)))


def cmd_fingerprint(args):
    print(fingerprint(load_cert(args.cert)))


def cmd_software_client(args):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(name(args.name, args.name))
           .sign(key, hashes.SHA256()))
    cert = sign_birth(args.dir, csr, args.days, args.ca)
    save_key(os.path.join(args.dir, args.name + ".key"), key)
    save_cert(os.path.join(args.dir, args.name + ".pem"), cert)
    print("%s %s" % (os.path.join(args.dir, args.name + ".pem"), fingerprint(cert)))


def days_arg(text):
    v = int(text)
    if v < 0 or v > 36500:
        raise argparse.ArgumentTypeError("days must be 0 (no expiry) .. 36500")
    return v


def lifetime_arg(text):
    v = int(text)
    if v < 1 or v > 36500 * 86400:
        raise argparse.ArgumentTypeError("SECONDS must be 1 .. 36500 days")
    return v


def client_name_arg(text):
    if not text or len(text) > 64 or not all(c.isalnum() or c in "-_." for c in text) \
       or text.startswith("."):
        raise argparse.ArgumentTypeError("NAME must be 1-64 of [A-Za-z0-9._-]")
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description="fleetid lab PKI")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="create the lab CAs and server certificates in DIR")
    s.add_argument("dir")
    s.add_argument("--force", action="store_true", help="replace an existing lab PKI")
    s.add_argument("--est-ca-lifetime", type=lifetime_arg, metavar="SECONDS",
                   help="the EST CA root expires this long after now (default 10 years)")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("rollover", help="a new EST root key: NewWithNew, NewWithOld, OldWithNew, "
                                        "server-new, and an impostor for negative tests")
    s.add_argument("dir")
    s.add_argument("--force", action="store_true", help="replace an earlier rollover")
    s.add_argument("--days", type=days_arg, default=3650, help="the new root's validity in days")
    s.set_defaults(func=cmd_rollover)

    ca_help = "signing CA: mfg (manufacturer, default) or rogue (chains to nothing)"
    days_help = "validity in days; 0 = no expiry (99991231235959Z, IEEE 802.1AR)"
    s = sub.add_parser("sign-birth", help="sign a birth certificate (IDevID) for a CSR")
    s.add_argument("dir")
    s.add_argument("csr")
    s.add_argument("out")
    s.add_argument("--days", type=days_arg, default=3650, help=days_help)
    s.add_argument("--ca", choices=sorted(BIRTH_CAS), default="mfg", help=ca_help)
    s.add_argument("--expired", action="store_true",
                   help="already expired: valid for one day that ended an hour ago")
    s.set_defaults(func=cmd_sign_birth)

    s = sub.add_parser("fingerprint", help="print sha256:<hex> of a certificate's DER")
    s.add_argument("cert")
    s.set_defaults(func=cmd_fingerprint)

    s = sub.add_parser("software-client",
                       help="create DIR/NAME.key and a birth certificate DIR/NAME.pem")
    s.add_argument("dir")
    s.add_argument("name", type=client_name_arg)
    s.add_argument("--days", type=days_arg, default=3650, help=days_help)
    s.add_argument("--ca", choices=sorted(BIRTH_CAS), default="mfg", help=ca_help)
    s.set_defaults(func=cmd_software_client)

    args = p.parse_args(argv)
    try:
        args.func(args)
    except (PkiError, OSError, ValueError) as e:
        print("pki.py %s: %s" % (args.command, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
