"""Channels (where messages go) and a project's journey settings, in the metadata database. Admins manage
both: a channel's secret values (SMTP password, robot webhook and signing secret, webhook signing secret) are
sealed with the server's key and never shown again; `to_json` says only which secrets are set."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import Field, ValidationError, field_validator
from sqlalchemy import select

from edupulse.journeys.destinations import parse_allowed
from edupulse.journeys.model import Caps, QuietHours, SpecError
from edupulse.journeys.vault import SecretBox
from edupulse.meta.db import MetadataStore
from edupulse.meta.journey_models import JourneyChannel, JourneySettingsRow
from edupulse.queries.common import Model

Kind = Literal["webhook", "smtp", "dingtalk", "wecom"]
# the secret values of each kind (required ones first) and the shown settings
SECRETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "webhook": (("signing_secret",), ()),
    "smtp": ((), ("password",)),
    "dingtalk": (("webhook_url",), ("signing_secret",)),
    "wecom": (("webhook_url",), ()),
}
CONFIG: dict[str, tuple[str, ...]] = {
    "webhook": (), "smtp": ("host", "port", "sender", "username", "security"), "dingtalk": (), "wecom": (),
}


class ChannelBody(Model):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Kind
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)

    @field_validator("secrets")
    @classmethod
    def _short(cls, value: dict[str, str]) -> dict[str, str]:
        if any(len(v) > 4000 for v in value.values()):
            raise ValueError("a secret value has at most 4000 characters")
        return value


class ProjectJourneySettings(Model):
    """Guard rails of every journey of a project (all off by default)."""

    allowed_hosts: list[str] = Field(default_factory=list, max_length=100)
    quiet_hours: QuietHours | None = None
    caps: Caps = Caps()
    do_not_disturb_tag: str | None = Field(None, max_length=100)
    per_minute: dict[str, int] = Field(default_factory=dict, description="messages per minute per channel kind")

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        parse_allowed(value)
        return value


@dataclass(frozen=True)
class Channel:
    id: int
    project_id: int
    name: str
    kind: str
    config: dict[str, Any]
    secret_names: tuple[str, ...]
    updated_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "config": self.config,
                "secrets_set": list(self.secret_names), "updated_at": self.updated_at.isoformat()}


def _problems(exc: ValidationError, prefix: str) -> SpecError:
    errors = exc.errors()
    where = [".".join(str(p) for p in (prefix, *e["loc"])) for e in errors]
    return SpecError(where[0], "; ".join(f"{w}: {e['msg'].removeprefix('Value error, ')}"
                                         for w, e in zip(where, errors, strict=True)))


class ChannelStore:
    def __init__(self, meta: MetadataStore, box: SecretBox) -> None:
        self.meta, self.box = meta, box

    def _channel(self, row: JourneyChannel) -> Channel:
        names = tuple(sorted(orjson.loads(self.box.unseal(row.secret) or "{}"))) if row.secret else ()
        updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=dt.UTC)
        return Channel(row.id, row.project_id, row.name, row.kind, dict(row.config), names, updated)

    def all(self, project_id: int) -> list[Channel]:
        with self.meta.session() as s:
            rows = s.scalars(select(JourneyChannel).where(JourneyChannel.project_id == project_id)
                             .order_by(JourneyChannel.name))
            return [self._channel(r) for r in rows]

    def get(self, project_id: int, name: str) -> Channel | None:
        return next((c for c in self.all(project_id) if c.name == name), None)

    def secrets_of(self, project_id: int, name: str) -> tuple[Channel, dict[str, str]] | None:
        """A channel with its secret values (for sending only)."""
        with self.meta.session() as s:
            row = s.scalar(select(JourneyChannel).where(JourneyChannel.project_id == project_id,
                                                        JourneyChannel.name == name))
            if row is None:
                return None
            return self._channel(row), dict(orjson.loads(self.box.unseal(row.secret) or "{}"))

    def save(self, project_id: int, data: Any, author: str, now: dt.datetime) -> Channel:
        """Create or replace a channel; secrets not given keep their stored values."""
        try:
            body = ChannelBody.model_validate(data)
        except ValidationError as exc:
            raise _problems(exc, "channel") from None
        required, optional = SECRETS[body.kind]
        unknown = set(body.secrets) - set(required) - set(optional)
        if unknown:
            raise SpecError(f"secrets.{sorted(unknown)[0]}", f"a {body.kind} channel keeps the secrets "
                            f"{', '.join((*required, *optional)) or '(none)'}")
        bad = set(body.config) - set(CONFIG[body.kind])
        if bad:
            raise SpecError(f"config.{sorted(bad)[0]}", f"a {body.kind} channel has the settings "
                            f"{', '.join(CONFIG[body.kind]) or '(none)'}")
        if body.kind == "smtp" and not body.config.get("host"):
            raise SpecError("config.host", "an SMTP channel needs its server's host")
        with self.meta.session() as s, s.begin():
            row = s.scalar(select(JourneyChannel).where(JourneyChannel.project_id == project_id,
                                                        JourneyChannel.name == body.name))
            kept = orjson.loads(self.box.unseal(row.secret) or "{}") if row is not None and row.kind == body.kind \
                else {}
            secrets = {**kept, **{k: v for k, v in body.secrets.items() if v}}
            missing = [k for k in required if not secrets.get(k)]
            if missing:
                raise SpecError(f"secrets.{missing[0]}", f"a {body.kind} channel needs {missing[0]}")
            sealed = self.box.seal(orjson.dumps(secrets).decode())
            if row is None:
                row = JourneyChannel(project_id=project_id, name=body.name, kind=body.kind, config=body.config,
                                     secret=sealed, created_by=author, created_at=now, updated_at=now)
                s.add(row)
            else:
                row.kind, row.config, row.secret, row.updated_at = body.kind, body.config, sealed, now
            s.flush()
            return self._channel(row)

    def delete(self, project_id: int, name: str) -> Channel:
        with self.meta.session() as s, s.begin():
            row = s.scalar(select(JourneyChannel).where(JourneyChannel.project_id == project_id,
                                                        JourneyChannel.name == name))
            if row is None:
                raise SpecError("channel", f"no channel named {name!r} in this project", 404)
            gone = self._channel(row)
            s.delete(row)
            return gone

    # project settings ---------------------------------------------------------------------------

    def settings(self, project_id: int) -> ProjectJourneySettings:
        with self.meta.session() as s:
            row = s.get(JourneySettingsRow, project_id)
            return ProjectJourneySettings.model_validate(row.value) if row else ProjectJourneySettings()

    def save_settings(self, project_id: int, data: Any, now: dt.datetime) -> ProjectJourneySettings:
        try:
            value = ProjectJourneySettings.model_validate(data)
        except (ValidationError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise _problems(exc, "settings") from None
            raise SpecError("settings.allowed_hosts", str(exc)) from None
        with self.meta.session() as s, s.begin():
            row = s.get(JourneySettingsRow, project_id)
            dumped = value.model_dump(mode="json", exclude_none=True)
            if row is None:
                s.add(JourneySettingsRow(project_id=project_id, value=dumped, updated_at=now))
            else:
                row.value, row.updated_at = dumped, now
        return value
