"""What the API, the CLI and the pages ask of packs: the list with what is installed, a pack's headline,
install and uninstall. Headlines run through the platform's query service (its cache and limits), with the
pack's metric definitions as a fallback for metrics the project's catalogue lacks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.service import JourneyService
from edupulse.journeys.vault import SecretBox
from edupulse.meta.alerts import AlertStore
from edupulse.meta.analysis import AnalysisMetadata
from edupulse.meta.db import ProjectInfo
from edupulse.meta.packs import PackInstalls
from edupulse.packs import channel_quality
from edupulse.packs.headline import Headline, MetricFallback, PackError, PackRun, event_volumes, period
from edupulse.packs.install import InstallReport, PackInstaller
from edupulse.packs.registry import PROBLEMS, Problem, problem
from edupulse.packs.spec import Pack
from edupulse.queries.service import PersonScope, QueryService
from edupulse.runtime import Platform
from edupulse.tags.run import TagService


class PackInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    stage: str
    problem: str
    available: bool
    waits_for: list[str]
    installed: bool
    installed_version: int | None
    version: int | None
    needs: list[str]
    templates: list[str]
    dashboard_id: int | None


class PackService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.installs = PackInstalls(platform.meta)

    def list(self, project: ProjectInfo) -> list[PackInfo]:
        installed = self.installs.of_project(project.id)
        return [self._info(p, installed.get(p.name)) for p in PROBLEMS]

    def info(self, project: ProjectInfo, name: str) -> PackInfo:
        found = self._problem(name)
        return self._info(found, self.installs.get(project.id, name))

    @staticmethod
    def _info(p: Problem, record: dict[str, Any] | None) -> PackInfo:
        board = None
        if record is not None and p.pack is not None and p.pack.main_dashboard:
            board = record["parts"].get(f"dashboard:{p.pack.main_dashboard}", {}).get("id")
        return PackInfo(name=p.name, stage=p.stage.value, problem=p.number, available=p.pack is not None,
                        waits_for=list(p.waits_for), installed=record is not None,
                        installed_version=record["version"] if record else None,
                        version=p.pack.version if p.pack else None, needs=list(p.pack.needs) if p.pack else [],
                        templates=list(p.pack.templates) if p.pack else [],
                        dashboard_id=board)

    @staticmethod
    def _problem(name: str) -> Problem:
        found = problem(name)
        if found is None:
            raise PackError(f"no pack named {name!r}; the packs are " + ", ".join(p.name for p in PROBLEMS), 404)
        return found

    def pack(self, name: str) -> Pack:
        found = self._problem(name)
        if found.pack is None:
            waits = f" (it waits for {' and '.join(found.waits_for)})" if found.waits_for else ""
            raise PackError(f"pack {name!r} is not available yet{waits}", 404)
        return found.pack

    def query_service(self, pack: Pack) -> QueryService:
        plat = self.platform
        metadata = MetricFallback(AnalysisMetadata(plat.meta), {m.name: m.definition for m in pack.metrics})
        return QueryService(plat.store, metadata, plat.query_cache, plat.settings.query)

    def tag_service(self) -> TagService:
        return TagService(self.platform.meta, self.platform.store, self.platform.query_service())

    def journey_service(self) -> JourneyService:
        """The journeys' service as the API builds it (tags readable: the packs' journeys may start on tags)."""
        settings = self.platform.settings
        box = SecretBox.open(settings.journeys.secret_key, settings.data_dir)
        return JourneyService(self.platform.meta, ChannelStore(self.platform.meta, box),
                              settings.journeys.allowed_hosts, tags_readable=True)

    def run(self, project: ProjectInfo, pack: Pack, *, date_range: str | None = None, date_from: str | None = None,
            date_to: str | None = None, now: dt.datetime | None = None, scope: PersonScope | None = None,
            **params: Any) -> PackRun:
        start, end = period(self.platform.store, project, date_range=date_range, date_from=date_from,
                            date_to=date_to, now=now)
        volumes = event_volumes(self.platform.store, project.id, pack.needs)
        record = self.installs.get(project.id, pack.name)
        return PackRun(self.query_service(pack), project, start, end, volumes, now, params, scope,
                       AlertStore(self.platform.meta).all(project.id) if pack.alerts else [],
                       tags=self.tag_service(), journeys=self.journey_service() if pack.journeys else None,
                       parts=dict(record["parts"]) if record else {}, meta=self.platform.meta)

    def headline(self, project: ProjectInfo, name: str, **options: Any) -> Headline:
        pack = self.pack(name)
        return pack.headline(self.run(project, pack, **options))

    def install(self, project: ProjectInfo, name: str, user: str, can_create_metrics: bool = True,
                now: dt.datetime | None = None, can_edit_journeys: bool = True) -> InstallReport:
        """Install or upgrade a pack; the tags it reads are computed as of `now` (default: now)."""
        pack = self.pack(name)
        if pack.journeys and not can_edit_journeys:
            raise PackError(f"pack {name!r} adds journeys, which needs journeys:edit", 403)

        def channels() -> list[str]:
            return channel_quality.channels_of(self.run(project, pack, date_range="all"))

        journeys = self.journey_service() if pack.journeys else None
        if pack.tags or pack.own_tags or pack.journeys:  # the built-in tags it reads or starts journeys on
            self.tag_service().ensure_defaults(project)
        done = PackInstaller(self.platform.meta, journeys).install(project.id, pack, user, channels,
                                                                    can_create_metrics)
        if pack.tags or pack.own_tags:  # computed now (then daily by the scheduler); its own read the built-in
            tags = self.tag_service()
            for tag in (*pack.tags, *(str(t.definition["name"]) for t in pack.own_tags)):
                tags.run(project, tag, now)
        return done

    def uninstall(self, project: ProjectInfo, name: str) -> InstallReport:
        pack = self.pack(name)
        journeys = self.journey_service() if pack.journeys else None
        return PackInstaller(self.platform.meta, journeys).uninstall(project.id, pack)
