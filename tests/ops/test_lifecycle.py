"""The account lifecycle on a simulated clock: idle accounts disabled, idle and view-only analysts downgraded,
dry runs change nothing, every change audited, admins notified in the database and by email through a real
SMTP server on loopback; the daily scheduler runs once a day; the command line."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import free_port
from edupulse.auth.permissions import Role
from edupulse.cli import main
from edupulse.conf import Settings, SmtpSettings
from edupulse.meta.audit import AuditFilter
from edupulse.meta.db import MetadataStore
from edupulse.ops import lifecycle
from edupulse.ops.notify import Notifier, notifications
from edupulse.ops.scheduler import Scheduler

T0 = dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC)  # 10:00 in Asia/Shanghai
PASSWORD = "a long enough password"


def day(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


class Mailbox:
    """A real SMTP server (aiosmtpd) on a loopback port that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetadataStore]:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    store.migrate()
    yield store
    store.close()


def people(meta: MetadataStore) -> dict[str, int]:
    project = meta.create_project("Lifecycle School").project
    accounts = meta.accounts
    out = {}
    for name, role in (("boss", Role.admin), ("idle", Role.viewer), ("lazy", Role.analyst),
                       ("looker", Role.analyst), ("busy", Role.analyst)):
        user = accounts.create_user(f"{name}@school.example", PASSWORD, now=T0)
        accounts.set_role(user.id, project.id, role)
        out[name] = user.id
    return out


def act(meta: MetadataStore, ids: dict[str, int], until: float) -> None:
    """boss, looker and busy are active every day up to `until`; looker only views, busy analyzes."""
    for n in range(int(until) + 1):
        for who, kind in (("boss", "admin"), ("looker", "view"), ("busy", "analyze")):
            meta.accounts.record_activity(ids[who], kind, day(n))


def test_policy_on_a_simulated_clock(meta: MetadataStore, mailbox: tuple[Mailbox, int]) -> None:
    ids = people(meta)
    act(meta, ids, 16)
    assert lifecycle.plan(meta, day(10)) == []
    at_16 = {(c.email, c.action) for c in lifecycle.plan(meta, day(16))}
    assert at_16 == {("lazy@school.example", "downgrade")}  # an analyst idle for more than 15 days
    act(meta, ids, 31)
    at_31 = {(c.email, c.action) for c in lifecycle.plan(meta, day(31))}
    assert at_31 == {("idle@school.example", "disable"), ("lazy@school.example", "disable"),
                     ("looker@school.example", "downgrade")}  # looker only viewed in 30 days
    before = meta.audit.count()
    dry = lifecycle.run(meta, day(31), dry_run=True)
    assert len(dry) == 3
    assert meta.audit.count() == before  # a dry run changes and records nothing
    assert not meta.accounts.user(ids["idle"]).disabled  # type: ignore[union-attr]

    box, port = mailbox
    notifier = Notifier(meta, SmtpSettings(host="127.0.0.1", port=port, sender="edupulse@school.example"))
    lifecycle.run(meta, day(31), dry_run=False, notifier=notifier)
    users = {u.email: u for u in meta.accounts.users()}
    assert users["idle@school.example"].disabled
    assert users["lazy@school.example"].disabled
    assert next(iter(users["looker@school.example"].roles.values())) is Role.viewer
    assert next(iter(users["busy@school.example"].roles.values())) is Role.analyst
    assert not users["boss@school.example"].disabled
    log = meta.audit.entries(AuditFilter(limit=10))
    assert [e["action"] for e in log][:4] == ["lifecycle.run", "user.role", "user.disable", "user.disable"]
    assert log[1]["detail"]["after"] == "viewer"
    # the admin is told, in the database and by email
    notes = notifications(meta, ids["boss"])
    assert len(notes) == 1
    assert notes[0]["emailed"]
    assert "looker@school.example" in str(notes[0]["body"])
    deadline = time.monotonic() + 30
    while not box.messages and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [m.rcpt_tos for m in box.messages] == [["boss@school.example"]]
    assert b"idle@school.example" in box.messages[0].content
    assert lifecycle.plan(meta, day(31)) == []  # nothing left to do


