"""The special data types of xAPI 1.0.3 (Data, section 4): IRIs, UUIDs, RFC 5646 language tags, ISO 8601
timestamps and durations, and the error every refused value raises.

Each checker takes the value and the path of the property it came from, and raises `StatementError` naming that
path and what is wrong, so a statement, a query parameter and a document parameter are refused the same way.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

MAX_IRI = 2048

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
# ISO 8601:2004 4.4.3.2: weeks stand alone (PnW); otherwise years, months, days, then T and hours, minutes,
# seconds, each optional but at least one, and a T only before a time part. Only the last part may have a fraction.
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:[.,]\d+)?)W"
    r"|(?=\d|T\d)(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?)$"
)
_FRACTION_LAST = re.compile(r"[.,]\d+[A-Z].*\d")  # a fraction followed by another number: not the last part
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}(:?\d{2})?)?$")
_BASIC_TIMESTAMP = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?(\.\d+)?(Z|[+-]\d{2}(?:\d{2})?)?$")

# RFC 5646 section 2.1 (the langtag production; grandfathered tags and private use on their own as well).
_ALNUM = "[A-Za-z0-9]"
_LANGTAG = (
    rf"(?P<language>[A-Za-z]{{2,3}}(?:-[A-Za-z]{{3}}){{0,3}}|[A-Za-z]{{4}}|[A-Za-z]{{5,8}})"
    rf"(?:-[A-Za-z]{{4}})?"
    rf"(?:-(?:[A-Za-z]{{2}}|\d{{3}}))?"
    rf"(?P<variants>(?:-(?:{_ALNUM}{{5,8}}|\d{_ALNUM}{{3}}))*)"
    rf"(?P<extensions>(?:-[0-9A-WY-Za-wy-z](?:-{_ALNUM}{{2,8}})+)*)"
    rf"(?:-[xX](?:-{_ALNUM}{{1,8}})+)?"
)
_LANGUAGE_TAG = re.compile(rf"^(?:{_LANGTAG}|[xX](?:-{_ALNUM}{{1,8}})+)$")
_GRANDFATHERED = frozenset(t.lower() for t in (
    "en-GB-oed", "i-ami", "i-bnn", "i-default", "i-enochian", "i-hak", "i-klingon", "i-lux", "i-mingo", "i-navajo",
    "i-pwn", "i-tao", "i-tay", "i-tsu", "sgn-BE-FR", "sgn-BE-NL", "sgn-CH-DE", "art-lojban", "cel-gaulish",
    "no-bok", "no-nyn", "zh-guoyu", "zh-hakka", "zh-min", "zh-min-nan", "zh-xiang"))


class StatementError(ValueError):
    """Why a statement (or a request parameter) was refused: `location` names where, `reason` says what."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


def type_name(value: Any) -> str:
    return "null" if value is None else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise StatementError(path, f"must be a string, got {type_name(value)}")
    return value


_KNOWN_IRIS: dict[str, None] = {}  # IRIs found good lately: statements repeat their verbs, activities and agents
KNOWN_IRIS = 20_000


def iri(value: Any, path: str) -> str:
    """An absolute IRI (scheme:rest, no spaces)."""
    if value.__class__ is str and value in _KNOWN_IRIS:
        return value
    text = string(value, path)
    if len(text) > MAX_IRI:
        raise StatementError(path, f"is {len(text)} characters long; at most {MAX_IRI}")
    if not _IRI.match(text):
        raise StatementError(path, f"{text[:60]!r} is not an absolute IRI such as http://adlnet.gov/expapi/verbs/completed")
    if len(_KNOWN_IRIS) >= KNOWN_IRIS:
        _KNOWN_IRIS.clear()
    _KNOWN_IRIS[text] = None
    return text


def uuid_text(value: Any, path: str) -> str:
    """A UUID in its standard string form, returned in lower case."""
    text = string(value, path)
    if not _UUID.match(text):
        raise StatementError(path, f"{text[:60]!r} is not a UUID such as 9e13cefd-53d3-4eac-b5ed-2cf6693903bb")
    return text.lower()


def sha1_text(value: Any, path: str) -> str:
    if not _SHA1.match(string(value, path)):
        raise StatementError(path, "must be the 40 hexadecimal characters of a SHA-1 digest")
    return str(value)


@functools.lru_cache(maxsize=4096)
def is_language_tag(tag: str) -> bool:
    """Whether `tag` is a well-formed RFC 5646 language tag (section 2.1, with the rule of section 2.2.6 that an
    extension's singleton and a variant appear at most once)."""
    if tag.lower() in _GRANDFATHERED:
        return True
    match = _LANGUAGE_TAG.match(tag)
    if match is None:
        return False
    if match.group("variants"):
        variants = [v.lower() for v in match.group("variants").split("-") if v]
        if len(set(variants)) != len(variants):
            return False
    if match.group("extensions"):
        singletons = [p.lower() for p in match.group("extensions").split("-") if len(p) == 1]
        if len(set(singletons)) != len(singletons):
            return False
    return True


def language_tag(value: Any, path: str) -> str:
    text = string(value, path)
    if not is_language_tag(text):
        raise StatementError(path, f"{text[:40]!r} is not an RFC 5646 language tag such as en-US or zh-CN")
    return text


def language_map(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise StatementError(path, f'must be a language map such as {{"en-US": "completed"}}, got {type_name(value)}')
    for tag, text in value.items():
        if not is_language_tag(tag):
            raise StatementError(f"{path}.{tag}", "is not an RFC 5646 language tag such as en-US or zh-CN")
        string(text, f"{path}.{tag}")


def parse_timestamp(value: Any, path: str) -> dt.datetime:
    """An ISO 8601 timestamp (extended, or basic as 20260901T083000Z); without an offset it is read as UTC; the
    offset -00:00 is refused (Data 4.5)."""
    text = string(value, path)
    basic = _BASIC_TIMESTAMP.match(text)
    if basic:
        y, mo, d, h, mi, s, frac, zone = basic.groups()
        text = f"{y}-{mo}-{d}T{h}:{mi}:{s or '00'}{frac or ''}{zone or ''}"
    if not _TIMESTAMP.match(text) or text.endswith(("-00:00", "-0000", "-00")):
        raise StatementError(path, f"{text[:60]!r} is not an ISO 8601 timestamp such as 2026-09-01T08:30:00.000Z")
    try:
        parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        raise StatementError(path, f"{text[:60]!r} is not a valid date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=4096)
def duration_seconds(text: str) -> float | None:
    """Seconds of an ISO 8601 duration (a month counted as 30 days, a year as 365); None when not one."""
    match = _DURATION.match(text)
    if not match or _FRACTION_LAST.search(text):
        return None
    parts = {k: float(v.replace(",", ".")) if v else 0.0 for k, v in match.groupdict().items()}
    days = parts["years"] * 365 + parts["months"] * 30 + parts["weeks"] * 7 + parts["days"]
    return (days * 24 + parts["hours"]) * 3600 + parts["minutes"] * 60 + parts["seconds"]
