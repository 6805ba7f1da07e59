"""Signed statements for the tests (Data 2.6): a JWS in compact serialization of a statement, made with PyJWT and
a throwaway RSA key whose self-signed certificate travels in the JWS header (x5c)."""

from __future__ import annotations

import base64
import datetime as dt
import functools
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@functools.cache
def _key_and_certificate() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EduPulse test signer")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return key, base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def sign(statement: dict[str, Any], algorithm: str = "RS256") -> bytes:
    """The JWS of `statement` (as it is before the signature attachment is added)."""
    payload = jwt.api_jws.json.dumps(statement).encode()
    if algorithm.startswith("HS"):
        return jwt.PyJWS().encode(payload, "a shared secret long enough for HMAC", algorithm=algorithm).encode()
    key, certificate = _key_and_certificate()
    return jwt.PyJWS().encode(payload, key, algorithm=algorithm, headers={"x5c": [certificate]}).encode()