def test_policy_is_configurable_and_changes_are_audited(meta: MetadataStore) -> None:
    ids = people(meta)
    policy = lifecycle.LifecyclePolicy(disable_idle_days=0, downgrade_idle_analyst_days=40,
                                       downgrade_view_only_days=0)
    lifecycle.save_policy(meta, policy, "tests")
    assert lifecycle.load_policy(meta) == policy
    assert lifecycle.plan(meta, day(35)) == []
    assert {c.user_id for c in lifecycle.plan(meta, day(41))} == {ids["lazy"], ids["looker"], ids["busy"]}
    entry = meta.audit.entries(AuditFilter(action="lifecycle.settings"))[0]
    assert entry["detail"]["before"]["disable_idle_days"] == 30
    assert entry["detail"]["after"]["disable_idle_days"] == 0


def test_unreachable_smtp_is_noted_not_lost(meta: MetadataStore) -> None:
    ids = people(meta)
    notifier = Notifier(meta, SmtpSettings(host="127.0.0.1", port=1, timeout_seconds=2))
    lifecycle.run(meta, day(20), dry_run=False, notifier=notifier)
    notes = notifications(meta, ids["boss"])
    assert len(notes) == 1
    assert not notes[0]["emailed"]
    assert notes[0]["email_error"]


def test_daily_scheduler_runs_once_a_day(meta: MetadataStore, tmp_path: Path) -> None:
    ids = people(meta)
    settings = Settings(data_dir=tmp_path)
    scheduler = Scheduler(meta, settings)
    early = dt.datetime(2026, 3, 20, 18, 0, tzinfo=dt.UTC)  # 02:00 on the 21st in Asia/Shanghai
    assert scheduler.tick(early) == {}  # before 03:00 local
    changes = scheduler.tick(early + dt.timedelta(hours=2))["account_review"]
    assert {c.user_id for c in changes} == {ids["lazy"], ids["looker"], ids["busy"]}
    assert scheduler.tick(early + dt.timedelta(hours=5)) == {}  # done today
    assert scheduler.tick(early + dt.timedelta(days=1, hours=2)) == {"account_review": []}  # due, nothing left
    runs = meta.audit.entries(AuditFilter(action="lifecycle.run"))
    assert [r["actor"] for r in runs] == ["scheduler", "scheduler"]


def test_command_line(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", metadata_url=f"sqlite:///{tmp_path / 'm.sqlite'}")
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(main, ["--data-dir", str(settings.data_dir), "--metadata-url",
                                    settings.resolved_metadata_url, *args], input=stdin)

    assert run("project", "create", "CLI School").exit_code == 0
    made = run("user", "create", "Ana@School.example", "--role", "analyst", "--project", "CLI School",
               "--password-stdin", stdin=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    assert "ana@school.example" in made.output
    weak = run("user", "create", "b@school.example", "--role", "viewer", "--project", "CLI School",
               "--password-stdin", stdin="short\n")
    assert weak.exit_code != 0
    assert "at least 10 characters" in weak.output
    missing = run("user", "create", "c@school.example", "--role", "viewer", "--project", "Nowhere",
                  "--password-stdin", stdin=PASSWORD + "\n")
    assert "no project named 'Nowhere'" in missing.output
    assert "analyst" in run("user", "list").output
    assert "analyst -> viewer" in run("user", "role", "ana@school.example", "--project", "CLI School",
                                      "--role", "viewer").output
    key = run("key", "create", "ana@school.example", "--scope", "query")
    assert "pk_" in key.output
    assert "query" in run("key", "list").output
    assert "revoked" in run("key", "revoke", "1").output
    review = run("accounts", "review", "--dry-run")
    assert review.exit_code == 0, review.output
    assert "0 change(s) (dry run: nothing changed)" in review.output
