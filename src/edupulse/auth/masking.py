"""Personal data in results: properties marked personal (phone, name, ID numbers, WeChat ids, ...) are
masked for callers without the `personal:view` permission. Filters still compare the real values, so a
phone number can be matched (e.g. `person.phone eq 13812345678`) without being shown, and `match_token`
gives a stable keyed hash of a phone number for joining exports without revealing it."""

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


def mask_result(result: Any, personal: Iterable[str] = DEFAULT_PERSONAL,
                breakdown: list[str] | None = None) -> Any:
    """A copy of a query result (or export rows) with personal values masked: any mapping entry whose key
    is a personal property, and breakdown values of personal properties (`breakdown`: the query's breakdown
    properties in order)."""
    names = frozenset(personal)
    positions = [i for i, p in enumerate(breakdown or []) if base_name(p) in names]
    return _walk(result, names, positions, breakdown or [])


def _walk(value: Any, names: frozenset[str], positions: list[int], breakdown: list[str]) -> Any:
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and base_name(key) in names and not isinstance(item, dict | list):
                out[key] = mask_value(key, item)
            elif key == "breakdown" and isinstance(item, list) and positions:
                out[key] = [mask_value(breakdown[i], v) if i in positions else v for i, v in enumerate(item)]
            else:
                out[key] = _walk(item, names, positions, breakdown)
        return out
    if isinstance(value, list):
        return [_walk(v, names, positions, breakdown) for v in value]
    return value
