"""The metric catalogue (统计口径): named metrics per project with owner, description and versions. Every
change makes a new version, kept in metric_versions and recorded in the audit log by the caller."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from edupulse.meta.governance import Metric, MetricVersion
from edupulse.queries.metrics import NAME_PATTERN, MetricDefinition, MetricRef, validate_definition

if TYPE_CHECKING:
    from edupulse.meta.db import MetadataStore


class CatalogueError(ValueError):
    """A metric request that cannot be carried out; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _first(event: str, **extra: Any) -> dict[str, Any]:
    return {"event": event, **extra}


PAID_FIRST = [{"property": "order_type", "op": "eq", "value": "first"}]
RENEWAL = [{"property": "order_type", "op": "eq", "value": "renewal"}]

# The education metrics of the product (PRODUCT.md), computed from the standard events.
DEFAULT_METRICS: dict[str, dict[str, Any]] = {
    "attendance_rate": {
        "title": "到课率 attendance rate", "unit": "%", "scale": 100,
        "description": "Attended lessons / scheduled lessons (lesson_attended ÷ lesson_scheduled events).",
        "numerator": _first("lesson_attended"), "denominator": _first("lesson_scheduled")},
    "completion_rate": {
        "title": "完课率 completion rate", "unit": "%", "scale": 100,
        "description": "Completed lessons / scheduled lessons (lesson_completed ÷ lesson_scheduled events).",
        "numerator": _first("lesson_completed"), "denominator": _first("lesson_scheduled")},
    "course_completion_rate": {
        "title": "课程完成率 course completion rate", "unit": "%", "scale": 100,
        "description": "Persons who completed a course / persons who enrolled in one, in the period.",
        "numerator": _first("course_completed", math="unique_persons"),
        "denominator": _first("course_enrolled", math="unique_persons")},
    "first_order_conversion": {
        "title": "首单转化率 first-order conversion", "unit": "%", "scale": 100,
        "description": "Persons with a first order_paid / persons with lead_created, in the period (a cohort "
                       "conversion within N days is a funnel).",
        "numerator": _first("order_paid", math="unique_persons", filters=PAID_FIRST),
        "denominator": _first("lead_created", math="unique_persons")},
    "renewal_rate": {
        "title": "续费率 renewal rate", "unit": "%", "scale": 100,
        "description": "Persons who paid a renewal / persons who completed a course, in the period.",
        "numerator": _first("order_paid", math="unique_persons", filters=RENEWAL),
        "denominator": _first("course_completed", math="unique_persons")},
    "referral_rate": {
        "title": "转介绍率 referral rate", "unit": "%", "scale": 100,
        "description": "New paying persons who came with a referrer (person property referrer_id set) / all "
                       "new paying persons.",
        "numerator": _first("order_paid", math="unique_persons",
                            filters=[*PAID_FIRST, {"property": "person.referrer_id", "op": "is_set"}]),
        "denominator": _first("order_paid", math="unique_persons", filters=PAID_FIRST)},
    "cac": {
        "title": "获客成本 CAC", "unit": "CNY",
        "description": "Ad spend / new paying persons (first order_paid).",
        "numerator": {"spend": True},
        "denominator": _first("order_paid", math="unique_persons", filters=PAID_FIRST)},
    "roi": {
        "title": "ROI", "unit": "ratio",
        "description": "Revenue (sum of order_paid amount) / ad spend.",
        "numerator": _first("order_paid", math="sum", property="amount"), "denominator": {"spend": True}},
    "revenue": {
        "title": "营收 revenue", "unit": "CNY", "description": "Sum of order_paid amount.",
        "numerator": _first("order_paid", math="sum", property="amount")},
}


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def check_name(name: str) -> str:
    if not re.match(NAME_PATTERN, name):
        raise CatalogueError(f"metric name {name!r}: use lower-case letters, digits and _ (start with a letter, "
                             "at most 64)")
    return name


