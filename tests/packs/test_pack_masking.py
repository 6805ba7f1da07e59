"""Pack headlines that list persons show their personal identities (a mobile number, an email) masked to
callers without personal:view, as every query result does: each headline model that carries identities
masks them, and the masking changes only those."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pydantic import BaseModel

import edupulse.packs
from edupulse.auth.masking import MASKER
from edupulse.packs.headline import Headline, masked_identities, masked_people


def _carries_identities(model: type[BaseModel], seen: set[type] | None = None) -> bool:
    seen = seen if seen is not None else set()
    if model in seen:
        return False
    seen.add(model)
    if "identities" in model.model_fields:
        return True
    for field in model.model_fields.values():
        for arg in getattr(field.annotation, "__args__", ()) or (field.annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel) and _carries_identities(arg, seen):
                return True
    return False


def test_every_headline_that_lists_identities_masks_them() -> None:
    for info in pkgutil.iter_modules(edupulse.packs.__path__):
        importlib.import_module(f"edupulse.packs.{info.name}")
    models = [m for m in _subclasses(Headline) if _carries_identities(m)]
    assert {m.__name__ for m in models} >= {"Supervision", "LeadTiering", "Renewal"}
    for model in models:
        assert model.masked is not Headline.masked, f"{model.__name__} lists identities but does not mask them"


def _subclasses(cls: type) -> list[type[Any]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_personal_identities_are_masked_and_the_rest_kept() -> None:
    ids = {"login_id": ["stu-1"], "mobile": ["13812345678"], "email": ["wang@example.com"]}
    assert masked_identities(ids, MASKER) == {"login_id": ["stu-1"], "mobile": ["138****5678"],
                                              "email": ["w***@example.com"]}

    class Row(BaseModel):
        person_id: int
        identities: dict[str, list[str]]

    rows = masked_people([Row(person_id=1, identities=ids)], MASKER)
    assert rows[0].person_id == 1
    assert rows[0].identities["mobile"] == ["138****5678"]
