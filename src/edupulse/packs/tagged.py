"""What the packs read of tags, through the tags' service: a tag's values in force by person (with the score,
tier and reasons of a model tag), and why a model tag has none (its last run's error)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from edupulse.packs.headline import PackRun
from edupulse.queries.base import render
from edupulse.queries.tagvalues import tag_values_tree
from edupulse.tags.run import TagValue, reason_texts, ref


class Scored(BaseModel):
    """A person's value of a model tag: the tier, the score (0..1) and the reasons that moved it most."""

    model_config = ConfigDict(extra="forbid")
    tier: str | None
    score: float | None
    reasons: list[str]
    reasons_zh: list[str]


def values_by_person(run: PackRun, name: str) -> dict[int, TagValue]:
    """Every value in force of a person tag, by person id (identities are looked up for the persons shown
    only: TagService.identities)."""
    tags = run.tags
    assert tags is not None
    tag = tags.tag(run.project, name)
    inner = tag_values_tree(run.project.id, ref(tag)).subquery("v")
    tree = exp.select(*(exp.column(c, "v") for c in ("person_id", "value", "number", "detail", "day"))).from_(inner)
    ctx = tags.queries.context(run.project)
    rows = tags.store.query(render(tree, ctx.dialect)).rows
    return {int(r[0]): TagValue(unit=int(r[0]), value=r[1], number=r[2], detail=r[3], day=_day(r[4]))
            for r in rows}


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def why_none(run: PackRun, name: str) -> str | None:
    """Why a tag has no values: its last run's error (None when it never ran)."""
    assert run.tags is not None
    runs = run.tags.catalog.runs(run.tags.tag(run.project, name).id, 1)
    if not runs:
        return None
    return runs[0].error or "the last run gave no person a value"


def scorer(run: PackRun, name: str) -> Callable[[TagValue | None], Scored | None]:
    """A function from a person's value of the model tag `name` to its tier, score and reasons."""
    assert run.tags is not None
    tag = run.tags.tag(run.project, name)

    def scored(value: TagValue | None) -> Scored | None:
        if value is None:
            return None
        if tag.spec.definition.type != "model":
            return Scored(tier=value.value, score=value.number, reasons=[], reasons_zh=[])
        return Scored(tier=value.value, score=value.number, reasons=reason_texts(value.detail),
                      reasons_zh=reason_texts(value.detail, "zh"))

    return scored
