"""/api/v1/packs/<pack>/...: what some packs show beyond their headline (docs/packs.md): the referral tree of a
person; the ledger of a school, and its owner, backup and targets (set by admins)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from edupulse.api.auth import Principal, client_of, platform, require
from edupulse.api.errors import refusals
from edupulse.api.params import Id
from edupulse.auth.permissions import Permission
from edupulse.meta.db import MetadataError
from edupulse.meta.school_accounts import AccountInfo, SchoolAccounts
from edupulse.packs import school_accounts
from edupulse.packs.headline import PackError
from edupulse.packs.referral_tree import MAX_DEPTH, referral_tree
from edupulse.packs.school_ledger import ledger
from edupulse.packs.service import PackService
from edupulse.queries.errors import QueryError
from edupulse.queries.service import InternalQueryError

router = APIRouter(tags=["packs"])


def _json(value: object) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.get("/api/v1/packs/referral/tree", summary="The referral tree of a person (whom they brought, down to a depth)",
            responses=refusals(400, 403, s403="Advisors see only their assigned persons"))
async def tree(
    request: Request,
    person_id: Annotated[Id, Query(description="the person at the root")],
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


SCHOOL = Annotated[str, Path(min_length=1, max_length=200, description="the school's group key")]


@router.get("/api/v1/packs/school_accounts/schools/{school_id}/ledger",
            summary="The ledger of one school (一校一台账): size, adoption and usage week by week or month by month",
            responses=refusals(400, 404, s404="No such school"))
async def school_ledger(
    request: Request, school_id: SCHOOL,
    granularity: Annotated[str, Query(description="week or month")] = "week",
    date_range: Annotated[str | None, Query(description="all: every day of the data")] = None,
    date_from: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD")] = None,
    date_to: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD (default today)")] = None,
    principal: Principal = Depends(require(Permission.query_run)),
) -> Response:
    project = principal.project
    assert project is not None
    plat = platform(request)

    def compute() -> object:
        service = PackService(plat)
        run = service.run(project, school_accounts.PACK, date_range=date_range, date_from=date_from, date_to=date_to)
        return ledger(run, plat.store, school_id, granularity).model_dump()

    try:
        return _json(await run_in_threadpool(compute))
    except PackError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except (QueryError, InternalQueryError) as exc:
        raise HTTPException(exc.status, str(exc)) from None


class AccountBody(BaseModel):
    """A school's owner and backup (user ids of project members) and targets; a field left out is cleared."""

    model_config = ConfigDict(extra="forbid")
    owner_id: Id | None = Field(None, description="the owner (A role)")
    backup_id: Id | None = Field(None, description="the backup (B role)")
    parent_target: float | None = Field(None, gt=0, le=1, description="parent adoption to reach (0.6 = 60 %)")
    teacher_target: float | None = Field(None, gt=0, le=1, description="teacher adoption to reach")
    target_date: dt.date | None = Field(None, description="when the targets are due")


@router.put("/api/v1/packs/school_accounts/schools/{school_id}/account",
            summary="Set a school's owner, backup and targets (at most 5 schools per person and role)",
            responses=refusals(400, 403, 404, s403="Only admins (members:manage) assign schools and set targets",
                               s404="No such school"))
def put_account(request: Request, school_id: SCHOOL, body: AccountBody,
                principal: Principal = Depends(require(Permission.members_manage))) -> Response:
    project = principal.project
    assert project is not None
    plat = platform(request)
    if not plat.store.entity_ops(project.id, [("group", "school", school_id)]):
        raise HTTPException(404, f"no school {school_id!r} in this project (no group of type school with that key)")
    members = {u.id for u in plat.meta.accounts.users(project.id)}
    for name, person in (("owner_id", body.owner_id), ("backup_id", body.backup_id)):
        if person is not None and person not in members:
            raise HTTPException(400, f"{name} {person}: no member of this project has that id")
    try:
        saved = SchoolAccounts(plat.meta).save(project.id, AccountInfo(school_id, **body.model_dump()),
                                               principal.actor)
    except MetadataError as exc:
        raise HTTPException(400, str(exc)) from None
    done = {"school_id": saved.school_id, "owner_id": saved.owner_id, "backup_id": saved.backup_id,
            "parent_target": saved.parent_target, "teacher_target": saved.teacher_target,
            "target_date": saved.target_date.isoformat() if saved.target_date else None}
    plat.meta.audit.record("school_account.change", principal.actor,
                           actor_user_id=principal.user.id if principal.user else None, project_id=project.id,
                           target=school_id, detail=done, client=client_of(request))
    return _json(done)
