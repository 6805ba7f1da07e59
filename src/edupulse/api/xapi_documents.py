"""The xAPI document resources and the Agents and Activities resources (Communication 2.2-2.7):

- /xapi/activities/state: State documents of an Activity, an Agent and (optionally) a registration;
- /xapi/activities/profile: Activity Profile documents; /xapi/agents/profile: Agent Profile documents;
- /xapi/agents: the Person an Agent is known as; /xapi/activities: an Activity with its canonical definition.

Every GET has HEAD; documents carry ETag and Last-Modified and take If-Match / If-None-Match. All of them need
the write key and the secret API key (documents hold learners' data and can be changed). See docs/xapi.md.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.errors import refusals
from edupulse.api.xapi_common import (
    COLLECTION_TAG,
    REFUSALS,
    XapiError,
    XapiProblem,
    agent_param,
    authorize,
    body_of,
    check_params,
    lrs,
    required,
    respond,
)
from edupulse.ingest.records import from_micros, to_micros
from edupulse.ingest.xapi_types import StatementError, iri, parse_timestamp, uuid_text
from edupulse.meta.db import ProjectInfo
from edupulse.meta.xapi_documents import (
    ACTIVITY_PROFILE,
    AGENT_PROFILE,
    STATE,
    DocumentError,
    DocumentScope,
    DocumentStore,
    Preconditions,
)

router = APIRouter(tags=[COLLECTION_TAG], responses=REFUSALS)
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class Resource:
    """A document resource: its name in messages, the parameter naming its documents, and its scope parameters."""

    kind: str
    title: str
    id_param: str
    scope_params: tuple[str, ...]

    def params(self, method: str) -> frozenset[str]:
        names = {*self.scope_params, self.id_param}
        if self.kind == STATE:
            names.add("registration")
        if method in ("GET", "HEAD"):
            names.add("since")  # checked with an id too, where it has no effect (Communication 2.3)
        return frozenset(names)


RESOURCES = {
    STATE: Resource(STATE, "State resource", "stateId", ("activityId", "agent")),
    ACTIVITY_PROFILE: Resource(ACTIVITY_PROFILE, "Activity Profile resource", "profileId", ("activityId",)),
    AGENT_PROFILE: Resource(AGENT_PROFILE, "Agent Profile resource", "profileId", ("agent",)),
}


def _scope(resource: Resource, params: Mapping[str, str]) -> DocumentScope:
    activity_id = agent_key = registration = ""
    try:
        if "activityId" in resource.scope_params:
            activity_id = iri(required(params, "activityId", resource.title), "activityId")
        if "agent" in resource.scope_params:
            _, agent_key = agent_param(required(params, "agent", resource.title))
        if "registration" in params:
            registration = uuid_text(params["registration"], "registration")
    except StatementError as exc:
        raise XapiError.bad(exc) from None
    return DocumentScope(resource.kind, activity_id, agent_key, registration)


def _http_date(micros: int) -> str:
    return email.utils.format_datetime(from_micros(micros), usegmt=True)


def _now_us() -> int:
    return to_micros(dt.datetime.now(dt.UTC))


def _conditions(request: Request) -> Preconditions:
    return Preconditions.parse(request.headers.get("if-match"), request.headers.get("if-none-match"))


async def _get(request: Request, project: ProjectInfo, resource: Resource, store: DocumentStore) -> Response:
    params = request.query_params
    single = resource.id_param in params
    check_params(params, resource.params(request.method), resource.title)
    scope = _scope(resource, params)
    since = None
    if "since" in params:
        try:
            since = to_micros(parse_timestamp(params["since"], "since"))
        except StatementError as exc:
            raise XapiError.bad(exc) from None
    if single:
        found = await run_in_threadpool(store.get, project.id, scope, params[resource.id_param])
        if found is None:
            raise XapiError(404, f"no document {params[resource.id_param][:80]!r} here", resource.id_param)
        return respond(found.content, media_type=found.content_type,
                       headers={"ETag": f'"{found.etag}"', "Last-Modified": _http_date(found.updated_us)})
    ids, latest = await run_in_threadpool(store.ids, project.id, scope, since)
    body = orjson.dumps(ids)
    headers = {"ETag": f'"{hashlib.sha1(body, usedforsecurity=False).hexdigest()}"'}
    if latest is not None:
        headers["Last-Modified"] = _http_date(latest)
    return respond(body, headers=headers)


async def _change(request: Request, project: ProjectInfo, resource: Resource, store: DocumentStore) -> Response:
    params = request.query_params
    method = request.method
    single = resource.id_param in params
    check_params(params, resource.params(method), resource.title)
    if not single and (method != "DELETE" or resource.kind != STATE):
        raise XapiError(400, f"{method} on the {resource.title} needs the parameter {resource.id_param}",
                        resource.id_param)
    scope = _scope(resource, params)
    conditions = _conditions(request)
    if method == "DELETE":
        if single:
            await run_in_threadpool(store.delete, project.id, scope, params[resource.id_param], conditions)
        else:
            await run_in_threadpool(store.delete_all, project.id, scope)
        return respond(None, 204)
    content = await body_of(request, sniff_gzip=False)
    content_type = request.headers.get("content-type", OCTET_STREAM) or OCTET_STREAM
    await run_in_threadpool(store.put, project.id, scope, params[resource.id_param], content_type, content,
                            conditions, _now_us(), method == "POST")
    return respond(None, 204)


async def _document(request: Request, kind: str) -> Response:
    try:
        reading = request.method in ("GET", "HEAD")
        project = authorize(request, read=True)
        store = lrs(request).documents
        if reading:
            return await _get(request, project, RESOURCES[kind], store)
        return await _change(request, project, RESOURCES[kind], store)
    except DocumentError as exc:
        return XapiError(exc.status, exc.message).response()
    except XapiError as exc:
        return exc.response()


def _document_route(path: str, kind: str, what: str) -> None:
    """GET, HEAD, PUT, POST and DELETE of a document resource, one route (and OpenAPI operation) per method."""

    async def endpoint(request: Request) -> Response:
        return await _document(request, kind)

    found = {"description": "The document (with ETag and Last-Modified), or a JSON array of document ids",
             "content": {"application/json": {}, "*/*": {}}}
    changed = {"description": "Stored, merged or deleted"}
    routes: dict[str, dict[Any, Any]] = {
        "GET": {200: found, **refusals(404, model=XapiProblem, s404="No such document")},
        "HEAD": {200: {"description": "The headers of the GET"},
                 **refusals(404, model=XapiProblem, s404="No such document")},
        "PUT": {204: changed, **refusals(409, 412, model=XapiProblem,
                                         s409="The document exists: send If-Match with its ETag")},
        "POST": {204: changed, **refusals(412, model=XapiProblem)},
        "DELETE": {204: changed, **refusals(412, model=XapiProblem)},
    }
    for method, responses in routes.items():
        router.add_api_route(path, endpoint, methods=[method], name=f"{kind}_{method.lower()}",
                             summary=f"xAPI {what}: {method}", responses=responses,
                             status_code=204 if method in ("PUT", "POST", "DELETE") else 200)


_document_route("/xapi/activities/state", STATE,
                "State (one document by stateId; without it GET lists ids, DELETE removes the scope's documents)")
_document_route("/xapi/activities/profile", ACTIVITY_PROFILE, "Activity Profile (one document by profileId)")
_document_route("/xapi/agents/profile", AGENT_PROFILE, "Agent Profile (one document by profileId)")


def person(agent: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The Person object of an Agent (Communication 2.4): every property an array; the names the project's
    statements gave the Agent."""
    out: dict[str, Any] = {"objectType": "Person"}
    given = list(dict.fromkeys([*([agent["name"]] if "name" in agent else []), *names]))
    if given:
        out["name"] = given
    for key in ("mbox", "mbox_sha1sum", "openid", "account"):
        if key in agent:
            out[key] = [agent[key]]
    return out


