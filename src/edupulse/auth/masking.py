"""Personal data in results: properties marked personal (phone, name, ID numbers, WeChat ids, ...) are
masked for callers without the `personal:view` permission (and for share links), as are identities of those
types (a mobile identity is a phone number). Filters still compare the real values, so a
phone number can be matched (e.g. `person.phone eq 13812345678`) without being shown, and `match_token`
gives a stable keyed hash of a phone number for joining exports without revealing it. Comparisons that
could reveal a masked value a piece at a time (ranges, `contains`, `regex`, sorting, prefix search) are
refused to such callers (`personal_probe`)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

DEFAULT_PERSONAL = frozenset({
    "phone", "mobile", "phone_number", "name", "real_name", "full_name", "student_name", "parent_name",
    "id_number", "id_card", "passport", "wechat", "wechat_id", "wechat_unionid", "unionid", "openid",
    "email", "address",
})
PHONE_LIKE = frozenset({"phone", "mobile", "phone_number"})
MASK = "***"


def base_name(prop: str) -> str:
    """`person.phone` and `event.phone` are the property `phone`."""
    return prop.split(".", 1)[1] if prop.startswith(("person.", "event.")) else prop


def mask_value(prop: str, value: Any) -> Any:
    """A shown-safe form of a personal value: phones keep their first 3 and last 4 digits (138****5678),
    names their first character, other ids their last 2 characters."""
    if value is None:
        return None
    text = str(value)
    name = base_name(prop)
    if name in PHONE_LIKE:
        digits = re.sub(r"\D", "", text)
        return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 8 else MASK
    if name in {"name", "real_name", "full_name", "student_name", "parent_name"}:
        return text[:1] + "*" * max(1, len(text) - 1)
    if name == "email" and "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    return MASK + text[-2:] if len(text) > 6 else MASK


def match_token(phone: str, secret: bytes) -> str:
    """A keyed hash of a normalized phone number (digits only, without a +86/86 prefix): equal phones give
    equal tokens, and nobody without the installation's secret can turn a token back into the number."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return hmac.new(secret, digits.encode(), hashlib.sha256).hexdigest()[:32]


class PersonalMasker:
    """Masks the values of personal properties (edupulse.queries.results.Masker): query results walk their
    user-data fields (breakdown values, properties, identities, path nodes, channels) through it."""

    def __init__(self, personal: Iterable[str] = DEFAULT_PERSONAL) -> None:
        self.names = frozenset(personal)

    def personal(self, prop: str) -> bool:
        return base_name(prop) in self.names

    def value(self, prop: str, value: Any) -> Any:
        return mask_value(prop, value)

    def personal_order(self, query: Any) -> str | None:
        """The personal property a query sorts by, or None: in what order masked values come would reveal them
        (sorted by phone, the neighbours of a known number), so callers without `personal:view` cannot sort so."""
        if not isinstance(query, dict) or query.get("kind") != "persons":
            return None
        order = query.get("order_by")
        return order if isinstance(order, str) and self.personal(order) else None


MASKER = PersonalMasker()

# Comparisons that answer "is the value in this range / does it contain this" rather than "is it exactly
# this": asked again and again, they reveal a masked value digit by digit.
PROBING_OPS = frozenset({"contains", "not_contains", "regex", "gt", "gte", "lt", "lte", "between"})


def _filtered_name(prop: str) -> str | None:
    """The property a filter compares: `phone`, `person.phone`, `event.phone` and `group.school.phone` all
    compare `phone`; `group.school` (a group's key) and `tag.X` compare no property."""
    if prop.startswith("group."):
        parts = prop.split(".", 2)
        return parts[2] if len(parts) == 3 else None
    if prop.startswith("tag."):
        return None
    return base_name(prop)


def personal_probe(body: Any, masker: PersonalMasker = MASKER, where: str = "", *,
                   reads: bool = False) -> str | None:
    """Why a definition (a query, a segment...) may not be used by a caller without `personal:view`, or
    None: a filter comparing a personal property by range, `contains` or `regex` (which would reveal it a
    piece at a time). `eq`, `neq`, `in`, `not_in`, `is_set` and `is_not_set` stay allowed. With `reads`
    (definitions whose results are not masked, such as tags), also any use of a personal property that is
    not a filter: a tag whose value is a person's first phone would show it."""
    if isinstance(body, dict):
        prop, op = body.get("property"), body.get("op")
        name = _filtered_name(prop) if isinstance(prop, str) else None
        if name is not None and masker.personal(name):
            at = f"{where}: " if where else ""
            if isinstance(op, str) and op in PROBING_OPS:
                return (f"{at}comparing the personal property {prop} with {op} needs the personal:view "
                        "permission (repeated comparisons would reveal the masked value); use eq or in with "
                        "whole values, or ask an admin")
            if reads and op is None and "value" not in body:
                return (f"{at}reading the personal property {prop} needs the personal:view permission (the "
                        "values computed from it are not masked); ask an admin")
        for key, value in body.items():
            found = personal_probe(value, masker, f"{where}.{key}" if where else str(key), reads=reads)
            if found is not None:
                return found
    elif isinstance(body, list):
        for i, value in enumerate(body):
            found = personal_probe(value, masker, f"{where}.{i}" if where else str(i), reads=reads)
            if found is not None:
                return found
    return None


def personal_identity_types(masker: PersonalMasker = MASKER) -> list[str]:
    """Identity types whose values are personal (a mobile identity is a phone number): a persons search by
    a caller without `personal:view` matches them only whole, not by prefix."""
    return sorted(masker.names)


def personal_order_refusal(prop: str) -> str:
    """Why a caller without `personal:view` cannot sort by a personal property."""
    return (f"order_by {prop}: sorting by a personal property needs the personal:view permission (the order of "
            "the masked values would reveal them); sort by another property or leave order_by out")


def for_masked_caller(query: Any) -> tuple[str | None, Any]:
    """What a caller without `personal:view` may run of a query: (why it is refused, None) or (None, the
    query to run). Refused: sorting or comparing piece by piece on a personal property; a persons search
    matches personal identities only whole (a prefix search would reveal a phone number digit by digit)."""
    reason = MASKER.personal_order(query)
    if reason is not None:
        return personal_order_refusal(reason), None
    probe = personal_probe(query)
    if probe is not None:
        return probe, None
    if isinstance(query, dict) and query.get("kind") == "persons" and query.get("search") is not None:
        query = {**query, "whole_value_types": personal_identity_types()}
    return None, query
