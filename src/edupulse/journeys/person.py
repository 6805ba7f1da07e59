"""Who a journey acts on, as the journey sees them: a key (their preferred identity, `login_id:u-12`), every
identity they were seen with, and their properties when they entered. Events find the persons they belong to
by any of the identities they carry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The identity a person is known by in a journey: the first of these they have, else their first identity.
PREFERRED = ("login_id", "crm_lead_id", "mobile", "email", "wechat_unionid", "anonymous_id", "device_id")


def identity_key(id_type: str, value: str) -> str:
    return f"{id_type}:{value}"


@dataclass(frozen=True)
class Person:
    key: str
    ids: tuple[tuple[str, str], ...]
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, ids: Iterable[tuple[str, str] | list[str]], properties: dict[str, Any] | None = None) -> Person:
        pairs = tuple((str(t), str(v)) for t, v in ids)
        if not pairs:
            raise ValueError("a person has at least one identity")
        rank = {name: i for i, name in enumerate(PREFERRED)}
        best = min(pairs, key=lambda p: (rank.get(p[0], len(PREFERRED)), pairs.index(p)))
        return cls(identity_key(*best), pairs, dict(properties or {}))

    def identity(self, id_type: str) -> str | None:
        return next((v for t, v in self.ids if t == id_type), None)

    def to_json(self) -> dict[str, Any]:
        return {"ids": [list(p) for p in self.ids], "properties": self.properties}

    @classmethod
    def from_json(cls, key: str, data: dict[str, Any]) -> Person:
        return cls(key, tuple((str(t), str(v)) for t, v in data.get("ids", [])), dict(data.get("properties") or {}))

    def keys(self) -> list[str]:
        return [identity_key(t, v) for t, v in self.ids]
