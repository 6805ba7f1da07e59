"""/api/v1/packs/<pack>/...: what some packs show beyond their headline (docs/packs.md): the referral tree of a
person."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from edupulse.api.auth import Principal, platform, require
from edupulse.api.errors import refusals
from edupulse.api.params import MAX_ID
from edupulse.auth.permissions import Permission
from edupulse.packs.headline import PackError
from edupulse.packs.referral_tree import MAX_DEPTH, referral_tree
from edupulse.queries.errors import QueryError
from edupulse.queries.service import InternalQueryError

router = APIRouter(tags=["packs"])


def _json(value: object) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.get("/api/v1/packs/referral/tree", summary="The referral tree of a person (whom they brought, down to a depth)",
            responses=refusals(400, 403, s403="Advisors see only their assigned persons"))
async def tree(
    request: Request,
    person_id: Annotated[int, Query(ge=1, le=MAX_ID, description="the person at the root")],
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH, description=f"levels below the person (1 to {MAX_DEPTH})")] = 3,
    principal: Principal = Depends(require(Permission.query_run)),
) -> Response:
    project = principal.project
    assert project is not None
    if principal.restricted_to_assigned:
        raise HTTPException(403, "the referral tree reaches persons not assigned to you; ask an analyst")
    plat = platform(request)
    try:
        found = await run_in_threadpool(lambda: referral_tree(
            plat.query_service(), project, person_id, depth, show_logins=principal.can(Permission.personal_view)))
    except PackError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except (QueryError, InternalQueryError) as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _json(found.model_dump())
