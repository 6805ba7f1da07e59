"""What every analysis result shares: a pydantic response model per kind (its fields in the order they go on
the wire), `to_table()` for CSV, and the marks on the fields whose values come from the project's data.

Values from user data (breakdown values, person and event properties, identities, path nodes qualified by a
property, attribution channels read from a property) are marked with `UserData`; masking personal data walks
the result and changes only marked fields, knowing from the result's `Provenance` which property each value
came from. Labels written by the query's author (a funnel step's `name`, a series' `label`) are never masked.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

Number = int | float  # integers stay integers on the wire
Value = str | int | float | bool | None  # a value read from the data (a breakdown value; None: no value)
Table = tuple[list[str], list[list[Any]]]


def _is_none(value: Any) -> bool:
    return value is None


def absent_when_none() -> Any:
    """A field left out of the wire when it is None (keys that only some results have)."""
    return Field(None, exclude_if=_is_none)


# masking ------------------------------------------------------------------------------------------


class Masker(Protocol):
    """Which properties are personal, and how their values are shown (see edupulse.auth.masking)."""

    def personal(self, prop: str) -> bool: ...

    def value(self, prop: str, value: Any) -> Any: ...


@dataclass(frozen=True)
class Provenance:
    """Which property the user-data values of a result came from: the breakdown properties in order, the
    property qualifying each path node's event, the properties attribution channels were read from (and the
    fixed channel names, which are not data)."""

    breakdown: tuple[str, ...] = ()
    node_properties: Mapping[str, str] = field(default_factory=dict)
    channel_properties: tuple[str, ...] = ()
    fixed_channels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserData:
    """Marks a result field whose values come from the project's data; `mask` gives the shown-safe form."""

    mask: Callable[[Any, Masker, Provenance], Any]


def _breakdown(values: list[Value] | None, masker: Masker, source: Provenance) -> list[Value] | None:
    if values is None:
        return None
    props = source.breakdown
    return [masker.value(props[i], v) if i < len(props) and masker.personal(props[i]) and v is not None else v
            for i, v in enumerate(values)]


def _properties(values: dict[str, Any], masker: Masker, source: Provenance) -> dict[str, Any]:
    return {k: masker.value(k, v) if masker.personal(k) and not isinstance(v, dict | list) else v
            for k, v in values.items()}


def _identities(values: list[Identity], masker: Masker, source: Provenance) -> list[Identity]:
    return [i.model_copy(update={"value": masker.value(i.type, i.value)}) if masker.personal(i.type) else i
            for i in values]


def _node_label(label: str, masker: Masker, source: Provenance) -> str:
    """`event` or `event:value` (the value of the event's node property)."""
    event, colon, value = label.partition(":")
    prop = source.node_properties.get(event)
    if not colon or prop is None or not masker.personal(prop):
        return label
    return f"{event}:{masker.value(prop, value)}"


def _step_node(name: str, masker: Masker, source: Provenance) -> str:
    """`step:label`, as path nodes are named."""
    step, colon, label = name.partition(":")
    return f"{step}:{_node_label(label, masker, source)}" if colon else name


def _path(nodes: list[str], masker: Masker, source: Provenance) -> list[str]:
    return [_node_label(n, masker, source) for n in nodes]


def _channel(name: str, masker: Masker, source: Provenance) -> str:
    personal = [p for p in source.channel_properties if masker.personal(p)]
    if not personal or name in source.fixed_channels or name.startswith(("$", "(")):
        return name
    return str(masker.value(personal[0], name))


BREAKDOWN = UserData(_breakdown)
PROPERTIES = UserData(_properties)
IDENTITIES = UserData(_identities)
NODE_LABEL = UserData(_node_label)
STEP_NODE = UserData(_step_node)
PATH = UserData(_path)
CHANNEL = UserData(_channel)

BreakdownValues = Annotated[list[Value] | None, BREAKDOWN]
Properties = Annotated[dict[str, Any], PROPERTIES]


def _masked(value: Any, masker: Masker, source: Provenance) -> Any:
    if isinstance(value, BaseModel):
        changes: dict[str, Any] = {}
        for name, info in type(value).model_fields.items():
            current = getattr(value, name)
            mark = next((m for m in info.metadata if isinstance(m, UserData)), None)
            new = mark.mask(current, masker, source) if mark is not None else _masked(current, masker, source)
            if new is not current:
                changes[name] = new
        return value.model_copy(update=changes) if changes else value
    if isinstance(value, list) and value and isinstance(value[0], BaseModel | list | dict):
        items = [_masked(v, masker, source) for v in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, dict) and any(isinstance(v, BaseModel) for v in value.values()):
        return {k: _masked(v, masker, source) for k, v in value.items()}
    return value


# the base of every response ---------------------------------------------------------------------


class Result(BaseModel):
    """The response of one analysis kind (without the frame every response has: kind, time zone, SQL...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    _provenance: Provenance = PrivateAttr(default_factory=Provenance)

    def to_table(self) -> Table:
        """The result as one table (column names, rows), for CSV export."""
        raise NotImplementedError

    def from_data(self, provenance: Provenance) -> Self:
        """This result, knowing which properties its user-data values came from (for masking)."""
        self._provenance = provenance
        return self

    def masked(self, masker: Masker) -> Self:
        """A copy with every value of a personal property in its shown-safe form."""
        return _masked(self, masker, self._provenance)


class Part(BaseModel):
    """A part of a response (a series, a step, a cohort...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Identity(Part):
    type: str
    value: str


def label(values: list[Value] | None) -> str:
    """A breakdown value as one table cell: `G4 / Hangzhou`."""
    return " / ".join("" if v is None else str(v) for v in values or [])


def to_csv(table: Table) -> str:
    """A table as CSV text: a header row, then its rows (None as an empty cell)."""
    columns, rows = table
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()