class MetricCatalogue:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def ensure_defaults(self, project_id: int, author: str = "EduPulse defaults") -> list[str]:
        """Add the default metrics a project does not have yet (never overwrites); returns those added."""
        added = []
        with self.meta.session() as s:
            existing = set(s.scalars(select(Metric.name).where(Metric.project_id == project_id)))
        for name, definition in DEFAULT_METRICS.items():
            if name not in existing:
                self.create(project_id, name, definition, owner_user_id=None, author=author)
                added.append(name)
        return added

    def _seeded(self, project_id: int) -> None:
        # A project that never had a metric gets the defaults (projects made before the catalogue existed).
        with self.meta.session() as s:
            if s.scalar(select(Metric.id).where(Metric.project_id == project_id).limit(1)) is not None:
                return
        self.ensure_defaults(project_id)

    def list(self, project_id: int, include_deleted: bool = False) -> list[dict[str, Any]]:
        self._seeded(project_id)
        with self.meta.session() as s:
            q = select(Metric).where(Metric.project_id == project_id).order_by(Metric.name)
            if not include_deleted:
                q = q.where(Metric.deleted_at.is_(None))
            return [_row(m) for m in s.scalars(q)]

    def get(self, project_id: int, name: str, with_versions: bool = False) -> dict[str, Any] | None:
        self._seeded(project_id)
        with self.meta.session() as s:
            m = s.scalar(select(Metric).where(Metric.project_id == project_id, Metric.name == name,
                                              Metric.deleted_at.is_(None)))
            if m is None:
                return None
            out = _row(m)
            if with_versions:
                out["versions"] = [
                    {"version": v.version, "definition": v.definition, "author": v.author,
                     "created_at": _aware(v.created_at).isoformat()}
                    for v in s.scalars(select(MetricVersion).where(MetricVersion.metric_id == m.id)
                                       .order_by(MetricVersion.version))]
            return out

    def ref(self, project_id: int, name: str) -> MetricRef | None:
        found = self.get(project_id, name)
        if found is None:
            return None
        return MetricRef(name, found["version"], MetricDefinition.model_validate(found["definition"]))

    def create(self, project_id: int, name: str, definition: Any, owner_user_id: int | None,
               author: str) -> dict[str, Any]:
        check_name(name)
        clean = _validated(definition)
        now = dt.datetime.now(dt.UTC)
        with self.meta.session() as s, s.begin():
            m = s.scalar(select(Metric).where(Metric.project_id == project_id, Metric.name == name))
            if m is not None and m.deleted_at is None:
                raise CatalogueError(f"a metric named {name!r} exists already; change it with PUT", 409)
            if m is None:
                m = Metric(project_id=project_id, name=name, version=1, definition=clean,
                           owner_user_id=owner_user_id, updated_at=now)
                s.add(m)
            else:  # a deleted name comes back as the next version, so versions never repeat
                m.version += 1
                m.definition, m.owner_user_id, m.updated_at, m.deleted_at = clean, owner_user_id, now, None
            s.flush()
            s.add(MetricVersion(metric_id=m.id, version=m.version, definition=clean, created_at=now, author=author))
            return _row(m)

    def update(self, project_id: int, name: str, definition: Any, author: str,
               owner_user_id: int | None = None) -> dict[str, Any]:
        clean = _validated(definition)
        now = dt.datetime.now(dt.UTC)
        with self.meta.session() as s, s.begin():
            m = s.scalar(select(Metric).where(Metric.project_id == project_id, Metric.name == name,
                                              Metric.deleted_at.is_(None)))
            if m is None:
                raise CatalogueError(f"no metric named {name!r}", 404)
            if clean == m.definition and owner_user_id in (None, m.owner_user_id):
                return _row(m)
            m.version += 1
            m.definition, m.updated_at = clean, now
            if owner_user_id is not None:
                m.owner_user_id = owner_user_id
            s.add(MetricVersion(metric_id=m.id, version=m.version, definition=clean, created_at=now, author=author))
            return _row(m)

    def delete(self, project_id: int, name: str) -> dict[str, Any]:
        """Mark a metric deleted (its versions stay); reports that name it then say it is missing."""
        with self.meta.session() as s, s.begin():
            m = s.scalar(select(Metric).where(Metric.project_id == project_id, Metric.name == name,
                                              Metric.deleted_at.is_(None)))
            if m is None:
                raise CatalogueError(f"no metric named {name!r}", 404)
            m.deleted_at = dt.datetime.now(dt.UTC)
            return _row(m)


def _validated(definition: Any) -> dict[str, Any]:
    try:
        model = MetricDefinition.model_validate(definition) if isinstance(definition, MetricDefinition) \
            else validate_definition(definition)
    except ValueError as exc:
        raise CatalogueError(f"metric definition: {exc}") from None
    return model.model_dump(mode="json", exclude_defaults=True)


def _row(m: Metric) -> dict[str, Any]:
    return {"name": m.name, "version": m.version, "definition": m.definition, "owner_user_id": m.owner_user_id,
            "title": m.definition.get("title", m.name), "description": m.definition.get("description", ""),
            "unit": m.definition.get("unit", ""), "updated_at": _aware(m.updated_at).isoformat(),
            "deleted": m.deleted_at is not None}
