"""Installing a pack into a project through the same stores the API uses (the metric catalogue, saved reports
and dashboards, segments, alerts, tags, and journeys through the journeys' service, as drafts), idempotently:
installing again (or an upgrade to a new version of the pack) makes what is missing, brings parts nobody changed
up to the pack's current definitions and leaves the parts a user changed as they are. Uninstalling deletes the
parts nobody changed (reports, dashboards, segments, alerts, tags, journeys that never ran); changed ones stay
the user's. Metrics stay in the catalogue (reports of the user may name them)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from edupulse.journeys.model import SpecError, Status
from edupulse.journeys.service import Actor, JourneyService
from edupulse.meta.alerts import FIELDS as ALERT_FIELDS
from edupulse.meta.alerts import AlertStore
from edupulse.meta.catalogue import CatalogueError, MetricCatalogue
from edupulse.meta.db import MetadataError, MetadataStore, ProjectInfo
from edupulse.meta.journeys import stored
from edupulse.meta.packs import PackInstalls
from edupulse.meta.tags import TagCatalog, check_spec
from edupulse.meta.ui import UIStore
from edupulse.ops.alerts import AlertSpec
from edupulse.ops.segments import SegmentCatalog
from edupulse.packs.headline import PackError
from edupulse.packs.spec import (
    MAX_SERIES,
    AlertPart,
    DashboardPart,
    JourneyPart,
    Pack,
    ReportPart,
    SegmentPart,
    TagPart,
)

Channels = Callable[[], list[str]]


def fingerprint(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


@dataclass
class InstallReport:
    """What an install, upgrade or uninstall did, by part key (`report:funnel`, `metric:ad_spend`...)."""

    pack: str
    version: int
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # changed by a user: left as they are
    removed: list[str] = field(default_factory=list)
    dashboard_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"pack": self.pack, "version": self.version, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "kept": self.kept, "removed": self.removed,
                "dashboard_id": self.dashboard_id}


def report_query(part: ReportPart, channels: list[str]) -> dict[str, Any]:
    """The query a report part is saved with: with `per_channel`, its metric for each of the first channels
    (the whole project's value when there are none yet)."""
    if part.per_channel is None:
        return part.query
    series = [{"metric": part.per_channel, "channel": c, "name": c} for c in channels[:MAX_SERIES]]
    return {**part.query, "series": series or [{"metric": part.per_channel}]}


def _report_print(report: dict[str, Any]) -> str:
    return fingerprint([report["name"], report["query"], report.get("view") or {}])


def _alert_print(alert: dict[str, Any]) -> str:
    return fingerprint([alert[f] for f in ALERT_FIELDS])


def _dashboard_print(board: dict[str, Any]) -> str:
    return fingerprint([board["name"], board["refresh_seconds"], board["date_from"], board["date_to"],
                        [[i["report"]["id"], i["width"]] for i in board.get("items", [])]])


class PackInstaller:
    """Installs and removes packs in the projects of one metadata database."""

    def __init__(self, meta: MetadataStore, journeys: JourneyService | None = None) -> None:
        self.meta = meta
        self.journeys = journeys
        self.tags = TagCatalog(meta)
        self.ui = UIStore(meta)
        self.metrics = MetricCatalogue(meta)
        self.segments = SegmentCatalog(meta)
        self.installs = PackInstalls(meta)
        self.alerts = AlertStore(meta)

    def install(self, project_id: int, pack: Pack, user: str, channels: Channels,
                can_create_metrics: bool = True) -> InstallReport:
        """Install or upgrade `pack` (see the module's docstring); `channels` lists the project's lead channels
        for reports with per-channel series."""
        previous = self.installs.get(project_id, pack.name)
        parts: dict[str, Any] = dict(previous["parts"]) if previous else {}
        done = InstallReport(pack.name, pack.version)
        self._metrics(project_id, pack, user, parts, done, can_create_metrics)
        found = channels() if any(r.per_channel for r in pack.reports) else []
        reports = {r.key: self._report(project_id, r, report_query(r, found), user, parts, done)
                   for r in pack.reports}
        for board in pack.dashboards:
            made = self._dashboard(project_id, board, pack, reports, parts, done)
            if board.key == pack.main_dashboard:
                done.dashboard_id = made
        for segment in pack.segments:
            self._segment(project_id, segment, parts, done)
        for alert in pack.alerts:
            self._alert(project_id, alert, user, parts, done)
        for tag in pack.own_tags:
            self._tag(project_id, tag, user, parts, done)
        for journey in pack.journeys:
            self._journey(project_id, journey, user, parts, done)
        self.installs.save(project_id, pack.name, pack.version, parts, user)
        return done

    def uninstall(self, project_id: int, pack: Pack) -> InstallReport:
        record = self.installs.get(project_id, pack.name)
        if record is None:
            raise PackError(f"pack {pack.name!r} is not installed in this project", 404)
        done = InstallReport(pack.name, int(record["version"]))
        # a board first: deleting its reports changes it
        order = {"journey": 0, "dashboard": 0, "report": 1, "segment": 2, "alert": 2, "tag": 3, "metric": 3}
        for key, part in sorted(record["parts"].items(), key=lambda kv: (order.get(kv[1]["kind"], 9), kv[0])):
            if part["kind"] == "metric":
                done.kept.append(key)
                continue
            current = self._current(project_id, part)
            if current is None:
                continue  # deleted by the user already
            if current != part["fingerprint"] or not self._removable(project_id, part):
                done.kept.append(key)
                continue
            self._delete(project_id, part)
            done.removed.append(key)
        self.installs.remove(project_id, pack.name)
        return done

    # the parts ---------------------------------------------------------------------------------------

    def _metrics(self, project_id: int, pack: Pack, user: str, parts: dict[str, Any], done: InstallReport,
                 can_create: bool) -> None:
        for metric in pack.metrics:
            key = f"metric:{metric.name}"
            current = self.metrics.get(project_id, metric.name)
            try:
                if current is None:
                    if not can_create:
                        raise PackError(f"pack {pack.name!r} adds the metric {metric.name!r} to the catalogue, "
                                        "which needs metrics:edit (ask an admin to install it)", 403)
                    made = self.metrics.create(project_id, metric.name, metric.definition, None, f"pack {pack.name}")
                    parts[key] = {"kind": "metric", "name": metric.name,
                                  "fingerprint": fingerprint(made["definition"])}
                    done.created.append(key)
                    continue
                mine = parts.get(key)
                if mine is None or fingerprint(current["definition"]) != mine["fingerprint"]:
                    done.kept.append(key) if mine is not None else done.unchanged.append(key)
                    continue
                updated = self.metrics.update(project_id, metric.name, metric.definition, f"pack {pack.name}")
                changed = updated["version"] != current["version"]
                parts[key] = {**mine, "fingerprint": fingerprint(updated["definition"])}
                (done.updated if changed else done.unchanged).append(key)
            except CatalogueError as exc:  # a definition of ours the catalogue refuses is a defect of the pack
                raise RuntimeError(f"pack {pack.name}: metric {metric.name}: {exc}") from exc

    def _report(self, project_id: int, part: ReportPart, query: dict[str, Any], user: str,
                parts: dict[str, Any], done: InstallReport) -> int:
        key = f"report:{part.key}"
        mine = parts.get(key)
        current = self._lookup(lambda: self.ui.report(project_id, mine["id"])) if mine else None
        if current is not None and mine is not None:
            if _report_print(current) != mine["fingerprint"]:
                done.kept.append(key)
                return int(mine["id"])
            wanted = {"name": part.name, "query": query, "view": part.view or {}}
            if _report_print(wanted) == mine["fingerprint"]:
                done.unchanged.append(key)
                return int(mine["id"])
            saved = self.ui.save_report(project_id, part.name, query, user, int(mine["id"]), view=part.view)
            done.updated.append(key)
        else:
            saved = self.ui.save_report(project_id, part.name, query, user, view=part.view)
            done.created.append(key)
        parts[key] = {"kind": "report", "id": saved["id"], "fingerprint": _report_print(saved)}
        return int(saved["id"])

    def _dashboard(self, project_id: int, part: DashboardPart, pack: Pack, reports: dict[str, int],
                   parts: dict[str, Any], done: InstallReport) -> int:
        key = f"dashboard:{part.key}"
        mine = parts.get(key)
        current = self._lookup(lambda: self.ui.dashboard(project_id, mine["id"])) if mine else None
        if current is not None and mine is not None and _dashboard_print(current) != mine["fingerprint"]:
            done.kept.append(key)
            return int(mine["id"])
        board_id = int(current["id"]) if current is not None else None
        saved = self.ui.save_dashboard(project_id, part.name, part.refresh_seconds, part.date_from, part.date_to,
                                       board_id)
        widths = {r.key: r.width for r in pack.reports}
        for report_key in part.reports:
            self.ui.add_to_dashboard(project_id, saved["id"], reports[report_key], widths[report_key])
        board = self.ui.dashboard(project_id, saved["id"])
        printed = _dashboard_print(board)
        if current is None:
            done.created.append(key)
        else:
            (done.unchanged if printed == mine["fingerprint"] else done.updated).append(key)  # type: ignore[index]
        parts[key] = {"kind": "dashboard", "id": saved["id"], "fingerprint": printed}
        return int(saved["id"])

    def _segment(self, project_id: int, part: SegmentPart, parts: dict[str, Any], done: InstallReport) -> None:
        key = f"segment:{part.key}"
        mine = parts.get(key)
        current = self.segments.get(project_id, int(mine["id"])) if mine else None
        wanted = fingerprint([part.name, part.definition])
        if current is not None and mine is not None:
            if fingerprint([current.name, current.definition]) != mine["fingerprint"]:
                done.kept.append(key)
                return
            if wanted != mine["fingerprint"]:
                current = self.segments.update(project_id, current.id, name=part.name, definition=part.definition)
                done.updated.append(key)
            else:
                done.unchanged.append(key)
        else:
            existing = self.segments.get(project_id, part.name)
            if existing is not None:  # a segment of the user's with the pack's name: theirs
                done.kept.append(key)
                return
            current = self.segments.create(project_id, part.name, part.definition, part.description)
            done.created.append(key)
        parts[key] = {"kind": "segment", "id": current.id,
                      "fingerprint": fingerprint([current.name, current.definition])}

    def _alert(self, project_id: int, part: AlertPart, user: str, parts: dict[str, Any],
               done: InstallReport) -> None:
        key = f"alert:{part.key}"
        mine = parts.get(key)
        current = self._lookup(lambda: self.alerts.get(project_id, mine["id"])) if mine else None
        wanted = AlertSpec.model_validate(part.spec).stored()
        if current is not None and mine is not None:
            if _alert_print(current) != mine["fingerprint"]:
                done.kept.append(key)
                return
            if _alert_print(wanted) == mine["fingerprint"]:
                done.unchanged.append(key)
                return
            saved = self.alerts.save(project_id, wanted, user, int(mine["id"]))
            done.updated.append(key)
        else:
            saved = self.alerts.save(project_id, wanted, user)
            done.created.append(key)
        parts[key] = {"kind": "alert", "id": saved["id"], "fingerprint": _alert_print(saved)}

    def _tag(self, project_id: int, part: TagPart, user: str, parts: dict[str, Any], done: InstallReport) -> None:
        key = f"tag:{part.key}"
        mine = parts.get(key)
        name = str(part.definition["name"])
        current = self.tags.get(project_id, name)
        wanted = check_spec(part.definition)
        printed = fingerprint(wanted.model_dump(mode="json", by_alias=True, exclude_none=True))
        if current is not None:
            now = fingerprint(current.spec.model_dump(mode="json", by_alias=True, exclude_none=True))
            if mine is None or now != mine["fingerprint"]:  # the user's tag of that name, or changed by them
                done.kept.append(key)
                return
            if now == printed:
                done.unchanged.append(key)
                return
            current = self.tags.update(project_id, name, wanted, user)
            done.updated.append(key)
        else:
            current = self.tags.create(project_id, wanted, user)
            done.created.append(key)
        parts[key] = {"kind": "tag", "name": name,
                      "fingerprint": fingerprint(current.spec.model_dump(mode="json", by_alias=True,
                                                                         exclude_none=True))}

    def _journey(self, project_id: int, part: JourneyPart, user: str, parts: dict[str, Any],
                 done: InstallReport) -> None:
        if self.journeys is None:
            raise RuntimeError("a pack with journeys is installed with the journeys' service")
        key = f"journey:{part.key}"
        mine = parts.get(key)
        project = self._project(project_id)
        actor, now = Actor(user), dt.datetime.now(dt.UTC)
        try:
            wanted = fingerprint(stored(self.journeys.checked(project, part.spec)))
        except SpecError as exc:  # a definition of ours the service refuses is a defect of the pack
            raise RuntimeError(f"journey {part.key}: {exc.field}: {exc}") from exc
        current = self.journeys.store.get(project_id, int(mine["id"])) if mine else None
        if current is not None and mine is not None:
            if fingerprint(stored(current.spec)) != mine["fingerprint"]:
                done.kept.append(key)
                return
            if wanted == mine["fingerprint"]:
                done.unchanged.append(key)
                return
            try:
                current = self.journeys.update(project, current.id, part.spec, actor, now)
            except SpecError:  # running with another trigger, or finished: the user's to change
                done.kept.append(key)
                return
            done.updated.append(key)
        else:
            if any(j.name == part.spec["name"] for j in self.journeys.store.all(project_id)):
                done.kept.append(key)  # a journey of the user's with the pack's name: theirs
                return
            current = self.journeys.create(project, part.spec, actor, now)
            done.created.append(key)
        parts[key] = {"kind": "journey", "id": current.id, "fingerprint": fingerprint(stored(current.spec))}

    def _project(self, project_id: int) -> ProjectInfo:
        found = next((p for p in self.meta.projects() if p.id == project_id), None)
        if found is None:
            raise PackError(f"no project with id {project_id}", 404)
        return found

    def _removable(self, project_id: int, part: dict[str, Any]) -> bool:
        """A journey goes only while it never ran: one that ran keeps its entries and results."""
        if part["kind"] != "journey" or self.journeys is None:
            return True
        found = self.journeys.store.get(project_id, int(part["id"]))
        return found is not None and found.status is Status.draft and found.started_at is None

    @staticmethod
    def _lookup(find: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return find()
        except MetadataError:
            return None

    def _current(self, project_id: int, part: dict[str, Any]) -> str | None:
        """The fingerprint of an installed part as it is now; None when it is gone."""
        if part["kind"] == "report":
            found = self._lookup(lambda: self.ui.report(project_id, part["id"]))
            return _report_print(found) if found else None
        if part["kind"] == "dashboard":
            found = self._lookup(lambda: self.ui.dashboard(project_id, part["id"]))
            return _dashboard_print(found) if found else None
        if part["kind"] == "alert":
            found = self._lookup(lambda: self.alerts.get(project_id, part["id"]))
            return _alert_print(found) if found else None
        if part["kind"] == "tag":
            tag = self.tags.get(project_id, part["name"])
            return fingerprint(tag.spec.model_dump(mode="json", by_alias=True, exclude_none=True)) if tag else None
        if part["kind"] == "journey":
            journey = self.journeys.store.get(project_id, int(part["id"])) if self.journeys else None
            return fingerprint(stored(journey.spec)) if journey else None
        segment = self.segments.get(project_id, int(part["id"]))
        return fingerprint([segment.name, segment.definition]) if segment is not None else None

    def _delete(self, project_id: int, part: dict[str, Any]) -> None:
        if part["kind"] == "report":
            self.ui.delete_report(project_id, part["id"])
        elif part["kind"] == "dashboard":
            self.ui.delete_dashboard(project_id, part["id"])
        elif part["kind"] == "alert":
            self.alerts.delete(project_id, part["id"])
        elif part["kind"] == "tag":
            self.tags.delete(project_id, part["name"], "pack")
        elif part["kind"] == "journey":
            assert self.journeys is not None
            self.journeys.delete(self._project(project_id), int(part["id"]), Actor("pack"))
        else:
            self.segments.delete(project_id, int(part["id"]))
