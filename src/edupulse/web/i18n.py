"""Chinese and English: message catalogues are data (messages/<lang>.json, plus one file per feature in
messages/<lang>/*.json so that features keep their words beside each other); the language comes from the
`edupulse_lang` cookie, else from the browser's Accept-Language, else Chinese."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from fastapi import Request

LANGUAGES = ("zh", "en")
LANG_COOKIE = "edupulse_lang"
MESSAGES_DIR = Path(__file__).parent / "messages"


def catalogue_files(lang: str) -> list[Path]:
    """The files of one language's catalogue: the main file, then the feature files by name."""
    return [MESSAGES_DIR / f"{lang}.json", *sorted((MESSAGES_DIR / lang).glob("*.json"))]


def catalogue(lang: str) -> dict[str, str]:
    """One language's own keys, from all of its files (a key defined twice is an error)."""
    found: dict[str, str] = {}
    for path in catalogue_files(lang):
        part = json.loads(path.read_text(encoding="utf-8"))
        twice = set(found) & set(part)
        if twice:
            raise ValueError(f"{path.name}: keys defined in another catalogue file too: {sorted(twice)}")
        found.update(part)
    return found


@cache
def messages(lang: str) -> dict[str, str]:
    """The catalogue of one language; keys missing from it fall back to English."""
    english = catalogue("en")
    if lang == "en":
        return english
    return {**english, **catalogue(lang)}


def from_accept_language(header: str) -> str:
    """The first supported language of an Accept-Language header, by quality (zh-CN, zh-TW... are zh)."""
    choices = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and quality > 0:
            choices.append((-quality, position, base))
    return min(choices)[2] if choices else "zh"


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return from_accept_language(request.headers.get("accept-language", ""))
