"""Metadata of the web UI: saved reports, dashboards (a grid of reports, a refresh interval, a date filter,
a share token) and the data catalogue's descriptions of events and properties."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.meta.models import Base, utcnow

MIN_REFRESH_SECONDS = 10
LANGUAGES = ("zh", "en")


class Report(Base):
    """A saved analysis: a name and the query JSON it runs."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    view: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # display choices
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Dashboard(Base):
    __tablename__ = "dashboards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    refresh_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    date_from: Mapped[str | None] = mapped_column(String(20), nullable=True)
    date_to: Mapped[str | None] = mapped_column(String(20), nullable=True)
    share_token: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DashboardItem(Base):
    __tablename__ = "dashboard_items"
    __table_args__ = (UniqueConstraint("dashboard_id", "report_id", name="uq_dashboard_report"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboards.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    width: Mapped[int] = mapped_column(Integer, default=6)  # of 12 columns


class CatalogDescription(Base):
    """An admin's description of an event (`kind` "event") or a property (`kind` "property"): one for every
    language (`description`), and display names and descriptions per language (`texts`:
    {"zh": {"display_name": ..., "description": ...}, "en": {...}}), which win over it and over the
    standard names of the UI."""

    __tablename__ = "catalog_descriptions"
    __table_args__ = (UniqueConstraint("project_id", "kind", "name", name="uq_catalog_description"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    texts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(254), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def _report(r: Report) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "query": r.query, "kind": r.query.get("kind"), "view": r.view or {},
            "created_by": r.created_by, "updated_at": r.updated_at.isoformat()}


def _dashboard(d: Dashboard) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "refresh_seconds": d.refresh_seconds, "date_from": d.date_from,
            "date_to": d.date_to, "share_token": d.share_token}


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise MetadataError("a name must be 1 to 200 characters")
    return name


class UIStore:
    """Reports, dashboards and catalogue descriptions of one metadata database."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    # reports ------------------------------------------------------------------------------------

    def reports(self, project_id: int) -> list[dict[str, Any]]:
        with self.meta.session() as s:
            rows = s.scalars(select(Report).where(Report.project_id == project_id).order_by(Report.id.desc()))
            return [_report(r) for r in rows]

    def report(self, project_id: int, report_id: int) -> dict[str, Any]:
        with self.meta.session() as s:
            r = s.get(Report, report_id)
            if r is None or r.project_id != project_id:
                raise MetadataError(f"no report {report_id} in this project")
            return _report(r)

    def save_report(self, project_id: int, name: str, query: dict[str, Any], user: str,
                    report_id: int | None = None, view: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.meta.session() as s, s.begin():
            if report_id is None:
                r = Report(project_id=project_id, name=_name(name), query=query, view=view, created_by=user)
                s.add(r)
            else:
                found = s.get(Report, report_id)
                if found is None or found.project_id != project_id:
                    raise MetadataError(f"no report {report_id} in this project")
                r = found
                r.name, r.query, r.view, r.updated_at = _name(name), query, view, utcnow()
            s.flush()
            return _report(r)

    def delete_report(self, project_id: int, report_id: int) -> None:
        """Delete a report of the project and take it off its dashboards; MetadataError when there is none."""
        with self.meta.session() as s, s.begin():
            r = s.get(Report, report_id)
            if r is None or r.project_id != project_id:
                raise MetadataError(f"no report {report_id} in this project")
            s.execute(delete(DashboardItem).where(DashboardItem.report_id == report_id))
            s.delete(r)

    # dashboards ---------------------------------------------------------------------------------

    def dashboards(self, project_id: int) -> list[dict[str, Any]]:
        with self.meta.session() as s:
            rows = s.scalars(select(Dashboard).where(Dashboard.project_id == project_id).order_by(Dashboard.id))
            return [_dashboard(d) for d in rows]

    def _items(self, s: Any, dashboard_id: int) -> list[dict[str, Any]]:
        rows = s.execute(select(DashboardItem, Report).join(Report, Report.id == DashboardItem.report_id)
                         .where(DashboardItem.dashboard_id == dashboard_id)
                         .order_by(DashboardItem.position, DashboardItem.id))
        return [{"report": _report(r), "width": item.width, "position": item.position} for item, r in rows]

    def dashboard(self, project_id: int, dashboard_id: int) -> dict[str, Any]:
        with self.meta.session() as s:
            d = s.get(Dashboard, dashboard_id)
            if d is None or d.project_id != project_id:
                raise MetadataError(f"no dashboard {dashboard_id} in this project")
            return {**_dashboard(d), "items": self._items(s, d.id)}

    def dashboard_by_token(self, token: str) -> tuple[int, dict[str, Any]] | None:
        """(project id, dashboard) of a share token; None for an unknown or withdrawn token."""
        if not token:
            return None
        with self.meta.session() as s:
            d = s.scalar(select(Dashboard).where(Dashboard.share_token == token))
            if d is None:
                return None
            return d.project_id, {**_dashboard(d), "items": self._items(s, d.id)}

    def save_dashboard(self, project_id: int, name: str, refresh_seconds: int | None = None,
                       date_from: str | None = None, date_to: str | None = None,
                       dashboard_id: int | None = None) -> dict[str, Any]:
        if refresh_seconds is not None and refresh_seconds < MIN_REFRESH_SECONDS:
            raise MetadataError(f"refresh interval is {refresh_seconds} s; the shortest is {MIN_REFRESH_SECONDS} s")
        with self.meta.session() as s, s.begin():
            if dashboard_id is None:
                d = Dashboard(project_id=project_id, name=_name(name))
                s.add(d)
            else:
                found = s.get(Dashboard, dashboard_id)
                if found is None or found.project_id != project_id:
                    raise MetadataError(f"no dashboard {dashboard_id} in this project")
                d = found
                d.name = _name(name)
            d.refresh_seconds, d.date_from, d.date_to = refresh_seconds, date_from or None, date_to or None
            s.flush()
            return _dashboard(d)

    def delete_dashboard(self, project_id: int, dashboard_id: int) -> None:
        """Delete a dashboard of the project (its reports stay); MetadataError when there is none."""
        with self.meta.session() as s, s.begin():
            d = s.get(Dashboard, dashboard_id)
            if d is None or d.project_id != project_id:
                raise MetadataError(f"no dashboard {dashboard_id} in this project")
            s.execute(delete(DashboardItem).where(DashboardItem.dashboard_id == dashboard_id))
            s.delete(d)

    def add_to_dashboard(self, project_id: int, dashboard_id: int, report_id: int, width: int = 6) -> None:
        self.report(project_id, report_id)
        with self.meta.session() as s, s.begin():
            d = s.get(Dashboard, dashboard_id)
            if d is None or d.project_id != project_id:
                raise MetadataError(f"no dashboard {dashboard_id} in this project")
            exists = s.scalar(select(DashboardItem).where(DashboardItem.dashboard_id == dashboard_id,
                                                          DashboardItem.report_id == report_id))
            if exists is None:
                count = len(list(s.scalars(select(DashboardItem.id).where(DashboardItem.dashboard_id == dashboard_id))))
                s.add(DashboardItem(dashboard_id=dashboard_id, report_id=report_id, position=count,
                                    width=min(12, max(3, width))))

    def remove_from_dashboard(self, project_id: int, dashboard_id: int, report_id: int) -> None:
        self.dashboard(project_id, dashboard_id)
        with self.meta.session() as s, s.begin():
            s.execute(delete(DashboardItem).where(DashboardItem.dashboard_id == dashboard_id,
                                                  DashboardItem.report_id == report_id))

    def share(self, project_id: int, dashboard_id: int, enabled: bool) -> str | None:
        """Create (or withdraw) the read-only share token of a dashboard; a new token each time."""
        with self.meta.session() as s, s.begin():
            d = s.get(Dashboard, dashboard_id)
            if d is None or d.project_id != project_id:
                raise MetadataError(f"no dashboard {dashboard_id} in this project")
            d.share_token = secrets.token_urlsafe(32) if enabled else None
            return d.share_token

    # catalogue descriptions ---------------------------------------------------------------------

    def descriptions(self, project_id: int) -> dict[tuple[str, str], dict[str, Any]]:
        """(kind, name) -> {"description": for every language, "texts": per language}."""
        with self.meta.session() as s:
            rows = s.scalars(select(CatalogDescription).where(CatalogDescription.project_id == project_id))
            return {(r.kind, r.name): {"description": r.description, "texts": dict(r.texts or {})} for r in rows}

    def describe(self, project_id: int, kind: str, name: str, description: str, user: str,
                 lang: str | None = None, display_name: str | None = None) -> None:
        """Set the description for every language, or with `lang` the display name and description of one."""
        if kind not in ("event", "property"):
            raise MetadataError("kind must be 'event' or 'property'")
        if not name or len(name) > 200:
            raise MetadataError("name must be 1 to 200 characters")
        if len(description) > 2000:
            raise MetadataError("a description is at most 2000 characters")
        if lang is not None and lang not in LANGUAGES:
            raise MetadataError(f"lang {lang!r}: use one of {', '.join(LANGUAGES)}")
        if display_name is not None and len(display_name) > 200:
            raise MetadataError("a display name is at most 200 characters")
        for attempt in range(2):  # two first descriptions of one name at once: the later one updates the row
            try:
                self._describe(project_id, kind, name, description, user, lang, display_name)
                return
            except IntegrityError:
                if attempt:
                    raise

    def _describe(self, project_id: int, kind: str, name: str, description: str, user: str,
                  lang: str | None, display_name: str | None) -> None:
        with self.meta.session() as s, s.begin():
            row = s.scalar(select(CatalogDescription).where(
                CatalogDescription.project_id == project_id, CatalogDescription.kind == kind,
                CatalogDescription.name == name))
            if row is None:
                row = CatalogDescription(project_id=project_id, kind=kind, name=name, description="")
                s.add(row)
            if lang is None:
                row.description = description.strip()
            else:
                texts = dict(row.texts or {})
                texts[lang] = {"display_name": (display_name or "").strip(), "description": description.strip()}
                row.texts = texts  # a new dict, so that the JSON column is written
            row.updated_by, row.updated_at = user, utcnow()
