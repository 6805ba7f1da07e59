"""The xAPI 1.0.3 statements resource (/xapi/statements) and /xapi/about. See docs/xapi.md."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import platform
from edupulse.api.errors import refusals
from edupulse.api.xapi_common import (
    COLLECTION_TAG,
    REFUSALS,
    XapiError,
    XapiProblem,
    authorize,
    body_of,
    consistent_through,
    lrs,
    media_type,
    respond,
)
from edupulse.ingest.records import from_micros, to_micros
from edupulse.ingest.validate import PreparedBatch, record_text
from edupulse.ingest.xapi import (
    SUPPORTED_VERSIONS,
    StatementError,
    complete,
    parse_json,
    signature,
    validate_statement,
)
from edupulse.ingest.xapi_events import to_records
from edupulse.ingest.xapi_multipart import AttachmentPart, match_attachments, multipart_response, split_request
from edupulse.ingest.xapi_query import StatementQuery, accept_languages, as_canonical, as_ids, encode_more, parse_query
from edupulse.ingest.xapi_types import format_timestamp, uuid_text
from edupulse.meta.db import ProjectInfo, QuarantineEntry
from edupulse.meta.xapi import Attachment, NewStatement, StatementConflict, StatementStore
from edupulse.runtime import Platform

router = APIRouter(tags=[COLLECTION_TAG], responses=REFUSALS)
STATEMENTS = {"description": "A statement, or {statements, more}; with ?attachments=true as multipart/mixed",
              "content": {"application/json": {"schema": {"type": "object"}},
                          "multipart/mixed": {"schema": {"type": "string"}}}}
SOURCE = "xapi"


async def _read_statements(request: Request, plat: Platform, project: ProjectInfo
                           ) -> tuple[Any, dict[str, AttachmentPart], bool, int]:
    """The statements sent (parsed JSON), the attachment parts by SHA-2, whether it was multipart, and the size of
    the statements' JSON."""
    kind = media_type(request)
    if kind not in ("application/json", "multipart/mixed"):
        hint = " (a form post is the alternate request syntax: add ?method=...)" if kind.endswith("urlencoded") else ""
        raise XapiError(400, f"Content-Type {kind or 'missing'!r} is not accepted: send application/json, or "
                             f"multipart/mixed with attachment contents{hint}", "Content-Type")
    body = await body_of(request)
    parts: dict[str, AttachmentPart] = {}
    if kind == "multipart/mixed":
        try:
            body, parts = split_request(body, request.headers["content-type"])
        except StatementError as exc:
            raise XapiError.bad(exc) from None
    try:
        return parse_json(body), parts, kind == "multipart/mixed", len(body)
    except StatementError as exc:
        reason = f"{exc.location} {exc.reason}"
        await run_in_threadpool(plat.ingestor.quarantine_body, project, SOURCE, reason, body)
        raise XapiError(400, reason, "body") from None


def _quarantine(plat: Platform, project: ProjectInfo, items: list[tuple[str, str, Any]]) -> None:
    now = dt.datetime.now(dt.UTC)
    request_id = uuid.uuid4().hex
    plat.meta.add_quarantine(QuarantineEntry(project_id=project.id, received_at=now, source=SOURCE, location=where,
                                             reason=reason, record=record_text(raw), dedupe_key=f"{request_id}:{i}")
                             for i, (where, reason, raw) in enumerate(items))


def _validated(raw: list[Any], parts: dict[str, AttachmentPart], multipart: bool
               ) -> tuple[list[dict[str, Any]], list[tuple[str, str, Any]]]:
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
    if not errors:
        try:
            match_attachments(valid, parts, multipart)
        except StatementError as exc:
            errors.append((exc.location, exc.reason, raw if len(raw) > 1 else raw[0]))
    return valid, errors


