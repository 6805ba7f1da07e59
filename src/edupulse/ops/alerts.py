"""Alerts on the real-time board: each hour, for every enabled alert, the count of its event (of one channel:
the person property `channel`) in the last complete hour of the project's time zone is checked

- `threshold`: above or below a value;
- `anomaly`: outside its usual band for that hour of the week (the same hour in the `weeks` weeks before,
  mean ± `band` standard deviations: edupulse.stats.band).

An alert that changes state (ok → firing, firing → ok) is delivered once to its webhook (a JSON POST), or with
`channel:NAME` as its address through the project's journey channel NAME (a DingTalk or WeCom robot, by the
journeys' senders: their allowed hosts and signatures), and the change is recorded with how the delivery
went; an alert whose state stays the same sends nothing. The counts come from the query service (one trends
query per alert and hour). `AlertJob` is the scheduler's job
(ops/scheduler.py): due once per hour."""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from edupulse.journeys.outbox import Outcome, Outgoing
from edupulse.meta.alerts import AlertStore
from edupulse.queries.common import Filter
from edupulse.queries.trends import TrendsResponse
from edupulse.stats.band import Band, expected_band

if TYPE_CHECKING:
    from edupulse.meta.db import ProjectInfo
    from edupulse.queries.service import QueryService
    from edupulse.runtime import Platform

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 5.0
CHANNEL_PREFIX = "channel:"
ROBOTS = ("dingtalk", "wecom")
STATE_WORDS = {"firing": "告警 firing", "ok": "恢复 back to normal"}


class ChannelSend(Protocol):
    """The journeys' senders (edupulse.journeys.senders.Senders): the project's channels, and one send."""

    channels: Any

    def __call__(self, out: Outgoing) -> Outcome: ...
FILTER: TypeAdapter[Filter] = TypeAdapter(Filter)


class AlertSpec(BaseModel):
    """What an alert checks; `value` and `op` for thresholds, `band` (k) and `weeks` for anomalies."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    event: str = Field(min_length=1, max_length=100)
    filters: list[dict[str, Any]] = Field(default_factory=list, max_length=20,
                                          description="property filters, as in an analysis")
    channel: str | None = Field(None, min_length=1, max_length=200, description="only persons of this channel")
    kind: Literal["threshold", "anomaly"]
    op: Literal["above", "below"] | None = None
    value: float | None = Field(None, ge=0, le=1e12)
    band: float = Field(3.0, ge=0.5, le=10, description="standard deviations around the usual value")
    weeks: int = Field(8, ge=3, le=52, description="earlier weeks the usual value is taken from")
    webhook_url: str | None = Field(None, max_length=2000, description="an http(s) address, or channel:NAME (a "
                                    "DingTalk or WeCom robot channel of the project's journeys)")
    enabled: bool = True

    @field_validator("filters")
    @classmethod
    def _filters(cls, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [FILTER.validate_python(f).model_dump(mode="json", by_alias=True, exclude_none=True) for f in filters]

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://", CHANNEL_PREFIX)):
            raise ValueError("deliver to an http:// or https:// address, or to channel:NAME (a DingTalk or WeCom "
                             "robot channel of the project's journeys)")
        if url is not None and url.startswith(CHANNEL_PREFIX) and not url[len(CHANNEL_PREFIX):]:
            raise ValueError("channel:NAME needs the channel's name")
        return url

    @model_validator(mode="after")
    def _complete(self) -> AlertSpec:
        if self.kind == "threshold" and (self.op is None or self.value is None):
            raise ValueError("a threshold alert needs op (above or below) and value")
        return self

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


@dataclass(frozen=True)
class Check:
    """One hour's check of an alert."""

    hour: str  # local wall-clock start of the hour, YYYY-MM-DDTHH:00
    value: float
    firing: bool
    band: Band | None

    @property
    def state(self) -> str:
        return "firing" if self.firing else "ok"


