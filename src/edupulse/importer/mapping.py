"""Which column of a file means what: defaults per kind, `--map target=column`, `--value target=text`, `--skip`.

Targets of events: event, distinct_id, distinct_id_type, time, insert_id (or event_id), properties (a JSON
column), properties.NAME, groups.TYPE, identities.TYPE. Profiles: distinct_id, distinct_id_type, op, time,
insert_id, properties, properties.NAME, identities.TYPE. Identities: one identity type per column. Spend:
date, channel, campaign, cost, impressions, clicks. A column named like a target means that target; every
other column is a property (events, profiles) or an identity type (identities).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("events", "profiles", "identities", "spend")
PREFIXES = ("properties.", "groups.", "identities.")
FIELDS: dict[str, tuple[str, ...]] = {
    "events": ("event", "distinct_id", "distinct_id_type", "time", "insert_id", "properties"),
    "profiles": ("distinct_id", "distinct_id_type", "op", "time", "insert_id", "properties"),
    "identities": (),
    "spend": ("date", "channel", "campaign", "cost", "impressions", "clicks"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "events": ("event", "distinct_id", "time"),
    "profiles": ("distinct_id",),
    "identities": (),
    "spend": ("date", "channel", "cost"),
}
_PREFIXED_KINDS: dict[str, tuple[str, ...]] = {
    "events": PREFIXES, "profiles": ("properties.", "identities."), "identities": (), "spend": (),
}
_NO_VALUE = ("distinct_id", "insert_id", "properties", "time", "cost", "impressions", "clicks", "date")
ALIASES = {"event_id": "insert_id"}


class MappingError(ValueError):
    """A mapping that does not fit the kind or the file; says what to change."""


@dataclass
class ColumnMapping:
    """What the user said: target -> column, target -> constant text, columns to leave out."""

    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    skip: set[str] = field(default_factory=set)


def parse_pairs(pairs: Iterable[str], option: str) -> dict[str, str]:
    """`target=column` strings (split at the first '=') into a dict."""
    out: dict[str, str] = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source:
            raise MappingError(f"{option} {pair!r}: write it as TARGET=COLUMN, e.g. {option} distinct_id=user_id")
        out[ALIASES.get(target.strip(), target.strip())] = source
    return out


def load_mapping(
    path: Path | None, maps: Sequence[str] = (), values: Sequence[str] = (), skip: Sequence[str] = ()
) -> ColumnMapping:
    """Combine a mapping file (`{"map": {...}, "value": {...}, "skip": [...]}` or a flat `{target: column}`)
    with command-line options, which win."""
    mapping = ColumnMapping()
    if path is not None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MappingError(f"mapping file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise MappingError(f"mapping file {path}: must be a JSON object")
        sections = {"map", "value", "skip"}
        nested = bool(sections & set(data))
        if nested and set(data) - sections:
            raise MappingError(f"mapping file {path}: use only the keys map, value and skip, or a flat object")
        raw_map = data.get("map", {}) if nested else data
        _check_strings(raw_map, path, "map")
        _check_strings(data.get("value", {}), path, "value")
        mapping.columns.update({ALIASES.get(k, k): v for k, v in raw_map.items()})
        mapping.values.update({ALIASES.get(k, k): v for k, v in data.get("value", {}).items()})
        skipped = data.get("skip", [])
        if not isinstance(skipped, list) or not all(isinstance(s, str) for s in skipped):
            raise MappingError(f"mapping file {path}: skip must be a list of column names")
        mapping.skip.update(skipped)
    mapping.columns.update(parse_pairs(maps, "--map"))
    mapping.values.update(parse_pairs(values, "--value"))
    mapping.skip.update(skip)
    return mapping


def _check_strings(section: Any, path: Path, name: str) -> None:
    if not isinstance(section, dict) or not all(isinstance(v, str) for v in section.values()):
        raise MappingError(f"mapping file {path}: {name} must be an object of target to text")


@dataclass
class Layout:
    """The resolved meaning of a file's columns for one kind of import."""

    kind: str
    fields: dict[str, str] = field(default_factory=dict)  # target -> source column
    constants: dict[str, str] = field(default_factory=dict)  # target -> value for every row
    properties: dict[str, str] = field(default_factory=dict)  # property name -> source column
    groups: dict[str, str] = field(default_factory=dict)  # group type -> source column
    identities: dict[str, str] = field(default_factory=dict)  # identity type -> source column
    skipped: set[str] = field(default_factory=set)
    mapping: ColumnMapping = field(default_factory=ColumnMapping)

    def used(self) -> set[str]:
        return {*self.fields.values(), *self.properties.values(), *self.groups.values(), *self.identities.values()}

    def column_of(self, record_field: str) -> str | None:
        """The source column behind a field named in a validation error (`properties.amount`, `time`...)."""
        if record_field in self.fields:
            return self.fields[record_field]
        if record_field == "event_id":
            return self.fields.get("insert_id")
        head, _, name = record_field.partition(".")
        table = {"properties": self.properties, "groups": self.groups, "identities": self.identities}.get(head)
        if table is not None and name in table:
            return table[name]
        if head == "properties" and "properties" in self.fields:
            return self.fields["properties"]
        return None

    def with_columns(self, columns: Iterable[str]) -> Layout:
        """This layout extended with columns first met later in the file (JSON Lines)."""
        new = [c for c in columns if c not in self.used() and c not in self.skipped]
        if not new:
            return self
        layout = Layout(self.kind, dict(self.fields), dict(self.constants), dict(self.properties), dict(self.groups),
                        dict(self.identities), set(self.skipped), self.mapping)
        for column in new:
            _assign_default(layout, column)
        return layout


