"""The metric catalogue (统计口径): named metrics per project with owner, description and versions. Every
change makes a new version, kept in metric_versions and recorded in the audit log by the caller."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from edupulse.meta.governance import Metric, MetricVersion
from edupulse.queries.metrics import NAME_PATTERN, MetricDefinition, MetricRef, validate_definition

if TYPE_CHECKING:
    from edupulse.meta.db import MetadataStore


class CatalogueError(ValueError):
    """A metric request that cannot be carried out; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


PAID_FIRST = [{"property": "order_type", "op": "eq", "value": "first"}]
RENEWAL = [{"property": "order_type", "op": "eq", "value": "renewal"}]
LEAD_CHANNEL = {"event": "lead_created", "property": "channel"}
FIRST_LEAD = {"event": "lead_created", "first": True}
ROI_DAYS = 365  # revenue counted for a lead's channel: what it paid within a year of its first lead
FIRST_ORDER_DAYS = 30  # a lead's first order counts for first-order conversion within 30 days
RENEWAL_DAYS = (-7, 30)  # a renewal counts for a course end from 7 days before to 30 days after it
RENEWAL_SETTLE_DAYS = 14  # a course has ended once the 14 days after its last lesson's day are over without another

# The education metrics of the product (PRODUCT.md), computed from the standard events: counts of units
# (persons, or persons × lessons) meeting conditions within a cohort and a window (queries/metric_cohorts.py).
DEFAULT_METRICS: dict[str, dict[str, Any]] = {
    "attendance_rate": {
        "title": "到课率 attendance rate", "unit": "%", "scale": 100,
        "description": "Attended lessons / scheduled lessons, per student and lesson: of the lessons scheduled "
                       "for a student (lesson_scheduled) that start in the period (starts_at; when it is missing, "
                       "when the lesson was scheduled), those the student attended (lesson_attended with the same "
                       "lesson_id, at any time). A lesson scheduled ahead counts once it starts, not when it is "
                       "scheduled.",
        "cohort": {"event": "lesson_scheduled", "per": "lesson_id", "time": "starts_at"},
        "outcome": {"event": "lesson_attended", "same": True, "from_days": None}, "ratio": "rate"},
    "completion_rate": {
        "title": "完课率 completion rate", "unit": "%", "scale": 100,
        "description": "Completed lessons / scheduled lessons, per student and lesson (lesson_completed with "
                       "the lesson_id of a lesson_scheduled that starts in the period, as for the attendance "
                       "rate).",
        "cohort": {"event": "lesson_scheduled", "per": "lesson_id", "time": "starts_at"},
        "outcome": {"event": "lesson_completed", "same": True, "from_days": None}, "ratio": "rate"},
    "course_completion_rate": {
        "title": "课程完成率 course completion rate", "unit": "%", "scale": 100,
        "description": "Students who completed a course / students who enrolled in it: of the enrolments "
                       "(course_enrolled) in the period, those followed by course_completed of the same course_id.",
        "cohort": {"event": "course_enrolled", "per": "course_id"},
        "outcome": {"event": "course_completed", "same": True}, "ratio": "rate"},
    "first_order_conversion": {
        "title": "首单转化率 first-order conversion", "unit": "%", "scale": 100,
        "description": f"Leads with a first order within {FIRST_ORDER_DAYS} days / leads: of the persons whose "
                       "first lead_created is in the period, those who paid an order_paid with order_type first "
                       f"within {FIRST_ORDER_DAYS} days of it. Per channel: the channel of that first lead.",
        "cohort": FIRST_LEAD,
        "outcome": {"event": "order_paid", "filters": PAID_FIRST, "to_days": FIRST_ORDER_DAYS}, "ratio": "rate",
        "channel": LEAD_CHANNEL},
    "renewal_rate": {
        "title": "续费率 renewal rate", "unit": "%", "scale": 100,
        "description": "Students whose course ended in the period and who paid a renewal / those whose course "
                       "ended: a student's course ends at the start (starts_at) of the last lesson scheduled for "
                       f"them in it (lesson_scheduled, per course_id), known once the {RENEWAL_SETTLE_DAYS} days "
                       "after that day are over without another; a refunded course (order_refunded "
                       "of that course_id) does not end; a renewal is order_paid with order_type renewal from "
                       f"{-RENEWAL_DAYS[0]} days before to {RENEWAL_DAYS[1]} days after the course's end.",
        "cohort": {"event": "lesson_scheduled", "per": "course_id", "time": "starts_at", "last": True,
                   "settle_days": RENEWAL_SETTLE_DAYS, "unless": {"event": "order_refunded", "same": True}},
        "outcome": {"event": "order_paid", "filters": RENEWAL, "from_days": RENEWAL_DAYS[0],
                    "to_days": RENEWAL_DAYS[1]}, "ratio": "rate"},
    "referral_rate": {
        "title": "转介绍率 referral rate", "unit": "%", "scale": 100,
        "description": "New paying students who came with a referrer / all new paying students: of the persons "
                       "with a first order (order_paid, order_type first) in the period, those with a "
                       "referral_signup carrying a referrer_id.",
        "cohort": {"event": "order_paid", "filters": PAID_FIRST},
        "outcome": {"event": "referral_signup", "filters": [{"property": "referrer_id", "op": "is_set"}],
                    "from_days": None}, "ratio": "rate"},
    "cac": {
        "title": "获客成本 CAC", "unit": "CNY",
        "description": "Ad spend of a channel / its new paying customers (first order_paid in the period, "
                       "attributed to the channel of their first lead_created); without a channel, all spend / "
                       "all new paying customers.",
        "cohort": {"event": "order_paid", "filters": PAID_FIRST}, "ratio": "spend_per_unit",
        "channel": LEAD_CHANNEL},
    "roi": {
        "title": "ROI", "unit": "ratio",
        "description": f"Revenue attributed to a channel within {ROI_DAYS} days / its ad spend: the order_paid "
                       f"amounts of the persons whose first lead (lead_created, of that channel) is in the period, "
                       f"paid within {ROI_DAYS} days of that lead, divided by the channel's spend in the period.",
        "cohort": FIRST_LEAD,
        "outcome": {"event": "order_paid", "value": "amount", "to_days": ROI_DAYS}, "ratio": "value_per_spend",
        "channel": LEAD_CHANNEL},
    "revenue": {
        "title": "营收 revenue", "unit": "CNY", "description": "Sum of order_paid amount.",
        "numerator": {"event": "order_paid", "math": "sum", "property": "amount"}},
}


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def check_name(name: str) -> str:
    if not re.match(NAME_PATTERN, name):
        raise CatalogueError(f"metric name {name!r}: use lower-case letters, digits and _ (start with a letter, "
                             "at most 64)")
    return name


