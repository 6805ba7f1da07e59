"""What a project's Learning Record Store holds, for the people who connect LMSs and content to it: how many
statements (and how many of them voided), when the last one was stored, the verbs used most, the Activities and
documents kept, and the latest statements with who did what.

Read from the statement store's tables as they are: the caller first makes the store index what it accepted
(`StatementStore.flush`), so a statement answered with 200 is counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from edupulse.ingest.records import from_micros
from edupulse.ingest.xapi_types import format_timestamp
from edupulse.meta.db import MetadataStore
from edupulse.meta.models import XapiStatement
from edupulse.meta.xapi_models import XapiActivity, XapiDocument

TOP_VERBS = 10
RESOURCES = ("state", "activity_profile", "agent_profile")


class VerbCount(BaseModel):
    verb: str = Field(description="the verb's IRI")
    display: dict[str, str] = Field(description="the verb's display (language map) in its latest statement")
    statements: int = Field(description="statements with this verb, voided ones included")


class RecentStatement(BaseModel):
    id: str
    stored: str = Field(description="when the LRS stored it (ISO 8601, UTC)")
    actor: str = Field(description="the actor: name, e-mail, account name, openid or hash; a Group by its name "
                                   "or its members' count (masked without personal:view)")
    verb: str
    verb_display: dict[str, str]
    object: str = Field(description="the object's id (an Activity's IRI, an Agent as `actor`, a statement's id)")
    object_name: dict[str, str] = Field(description="an Activity's name (language map), if its definition has one")
    object_type: str
    voided: bool
    statement: dict[str, Any] | None = Field(description="the statement as stored (absent without personal:view)")


class LrsSummary(BaseModel):
    statements: int = Field(description="statements stored, voiding and voided ones included")
    voided: int = Field(description="statements voided by a later statement")
    last_stored: str | None = Field(description="when the latest statement was stored (ISO 8601, UTC)")
    verbs: list[VerbCount] = Field(description=f"the {TOP_VERBS} verbs with the most statements")
    activities: int = Field(description="Activities with a definition (the Activities resource)")
    documents: dict[str, int] = Field(description="documents kept, by resource: state, activity_profile, "
                                                  "agent_profile")
    recent: list[RecentStatement] = Field(description="the latest statements, newest first")


def _agent_label(agent: dict[str, Any]) -> str:
    if agent.get("name"):
        return str(agent["name"])
    if "mbox" in agent:
        return str(agent["mbox"]).removeprefix("mailto:")
    if "account" in agent:
        return str(agent["account"].get("name", ""))
    if "openid" in agent:
        return str(agent["openid"])
    if "mbox_sha1sum" in agent:
        return str(agent["mbox_sha1sum"])[:12]
    return f"Group ({len(agent.get('member', []))})"


def _recent(document: str, stored_us: int, voided: bool, personal: bool, mask: Callable[[str], str]
            ) -> RecentStatement:
    statement = orjson.loads(document)
    actor = _agent_label(statement.get("actor", {}))
    obj = statement.get("object", {})
    kind = obj.get("objectType", "Activity")
    if kind in ("Agent", "Group"):
        target = _agent_label(obj)
        target = target if personal else mask(target)
    else:
        target = str(obj.get("id", ""))
    definition = obj.get("definition") if kind == "Activity" else None
    return RecentStatement(
        id=statement["id"], stored=format_timestamp(from_micros(stored_us)),
        actor=actor if personal else mask(actor), verb=statement["verb"]["id"],
        verb_display=statement["verb"].get("display", {}), object=target,
        object_name=(definition or {}).get("name", {}), object_type=kind, voided=voided,
        statement=statement if personal else None)


def summarize(meta: MetadataStore, project_id: int, *, verb: str | None = None, recent: int = 20,
              personal: bool = True, mask: Callable[[str], str] = str) -> LrsSummary:
    """The project's LRS in numbers and its latest `recent` statements (with `verb`, only those). Without
    `personal`, the people in statements are shown through `mask` and the statements' JSON is left out."""
    t = XapiStatement
    with meta.session() as s:
        total, voided, last = s.execute(select(func.count(), func.count().filter(t.voided.is_(True)),
                                               func.max(t.stored_us)).where(t.project_id == project_id)).one()
        counts = s.execute(select(t.verb_id, func.count().label("n")).where(t.project_id == project_id)
                           .group_by(t.verb_id).order_by(func.count().desc(), t.verb_id).limit(TOP_VERBS)).all()
        verbs = []
        for verb_id, n in counts:
            latest = s.execute(select(t.document).where(t.project_id == project_id, t.verb_id == verb_id)
                               .order_by(t.id.desc()).limit(1)).scalar_one()
            verbs.append(VerbCount(verb=verb_id, display=orjson.loads(latest)["verb"].get("display", {}),
                                   statements=n))
        activities = s.execute(select(func.count()).select_from(XapiActivity)
                               .where(XapiActivity.project_id == project_id)).scalar_one()
        documents = dict.fromkeys(RESOURCES, 0)
        for resource, n in s.execute(select(XapiDocument.resource, func.count()).where(
                XapiDocument.project_id == project_id).group_by(XapiDocument.resource)):
            documents[resource] = n
        latest_rows = select(t.document, t.stored_us, t.voided).where(t.project_id == project_id)
        if verb is not None:
            latest_rows = latest_rows.where(t.verb_id == verb)
        rows = s.execute(latest_rows.order_by(t.id.desc()).limit(recent)).all()
    return LrsSummary(
        statements=total, voided=int(voided),
        last_stored=None if last is None else format_timestamp(from_micros(last)),
        verbs=verbs, activities=activities, documents=documents,
        recent=[_recent(row.document, row.stored_us, bool(row.voided), personal, mask) for row in rows])
