"""Statements with attachment contents: multipart/mixed requests and responses (Communication 1.5.2).

A request's first part holds the statements (application/json); every other part is the raw content of an
attachment, with `X-Experience-API-Hash` (its SHA-2) and `Content-Transfer-Encoding: binary`. A part is matched
to the statements' attachments only by its hash, and the hash is checked against the content. Parsing uses
python-multipart's streaming parser, which keeps binary content byte for byte.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from edupulse.ingest.xapi import SIGNATURE_USAGE
from edupulse.ingest.xapi_signature import verify_signature
from edupulse.ingest.xapi_types import StatementError

HASHES = {56: hashlib.sha224, 64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512}
OCTET_STREAM = "application/octet-stream"


@dataclass
class Part:
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    content: bytearray = field(default_factory=bytearray)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True)
class AttachmentPart:
    content_type: str
    content: bytes


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart/mixed Content-Type (400 without one)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise StatementError("Content-Type", "multipart/mixed needs a boundary parameter, such as "
                                             "multipart/mixed; boundary=abc123")
    return boundary


def parse_parts(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart body, each with its headers and content."""
    parts: list[Part] = []
    name = bytearray()
    value = bytearray()

    def header_end() -> None:
        parts[-1].headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        name.clear()
        value.clear()

    callbacks: Any = {
        "on_part_begin": lambda: parts.append(Part()),
        "on_header_field": lambda data, start, end: name.extend(data[start:end]),
        "on_header_value": lambda data, start, end: value.extend(data[start:end]),
        "on_header_end": header_end,
        "on_part_data": lambda data, start, end: parts[-1].content.extend(data[start:end]),
    }
    parser = MultipartParser(boundary_of(content_type), callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise StatementError("body", f"is not a valid multipart/mixed body: {exc}") from None
    if not parts:
        raise StatementError("body", "the multipart/mixed body has no parts; the first part holds the statements")
    return parts


def split_request(body: bytes, content_type: str) -> tuple[bytes, dict[str, AttachmentPart]]:
    """The statements part (JSON text) and the attachment parts by SHA-2 of a multipart/mixed request."""
    parts = parse_parts(body, content_type)
    first = parts[0]
    if first.content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise StatementError("body.part[0]", "the first part holds the statements and needs Content-Type: "
                                             "application/json")
    attachments: dict[str, AttachmentPart] = {}
    for i, part in enumerate(parts[1:], start=1):
        where = f"body.part[{i}]"
        digest = part.headers.get("x-experience-api-hash", "").lower()
        if not digest:
            raise StatementError(where, "an attachment part needs the header X-Experience-API-Hash with the SHA-2 of "
                                        "its content (the attachment's sha2)")
        if part.headers.get("content-transfer-encoding", "").lower() != "binary":
            raise StatementError(where, "an attachment part needs the header Content-Transfer-Encoding: binary")
        algorithm = HASHES.get(len(digest))
        if algorithm is None or algorithm(part.content).hexdigest() != digest:
            raise StatementError(where, f"X-Experience-API-Hash {digest[:16]}... is not the SHA-2 of the part's "
                                        "content")
        attachments[digest] = AttachmentPart(part.content_type or OCTET_STREAM, bytes(part.content))
    return bytes(first.content), attachments


def _declared(statements: Iterable[dict[str, Any]]) -> Iterable[tuple[int, int, dict[str, Any]]]:
    for s_index, statement in enumerate(statements):
        for a_index, attachment in enumerate(statement.get("attachments", ())):
            yield s_index, a_index, attachment


def match_attachments(statements: list[dict[str, Any]], parts: Mapping[str, AttachmentPart],
                      multipart: bool) -> None:
    """Every attachment without a fileUrl has its part, every part belongs to an attachment, and signatures are
    verified (Data 2.6). Raises StatementError naming the statement and attachment."""
    used: set[str] = set()
    prefix = "statement" if len(statements) == 1 else "statement[{}]"
    for s_index, a_index, attachment in _declared(statements):
        where = f"{prefix.format(s_index)}.attachments[{a_index}]"
        digest = attachment["sha2"].lower()
        part = parts.get(digest)
        if attachment["usageType"] == SIGNATURE_USAGE:
            if attachment["contentType"].split(";", 1)[0].strip().lower() != OCTET_STREAM:
                raise StatementError(f"{where}.contentType", f"a signature's contentType is {OCTET_STREAM}")
            if part is None:
                raise StatementError(where, "a signature (usageType .../attachments/signature) must be sent as a part "
                                            "of a multipart/mixed request, with its JWS as the content")
            verify_signature(statements[s_index], part.content, where)
        if part is not None:
            used.add(digest)
        elif "fileUrl" not in attachment:
            how = "add a part with X-Experience-API-Hash" if multipart else "send it as multipart/mixed"
            raise StatementError(where, f"has no fileUrl and its content (sha2 {digest[:16]}...) was not sent: {how}, "
                                        "or give a fileUrl")
    extra = sorted(set(parts) - used)
    if extra:
        raise StatementError("body", f"the part with X-Experience-API-Hash {extra[0][:16]}... belongs to no attachment "
                                     "of the statements")


def multipart_response(statements_json: bytes, attachments: Mapping[str, Any]) -> tuple[bytes, str]:
    """A multipart/mixed answer: the statements, then each attachment's content (Communication 2.1.3)."""
    boundary = uuid.uuid4().hex
    out = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), statements_json]
    for digest, attachment in attachments.items():
        out.append(f"\r\n--{boundary}\r\nContent-Type: {attachment.content_type}\r\nContent-Transfer-Encoding: "
                   f"binary\r\nX-Experience-API-Hash: {digest}\r\n\r\n".encode())
        out.append(attachment.content)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/mixed; boundary={boundary}"