@router.get("/xapi/agents", summary="xAPI Agents: the Person object of an Agent (its names and identifier)",
            responses={200: {"description": "The Person object", "content": {"application/json": {}}}})
async def agents(request: Request) -> Response:
    try:
        project = authorize(request, read=True)
        check_params(request.query_params, {"agent"}, "Agents resource")
        agent, key = agent_param(required(request.query_params, "agent", "Agents resource"))
        names = await run_in_threadpool(lrs(request).statements.agent_names, project.id, key)
        return respond(orjson.dumps(person(agent, names)))
    except XapiError as exc:
        return exc.response()


@router.get("/xapi/activities",
            summary="xAPI Activities: an Activity with the definition merged from the project's statements",
            responses={200: {"description": "The Activity", "content": {"application/json": {}}}})
async def activities(request: Request) -> Response:
    try:
        project = authorize(request, read=True)
        check_params(request.query_params, {"activityId"}, "Activities resource")
        try:
            activity_id = iri(required(request.query_params, "activityId", "Activities resource"), "activityId")
        except StatementError as exc:
            raise XapiError.bad(exc) from None
        definition = await run_in_threadpool(lrs(request).activities.get, project.id, activity_id)
        body: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
        if definition:
            body["definition"] = definition
        return respond(orjson.dumps(body))
    except XapiError as exc:
        return exc.response()


router.add_api_route("/xapi/agents", agents, methods=["HEAD"], summary="xAPI Agents: the headers of the GET",
                     responses={200: {"description": "The headers of the GET"}})
router.add_api_route("/xapi/activities", activities, methods=["HEAD"],
                     summary="xAPI Activities: the headers of the GET", responses={200: {"description": "The headers"}})
