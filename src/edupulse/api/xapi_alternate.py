"""The xAPI alternate request syntax (Communication 1.3): a form POST to /xapi/...?method=PUT stands for the
request it describes, for clients that can send only GET and POST and cannot set headers.

The form's fields Authorization, X-Experience-API-Version, Content-Type, Content-Length, If-Match and
If-None-Match become headers, `content` becomes the body, and every other field a query parameter; the request
then takes the resource's usual route. A pure ASGI wrapper: other requests pay one path check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from edupulse.ingest.xapi import XAPI_VERSION

HEADER_FIELDS = {name.lower(): name for name in ("Authorization", "X-Experience-API-Version", "Content-Type",
                                                 "Content-Length", "If-Match", "If-None-Match")}
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})
FORM = "application/x-www-form-urlencoded"


class AlternateSyntaxError(Exception):
    def __init__(self, message: str, location: str) -> None:
        super().__init__(message)
        self.message, self.location = message, location


def translate(query: str, headers: dict[str, str], form: bytes) -> tuple[str, str, list[tuple[bytes, bytes]], bytes]:
    """(method, query string, headers, body) of the request a form POST stands for."""
    params = parse_qsl(query, keep_blank_values=True)
    if [name for name, _ in params] != ["method"]:
        extra = next((name for name, _ in params if name != "method"), "method")
        raise AlternateSyntaxError(f"with ?method=, every other parameter goes in the form, not in the query string "
                                   f"(found {extra[:40]!r})", extra[:40])
    method = params[0][1].upper()
    if method not in METHODS:
        raise AlternateSyntaxError(f"method {params[0][1][:20]!r} is not one of {', '.join(sorted(METHODS))}",
                                   "method")
    if headers.get("content-type", "").split(";", 1)[0].strip().lower() != FORM:
        raise AlternateSyntaxError(f"a request with ?method= is a form post: send Content-Type: {FORM}",
                                   "Content-Type")
    try:
        fields = parse_qsl(form.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(form))
    except (UnicodeDecodeError, ValueError):
        raise AlternateSyntaxError("the form is not valid UTF-8 application/x-www-form-urlencoded", "body") from None
    new_headers = {k: v for k, v in headers.items() if k not in ("content-type", "content-length")}
    query_params: list[tuple[str, str]] = []
    body = b""
    for name, value in fields:
        if name.lower() in HEADER_FIELDS:
            new_headers[name.lower()] = value
        elif name == "content":
            body = value.encode("utf-8")
        else:
            query_params.append((name, value))
    if body and "content-type" not in new_headers:
        new_headers["content-type"] = "application/json"
    new_headers["content-length"] = str(len(body))
    encoded = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in new_headers.items()]
    return method, urlencode(query_params), encoded, body


class AlternateRequestSyntax:
    """Rewrites form POSTs with ?method= under /xapi/ into the requests they stand for."""

    def __init__(self, app: Any, max_body_bytes: int = 20 * 1024 * 1024) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/xapi/") or b"method=" not in scope.get(
                "query_string", b""):
            await self.app(scope, receive, send)
            return
        query = scope["query_string"].decode("latin-1")
        if not any(name == "method" for name, _ in parse_qsl(query, keep_blank_values=True)):
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] != "POST":
                raise AlternateSyntaxError("the alternate request syntax (?method=) is a POST", "method")
            form = await self._read(receive)
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            method, new_query, new_headers, body = translate(query, headers, form)
        except AlternateSyntaxError as exc:
            await _refuse(send, 413 if exc.location == "size" else 400, exc.message, exc.location)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        new_scope = {**scope, "method": method, "query_string": new_query.encode("latin-1"), "headers": new_headers}
        await self.app(new_scope, replay, send)

    async def _read(self, receive: Any) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise AlternateSyntaxError(f"the form is over the limit of {self.max_body_bytes} bytes", "size")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _refuse(send: Any, status: int, message: str, location: str) -> None:
    body = orjson.dumps({"error": message, "location": location})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-experience-api-version", XAPI_VERSION.encode())]})
    await send({"type": "http.response.body", "body": body})