def resolve(kind: str, columns: Sequence[str], mapping: ColumnMapping) -> Layout:
    """Give every column of the file its meaning; raise MappingError naming what does not fit."""
    if kind not in KINDS:
        raise MappingError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    present = set(columns)
    layout = Layout(kind, mapping=mapping)
    for source in sorted(mapping.skip - present):
        raise MappingError(f"--skip {source!r}: no such column; columns: {_names(columns)}")
    layout.skipped = set(mapping.skip)
    for target, source in mapping.columns.items():
        _check_target(kind, target, "--map")
        if source not in present:
            raise MappingError(f"--map {target}={source}: no column {source!r}; columns: {_names(columns)}")
        if source in layout.skipped:
            raise MappingError(f"column {source!r} is both mapped and skipped")
        if source in layout.used():
            raise MappingError(f"column {source!r} is mapped to two targets")
        _assign(layout, target, source)
    for target, value in mapping.values.items():
        _check_target(kind, target, "--value")
        if target in _NO_VALUE or target.startswith("identities.") or kind == "identities":
            raise MappingError(f"--value {target}: {target} must come from a column of the file")
        if target in mapping.columns:
            raise MappingError(f"{target} is given both as a column (--map) and as a value (--value)")
        layout.constants[target] = value
    for column in columns:
        if column not in layout.used() and column not in layout.skipped:
            _assign_default(layout, column)
    missing = [t for t in REQUIRED[kind] if t not in layout.fields and t not in layout.constants]
    if missing:
        hint = " ".join(f"--map {t}=COLUMN" for t in missing)
        raise MappingError(f"no column for {', '.join(missing)}; columns: {_names(columns)}; map them: {hint}")
    if kind == "identities" and not layout.identities:
        raise MappingError("no identity columns: name columns by identity type (login_id, mobile, crm_lead_id...)")
    return layout


def _check_target(kind: str, target: str, option: str) -> None:
    if kind == "identities":
        return  # any identity type; checked by the identity rules
    if target in FIELDS[kind]:
        return
    prefix = next((p for p in _PREFIXED_KINDS[kind] if target.startswith(p) and len(target) > len(p)), None)
    if prefix is None:
        allowed = [*FIELDS[kind], *(p + "NAME" for p in _PREFIXED_KINDS[kind])]
        raise MappingError(f"{option} {target}: not a target of {kind}; use one of {', '.join(allowed)}")


def _assign(layout: Layout, target: str, source: str) -> None:
    if layout.kind == "identities":
        layout.identities[target] = source
        return
    for prefix, table in (("properties.", layout.properties), ("groups.", layout.groups),
                          ("identities.", layout.identities)):
        if target.startswith(prefix):
            name = target[len(prefix):]
            if name in table:
                raise MappingError(f"{target} comes from two columns: {table[name]!r} and {source!r}")
            table[name] = source
            return
    layout.fields[target] = source


def _assign_default(layout: Layout, column: str) -> None:
    kind = layout.kind
    if kind == "identities":
        layout.identities[column] = column
        return
    target = ALIASES.get(column, column)
    if target in FIELDS[kind] and target not in layout.fields and target not in layout.constants:
        if target == "insert_id" and "insert_id" in layout.fields:
            raise MappingError("both event_id and insert_id columns: map one with --map insert_id=COLUMN")
        layout.fields[target] = column
        return
    if kind == "spend":
        raise MappingError(f"column {column!r} is not a spend column ({', '.join(FIELDS['spend'])}); "
                           f"map it with --map TARGET={column} or leave it out with --skip {column}")
    if any(column.startswith(p) and len(column) > len(p) for p in _PREFIXED_KINDS[kind]):
        _assign(layout, column, column)
        return
    if column in layout.properties:
        raise MappingError(f"property {column!r} comes from two columns; leave one out with --skip")
    layout.properties[column] = column


def _names(columns: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in list(columns)[:20])
    return shown + (f" and {len(columns) - 20} more" if len(columns) > 20 else "") if columns else "none"