def store_statements(plat: Platform, project: ProjectInfo, raw: list[Any], authority: dict[str, Any],
                     store: StatementStore | None = None, parts: dict[str, AttachmentPart] | None = None,
                     multipart: bool = False, body_bytes: int | None = None) -> tuple[list[str], PreparedBatch]:
    """Validate, store and map a request's statements, all or nothing (xAPI: a POST of a list is one unit).
    `body_bytes`, the size of the statements' JSON as sent, spares the events a size check each when it shows
    that none can reach the limit of a record."""
    store = store or StatementStore(plat.meta)
    valid, errors = _validated(raw, parts or {}, multipart)
    news: list[NewStatement] = []
    if not errors:
        now = dt.datetime.now(dt.UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # `stored` is given in milliseconds
        try:
            stored_at, stored_us = format_timestamp(now), to_micros(now)
            news = [NewStatement(complete(s, stored_at, authority), signature(s), stored_us, s.get("timestamp"))
                    for s in valid]
        except StatementError as exc:
            errors.append((exc.location, exc.reason, raw))
    if errors:
        _quarantine(plat, project, errors)
        where, reason, _ = errors[0]
        more = f" (and {len(errors) - 1} more problems; nothing was stored)" if len(errors) > 1 else ""
        raise XapiError(400, f"{where}: {reason}{more}", where)
    attachments = {k: Attachment(p.content_type, p.content) for k, p in (parts or {}).items()}
    try:
        stored = store.save(project.id, news, attachments)
    except StatementConflict as exc:
        _quarantine(plat, project, [("statement.id", str(exc), next(
            r for r, n in zip(raw, news, strict=True) if n.document["id"] == exc.statement_id))])
        raise XapiError(409, str(exc), "id") from None
    except StatementError as exc:
        _quarantine(plat, project, [(exc.location, exc.reason, raw)])
        raise XapiError.bad(exc) from None
    records = [record for statement in stored for record in to_records(statement)]
    # An event repeats at most three times a text of its statement (the object's id as activity, lesson or course),
    # and a statement stored before with the same id differs from the one sent only by what the LRS sets.
    bound = None if body_bytes is None else 3 * (body_bytes + 4096) + 4096
    prepared = plat.ingestor.prepare(project, records, source=SOURCE, body_bytes=bound)
    plat.ingestor.quarantine(project, prepared, SOURCE)
    return [s["id"] for s in stored], prepared


async def _commit(plat: Platform, project: ProjectInfo, prepared: PreparedBatch) -> None:
    future = plat.ingestor.commit(project, prepared, SOURCE)
    if future is not None:
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            raise XapiError(503, f"could not store the events of the statements durably ({exc}); retry") from None


def _authority(request: Request, project: ProjectInfo) -> dict[str, Any]:
    return {"objectType": "Agent", "name": project.name,
            "account": {"homePage": str(request.base_url).rstrip("/"), "name": f"project:{project.id}"}}


async def _store(request: Request, project: ProjectInfo, raw: list[Any], parts: dict[str, AttachmentPart],
                 multipart: bool, body_bytes: int) -> list[str]:
    plat = platform(request)
    ids, prepared = await run_in_threadpool(store_statements, plat, project, raw, _authority(request, project),
                                            lrs(request).statements, parts, multipart, body_bytes)
    await _commit(plat, project, prepared)
    return ids


@router.post("/xapi/statements", summary="xAPI: store one statement or a list (all or nothing); returns the ids",
             responses={200: {"model": list[str], "description": "The ids of the statements, in order"},
                        **refusals(409, model=XapiProblem, s409="A statement of this id exists with other content")})
async def post_statements(request: Request) -> Response:
    try:
        project = authorize(request, read=False)
        if request.query_params:
            name = next(iter(request.query_params))
            raise XapiError(400, f"POST takes no parameter {name[:40]!r}; to give a statement id, use PUT with "
                                 "statementId (GET parameters go in a form post with ?method=GET)", name[:40])
        plat = platform(request)
        data, parts, multipart, size = await _read_statements(request, plat, project)
        raw = data if isinstance(data, list) else [data]
        if not raw:
            raise XapiError(400, "the list of statements is empty", "body")
        most = plat.settings.ingest.max_batch_records
        if len(raw) > most:
            raise XapiError(413, f"the request has {len(raw)} statements; at most {most} per request", "body")
        return respond(orjson.dumps(await _store(request, project, raw, parts, multipart, size)))
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
            raise XapiError(400, f"PUT takes only the parameter statementId, not {name[:40]!r}", name[:40])
        if "statementId" not in params:
            raise XapiError(400, "PUT needs the parameter statementId (or POST the statement instead)", "statementId")
        try:
            statement_id = uuid_text(params["statementId"], "statementId")
        except StatementError as exc:
            raise XapiError.bad(exc) from None
        data, parts, multipart, size = await _read_statements(request, platform(request), project)
        if not isinstance(data, dict):
            raise XapiError(400, "PUT takes one statement object", "body")
        if str(data.get("id", statement_id)).lower() != statement_id:
            raise XapiError(400, f"the statement's id {str(data['id'])[:40]!r} differs from statementId "
                                 f"{statement_id!r}", "id")
        await _store(request, project, [{**data, "id": statement_id}], parts, multipart, size + 64)
        return respond(None, 204)
    except XapiError as exc:
        return exc.response()


def _shape(request: Request, project: ProjectInfo, documents: list[str], query: StatementQuery) -> list[bytes]:
    if query.format == "exact":
        return [d.encode() for d in documents]
    parsed = [orjson.loads(d) for d in documents]
    if query.format == "ids":
        return [orjson.dumps(as_ids(p)) for p in parsed]
    languages = accept_languages(request.headers.get("accept-language", ""))
    canonical = lrs(request).activities.get_many(project.id, _activity_ids(parsed))
    return [orjson.dumps(as_canonical(p, languages, canonical)) for p in parsed]


def _activity_ids(statements: list[dict[str, Any]]) -> set[str]:
    """Ids of the Activities whose canonical definitions format=canonical shows."""
    found: set[str] = set()

    def visit(statement: dict[str, Any]) -> None:
        obj = statement.get("object", {})
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            found.add(obj["id"])
        elif kind == "SubStatement":
            visit(obj)
        for items in statement.get("context", {}).get("contextActivities", {}).values():
            found.update(a["id"] for a in items)

    for statement in statements:
        visit(statement)
    return found


def _payload(request: Request, project: ProjectInfo, content: bytes, documents: list[str], attachments: bool,
             headers: dict[str, str]) -> Response:
    if not attachments:
        return respond(content, headers=headers)
    digests = [a["sha2"] for d in documents for a in orjson.loads(d).get("attachments", ())]
    stored = lrs(request).statements.attachments(project.id, digests)
    body, kind = multipart_response(content, stored)
    return respond(body, media_type=kind, headers=headers)


def _get(request: Request, project: ProjectInfo, query: StatementQuery, headers: dict[str, str]) -> Response:
    """The answer of a GET, worked out in one worker thread: the store's reads, the shaping and any attachments
    (one hand-over to the thread pool and back instead of two or three, and no read on the event loop)."""
    store = lrs(request).statements
    if query.statement_id is not None:
        found = store.get(project.id, query.statement_id, query.voided)
        if found is None:
            kind = "voided statement" if query.voided else "statement (or it was voided)"
            raise XapiError(404, f"no {kind} with id {query.statement_id}", "statementId")
        headers["Last-Modified"] = email.utils.format_datetime(from_micros(found[1]), usegmt=True)
        shaped = _shape(request, project, [found[0]], query)
        return _payload(request, project, shaped[0], [found[0]], query.attachments, headers)
    assert query.filter is not None
    rows = store.query(project.id, query.filter, query.after, query.limit + 1)
    more = encode_more(query, rows[query.limit - 1][0]) if len(rows) > query.limit else ""
    documents = [doc for _, doc in rows[: query.limit]]
    shaped = _shape(request, project, documents, query)
    content = b'{"statements":[' + b",".join(shaped) + b'],"more":' + orjson.dumps(more) + b"}"
    return _payload(request, project, content, documents, query.attachments, headers)


@router.get("/xapi/statements",
            summary="xAPI: one statement by statementId / voidedStatementId, or statements by filters",
            responses={200: STATEMENTS, **refusals(404, model=XapiProblem, s404="No such statement")})
async def get_statements(request: Request) -> Response:
    headers = consistent_through()  # on every answer, errors too (Communication 2.1.3.s2.b5)
    try:
        project = authorize(request, read=True)
        try:
            query = parse_query(request.query_params)
        except StatementError as exc:
            raise XapiError.bad(exc) from None
        return await run_in_threadpool(_get, request, project, query, headers)
    except XapiError as exc:
        return exc.response(headers)


# HEAD is its own operation (one route of two methods would give both one operation id)
router.add_api_route("/xapi/statements", get_statements, methods=["HEAD"], summary="xAPI: the headers of the GET",
                     responses={200: {"description": "The headers of the GET"},
                                **refusals(404, model=XapiProblem, s404="No such statement")})


@router.get("/xapi/about", summary="xAPI: the versions this server speaks", responses={
    200: {"description": "The versions (and no extensions)", "content": {"application/json": {}}}})
def about() -> Response:
    return respond(orjson.dumps({"version": list(SUPPORTED_VERSIONS), "extensions": {}}))


router.add_api_route("/xapi/about", about, methods=["HEAD"], summary="xAPI: the headers of the GET of about",
                     responses={200: {"description": "The headers of the GET"}})
