"""What a project's Learning Record Store holds, for the people who connect LMSs and content to it: how many
statements (and how many of them voided), when the last one was stored, the verbs used most lately, the Activities
and documents kept, and the latest statements with who did what.

Read from the statement store's tables as they are: the caller first makes the store index what it accepted
(`StatementStore.flush`), so a statement answered with 200 is counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edupulse.ingest.records import from_micros
from edupulse.ingest.xapi_events import actor_identity, event_name
from edupulse.ingest.xapi_types import format_timestamp
from edupulse.meta.db import MetadataStore
from edupulse.meta.models import XapiStatement
from edupulse.meta.xapi_models import XapiActivity, XapiDocument

TOP_VERBS = 10
VERB_WINDOW = 10_000  # the verbs used most are those of the latest statements (a count over all reads them all)
CHUNK = 500  # ids per IN (...)
RESOURCES = ("state", "activity_profile", "agent_profile")


class VerbCount(BaseModel):
    verb: str = Field(description="the verb's IRI")
    display: dict[str, str] = Field(description="the verb's display (language map) in its latest statement")
    statements: int = Field(description="statements with this verb among the latest (voided ones included)")


class RecentStatement(BaseModel):
    id: str
    stored: str = Field(description="when the LRS stored it (ISO 8601, UTC)")
    actor: str = Field(description="the actor: its name, else its identity in One-ID (e-mail, account name, openid "
                                   "or hash); an anonymous Group by its members' count (masked without "
                                   "personal:view)")
    verb: str
    verb_display: dict[str, str]
    object: str = Field(description="the object's id (an Activity's IRI, an Agent as `actor`, a statement's id, a "
                                    "SubStatement's verb)")
    object_name: dict[str, str] = Field(description="an Activity's name (language map), if its definition has one")
    object_type: str
    event: str | None = Field(description="the education event the statement became (docs/xapi.md); none for a "
                                          "voiding statement")
    voided: bool
    statement: dict[str, Any] | None = Field(description="the statement as stored (absent without personal:view)")


class LrsSummary(BaseModel):
    statements: int = Field(description="statements stored, voiding and voided ones included")
    voided: int = Field(description="statements voided by a later statement")
    last_stored: str | None = Field(description="when the latest statement was stored (ISO 8601, UTC)")
    verbs: list[VerbCount] = Field(description=f"the {TOP_VERBS} verbs with the most statements among the latest "
                                               f"{VERB_WINDOW:,}")
    verbs_of_latest: int = Field(description="how many of the latest statements `verbs` counts")
    activities: int = Field(description="Activities with a definition (the Activities resource)")
    documents: dict[str, int] = Field(description="documents kept, by resource: state, activity_profile, "
                                                  "agent_profile")
    recent: list[RecentStatement] = Field(description="the latest statements, newest first")


def _agent_label(agent: dict[str, Any]) -> str:
    """An Agent or Group by its name, else the identity it has in One-ID (e-mail, account name, openid, hash),
    else (an anonymous Group) its members' count."""
    if agent.get("name"):
        return str(agent["name"])
    identity = actor_identity(agent)
    return identity[1] if identity else f"Group ({len(agent.get('member', []))})"


def _recent(document: str, stored_us: int, voided: bool, personal: bool, mask: Callable[[str], str]
            ) -> RecentStatement:
    statement = orjson.loads(document)
    actor = _agent_label(statement.get("actor", {}))
    obj = statement.get("object", {})
    kind = obj.get("objectType", "Activity")
    if kind in ("Agent", "Group"):
        target = _agent_label(obj)
        target = target if personal else mask(target)
    elif kind == "SubStatement":  # it has no id: what it says is done
        target = f"SubStatement ({obj.get('verb', {}).get('id', '')})"
    else:
        target = str(obj.get("id", ""))
    definition = obj.get("definition") if kind == "Activity" else None
    event = event_name(statement["verb"]["id"], (definition or {}).get("type"))
    return RecentStatement(
        id=statement["id"], stored=format_timestamp(from_micros(stored_us)),
        actor=actor if personal else mask(actor), verb=statement["verb"]["id"],
        verb_display=statement["verb"].get("display", {}), object=target,
        object_name=(definition or {}).get("name", {}), object_type=kind, event=event, voided=voided,
        statement=statement if personal else None)


def _voided(s: Session, project_id: int) -> int:
    """Statements voided, found from the voiding statements (few, and indexed by what they void) rather than by
    reading every statement of the project."""
    t = XapiStatement
    targets = sorted({str(voids) for pid, voids in s.execute(select(t.project_id, t.voids).where(
        t.voids.is_not(None))) if pid == project_id})
    return sum(s.execute(select(func.count()).where(
        t.project_id == project_id, t.statement_id.in_(targets[i:i + CHUNK]), t.voided.is_(True))).scalar_one()
        for i in range(0, len(targets), CHUNK))


def summarize(meta: MetadataStore, project_id: int, *, verb: str | None = None, recent: int = 20,
              personal: bool = True, mask: Callable[[str], str] = str) -> LrsSummary:
    """The project's LRS in numbers and its latest `recent` statements (with `verb`, only those). Without
    `personal`, the people in statements are shown through `mask` and the statements' JSON is left out.

    The latest statements are read backwards in row order (`project_id + 0` keeps the database from going through
    the project's index, which is in statement-id order and would visit every statement of the project): a few
    pages where one project fills the table, one pass over the table at worst."""
    t = XapiStatement
    mine = (t.project_id + 0) == project_id
    with meta.session() as s:
        total = s.execute(select(func.count()).where(t.project_id == project_id)).scalar_one()
        latest = s.execute(select(t.verb_id, t.stored_us).where(mine).order_by(t.id.desc()).limit(VERB_WINDOW)).all()
        counts = Counter(row.verb_id for row in latest)
        verbs = []
        for verb_id, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_VERBS]:
            document = s.execute(select(t.document).where(t.verb_id == verb_id, t.project_id == project_id)
                                 .order_by(t.id.desc()).limit(1)).scalar_one()
            verbs.append(VerbCount(verb=verb_id, display=orjson.loads(document)["verb"].get("display", {}),
                                   statements=n))
        activities = s.execute(select(func.count()).select_from(XapiActivity)
                               .where(XapiActivity.project_id == project_id)).scalar_one()
        documents = dict.fromkeys(RESOURCES, 0)
        for resource, n in s.execute(select(XapiDocument.resource, func.count()).where(
                XapiDocument.project_id == project_id).group_by(XapiDocument.resource)):
            documents[resource] = n
        shown = select(t.document, t.stored_us, t.voided)
        shown = shown.where(mine) if verb is None else shown.where(t.verb_id == verb, t.project_id == project_id)
        rows = s.execute(shown.order_by(t.id.desc()).limit(recent)).all()
        voided = _voided(s, project_id)
    return LrsSummary(
        statements=total, voided=voided,
        last_stored=format_timestamp(from_micros(latest[0].stored_us)) if latest else None,
        verbs=verbs, verbs_of_latest=len(latest), activities=activities, documents=documents,
        recent=[_recent(row.document, row.stored_us, bool(row.voided), personal, mask) for row in rows])
