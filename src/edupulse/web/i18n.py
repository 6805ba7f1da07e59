"""Chinese and English: message catalogues are data (messages/<lang>.json); the language comes from the
`edupulse_lang` cookie, else from the browser's Accept-Language, else Chinese."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from fastapi import Request

LANGUAGES = ("zh", "en")
LANG_COOKIE = "edupulse_lang"
MESSAGES_DIR = Path(__file__).parent / "messages"


@cache
def messages(lang: str) -> dict[str, str]:
    """The catalogue of one language; keys missing from it fall back to English."""
    english = json.loads((MESSAGES_DIR / "en.json").read_text(encoding="utf-8"))
    if lang == "en":
        return english
    return {**english, **json.loads((MESSAGES_DIR / f"{lang}.json").read_text(encoding="utf-8"))}


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
