#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""verify_challenge.py: an independent verifier of a fleetid challenge
signature (SignChallenge, or a sensor's evidence signature), needing nothing
but the certificate chain and the formula of docs/dbus-api.md:

    digest = SHA-256("fleetid-challenge-v1" 0x00 purpose 0x00 nonce)

  verify_challenge.py --chain CHAIN.pem --ca CA.pem --nonce HEX --purpose P \
                      --alg ALG --sig SIG_FILE

CHAIN.pem holds the signer's certificate first, then intermediates; each must
be signed by the next and the last by a certificate of CA.pem (self-signed).
ALG is what SignChallenge returned: ecdsa-with-SHA256,
sha256WithRSAEncryption or rsassaPss (PSS: MGF1-SHA256, 32-byte salt).
Python stdlib and python3-cryptography only. Exit 0 if valid, 1 (with the
reason) if not."""
import argparse
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def load_pem_certs(path: str):
    """Every certificate of a PEM file (python3-cryptography 38 of Debian 12
    has no load_pem_x509_certificates)."""
    with open(path, "rb") as f:
        text = f.read()
    end = b"-----END CERTIFICATE-----"
    blocks = [b + end for b in text.split(end) if b"-----BEGIN CERTIFICATE-----" in b]
    if not blocks:
        raise ValueError(f"{path}: no certificate")
    return [x509.load_pem_x509_certificate(b[b.index(b"-----BEGIN"):]) for b in blocks]


def message(purpose: str, nonce: bytes) -> bytes:
    return b"fleetid-challenge-v1\x00" + purpose.encode("ascii") + b"\x00" + nonce


def check_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """cert's signature verifies with issuer's key (raises InvalidSignature)."""
    if cert.issuer != issuer.subject:
        raise InvalidSignature(f"{cert.subject.rfc4514_string()} is not issued by {issuer.subject.rfc4514_string()}")
    key = issuer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    else:
        raise InvalidSignature(f"unsupported issuer key {type(key).__name__}")


def verify(chain, cas, purpose: str, nonce: bytes, alg: str, sig: bytes) -> None:
    for cert, issuer in zip(chain, chain[1:]):
        check_signed_by(cert, issuer)
    last = chain[-1]
    for ca in cas:
        try:
            check_signed_by(last, ca)
            break
        except InvalidSignature:
            continue
    else:
        raise InvalidSignature("the chain does not lead to a CA of the CA file")

    key = chain[0].public_key()
    msg = message(purpose, nonce)
    if alg == "ecdsa-with-SHA256" and isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
    elif alg == "sha256WithRSAEncryption" and isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "rsassaPss" and isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    else:
        raise InvalidSignature(f"algorithm {alg} does not fit a {type(key).__name__}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chain", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--nonce", required=True, help="hex")
    p.add_argument("--purpose", required=True)
    p.add_argument("--alg", required=True)
    p.add_argument("--sig", required=True)
    a = p.parse_args()
    chain = load_pem_certs(a.chain)
    cas = load_pem_certs(a.ca)
    with open(a.sig, "rb") as f:
        sig = f.read()
    try:
        verify(chain, cas, a.purpose, bytes.fromhex(a.nonce), a.alg, sig)
    except InvalidSignature as e:
        print(f"verify_challenge.py: NOT valid: {e or 'bad signature'}", file=sys.stderr)
        return 1
    print("verify_challenge.py: valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
