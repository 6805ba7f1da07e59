"""The project's Learning Record Store at a glance (the ingestion page): where LMSs send statements, how many
arrived, the verbs used most, documents kept, the latest statements. See docs/xapi.md."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from edupulse.api.auth import Principal, platform, require
from edupulse.api.xapi import SOURCE
from edupulse.api.xapi_common import lrs
from edupulse.auth.masking import mask_value
from edupulse.auth.permissions import Permission
from edupulse.meta.xapi_summary import LrsSummary, summarize

router = APIRouter(tags=["admin"])


class LrsOverview(BaseModel):
    endpoint: str = Field(description="the LRS endpoint to give LMSs and xAPI content (ends with /xapi/)")
    refused: int = Field(description="statements refused (in the quarantine with source xapi)")
    summary: LrsSummary


def _mask(text: str) -> str:
    return mask_value("email" if "@" in text else "name", text)


@router.get("/api/v1/xapi/summary", summary="The project's Learning Record Store: its endpoint, statements and "
                                            "documents kept, verbs used most, latest statements")
def xapi_summary(request: Request, principal: Principal = Depends(require(Permission.quarantine_view)),
                 verb: str | None = Query(None, min_length=1, max_length=2048,
                                          description="only statements of this verb (its IRI) in `recent`"),
                 limit: int = Query(20, ge=1, le=100, description="how many latest statements")) -> LrsOverview:
    project = principal.project
    assert project is not None
    lrs(request).statements.flush()  # statements answered with 200 are counted
    meta = platform(request).meta
    summary = summarize(meta, project.id, verb=verb, recent=limit, personal=principal.can(Permission.personal_view),
                        mask=_mask)
    return LrsOverview(endpoint=str(request.base_url) + "xapi/", refused=meta.quarantine_count(project.id, SOURCE),
                       summary=summary)
