"""Alerts of a project (the real-time board's): a count of an event per hour (of one channel) checked each hour
against a threshold or against its usual band for that hour of the week, with its state and the history of
its state changes (each delivered once to the alert's webhook)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.meta.models import Base, utcnow

FIELDS = ("name", "event", "filters", "channel", "kind", "op", "value", "band", "weeks", "webhook_url", "enabled")


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(100))
    filters: Mapped[list[Any]] = mapped_column(JSON, default=list)
    channel: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # threshold | anomaly
    op: Mapped[str | None] = mapped_column(String(8), nullable=True)  # above | below (threshold)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    band: Mapped[float] = mapped_column(Float, default=3.0)
    weeks: Mapped[int] = mapped_column(Integer, default=8)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="ok")  # ok | firing
    last_hour: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AlertEvent(Base):
    """A state change of an alert and its delivery."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    hour: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float] = mapped_column(Float)
    low: Mapped[float | None] = mapped_column(Float, nullable=True)
    high: Mapped[float | None] = mapped_column(Float, nullable=True)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


def _row(a: Alert) -> dict[str, Any]:
    return {"id": a.id, "project_id": a.project_id, **{f: getattr(a, f) for f in FIELDS}, "state": a.state,
            "last_hour": a.last_hour, "last_value": a.last_value, "created_by": a.created_by}


class AlertStore:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def all(self, project_id: int | None = None) -> list[dict[str, Any]]:
        """The alerts of a project (of every project without one), oldest first."""
        with self.meta.session() as s:
            q = select(Alert).order_by(Alert.id)
            if project_id is not None:
                q = q.where(Alert.project_id == project_id)
            return [_row(a) for a in s.scalars(q)]

    def get(self, project_id: int, alert_id: int) -> dict[str, Any]:
        with self.meta.session() as s:
            a = s.get(Alert, alert_id)
            if a is None or a.project_id != project_id:
                raise MetadataError(f"no alert {alert_id} in this project")
            return _row(a)

    def save(self, project_id: int, spec: dict[str, Any], user: str, alert_id: int | None = None) -> dict[str, Any]:
        """Create an alert from a checked spec (every key of FIELDS), or replace one's definition."""
        with self.meta.session() as s, s.begin():
            if alert_id is None:
                a = Alert(project_id=project_id, created_by=user, **{f: spec[f] for f in FIELDS})
                s.add(a)
            else:
                found = s.get(Alert, alert_id)
                if found is None or found.project_id != project_id:
                    raise MetadataError(f"no alert {alert_id} in this project")
                a = found
                for f in FIELDS:
                    setattr(a, f, spec[f])
            s.flush()
            return _row(a)

    def delete(self, project_id: int, alert_id: int) -> None:
        with self.meta.session() as s, s.begin():
            a = s.get(Alert, alert_id)
            if a is None or a.project_id != project_id:
                raise MetadataError(f"no alert {alert_id} in this project")
            s.delete(a)

    def checked(self, alert_id: int, hour: str, value: float, state: str | None, low: float | None,
                high: float | None, delivered: bool = False, error: str | None = None) -> None:
        """Record an hour's check; with `state`, a change of state (and how its delivery went)."""
        with self.meta.session() as s, s.begin():
            a = s.get(Alert, alert_id)
            if a is None:
                return
            a.last_hour, a.last_value = hour, value
            if state is not None:
                a.state = state
                s.add(AlertEvent(alert_id=alert_id, hour=hour, state=state, value=value, low=low, high=high,
                                 delivered=delivered, error=error))

    def events(self, project_id: int, alert_id: int, limit: int = 50) -> list[dict[str, Any]]:
        self.get(project_id, alert_id)
        with self.meta.session() as s:
            rows = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id)
                             .order_by(AlertEvent.id.desc()).limit(limit))
            return [{"at": r.at.isoformat(), "hour": r.hour, "state": r.state, "value": r.value, "low": r.low,
                     "high": r.high, "delivered": r.delivered, "error": r.error} for r in rows]
