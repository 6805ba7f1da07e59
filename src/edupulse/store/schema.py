"""Column catalogue shared by every event-store engine: the typed property columns and their types."""

from __future__ import annotations

import re
from enum import StrEnum


class PropertyType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TIME = "time"


# Properties of the standard education events (PRODUCT.md) get typed columns from the start; a project
# can declare more. Everything else lives in the JSON `properties` column and is still filterable.
STANDARD_PROPERTIES: dict[str, PropertyType] = {
    "url": PropertyType.STRING,
    "referrer": PropertyType.STRING,
    "utm_source": PropertyType.STRING,
    "utm_medium": PropertyType.STRING,
    "utm_campaign": PropertyType.STRING,
    "utm_content": PropertyType.STRING,
    "utm_term": PropertyType.STRING,
    "channel": PropertyType.STRING,
    "campaign": PropertyType.STRING,
    "source_system": PropertyType.STRING,
    "advisor_id": PropertyType.STRING,
    "order_id": PropertyType.STRING,
    "amount": PropertyType.NUMBER,
    "course_id": PropertyType.STRING,
    "order_type": PropertyType.STRING,
    "class_id": PropertyType.STRING,
    "lesson_id": PropertyType.STRING,
    "starts_at": PropertyType.TIME,
    "mode": PropertyType.STRING,
    "duration_s": PropertyType.NUMBER,
    "question_id": PropertyType.STRING,
    "knowledge_point": PropertyType.STRING,
    "correct": PropertyType.BOOLEAN,
    "score": PropertyType.NUMBER,
    "referrer_id": PropertyType.STRING,
    "institution_id": PropertyType.STRING,
    "school_id": PropertyType.STRING,
    "platform": PropertyType.STRING,
}

GROUP_SLOTS = 5
PROPERTY_COLUMN_PREFIX = "prop_"
_COLUMN_SAFE = re.compile(r"^[a-z][a-z0-9_]{0,58}$")


def property_column(name: str) -> str:
    """The column that holds a typed property. Only names safe as identifiers can be typed."""
    if not _COLUMN_SAFE.match(name):
        raise ValueError(
            f"property {name!r} cannot get a typed column: use lower-case letters, digits and _ "
            "(starting with a letter, at most 59 characters)"
        )
    return PROPERTY_COLUMN_PREFIX + name
