"""Sending one delivery by its action: the channel's secrets are unsealed here and nowhere else, and every
destination is checked against the allowed hosts (the server's plus the project's) just before the call."""

from __future__ import annotations

import httpx

from edupulse.conf import JourneySettings
from edupulse.journeys import webhook
from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.destinations import DestinationRefused, check
from edupulse.journeys.outbox import Outcome, Outgoing


class Senders:
    """The `send` of the outbox: one method per action kind."""

    def __init__(self, channels: ChannelStore, settings: JourneySettings) -> None:
        self.channels, self.settings = channels, settings
        self.http = httpx.Client(timeout=settings.timeout_seconds, follow_redirects=False, trust_env=False)

    def allowed(self, project_id: int) -> list[str]:
        server = [h for h in self.settings.allowed_hosts.split(",") if h.strip()]
        return server + self.channels.settings(project_id).allowed_hosts

    def __call__(self, out: Outgoing) -> Outcome:
        method = getattr(self, f"send_{out.action}", None)
        if method is None:
            return Outcome(False, f"{out.action} messages cannot be sent by this server", retry=False)
        return method(out)

    def _channel(self, out: Outgoing, kind: str) -> tuple[str, dict[str, str]] | Outcome:
        name = out.request.get("channel")
        if not name:
            webhooks = [c.name for c in self.channels.all(out.project_id) if c.kind == kind]
            if len(webhooks) != 1:
                return Outcome(False, f"name the {kind} channel to use (the project has {len(webhooks)})", False)
            name = webhooks[0]
        found = self.channels.secrets_of(out.project_id, str(name))
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

    def close(self) -> None:
        self.http.close()