DEFAULTS_AUTHOR = "EduPulse defaults"


class MetricCatalogue:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def ensure_defaults(self, project_id: int, author: str = DEFAULTS_AUTHOR) -> list[str]:
        """Add the default metrics a project does not have yet (never overwrites); returns those added."""
        added = []
        with self.meta.session() as s:
            existing = set(s.scalars(select(Metric.name).where(Metric.project_id == project_id)))
        for name, definition in DEFAULT_METRICS.items():
            if name not in existing:
                try:
                    self.create(project_id, name, definition, owner_user_id=None, author=author)
                except (CatalogueError, IntegrityError):  # made meanwhile by a concurrent request
                    continue
                added.append(name)
        return added

    def _seeded(self, project_id: int) -> None:
        # A project that never had a metric gets the defaults (projects made before the catalogue existed). Two
        # first requests may run at once: while one is adding them, the other finds some, and must wait for the
        # rest rather than answer that a default metric does not exist.
        with self.meta.session() as s:
            names = set(s.scalars(select(Metric.name).where(Metric.project_id == project_id)))
        if names and names < set(DEFAULT_METRICS):  # a seeding under way (deleted metrics keep their rows)
            self.ensure_defaults(project_id)
        if names:
            self.upgrade_defaults(project_id)
            return
        self.ensure_defaults(project_id)

    def upgrade_defaults(self, project_id: int) -> list[str]:
        """Default metrics nobody has changed follow the product's current definitions (as a new version, so
        reports show the change); a metric someone edited stays theirs. Returns those upgraded."""
        with self.meta.session() as s:
            rows = s.execute(select(Metric.name, Metric.definition, MetricVersion.author)
                             .join(MetricVersion, (MetricVersion.metric_id == Metric.id)
                                   & (MetricVersion.version == Metric.version))
                             .where(Metric.project_id == project_id, Metric.deleted_at.is_(None),
                                    Metric.name.in_(list(DEFAULT_METRICS)))).all()
        upgraded = []
        for name, definition, author in rows:
            current = _validated(DEFAULT_METRICS[name])
            if author == DEFAULTS_AUTHOR and definition != current:
                self.update(project_id, name, current, author=DEFAULTS_AUTHOR)
                upgraded.append(name)
        return upgraded

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
