"""Sensors Analytics compatible collection: GET and POST /sa and /sa.gif (docs/collection.md)."""

from __future__ import annotations

import base64
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from edupulse.api import compat
from edupulse.api.auth import platform
from edupulse.api.errors import refusals
from edupulse.api.ingest import read_body
from edupulse.ingest import sensors
from edupulse.ingest.validate import BodyError


class SensorsError(BaseModel):
    """The error body: the HTTP status as `code` and the reason."""

    code: int
    error: str


class SensorsResult(compat.CompatResult):
    code: Literal[0]


router = APIRouter(tags=["collection: Sensors Analytics"], responses={
    200: {"model": SensorsResult, "description": "Stored: per-record errors list the refused records"},
    **refusals(*compat.COMPAT_STATUSES, 403, model=SensorsError, s403="?project= names another project than the "
               "token's")})
# The 1x1 transparent GIF the web SDK's image requests expect.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def failure(status: int, message: str) -> Response:
    return Response(orjson.dumps({"code": status, "error": message}), status_code=status,
                    media_type="application/json")


async def _fields(request: Request, limit: int) -> tuple[dict[str, str], bytes]:
    """Query parameters and urlencoded form fields together (form fields win), and the raw body."""
    fields = dict(request.query_params)
    body = b""
    if request.method == "POST":
        body = await read_body(request, limit)
        if body:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BodyError(400, f"form body is not UTF-8: invalid byte at offset {exc.start}") from None
            fields.update(parse_qsl(text, keep_blank_values=True, max_num_fields=1000))
    return fields, body


async def collect(request: Request) -> Response:
    """Take one Sensors request: authenticate, decode, translate, store, answer."""
    limits = platform(request).settings.ingest
    try:
        fields, body = await _fields(request, limits.max_body_bytes)
    except BodyError as exc:
        return failure(exc.status, exc.message)
    token = fields.get("token") or None
    project = compat.project_by_write_key(request, token)
    if token is not None and project is None:
        return failure(401, "unknown token: give the project's write key as ?token=<write key> in the server URL")
    try:
        name, records, size = sensors.parse_form(fields, limits.max_body_bytes, limits.max_batch_records)
    except BodyError as exc:
        if project is not None and exc.status == 400:
            await compat.quarantine_body(request, project, sensors.SOURCE, exc.message, body or
                                         str(request.url.query).encode())
        return failure(exc.status, exc.message)
    if project is None:  # no ?token=: the SDKs' per-record token ($token) may carry the key
        token = next((r["token"] for r in records if isinstance(r, dict) and isinstance(r.get("token"), str)), None)
        project = compat.project_by_write_key(request, token)
        if project is None:
            return failure(401, "send the project's write key as ?token=<write key> in the server URL "
                                "(e.g. /sa?project=NAME&token=wk_...)")
    names = sensors.project_names(project.name)
    wanted = fields.get("project")
    if wanted and wanted not in names:
        return failure(403, f"project {wanted!r} is not the project of this token ({project.name!r}); "
                            f"use ?project={sensors.project_slug(project.name)} or leave project out")
    translation = sensors.translate_all(records, names, token)
    try:
        outcome = await compat.store(request, project, translation, sensors.SOURCE, name, size)
    except BodyError as exc:
        return failure(exc.status, exc.message)
    if request.url.path.endswith(".gif") and request.method == "GET":
        return Response(PIXEL, media_type="image/gif")
    result: dict[str, Any] = {"code": 0, "accepted": outcome.accepted, "rejected": outcome.rejected}
    if outcome.errors:
        result["errors"] = outcome.errors
    return Response(orjson.dumps(result), media_type="application/json")


for _path in ("/sa", "/sa.gif"):
    for _method in ("GET", "POST"):  # a route per method: each operation gets its own id
        router.add_api_route(_path, collect, methods=[_method], include_in_schema=_path == "/sa",
                             summary="Sensors Analytics SDK records (data / data_list, gzip=1; ?project=&token=)")
