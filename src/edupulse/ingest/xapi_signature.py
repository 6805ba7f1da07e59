"""Signed statements (Data 2.6): the JWS of a signature attachment checked the way the specification asks.

The LRS decodes the JWS (compact serialization, RS256/RS384/RS512), loads the statement it signed, checks that
it is the statement received (Data 2.3.1 statement comparison, without the signature attachment itself), and,
when the JWS header carries an X.509 certificate (x5c), verifies the signature with that certificate's key. As
the specification notes, this catches mistakes in signatures; it does not tell who signed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import jwt
import orjson
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from edupulse.ingest.xapi import SIGNATURE_USAGE, validate_statement
from edupulse.ingest.xapi_types import StatementError, parse_timestamp

ALGORITHMS = ("RS256", "RS384", "RS512")


def _without_signature(statement: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in statement.items() if k not in ("id", "authority", "stored", "timestamp", "version")}
    kept = [a for a in statement.get("attachments", ()) if a.get("usageType") != SIGNATURE_USAGE]
    if kept:
        out["attachments"] = kept
    else:
        out.pop("attachments", None)
    return out


def _certificate_key(header: dict[str, Any], where: str) -> RSAPublicKey | None:
    chain = header.get("x5c")
    if chain is None:
        return None
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
    except (TypeError, IndexError, KeyError, ValueError, binascii.Error):
        raise StatementError(where, "the JWS header's x5c is not a base64 DER X.509 certificate chain") from None
    key = certificate.public_key()
    if not isinstance(key, RSAPublicKey):
        raise StatementError(where, "the certificate in the JWS header's x5c does not hold an RSA key")
    return key


def verify_signature(statement: dict[str, Any], token: bytes, where: str) -> None:
    """Raise StatementError unless `token` is a well-formed JWS signature of `statement` (as received, after
    validation)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise StatementError(where, "the signature is not a JWS in compact serialization") from None
    if header.get("alg") not in ALGORITHMS:
        raise StatementError(where, f"the JWS algorithm {str(header.get('alg'))[:20]!r} is not one of "
                                    f"{', '.join(ALGORITHMS)}")
    key = _certificate_key(header, where)
    jws = jwt.PyJWS(algorithms=list(ALGORITHMS))
    try:
        if key is None:
            decoded = jws.decode_complete(token, options={"verify_signature": False})
        else:
            decoded = jws.decode_complete(token, key=key, algorithms=[header["alg"]])
    except jwt.PyJWTError as exc:
        raise StatementError(where, f"the JWS signature does not verify with the certificate in its header ({exc})") \
            from None
    try:
        signed = validate_statement(orjson.loads(decoded["payload"]), "signed statement")
    except orjson.JSONDecodeError:
        raise StatementError(where, "the JWS payload is not a JSON serialization of the statement") from None
    except StatementError as exc:
        raise StatementError(where, f"the JWS payload is not a valid statement ({exc})") from None
    _compare(signed, statement, where)


def _compare(signed: dict[str, Any], received: dict[str, Any], where: str) -> None:
    if "id" in signed and signed["id"] != received.get("id"):
        raise StatementError(where, "the signed statement has another id than the statement sent")
    if "timestamp" in signed and "timestamp" in received and (
            parse_timestamp(signed["timestamp"], "timestamp") != parse_timestamp(received["timestamp"], "timestamp")):
        raise StatementError(where, "the signed statement has another timestamp than the statement sent")
    if _without_signature(signed) != _without_signature(received):
        raise StatementError(where, "the signed statement (the JWS payload) differs from the statement sent")
