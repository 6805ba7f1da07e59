"""The navigation of the web UI as data: every page a menu links to, in order, with the permission it needs.
A feature adds its page with one entry here (and its words in messages/<lang>/<feature>.json); the layout,
the admin menu and the tests that visit every page (translation checker, screenshots) follow this list and
the page routes."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    """A menu entry: `label` is a message key; `pages` are the page names (render's `page`) that light it up;
    `needs` a permission of edupulse.auth.permissions (by its value, so that this list imports nothing)."""

    path: str
    label: str
    pages: tuple[str, ...]
    needs: str | None = None
    section: str = "main"  # main | admin


NAV: tuple[NavItem, ...] = (
    NavItem("/", "nav.home", ("home", "scenario", "class_report")),
    NavItem("/analysis/trends", "nav.analysis", ("analysis",), "query:run"),
    NavItem("/reports", "nav.reports", ("reports",), "reports:view"),
    NavItem("/dashboards", "nav.dashboards", ("dashboards", "dashboard"), "reports:view"),
    NavItem("/people", "nav.people", ("people", "person"), "query:run"),
    NavItem("/segments", "nav.segments", ("segments",), "reports:view"),
    NavItem("/tags", "nav.tags", ("tags", "tag"), "reports:view"),
    NavItem("/experiments", "nav.experiments", ("experiments", "experiment"), "reports:view"),
    NavItem("/journeys", "nav.journeys", ("journeys", "journey"), "reports:view"),
    NavItem("/journey-tasks", "nav.tasks", ("journey-tasks",), "reports:view"),
    NavItem("/catalog", "nav.catalog", ("catalog",), "query:run"),
    NavItem("/ingestion", "nav.ingestion", ("ingestion",), "quarantine:view"),
    NavItem("/settings", "nav.settings", ("settings",)),
    NavItem("/admin/members", "nav.members", ("admin-members",), "members:manage", "admin"),
    NavItem("/admin/keys", "nav.keys", ("admin-keys",), "reports:view", "admin"),
    NavItem("/admin/audit", "nav.audit", ("admin-audit",), "audit:view", "admin"),
    NavItem("/admin/lifecycle", "nav.lifecycle", ("admin-lifecycle",), "settings:manage", "admin"),
    NavItem("/admin/metrics", "nav.metrics", ("admin-metrics",), "metrics:view", "admin"),
    NavItem("/admin/quarantine", "nav.quarantine", ("admin-quarantine",), "quarantine:view", "admin"),
)


def visible(permissions: Set[str], section: str) -> list[NavItem]:
    """The entries of a section that a user with these permissions may open."""
    return [item for item in NAV if item.section == section and (item.needs is None or item.needs in permissions)]
