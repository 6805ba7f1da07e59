"""Tag values as analyses read them: the values of a tag in force (now, or on a day), from the event store's
`tag_values` table (edupulse.store.base.latest_tag_values_sql), as a tree both engines render; and the
condition a tag filter puts on a unit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from edupulse.store.base import latest_tag_values_sql

NUMERIC = ("number", "time")


@dataclass(frozen=True)
class TagRef:
    """A tag of the project (the tags module fills this in): what it tags (`person` or a group type)."""

    id: int
    name: str
    unit: str
    value_type: str = "string"  # string, number, boolean or time (numbers and times filter as numbers)


def tag_values_tree(project_id: int, tag: TagRef, as_of: dt.date | None = None) -> exp.Select:
    """SELECT person_id, group_key, value, number, detail, day of the tag's values in force."""
    tree = sqlglot.parse_one(latest_tag_values_sql(project_id, tag.id, as_of), read="duckdb")
    assert isinstance(tree, exp.Select)
    return tree


def tag_alias(tag: TagRef) -> str:
    return f"tg{tag.id}"


def tag_key(tag: TagRef) -> str:
    """The column of the values that names the unit."""
    return "person_id" if tag.unit == "person" else "group_key"


def value_column(tag: TagRef, alias: str) -> exp.Expr:
    """What a filter or breakdown reads: the number of numeric and time tags, the text of the others."""
    return exp.column("number" if tag.value_type in NUMERIC else "value", alias)
