"""The navigation of the web UI as data: every page a menu links to, in order, with the permission it needs.
A feature adds its page with one entry here (and its words in messages/<lang>/<feature>.json); the layout,
the admin menu and the tests that visit every page (translation checker, screenshots) follow this list and
the page routes."""

from __future__ import annotations

from dataclasses import dataclass

from edupulse.auth.permissions import Permission


@dataclass(frozen=True)
class NavItem:
    """A menu entry: `label` is a message key; `pages` are the page names (render's `page`) that light it up."""

    path: str
    label: str
    pages: tuple[str, ...]
    needs: Permission | None = None
    section: str = "main"  # main | admin


NAV: tuple[NavItem, ...] = (
    NavItem("/", "nav.home", ("home",)),
    NavItem("/analysis/trends", "nav.analysis", ("analysis",), Permission.query_run),
    NavItem("/reports", "nav.reports", ("reports",), Permission.reports_view),
    NavItem("/dashboards", "nav.dashboards", ("dashboards", "dashboard"), Permission.reports_view),
    NavItem("/people", "nav.people", ("people", "person"), Permission.query_run),
    NavItem("/segments", "nav.segments", ("segments",), Permission.reports_view),
    NavItem("/catalog", "nav.catalog", ("catalog",), Permission.query_run),
    NavItem("/ingestion", "nav.ingestion", ("ingestion",), Permission.quarantine_view),
    NavItem("/settings", "nav.settings", ("settings",)),
    NavItem("/admin/members", "nav.members", ("admin-members",), Permission.members_manage, "admin"),
    NavItem("/admin/keys", "nav.keys", ("admin-keys",), Permission.reports_view, "admin"),
    NavItem("/admin/audit", "nav.audit", ("admin-audit",), Permission.audit_view, "admin"),
    NavItem("/admin/lifecycle", "nav.lifecycle", ("admin-lifecycle",), Permission.settings_manage, "admin"),
    NavItem("/admin/metrics", "nav.metrics", ("admin-metrics",), Permission.metrics_view, "admin"),
    NavItem("/admin/quarantine", "nav.quarantine", ("admin-quarantine",), Permission.quarantine_view, "admin"),
)


def visible(permissions: frozenset[Permission], section: str) -> list[NavItem]:
    """The entries of a section that a user with these permissions may open."""
    return [item for item in NAV if item.section == section and (item.needs is None or item.needs in permissions)]
