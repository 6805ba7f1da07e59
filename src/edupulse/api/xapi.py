"""The xAPI 1.0.3 statements resource (/xapi/statements) and /xapi/about. See docs/xapi.md."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import email.utils
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from edupulse.api.auth import platform
from edupulse.api.errors import refusals
from edupulse.api.ingest import read_body
from edupulse.ingest.records import from_micros, to_micros
from edupulse.ingest.validate import BodyError, PreparedBatch, record_text
from edupulse.ingest.xapi import (
    SUPPORTED_VERSIONS,
    XAPI_VERSION,
    StatementError,
    complete,
    format_timestamp,
    signature,
    validate_statement,
)
from edupulse.ingest.xapi_events import to_records
from edupulse.ingest.xapi_query import (
    StatementQuery,
    accept_languages,
    as_canonical,
    as_ids,
    encode_more,
    parse_query,
)
from edupulse.meta.db import ProjectInfo, QuarantineEntry
from edupulse.meta.xapi import NewStatement, StatementConflict, StatementStore
from edupulse.runtime import Platform


class XapiProblem(BaseModel):
    """Why the request was refused, and where (a parameter, header or part of a statement)."""

    error: str
    location: str | None = None


router = APIRouter(tags=["collection: xAPI"], responses=refusals(
    400, 401, 403, 413, 415, 503, model=XapiProblem, s403="The Basic password is not the project's secret API key"))
STATEMENTS = {"description": "A statement, or {statements, more}; with ?attachments=true as multipart/mixed",
              "content": {"application/json": {"schema": {"type": "object"}},
                          "multipart/mixed": {"schema": {"type": "string"}}}}
SOURCE = "xapi"
VERSION_HEADER = "X-Experience-API-Version"


class XapiError(Exception):
    """An error answered in the resource's style: status, message and where."""

    def __init__(self, status: int, message: str, location: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.location, self.headers = status, message, location, headers or {}

    def response(self) -> Response:
        body: dict[str, Any] = {"error": self.message}
        if self.location:
            body["location"] = self.location
        return respond(orjson.dumps(body), self.status, headers=self.headers)


def respond(content: bytes | None, status: int = 200, media_type: str = "application/json",
            headers: dict[str, str] | None = None) -> Response:
    return Response(content, status_code=status, media_type=media_type if content is not None else None,
                    headers={VERSION_HEADER: XAPI_VERSION, **(headers or {})})


def _basic(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Basic realm="xAPI"'}
    if scheme.lower() != "basic":
        raise XapiError(401, "send HTTP Basic authentication: the project's write key as user name (and its secret "
                             "API key as password to read statements)", headers=challenge)
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise XapiError(401, "the Basic credentials are not valid base64 of user:password", headers=challenge) from None
    return user, password


def authorize(request: Request, read: bool) -> ProjectInfo:
    """The project of the credentials: the write key as user; its secret API key as password is needed to read
    and, when given on a write, must match. Then the version header is checked."""
    plat = platform(request)
    user, password = _basic(request)
    project = plat.catalog.by_write_key(user)
    if project is None:
        raise XapiError(401, "unknown write key in the Basic user name: check the key shown by "
                             "'edupulse project create'", headers={"WWW-Authenticate": 'Basic realm="xAPI"'})
    if password or read:
        cache: dict[str, ProjectInfo] = request.app.state.api_key_cache
        keyed = cache.get(password) or (plat.meta.project_by_api_key(password) if password else None)
        if keyed is None or keyed.id != project.id:
            what = "reading statements needs" if read and not password else "the password must be"
            raise XapiError(401 if not password else 403, f"{what} the project's secret API key as the Basic password",
                            headers={"WWW-Authenticate": 'Basic realm="xAPI"'})
        cache[password] = keyed
    version = request.headers.get(VERSION_HEADER)
    if version is None:
        raise XapiError(400, f"the {VERSION_HEADER} header is required; send {XAPI_VERSION}", VERSION_HEADER)
    if version.strip() not in SUPPORTED_VERSIONS:
        raise XapiError(400, f"{VERSION_HEADER} {version[:20]!r} is not supported; use one of "
                             f"{', '.join(SUPPORTED_VERSIONS)}", VERSION_HEADER)
    return project


def _authority(request: Request, project: ProjectInfo) -> dict[str, Any]:
    return {"objectType": "Agent", "name": project.name,
            "account": {"homePage": str(request.base_url).rstrip("/"), "name": f"project:{project.id}"}}


async def _read_json(request: Request, plat: Platform, project: ProjectInfo) -> Any:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type == "multipart/mixed":
        raise XapiError(400, "statements with attachment content (multipart/mixed) are not accepted; send "
                             "application/json and give each attachment a fileUrl", "Content-Type")
    try:
        body = await read_body(request, plat.settings.ingest.max_body_bytes)
        return orjson.loads(body)
    except BodyError as exc:
        raise XapiError(exc.status, exc.message, "body") from None
    except orjson.JSONDecodeError as exc:
        reason = f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        await run_in_threadpool(plat.ingestor.quarantine_body, project, SOURCE, reason, body)
        raise XapiError(400, reason, "body") from None


def _quarantine(plat: Platform, project: ProjectInfo, items: list[tuple[str, str, Any]]) -> None:
    now = dt.datetime.now(dt.UTC)
    request_id = uuid.uuid4().hex
    plat.meta.add_quarantine(QuarantineEntry(project_id=project.id, received_at=now, source=SOURCE, location=where,
                                             reason=reason, record=record_text(raw), dedupe_key=f"{request_id}:{i}")
                             for i, (where, reason, raw) in enumerate(items))


def store_statements(plat: Platform, project: ProjectInfo, raw: list[Any], authority: dict[str, Any]
                     ) -> tuple[list[str], PreparedBatch]:
    """Validate, store and map a request's statements, all or nothing (xAPI: a POST of a list is one unit)."""
    errors: list[tuple[str, str, Any]] = []
    valid = []
    for index, item in enumerate(raw):
        try:
            valid.append(validate_statement(item, f"statement[{index}]" if len(raw) > 1 else "statement"))
        except StatementError as exc:
            errors.append((exc.location, exc.reason, item))
    seen: dict[str, int] = {}
    for index, statement in enumerate(valid if not errors else []):
        if statement.get("id") in seen:
            first = seen[statement["id"]]
            errors.append((f"statement[{index}].id", f"repeats the id of statement[{first}]", raw[index]))
        elif statement.get("id"):
            seen[statement["id"]] = index
    if errors:
        _quarantine(plat, project, errors)
        where, reason, _ = errors[0]
        more = f" (and {len(errors) - 1} more problems; nothing was stored)" if len(errors) > 1 else ""
        raise XapiError(400, f"{where}: {reason}{more}", where)
    now = dt.datetime.now(dt.UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # `stored` is given in milliseconds
    news = [NewStatement(complete(s, now, authority), signature(s), to_micros(now), s.get("timestamp")) for s in valid]
    statements = StatementStore(plat.meta)
    try:
        stored = statements.save(project.id, news)
    except StatementConflict as exc:
        _quarantine(plat, project, [("statement.id", str(exc), next(
            r for r, n in zip(raw, news, strict=True) if n.document["id"] == exc.statement_id))])
        raise XapiError(409, str(exc), "id") from None
    except StatementError as exc:
        _quarantine(plat, project, [(exc.location, exc.reason, raw)])
        raise XapiError(400, f"{exc.location}: {exc.reason}", exc.location) from None
    records = [record for statement in stored for record in to_records(statement)]
    prepared = plat.ingestor.prepare(project, records, source=SOURCE)
    plat.ingestor.quarantine(project, prepared, SOURCE)
    return [s["id"] for s in stored], prepared


async def _commit(plat: Platform, project: ProjectInfo, prepared: PreparedBatch) -> None:
    future = plat.ingestor.commit(project, prepared, SOURCE)
    if future is not None:
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            raise XapiError(503, f"could not store the events of the statements durably ({exc}); retry") from None


@router.post("/xapi/statements", summary="xAPI: store one statement or a list (all or nothing); returns the ids",
             responses={200: {"model": list[str], "description": "The ids of the statements, in order"},
                        **refusals(409, model=XapiProblem, s409="A statement of this id exists with other content")})
async def post_statements(request: Request) -> Response:
    try:
        project = authorize(request, read=False)
        if request.query_params:
            name = next(iter(request.query_params))
            raise XapiError(400, f"POST takes no parameter {name!r}; to give a statement id, use PUT with "
                                 "statementId", name)
        plat = platform(request)
        data = await _read_json(request, plat, project)
        raw = data if isinstance(data, list) else [data]
        if not raw:
            raise XapiError(400, "the list of statements is empty", "body")
        most = plat.settings.ingest.max_batch_records
        if len(raw) > most:
            raise XapiError(413, f"the request has {len(raw)} statements; at most {most} per request", "body")
        ids, prepared = await run_in_threadpool(store_statements, plat, project, raw, _authority(request, project))
        await _commit(plat, project, prepared)
        return respond(orjson.dumps(ids))
    except XapiError as exc:
        return exc.response()


@router.put("/xapi/statements", summary="xAPI: store one statement under the id given as statementId",
            status_code=204, responses={204: {"description": "Stored (or stored before with the same content)"},
                                        **refusals(409, model=XapiProblem,
                                                   s409="A statement of this id exists with other content")})
async def put_statement(request: Request) -> Response:
    try:
        project = authorize(request, read=False)
        params = dict(request.query_params)
        if set(params) - {"statementId"}:
            name = sorted(set(params) - {"statementId"})[0]
            raise XapiError(400, f"PUT takes only the parameter statementId, not {name!r}", name)
        if "statementId" not in params:
            raise XapiError(400, "PUT needs the parameter statementId (or POST the statement instead)", "statementId")
        plat = platform(request)
        data = await _read_json(request, plat, project)
        if not isinstance(data, dict):
            raise XapiError(400, "PUT takes one statement object", "body")
        statement_id = params["statementId"].lower()
        if str(data.get("id", statement_id)).lower() != statement_id:
            raise XapiError(400, f"the statement's id {data['id']!r} differs from statementId {statement_id!r}", "id")
        raw = [{**data, "id": params["statementId"]}]
        _, prepared = await run_in_threadpool(store_statements, plat, project, raw, _authority(request, project))
        await _commit(plat, project, prepared)
        return respond(None, 204)
    except XapiError as exc:
        return exc.response()


def _shape(documents: list[str], query: StatementQuery, languages: list[str]) -> list[bytes]:
    if query.format == "exact":
        return [d.encode() for d in documents]
    parsed = [orjson.loads(d) for d in documents]
    shaped = [as_ids(p) for p in parsed] if query.format == "ids" else [as_canonical(p, languages) for p in parsed]
    return [orjson.dumps(s) for s in shaped]


def _payload(content: bytes, attachments: bool, headers: dict[str, str]) -> Response:
    if not attachments:
        return respond(content, headers=headers)
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode() + content
            + f"\r\n--{boundary}--\r\n".encode())
    return respond(body, media_type=f"multipart/mixed; boundary={boundary}", headers=headers)


@router.get("/xapi/statements",
            summary="xAPI: one statement by statementId / voidedStatementId, or statements by filters",
            responses={200: STATEMENTS, **refusals(404, model=XapiProblem, s404="No such statement")})
async def get_statements(request: Request) -> Response:
    try:
        project = authorize(request, read=True)
        try:
            query = parse_query(request.query_params)
        except StatementError as exc:
            raise XapiError(400, f"{exc.location}: {exc.reason}", exc.location) from None
        store = StatementStore(platform(request).meta)
        languages = accept_languages(request.headers.get("accept-language", ""))
        now = format_timestamp(dt.datetime.now(dt.UTC))
        headers = {"X-Experience-API-Consistent-Through": now}
        if query.statement_id is not None:
            found = await run_in_threadpool(store.get, project.id, query.statement_id, query.voided)
            if found is None:
                kind = "voided statement" if query.voided else "statement (or it was voided)"
                raise XapiError(404, f"no {kind} with id {query.statement_id}", "statementId")
            headers["Last-Modified"] = email.utils.format_datetime(from_micros(found[1]), usegmt=True)
            return _payload(_shape([found[0]], query, languages)[0], query.attachments, headers)
        assert query.filter is not None
        rows = await run_in_threadpool(store.query, project.id, query.filter, query.after, query.limit + 1)
        more = encode_more(query, rows[query.limit - 1][0]) if len(rows) > query.limit else ""
        documents = _shape([doc for _, doc in rows[: query.limit]], query, languages)
        content = b'{"statements":[' + b",".join(documents) + b'],"more":' + orjson.dumps(more) + b"}"
        return _payload(content, query.attachments, headers)
    except XapiError as exc:
        return exc.response()


# HEAD is its own operation (one route of two methods would give both one operation id)
router.add_api_route("/xapi/statements", get_statements, methods=["HEAD"], summary="xAPI: the headers of the GET",
                     responses={200: {"description": "The headers of the GET"},
                                **refusals(404, model=XapiProblem, s404="No such statement")})


@router.get("/xapi/about", summary="xAPI: the versions this server speaks")
def about() -> Response:
    return respond(orjson.dumps({"version": list(SUPPORTED_VERSIONS), "extensions": {}}))