def last_complete_hour(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The start (local, naive wall clock) of the last hour of the zone that is over at `now`."""
    local = now.astimezone(tz).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return local - dt.timedelta(hours=1)


def hourly_counts(service: QueryService, project: ProjectInfo, spec: AlertSpec, hour: dt.datetime,
                  now: dt.datetime | None = None) -> dict[str, float]:
    """Counts per local hour label from `weeks` weeks before `hour` to `hour` (one trends query)."""
    filters = list(spec.filters)
    if spec.channel is not None:
        filters.append({"property": "person.channel", "op": "eq", "value": spec.channel})
    start = (hour - dt.timedelta(weeks=spec.weeks)).date()
    query = {"kind": "trends", "granularity": "hour", "series": [{"event": spec.event, "filters": filters}],
             "date_range": {"date_from": start.isoformat(), "date_to": hour.date().isoformat()}}
    result = service.run(project, query, now=now).result
    assert isinstance(result, TrendsResponse)
    return {label: float(v or 0) for label, v in zip(result.buckets, result.series[0].data, strict=True)}


def check(spec: AlertSpec, counts: dict[str, float], hour: dt.datetime) -> Check:
    """Whether the alert fires for `hour`, from the counts of hourly_counts (pure)."""
    label = hour.strftime("%Y-%m-%dT%H:00")
    value = counts.get(label, 0.0)
    if spec.kind == "threshold":
        assert spec.value is not None
        firing = value > spec.value if spec.op == "above" else value < spec.value
        return Check(label, value, firing, None)
    history = [counts.get((hour - dt.timedelta(weeks=w)).strftime("%Y-%m-%dT%H:00"), 0.0)
               for w in range(1, spec.weeks + 1)]
    band = expected_band(history, spec.band)
    return Check(label, value, band.outside(value), band)


def deliver(url: str, payload: dict[str, Any]) -> str | None:
    """POST the payload as JSON; the error (None: delivered, a 2xx answer)."""
    request = urllib.request.Request(url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "EduPulse alerts"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def message(alert: dict[str, Any], project: ProjectInfo, result: Check) -> str:
    """The text a robot posts (both languages: who reads a robot's group is not known)."""
    band = result.band
    expected = (f"; 通常 usual {band.low:.0f}–{band.high:.0f}" if band is not None and band.defined
                else f"; 阈值 threshold {alert['op']} {alert['value']:g}" if alert["value"] is not None else "")
    return (f"[EduPulse] {alert['name']} · {STATE_WORDS[result.state]}\n{project.name} · {alert['event']}"
            f"{' · ' + alert['channel'] if alert['channel'] else ''} · {result.hour} ({project.timezone}): "
            f"{result.value:g}{expected}")


def deliver_to_channel(send: ChannelSend | None, name: str, alert: dict[str, Any], project: ProjectInfo,
                       result: Check) -> str | None:
    """Send the alert's change through a journey channel; the error (None: delivered)."""
    if send is None:
        return "journey channels are not available in this process"
    channel = send.channels.get(project.id, name)
    if channel is None or channel.kind not in ROBOTS:
        return f"no DingTalk or WeCom channel named {name!r} in this project's journeys"
    out = Outgoing(id=0, project_id=project.id, journey_id=0, person_key=f"alert-{alert['id']}",
                   action=channel.kind, idempotency_key=f"alert-{alert['id']}-{result.hour}-{result.state}",
                   request={"channel": name, "text": message(alert, project, result)}, attempt=1)
    outcome = send(out)
    return None if outcome.ok else outcome.detail or "not delivered"


def payload(alert: dict[str, Any], project: ProjectInfo, result: Check) -> dict[str, Any]:
    band = result.band
    expected = ({"mean": round(band.mean, 3), "low": round(band.low, 3), "high": round(band.high, 3)}
                if band is not None and band.defined else None)
    return {"alert": alert["name"], "alert_id": alert["id"], "project": project.name, "state": result.state,
            "kind": alert["kind"], "event": alert["event"], "channel": alert["channel"], "hour": result.hour,
            "timezone": project.timezone, "value": result.value, "op": alert["op"], "threshold": alert["value"],
            "expected": expected}


def run_alerts(meta_alerts: AlertStore, service: QueryService, projects: list[ProjectInfo],
               now: dt.datetime, send: ChannelSend | None = None) -> list[dict[str, Any]]:
    """Check every enabled alert for the last complete hour; returns the state changes (and deliveries)."""
    by_id = {p.id: p for p in projects}
    changes = []
    for alert in meta_alerts.all():
        project = by_id.get(alert["project_id"])
        if project is None or not alert["enabled"]:
            continue
        spec = AlertSpec.model_validate({k: alert[k] for k in AlertSpec.model_fields})
        hour = last_complete_hour(now, ZoneInfo(project.timezone))
        if alert["last_hour"] == hour.strftime("%Y-%m-%dT%H:00"):
            continue  # checked already
        try:
            result = check(spec, hourly_counts(service, project, spec, hour, now), hour)
        except Exception:  # one alert's query failing must not stop the others
            log.exception("alert %s of project %s could not be checked", alert["id"], project.id)
            continue
        if result.state == alert["state"]:
            meta_alerts.checked(alert["id"], result.hour, result.value, None, None, None)
            continue
        error = None
        if spec.webhook_url and spec.webhook_url.startswith(CHANNEL_PREFIX):
            error = deliver_to_channel(send, spec.webhook_url[len(CHANNEL_PREFIX):], alert, project, result)
        elif spec.webhook_url:
            error = deliver(spec.webhook_url, payload(alert, project, result))
        low = result.band.low if result.band is not None and result.band.defined else None
        high = result.band.high if result.band is not None and result.band.defined else None
        meta_alerts.checked(alert["id"], result.hour, result.value, result.state, low, high,
                            delivered=spec.webhook_url is not None and error is None, error=error)
        changes.append({"alert_id": alert["id"], "state": result.state, "hour": result.hour, "value": result.value,
                        "error": error})
    return changes


@dataclass
class AlertJob:
    """The scheduler's job: due once per hour (UTC hour key; each alert checks its zone's last hour)."""

    platform: Platform
    send: ChannelSend | None = None  # the journeys' senders, for alerts delivered to a journey channel
    name: str = "alerts"

    def due_key(self, now: dt.datetime) -> str | None:
        return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H")

    def run(self, now: dt.datetime) -> list[dict[str, Any]]:
        plat = self.platform
        return run_alerts(AlertStore(plat.meta), plat.query_service(), plat.meta.projects(), now, self.send)
