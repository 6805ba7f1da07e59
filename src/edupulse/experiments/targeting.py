"""Who may enter an experiment: person-property conditions, a segment, tags. The same rules two ways: as a
GrowthBook condition (and saved groups) for the SDKs, which check them on the attributes the app passes, and
evaluated here for a person of the event store (the assign endpoint).

A targeted tag is a tag's name (the person has a value of it) or `NAME=VALUE` (the person's value in force is
VALUE); `person_tags` is the one place that reads them."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from edupulse.experiments.conditions import matches
from edupulse.experiments.model import Targeting
from edupulse.queries.common import Op, PropertyFilter, PropertyRef
from edupulse.queries.compile import Context, literal
from edupulse.queries.tagvalues import tag_values_tree

SDK_ID = "id"
GB_OPS = {Op.eq: "$eq", Op.neq: "$ne", Op.in_: "$in", Op.not_in: "$nin", Op.gt: "$gt", Op.gte: "$gte",
          Op.lt: "$lt", Op.lte: "$lte"}


def attribute(f: PropertyFilter) -> str:
    """The SDK attribute a person-property condition reads (grade for person.grade)."""
    return PropertyRef.parse(f.property).name or f.property


def segment_group(segment: str | int) -> str:
    return f"segment:{segment}"


def gb_condition(targeting: Targeting, hash_attribute: str) -> dict[str, Any]:
    """The GrowthBook condition of the targeting (an empty dict matches everyone)."""
    parts: list[dict[str, Any]] = []
    for f in targeting.properties:
        name = attribute(f)
        if f.op is Op.is_set:
            parts.append({name: {"$exists": True}})
        elif f.op is Op.is_not_set:
            parts.append({name: {"$exists": False}})
        else:
            parts.append({name: {GB_OPS[f.op]: f.value}})
    if targeting.segment is not None:
        parts.append({hash_attribute: {"$inGroup": segment_group(targeting.segment)}})
    for tag in targeting.tags:
        parts.append({"$tags": {"$elemMatch": {"$eq": tag}}})
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def tag_name(targeted: str) -> str:
    return targeted.split("=", 1)[0]


def person_tags(ctx: Context, person_id: int | None, wanted: list[str]) -> exp.Query | None:
    """SELECT (tag, value) of the person's values in force of the person tags named in `wanted` (None: there
    is nothing to read). `held_tags` turns its rows into what `eligible` checks."""
    if person_id is None:
        return None
    parts: list[exp.Select] = []
    for name in sorted({tag_name(t) for t in wanted}):
        tag = ctx.tags.get(name)
        if tag is None or tag.unit != "person":
            continue
        parts.append(exp.select(exp.Literal.string(name).as_("tag"), exp.column("value", "t").as_("value"))
                     .from_(tag_values_tree(ctx.project_id, tag).subquery("t"))
                     .where(exp.column("person_id", "t").eq(literal(person_id))))
    if not parts:
        return None
    query: exp.Query = parts[0]
    for part in parts[1:]:
        query = exp.union(query, part, distinct=False)
    return query


def held_tags(rows: list[tuple[Any, ...]]) -> frozenset[str]:
    """Each tag the person has, by name and as NAME=VALUE."""
    held: set[str] = set()
    for name, value in rows:
        held.add(str(name))
        if value is not None:
            held.add(f"{name}={value}")
    return frozenset(held)


def eligible(targeting: Targeting, properties: dict[str, Any], tags: frozenset[str], in_segment: bool) -> bool:
    """The targeting checked for a person: the property conditions as the SDKs check them (conditions.py),
    the segment and the tags from the store."""
    if targeting.segment is not None and not in_segment:
        return False
    if any(tag not in tags for tag in targeting.tags):
        return False
    return matches(properties, gb_condition(Targeting(properties=targeting.properties), SDK_ID))


def person_lookup(ctx: Context, distinct_id: str) -> exp.Select:
    """(person after merges, properties) of the person with this identity."""
    p = ctx.project_id
    resolved = ctx.dialect.resolved(exp.column("person_id", "o"), exp.column("person_id", "i"))
    return (exp.select(resolved.as_("person_id"), exp.column("properties", "pe"))
            .from_(exp.table_("identities").as_("i"))
            .join(exp.table_("person_overrides").as_("o"), on=exp.and_(
                exp.column("project_id", "o").eq(literal(p)),
                exp.column("old_person_id", "o").eq(exp.column("person_id", "i"))), join_type="left")
            .join(exp.table_("persons").as_("pe"), on=exp.and_(
                exp.column("project_id", "pe").eq(literal(p)),
                exp.column("person_id", "pe").eq(resolved.copy())), join_type="left")
            .where(exp.and_(exp.column("project_id", "i").eq(literal(p)),
                            exp.column("id_value", "i").eq(literal(distinct_id))))
            .limit(1))


def segment_member(ctx: Context, segment: str | int, person_id: int) -> exp.Select:
    members = ctx.segments(segment, ctx)
    return (exp.select(literal(1)).from_(exp.Subquery(this=members, alias=exp.TableAlias(this=exp.to_identifier("m"))))
            .where(exp.column("person_id", "m").eq(literal(person_id))).limit(1))


def segment_identities(ctx: Context, segment: str | int) -> exp.Select:
    """Every identity value of the segment's members (the saved group the SDKs check)."""
    members = ctx.segments(segment, ctx)
    p = ctx.project_id
    resolved = ctx.dialect.resolved(exp.column("person_id", "o"), exp.column("person_id", "i"))
    return (exp.select(exp.column("id_value", "i")).distinct()
            .from_(exp.table_("identities").as_("i"))
            .join(exp.table_("person_overrides").as_("o"), on=exp.and_(
                exp.column("project_id", "o").eq(literal(p)),
                exp.column("old_person_id", "o").eq(exp.column("person_id", "i"))), join_type="left")
            .where(exp.and_(exp.column("project_id", "i").eq(literal(p)),
                            exp.In(this=resolved, query=exp.Subquery(this=members)))))
