"""The sign-in page (登录) in the layout's style and the visitor's language. It is a plain form that works
without JavaScript; governance's sign-in route (edupulse.api.signin) renders it and handles the POST."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from edupulse import __version__
from edupulse.web import i18n

WEB_DIR = Path(__file__).parent



@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(WEB_DIR / "templates")), autoescape=select_autoescape())


def reason_key(reason: str, locked_until: dt.datetime | None) -> str:
    """The message of a refused sign-in (the accounts module's reasons are English for logs and the API)."""
    if locked_until is not None:
        return "login.locked"
    if "disabled" in reason:
        return "login.disabled"
    return "login.failed"


def render_login(lang: str, message: str = "", email: str = "", detail: str = "") -> str:
    """The page; `message` is a message key (empty: none), `detail` extra words (a time) after it."""
    words = i18n.messages(lang)
    return _environment().get_template("login.html").render(
        t=words, lang=lang, message=words.get(message, "") if message else "", detail=detail, email=email,
        version=__version__, other="en" if lang == "zh" else "zh")
