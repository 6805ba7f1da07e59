"""Sending one delivery by its action: the channel's secrets are unsealed here and nowhere else, and every
destination is checked against the allowed hosts (the server's plus the project's) just before the call."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from edupulse.conf import JourneySettings
from edupulse.journeys import mail, robots, webhook
from edupulse.journeys.audience import TagSource
from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.destinations import DestinationRefused, check
from edupulse.journeys.http_client import Client
from edupulse.journeys.outbox import Outcome, Outgoing
from edupulse.journeys.tasks import TaskQueue

# writes person properties as a profile_set record through ingestion: (project, identities, properties,
# insert id) -> None, or the reason it was refused
CACHE_SECONDS = 5.0
SetProperties = Callable[[int, list[tuple[str, str]], dict[str, Any], str], str | None]


class RateLimits:
    """Messages per minute per channel kind of a project (its settings' `per_minute`): a message over the limit
    is held until the minute has room (not dropped, no try counted). Counted in this process, which is the one
    that sends."""

    def __init__(self, limits_of: Callable[[int], dict[str, int]]) -> None:
        self.limits_of = limits_of
        self._sent: dict[tuple[int, str], list[float]] = {}
        self._limits: dict[int, tuple[float, dict[str, int]]] = {}
        self._lock = threading.Lock()

    def check(self, project_id: int, action: str) -> Outcome | None:
        stamp, limits = self._limits.get(project_id, (0.0, {}))
        if time.monotonic() - stamp > 5:
            limits = self.limits_of(project_id)
            self._limits[project_id] = (time.monotonic(), limits)
        limit = limits.get(action)
        if not limit:
            return None
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._sent.get((project_id, action), []) if now - t < 60]
            if len(recent) >= limit:
                self._sent[(project_id, action)] = recent
                return Outcome(False, f"rate limit: {limit} {action} messages per minute",
                               defer_seconds=60 - (now - recent[0]) + 0.01)
            recent.append(now)
            self._sent[(project_id, action)] = recent
        return None


class Senders:
    """The `send` of the outbox: one method per action kind."""

    def __init__(self, channels: ChannelStore, settings: JourneySettings, tasks: TaskQueue | None = None,
                 set_properties: SetProperties | None = None, tags: TagSource | None = None) -> None:
        self.channels, self.settings = channels, settings
        self.tasks, self.set_properties, self.tags = tasks, set_properties, tags
        self.http = Client(settings.timeout_seconds)
        self.limits = RateLimits(lambda project_id: self.project_settings(project_id).per_minute)
        self._cache: dict[tuple[str, int, str], tuple[float, Any]] = {}

    def _cached(self, kind: str, project_id: int, name: str, read: Callable[[], Any]) -> Any:
        """Channels and settings read again after a few seconds: a send should not cost two database reads."""
        key = (kind, project_id, name)
        stamp, found = self._cache.get(key, (0.0, None))
        if time.monotonic() - stamp > CACHE_SECONDS:
            found = read()
            self._cache[key] = (time.monotonic(), found)
        return found

    def forget(self) -> None:
        """Read channels and settings again (an admin changed them in this process)."""
        self._cache.clear()

    def project_settings(self, project_id: int) -> Any:
        return self._cached("settings", project_id, "", lambda: self.channels.settings(project_id))

    def allowed(self, project_id: int) -> list[str]:
        server = [h for h in self.settings.allowed_hosts.split(",") if h.strip()]
        return server + self.project_settings(project_id).allowed_hosts

    def __call__(self, out: Outgoing) -> Outcome:
        limited = self.limits.check(out.project_id, out.action)
        if limited is not None:
            return limited
        method = getattr(self, f"send_{out.action}", None)
        if method is None:
            return Outcome(False, f"{out.action} messages cannot be sent by this server", retry=False)
        return method(out)

    def _channel(self, out: Outgoing, kind: str) -> tuple[str, dict[str, str]] | Outcome:
        name = out.request.get("channel")
        if not name:
            webhooks = [c.name for c in self._cached("all", out.project_id, "", lambda: self.channels.all(
                out.project_id)) if c.kind == kind]
            if len(webhooks) != 1:
                return Outcome(False, f"name the {kind} channel to use (the project has {len(webhooks)})", False)
            name = webhooks[0]
        found = self._cached("secrets", out.project_id, str(name),
                             lambda: self.channels.secrets_of(out.project_id, str(name)))
        if found is None or found[0].kind != kind:
            return Outcome(False, f"channel {name!r} is not a {kind} channel of this project", retry=False)
        return str(name), found[1]

    def send_webhook(self, out: Outgoing) -> Outcome:
        channel = self._channel(out, "webhook")
        if isinstance(channel, Outcome):
            return channel
        try:
            check(out.request["url"], self.allowed(out.project_id))
        except DestinationRefused as exc:
            return Outcome(False, str(exc), retry=False)
        return webhook.post(self.http, out, channel[1]["signing_secret"], self.settings.timeout_seconds)

    def send_email(self, out: Outgoing) -> Outcome:
        channel = self._channel(out, "smtp")
        if isinstance(channel, Outcome):
            return channel
        found = self._cached("secrets", out.project_id, channel[0], lambda: None)[0]
        return mail.send(out, found.config, channel[1].get("password", ""), self.settings.timeout_seconds)

    def _robot(self, out: Outgoing, kind: str) -> Outcome:
        channel = self._channel(out, kind)
        if isinstance(channel, Outcome):
            return channel
        url = robots.robot_url(kind, channel[1])
        try:
            check(url, self.allowed(out.project_id))
        except DestinationRefused as exc:
            return Outcome(False, str(exc), retry=False)
        return robots.post(self.http, kind, url, out, self.settings.timeout_seconds)

    def send_dingtalk(self, out: Outgoing) -> Outcome:
        return self._robot(out, "dingtalk")

    def send_wecom(self, out: Outgoing) -> Outcome:
        return self._robot(out, "wecom")

    def send_task(self, out: Outgoing) -> Outcome:
        if self.tasks is None:
            return Outcome(False, "advisor tasks cannot be made by this server", retry=False)
        return self.tasks.create(out, dt.datetime.now(dt.UTC))

    def send_set_property(self, out: Outgoing) -> Outcome:
        if self.set_properties is None:
            return Outcome(False, "person properties cannot be set by this server", retry=False)
        ids = [(str(t), str(v)) for t, v in out.request.get("ids", [])]
        refused = self.set_properties(out.project_id, ids, {out.request["property"]: out.request["value"]},
                                      out.idempotency_key)
        return Outcome(refused is None, refused or "stored", retry=False)

    def send_set_tag(self, out: Outgoing) -> Outcome:
        setter = getattr(self.tags, "set_tag", None)
        if setter is None:
            return Outcome(False, "tags cannot be set by this server", retry=False)
        return cast(Outcome, setter(out))

    def close(self) -> None:
        self.http.close()
