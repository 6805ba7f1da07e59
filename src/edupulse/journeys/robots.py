"""Group-robot messages in the formats DingTalk and WeCom document for their custom robots.

DingTalk: POST {"msgtype": "text", "text": {"content": ...}, "at": {"atMobiles": [...], "isAtAll": false}} (or
"markdown" with "title" and "text") to the robot's webhook URL; a robot with signing gets `&timestamp=T&sign=S`,
S the URL-encoded base64 of HMAC-SHA256(key = secret, message = T + "\\n" + secret), T in milliseconds.
WeCom: POST {"msgtype": "text", "text": {"content": ..., "mentioned_mobile_list": [...]}} (or "markdown" with
"content") to the robot's webhook URL (its key is part of the URL).

Both answer HTTP 200 with {"errcode": 0, "errmsg": "ok"}; another errcode is a failure: rate limits
(DingTalk 130101, WeCom 45009) and 5xx are retried, others are not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote_plus

import orjson

from edupulse.journeys.http_client import Client, SendError
from edupulse.journeys.outbox import Outcome, Outgoing

RATE_LIMITED = frozenset({130101, 45009, -1})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    message = f"{timestamp_ms}\n{secret}".encode()
    return quote_plus(base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()))


def dingtalk_body(request: dict[str, Any]) -> dict[str, Any]:
    at = {"atMobiles": list(request.get("at_mobiles") or []), "isAtAll": False}
    if request.get("format") == "markdown":
        return {"msgtype": "markdown", "markdown": {"title": request.get("title") or request["text"][:20],
                                                    "text": request["text"]}, "at": at}
    return {"msgtype": "text", "text": {"content": request["text"]}, "at": at}


def wecom_body(request: dict[str, Any]) -> dict[str, Any]:
    if request.get("format") == "markdown":
        return {"msgtype": "markdown", "markdown": {"content": request["text"]}}
    return {"msgtype": "text", "text": {"content": request["text"],
                                        "mentioned_mobile_list": list(request.get("at_mobiles") or [])}}


def robot_url(kind: str, secrets: dict[str, str]) -> str:
    url = secrets["webhook_url"]
    secret = secrets.get("signing_secret")
    if kind == "dingtalk" and secret:
        stamp = int(time.time() * 1000)
        url += ("&" if "?" in url else "?") + f"timestamp={stamp}&sign={dingtalk_sign(secret, stamp)}"
    return url


def post(client: Client, kind: str, url: str, out: Outgoing, timeout: float) -> Outcome:
    body = dingtalk_body(out.request) if kind == "dingtalk" else wecom_body(out.request)
    try:
        response = client.post(url, orjson.dumps(body), {"Content-Type": "application/json",
                                                          "Idempotency-Key": out.idempotency_key}, timeout)
    except SendError as exc:
        return Outcome(False, str(exc))
    detail = f"HTTP {response.status_code}: {response.text[:300]}"
    if response.status_code >= 500 or response.status_code in (408, 429):
        return Outcome(False, detail)
    if response.status_code != 200:
        return Outcome(False, detail, retry=False)
    try:
        code = int(orjson.loads(response.content).get("errcode", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return Outcome(False, f"not a robot's answer: {detail}", retry=False)
    if code == 0:
        return Outcome(True, detail)
    return Outcome(False, detail, retry=code in RATE_LIMITED)
