"""Webhook delivery: the rendered JSON body, POSTed with

    Idempotency-Key: j<journey>-e<entry>-s<step>     (the same on every try of this delivery)
    X-EduPulse-Timestamp: <unix seconds>
    X-EduPulse-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed by the channel's secret>

2xx is delivered; 408, 429 and 5xx (and network errors) are retried; any other answer is a permanent
failure. Redirects are not followed (the destination was checked, its redirect target was not)."""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson

from edupulse.journeys.http_client import Client, SendError
from edupulse.journeys.outbox import Outcome, Outgoing

RETRIED_STATUSES = frozenset({408, 425, 429})


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What a receiver recomputes to check a request came from EduPulse."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def post(client: Client, out: Outgoing, secret: str, timeout: float) -> Outcome:
    request = out.request
    body = orjson.dumps(request.get("body"))
    timestamp = str(int(time.time()))
    headers = {**request.get("headers", {}), "Content-Type": "application/json",
               "Idempotency-Key": out.idempotency_key, "X-EduPulse-Timestamp": timestamp,
               "X-EduPulse-Signature": signature(secret, timestamp, body)}
    try:
        response = client.post(request["url"], body, headers, timeout)
    except SendError as exc:
        return Outcome(False, str(exc))
    detail = f"HTTP {response.status_code}: {response.text[:300]}"
    if 200 <= response.status_code < 300:
        return Outcome(True, detail)
    return Outcome(False, detail, retry=response.status_code >= 500 or response.status_code in RETRIED_STATUSES)
