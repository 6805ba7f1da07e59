"""Running tags: compile a tag's definition, let the event store keep what changed (every run's values stay,
so the value on any earlier day is answerable), and record the run. A run that fails leaves the values in
force as they were and says why. Reading values: the page of a tag's values in force on a day, with each
person's identities (or the group key)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
from sqlglot import exp

from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.meta.tags import RunInfo, TagCatalog, TagInfo, check_spec
from edupulse.queries.base import render
from edupulse.queries.compile import EVENTS, Context
from edupulse.queries.errors import QueryError
from edupulse.queries.metadata import ProjectRef
from edupulse.queries.service import PersonScope, QueryService
from edupulse.queries.tagvalues import TagRef, tag_values_tree
from edupulse.store.base import EventStore, TagWrite
from edupulse.tags import builtin, compile
from edupulse.tags.defaults import DEFAULTS
from edupulse.tags.learn.features import DROPOUT_FEATURES, LEAD_FEATURES, PLANS, RENEWAL_FEATURES
from edupulse.tags.learn.train import TRAIN_STEPS, ModelRefused, train
from edupulse.tags.model import ModelScore, TagSpec, Uploaded
from edupulse.tags.upload import parse_csv, typed_value, upload_select

log = logging.getLogger(__name__)
MAX_PAGE = 1000
# A run's stages: queued, then computing (a rule tag's values, computed and stored in one statement) and counting,
# or for a model reading (the features), training's stages (learn/train.py) and storing; then done or failed.
RULE_STEPS = 2
Listener = Callable[[str, int | None, int | None], None]  # (stage, done, total)

Compiler = Callable[[TagSpec, Any, Context], exp.Select]
COMPILERS: dict[str, Compiler] = {
    "custom_tiers": compile.custom_tiers, "metric_tiers": compile.metric_tiers, "first_event": compile.first_last,
    "last_event": compile.first_last, "preference": compile.preference, "rfm": compile.rfm, "sql": compile.sql_tag,
    "missed_streak": builtin.missed_streak, "referral_kol": builtin.referral_kol,
    "institution_health": builtin.institution_health,
}


class TagError(QueryError):
    """A tag cannot be computed as defined (the reason is the user's to act on)."""


class UnknownPerson(TagError):
    """No person of the store has the identities a value was set for (maybe not yet: try again later)."""


def values_tree(spec: TagSpec, ctx: Context) -> exp.Select:
    """The SELECT (unit, value, number, detail) of a rule tag's values."""
    compiler = COMPILERS.get(spec.definition.type)
    if compiler is None:
        raise TagError(f"a {spec.definition.type} tag is not computed from a query")
    return compiler(spec, spec.definition, ctx)


def ref(tag: TagInfo) -> TagRef:
    return TagRef(id=tag.id, name=tag.name, unit=tag.spec.unit, value_type=tag.spec.value_type.value)


@dataclass(frozen=True)
class TagValue:
    unit: Any  # person id or group key
    value: str | None
    number: float | None
    detail: str | None
    day: dt.date
    identities: dict[str, list[str]] | None = None

    def to_json(self, tag: TagInfo) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.identities is not None:
            out["identities"] = self.identities
        else:
            out["group_key"] = self.unit
        out["value"] = present(tag, self.value, self.number)
        out["since"] = self.day.isoformat()
        if tag.spec.definition.type == "model":
            out["score"], out["tier"] = self.number, self.value
            out["reasons"] = _reasons(self.detail)
            out["reasons_zh"] = reason_texts(self.detail, "zh")
        elif self.number is not None and tag.spec.value_type.value not in ("number", "time"):
            out["number"] = self.number
        if self.detail is not None and tag.spec.definition.type != "model":
            out["detail"] = _detail(self.detail)
        return out


def present(tag: TagInfo, value: str | None, number: float | None) -> Any:
    """A stored value as the API shows it: numbers as numbers, times in ISO 8601 (UTC), booleans as booleans."""
    kind = tag.spec.value_type.value
    if kind == "number":
        return number
    if kind == "time":
        return dt.datetime.fromtimestamp(number, dt.UTC).isoformat() if number is not None else None
    if kind == "boolean" and value is not None:
        return value.lower() in ("true", "1", "yes")
    return value


def _detail(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _reasons(text: str | None) -> list[str]:
    return reason_texts(text)


class TagService:
    """Tags of the projects of one platform: definitions, runs, values."""

    def __init__(self, meta: MetadataStore, store: EventStore, queries: QueryService,
                 listener: Listener | None = None) -> None:
        self.meta = meta
        self.store = store
        self.queries = queries
        self.catalog = TagCatalog(meta)
        self.listener = listener  # told each stage of a run as it is recorded (the command line prints them)

    # definitions -----------------------------------------------------------------------------------

    def ensure_defaults(self, project: ProjectRef) -> None:
        """Create the built-in tags the project lacks (a project has them from the start)."""
        have = {t.name for t in self.catalog.all(project.id)}
        groups = self.meta.group_types(project.id)
        for spec in DEFAULTS:
            if spec["name"] in have:
                continue
            unit = spec.get("unit", "person")
            if unit != "person" and unit not in groups:
                continue  # made once the project has groups of that type
            try:
                self.catalog.create(project.id, check_spec(spec), "EduPulse", built_in=True)
            except MetadataError:  # created meanwhile by another request
                continue

    def tags(self, project: ProjectRef) -> list[TagInfo]:
        self.ensure_defaults(project)
        return self.catalog.all(project.id)

    def tag(self, project: ProjectRef, name: str) -> TagInfo:
        self.ensure_defaults(project)
        found = self.catalog.get(project.id, name)
        if found is None:
            raise MetadataError(f"tag {name!r}: no such tag in this project (list them with GET /api/v1/tags)")
        return found

    def check(self, project: ProjectRef, spec: TagSpec, now: dt.datetime | None = None) -> None:
        """Refuse a definition that cannot be computed here (unknown group type, SQL that breaks the rules)."""
        ctx = self.queries.context(project, now=now)
        if spec.unit != "person" and spec.unit not in ctx.groups:
            known = ", ".join(sorted(ctx.groups)) or "none yet"
            raise MetadataError(f"unit: {spec.unit!r} is not a group type of this project (known: {known})")
        if spec.definition.type in COMPILERS:
            try:
                render(values_tree(spec, ctx), ctx.dialect)
            except QueryError as exc:
                raise MetadataError(f"definition: {exc}") from None

    def preview(self, project: ProjectRef, spec: TagSpec, now: dt.datetime | None = None,
                limit: int = 50) -> dict[str, Any]:
        """The distribution of a definition's values, computed now and not saved."""
        self.check(project, spec, now)
        ctx = self.queries.context(project, now=now)
        inner = values_tree(spec, ctx).subquery("v")
        tree = (exp.select(exp.column("value", "v"), exp.Count(this=exp.Star()).as_("n"),
                           exp.func("avg", exp.column("number", "v")).as_("mean"))
                .from_(inner).group_by(exp.column("value", "v")).order_by(exp.column("n").desc()).limit(limit))
        rows = self.store.query(render(tree, ctx.dialect)).rows
        return {"units": sum(int(r[1]) for r in rows),
                "distribution": [{"value": r[0], "units": int(r[1]), "mean_number": r[2]} for r in rows]}

    # runs ------------------------------------------------------------------------------------------

    def run(self, project: ProjectRef, name: str, now: dt.datetime | None = None,
            trigger: str = "manual") -> RunInfo:
        """Compute a tag now and keep its values; a failure is recorded with its reason (values stay)."""
        now = now or dt.datetime.now(dt.UTC)
        tag, run = self.start(project, name, now, trigger)
        return self.execute(project, tag, run, now)

    def start(self, project: ProjectRef, name: str, now: dt.datetime, trigger: str = "manual",
              ) -> tuple[TagInfo, RunInfo]:
        """The record of a run about to be computed (status running); MetadataError: no such tag."""
        tag = self.tag(project, name)
        day = now.astimezone(ZoneInfo(project.timezone)).date()
        return tag, self.catalog.start_run(tag, day, trigger)

    def execute(self, project: ProjectRef, tag: TagInfo, run: RunInfo, now: dt.datetime) -> RunInfo:
        """Compute a started run: the values are kept, or the failure is recorded with its reason (the values in
        force stay as they were). Never raises for the tag's sake."""
        try:
            if isinstance(tag.spec.definition, Uploaded):
                raise TagError("an uploaded tag gets its values from uploads (POST /api/v1/tags/NAME/upload)")
            if tag.spec.definition.type == "model":
                return self._model(project, tag, run, now)
            ctx = replace(self.queries.context(project, now=now), until=now)
            self._progress(run.id, "computing", 0, RULE_STEPS)
            select = render(values_tree(tag.spec, ctx), ctx.dialect)
            changed = self.store.write_tag_values(TagWrite(
                project_id=project.id, tag_id=tag.id, run_id=run.id, day=run.day, computed_at=now,
                person=tag.spec.unit == "person", select=select))
            self._progress(run.id, "counting", 1, RULE_STEPS)
            units = self.count(project, tag)
        except Exception as exc:  # the run fails, the values in force stay as they were
            if not isinstance(exc, QueryError):
                log.exception("tag %s of project %s failed", tag.name, project.id)
            return self.catalog.finish_run(run.id, error=_reason(exc))
        return self.catalog.finish_run(run.id, changed=changed, units=units)

    def _progress(self, run_id: int, stage: str, done: int | None, total: int | None) -> None:
        self.catalog.progress(run_id, stage, done, total)
        if self.listener is not None:
            self.listener(stage, done, total)

    def _model(self, project: ProjectRef, tag: TagInfo, run: RunInfo, now: dt.datetime) -> RunInfo:
        """Learn the model from the project's history, check it on held-out data, then score and store."""
        d = tag.spec.definition
        assert isinstance(d, ModelScore)
        ctx = replace(self.queries.context(project, now=now), until=now)
        total = TRAIN_STEPS + 2  # reading the features, training's steps, storing the scores
        self._progress(run.id, "reading", 0, total)
        plan = PLANS[d.model](ctx)
        rows = self.store.query(render(plan.statement, ctx.dialect)).rows
        cutoffs = [(r.name, float(r.min)) for r in d.tiers if r.min is not None]

        def step(stage: str, done: int) -> None:
            self._progress(run.id, stage, 1 + done, total)

        try:
            trained = train(rows, plan.features, cutoffs, observed=plan.observed, progress=step)
        except ModelRefused as exc:
            return self.catalog.finish_run(run.id, error=str(exc), evaluation=exc.evaluation)
        self._progress(run.id, "storing", total - 1, total)
        evaluation = {**trained.evaluation, "outcome": {"en": plan.outcome_en, "zh": plan.outcome_zh}}
        tiers = [(r.name, r.min, r.max) for r in d.tiers]
        staged = pa.table({
            "unit": pa.array([int(u) for u in trained.units], pa.int64()),
            "value": pa.array([_tier(s, tiers) for s in trained.scores], pa.string()),
            "number": pa.array([round(s, 4) for s in trained.scores], pa.float64()),
            "detail": pa.array([orjson.dumps([list(r) for r in reasons]).decode() for reasons in trained.reasons],
                               pa.string())})
        changed = self.store.write_tag_values(TagWrite(
            project_id=project.id, tag_id=tag.id, run_id=run.id, day=run.day, computed_at=now, person=True,
            select="SELECT unit, value, number, detail FROM tag_upload", staged=staged))
        return self.catalog.finish_run(run.id, changed=changed, units=self.count(project, tag), evaluation=evaluation)

    def run_all(self, project: ProjectRef, now: dt.datetime | None = None, trigger: str = "schedule",
                ) -> list[RunInfo]:
        """Every tag of the project that is computed on a schedule (uploaded tags are not)."""
        return [self.run(project, name, now, trigger) for name in self.scheduled(project)]

    def compact(self, project: ProjectRef, history_days: int, now: dt.datetime | None = None) -> int:
        """Forget the project's tag history older than `history_days` (the values in force on the first kept day
        stay); returns how many stored changes were removed."""
        return self.store.compact_tag_values(project.id, history_start(project, history_days, now))

    def scheduled(self, project: ProjectRef) -> list[str]:
        """The tags computed daily (not uploaded ones, nor those with schedule manual)."""
        return [tag.name for tag in self.tags(project)
                if tag.spec.schedule == "daily" and tag.spec.definition.type != "uploaded"]

    def upload(self, project: ProjectRef, name: str, text: str, now: dt.datetime | None = None,
               ) -> tuple[RunInfo, list[str]]:
        """Store the values of a CSV for an uploaded tag; returns the run and the bad lines (kept out)."""
        now = now or dt.datetime.now(dt.UTC)
        tag = self.tag(project, name)
        d = tag.spec.definition
        if not isinstance(d, Uploaded):
            raise TagError(f"tag {name!r} is a {d.type} tag: only uploaded tags take uploads")
        parsed = parse_csv(text, tag.spec.value_type.value)
        person = tag.spec.unit == "person"
        if person and parsed.rows:
            known = self._known_identities(project, d.id_type, [r[1] for r in parsed.rows])
            kept = []
            for row in parsed.rows:
                if row[1] in known:
                    kept.append(row)
                else:
                    parsed.problems.append(f"line {row[0]}: no person has the {d.id_type} {row[1]!r}")
            parsed.rows = kept
        parsed.problems.sort(key=lambda text: int(text.split(":")[0].split()[1]))
        day = now.astimezone(ZoneInfo(project.timezone)).date()
        run = self.catalog.start_run(tag, day, "upload")
        try:
            changed = self.store.write_tag_values(TagWrite(
                project_id=project.id, tag_id=tag.id, run_id=run.id, day=day, computed_at=now, person=person,
                select=upload_select(project.id, d.id_type, person), overwrite=d.mode == "overwrite",
                staged=parsed.table()))
        except Exception as exc:
            log.exception("upload of tag %s of project %s failed", name, project.id)
            return self.catalog.finish_run(run.id, error=_reason(exc)), parsed.problems
        return self.catalog.finish_run(run.id, changed=changed, units=self.count(project, tag)), parsed.problems

    def settable(self, project: ProjectRef, name: str) -> TagInfo:
        """The tag if a person's value of it may be set by hand (a journey's set_tag): an uploaded person tag.
        MetadataError: no such tag; TagError: the reason it is not settable and what to do."""
        tag = self.tag(project, name)
        d = tag.spec.definition
        if tag.spec.unit != "person":
            raise TagError(f"tag {name!r} tags {tag.spec.unit} groups, not persons: only a person tag is set for a "
                           "person (create an uploaded person tag)")
        if not isinstance(d, Uploaded):
            raise TagError(f"tag {name!r} is computed by its {d.type} rule, which would undo a value set by hand: "
                           "create an uploaded tag (definition type uploaded) for values set by journeys")
        return tag

    def set_value(self, project: ProjectRef, name: str, identities: list[tuple[str, str]], value: Any, by: str,
                  now: dt.datetime | None = None, note: dict[str, Any] | None = None) -> RunInfo:
        """Set one person's value of an uploaded tag (found by any of their identities, after merges), kept in the
        tag's history like an upload: a run with trigger `journey` (or what `by` names) and the value's detail
        `{"set_by": by}`, and an audit entry `tag.set` by `by` (with `note`, e.g. the journey's idempotency key).
        Setting the value the person has already stores nothing (a repeat is harmless).
        MetadataError: no such tag; TagError: not settable, a value that does not fit, or no such person."""
        now = now or dt.datetime.now(dt.UTC)
        tag = self.settable(project, name)
        try:
            text, number = typed_value(tag.spec.value_type.value, value)
        except ValueError as exc:
            raise TagError(f"tag {name!r}: {exc}") from None
        person = self._person_of(project, identities)
        if person is None:
            raise UnknownPerson(f"no person has the identities {', '.join(f'{t}:{v}' for t, v in identities)} "
                                "(yet: events are stored a few seconds after they arrive)")
        day = now.astimezone(ZoneInfo(project.timezone)).date()
        run = self.catalog.start_run(tag, day, by.split(":", 1)[0][:16] or "manual")
        staged = pa.table({"unit": pa.array([person], pa.int64()), "value": pa.array([text], pa.string()),
                           "number": pa.array([number], pa.float64()),
                           "detail": pa.array([orjson.dumps({"set_by": by}).decode()], pa.string())})
        try:
            changed = self.store.write_tag_values(TagWrite(
                project_id=project.id, tag_id=tag.id, run_id=run.id, day=day, computed_at=now, person=True,
                select="SELECT unit, value, number, detail FROM tag_upload", overwrite=False, staged=staged))
        except Exception as exc:
            log.exception("setting tag %s of project %s failed", name, project.id)
            self.catalog.finish_run(run.id, error=_reason(exc))
            raise
        done = self.catalog.finish_run(run.id, changed=changed, units=self.count(project, tag))
        self.meta.audit.record("tag.set", by, project_id=project.id, target=f"tag:{name}", at=now, detail={
            "tag": name, "person": person, "value": text, "run": run.id, "changed": changed, **(note or {})})
        return done

    def _person_of(self, project: ProjectRef, identities: list[tuple[str, str]]) -> int | None:
        """The person (after merges) of the first of these identities the store knows."""
        if not identities:
            return None
        ctx = self.queries.context(project)
        p = exp.Literal.number(project.id)
        pairs = [exp.Tuple(expressions=[exp.Literal.string(t), exp.Literal.string(v)]) for t, v in identities]
        resolved = exp.Case(ifs=[exp.If(this=exp.column("person_id", "o").is_(exp.null()).not_().and_(
            exp.column("person_id", "o") > 0), true=exp.column("person_id", "o"))],
            default=exp.column("person_id", "i"))
        tree = (exp.select(resolved.as_("person"), exp.column("id_type", "i"), exp.column("id_value", "i"))
                .from_(exp.table_("identities").as_("i"))
                .join(exp.table_("person_overrides").as_("o"), join_type="left", on=exp.and_(
                    exp.column("project_id", "o").eq(p), exp.column("old_person_id", "o").eq(
                        exp.column("person_id", "i"))))
                .where(exp.and_(exp.column("project_id", "i").eq(p), exp.In(this=exp.Tuple(expressions=[
                    exp.column("id_type", "i"), exp.column("id_value", "i")]), expressions=pairs))))
        found = {(str(r[1]), str(r[2])): int(r[0]) for r in self.store.query(render(tree, ctx.dialect)).rows}
        return next((found[(t, v)] for t, v in identities if (t, v) in found), None)

    def _known_identities(self, project: ProjectRef, id_type: str, values: list[str]) -> set[str]:
        ctx = self.queries.context(project)
        known: set[str] = set()
        for start in range(0, len(values), 1000):
            chunk = values[start:start + 1000]
            tree = (exp.select(exp.column("id_value")).distinct().from_("identities")
                    .where(exp.and_(exp.column("project_id").eq(exp.Literal.number(project.id)),
                                    exp.column("id_type").eq(exp.Literal.string(id_type)),
                                    exp.In(this=exp.column("id_value"),
                                           expressions=[exp.Literal.string(v) for v in chunk]))))
            known.update(str(r[0]) for r in self.store.query(render(tree, ctx.dialect)).rows)
        return known

    # values ----------------------------------------------------------------------------------------

    def count(self, project: ProjectRef, tag: TagInfo, as_of: dt.date | None = None,
              scope: PersonScope | None = None) -> int:
        tree = exp.select(exp.Count(this=exp.Star())).from_(self._in_force(project, tag, as_of, scope))
        ctx = self.queries.context(project, scope)
        return int(self.store.query(render(tree, ctx.dialect)).rows[0][0])

    def population(self, project: ProjectRef, tag: TagInfo) -> int:
        """How many units the tag could tag: the project's persons, or its groups of the tag's type."""
        ctx = self.queries.context(project)
        p = exp.column("project_id").eq(exp.Literal.number(project.id))
        if tag.spec.unit == "person":
            tree = exp.select(exp.Count(this=exp.Star())).from_("persons").where(p)
        else:
            tree = exp.select(exp.Count(this=exp.Star())).from_("entities").where(exp.and_(
                p, exp.column("kind").eq(exp.Literal.string("group")),
                exp.column("entity_type").eq(exp.Literal.string(tag.spec.unit))))
        return int(self.store.query(render(tree, ctx.dialect)).rows[0][0])

    def _in_force(self, project: ProjectRef, tag: TagInfo, as_of: dt.date | None,
                  scope: PersonScope | None) -> exp.Expr:
        tree = tag_values_tree(project.id, ref(tag), as_of)
        if scope is not None:
            ctx = self.queries.context(project, scope)
            limited = (ctx.in_scope(exp.column("person_id", "t")) if tag.spec.unit == "person"
                       else groups_in_scope(ctx, tag.spec.unit, exp.column("group_key", "t")))
            if limited is not None:
                tree = tree.where(limited)
        return tree.subquery("v")

    def values(self, project: ProjectRef, name: str, as_of: dt.date | None = None, limit: int = 100,
               offset: int = 0, scope: PersonScope | None = None) -> tuple[int, list[TagValue]]:
        """How many units have a value on `as_of` (default: now), and one page of them."""
        tag = self.tag(project, name)
        ctx = self.queries.context(project, scope)
        key = "person_id" if tag.spec.unit == "person" else "group_key"
        page = (exp.select(exp.column(key, "v"), exp.column("value", "v"), exp.column("number", "v"),
                           exp.column("detail", "v"), exp.column("day", "v"))
                .from_(self._in_force(project, tag, as_of, scope))
                .order_by(exp.Ordered(this=exp.column("number", "v"), desc=True, nulls_first=False),
                          exp.column(key, "v")).limit(limit).offset(offset))
        rows = self.store.query(render(page, ctx.dialect)).rows
        total = self.count(project, tag, as_of, scope)
        identities = self.identities(project, [int(r[0]) for r in rows]) if tag.spec.unit == "person" else {}
        out = [TagValue(unit=r[0], value=r[1], number=r[2], detail=r[3], day=_day(r[4]),
                        identities=identities.get(int(r[0]), {}) if tag.spec.unit == "person" else None)
               for r in rows]
        return total, out

    def identities(self, project: ProjectRef, persons: list[int]) -> dict[int, dict[str, list[str]]]:
        """Every identity of these persons (after merges), by type."""
        if not persons:
            return {}
        ctx = self.queries.context(project)
        p = project.id
        resolved = ctx.dialect.resolved(exp.column("person_id", "o"), exp.column("person_id", "i"))
        tree = (exp.select(resolved.as_("person"), exp.column("id_type", "i"), exp.column("id_value", "i"))
                .from_(exp.table_("identities").as_("i"))
                .join(exp.table_("person_overrides").as_("o"), on=exp.and_(
                    exp.column("project_id", "o").eq(exp.Literal.number(p)),
                    exp.column("old_person_id", "o").eq(exp.column("person_id", "i"))), join_type="left")
                .where(exp.and_(exp.column("project_id", "i").eq(exp.Literal.number(p)),
                                exp.In(this=resolved.copy(), expressions=[exp.Literal.number(x) for x in persons])))
                .order_by(exp.column("id_type", "i"), exp.column("id_value", "i")))
        out: dict[int, dict[str, list[str]]] = {}
        for person, kind, value in self.store.query(render(tree, ctx.dialect)).rows:
            out.setdefault(int(person), {}).setdefault(kind, []).append(value)
        return out

    def person_tags(self, project: ProjectRef, person_id: int, as_of: dt.date | None = None,
                    ) -> dict[str, dict[str, Any]]:
        """The values in force of every person tag of one person (the person page, targeting)."""
        out: dict[str, dict[str, Any]] = {}
        ctx = self.queries.context(project)
        for tag in self.tags(project):
            if tag.spec.unit != "person":
                continue
            tree = (exp.select(exp.column("value", "t"), exp.column("number", "t"), exp.column("detail", "t"),
                               exp.column("day", "t"))
                    .from_(tag_values_tree(project.id, ref(tag), as_of).subquery("t"))
                    .where(exp.column("person_id", "t").eq(exp.Literal.number(person_id))))
            rows = self.store.query(render(tree, ctx.dialect)).rows
            if rows:
                value = TagValue(unit=person_id, value=rows[0][0], number=rows[0][1], detail=rows[0][2],
                                 day=_day(rows[0][3]), identities={})
                out[tag.name] = {k: v for k, v in value.to_json(tag).items() if k != "identities"}
        return out

    def in_scope(self, project: ProjectRef, scope: PersonScope, person_id: int) -> bool:
        """Whether a caller restricted to some persons (an advisor) may see this person."""
        ctx = self.queries.context(project, scope)
        condition = ctx.in_scope(exp.Literal.number(person_id))
        if condition is None:
            return True
        return bool(self.store.query(render(exp.select(exp.Literal.number(1)).where(condition), ctx.dialect)).rows)

    def person_history(self, project: ProjectRef, person_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """Every change of the person tags of one person, newest first: the day, the tag, the value (none: the
        person lost it), the score."""
        tags = {t.id: t for t in self.tags(project) if t.spec.unit == "person"}
        if not tags:
            return []
        ctx = self.queries.context(project)
        tree = (exp.select(exp.column("tag_id"), exp.column("day"), exp.column("present"), exp.column("value"),
                           exp.column("number"))
                .from_("tag_values")
                .where(exp.and_(exp.column("project_id").eq(exp.Literal.number(project.id)),
                                exp.column("person_id").eq(exp.Literal.number(person_id)),
                                exp.In(this=exp.column("tag_id"), expressions=[exp.Literal.number(i) for i in tags])))
                .order_by(exp.column("run_id").desc()).limit(limit))
        out = []
        for tag_id, day, here, value, number in self.store.query(render(tree, ctx.dialect)).rows:
            tag = tags[int(tag_id)]
            out.append({"tag": tag.name, "day": _day(day).isoformat(),
                        "value": present(tag, value, number) if here else None,
                        "score": number if here and tag.spec.definition.type == "model" else None})
        return out

    def timeline(self, project: ProjectRef, name: str, days: int = 30) -> list[dict[str, Any]]:
        """The distribution of a tag on each of the last `days` days it ran (its history, for the tag's page)."""
        tag = self.tag(project, name)
        runs = sorted({r.day for r in self.catalog.runs(tag.id, 400) if r.status == "finished"})[-days:]
        return [{"day": day.isoformat(), "distribution": self.distribution(project, name, day)} for day in runs]

    def distribution(self, project: ProjectRef, name: str, as_of: dt.date | None = None,
                     limit: int = 30) -> list[dict[str, Any]]:
        tag = self.tag(project, name)
        ctx = self.queries.context(project)
        tree = (exp.select(exp.column("value", "v"), exp.Count(this=exp.Star()).as_("n"),
                           exp.func("avg", exp.column("number", "v")).as_("mean"))
                .from_(self._in_force(project, tag, as_of, None)).group_by(exp.column("value", "v"))
                .order_by(exp.column("n").desc(), exp.column("value", "v")).limit(limit))
        return [{"value": r[0], "units": int(r[1]), "mean_number": r[2]}
                for r in self.store.query(render(tree, ctx.dialect)).rows]


def history_start(project: ProjectRef, history_days: int, now: dt.datetime | None = None) -> dt.date:
    """The first day of tag history kept: `history_days` before today in the project's time zone."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(project.timezone)).date()
    return today - dt.timedelta(days=history_days)


def groups_in_scope(ctx: Context, group_type: str, key: exp.Expr) -> exp.Expr | None:
    """For a caller restricted to some persons (an advisor): `key` is a group of `group_type` that one of those
    persons belongs to, that is, named by one of their events (after merges); None: not restricted."""
    if ctx.person_scope is None:
        return None
    slot = ctx.groups.get(group_type)
    if slot is None:
        return exp.false()
    column = exp.column(f"group_{slot}", EVENTS)
    members = (exp.select(column).distinct().from_(exp.table_("events_resolved").as_(EVENTS))
               .where(exp.and_(exp.column("project_id", EVENTS).eq(exp.Literal.number(ctx.project_id)),
                               exp.Not(this=exp.Is(this=column.copy(), expression=exp.Null())),
                               ctx.person_scope.copy())))
    return exp.In(this=key, query=members.subquery())


def _tier(score: float, tiers: list[tuple[str, float | None, float | None]]) -> str | None:
    for name, low, high in tiers:
        if (low is None or score >= low) and (high is None or score < high):
            return name
    return None


def reason_texts(detail: str | None, lang: str = "en") -> list[str]:
    """A model tag's reasons in words: the features that moved the unit's score most, and which way."""
    found = _detail(detail) if detail else []
    out = []
    for item in found if isinstance(found, list) else []:
        name, value, effect = item
        feature = FEATURES.get(str(name))
        label = (feature.zh if lang == "zh" else feature.en) if feature is not None else str(name)
        shown = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        if lang == "zh":
            out.append(f"{label}:{shown}({'提高' if effect > 0 else '降低'}了分数)")
        else:
            out.append(f"{label}: {shown} ({'raises' if effect > 0 else 'lowers'} the score)")
    return out


FEATURES = {f.name: f for features in (LEAD_FEATURES, DROPOUT_FEATURES, RENEWAL_FEATURES) for f in features}


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _reason(exc: Exception) -> str:
    if isinstance(exc, QueryError):
        return str(exc)
    return f"the computation failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:2000]
